//! Bounded waiting for things that have no channel to wait on (a file
//! growing, a count in `/proc`): poll, and fail naming what never came.
//! Where a channel exists ([`crate::Lines`], the fake Slack), wait on it
//! with a timeout instead.

use std::time::{Duration, Instant};

/// How long to wait for something that should happen: generous, since the
/// machine may be busy; a passing test never waits this long.
pub const WAIT: Duration = Duration::from_secs(15);

/// Polls `check` every 10 ms until it is true; panics with `what` after `limit`.
#[track_caller]
pub fn wait_until(limit: Duration, what: &str, check: impl FnMut() -> bool) {
    poll_until(limit, Duration::from_millis(10), what, check);
}

/// [`wait_until`] polling every `every`, for checks that cost something.
#[track_caller]
pub fn poll_until(limit: Duration, every: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(every);
    }
}

/// [`wait_until`] with the limit [`WAIT`].
#[track_caller]
pub fn wait_for(what: &str, check: impl FnMut() -> bool) {
    wait_until(WAIT, what, check);
}
