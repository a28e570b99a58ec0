//! A complete custom agent: two statuses, switching to `threshold_reached`
//! once a counter passes a threshold, like the original procjon's example,
//! and a detail that says where the counter is (procjon shows it in its
//! status page and ends the status-changed message with it:
//! `my-service status changed to threshold_reached (was ok): 6 checks, over 5`).
//! It counts its own checks here; a real agent would read a queue length,
//! a temperature, a file's age…
//!
//! Run it beside a procjon on localhost:8080 with the certificates in
//! `.certs` (`scripts/gen-certs.sh`):
//!
//! ```text
//! cargo run -p procjon-agent --example custom
//! ```

use procjon_agent::{Agent, CheckError, Options, Report};
use std::process::ExitCode;
use std::time::Duration;

/// Checks after which the status switches.
const THRESHOLD: u32 = 5;

/// The agent's state: whatever the check needs between two calls.
struct Threshold {
    checks: u32,
}

impl Agent for Threshold {
    fn statuses(&self) -> Vec<String> {
        vec!["ok".into(), "threshold_reached".into()]
    }

    fn check(&mut self) -> Result<u64, CheckError> {
        self.report().map(|report| report.status)
    }

    /// The status, and a detail for people.
    fn report(&mut self) -> Result<Report, CheckError> {
        self.checks += 1;
        let over = self.checks > THRESHOLD;
        let detail = if over {
            format!("{} checks, over {THRESHOLD}", self.checks)
        } else {
            format!("{} checks", self.checks)
        };
        Ok(Report::new(u64::from(over)).with_detail(detail))
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut options = Options::new("my-service");
    options.timeout = Duration::from_secs(10);
    options.period = Duration::from_secs(3);
    // To report to an HA pair instead of localhost:8080:
    // options.endpoints = vec!["mon-a.example.com:8080".into(), "mon-b.example.com:8080".into()];
    // Runs until stopped; returns only on an error that retrying can't fix.
    let Err(err) = procjon_agent::run(Threshold { checks: 0 }, &options);
    eprintln!("custom agent: {err}");
    ExitCode::from(2)
}
