//! The state file: an append-only JSON-lines journal of registrations,
//! removals and announcements (which double as the notification outbox),
//! readable and editable by hand. See `docs/state-file.md`.
//!
//! - [`record`]: the record model, one [`Record`] per line, and a service's
//!   state as the records make it ([`ServiceState`]).
//! - [`replay`]: the parser people's hand edits meet: reads the file into a
//!   [`State`] at start-up and for `procjon check-state`, refusing any line
//!   it can't trust with its line number and reason.
//! - [`file`]: the file on disk: append with `fsync`, cut back after a
//!   failed append, compaction by rename.
//! - [`writer`]: the store writer thread, which owns the file at run time.
//! - [`interner`]: one shared copy of equal status lists and owners.
//! - [`timestamp`]: an announcement's time, without a string each.

mod file;
mod interner;
mod record;
mod replay;
mod timestamp;
mod writer;

pub use file::{StoreFile, open};
pub use interner::Interner;
pub use record::{
    Announcement, Definition, Hold, Kind, LastSeen, MAX_SEQ, Pending, PolicyState, Record,
    ServiceState, Silence, Subject, compacted_records, encode_record,
};
pub use replay::{Replay, State, replay, replay_bytes};
pub use timestamp::Timestamp;
pub use writer::{Durable, LiveState, SinkMarks, StoreCmd, StoreHealth, Writer, WriterLinks};

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A problem with the state file.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// Reading, writing, syncing or renaming failed.
    Io {
        /// What was being done, e.g. "appending to".
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A line that is not a valid record (start-up stops on it).
    BadLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io {
                action,
                path,
                source,
            } => {
                write!(f, "{action} state file {}: {source}", path.display())
            }
            StoreError::BadLine { path, line, reason } => write!(
                f,
                "state file {} line {line}: {reason}; fix or delete that line (procjon check-state {} checks the file)",
                path.display(),
                path.display()
            ),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Io { source, .. } => Some(source),
            StoreError::BadLine { .. } => None,
        }
    }
}
