//! Replay: reads a state file top to bottom into a [`State`], refusing any
//! line it can't trust with its line number and the reason. This is the
//! parser people's hand edits meet, so every error says which line, what is
//! wrong and what to do. Runs at start-up (on the main thread, before any
//! other thread exists) and in `procjon check-state`; changes nothing.

use super::Timestamp;
use super::record::{LastSeen, MAX_SEQ, compacted_lines, compacted_records};
use super::{Announcement, Interner, Pending, Record, ServiceState, Silence, StoreError, Subject};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;

/// The replayed content of a state file.
#[derive(Debug, Default)]
pub struct State {
    /// Registered services by id.
    pub services: HashMap<Arc<str>, ServiceState>,
    /// Announcements not yet delivered to every sink, by `seq`.
    pub outbox: BTreeMap<u64, Pending>,
    /// The `seq` the next announcement gets.
    pub next_seq: u64,
    /// Lines in the file (records, not blank lines).
    pub lines: u64,
    /// When procjon last ran, if the file says.
    pub last_seen: Option<LastSeen>,
    /// The shared status lists and owners of the definitions.
    pub(crate) interner: Interner,
    /// While replaying: the outbox as one word per announcement (a file
    /// may hold 100,000 announcements whose delivery marks come later) and
    /// the sinks' marks apart; [`State::finish`] makes [`State::outbox`].
    pending: BTreeMap<u64, Arc<Announcement>>,
    marks: HashMap<u64, Vec<Arc<str>>>,
}

impl State {
    /// Applies one record. Definitions get the shared copies of their
    /// status list and owner, announcements the service's own id.
    fn apply(&mut self, record: Record) {
        match record {
            Record::Register(mut definition) => {
                self.interner.share(&mut definition);
                match self.services.get_mut(&definition.service) {
                    Some(state) => {
                        definition.service = state.definition.service.clone();
                        state.redefine(definition);
                    }
                    None => {
                        let state = ServiceState {
                            definition,
                            last: None,
                            policy: None,
                        };
                        self.services
                            .insert(state.definition.service.clone(), state);
                    }
                }
            }
            Record::Remove { service } => {
                self.services.remove(service.as_str());
            }
            Record::Announce(mut announcement) => {
                self.next_seq = self.next_seq.max(announcement.seq.saturating_add(1));
                let state = self.services.get_mut(&announcement.service);
                if let Some(own) = Arc::get_mut(&mut announcement) {
                    let definition = state.as_ref().map(|s| &s.definition);
                    if let Some(definition) = definition {
                        own.service = definition.service.clone();
                    }
                    own.subject = subject(&mut self.interner, own, definition);
                }
                if let Some(state) = state {
                    state.announced(&announcement);
                }
                if announcement.is_posted() {
                    self.pending.insert(announcement.seq, announcement);
                }
            }
            Record::Silence {
                service,
                until,
                by,
                reason,
            } => {
                if let (Some(state), Timestamp::Seconds(until)) =
                    (self.services.get_mut(service.as_str()), until)
                {
                    let by = self.interner.owner(&by);
                    state.policy().silence = Some(Silence {
                        until,
                        by,
                        reason: reason.map(String::into_boxed_str),
                    });
                }
            }
            Record::Unsilence { service } => {
                if let Some(state) = self.services.get_mut(service.as_str()) {
                    if let Some(policy) = &mut state.policy {
                        policy.silence = None;
                    }
                    state.tidy();
                }
            }
            Record::Delivered { seq, sink: None } => {
                if self.pending.remove(&seq).is_some() {
                    self.marks.remove(&seq);
                }
            }
            Record::Delivered {
                seq,
                sink: Some(sink),
            } => {
                if self.pending.contains_key(&seq) {
                    let marks = self.marks.entry(seq).or_default();
                    if !marks.contains(&sink) {
                        marks.push(sink);
                    }
                }
            }
            Record::Alive { .. } | Record::Stop { .. } => {
                self.last_seen = LastSeen::of(&record).or(self.last_seen);
            }
        }
        self.lines += 1;
    }

    /// Makes the outbox from what the replay gathered.
    fn finish(&mut self) {
        let mut marks = std::mem::take(&mut self.marks);
        for (seq, announcement) in std::mem::take(&mut self.pending) {
            let mut pending = Pending::new(announcement);
            for sink in marks.remove(&seq).into_iter().flatten() {
                pending.mark(sink);
            }
            self.outbox.insert(seq, pending);
        }
    }

    /// How many lines a compacted file would have.
    pub fn live_lines(&self) -> u64 {
        compacted_lines(self.services.values(), &self.outbox, self.last_seen)
    }

    /// The records of a compacted file that replays to this same state (see
    /// [`compacted_records`]), services sorted by id.
    pub fn compacted(&self) -> Vec<Record> {
        let mut services: Vec<&ServiceState> = self.services.values().collect();
        services.sort_unstable_by(|a, b| a.definition.service.cmp(&b.definition.service));
        compacted_records(services.into_iter(), &self.outbox, self.last_seen)
    }
}

/// The shared subject of `announcement`: as its line gives it, or, when
/// the line gives none (files from before subjects were written, hand
/// edits), from the service's `definition` as the file stands there.
/// None for procjon's own announcements.
fn subject(
    interner: &mut Interner,
    announcement: &Announcement,
    definition: Option<&super::Definition>,
) -> Option<Arc<Subject>> {
    let mut subject = match (announcement.subject.as_deref(), definition) {
        (Some(subject), _) => subject.clone(),
        (None, Some(definition)) => {
            let owned;
            let status = match usize::try_from(announcement.status)
                .ok()
                .and_then(|i| definition.statuses.get(i))
            {
                Some(name) => name.as_str(),
                None => {
                    owned = definition.status_name(announcement.status);
                    &owned
                }
            };
            return Some(interner.subject_of(definition.owner.as_ref(), status, None));
        }
        (None, None) => return None,
    };
    if let Some(owner) = &subject.owner {
        subject.owner = Some(interner.owner(owner));
    }
    (subject != Subject::default()).then(|| interner.subject(subject))
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

/// Reads and replays a state file without changing it, a line at a time. A
/// missing file is an empty state.
pub fn replay(path: &Path) -> Result<Replay, StoreError> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return replay_bytes(path, b""),
        Err(source) => {
            return Err(StoreError::Io {
                action: "reading",
                path: path.to_path_buf(),
                source,
            });
        }
    };
    replay_from(path, BufReader::with_capacity(1 << 16, file))
}

/// Replays the content of a state file held in memory; `path` only names it
/// in errors. For the fuzz target and tests.
pub fn replay_bytes(path: &Path, bytes: &[u8]) -> Result<Replay, StoreError> {
    replay_from(path, bytes)
}

/// Replays lines read from `input`; `path` names the file in errors.
fn replay_from(path: &Path, mut input: impl BufRead) -> Result<Replay, StoreError> {
    let mut state = State::default();
    let mut seen = Seqs::default();
    let mut torn_line = None;
    let mut missing_newline = false;
    let mut offset = 0u64;
    let mut number = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = input
            .read_until(b'\n', &mut line)
            .map_err(|source| StoreError::Io {
                action: "reading",
                path: path.to_path_buf(),
                source,
            })?;
        if read == 0 {
            break;
        }
        number += 1;
        let terminated = line.last() == Some(&b'\n');
        let content = if terminated {
            &line[..line.len() - 1]
        } else {
            &line[..]
        };
        let bad = |reason: String| StoreError::BadLine {
            path: path.to_path_buf(),
            line: number,
            reason,
        };
        if !content.iter().all(u8::is_ascii_whitespace) {
            match parse_record(content) {
                Ok(record) => {
                    check_record(&record, &state, &mut seen).map_err(bad)?;
                    state.apply(record);
                    missing_newline = !terminated;
                }
                Err(_) if !terminated => {
                    torn_line = Some(number);
                    break;
                }
                Err(reason) => return Err(bad(reason)),
            }
        }
        offset += read as u64;
    }
    state.finish();
    Ok(Replay {
        state,
        good_len: offset,
        torn_line,
        missing_newline,
    })
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
    #[serde(default)]
    sink: Option<Arc<str>>,
}

/// The fields of an `alive` or `stop` record.
#[derive(Deserialize)]
struct SeenFields {
    at: Timestamp,
}

/// Parses one line: the `op` first (off the start of the line when it is
/// the first field, as procjon writes it; else by a pass that skips every
/// other field), then the line straight into that op's fields. Same result
/// as deserializing [`Record`] (an internally tagged enum; unknown fields,
/// `op` included, are ignored) for any object, without serde buffering
/// every line into an intermediate tree first (start-up is mostly this).
pub(super) fn parse_record(line: &[u8]) -> Result<Record, String> {
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
        "announce" => serde_json::from_str(text).map(|a| Record::Announce(Arc::new(a))),
        "delivered" => serde_json::from_str(text).map(|f: DeliveredFields| Record::Delivered {
            seq: f.seq,
            sink: f.sink,
        }),
        "alive" => serde_json::from_str(text).map(|f: SeenFields| Record::Alive { at: f.at }),
        "stop" => serde_json::from_str(text).map(|f: SeenFields| Record::Stop { at: f.at }),
        "silence" | "unsilence" => serde_json::from_str(text),
        other => {
            return Err(format!(
                "unknown variant `{other}`, expected one of `register`, `remove`, `announce`, `delivered`, `alive`, `stop`, `silence`, `unsilence` \
                 (op must be register, remove, announce, delivered, alive, stop, silence or unsilence)"
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
/// increasing order, one after the other, so those are kept as runs of
/// consecutive numbers (a file of a million announcements is a handful of
/// runs, not a million numbers); a seq below the largest one seen (a
/// compacted or hand-edited file) goes into a hash set.
#[derive(Default)]
struct Seqs {
    /// Inclusive ranges, sorted and disjoint, of seqs each above every
    /// seq before it.
    runs: Vec<(u64, u64)>,
    /// Seqs that came after a larger one.
    unordered: HashSet<u64>,
}

impl Seqs {
    /// Adds `seq`; `false` when it was seen before.
    fn insert(&mut self, seq: u64) -> bool {
        match self.runs.last_mut() {
            Some((_, end)) if seq == end.saturating_add(1) => {
                *end = seq;
                true
            }
            Some(&mut (_, end)) if seq <= end => {
                let in_run = self
                    .runs
                    .binary_search_by(|&(first, last)| {
                        if last < seq {
                            std::cmp::Ordering::Less
                        } else if first > seq {
                            std::cmp::Ordering::Greater
                        } else {
                            std::cmp::Ordering::Equal
                        }
                    })
                    .is_ok();
                !in_run && self.unordered.insert(seq)
            }
            _ => {
                self.runs.push((seq, seq));
                true
            }
        }
    }
}

/// Checks what serde can't: a definition's limits and unique `seq`s.
fn check_record(record: &Record, state: &State, seen: &mut Seqs) -> Result<(), String> {
    match record {
        Record::Register(definition) => {
            definition.validate().map_err(|e| e.message)?;
            match &definition.owner {
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
                Some(s) if a.status >= s.definition.status_count() => Err(format!(
                    "status {} is out of range for service {} ({} statuses registered)",
                    a.status,
                    a.service,
                    s.definition.status_count()
                )),
                _ => Ok(()),
            }
        }
        Record::Alive { at } | Record::Stop { at } => match at {
            Timestamp::Seconds(_) => Ok(()),
            Timestamp::Text(_) => Err(format!(
                "at {:?} is not a time procjon can read; write RFC 3339 UTC to the second, like 2026-12-03T07:00:00Z",
                at.to_string()
            )),
        },
        Record::Silence {
            until, by, reason, ..
        } => {
            if matches!(until, Timestamp::Text(_)) {
                return Err(format!(
                    "until {:?} is not a time procjon can read; write RFC 3339 UTC to the second, like 2026-12-03T07:00:00Z",
                    until.to_string()
                ));
            }
            if by.is_empty() {
                return Err("by is empty; name who asked for the silence".into());
            }
            if let Some(reason) = reason {
                crate::frame::validate_text("reason", reason).map_err(|e| e.message)?;
            }
            Ok(())
        }
        Record::Remove { .. } | Record::Delivered { .. } | Record::Unsilence { .. } => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Definition;

    fn reg(service: &str, statuses: &[&str]) -> Record {
        Record::Register(Definition {
            service: service.into(),
            timeout_s: 10.0,
            statuses: statuses.iter().map(|s| s.to_string()).collect(),
            owner: Some("team-a".into()),
            policy: None,
        })
    }

    fn announce(seq: u64, service: &str, available: bool, status: u64) -> Record {
        Record::Announce(Arc::new(Announcement {
            seq,
            service: service.into(),
            available,
            status,
            text: format!("{service} event {seq}").into(),
            ..Default::default()
        }))
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
        assert!(seqs.unordered.is_empty());
        assert!(seqs.insert(5), "out of order, new");
        assert!(!seqs.unordered.is_empty());
        assert!(!seqs.insert(3) && !seqs.insert(5) && !seqs.insert(9));
        assert!(seqs.insert(10) && !seqs.insert(10));
        // Consecutive seqs make one run.
        let mut seqs = Seqs::default();
        assert!((1..=1000).all(|seq| seqs.insert(seq)));
        assert_eq!(seqs.runs, [(1, 1000)]);
        assert!(!seqs.insert(1) && !seqs.insert(500) && seqs.insert(1002) && !seqs.insert(1002));
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
            Record::Delivered { seq: 1, sink: None },
            announce(3, "b", true, 0),
            Record::Delivered { seq: 3, sink: None },
            announce(4, "b", false, 0),
            Record::Delivered { seq: 4, sink: None },
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
        state.finish();
        let compacted = state.compacted();
        assert_eq!(compacted.len() as u64, state.live_lines());
        let mut again = State::default();
        for record in compacted {
            again.apply(record);
        }
        again.finish();
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
    fn per_sink_marks_keep_an_announcement_until_the_plain_mark() {
        let text = include_str!("../../fuzz/seeds/state_replay/sinks");
        let state = replay_str(text).unwrap().state;
        let marks: Vec<(u64, Vec<&str>)> = state
            .outbox
            .iter()
            .map(|(seq, p)| (*seq, p.delivered_to_sinks().iter().map(|s| &**s).collect()))
            .collect();
        assert_eq!(
            marks,
            vec![
                (2, vec!["slack:web-hosts"]),
                (3, vec!["json:hooks.example.com:3f9a2c1e"]),
            ]
        );
        // The subject is read as written, also for a service that is gone.
        let gone = &state.outbox[&3].announcement;
        let subject = gone.subject.as_deref().unwrap();
        assert_eq!(subject.owner.as_deref(), Some("db-hosts"));
        assert_eq!(subject.status.as_deref(), Some("ok"));
        let changed = state.outbox[&2].announcement.subject.as_deref().unwrap();
        assert_eq!(changed.previous_status.as_deref(), Some("ok"));
        // Compacted, the file says the same.
        let mut compacted = Vec::new();
        for record in state.compacted() {
            crate::store::encode_record(&record, &mut compacted);
        }
        let again = replay_str(std::str::from_utf8(&compacted).unwrap())
            .unwrap()
            .state;
        let said = |s: &State| {
            s.outbox
                .values()
                .map(|p| {
                    let a = &p.announcement;
                    (
                        a.seq,
                        a.text.clone(),
                        a.subject.clone(),
                        p.delivered_to_sinks().to_vec(),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(said(&again), said(&state));
    }

    #[test]
    fn lines_without_a_subject_take_it_from_the_definition() {
        let text = r#"{"op":"register","service":"web-1","timeout_s":10,"statuses":["ok","degraded"],"owner":"team-a"}
{"op":"announce","seq":1,"service":"web-1","available":true,"status":1,"text":"web-1 status changed to degraded (was ok)"}
{"op":"announce","seq":2,"service":"","available":true,"status":0,"text":"procjon is back after 12s (planned restart)"}
"#;
        let state = replay_str(text).unwrap().state;
        let subject = state.outbox[&1].announcement.subject.as_deref().unwrap();
        assert_eq!(subject.owner.as_deref(), Some("team-a"));
        assert_eq!(subject.status.as_deref(), Some("degraded"));
        assert_eq!(subject.previous_status, None);
        assert!(state.outbox[&2].announcement.subject.is_none());
    }
}
