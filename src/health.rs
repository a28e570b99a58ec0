//! Whether procjon can do its job, in one place: the heartbeat thread
//! reports it to a dead man's switch, and the watchdog thread stops
//! systemd's watchdog pings when a thread is stuck. Reads the other
//! threads' lock-free facts; takes no lock of theirs.

use crate::progress::Threads;
use crate::sinks::Deliveries;
use crate::store::StoreHealth;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The facts health is judged from.
pub struct Health {
    /// Progress of the timer, store writer and sink threads.
    pub threads: Threads,
    /// The sinks' counters (how long posts have been failing).
    pub deliveries: Arc<Deliveries>,
    /// The store writer's flags (whether appends fail).
    pub store: Arc<StoreHealth>,
    /// How long one operation may take before its thread counts as stalled.
    pub stall_after: Duration,
    /// How long a sink may fail before procjon counts as unhealthy.
    pub webhook_fail_after: Duration,
}

impl Health {
    /// A stalled thread, as a one-line reason; restarting procjon is what
    /// helps then (systemd's watchdog does it).
    pub fn stalled(&self) -> Option<String> {
        self.threads.stalled(self.stall_after)
    }

    /// Why procjon can't do its job now, as a one-line reason: a stalled
    /// thread, a state file it can't write, or a sink (the Slack webhook, a
    /// JSON webhook, an Alertmanager) failing for longer than the limit.
    pub fn problem(&self) -> Option<String> {
        if let Some(stalled) = self.stalled() {
            return Some(stalled);
        }
        if self.store.failing.load(Ordering::Relaxed) {
            return Some("the state file cannot be written (see procjon's log)".into());
        }
        match self.deliveries.failing() {
            Some((sink, failing)) if failing > self.webhook_fail_after => Some(format!(
                "posts to the {} have failed for {} ({} notifications waiting)",
                describe(&sink.name),
                crate::message::human_duration(failing),
                sink.stats.pending.load(Ordering::Relaxed)
            )),
            _ => None,
        }
    }
}

/// A sink's name as the heartbeat's reason says it.
fn describe(name: &str) -> String {
    if name == crate::sinks::CHANNEL_ID {
        "Slack webhook".into()
    } else if let Some(owner) = name.strip_prefix("slack:") {
        format!("Slack webhook of {owner} (--route)")
    } else if let Some(json) = name.strip_prefix("json:") {
        format!(
            "JSON webhook {}",
            json.rsplit_once(':').map_or(json, |(host, _)| host)
        )
    } else {
        name.to_string()
    }
}
