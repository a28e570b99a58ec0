//! The state file: an append-only JSON-lines journal of registrations,
//! removals and announcements (which double as the notification outbox),
//! readable and editable by hand. See `docs/state-file.md`.
//!
//! [`State`] is the replayed model of the file. [`open`] replays it at
//! start-up (dropping a torn last line, refusing any other bad line) and
//! compacts it when it holds much more than the live state. At run time the
//! [`Writer`] thread owns the file and a copy of the model: it appends what
//! the registry and the notifier send it in group commits (one `fsync` per
//! batch), acknowledges registrations once they are durable, forwards new
//! announcements to the notifier, and compacts again when the file grows.

use crate::frame::Registration;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One line of the state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Record {
    /// A service definition; replaces any earlier one for the same id.
    Register(Definition),
    /// Forget a service (written by people; procjon never writes it).
    Remove {
        /// The service id.
        service: String,
    },
    /// Something procjon announced, and the announced state after it. Until a
    /// `delivered` record names its `seq`, it is in the outbox.
    Announce(Announcement),
    /// The announcement with this `seq` reached the webhook.
    Delivered {
        /// The announcement's sequence number.
        seq: u64,
    },
}

/// A service definition as stored: what the agent registered, plus the
/// identity of the client certificate that owns the service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Definition {
    /// The registration as the agent sent it.
    #[serde(flatten)]
    pub registration: Registration,
    /// Certificate identity (CN, else first DNS SAN) allowed to register and
    /// ping this service. Absent in files written before ownership existed:
    /// the first identity that registers or pings adopts the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// One announcement: a message for the channel plus the service's announced
/// availability and status once it is made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Announcement {
    /// Unique sequence number; later announcements have larger ones.
    pub seq: u64,
    /// The service id.
    pub service: String,
    /// Announced availability after this event.
    pub available: bool,
    /// Announced status index after this event.
    pub status: u64,
    /// The message, one line.
    pub text: String,
    /// When it happened, UTC, RFC 3339 (for people; not interpreted).
    #[serde(default)]
    pub at: String,
}

/// What the file says about one registered service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceState {
    /// Its definition.
    pub registration: Registration,
    /// The identity that owns it, if adopted.
    pub owner: Option<String>,
    /// The last announcement about it, if any (none: never pinged,
    /// "unknown"). Shared with the outbox while it is pending: a state file
    /// is mostly announcements, and copying each was a tenth of start-up.
    pub last: Option<Arc<Announcement>>,
}

/// The replayed content of a state file.
#[derive(Debug, Default, Clone)]
pub struct State {
    /// Registered services by id.
    pub services: BTreeMap<String, ServiceState>,
    /// Announcements not yet delivered, by `seq`.
    pub outbox: BTreeMap<u64, Arc<Announcement>>,
    /// The `seq` the next announcement gets.
    pub next_seq: u64,
    /// Lines in the file (records, not blank lines).
    pub lines: u64,
}

impl State {
    /// Applies one record, as replay and the writer both do. Takes the
    /// record by value and updates services in place: with a big file,
    /// start-up is mostly this function, and cloning every announcement
    /// twice and re-inserting every re-registered service was half of it.
    fn apply(&mut self, record: Record) {
        match record {
            Record::Register(Definition {
                registration,
                owner,
            }) => {
                let statuses = registration.statuses.len() as u64;
                match self.services.get_mut(&registration.service) {
                    Some(state) => {
                        if let Some(last) = &mut state.last
                            && last.status >= statuses
                        {
                            Arc::make_mut(last).status = 0;
                        }
                        state.registration = registration;
                        state.owner = owner;
                    }
                    None => {
                        self.services.insert(
                            registration.service.clone(),
                            ServiceState {
                                registration,
                                owner,
                                last: None,
                            },
                        );
                    }
                }
            }
            Record::Remove { service } => {
                self.services.remove(&service);
            }
            Record::Announce(announcement) => {
                self.next_seq = self.next_seq.max(announcement.seq.saturating_add(1));
                let announcement = Arc::new(announcement);
                if let Some(state) = self.services.get_mut(&announcement.service) {
                    let newer = state.last.as_ref().is_none_or(|l| l.seq < announcement.seq);
                    if newer && announcement.status < state.registration.statuses.len() as u64 {
                        state.last = Some(announcement.clone());
                    }
                }
                self.outbox.insert(announcement.seq, announcement);
            }
            Record::Delivered { seq } => {
                self.outbox.remove(&seq);
            }
        }
        self.lines += 1;
    }

    /// How many lines a compacted file would have.
    pub fn live_lines(&self) -> u64 {
        let mut lines = self.services.len() as u64;
        for state in self.services.values() {
            if let Some(last) = &state.last {
                // A pending last announcement is counted with the outbox below.
                lines += if self.outbox.contains_key(&last.seq) {
                    0
                } else {
                    2
                };
            }
        }
        lines + self.outbox.len() as u64
    }

    /// The records of a compacted file that replays to this same state:
    /// outbox entries that are not a service's last announcement (they must
    /// not set any state, so they come before the registrations), then the
    /// registrations, then each service's last announcement.
    pub fn compacted(&self) -> Vec<Record> {
        let lasts: HashSet<u64> = self
            .services
            .values()
            .filter_map(|s| s.last.as_ref().map(|l| l.seq))
            .collect();
        let mut records: Vec<Record> = self
            .outbox
            .values()
            .filter(|a| !lasts.contains(&a.seq))
            .map(|a| Record::Announce(Announcement::clone(a)))
            .collect();
        records.extend(self.services.values().map(|s| {
            Record::Register(Definition {
                registration: s.registration.clone(),
                owner: s.owner.clone(),
            })
        }));
        for state in self.services.values() {
            if let Some(last) = &state.last {
                records.push(Record::Announce(Announcement::clone(last)));
                if !self.outbox.contains_key(&last.seq) {
                    records.push(Record::Delivered { seq: last.seq });
                }
            }
        }
        records
    }
}

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

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io {
        action,
        path,
        source,
    }
}

/// The result of reading a state file.
#[derive(Debug)]
pub struct Replay {
    /// The replayed state.
    pub state: State,
    /// Byte length of the good part of the file (everything but a torn last line).
    pub good_len: u64,
    /// A torn last line (crash mid-write), dropped: its 1-based line number.
    pub torn_line: Option<u64>,
    /// The last line is complete but has no `\n` (a hand edit); one is added before appending.
    pub missing_newline: bool,
}

/// Reads and replays a state file without changing it. A missing file is an
/// empty state.
pub fn replay(path: &Path) -> Result<Replay, StoreError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_error("reading", path)(e)),
    };
    replay_bytes(path, &bytes)
}

/// Replays the content of a state file held in memory; `path` only names it
/// in errors. What [`replay`] does after reading the file; public for the
/// fuzz target and tests.
pub fn replay_bytes(path: &Path, bytes: &[u8]) -> Result<Replay, StoreError> {
    let mut state = State::default();
    let mut seen = Seqs::default();
    let mut replay = Replay {
        state: State::default(),
        good_len: bytes.len() as u64,
        torn_line: None,
        missing_newline: false,
    };
    let mut offset = 0usize;
    let mut number = 0u64;
    while offset < bytes.len() {
        number += 1;
        let (line, next, terminated) = match bytes[offset..].iter().position(|&b| b == b'\n') {
            Some(i) => (&bytes[offset..offset + i], offset + i + 1, true),
            None => (&bytes[offset..], bytes.len(), false),
        };
        let bad = |reason: String| StoreError::BadLine {
            path: path.to_path_buf(),
            line: number,
            reason,
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            offset = next;
            continue;
        }
        match parse_record(line) {
            Ok(record) => {
                check_record(&record, &state, &mut seen).map_err(bad)?;
                state.apply(record);
                replay.missing_newline = !terminated;
            }
            Err(_) if !terminated => {
                replay.torn_line = Some(number);
                replay.good_len = offset as u64;
                break;
            }
            Err(reason) => return Err(bad(reason)),
        }
        offset = next;
    }
    replay.state = state;
    Ok(replay)
}

/// A record's `op` alone (every other field skipped without allocating).
#[derive(Deserialize)]
struct Op<'a> {
    #[serde(borrow)]
    op: Option<std::borrow::Cow<'a, str>>,
}

/// The fields of a `remove` record.
#[derive(Deserialize)]
struct RemoveFields {
    service: String,
}

/// The fields of a `delivered` record.
#[derive(Deserialize)]
struct DeliveredFields {
    seq: u64,
}

/// Parses one line: the `op` first (off the start of the line when it is
/// the first field, as procjon writes it; else by a pass that skips every
/// other field), then the line straight into that op's fields. Same result
/// as deserializing [`Record`] (an internally tagged enum; unknown fields,
/// `op` included, are ignored) for any object, but serde no longer buffers
/// every line into an intermediate tree first, which was about a third of
/// start-up time with a big state file.
fn parse_record(line: &[u8]) -> Result<Record, String> {
    let text = std::str::from_utf8(line).map_err(|_| "not valid UTF-8".to_string())?;
    // procjon writes `op` first: read it straight off the line when it is
    // there (and nowhere else: a second `op` is an error serde reports).
    let written = text
        .strip_prefix(r#"{"op":""#)
        .filter(|rest| !rest.contains(r#""op""#))
        .and_then(|rest| rest.split_once('"'))
        .map(|(op, _)| op)
        .filter(|op| !op.contains('\\'));
    let op = match written {
        Some(op) => std::borrow::Cow::Borrowed(op),
        None => serde_json::from_str::<Op<'_>>(text)
            .map_err(|e| field_error(&e))?
            .op
            .ok_or("missing field `op`")?,
    };
    let fields = match op.as_ref() {
        "register" => serde_json::from_str(text).map(Record::Register),
        "remove" => {
            serde_json::from_str(text).map(|f: RemoveFields| Record::Remove { service: f.service })
        }
        "announce" => serde_json::from_str(text).map(Record::Announce),
        "delivered" => {
            serde_json::from_str(text).map(|f: DeliveredFields| Record::Delivered { seq: f.seq })
        }
        other => {
            return Err(format!(
                "unknown variant `{other}`, expected one of `register`, `remove`, `announce`, `delivered` \
                 (op must be register, remove, announce or delivered)"
            ));
        }
    };
    fields.map_err(|e| field_error(&e))
}

/// serde's message without its "at line 1 column N" (a record is one line,
/// and the error names the file's line already), with the column kept.
fn field_error(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let position = format!(" at line {} column {}", err.line(), err.column());
    match text.strip_suffix(&position) {
        Some(message) => format!("{message} (column {})", err.column()),
        None => text,
    }
}

/// The announcement `seq`s a replay has seen. procjon writes them in
/// increasing order, so each new one goes on the end of a sorted vector,
/// found again by binary search; a hand-edited file with one out of order
/// switches to a hash set. (A hash set throughout was a twentieth of start-up.)
#[derive(Default)]
struct Seqs {
    sorted: Vec<u64>,
    unordered: Option<HashSet<u64>>,
}

impl Seqs {
    /// Adds `seq`; `false` when it was seen before.
    fn insert(&mut self, seq: u64) -> bool {
        if let Some(set) = &mut self.unordered {
            return set.insert(seq);
        }
        match self.sorted.last() {
            Some(&last) if seq <= last => {
                if self.sorted.binary_search(&seq).is_ok() {
                    return false;
                }
                let mut set: HashSet<u64> = self.sorted.drain(..).collect();
                set.insert(seq);
                self.unordered = Some(set);
                true
            }
            _ => {
                self.sorted.push(seq);
                true
            }
        }
    }
}

/// Announcement `seq`s stay below 2^53: exact in every JSON tool (jq,
/// JavaScript), and far from `u64::MAX`, where the next `seq` would overflow
/// and repeat one already in the file.
pub const MAX_SEQ: u64 = 1 << 53;

/// Checks what serde can't: a registration's limits and unique `seq`s.
fn check_record(record: &Record, state: &State, seen: &mut Seqs) -> Result<(), String> {
    match record {
        Record::Register(Definition {
            registration,
            owner,
        }) => {
            registration.validate().map_err(|e| e.message)?;
            match owner {
                Some(owner) if owner.is_empty() => Err(
                    "owner is empty; remove the field to let the next agent adopt the service"
                        .into(),
                ),
                _ => Ok(()),
            }
        }
        Record::Announce(a) => {
            if a.seq >= MAX_SEQ {
                return Err(format!(
                    "seq {} is too large; it must be below {MAX_SEQ} (2^53)",
                    a.seq
                ));
            }
            if !seen.insert(a.seq) {
                return Err(format!(
                    "seq {} is used by an earlier announce line; each needs its own",
                    a.seq
                ));
            }
            if a.text.contains('\n') {
                return Err("text must be one line".into());
            }
            match state.services.get(&a.service) {
                Some(s) if a.status >= s.registration.statuses.len() as u64 => Err(format!(
                    "status {} is out of range for service {} ({} statuses registered)",
                    a.status,
                    a.service,
                    s.registration.statuses.len()
                )),
                _ => Ok(()),
            }
        }
        Record::Remove { .. } | Record::Delivered { .. } => Ok(()),
    }
}

/// Compact when the file holds this many times the live lines (plus slack).
const COMPACT_FACTOR: u64 = 4;
/// Never compact files smaller than this many lines over the live lines.
const COMPACT_SLACK: u64 = 10_000;

fn wants_compaction(state: &State) -> bool {
    state.lines > COMPACT_FACTOR * state.live_lines() + COMPACT_SLACK
}

/// The state file, opened for appending after replay.
#[derive(Debug)]
pub struct StoreFile {
    path: PathBuf,
    file: File,
    /// Bytes known to be whole records; a failed append is cut back to here.
    good_len: u64,
    /// The file ends without `\n`: write one before the next record.
    missing_newline: bool,
}

/// Replays `path`, repairs a torn last line, compacts when worthwhile, and
/// opens the file for appending. Creates the file when missing.
pub fn open(path: &Path) -> Result<(State, StoreFile), StoreError> {
    let replay = replay(path)?;
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io_error("opening", path))?;
    if let Some(line) = replay.torn_line {
        log::warn!(
            "state file {} line {line}: incomplete last line (procjon stopped while writing it); dropped it",
            path.display()
        );
        file.set_len(replay.good_len)
            .map_err(io_error("truncating", path))?;
        file.sync_all().map_err(io_error("syncing", path))?;
    }
    let mut store = StoreFile {
        path: path.to_path_buf(),
        file,
        good_len: replay.good_len,
        missing_newline: replay.missing_newline,
    };
    let mut state = replay.state;
    if wants_compaction(&state) {
        store.compact(&mut state)?;
    }
    Ok((state, store))
}

impl StoreFile {
    /// The path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends records and syncs them to disk. On failure the file is cut
    /// back to its last whole record, so a retry can't leave a torn line.
    pub fn append(&mut self, records: &[Record]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(records.len() * 128);
        if self.missing_newline {
            buf.push(b'\n');
        }
        for record in records {
            encode_record(record, &mut buf);
        }
        let result = self
            .file
            .write_all(&buf)
            .map_err(io_error("appending to", &self.path))
            .and_then(|()| {
                self.file
                    .sync_data()
                    .map_err(io_error("syncing", &self.path))
            });
        match result {
            Ok(()) => {
                self.good_len += buf.len() as u64;
                self.missing_newline = false;
                Ok(())
            }
            Err(err) => {
                let _ = self.file.set_len(self.good_len);
                Err(err)
            }
        }
    }

    /// Rewrites the file as the live state only: write a temp file, fsync,
    /// rename over the old one, fsync the directory.
    pub fn compact(&mut self, state: &mut State) -> Result<(), StoreError> {
        let records = state.compacted();
        let tmp = self.path.with_extension("jsonl.compacting");
        let mut buf = Vec::with_capacity(records.len() * 128);
        for record in &records {
            encode_record(record, &mut buf);
        }
        let write = || -> Result<File, StoreError> {
            let mut file = File::create(&tmp).map_err(io_error("creating", &tmp))?;
            file.write_all(&buf).map_err(io_error("writing", &tmp))?;
            file.sync_all().map_err(io_error("syncing", &tmp))?;
            std::fs::rename(&tmp, &self.path).map_err(io_error("renaming over", &self.path))?;
            sync_dir(&self.path)?;
            OpenOptions::new()
                .append(true)
                .open(&self.path)
                .map_err(io_error("reopening", &self.path))
        };
        match write() {
            Ok(file) => {
                log::info!(
                    "compacted state file {}: {} lines to {}",
                    self.path.display(),
                    state.lines,
                    records.len()
                );
                self.file = file;
                self.good_len = buf.len() as u64;
                self.missing_newline = false;
                state.lines = records.len() as u64;
                Ok(())
            }
            Err(err) => {
                let _ = std::fs::remove_file(&tmp);
                Err(err)
            }
        }
    }
}

fn sync_dir(path: &Path) -> Result<(), StoreError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("syncing the directory of", path))
}

/// Appends one record as a JSON line to `buf`.
pub fn encode_record(record: &Record, buf: &mut Vec<u8>) {
    // Records hold only strings, integers and finite floats: serializing can't fail.
    if serde_json::to_writer(&mut *buf, record).is_ok() {
        buf.push(b'\n');
    }
}

/// The current time as RFC 3339 UTC with seconds, e.g. `2026-11-23T11:04:55Z`.
pub fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

/// Formats Unix seconds as RFC 3339 UTC.
pub fn rfc3339(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let rem = unix_secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Work for the [`Writer`] thread.
#[derive(Debug)]
pub enum StoreCmd {
    /// Append records; announcements among them go on to the notifier. When
    /// `ack` is given it gets the result once the records are on disk.
    Append {
        /// Records in the order they happened.
        records: Vec<Record>,
        /// Told once they are durable (or not).
        ack: Option<Sender<Result<(), String>>>,
    },
    /// Reply once everything sent before is on disk.
    Barrier(Sender<Result<(), String>>),
    /// These announcements reached the webhook.
    Delivered(Vec<u64>),
}

/// Shared, lock-free facts about the store for status reporting.
#[derive(Debug, Default)]
pub struct StoreHealth {
    /// Set when the last append failed; cleared when one succeeds.
    pub failing: AtomicBool,
    /// Lines in the file.
    pub lines: AtomicU64,
}

/// The thread that owns the state file at run time.
pub struct Writer {
    store: StoreFile,
    state: State,
    inbox: Receiver<StoreCmd>,
    notifier: Sender<Vec<Announcement>>,
    health: Arc<StoreHealth>,
    /// Records that could not be written yet; retried before new ones.
    unwritten: Vec<Record>,
}

/// How often a failed append is retried while nothing else arrives.
const RETRY_EVERY: Duration = Duration::from_secs(1);

impl Writer {
    /// A writer for `store`, whose replayed content is `state`.
    pub fn new(
        store: StoreFile,
        state: State,
        inbox: Receiver<StoreCmd>,
        notifier: Sender<Vec<Announcement>>,
        health: Arc<StoreHealth>,
    ) -> Writer {
        health.lines.store(state.lines, Ordering::Relaxed);
        Writer {
            store,
            state,
            inbox,
            notifier,
            health,
            unwritten: Vec::new(),
        }
    }

    /// Runs until every sender is gone.
    pub fn run(mut self) {
        loop {
            let first = match self.inbox.recv_timeout(RETRY_EVERY) {
                Ok(cmd) => Some(cmd),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            if first.is_none() && self.unwritten.is_empty() {
                continue;
            }
            let mut cmds: Vec<StoreCmd> = first.into_iter().collect();
            cmds.extend(self.inbox.try_iter().take(4096));
            self.commit(cmds);
        }
    }

    /// One group commit: append everything, fsync once, then acknowledge.
    fn commit(&mut self, cmds: Vec<StoreCmd>) {
        let mut records = std::mem::take(&mut self.unwritten);
        let mut acks = Vec::new();
        let mut announced = Vec::new();
        for cmd in cmds {
            match cmd {
                StoreCmd::Append { records: new, ack } => {
                    for record in &new {
                        if let Record::Announce(a) = record {
                            announced.push(a.clone());
                        }
                    }
                    records.extend(new);
                    acks.extend(ack);
                }
                StoreCmd::Barrier(ack) => acks.push(ack),
                StoreCmd::Delivered(seqs) => {
                    records.extend(seqs.into_iter().map(|seq| Record::Delivered { seq }));
                }
            }
        }
        let result = self.store.append(&records);
        let reply = match &result {
            Ok(()) => {
                for record in records {
                    self.state.apply(record);
                }
                if self.health.failing.swap(false, Ordering::Relaxed) {
                    log::info!(
                        "state file {} is writable again",
                        self.store.path().display()
                    );
                }
                Ok(())
            }
            Err(err) => {
                if !self.health.failing.swap(true, Ordering::Relaxed) {
                    log::error!("{err}; keeping the records in memory and retrying every second");
                }
                self.unwritten = records;
                Err(err.to_string())
            }
        };
        for ack in acks {
            let _ = ack.send(reply.clone());
        }
        // Announcements go out even when the disk failed: telling people beats
        // waiting for a disk that may never come back.
        if !announced.is_empty() {
            let _ = self.notifier.send(announced);
        }
        if result.is_ok()
            && wants_compaction(&self.state)
            && let Err(err) = self.store.compact(&mut self.state)
        {
            log::error!("{err}; compaction will be tried again later");
        }
        self.health.lines.store(self.state.lines, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(service: &str, statuses: &[&str]) -> Record {
        Record::Register(Definition {
            registration: Registration {
                service: service.into(),
                timeout_s: 10.0,
                statuses: statuses.iter().map(|s| s.to_string()).collect(),
            },
            owner: Some("team-a".into()),
        })
    }

    fn announce(seq: u64, service: &str, available: bool, status: u64) -> Record {
        Record::Announce(Announcement {
            seq,
            service: service.into(),
            available,
            status,
            text: format!("{service} event {seq}"),
            at: String::new(),
        })
    }

    fn replay_str(text: &str) -> Result<Replay, StoreError> {
        replay_bytes(Path::new("state.jsonl"), text.as_bytes())
    }

    #[test]
    fn replays_hand_written_lines() {
        let text = r#"{"op":"register","service":"web-1","timeout_s":10,"statuses":["ok","degraded"]}

{"op":"announce","seq":1,"service":"web-1","available":true,"status":0,"text":"web-1 is available","at":"2026-11-23T11:00:00Z"}
{"op":"announce","seq":2,"service":"web-1","available":true,"status":1,"text":"web-1 status changed to degraded (was ok)"}
{"op":"delivered","seq":1}
{"op":"register","service":"db","timeout_s":0.5,"statuses":["ok"]}
{"op":"register","service":"gone","timeout_s":1,"statuses":["ok"]}
{"op":"remove","service":"gone"}
"#;
        let replay = replay_str(text).unwrap();
        let state = replay.state;
        assert_eq!(replay.torn_line, None);
        assert_eq!(state.services.len(), 2);
        let web = &state.services["web-1"];
        let last = web.last.as_ref().unwrap();
        assert!(last.available);
        assert_eq!(last.status, 1);
        assert_eq!(state.services["db"].last, None);
        assert_eq!(state.outbox.keys().copied().collect::<Vec<_>>(), vec![2]);
        assert_eq!(state.next_seq, 3);
        assert_eq!(state.lines, 7);
    }

    #[test]
    fn seqs_find_repeats_in_order_and_out_of_order() {
        let mut seqs = Seqs::default();
        assert!(seqs.insert(3) && seqs.insert(7) && seqs.insert(9));
        assert!(!seqs.insert(7), "a repeat behind the largest");
        assert!(!seqs.insert(9), "a repeat of the largest");
        assert!(seqs.unordered.is_none());
        assert!(seqs.insert(5), "out of order, new");
        assert!(seqs.unordered.is_some());
        assert!(!seqs.insert(3) && !seqs.insert(5) && !seqs.insert(9));
        assert!(seqs.insert(10) && !seqs.insert(10));
    }

    #[test]
    fn parse_record_reads_what_the_tagged_enum_reads() {
        for line in [
            r#"{"op":"register","service":"a","timeout_s":1.5,"statuses":["ok","bad"],"x":[1]}"#,
            r#"{"service":"a","timeout_s":2,"statuses":["ok"],"op":"register"}"#,
            r#"{"op":"register","service":"a","timeout_s":0.1,"statuses":["ok"],"owner":"team-a"}"#,
            r#"{"op":"remove","service":"a","note":"by hand"}"#,
            r#"{"op":"remov\u0065","service":"a"}"#,
            r#"{ "op" : "remove","service":"a"}"#,
            r#"{"op":"announce","seq":3,"service":"a","available":false,"status":1,"text":"a \"x\"","at":"t"}"#,
            r#"{"op":"announce","seq":4,"service":"a","available":true,"status":0,"text":"a"}"#,
            r#"{"op":"delivered","seq":3}"#,
        ] {
            let tagged: Record = serde_json::from_str(line).unwrap();
            assert_eq!(parse_record(line.as_bytes()).unwrap(), tagged, "{line}");
        }
        for line in [
            r#"{"op":"register","service":"a","statuses":["ok"]}"#,
            r#"{"op":"delivered"}"#,
            r#"{"op":5}"#,
            r#"{"op":"remove","service":"a","op":"delivered"}"#,
            r#"[1]"#,
        ] {
            assert!(serde_json::from_str::<Record>(line).is_err(), "{line}");
            assert!(parse_record(line.as_bytes()).is_err(), "{line}");
        }
    }

    #[test]
    fn torn_last_line_is_dropped_but_a_bad_middle_line_is_an_error() {
        let good =
            "{\"op\":\"register\",\"service\":\"a\",\"timeout_s\":1,\"statuses\":[\"ok\"]}\n";
        let torn = format!("{good}{{\"op\":\"announce\",\"seq\":1,\"serv");
        let replay = replay_str(&torn).unwrap();
        assert_eq!(replay.torn_line, Some(2));
        assert_eq!(replay.good_len, good.len() as u64);
        assert_eq!(replay.state.services.len(), 1);

        let bad_middle = format!("{good}{{\"op\":\"register\"}}\n{good}");
        let err = replay_str(&bad_middle).unwrap_err().to_string();
        assert!(err.starts_with("state file state.jsonl line 2: "), "{err}");

        let bad_last_with_newline = format!("{good}nonsense\n");
        let err = replay_str(&bad_last_with_newline).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");

        let complete_without_newline = good.trim_end();
        let replay = replay_str(complete_without_newline).unwrap();
        assert!(replay.missing_newline);
        assert_eq!(replay.state.services.len(), 1);
    }

    #[test]
    fn refuses_invalid_records_with_reasons() {
        for (text, needle) in [
            (
                r#"{"op":"register","service":"a b","timeout_s":1,"statuses":["ok"]}"#,
                "character",
            ),
            (
                r#"{"op":"register","service":"a","timeout_s":0,"statuses":["ok"]}"#,
                "timeout_s",
            ),
            (
                r#"{"op":"register","service":"a","timeout_s":1,"statuses":[]}"#,
                "statuses",
            ),
            (r#"{"op":"frobnicate","service":"a"}"#, "op must be"),
            (r#"{"service":"a"}"#, "op"),
            ("\u{0}\u{1}", "expected"),
        ] {
            let err = replay_str(&format!("{text}\n")).unwrap_err().to_string();
            assert!(
                err.contains("line 1") && err.contains(needle),
                "{text}: {err}"
            );
        }
        let dup = format!(
            "{}\n{}\n",
            serde_json::to_string(&announce(1, "a", true, 0)).unwrap(),
            serde_json::to_string(&announce(1, "b", true, 0)).unwrap()
        );
        let err = replay_str(&dup).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("seq 1"), "{err}");
        // Found by hand-editing: seq u64::MAX made the next announcement overflow.
        let huge = format!(
            "{}\n",
            serde_json::to_string(&announce(u64::MAX, "a", true, 0)).unwrap()
        );
        let err = replay_str(&huge).unwrap_err().to_string();
        assert!(err.contains("line 1") && err.contains("too large"), "{err}");
    }

    #[test]
    fn compaction_replays_to_the_same_state() {
        let mut state = State::default();
        let records = vec![
            reg("a", &["ok", "bad"]),
            reg("b", &["ok"]),
            announce(1, "a", true, 0),
            announce(2, "a", true, 1),
            Record::Delivered { seq: 1 },
            announce(3, "b", true, 0),
            Record::Delivered { seq: 3 },
            announce(4, "b", false, 0),
            Record::Delivered { seq: 4 },
            reg("c", &["ok"]),
            announce(5, "c", true, 0),
            Record::Remove {
                service: "c".into(),
            },
            reg("c", &["ok"]),
        ];
        for record in &records {
            state.apply(record.clone());
        }
        let compacted = state.compacted();
        assert_eq!(compacted.len() as u64, state.live_lines());
        let mut again = State::default();
        for record in compacted {
            again.apply(record);
        }
        assert_eq!(again.services, state.services);
        assert_eq!(again.outbox, state.outbox);
        assert_eq!(again.next_seq, state.next_seq);
        // The orphaned pending announcement of the removed "c" is kept but sets no state.
        assert!(again.outbox.contains_key(&5));
        assert_eq!(again.services["c"].last, None);
    }

    #[test]
    fn reregistering_with_fewer_statuses_resets_the_status() {
        let mut state = State::default();
        state.apply(reg("a", &["ok", "bad"]));
        state.apply(announce(1, "a", true, 1));
        state.apply(reg("a", &["ok"]));
        assert_eq!(state.services["a"].last.as_ref().unwrap().status, 0);
    }

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_431_895), "2026-11-23T11:04:55Z");
    }
}
