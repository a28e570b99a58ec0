//! procjon: a small monitoring daemon. Agents connect over mutual TLS,
//! register services and ping them; procjon tells a Slack channel when a
//! service becomes available, goes silent past its timeout, or changes status.
//!
//! # Architecture
//!
//! Plain threads, no async runtime. Each thread owns its data; what is shared
//! sits behind one private lock that is never held across I/O.
//!
//! - **listener** (main thread): accepts TCP connections and spawns one
//!   **connection** thread each. A connection thread completes the TLS
//!   handshake under a deadline, then reads newline-delimited [`frame`]s and
//!   applies them to the [`registry`], answering each frame with one line.
//! - **registry** (shared, one read-write lock): every service's definition,
//!   last ping and announced state. A ping that changes nothing but its last
//!   ping time takes the read side; under the write side the registry decides
//!   what to announce and hands records to the store writer through a
//!   channel, so the order of events is fixed where they happen.
//! - **timer** thread ([`timer`]): a binary heap with one deadline per
//!   available service. When one comes due it asks the registry, which
//!   either announces the outage or returns the new deadline.
//! - **store writer** thread ([`store`]): owns the append-only state file.
//!   It appends records in group commits (one fsync per batch), acknowledges
//!   registrations once durable, forwards announcements to the notifier, and
//!   compacts the file when it grows.
//! - **notifier** thread ([`notifier`]): delivers announcements in order to
//!   Slack (paced, batched, retried) or standard output, and reports
//!   deliveries back to the store writer, which marks them in the outbox.
//! - **http** thread ([`http`], `--http`, plain HTTP on loopback by default):
//!   tiny_http parses requests on its own threads; the http thread hands
//!   each to a short-lived request thread (a few at a time) that answers
//!   the status page, `/api/services`, `/metrics` or `/healthz` from a
//!   registry snapshot and the lock-free counters of the other threads. It
//!   only reads: nothing waits for it.
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
pub mod cli;
pub mod config;
pub mod connection;
pub mod daemon;
pub mod frame;
pub mod http;
pub mod listener;
pub mod message;
pub mod metrics;
pub mod notifier;
pub mod registry;
pub mod status;
pub mod store;
pub mod timer;
pub mod tls;

pub use frame::{ClientFrame, ErrorCode, FrameError, Registration, ServerFrame};
