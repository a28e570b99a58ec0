//! Integration-test support shared by both crates of the workspace: the
//! root package's tests (the daemon alone) and `agent/`'s (the agent
//! against the daemon). Each crate keeps its own helpers (protocol clients,
//! the agent's command line, a fake Elasticsearch) in its
//! `tests/integration/support/` and re-exports what it uses from here.
//!
//! Everything runs the real thing: [`Daemon`] starts the `procjon` binary
//! cargo built (see [`daemon::binary`]) on port 0 in a [`TempDir`], with
//! certificates from `scripts/gen-certs.sh` ([`certs()`]), and reads its
//! output as [`Lines`]; [`FakeSlack`] stands in for a Slack webhook. Tests
//! wait on channels with timeouts, or poll with [`wait_until`], never
//! sleep and hope.
//!
//! Threads: every child's stdout and stderr has a reader thread (see
//! [`Lines`]); the fake Slack has an accept thread. Nothing else runs in
//! the background.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod certs;
pub mod daemon;
mod lines;
mod receiver;
pub mod slack;
mod temp_dir;
mod wait;

pub use certs::{agent_cert, certs, gen_certs};
pub use daemon::Daemon;
pub use lines::Lines;
pub use receiver::{Received, Receiver};
pub use slack::FakeSlack;
pub use temp_dir::TempDir;
pub use wait::{WAIT, poll_until, wait_for, wait_until};

use std::path::{Path, PathBuf};

/// The workspace's root directory (where `scripts/` is), as this crate was
/// built from it.
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
