//! The store writer thread: owns the state file at run time. It appends what
//! the registry and the notifier send it in group commits (one `fsync` per
//! batch), acknowledges registrations once they are durable, forwards new
//! announcements to the notifier, and compacts the file when it has grown.
//!
//! It holds only what the file needs beyond the services' state: the outbox
//! (announcements not yet delivered, usually none) and the line count. The
//! services' state lives once, in the registry; for a compaction the writer
//! asks the registry ([`LiveState`]) for a copy of it, which the registry
//! sends through the writer's own channel, behind every record it sent
//! before: so the copy is exactly what the records appended so far make.

use super::file::{COMPACT_SLACK, compaction_threshold, log_compaction};
use super::{
    Announcement, LastSeen, Record, ServiceState, StoreError, StoreFile, compacted_records,
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
    /// Append records; announcements among them go on to the notifier. When
    /// `ack` is given it gets the result once the records are on disk.
    Append {
        /// Records in the order they happened.
        records: Vec<Record>,
        /// Told once they are durable (or not).
        ack: Option<Sender<Durable>>,
    },
    /// Reply once everything sent before is on disk.
    Barrier(Sender<Durable>),
    /// These announcements reached the webhook.
    Delivered(Vec<u64>),
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
    /// Announcements not yet delivered, by `seq`.
    outbox: BTreeMap<u64, Arc<Announcement>>,
    /// Lines in the file.
    lines: u64,
    /// The last `alive` or `stop` record written.
    last_seen: Option<LastSeen>,
    inbox: Receiver<StoreCmd>,
    notifier: Sender<Vec<Arc<Announcement>>>,
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
    /// Where the registry and the notifier send work.
    pub inbox: Receiver<StoreCmd>,
    /// Where announcements go once written.
    pub notifier: Sender<Vec<Arc<Announcement>>>,
    /// Facts for status reporting.
    pub health: Arc<StoreHealth>,
    /// The registry, for compactions.
    pub live: Weak<dyn LiveState>,
    /// Marks each group commit, so an fsync that never ends is seen.
    pub progress: Arc<Progress>,
}

impl Writer {
    /// A writer for `store`, which holds `lines` lines, the pending
    /// announcements `outbox` and the sign of life `last_seen`.
    pub fn new(
        store: StoreFile,
        outbox: BTreeMap<u64, Arc<Announcement>>,
        lines: u64,
        last_seen: Option<LastSeen>,
        links: WriterLinks,
    ) -> Writer {
        links.health.lines.store(lines, Ordering::Relaxed);
        Writer {
            store,
            outbox,
            lines,
            last_seen,
            inbox: links.inbox,
            notifier: links.notifier,
            health: links.health,
            unwritten: Vec::new(),
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
                    StoreCmd::Append { records, ack } => commit.append(records, ack),
                    StoreCmd::Barrier(ack) => commit.acks.push(ack),
                    StoreCmd::Delivered(seqs) => commit.delivered(seqs),
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
                for record in records {
                    match record {
                        Record::Announce(a) if a.is_posted() => {
                            self.outbox.insert(a.seq, a);
                        }
                        Record::Delivered { seq } => {
                            self.outbox.remove(&seq);
                        }
                        Record::Alive { .. } | Record::Stop { .. } => {
                            self.last_seen = LastSeen::of(&record).or(self.last_seen);
                        }
                        Record::Announce(_)
                        | Record::Register(_)
                        | Record::Remove { .. }
                        | Record::Silence { .. }
                        | Record::Unsilence { .. } => {}
                    }
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
            let _ = self.notifier.send(announced);
        }
        self.health.lines.store(self.lines, Ordering::Relaxed);
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
        let threshold = compaction_threshold(live.live_lines() + self.outbox.len() as u64);
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

    fn delivered(&mut self, seqs: Vec<u64>) {
        self.records
            .extend(seqs.into_iter().map(|seq| Record::Delivered { seq }));
    }
}
