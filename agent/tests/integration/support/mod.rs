//! Test support for the agent's tests: the agent's command line, a fake
//! Elasticsearch, a scene of a temp dir with a daemon in it (and further
//! daemons trusting its CA), reading the daemon's `/api/services`,
//! processes for the `process` agent to watch, the Nagios plugins the
//! `exec` tests run, and addresses where no procjon answers. What
//! procjon's own tests need too (temp dirs, certificates, the daemon under
//! test, child output as lines, waiting) lives in the
//! `procjon-test-support` crate (`tests/support/`) and is re-exported here.

mod agent;
mod api;
mod fake_es;
mod plugins;
mod scene;
mod sleeper;

pub use agent::{AgentCommand, Finished, RunningAgent};
pub use api::{service, wait_for_service};
pub use fake_es::{FakeEs, Health};
pub use plugins::check_dummy;
pub use scene::{Peer, Scene, procjon, procjon_with_http};
pub use sleeper::Sleeper;
pub use test_support::{FakeSlack, Lines, TempDir, WAIT, wait_for};

/// A port that nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    listener.local_addr().expect("local address").port()
}

/// A blackholed procjon: a port that takes TCP connections and never says
/// a word, as a host whose daemon hangs. The listener never calls
/// `accept`: the kernel completes the connections into its backlog all the
/// same, so the agent connects, sends its TLS hello and waits for an
/// answer that never comes. Closed on drop.
pub struct Blackhole {
    _listener: std::net::TcpListener,
    /// Its `-e` value, `127.0.0.1:PORT`.
    pub endpoint: String,
}

impl Blackhole {
    /// Opens one on a free loopback port.
    pub fn new() -> Blackhole {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a blackhole");
        let endpoint = listener.local_addr().expect("local address").to_string();
        Blackhole {
            _listener: listener,
            endpoint,
        }
    }
}
