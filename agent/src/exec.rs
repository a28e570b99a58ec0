//! The `exec` agent: runs a command every period and reports its exit code
//! as the status index. With the default statuses `ok, warning, critical,
//! unknown` that is the Nagios plugin convention, so existing check plugins
//! work unchanged. An exit code past the list, a signal or the deadline
//! reports the last status.

use crate::agent::{Agent, CheckError};
use crate::command::{self, CommandError};
use crate::error::{AgentError, one_line};
use std::fmt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The statuses of the Nagios plugin convention.
pub const NAGIOS_STATUSES: [&str; 4] = ["ok", "warning", "critical", "unknown"];

/// Reports the exit code of a command.
#[derive(Debug, Clone)]
pub struct Exec {
    program: PathBuf,
    args: Vec<String>,
    statuses: Vec<String>,
    deadline: Duration,
}

impl Exec {
    /// An agent that runs `command` (program and arguments; a program
    /// without `/` is looked up in `PATH` now) and kills it after
    /// `deadline` (`procjonagent` uses the period).
    pub fn new(
        command: &[String],
        statuses: Vec<String>,
        deadline: Duration,
    ) -> Result<Exec, AgentError> {
        let Some((program, args)) = command.split_first() else {
            return Err(AgentError::BadOption {
                option: "exec",
                reason: "no command given; e.g. procjonagent exec -- /usr/lib/nagios/plugins/check_load -w 4 -c 8".into(),
            });
        };
        let found = find_program(program).ok_or_else(|| AgentError::BadOption {
            option: "exec",
            reason: format!("command {program:?} not found (PATH is searched when it has no '/')"),
        })?;
        Ok(Exec {
            program: found,
            args: args.to_vec(),
            statuses,
            deadline,
        })
    }
}

/// `program` itself when it names a path, else the first match in `PATH`.
fn find_program(program: &str) -> Option<PathBuf> {
    if program.is_empty() {
        return None;
    }
    if program.contains('/') {
        let path = Path::new(program);
        return path.is_file().then(|| path.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

impl Agent for Exec {
    fn statuses(&self) -> Vec<String> {
        self.statuses.clone()
    }

    fn check(&mut self) -> Result<u64, CheckError> {
        let done = command::run(Command::new(&self.program).args(&self.args), self.deadline)
            .map_err(ExecError::Command)?;
        let program = self.program.display().to_string();
        if log::log_enabled!(log::Level::Debug) {
            let stdout = String::from_utf8_lossy(&done.stdout);
            let first = stdout.lines().next().unwrap_or("");
            log::debug!("{program}: {}: {}", done.status, one_line(first));
        }
        match (done.status.code(), done.status.signal()) {
            (Some(code), _) if (code as usize) < self.statuses.len() && code >= 0 => {
                Ok(code as u64)
            }
            (Some(code), _) => Err(ExecError::CodePastStatuses {
                program,
                code,
                statuses: self.statuses.len(),
            }
            .into()),
            (None, signal) => Err(ExecError::Signal {
                program,
                signal: signal.unwrap_or(0),
            }
            .into()),
        }
    }

    /// The last status, `unknown` by the Nagios convention.
    fn failure_status(&self) -> Option<u64> {
        self.statuses.len().checked_sub(1).map(|i| i as u64)
    }
}

/// Why a run gave no status of its own.
#[derive(Debug)]
enum ExecError {
    /// The command could not be run or did not finish in time.
    Command(CommandError),
    /// The exit code has no status name.
    CodePastStatuses {
        program: String,
        code: i32,
        statuses: usize,
    },
    /// The command was killed by a signal.
    Signal { program: String, signal: i32 },
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecError::Command(err) => err.fmt(f),
            ExecError::CodePastStatuses {
                program,
                code,
                statuses,
            } => write!(
                f,
                "{program} exited with code {code}, past the {statuses} statuses"
            ),
            ExecError::Signal { program, signal } => {
                write!(f, "{program} was killed by signal {signal}")
            }
        }
    }
}

impl std::error::Error for ExecError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ExecError::Command(err) => Some(err),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(script: &str) -> Exec {
        let command = ["sh", "-c", script].map(String::from);
        let statuses = NAGIOS_STATUSES.map(String::from).to_vec();
        Exec::new(&command, statuses, Duration::from_secs(5)).unwrap()
    }

    #[test]
    fn exit_codes_are_statuses() {
        for code in 0..4 {
            assert_eq!(exec(&format!("exit {code}")).check().unwrap(), code);
        }
        assert!(exec("exit 4").check().is_err());
        assert!(exec("kill -9 $$").check().is_err());
        assert_eq!(exec("exit 0").failure_status(), Some(3));
    }

    #[test]
    fn refuses_missing_commands() {
        let statuses = vec!["ok".to_string()];
        for command in [
            vec![],
            vec!["procjon-no-such-command".to_string()],
            vec!["/nonexistent/check".to_string()],
        ] {
            let err = Exec::new(&command, statuses.clone(), Duration::from_secs(1)).unwrap_err();
            assert!(err.to_string().starts_with("exec: "), "{err}");
        }
    }
}
