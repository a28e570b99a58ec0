//! Whether the daemon's own threads are getting on with their work. The
//! timer, the store writer and each sink's thread mark the time they start
//! one operation (an expiry, a group commit with its fsync, a post) and
//! clear it when done; a thread that has been in one operation for longer
//! than `--stall-after` is stalled. A thread waiting for work is not busy,
//! so a quiet daemon is never stalled. Read by the watchdog thread (which
//! stops systemd's watchdog pings) and the heartbeat thread (which reports
//! a failure); lock-free.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One thread's progress.
#[derive(Debug)]
pub struct Progress {
    /// The thread's name, for messages.
    name: String,
    /// What the busy times count from.
    epoch: Instant,
    /// When the current operation started, in milliseconds after `epoch`,
    /// plus one; 0 when the thread is not busy.
    busy_since: AtomicU64,
}

impl Progress {
    /// The progress of the thread called `name`.
    pub fn new(name: impl Into<String>) -> Arc<Progress> {
        Arc::new(Progress {
            name: name.into(),
            epoch: Instant::now(),
            busy_since: AtomicU64::new(0),
        })
    }

    /// The thread's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Marks the start of one operation; its end is when the guard drops.
    pub fn busy(&self) -> Busy<'_> {
        let since = self.epoch.elapsed().as_millis() as u64 + 1;
        self.busy_since.store(since, Ordering::Relaxed);
        Busy(self)
    }

    /// How long the thread has been in its current operation at `now`;
    /// `None` when it is not busy.
    pub fn busy_for(&self, now: Instant) -> Option<Duration> {
        let since = self.busy_since.load(Ordering::Relaxed).checked_sub(1)?;
        let started = self.epoch + Duration::from_millis(since);
        Some(now.saturating_duration_since(started))
    }
}

/// An operation in progress; see [`Progress::busy`].
pub struct Busy<'a>(&'a Progress);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.busy_since.store(0, Ordering::Relaxed);
    }
}

/// The progress of the threads that must keep going.
#[derive(Debug, Clone)]
pub struct Threads {
    /// The timer thread.
    pub timer: Arc<Progress>,
    /// The store writer thread.
    pub store: Arc<Progress>,
    /// Each sink's thread (the default channel's is called `notifier`).
    pub sinks: Vec<Arc<Progress>>,
}

impl Threads {
    /// Progress trackers for the timer and the store writer, and `sinks`.
    pub fn new(sinks: Vec<Arc<Progress>>) -> Threads {
        Threads {
            timer: Progress::new("timer"),
            store: Progress::new("store writer"),
            sinks,
        }
    }

    /// The first thread busy with one operation for longer than `limit`,
    /// as a one-line reason.
    pub fn stalled(&self, limit: Duration) -> Option<String> {
        let now = Instant::now();
        [&self.timer, &self.store]
            .into_iter()
            .chain(&self.sinks)
            .find_map(|thread| {
                let busy = thread.busy_for(now).filter(|busy| *busy > limit)?;
                Some(format!(
                    "the {} thread has been stuck in one operation for {}",
                    thread.name(),
                    crate::message::human_duration(busy)
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_only_while_the_guard_lives() {
        let threads = Threads::new(vec![Progress::new("notifier")]);
        assert_eq!(threads.sinks[0].busy_for(Instant::now()), None);
        let busy = threads.sinks[0].busy();
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            threads
                .stalled(Duration::from_millis(5))
                .is_some_and(|r| r.contains("notifier"))
        );
        assert_eq!(threads.stalled(Duration::from_secs(60)), None);
        drop(busy);
        assert_eq!(threads.stalled(Duration::ZERO), None);
    }
}
