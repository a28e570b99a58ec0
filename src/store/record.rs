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
use crate::frame::{self, FrameError, Policy};
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
    /// The announcement with this `seq` was delivered: to `sink` when one
    /// is named, else to every sink (it leaves the outbox).
    Delivered {
        /// The announcement's sequence number.
        seq: u64,
        /// The sink that took it (see [`crate::store::SinkId`]); absent: all
        /// of them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sink: Option<Arc<str>>,
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
    /// A service's notifications are held back until `until` (maintenance).
    Silence {
        /// The service id.
        service: String,
        /// When the silence ends, RFC 3339 UTC to the second.
        until: Timestamp,
        /// The certificate identity (or `procjon` for the local HTTP API)
        /// that asked for it.
        by: String,
        /// Why, for people.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A service's silence ended (it expired, or was lifted).
    Unsilence {
        /// The service id.
        service: String,
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
#[serde(from = "DefinitionRecord", into = "DefinitionRecord")]
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
    pub owner: Option<Arc<str>>,
    /// Its notification policy, when it set one (shared between services
    /// that set the same).
    pub policy: Option<Arc<Policy>>,
}

/// A `register` record as written: [`Definition`] with its policy's fields
/// in line (no serde `flatten`, which would buffer every line at start-up).
#[derive(Serialize, Deserialize)]
struct DefinitionRecord {
    service: Arc<str>,
    timeout_s: f64,
    statuses: Arc<[String]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    remind_s: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    confirm: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    depends_on: Vec<String>,
}

impl From<DefinitionRecord> for Definition {
    fn from(record: DefinitionRecord) -> Definition {
        let policy = Policy {
            remind_s: record.remind_s,
            confirm: record.confirm,
            depends_on: record.depends_on,
        };
        Definition {
            service: record.service,
            timeout_s: record.timeout_s,
            statuses: record.statuses,
            owner: record.owner,
            policy: (!policy.is_default()).then(|| Arc::new(policy)),
        }
    }
}

impl From<Definition> for DefinitionRecord {
    fn from(definition: Definition) -> DefinitionRecord {
        let policy = definition.policy.as_deref().cloned().unwrap_or_default();
        DefinitionRecord {
            service: definition.service,
            timeout_s: definition.timeout_s,
            statuses: definition.statuses,
            owner: definition.owner,
            remind_s: policy.remind_s,
            confirm: policy.confirm,
            depends_on: policy.depends_on,
        }
    }
}

impl Definition {
    /// The policy's settings (the defaults when it set none).
    pub fn policy(&self) -> &Policy {
        static DEFAULT: std::sync::OnceLock<Policy> = std::sync::OnceLock::new();
        self.policy
            .as_deref()
            .unwrap_or_else(|| DEFAULT.get_or_init(Policy::default))
    }

    /// Checks the protocol's limits, as a register frame is checked.
    pub fn validate(&self) -> Result<(), FrameError> {
        frame::validate_definition(&self.service, self.timeout_s, &self.statuses)?;
        self.policy().validate(&self.service)
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

/// What an announcement says. Files from before kinds existed have none
/// (`unknown`); such announcements carry the service's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The service became available.
    Available,
    /// Its status changed.
    StatusChanged,
    /// It went silent past its timeout.
    NotAvailable,
    /// Its owner retired it.
    Unregistered,
    /// A silence began.
    Silenced,
    /// A silence ended.
    SilenceEnded,
    /// It is still not available, or still in a non-zero status.
    Reminder,
    /// It changes state too often: changes are held.
    Flapping,
    /// It stopped flapping.
    Stable,
    /// About procjon itself (it is back, its certificate expires).
    Procjon,
    /// No kind recorded (an older file), or one this version doesn't know.
    #[default]
    #[serde(other)]
    Unknown,
}

impl Kind {
    /// Whether the announcement sets the service's state (availability and
    /// status) rather than telling something about it.
    pub fn carries_state(self) -> bool {
        matches!(
            self,
            Kind::Unknown
                | Kind::Available
                | Kind::StatusChanged
                | Kind::NotAvailable
                | Kind::Unregistered
        )
    }

    /// The kind as written, e.g. `not_available`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Unknown => "unknown",
            Kind::Available => "available",
            Kind::StatusChanged => "status_changed",
            Kind::NotAvailable => "not_available",
            Kind::Unregistered => "unregistered",
            Kind::Silenced => "silenced",
            Kind::SilenceEnded => "silence_ended",
            Kind::Reminder => "reminder",
            Kind::Flapping => "flapping",
            Kind::Stable => "stable",
            Kind::Procjon => "procjon",
        }
    }

    fn is_unknown(&self) -> bool {
        *self == Kind::Unknown
    }
}

/// Why an announcement was recorded but not posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hold {
    /// The service is silenced.
    Silenced,
    /// A service it depends on is not available.
    Suppressed,
    /// It is flapping.
    Flapping,
}

/// One announcement: a message for the channel plus the service's announced
/// availability and status once it is made.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(from = "AnnouncementRecord<Box<str>, Arc<str>, Timestamp>")]
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
    pub text: Box<str>,
    /// When it happened, UTC, RFC 3339 (for people; not interpreted).
    pub at: Timestamp,
    /// What it says.
    pub kind: Kind,
    /// Why it was recorded but not posted; absent: it was posted (or is in
    /// the outbox).
    pub held: Option<Hold>,
    /// Whose service it is about and what its statuses were called; none
    /// for procjon's own announcements.
    pub subject: Option<Arc<Subject>>,
}

/// Whose service an announcement is about and what its statuses were
/// called when it was made: what the sinks other than the default channel
/// need (routing by owner, JSON events, alerts), kept with the
/// announcement because the service may be re-registered or gone by the
/// time it is delivered. Equal ones are shared (see [`super::Interner`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Subject {
    /// The service's owner (certificate identity), when it has one.
    pub owner: Option<Arc<str>>,
    /// The name of the announced status.
    pub status: Option<Arc<str>>,
    /// The name of the status the channel knew before, when this
    /// announcement changed it.
    pub previous_status: Option<Arc<str>>,
}

/// An `announce` record as written and read: [`Announcement`] with its
/// subject's names in line (no serde `flatten`, which would buffer every
/// line at start-up).
#[derive(Serialize, Deserialize)]
struct AnnouncementRecord<T, S, A> {
    seq: u64,
    service: S,
    available: bool,
    status: u64,
    text: T,
    #[serde(default)]
    at: A,
    #[serde(default, skip_serializing_if = "Kind::is_unknown")]
    kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    held: Option<Hold>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status_name: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous_status_name: Option<S>,
}

impl From<AnnouncementRecord<Box<str>, Arc<str>, Timestamp>> for Announcement {
    fn from(record: AnnouncementRecord<Box<str>, Arc<str>, Timestamp>) -> Announcement {
        let subject = Subject {
            owner: record.owner,
            status: record.status_name,
            previous_status: record.previous_status_name,
        };
        Announcement {
            seq: record.seq,
            service: record.service,
            available: record.available,
            status: record.status,
            text: record.text,
            at: record.at,
            kind: record.kind,
            held: record.held,
            subject: (subject != Subject::default()).then(|| Arc::new(subject)),
        }
    }
}

impl Serialize for Announcement {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let subject = self.subject.as_deref();
        AnnouncementRecord {
            seq: self.seq,
            service: &*self.service,
            available: self.available,
            status: self.status,
            text: &*self.text,
            at: &self.at,
            kind: self.kind,
            held: self.held,
            owner: subject.and_then(|s| s.owner.as_deref()),
            status_name: subject.and_then(|s| s.status.as_deref()),
            previous_status_name: subject.and_then(|s| s.previous_status.as_deref()),
        }
        .serialize(serializer)
    }
}

impl Announcement {
    /// Whether it goes to the channel.
    pub fn is_posted(&self) -> bool {
        self.held.is_none()
    }
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
    /// The last announcement of its state, if any (none: never pinged,
    /// "unknown"). Shared with the outbox while it is pending.
    pub last: Option<Arc<Announcement>>,
    /// What its notification policy is doing: absent (nearly always) when
    /// it is silenced by nothing, holds nothing back and isn't flapping.
    pub policy: Option<Box<PolicyState>>,
}

/// A silence: a service's notifications held back until a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Silence {
    /// When it ends, Unix seconds.
    pub until: u64,
    /// Who asked for it: a certificate identity, or `procjon`.
    pub by: Arc<str>,
    /// Why, for people.
    pub reason: Option<Box<str>>,
}

/// The state of a service's notification policy: what the file says
/// (silence, what the channel last saw, flapping) and what the registry
/// counts at run time (confirmations, recent changes), which a restart
/// starts again.
#[derive(Debug, Clone, Default)]
pub struct PolicyState {
    /// Its silence, while one lasts.
    pub silence: Option<Silence>,
    /// While later changes of its state are held: the last announcement of
    /// its state that was posted, which is what the channel believes.
    pub seen: Option<Arc<Announcement>>,
    /// While it is flapping: the announcement that said so.
    pub flapping: Option<Arc<Announcement>>,
    /// Pings so far of a state change that waits for confirmation:
    /// (available, status, count).
    pub candidate: Option<(bool, u64, u32)>,
    /// When its announced state changed lately (for flapping).
    pub changes: std::collections::VecDeque<std::time::Instant>,
    /// Generation of its policy timer entry (silence end, reminder,
    /// stability); 0 when none.
    pub timer_generation: u64,
}

impl PartialEq for PolicyState {
    /// What the file says: run-time counts are left out.
    fn eq(&self, other: &PolicyState) -> bool {
        self.silence == other.silence && self.seen == other.seen && self.flapping == other.flapping
    }
}

impl PolicyState {
    /// Whether nothing is going on (the box can go).
    pub fn is_idle(&self) -> bool {
        self.silence.is_none()
            && self.seen.is_none()
            && self.flapping.is_none()
            && self.candidate.is_none()
            && self.changes.is_empty()
            && self.timer_generation == 0
    }
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

    /// Takes in `announcement` about this service: as its state if it
    /// carries one and is newer (and its status exists: an announcement
    /// replayed from a hand-edited file may be neither), keeping what the
    /// channel last saw while it is held; as its flapping or stable line.
    pub fn announced(&mut self, announcement: &Arc<Announcement>) {
        match announcement.kind {
            Kind::Flapping => self.policy().flapping = Some(announcement.clone()),
            Kind::Stable => {
                // The line says the state: the channel is in step again.
                let policy = self.policy();
                policy.flapping = None;
                policy.seen = None;
            }
            _ => {}
        }
        if !announcement.kind.carries_state() {
            self.tidy();
            return;
        }
        let newer = self.last.as_ref().is_none_or(|l| l.seq < announcement.seq);
        if !(newer && announcement.status < self.definition.status_count()) {
            return;
        }
        let before = self.last.replace(announcement.clone());
        if announcement.is_posted() {
            if let Some(policy) = &mut self.policy {
                policy.seen = None;
            }
        } else {
            let policy = self.policy();
            if policy.seen.is_none() {
                policy.seen = before;
            }
        }
        self.tidy();
    }

    /// The policy state, made when there was none.
    pub fn policy(&mut self) -> &mut PolicyState {
        self.policy.get_or_insert_with(Box::default)
    }

    /// Drops the policy state when nothing is going on.
    pub fn tidy(&mut self) {
        if self.policy.as_ref().is_some_and(|p| p.is_idle()) {
            self.policy = None;
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

/// An announcement in the outbox: not yet delivered to every sink.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    /// The announcement.
    pub announcement: Arc<Announcement>,
    /// The sinks that have it already (usually none: with one sink, an
    /// announcement leaves the outbox when that sink takes it).
    marks: Vec<Arc<str>>,
}

impl Pending {
    /// An announcement no sink has yet.
    pub fn new(announcement: Arc<Announcement>) -> Pending {
        Pending {
            announcement,
            marks: Vec::new(),
        }
    }

    /// The sinks that have it already.
    pub fn delivered_to_sinks(&self) -> &[Arc<str>] {
        &self.marks
    }

    /// Whether `sink` has it.
    pub fn delivered_to(&self, sink: &str) -> bool {
        self.delivered_to_sinks().iter().any(|s| &**s == sink)
    }

    /// Notes that `sink` has it; false when it was noted before.
    pub fn mark(&mut self, sink: Arc<str>) -> bool {
        if self.delivered_to(&sink) {
            return false;
        }
        self.marks.push(sink);
        true
    }

    /// Its `delivered` records, one per sink that has it.
    fn marks(&self) -> impl Iterator<Item = Record> + '_ {
        self.delivered_to_sinks()
            .iter()
            .map(|sink| Record::Delivered {
                seq: self.announcement.seq,
                sink: Some(sink.clone()),
            })
    }
}

/// The records of a compacted file that replays to `services`, `outbox`
/// and `last_seen`: outbox entries that are not a service's last
/// announcement (they must not set any state, so they come before the
/// registrations) with the sinks that have them, then the registrations,
/// then each service's last announcement, followed by its `delivered`
/// record unless it is still in the outbox (then by its sinks' marks),
/// then the last sign of life. Only reference counts are copied.
pub fn compacted_records<'a>(
    services: impl Iterator<Item = &'a ServiceState> + Clone,
    outbox: &BTreeMap<u64, Pending>,
    last_seen: Option<LastSeen>,
) -> Vec<Record> {
    let lasts: HashSet<u64> = services
        .clone()
        .flat_map(|s| kept(s).map(|a| a.seq))
        .collect();
    let mut records: Vec<Record> = Vec::new();
    for pending in outbox.values() {
        if !lasts.contains(&pending.announcement.seq) {
            records.push(Record::Announce(pending.announcement.clone()));
            records.extend(pending.marks());
        }
    }
    records.extend(
        services
            .clone()
            .map(|s| Record::Register(s.definition.clone())),
    );
    for state in services {
        if let Some(silence) = state.policy.as_ref().and_then(|p| p.silence.as_ref()) {
            records.push(Record::Silence {
                service: state.definition.service.to_string(),
                until: Timestamp::Seconds(silence.until),
                by: silence.by.to_string(),
                reason: silence.reason.as_deref().map(String::from),
            });
        }
        for announcement in kept(state) {
            records.push(Record::Announce(announcement.clone()));
            match outbox.get(&announcement.seq) {
                Some(pending) => records.extend(pending.marks()),
                None if announcement.is_posted() => records.push(Record::Delivered {
                    seq: announcement.seq,
                    sink: None,
                }),
                None => {}
            }
        }
    }
    records.extend(last_seen.map(LastSeen::record));
    records
}

/// The announcements a compacted file keeps about a service, oldest first:
/// what the channel last saw while later ones are held, the line that
/// said it is flapping, and its last state.
fn kept(state: &ServiceState) -> impl Iterator<Item = &Arc<Announcement>> + Clone {
    let policy = state.policy.as_deref();
    let mut kept: Vec<&Arc<Announcement>> = [
        policy.and_then(|p| p.seen.as_ref()),
        policy.and_then(|p| p.flapping.as_ref()),
        state.last.as_ref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    kept.sort_by_key(|a| a.seq);
    kept.dedup_by_key(|a| a.seq);
    kept.into_iter()
}

/// How many lines [`compacted_records`] makes.
pub fn compacted_lines<'a>(
    services: impl Iterator<Item = &'a ServiceState>,
    outbox: &BTreeMap<u64, Pending>,
    last_seen: Option<LastSeen>,
) -> u64 {
    let mut lines = u64::from(last_seen.is_some());
    for pending in outbox.values() {
        lines += 1 + pending.delivered_to_sinks().len() as u64;
    }
    for state in services {
        lines += 1;
        if state.policy.as_ref().is_some_and(|p| p.silence.is_some()) {
            lines += 1;
        }
        for announcement in kept(state) {
            // A pending announcement is counted with the outbox; a held one
            // has no delivery mark.
            lines += if outbox.contains_key(&announcement.seq) {
                0
            } else if announcement.is_posted() {
                2
            } else {
                1
            };
        }
    }
    lines
}
