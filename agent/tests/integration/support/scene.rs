//! A test's world: a temp dir with certificates and a procjon serving from
//! it, and agents pointed at it with short timings.

use super::{AgentCommand, TempDir};
use test_support::Daemon;
use test_support::daemon::Builder;

/// A temp dir with certificates and a running procjon.
pub struct Scene {
    /// The daemon (dropped, so killed, before the dir is removed).
    pub procjon: Daemon,
    /// The dir: certificates in `certs/`, the state file, test files.
    pub dir: TempDir,
}

impl Scene {
    /// Makes certificates and starts procjon.
    pub fn new() -> Scene {
        let dir = TempDir::new().with_certs();
        let procjon = procjon(&dir).start();
        Scene { procjon, dir }
    }

    /// An agent for `service` reporting to this procjon with a 2 s timeout
    /// and a 0.3 s period.
    pub fn agent(&self, service: &str) -> AgentCommand {
        AgentCommand::new(&self.dir)
            .service(service)
            .timing("2", "0.3")
            .endpoint(&self.procjon.endpoint())
    }
}

/// procjon serving from `dir` as the agent's tests run it: with the
/// certificates of `dir/certs`, notifications printed on its stdout at once
/// (no pacing), and no HTTP status endpoint.
pub fn procjon(dir: &TempDir) -> Builder {
    Daemon::builder(dir.path())
        .certs(dir.join("certs"))
        .arg("--slack-interval")
        .arg("0")
        .arg("--http")
        .arg("off")
}
