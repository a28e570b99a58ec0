//! The record model of the state file: one [`Record`] per line, and what a
//! replay makes of them for one service ([`ServiceState`]). Shared by the
//! replay (start-up, `procjon check-state`), the registry (which holds every
//! service's state at run time) and the store writer (which appends records
//! and writes compacted files). See `docs/state-file.md`.
//!
//! Strings that many records share are reference-counted: a service's id is
//! held once for its definition, its announcements and its timer entry, and
//! equal status lists and owners are held once for all services (see
//! [`super::Interner`]). With 100,000 services that is most of procjon's
//! memory.

use super::Timestamp;
use crate::frame::{self, FrameError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// One line of the state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Record {
    /// A service definition; replaces any earlier one for the same id.
    Register(Definition),
    /// Forget a service (written when its owner unregisters it, or by people).
    Remove {
        /// The service id.
        service: String,
    },
    /// Something procjon announced, and the announced state after it. Until a
    /// `delivered` record names its `seq`, it is in the outbox.
    Announce(Arc<Announcement>),
    /// The announcement with this `seq` reached the webhook.
    Delivered {
        /// The announcement's sequence number.
        seq: u64,
    },
    /// procjon was running at `at` (written every few seconds while it
    /// runs; a compacted file keeps the last one).
    Alive {
        /// When, RFC 3339 UTC to the second.
        at: Timestamp,
    },
    /// procjon stopped on purpose (SIGTERM or SIGINT) at `at`.
    Stop {
        /// When, RFC 3339 UTC to the second.
        at: Timestamp,
    },
}

/// When procjon was last known to run: its last `alive` or `stop` record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastSeen {
    /// Unix seconds.
    pub at: u64,
    /// It was a planned stop (`stop`), not just the last sign of life.
    pub stopped: bool,
}

impl LastSeen {
    /// What `record` says, if it is an `alive` or `stop` record with a time
    /// procjon can read.
    pub fn of(record: &Record) -> Option<LastSeen> {
        let (at, stopped) = match record {
            Record::Alive { at } => (at, false),
            Record::Stop { at } => (at, true),
            _ => return None,
        };
        match at {
            Timestamp::Seconds(at) => Some(LastSeen { at: *at, stopped }),
            Timestamp::Text(_) => None,
        }
    }

    /// The record that says it.
    pub fn record(self) -> Record {
        let at = Timestamp::Seconds(self.at);
        if self.stopped {
            Record::Stop { at }
        } else {
            Record::Alive { at }
        }
    }
}

/// A service definition as stored: what the agent registered, plus the
/// identity of the client certificate that owns the service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Definition {
    /// The service id.
    pub service: Arc<str>,
    /// Seconds without a ping after which the service is not available.
    pub timeout_s: f64,
    /// Human-readable status names, indexed by pings.
    pub statuses: Arc<[String]>,
    /// Certificate identity (CN, else first DNS SAN) allowed to register and
    /// ping this service. Absent in files written before ownership existed:
    /// the first identity that registers or pings adopts the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Arc<str>>,
}

impl Definition {
    /// Checks the protocol's limits, as a register frame is checked.
    pub fn validate(&self) -> Result<(), FrameError> {
        frame::validate_definition(&self.service, self.timeout_s, &self.statuses)
    }

    /// The timeout as a duration.
    pub fn timeout(&self) -> Duration {
        frame::timeout(self.timeout_s)
    }

    /// How many statuses the service has.
    pub fn status_count(&self) -> u64 {
        self.statuses.len() as u64
    }

    /// The name of status `index`, or `status N` for one that doesn't exist.
    pub fn status_name(&self, index: u64) -> String {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.statuses.get(i))
            .cloned()
            .unwrap_or_else(|| format!("status {index}"))
    }
}

/// One announcement: a message for the channel plus the service's announced
/// availability and status once it is made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Announcement {
    /// Unique sequence number; later announcements have larger ones.
    pub seq: u64,
    /// The service id.
    pub service: Arc<str>,
    /// Announced availability after this event.
    pub available: bool,
    /// Announced status index after this event.
    pub status: u64,
    /// The message, one line.
    pub text: String,
    /// When it happened, UTC, RFC 3339 (for people; not interpreted).
    #[serde(default)]
    pub at: Timestamp,
}

/// Announcement `seq`s stay below 2^53: exact in every JSON tool (jq,
/// JavaScript), and far from `u64::MAX`, where the next `seq` would overflow
/// and repeat one already in the file.
pub const MAX_SEQ: u64 = 1 << 53;

/// What the file says about one registered service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceState {
    /// Its definition (and owner).
    pub definition: Definition,
    /// The last announcement about it, if any (none: never pinged,
    /// "unknown"). Shared with the outbox while it is pending.
    pub last: Option<Arc<Announcement>>,
}

impl ServiceState {
    /// Applies a re-registration: the new definition, and a status that
    /// no longer exists becomes 0 (copying the last announcement if the
    /// outbox shares it, so the outbox keeps what was said).
    pub fn redefine(&mut self, definition: Definition) {
        if let Some(last) = &mut self.last
            && last.status >= definition.status_count()
        {
            Arc::make_mut(last).status = 0;
        }
        self.definition = definition;
    }

    /// Takes `announcement` as the last one if it is newer and its status
    /// exists (an announcement replayed from a hand-edited file may be
    /// neither).
    pub fn announced(&mut self, announcement: &Arc<Announcement>) {
        let newer = self.last.as_ref().is_none_or(|l| l.seq < announcement.seq);
        if newer && announcement.status < self.definition.status_count() {
            self.last = Some(announcement.clone());
        }
    }
}

/// Appends one record as a JSON line to `buf`.
pub fn encode_record(record: &Record, buf: &mut Vec<u8>) {
    // Records hold only strings, integers and finite floats: serializing can't fail.
    if serde_json::to_writer(&mut *buf, record).is_ok() {
        buf.push(b'\n');
    }
}

/// The records of a compacted file that replays to `services`, `outbox`
/// and `last_seen`: outbox entries that are not a service's last
/// announcement (they must not set any state, so they come before the
/// registrations), then the registrations, then each service's last
/// announcement, followed by its `delivered` record unless it is still in
/// the outbox, then the last sign of life. Only reference counts are copied.
pub fn compacted_records<'a>(
    services: impl Iterator<Item = &'a ServiceState> + Clone,
    outbox: &BTreeMap<u64, Arc<Announcement>>,
    last_seen: Option<LastSeen>,
) -> Vec<Record> {
    let lasts: HashSet<u64> = services
        .clone()
        .filter_map(|s| s.last.as_ref().map(|l| l.seq))
        .collect();
    let mut records: Vec<Record> = outbox
        .values()
        .filter(|a| !lasts.contains(&a.seq))
        .map(|a| Record::Announce(a.clone()))
        .collect();
    records.extend(
        services
            .clone()
            .map(|s| Record::Register(s.definition.clone())),
    );
    for state in services {
        if let Some(last) = &state.last {
            records.push(Record::Announce(last.clone()));
            if !outbox.contains_key(&last.seq) {
                records.push(Record::Delivered { seq: last.seq });
            }
        }
    }
    records.extend(last_seen.map(LastSeen::record));
    records
}

/// How many lines [`compacted_records`] makes.
pub fn compacted_lines<'a>(
    services: impl Iterator<Item = &'a ServiceState>,
    outbox: &BTreeMap<u64, Arc<Announcement>>,
    last_seen: Option<LastSeen>,
) -> u64 {
    let mut lines = outbox.len() as u64 + u64::from(last_seen.is_some());
    for state in services {
        lines += 1;
        if let Some(last) = &state.last {
            // A pending last announcement is counted with the outbox.
            lines += if outbox.contains_key(&last.seq) { 0 } else { 2 };
        }
    }
    lines
}
