//! Test support: temp dirs, certificates, the daemon and agent processes
//! with their output, a fake Elasticsearch, and bounded waiting.

mod agent;
mod fake_es;
mod lines;
mod procjon;
mod scene;
mod temp_dir;

pub use agent::AgentCommand;
pub use fake_es::{FakeEs, Health};
pub use lines::Lines;
pub use procjon::Procjon;
pub use scene::Scene;
pub use temp_dir::TempDir;

use std::time::{Duration, Instant};

/// How long to wait for something that should happen: generous, since the
/// machine may be busy; a passing test never waits this long.
pub const WAIT: Duration = Duration::from_secs(15);

/// A port that nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    listener.local_addr().expect("local address").port()
}

/// Polls `condition` until it holds, or panics naming `what` after [`WAIT`].
#[track_caller]
pub fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    let mut pause = Duration::from_millis(5);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}
