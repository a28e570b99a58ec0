//! A notifier thread: delivers announcements to one destination (a Slack
//! webhook, standard output, a JSON webhook) in the order they happened,
//! never blocking anyone else. Each sink runs its own, so a destination
//! that is down delays only itself.
//!
//! It receives announcements from the store writer once they are on disk,
//! keeps those its [`Audience`] takes in a queue, delivers at most once per
//! `interval` (Slack accepts about one post per second per webhook), sends
//! everything pending that fits in one delivery (the destination says how
//! much), retries network errors, 5xx and 429 with exponential backoff
//! honouring `Retry-After`, keeps events queued on other 4xx, and tells the
//! store which ones its sink delivered.

use crate::config::NotifyTuning;
use crate::message::human_duration;
use crate::outbound::Outcome;
use crate::progress::Progress;
use crate::store::{Announcement, StoreCmd};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
/// Counters for status reporting, updated by the notifier thread.
#[derive(Debug, Default)]
pub struct NotifyStats {
    /// Announcements delivered.
    pub sent: AtomicU64,
    /// Posts that failed (each is retried).
    pub failed: AtomicU64,
    /// Announcements waiting to be delivered.
    pub pending: AtomicU64,
    /// When the current run of failed posts began (see
    /// [`NotifyStats::failing_for`]); `None` while posts succeed.
    failing_since: Mutex<Option<Instant>>,
    /// Announcements waiting to be delivered, by service id. Updated by the
    /// notifier thread for what enters and leaves its queue, never recounted
    /// (with a long queue a recount costs more than a post); read by the
    /// HTTP status endpoint.
    pending_by_service: Mutex<HashMap<Arc<str>, u64>>,
}

impl NotifyStats {
    /// How long posts have been failing without one success; `None` while
    /// the last post worked (or none was made).
    pub fn failing_for(&self) -> Option<Duration> {
        let since = *self
            .failing_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        since.map(|since| since.elapsed())
    }

    /// Counts a failed post at `now`.
    pub(crate) fn failed(&self, now: Instant) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.failing_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(now);
    }

    /// Notes that a post worked.
    pub(crate) fn succeeded(&self) {
        *self
            .failing_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Announcements waiting to be delivered, by service id (absent: none).
    pub fn pending_by_service(&self) -> HashMap<Arc<str>, u64> {
        let guard = self
            .pending_by_service
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        guard.clone()
    }

    /// Counts `added` in the queue, which now holds `queued`.
    fn enqueued(&self, added: &[Arc<Announcement>], queued: usize) {
        self.pending.store(queued as u64, Ordering::Relaxed);
        let mut by_service = self
            .pending_by_service
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for announcement in added {
            match by_service.get_mut(&announcement.service) {
                Some(count) => *count += 1,
                None => {
                    by_service.insert(announcement.service.clone(), 1);
                }
            }
        }
    }

    /// Takes `removed` off the counts; the queue now holds `queued`.
    fn dequeued<'a>(&self, removed: impl Iterator<Item = &'a Arc<Announcement>>, queued: usize) {
        self.pending.store(queued as u64, Ordering::Relaxed);
        let mut by_service = self
            .pending_by_service
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for announcement in removed {
            if let Some(count) = by_service.get_mut(&announcement.service) {
                *count -= 1;
                if *count == 0 {
                    by_service.remove(&announcement.service);
                }
            }
        }
    }
}

/// Where one notifier delivers.
pub trait Destination: Send {
    /// What to call it in logs (never a secret), e.g. `Slack webhook
    /// hooks.slack.com/…`.
    fn describe(&self) -> String;
    /// How many of the queued announcements (never empty) the next
    /// delivery takes: at least one.
    fn batch_len(&self, queue: &VecDeque<Arc<Announcement>>) -> usize;
    /// Delivers `batch`, oldest first.
    fn deliver(&self, batch: &[Arc<Announcement>]) -> Outcome;
    /// What the operator should do when the destination refuses (4xx).
    fn refused_hint(&self) -> String;
    /// The least time between two deliveries, given the configured one
    /// (`--slack-interval`): Slack's rate limit doesn't apply to a
    /// terminal, and a JSON webhook has its own pace.
    fn interval(&self, configured: Duration) -> Duration {
        configured
    }
}

/// Which announcements a sink takes, by the owner of their service.
/// procjon's own announcements (it is back, its certificate expires) have
/// no owner: every sink takes them.
#[derive(Debug, Clone, PartialEq)]
pub enum Audience {
    /// All of them (JSON webhooks).
    Everyone,
    /// Those of services owned by this identity (a `--route`).
    Owner(Arc<str>),
    /// Those of services owned by none of these identities (the default
    /// channel, when some owners are routed elsewhere).
    AllBut(HashSet<Arc<str>>),
}

impl Audience {
    /// Whether the sink takes `announcement`.
    pub fn takes(&self, announcement: &Announcement) -> bool {
        let owner = announcement
            .subject
            .as_deref()
            .and_then(|s| s.owner.as_deref());
        match (self, owner) {
            (Audience::Everyone, _) | (_, None) => true,
            (Audience::Owner(only), Some(owner)) => **only == *owner,
            (Audience::AllBut(routed), Some(owner)) => !routed.contains(owner),
        }
    }
}

/// A notifier thread's state.
pub struct Notifier {
    /// The sink's id, as its delivery marks name it.
    sink: Arc<str>,
    audience: Audience,
    destination: Box<dyn Destination>,
    tuning: NotifyTuning,
    inbox: Receiver<Vec<Arc<Announcement>>>,
    store: Sender<StoreCmd>,
    queue: VecDeque<Arc<Announcement>>,
    stats: Arc<NotifyStats>,
    progress: Arc<Progress>,
}

/// The channels and shared parts a [`Notifier`] works with.
pub struct NotifierLinks {
    /// Announcements from the store writer, once they are on disk.
    pub inbox: Receiver<Vec<Arc<Announcement>>>,
    /// Where deliveries are reported.
    pub store: Sender<StoreCmd>,
    /// Counters for status reporting.
    pub stats: Arc<NotifyStats>,
    /// Marks each delivery, so one that never ends is seen.
    pub progress: Arc<Progress>,
}

impl Notifier {
    /// A notifier for sink `sink` that delivers what `audience` takes to
    /// `destination`, starting with `pending` (the outbox entries the sink
    /// doesn't have yet).
    pub fn new(
        sink: Arc<str>,
        audience: Audience,
        destination: Box<dyn Destination>,
        tuning: NotifyTuning,
        pending: Vec<Arc<Announcement>>,
        links: NotifierLinks,
    ) -> Notifier {
        let NotifierLinks {
            inbox,
            store,
            stats,
            progress,
        } = links;
        let tuning = NotifyTuning {
            interval: destination.interval(tuning.interval),
            ..tuning
        };
        let pending: Vec<_> = pending.into_iter().filter(|a| audience.takes(a)).collect();
        stats.enqueued(&pending, pending.len());
        Notifier {
            sink,
            audience,
            destination,
            tuning,
            inbox,
            store,
            queue: pending.into(),
            stats,
            progress,
        }
    }

    /// Queues the announcements of `batch` this sink takes.
    fn enqueue(&mut self, mut batch: Vec<Arc<Announcement>>) {
        batch.retain(|a| self.audience.takes(a));
        self.stats.enqueued(&batch, self.queue.len() + batch.len());
        self.queue.extend(batch);
    }

    /// Runs until the store writer is gone and the queue is empty.
    pub fn run(mut self) {
        let mut next_post = Instant::now();
        let mut backoff = self.tuning.backoff;
        let mut inbox_open = true;
        loop {
            while self.queue.is_empty() {
                if !inbox_open {
                    return;
                }
                match self.inbox.recv() {
                    Ok(batch) => self.enqueue(batch),
                    Err(_) => return,
                }
            }
            // Wait for the pacing slot, collecting what arrives meanwhile.
            while inbox_open {
                let now = Instant::now();
                if now >= next_post {
                    break;
                }
                match self.inbox.recv_timeout(next_post - now) {
                    Ok(batch) => self.enqueue(batch),
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => inbox_open = false,
                }
            }
            while let Ok(batch) = self.inbox.try_recv() {
                self.enqueue(batch);
            }

            let count = self.destination.batch_len(&self.queue).max(1);
            let count = count.min(self.queue.len());
            let batch: Vec<Arc<Announcement>> = self.queue.range(..count).cloned().collect();
            let outcome = {
                let _busy = self.progress.busy();
                self.destination.deliver(&batch)
            };
            let now = Instant::now();
            match outcome {
                Outcome::Delivered => {
                    // The store hears of it before the counts drop: a stop
                    // that waits for no pending notification, then for the
                    // store, finds the delivery marks written.
                    let seqs: Vec<u64> = batch.iter().map(|a| a.seq).collect();
                    let _ = self.store.send(StoreCmd::Delivered {
                        sink: self.sink.clone(),
                        seqs,
                    });
                    self.stats
                        .dequeued(self.queue.range(..count), self.queue.len() - count);
                    self.queue.drain(..count);
                    self.stats.sent.fetch_add(count as u64, Ordering::Relaxed);
                    self.stats.succeeded();
                    backoff = self.tuning.backoff;
                    next_post = now + self.tuning.interval;
                }
                Outcome::Retry { after, reason } => {
                    self.stats.failed(now);
                    let delay = after.unwrap_or(backoff).min(self.tuning.max_backoff);
                    log::warn!(
                        "posting to {}: {reason}; {} notifications kept, retrying in {}",
                        self.destination.describe(),
                        self.queue.len(),
                        human_duration(delay)
                    );
                    backoff = (backoff * 2).min(self.tuning.max_backoff);
                    next_post = now + delay;
                }
                Outcome::Rejected { reason } => {
                    self.stats.failed(now);
                    log::error!(
                        "posting to {}: {reason}; {}. {} notifications kept, retrying in {}",
                        self.destination.describe(),
                        self.destination.refused_hint(),
                        self.queue.len(),
                        human_duration(backoff)
                    );
                    next_post = now + backoff;
                    backoff = (backoff * 2).min(self.tuning.max_backoff);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn announcement(seq: u64, service: &str) -> Arc<Announcement> {
        Arc::new(Announcement {
            seq,
            service: service.into(),
            available: true,
            status: 0,
            text: format!("{service} is available").into(),
            ..Default::default()
        })
    }

    #[test]
    fn pending_counts_follow_what_enters_and_leaves_the_queue() {
        let stats = NotifyStats::default();
        let queue = vec![
            announcement(1, "a"),
            announcement(2, "b"),
            announcement(3, "a"),
        ];
        stats.enqueued(&queue, 3);
        let counts = stats.pending_by_service();
        assert_eq!((counts["a"], counts["b"]), (2, 1));
        stats.dequeued(queue[..2].iter(), 1);
        assert_eq!(stats.pending_by_service(), HashMap::from([("a".into(), 1)]));
        assert_eq!(stats.pending.load(Ordering::Relaxed), 1);
        stats.dequeued(queue[2..].iter(), 0);
        assert!(stats.pending_by_service().is_empty());
    }
}
