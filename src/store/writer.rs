//! The store writer thread: owns the state file at run time. It appends what
//! the registry and the notifier send it in group commits (one `fsync` per
//! batch), acknowledges registrations once they are durable, forwards new
//! announcements to the notifier, and compacts the file when it has grown.
//!
//! It holds only what the file needs beyond the services' state: the outbox
//! (announcements not yet delivered to every sink, usually none) and the
//! line count. Each sink reports what it delivered; an announcement leaves
//! the outbox once every configured sink has it (a plain `delivered`
//! record), and until then each sink that has it gets its own mark (a
//! `delivered` record naming the sink). With one sink the file is as it
//! always was: one `delivered` record per announcement. The
//! services' state lives once, in the registry; for a compaction the writer
//! asks the registry ([`LiveState`]) for a copy of it, which the registry
//! sends through the writer's own channel, behind every record it sent
//! before: so the copy is exactly what the records appended so far make.

use super::file::{COMPACT_SLACK, compaction_threshold, log_compaction};
use super::{
    Announcement, LastSeen, Pending, Record, ServiceState, StoreError, StoreFile, compacted_records,
};
use crate::progress::Progress;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// What an acknowledgement says: the records are on disk, or why not.
pub type Durable = Result<(), Arc<StoreError>>;

/// Work for the [`Writer`] thread.
#[derive(Debug)]
pub enum StoreCmd {
    /// Append records; announcements among them go on to the sinks. When
    /// `ack` is given it gets the result once the records are on disk.
    Append {
        /// Records in the order they happened.
        records: Vec<Record>,
        /// Told once they are durable (or not).
        ack: Option<Sender<Durable>>,
    },
    /// Reply once everything sent before is on disk.
    Barrier(Sender<Durable>),
    /// Sink `sink` delivered these announcements.
    Delivered {
        /// The sink's id, as its marks in the file name it.
        sink: Arc<str>,
        /// The announcements' `seq`s.
        seqs: Vec<u64>,
    },
    /// Every service's state as the records sent before this command make
    /// it: the file is rewritten as that plus the outbox.
    Compact(Vec<ServiceState>),
}

/// The holder of the services' state, as the writer sees it (the registry).
pub trait LiveState: Send + Sync {
    /// Lines the services take in a compacted file, the outbox not counted.
    fn live_lines(&self) -> u64;
    /// Sends [`StoreCmd::Compact`] with a copy of every service's state
    /// through the store channel, ordered after every record sent before.
    fn send_states(&self);
}

/// A sink as the writer sees it: the id its delivery marks carry, and
/// which announcements it must deliver.
pub struct SinkMarks {
    /// The id, e.g. `slack`.
    pub id: Arc<str>,
    /// Whether it takes an announcement.
    pub takes: Box<dyn Fn(&Announcement) -> bool + Send>,
}

impl SinkMarks {
    /// Whether every sink that takes `pending`'s announcement has it.
    fn all_have(sinks: &[SinkMarks], pending: &Pending) -> bool {
        sinks
            .iter()
            .all(|sink| !(sink.takes)(&pending.announcement) || pending.delivered_to(&sink.id))
    }
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
    /// Announcements not yet delivered to every sink, by `seq`.
    outbox: BTreeMap<u64, Pending>,
    /// The configured sinks, which each must deliver the announcements
    /// they take before these leave the outbox.
    sinks: Vec<SinkMarks>,
    /// Lines in the file.
    lines: u64,
    /// The last `alive` or `stop` record written.
    last_seen: Option<LastSeen>,
    inbox: Receiver<StoreCmd>,
    outlets: Vec<Sender<Vec<Arc<Announcement>>>>,
    health: Arc<StoreHealth>,
    /// Records that could not be written yet; retried before new ones.
    unwritten: Vec<Record>,
    /// Where a compaction gets the services' state from. Weak: the registry
    /// holds a sender to this thread, which must not keep it alive.
    live: Weak<dyn LiveState>,
    /// The file is looked at for compaction once it has more lines than this.
    compact_over: u64,
    /// A [`StoreCmd::Compact`] is on its way.
    compaction_asked: bool,
    /// A `stop` record was written: procjon is stopping.
    stopped: bool,
    progress: Arc<Progress>,
}

/// How often a failed append is retried while nothing else arrives.
const RETRY_EVERY: Duration = Duration::from_secs(1);
/// Most commands taken into one group commit.
const MAX_BATCH: usize = 4096;

/// The channels and shared parts a [`Writer`] works with.
pub struct WriterLinks {
    /// Where the registry and the sinks send work.
    pub inbox: Receiver<StoreCmd>,
    /// Where announcements go once written: each sink's thread.
    pub outlets: Vec<Sender<Vec<Arc<Announcement>>>>,
    /// The sinks that must each deliver the announcements they take.
    pub sinks: Vec<SinkMarks>,
    /// Facts for status reporting.
    pub health: Arc<StoreHealth>,
    /// The registry, for compactions.
    pub live: Weak<dyn LiveState>,
    /// Marks each group commit, so an fsync that never ends is seen.
    pub progress: Arc<Progress>,
}

impl Writer {
    /// A writer for `store`, which holds `lines` lines, the pending
    /// announcements `outbox` and the sign of life `last_seen`. Pending
    /// announcements that every configured sink has already (a sink was
    /// removed from the configuration) leave the outbox with the first write.
    pub fn new(
        store: StoreFile,
        mut outbox: BTreeMap<u64, Pending>,
        lines: u64,
        last_seen: Option<LastSeen>,
        links: WriterLinks,
    ) -> Writer {
        links.health.lines.store(lines, Ordering::Relaxed);
        let mut unwritten = Vec::new();
        outbox.retain(|&seq, pending| {
            let done = SinkMarks::all_have(&links.sinks, pending);
            if done {
                unwritten.push(Record::Delivered { seq, sink: None });
            }
            !done
        });
        Writer {
            store,
            outbox,
            sinks: links.sinks,
            lines,
            last_seen,
            inbox: links.inbox,
            outlets: links.outlets,
            health: links.health,
            unwritten,
            live: links.live,
            compact_over: 0,
            compaction_asked: false,
            stopped: false,
            progress: links.progress,
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
            cmds.extend(self.inbox.try_iter().take(MAX_BATCH));
            let progress = self.progress.clone();
            let _busy = progress.busy();
            let mut commit = Commit::default();
            for cmd in cmds {
                match cmd {
                    StoreCmd::Append { records, ack } => {
                        let nowhere = self.take_in(&records);
                        commit.append(records, ack);
                        commit.records.extend(nowhere);
                    }
                    StoreCmd::Barrier(ack) => commit.acks.push(ack),
                    StoreCmd::Delivered { sink, seqs } => {
                        commit.records.extend(self.delivered(&sink, seqs));
                    }
                    StoreCmd::Compact(states) => {
                        // Records sent before the copy go to the old file first.
                        self.write(std::mem::take(&mut commit));
                        self.compact(states);
                    }
                }
            }
            self.write(commit);
            self.ask_for_compaction();
        }
    }

    /// One group commit: append everything, fsync once, then acknowledge.
    fn write(&mut self, mut commit: Commit) {
        commit.drop_alive_after_stop(&mut self.stopped);
        let Commit {
            records: new,
            acks,
            announced,
        } = commit;
        let mut records = std::mem::take(&mut self.unwritten);
        records.extend(new);
        let result = self.store.append(&records);
        let reply = match result {
            Ok(()) => {
                self.lines += records.len() as u64;
                for record in &records {
                    self.last_seen = LastSeen::of(record).or(self.last_seen);
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
                Err(Arc::new(err))
            }
        };
        for ack in acks {
            let _ = ack.send(reply.clone());
        }
        // Announcements go out even when the disk failed: telling people beats
        // waiting for a disk that may never come back.
        if !announced.is_empty() {
            for outlet in &self.outlets {
                let _ = outlet.send(announced.clone());
            }
        }
        self.health.lines.store(self.lines, Ordering::Relaxed);
    }

    /// Puts the posted announcements among `records` in the outbox, as they
    /// arrive: a sink may report them delivered before their append
    /// succeeds (see [`Writer::write`]). Returns the `delivered` records
    /// of those no sink takes (their owner is routed nowhere).
    fn take_in(&mut self, records: &[Record]) -> Vec<Record> {
        let mut nowhere = Vec::new();
        for record in records {
            if let Record::Announce(a) = record
                && a.is_posted()
            {
                let pending = Pending::new(a.clone());
                if SinkMarks::all_have(&self.sinks, &pending) {
                    nowhere.push(Record::Delivered {
                        seq: a.seq,
                        sink: None,
                    });
                } else {
                    self.outbox.insert(a.seq, pending);
                }
            }
        }
        nowhere
    }

    /// Marks `seqs` delivered to `sink` and returns the records that say
    /// so: for each, a mark naming the sink, or a plain `delivered` record
    /// once every sink has it (which takes it out of the outbox).
    fn delivered(&mut self, sink: &Arc<str>, seqs: Vec<u64>) -> Vec<Record> {
        let mut records = Vec::with_capacity(seqs.len());
        for seq in seqs {
            let Some(pending) = self.outbox.get_mut(&seq) else {
                continue;
            };
            if !pending.mark(sink.clone()) {
                continue;
            }
            if SinkMarks::all_have(&self.sinks, pending) {
                self.outbox.remove(&seq);
                records.push(Record::Delivered { seq, sink: None });
            } else {
                records.push(Record::Delivered {
                    seq,
                    sink: Some(sink.clone()),
                });
            }
        }
        records
    }

    /// Asks the registry for the services' state when the file has grown
    /// well past what it needs.
    fn ask_for_compaction(&mut self) {
        // While appends fail, a compaction would fail too.
        if self.compaction_asked || self.lines <= self.compact_over || !self.unwritten.is_empty() {
            return;
        }
        let Some(live) = self.live.upgrade() else {
            return;
        };
        let outbox_lines: u64 = self
            .outbox
            .values()
            .map(|p| 1 + p.delivered_to_sinks().len() as u64)
            .sum();
        let threshold = compaction_threshold(live.live_lines() + outbox_lines);
        if self.lines > threshold {
            live.send_states();
            self.compaction_asked = true;
        } else {
            self.compact_over = threshold;
        }
    }

    /// Rewrites the file as `states` plus the outbox.
    fn compact(&mut self, mut states: Vec<ServiceState>) {
        self.compaction_asked = false;
        if !self.unwritten.is_empty() {
            // The disk is failing; the copy is asked for again once it works.
            return;
        }
        // Sorted by id, for people reading the file.
        states.sort_unstable_by(|a, b| a.definition.service.cmp(&b.definition.service));
        let records = compacted_records(states.iter(), &self.outbox, self.last_seen);
        drop(states);
        match self.store.compact(&records) {
            Ok(lines) => {
                log_compaction(self.store.path(), self.lines, lines);
                self.lines = lines;
                self.compact_over = compaction_threshold(lines);
            }
            Err(err) => {
                log::error!(
                    "{err}; compaction is tried again when the file has grown by {COMPACT_SLACK} lines"
                );
                self.compact_over = self.lines + COMPACT_SLACK;
            }
        }
        self.health.lines.store(self.lines, Ordering::Relaxed);
    }
}

/// The records and acknowledgements of one group commit.
#[derive(Default)]
struct Commit {
    records: Vec<Record>,
    acks: Vec<Sender<Durable>>,
    announced: Vec<Arc<Announcement>>,
}

impl Commit {
    fn append(&mut self, records: Vec<Record>, ack: Option<Sender<Durable>>) {
        for record in &records {
            if let Record::Announce(a) = record
                && a.is_posted()
            {
                self.announced.push(a.clone());
            }
        }
        self.records.extend(records);
        self.acks.extend(ack);
    }

    /// Drops `alive` records that follow a `stop` record of this commit or
    /// an earlier one: a sign of life sent while procjon was stopping must
    /// not make the next start think it was killed.
    fn drop_alive_after_stop(&mut self, stopped: &mut bool) {
        self.records.retain(|record| match record {
            Record::Stop { .. } => {
                *stopped = true;
                true
            }
            Record::Alive { .. } => !*stopped,
            _ => true,
        });
    }
}
