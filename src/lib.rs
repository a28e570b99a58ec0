//! procjon: a small monitoring daemon. Agents connect over mutual TLS,
//! register services and ping them; procjon tells a Slack channel when a
//! service becomes available, goes silent past its timeout, or changes status.
//!
//! The library is what the `procjon` binary runs ([`run`]) plus the parts
//! others share: the wire protocol ([`frame`]) and TLS set-up ([`tls`]) with
//! `procjonagent`, the status API's JSON ([`api`]) with scripts, and the
//! state file's records and replay ([`state_file`]) with tools, the fuzz
//! targets and the tests. Everything else is private to the daemon.
//!
//! # Architecture
//!
//! Plain threads, no async runtime. Each thread owns its data; what is shared
//! sits behind one private lock that is never held across I/O.
//!
//! - **main** thread: start-up (TLS, replay of the state file, binding both
//!   ports, starting the other threads), then the **listener**'s accept loop,
//!   which spawns one **connection** thread per agent and hands connections
//!   over `--max-connections` to the one **rejecter** thread, which answers
//!   them `busy`.
//! - **connection** threads: complete the TLS handshake under a deadline,
//!   then read newline-delimited frames and apply them to the **registry**,
//!   answering each frame with one line.
//! - **registry** (shared, one read-write lock): every service's definition,
//!   owner, last ping and last announcement: the one copy of the services'
//!   state. Under its write lock it decides what to announce and sends the
//!   records to the store writer over a channel, so the order of events is
//!   fixed where they happen; it arms the timer (lock order: registry, then
//!   the timer's inbox).
//! - **timer** thread: a binary heap with one deadline per available
//!   service. When one comes due it asks the registry, which either
//!   announces the outage or returns the new deadline.
//! - **store** thread (the store writer): owns the append-only state file.
//!   It appends records in group commits (one fsync per batch), acknowledges
//!   registrations once durable, forwards announcements to every sink's
//!   thread, and compacts the file from a copy of the registry's state when
//!   it grows. It keeps only the outbox and the line count itself.
//! - **notifier** threads, one per sink (the default Slack webhook or
//!   standard output, each `--route`'s webhook, each `--webhook-json`):
//!   deliver the announcements their sink takes, in order (paced, batched,
//!   retried), and report deliveries back to the store writer, which marks
//!   them in the outbox per sink.
//! - **alertmanager** thread (with `--alertmanager`): keeps the alert book,
//!   the channel's state as alerts; one **alertmanager-peer** thread per
//!   peer posts it to that Alertmanager, with its own retries.
//! - **http** thread (`--http`, plain HTTP on loopback by default): tiny_http
//!   parses requests on its own threads; the http thread hands each to a
//!   short-lived **http-request** thread (a few at a time) that answers the
//!   status page, `/api/services`, `/metrics` or `/healthz` from a registry
//!   snapshot and the lock-free counters of the other threads. It only
//!   reads: nothing waits for it.
//!
//! # Log levels
//!
//! - error: procjon can't do its job (state file unwritable, webhook refused).
//! - warn: a peer or the environment misbehaved (failed handshake, bad frame,
//!   webhook 5xx or 429).
//! - info: lifecycle and announcements (`listening on …`, `web-1 is not available …`).
//! - debug: per-connection and per-frame events.
//! - trace: wire bytes.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod api;
pub mod frame;
pub mod tls;

mod alertmanager;
mod cert_expiry;
mod cli;
mod config;
mod connection;
mod daemon;
mod details;
mod health;
mod heartbeat;
mod http;
mod json_webhook;
mod listener;
mod message;
mod metrics;
mod notifier;
mod outbound;
mod progress;
mod registry;
mod secret_url;
mod settings;
mod signal;
mod silence_api;
mod sinks;
mod slack;
mod status;
mod store;
mod systemd;
mod timer;
mod version;
mod watchdog;

pub use cli::{Args, run};
pub use frame::{ClientFrame, ErrorCode, FrameError, PerfValue, Registration, ServerFrame};
pub use message::{human_duration, round_duration};
pub use settings::{ENVIRONMENT, SettingRow, parse_duration, process_env, setting_from};
pub use signal::Signal;
pub use slack::MAX_POST_CHARS;
pub use version::{GIT_REVISION, version_of};

/// The state file's records and their replay, for tools that read the file
/// (and the fuzz targets and tests). See `docs/state-file.md`.
pub mod state_file {
    pub use crate::store::{
        Announcement, Definition, Hold, Kind, MAX_SEQ, Pending, PolicyState, Record, Replay,
        ServiceState, Silence, State, StoreError, Subject, Timestamp, encode_record, replay,
        replay_bytes,
    };
}
