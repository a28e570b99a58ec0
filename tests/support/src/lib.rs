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

pub mod alertmanager;
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

/// The body of `GET url` (`http://HOST:PORT/PATH` only), or why not: a
/// plain HTTP/1.0 request, for the loopback services tests start.
pub fn http_get(url: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs"))?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut stream = std::net::TcpStream::connect(authority).map_err(|e| format!("{url}: {e}"))?;
    let limit = Some(std::time::Duration::from_secs(10));
    let _ = stream.set_read_timeout(limit);
    write!(stream, "GET /{path} HTTP/1.0\r\nHost: {authority}\r\n\r\n")
        .map_err(|e| format!("{url}: {e}"))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| format!("{url}: {e}"))?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{url}: no header end in {response:?}"))?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(format!("{url}: {}", head.lines().next().unwrap_or(head)));
    }
    Ok(body.to_string())
}

/// The workspace's root directory (where `scripts/` is), as this crate was
/// built from it.
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
