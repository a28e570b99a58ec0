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
//! Plain threads, no async runtime. An agent may report to several procjon
//! daemons (an HA pair): [`Options::endpoints`].
//!
//! - **check** thread: owns the [`Agent`]. Every period it calls
//!   [`Agent::check`] once (whether procjon is reachable or not) and posts
//!   the result to each endpoint's one-slot mailbox, never waiting: an
//!   outcome not taken yet is replaced by the newer one.
//! - **ping** threads, one per endpoint (`ping-1`, `ping-2`…): each owns
//!   its endpoint's TLS connection and backoff. It connects, registers,
//!   and pings with the newest result in its mailbox, reading procjon's
//!   reply to every frame. When the connection fails it logs one line,
//!   waits with capped exponential backoff and jitter while keeping the
//!   newest result, reconnects and registers again. A procjon that is down
//!   or blackholed holds up only its own thread. It ends only for a
//!   refusal that retrying can't fix (such as `bad_service`), or once the
//!   agent's last report is delivered or given up on.
//! - the caller of [`run`] checks the configuration, starts the others,
//!   and waits for the ping threads to end; it returns an error only when
//!   none of them ended well.
//!
//! # Log levels
//!
//! Every line about a connection starts `procjon at ENDPOINT:`, so that an
//! operator can tell which daemon is unreachable.
//!
//! - error: an endpoint given up on while the agent goes on (a refusal
//!   that retrying can't fix from one of several procjons, a last report
//!   not delivered in time). The error that stops an agent is returned,
//!   and `procjonagent` prints it once on standard error.
//! - warn: procjon or the environment misbehaved (connection lost, a
//!   rejected frame, a failing check).
//! - info: lifecycle (`registered …`, reconnections, status changes).
//! - debug: every ping and reply, a ping replaced by a newer one.
//! - trace: wire bytes.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod agent;
mod backoff;
pub mod cli;
mod command;
mod connection;
mod elasticsearch;
mod endpoint;
mod error;
mod exec;
mod job;
mod mailbox;
mod options;
mod perfdata;
mod ping;
mod pinger;
mod process;
mod runner;
mod silence;
mod systemd;

pub use agent::{Agent, CheckError, Finish, Report};
pub use elasticsearch::Elasticsearch;
pub use endpoint::MAX_ENDPOINTS;
pub use error::AgentError;
pub use exec::Exec;
pub use job::{JOB_STATUSES, Job, JobHandle};
pub use options::Options;
pub use ping::Ping;
pub use process::Process;
pub use runner::{Ended, run, run_to_end, validate};
pub use systemd::Systemd;
