//! [`AgentError`]: the problems that stop an agent. Everything else
//! (procjon down or restarting, a network blip, a failing check) is logged
//! and retried by the runner and never reaches this type.

use procjon::frame::ErrorCode;
use procjon::tls::TlsError;
use std::fmt;

/// Why an agent stopped: a configuration it can't run with, or a refusal
/// from procjon that sending the same frame again can't fix.
#[derive(Debug)]
#[non_exhaustive]
pub enum AgentError {
    /// A certificate or key file is missing, unreadable or unusable.
    Tls(TlsError),
    /// An option has a value that can't be used.
    BadOption {
        /// The option, named after `procjonagent`'s flag, e.g. `--period`.
        option: &'static str,
        /// What is wrong with it, and what to do.
        reason: String,
    },
    /// The service id can't be registered.
    BadService {
        /// The id as given.
        service: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The agent's status names can't be registered.
    BadStatuses {
        /// What is wrong with them.
        reason: String,
    },
    /// procjon refused a frame for a reason that retrying can't fix.
    Rejected {
        /// procjon's address.
        endpoint: String,
        /// The service id.
        service: String,
        /// "register" or "ping".
        frame: &'static str,
        /// procjon's reason.
        code: ErrorCode,
        /// procjon's detail.
        message: String,
    },
    /// A thread (the check thread, a ping thread, a job's waiter) could
    /// not be started.
    Thread {
        /// The I/O error.
        source: std::io::Error,
    },
    /// The check thread ended, so there is nothing left to report.
    CheckStopped,
    /// The agent finished (see `Agent::finished`) under `run`, which is for
    /// agents that never do.
    Finished,
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentError::Tls(err) if err.is_missing_file() => write!(
                f,
                "{err}; give the agent's files with --root-cert, --cert and --key-cert \
                 (scripts/gen-certs.sh makes development ones)"
            ),
            AgentError::Tls(err) => err.fmt(f),
            AgentError::BadOption { option, reason } => write!(f, "{option}: {reason}"),
            AgentError::BadService { service, reason } => write!(
                f,
                "service id {service:?}: {reason}; choose another with -s/--service"
            ),
            AgentError::BadStatuses { reason } => write!(f, "status names: {reason}"),
            AgentError::Rejected {
                endpoint,
                service,
                frame,
                code,
                message,
            } => write!(
                f,
                "procjon at {endpoint} refused the {frame} of {service}: {code}: {}",
                one_line(message)
            ),
            AgentError::Thread { source } => write!(f, "starting a thread: {source}"),
            AgentError::CheckStopped => f.write_str("the check thread stopped unexpectedly"),
            AgentError::Finished => {
                f.write_str("the agent finished; run agents that finish with run_to_end")
            }
        }
    }
}

impl std::error::Error for AgentError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AgentError::Tls(err) => Some(err),
            AgentError::Thread { source } => Some(source),
            _ => None,
        }
    }
}

impl From<TlsError> for AgentError {
    fn from(err: TlsError) -> Self {
        AgentError::Tls(err)
    }
}

/// `text` with control characters (a peer's newlines) replaced by spaces,
/// so that every message stays on one line.
pub(crate) fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
