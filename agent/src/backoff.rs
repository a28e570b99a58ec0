//! Reconnection delays: exponential, capped, with jitter so that the agents
//! of a fleet don't all knock on procjon's door in the same instant after it
//! restarts. Owned by the runner's ping thread.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Delays of `first`, 2×`first`, 4×`first`… up to `cap`, each drawn
/// uniformly from its upper half.
#[derive(Debug)]
pub(crate) struct Backoff {
    first: Duration,
    cap: Duration,
    failures: u32,
    rng: u64,
}

impl Backoff {
    /// A backoff seeded from the clock and the process id (no extra crate:
    /// the jitter needs to differ between hosts, not to be unpredictable).
    pub(crate) fn new(first: Duration, cap: Duration) -> Backoff {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Backoff {
            first,
            cap,
            failures: 0,
            rng: (nanos ^ u64::from(std::process::id()).rotate_left(32)) | 1,
        }
    }

    /// The delay before the next attempt; each call doubles the next one.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let full = self
            .first
            .saturating_mul(1u32 << self.failures.min(20))
            .min(self.cap);
        self.failures = self.failures.saturating_add(1);
        let fraction = (self.next_random() >> 11) as f64 / (1u64 << 53) as f64;
        full.mul_f64(0.5 + fraction / 2.0)
    }

    /// Attempts since the last success.
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    /// Starts over from `first` after a connection that worked.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }

    /// xorshift64: plenty for jitter.
    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_jitter() {
        let first = Duration::from_millis(500);
        let cap = Duration::from_secs(30);
        let mut backoff = Backoff::new(first, cap);
        let mut full = first;
        for attempt in 0..40 {
            let delay = backoff.next_delay();
            assert!(delay >= full / 2 && delay <= full, "{attempt}: {delay:?}");
            full = (full * 2).min(cap);
        }
        assert_eq!(backoff.failures(), 40);
        backoff.reset();
        assert!(backoff.next_delay() <= first);
    }

    #[test]
    fn jitter_varies() {
        let mut backoff = Backoff::new(Duration::from_secs(30), Duration::from_secs(30));
        let delays: std::collections::HashSet<Duration> =
            (0..10).map(|_| backoff.next_delay()).collect();
        assert!(delays.len() > 5, "{delays:?}");
    }
}
