//! Whether procjon can do its job, in one place: the heartbeat thread
//! reports it to a dead man's switch, and the watchdog thread stops
//! systemd's watchdog pings when a thread is stuck. Reads the other
//! threads' lock-free facts; takes no lock of theirs.

use crate::notifier::NotifyStats;
use crate::progress::Threads;
use crate::store::StoreHealth;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The facts health is judged from.
pub struct Health {
    /// Progress of the timer, store writer and notifier threads.
    pub threads: Threads,
    /// The notifier's counters (how long posts have been failing).
    pub notify: Arc<NotifyStats>,
    /// The store writer's flags (whether appends fail).
    pub store: Arc<StoreHealth>,
    /// How long one operation may take before its thread counts as stalled.
    pub stall_after: Duration,
    /// How long the webhook may fail before procjon counts as unhealthy.
    pub webhook_fail_after: Duration,
}

impl Health {
    /// A stalled thread, as a one-line reason; restarting procjon is what
    /// helps then (systemd's watchdog does it).
    pub fn stalled(&self) -> Option<String> {
        self.threads.stalled(self.stall_after)
    }

    /// Why procjon can't do its job now, as a one-line reason: a stalled
    /// thread, a state file it can't write, or a webhook failing for longer
    /// than the limit.
    pub fn problem(&self) -> Option<String> {
        if let Some(stalled) = self.stalled() {
            return Some(stalled);
        }
        if self.store.failing.load(Ordering::Relaxed) {
            return Some("the state file cannot be written (see procjon's log)".into());
        }
        match self.notify.failing_for() {
            Some(failing) if failing > self.webhook_fail_after => Some(format!(
                "posts to the Slack webhook have failed for {} ({} notifications waiting)",
                crate::message::human_duration(failing),
                self.notify.pending.load(Ordering::Relaxed)
            )),
            _ => None,
        }
    }
}
