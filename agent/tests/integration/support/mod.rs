//! Test support for the agent's tests: the agent's command line, a fake
//! Elasticsearch, a scene of a temp dir with a daemon in it, reading the
//! daemon's `/api/services`, processes for the `process` agent to watch,
//! and the Nagios plugins the `exec` tests run. What
//! procjon's own tests need too (temp dirs, certificates, the daemon under
//! test, child output as lines, waiting) lives in the
//! `procjon-test-support` crate (`tests/support/`) and is re-exported here.

mod agent;
mod api;
mod fake_es;
mod plugins;
mod scene;
mod sleeper;

pub use agent::{AgentCommand, Finished};
pub use api::wait_for_service;
pub use fake_es::{FakeEs, Health};
pub use plugins::check_dummy;
pub use scene::{Scene, procjon};
pub use sleeper::Sleeper;
pub use test_support::{Lines, TempDir, WAIT, wait_for};

/// A port that nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    listener.local_addr().expect("local address").port()
}
