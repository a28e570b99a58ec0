//! The notifier thread: delivers announcements to Slack (or standard output)
//! in the order they happened, never blocking anyone else.
//!
//! It receives announcements from the store writer once they are on disk,
//! keeps them in a queue, posts at most one message per `interval` (Slack
//! accepts about one per second per webhook), sends everything pending in one
//! post (one event per line, up to [`MAX_POST_CHARS`]), retries network
//! errors, 5xx and 429 with exponential backoff honouring `Retry-After`, keeps
//! events queued on other 4xx, and tells the store which ones were delivered.

use crate::config::{NotifyTuning, Sink};
use crate::message::human_duration;
use crate::progress::Progress;
use crate::secret_url::SecretUrl;
use crate::store::{Announcement, StoreCmd};
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Most characters of text in one post (Slack allows far more; short posts read better).
pub const MAX_POST_CHARS: usize = 3500;

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
    fn failed(&self, now: Instant) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.failing_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(now);
    }

    /// Notes that a post worked.
    fn succeeded(&self) {
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

/// What happened to one post.
#[derive(Debug)]
enum Outcome {
    Delivered,
    /// Network error, 5xx or 429: try again after the delay (or the backoff).
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// Any other status: the webhook is wrong; keep the events and retry slowly.
    Rejected {
        reason: String,
    },
}

/// The notifier thread's state.
pub struct Notifier {
    sink: Sink,
    tuning: NotifyTuning,
    inbox: Receiver<Vec<Arc<Announcement>>>,
    store: Sender<StoreCmd>,
    queue: VecDeque<Arc<Announcement>>,
    agent: ureq::Agent,
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
    /// Marks each post, so a post that never ends is seen.
    pub progress: Arc<Progress>,
}

impl Notifier {
    /// A notifier that starts with `pending` (the outbox from the state file).
    pub fn new(
        sink: Sink,
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
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(tuning.timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("procjon/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let tuning = match sink {
            // Slack's rate limit doesn't apply to a terminal or a log.
            Sink::Stdout => NotifyTuning {
                interval: Duration::ZERO,
                ..tuning
            },
            Sink::Slack(_) => tuning,
        };
        stats.enqueued(&pending, pending.len());
        let queue = pending.into();
        Notifier {
            sink,
            tuning,
            inbox,
            store,
            queue,
            agent,
            stats,
            progress,
        }
    }

    /// Queues announcements received from the store writer.
    fn enqueue(&mut self, batch: Vec<Arc<Announcement>>) {
        self.stats.enqueued(&batch, self.queue.len() + batch.len());
        self.queue.extend(batch);
    }

    /// Runs until the store writer is gone and the queue is empty.
    pub fn run(mut self) {
        let mut next_post = Instant::now();
        let mut backoff = self.tuning.backoff;
        let mut inbox_open = true;
        loop {
            if self.queue.is_empty() {
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

            let (count, text) = self.next_post_text();
            let outcome = {
                let _busy = self.progress.busy();
                self.deliver(&text)
            };
            let now = Instant::now();
            match outcome {
                Outcome::Delivered => {
                    // The store hears of it before the counts drop: a stop
                    // that waits for no pending notification, then for the
                    // store, finds the delivery marks written.
                    let seqs: Vec<u64> = self.queue.range(..count).map(|a| a.seq).collect();
                    let _ = self.store.send(StoreCmd::Delivered(seqs));
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
                        self.sink_name(),
                        self.queue.len(),
                        human_duration(delay)
                    );
                    backoff = (backoff * 2).min(self.tuning.max_backoff);
                    next_post = now + delay;
                }
                Outcome::Rejected { reason } => {
                    self.stats.failed(now);
                    log::error!(
                        "posting to {}: {reason}; the webhook URL looks wrong or revoked: fix --slack-webhook \
                         and restart. {} notifications kept, retrying in {}",
                        self.sink_name(),
                        self.queue.len(),
                        human_duration(backoff)
                    );
                    next_post = now + backoff;
                    backoff = (backoff * 2).min(self.tuning.max_backoff);
                }
            }
        }
    }

    /// The text of the next post and how many queued events it covers: as
    /// many as fit in [`MAX_POST_CHARS`], at least one.
    fn next_post_text(&self) -> (usize, String) {
        let mut text = String::new();
        let mut count = 0;
        for announcement in &self.queue {
            let extra = announcement.text.len() + usize::from(count > 0);
            if count > 0 && text.len() + extra > MAX_POST_CHARS {
                break;
            }
            if count > 0 {
                text.push('\n');
            }
            text.push_str(&announcement.text);
            count += 1;
        }
        (count, text)
    }

    fn sink_name(&self) -> String {
        match &self.sink {
            Sink::Stdout => "standard output".into(),
            Sink::Slack(url) => format!("Slack webhook {url}"),
        }
    }

    fn deliver(&self, text: &str) -> Outcome {
        match &self.sink {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                match writeln!(out, "{text}").and_then(|()| out.flush()) {
                    Ok(()) => Outcome::Delivered,
                    Err(err) => Outcome::Retry {
                        after: None,
                        reason: err.to_string(),
                    },
                }
            }
            Sink::Slack(url) => self.post(url, text),
        }
    }

    fn post(&self, url: &SecretUrl, text: &str) -> Outcome {
        let body = serde_json::json!({ "text": slack_escape(text) }).to_string();
        let response = self
            .agent
            .post(url.expose())
            .header("Content-Type", "application/json")
            .send(&body);
        let mut response = match response {
            Ok(response) => response,
            Err(err) => {
                return Outcome::Retry {
                    after: None,
                    reason: url.redact(&err.to_string()),
                };
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let reply = response
            .body_mut()
            .with_config()
            .limit(4096)
            .read_to_string()
            .unwrap_or_default();
        let reply = reply.trim().chars().take(200).collect::<String>();
        match status {
            200..=299 => Outcome::Delivered,
            429 | 500..=599 => Outcome::Retry {
                after: retry_after,
                reason: format!("HTTP {status} {reply}"),
            },
            _ => Outcome::Rejected {
                reason: format!("HTTP {status} {reply}"),
            },
        }
    }
}

/// Escapes `&`, `<` and `>` as Slack's message formatting requires. Status
/// names are free text chosen by agents: unescaped, a status named
/// `<!channel>` would mention the whole channel, and `<https://x|click>`
/// would post a disguised link.
fn slack_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
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
            text: format!("{service} is available"),
            ..Default::default()
        })
    }

    #[test]
    fn slack_control_sequences_are_escaped() {
        assert_eq!(
            slack_escape("a status changed to <!channel> (was <https://x|click> & co)"),
            "a status changed to &lt;!channel&gt; (was &lt;https://x|click&gt; &amp; co)"
        );
        assert_eq!(slack_escape("web-1 is available"), "web-1 is available");
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
