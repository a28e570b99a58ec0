//! A complete custom agent: two statuses, switching to `threshold_reached`
//! once a counter passes a threshold, like the original procjon's example.
//! It counts its own checks here; a real agent would read a queue length,
//! a temperature, a file's age…
//!
//! Run it beside a procjon on localhost:8080 with the certificates in
//! `.certs` (`scripts/gen-certs.sh`):
//!
//! ```text
//! cargo run -p procjon-agent --example custom
//! ```

use procjon_agent::{Agent, CheckError, Options};
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
        self.checks += 1;
        Ok(if self.checks > THRESHOLD { 1 } else { 0 })
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut options = Options::new("my-service");
    options.timeout = Duration::from_secs(10);
    options.period = Duration::from_secs(3);
    // Runs until stopped; returns only on an error that retrying can't fix.
    let Err(err) = procjon_agent::run(Threshold { checks: 0 }, &options);
    eprintln!("custom agent: {err}");
    ExitCode::from(2)
}
