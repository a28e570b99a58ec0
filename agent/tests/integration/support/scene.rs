//! A test's world: a temp dir with certificates and a procjon serving from
//! it, and agents pointed at it with short timings.

use super::{AgentCommand, Procjon, TempDir};

/// A temp dir with certificates and a running procjon.
pub struct Scene {
    /// The daemon (dropped, so killed, before the dir is removed).
    pub procjon: Procjon,
    /// The dir: certificates in `certs/`, the state file, test files.
    pub dir: TempDir,
}

impl Scene {
    /// Makes certificates and starts procjon.
    pub fn new() -> Scene {
        let dir = TempDir::new().with_certs();
        let procjon = Procjon::start(&dir);
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
