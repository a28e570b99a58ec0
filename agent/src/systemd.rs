//! The `systemd` agent: a unit's ActiveState, read with
//! `systemctl show --property=ActiveState --value UNIT` (no D-Bus library).
//! A unit that doesn't exist is `inactive`, as systemd says; a systemctl
//! that can't be run, fails or prints something else gives `unknown`.

use crate::agent::{Agent, CheckError};
use crate::command::{self, CommandError};
use crate::error::{AgentError, one_line};
use std::fmt;
use std::process::{Command, ExitStatus};
use std::time::Duration;

/// The statuses, in the original procjonagent's order.
pub const STATUSES: [&str; 7] = [
    "active",
    "reloading",
    "inactive",
    "failed",
    "activating",
    "deactivating",
    "unknown",
];

/// Reports the ActiveState of one systemd unit.
#[derive(Debug, Clone)]
pub struct Systemd {
    unit: String,
    deadline: Duration,
}

impl Systemd {
    /// An agent for `unit` (e.g. `nginx.service`) whose `systemctl` is
    /// killed after `deadline` (`procjonagent` uses the period).
    pub fn new(unit: &str, deadline: Duration) -> Result<Systemd, AgentError> {
        let bad = |reason: &str| AgentError::BadOption {
            option: "--unit",
            reason: format!("{unit:?} {reason}"),
        };
        if unit.is_empty() {
            return Err(bad("is empty; name a unit, e.g. nginx.service"));
        }
        if unit.starts_with('-') {
            return Err(bad(
                "starts with '-', which systemctl would take for an option",
            ));
        }
        if unit.chars().any(char::is_control) {
            return Err(bad("contains a control character"));
        }
        Ok(Systemd {
            unit: unit.to_string(),
            deadline,
        })
    }
}

impl Agent for Systemd {
    fn statuses(&self) -> Vec<String> {
        STATUSES.iter().map(|s| s.to_string()).collect()
    }

    fn check(&mut self) -> Result<u64, CheckError> {
        let unit = &self.unit;
        let done = command::run(
            Command::new("systemctl").args(["show", "--property=ActiveState", "--value", unit]),
            self.deadline,
        )
        .map_err(SystemdError::Command)?;
        if !done.status.success() {
            return Err(SystemdError::Failed {
                unit: unit.clone(),
                status: done.status,
            }
            .into());
        }
        let stdout = String::from_utf8_lossy(&done.stdout);
        let state = stdout.trim();
        let known = &STATUSES[..STATUSES.len() - 1];
        match known.iter().position(|s| *s == state) {
            Some(i) => Ok(i as u64),
            None => Err(SystemdError::Unexpected {
                unit: unit.clone(),
                state: one_line(state),
            }
            .into()),
        }
    }
}

/// Why a unit's state could not be read.
#[derive(Debug)]
enum SystemdError {
    /// systemctl could not be run or did not finish in time.
    Command(CommandError),
    /// systemctl exited with an error.
    Failed { unit: String, status: ExitStatus },
    /// systemctl printed a state this agent doesn't know.
    Unexpected { unit: String, state: String },
}

impl fmt::Display for SystemdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SystemdError::Command(err) => err.fmt(f),
            SystemdError::Failed { unit, status } => {
                write!(f, "systemctl show {unit} failed ({status})")
            }
            SystemdError::Unexpected { unit, state } => {
                write!(f, "systemctl show {unit}: unexpected ActiveState {state:?}")
            }
        }
    }
}

impl std::error::Error for SystemdError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SystemdError::Command(err) => Some(err),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_unit_names_systemctl_would_misread() {
        for bad in ["", "--all", "a\nb"] {
            let err = Systemd::new(bad, Duration::from_secs(1)).unwrap_err();
            assert!(err.to_string().starts_with("--unit: "), "{err}");
        }
        assert!(Systemd::new("nginx.service", Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn unknown_is_the_failure_status() {
        let agent = Systemd::new("x", Duration::from_secs(1)).unwrap();
        assert_eq!(agent.failure_status(), Some(6));
    }
}
