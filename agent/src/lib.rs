//! procjon-agent: the library behind `procjonagent`, for embedding a procjon
//! agent in any program. Implement [`Agent`] (a list of status names and a
//! check that returns the current one), fill in [`Options`], call [`run`].
//!
//! ```no_run
//! use procjon_agent::{Agent, CheckError, Options};
//!
//! struct Disk;
//!
//! impl Agent for Disk {
//!     fn statuses(&self) -> Vec<String> {
//!         vec!["ok".into(), "full".into(), "unknown".into()]
//!     }
//!     fn check(&mut self) -> Result<u64, CheckError> {
//!         Ok(0)
//!     }
//! }
//!
//! let options = Options::new("disk-1");
//! let Err(err) = procjon_agent::run(Disk, &options);
//! eprintln!("{err}");
//! ```
//!
//! # Architecture
//!
//! Two plain threads, no async runtime:
//!
//! - **check** thread: owns the [`Agent`]. Every period it calls
//!   [`Agent::check`] (whether procjon is reachable or not) and sends the
//!   result to the ping thread over a channel.
//! - **ping** thread (the caller of [`run`]): owns the TLS connection. It
//!   connects, registers, and pings with each result it receives, reading
//!   procjon's reply to every frame. When the connection fails it logs one
//!   line, waits with capped exponential backoff and jitter while keeping
//!   the newest result, reconnects and registers again. It returns only for
//!   problems that retrying can't fix: a bad configuration or a rejection
//!   such as `bad_service`.
//!
//! # Log levels
//!
//! - error: unused; the error that stops an agent is returned, and
//!   `procjonagent` prints it once on standard error.
//! - warn: procjon or the environment misbehaved (connection lost, a
//!   rejected frame, a failing check).
//! - info: lifecycle (`registered …`, reconnections, status changes).
//! - debug: every ping and reply.
//! - trace: wire bytes.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod agent;
mod backoff;
pub mod cli;
mod command;
mod connection;
mod elasticsearch;
mod error;
mod exec;
mod job;
mod options;
mod perfdata;
mod ping;
mod process;
mod runner;
mod silence;
mod systemd;

pub use agent::{Agent, CheckError, Finish, Report};
pub use elasticsearch::Elasticsearch;
pub use error::AgentError;
pub use exec::Exec;
pub use job::{JOB_STATUSES, Job, JobHandle};
pub use options::Options;
pub use ping::Ping;
pub use process::Process;
pub use runner::{Ended, run, run_to_end, validate};
pub use systemd::Systemd;
