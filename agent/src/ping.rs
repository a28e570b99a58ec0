//! The `ping` agent: one status, `ok`. It monitors the host itself: while
//! the agent runs (and the host with it), the service is available.

use crate::agent::{Agent, CheckError};

/// Reports `ok` every period.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ping;

impl Agent for Ping {
    fn statuses(&self) -> Vec<String> {
        vec!["ok".into()]
    }

    fn check(&mut self) -> Result<u64, CheckError> {
        Ok(0)
    }
}
