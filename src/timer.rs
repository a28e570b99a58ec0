//! The expiry timer: one thread owning a binary heap of deadlines, one entry
//! per available service, sleeping on a condvar until the earliest one.
//!
//! Pings never touch the timer: they only move the service's last-ping time
//! in the registry. When an entry comes due the thread asks the registry
//! whether the service really went silent; if it was pinged meanwhile the
//! registry answers with the new deadline and the entry is re-armed. So the
//! heap stays as large as the number of available services and the ping path
//! stays O(1). Connection threads (via the registry) push new entries into
//! the inbox; only the timer thread touches the heap.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Instant;

/// One deadline for one service. `generation` lets the registry ignore
/// entries made stale by a re-registration with another timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadline {
    /// When to look at the service.
    pub at: Instant,
    /// The service id (shared with the registry).
    pub service: Arc<str>,
    /// The registry's arming generation for this service.
    pub generation: u64,
    /// What comes due.
    pub due: Due,
}

/// What a [`Deadline`] is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Due {
    /// The service's timeout: is it still pinging?
    Expiry,
    /// Its notification policy: a silence ends, it may be stable again.
    Policy,
    /// Reminders of every service still down (the service id is empty).
    Reminders,
}

impl Ord for Deadline {
    fn cmp(&self, other: &Self) -> Ordering {
        self.at
            .cmp(&other.at)
            .then_with(|| self.service.cmp(&other.service))
            .then_with(|| self.generation.cmp(&other.generation))
            .then_with(|| self.due.cmp(&other.due))
    }
}

impl PartialOrd for Deadline {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Capacity the inbox keeps after a burst.
const PENDING_KEPT: usize = 64;

#[derive(Default)]
struct Inbox {
    pending: Vec<Deadline>,
    stopped: bool,
}

#[derive(Default)]
struct Shared {
    inbox: Mutex<Inbox>,
    wake: Condvar,
}

/// The sending side of the timer: cheap to clone, safe to use from any thread.
#[derive(Clone, Default)]
pub struct TimerHandle {
    shared: Arc<Shared>,
}

impl TimerHandle {
    /// A timer that is not running yet; see [`TimerHandle::run`].
    pub fn new() -> TimerHandle {
        TimerHandle::default()
    }

    /// Asks the timer to look at `service` at `at`.
    pub fn arm(&self, deadline: Deadline) {
        let mut inbox = self
            .shared
            .inbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let wake = inbox.pending.is_empty();
        inbox.pending.push(deadline);
        drop(inbox);
        if wake {
            self.shared.wake.notify_one();
        }
    }

    /// Asks the timer to look at many services at once (start-up). The
    /// vector becomes the timer's heap when it has none yet, without a copy.
    pub fn arm_all(&self, deadlines: Vec<Deadline>) {
        let mut inbox = self
            .shared
            .inbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if inbox.pending.is_empty() {
            inbox.pending = deadlines;
        } else {
            inbox.pending.extend(deadlines);
        }
        drop(inbox);
        self.shared.wake.notify_one();
    }

    /// Makes [`TimerHandle::run`] return: no deadline comes due after it
    /// (procjon is stopping).
    pub fn stop(&self) {
        self.shared
            .inbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stopped = true;
        self.shared.wake.notify_one();
    }

    /// The timer thread's body. `on_due(deadline, now)` is called for each
    /// entry that comes due and returns `Some(next)` to re-arm it.
    pub fn run(&self, mut on_due: impl FnMut(&Deadline, Instant) -> Option<Instant>) {
        let mut heap: BinaryHeap<Reverse<Deadline>> = BinaryHeap::new();
        loop {
            {
                let mut inbox = self
                    .shared
                    .inbox
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                loop {
                    if inbox.stopped {
                        return;
                    }
                    if heap.is_empty() && inbox.pending.len() > PENDING_KEPT {
                        // A burst (start-up arms every available service):
                        // its buffer becomes the heap, in place.
                        let burst = std::mem::take(&mut inbox.pending);
                        heap = BinaryHeap::from(burst.into_iter().map(Reverse).collect::<Vec<_>>());
                    } else {
                        heap.extend(inbox.pending.drain(..).map(Reverse));
                        inbox.pending.shrink_to(PENDING_KEPT);
                    }
                    let now = Instant::now();
                    inbox = match heap.peek() {
                        Some(Reverse(first)) if first.at <= now => break,
                        Some(Reverse(first)) => {
                            let wait = first.at - now;
                            self.shared
                                .wake
                                .wait_timeout(inbox, wait)
                                .unwrap_or_else(PoisonError::into_inner)
                                .0
                        }
                        None => self
                            .shared
                            .wake
                            .wait(inbox)
                            .unwrap_or_else(PoisonError::into_inner),
                    };
                }
            }
            let now = Instant::now();
            while heap.peek().is_some_and(|Reverse(first)| first.at <= now) {
                let Some(Reverse(due)) = heap.pop() else {
                    break;
                };
                if let Some(next) = on_due(&due, now) {
                    // A deadline not in the future would spin; look again a moment later.
                    let at = next.max(now + std::time::Duration::from_millis(1));
                    heap.push(Reverse(Deadline { at, ..due }));
                }
            }
            if heap.capacity() > 4 * heap.len() + 1024 {
                heap.shrink_to(2 * heap.len());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn fires_in_deadline_order_and_rearms() {
        let timer = TimerHandle::new();
        let (tx, rx) = mpsc::channel();
        let runner = timer.clone();
        let thread = std::thread::spawn(move || {
            let mut rearmed = false;
            runner.run(|due, now| {
                let service = &*due.service;
                tx.send((service.to_string(), due.generation)).unwrap();
                if service == "b" && !rearmed {
                    rearmed = true;
                    return Some(now + Duration::from_millis(30));
                }
                None
            })
        });
        let start = Instant::now();
        for (name, ms) in [("c", 60), ("a", 10), ("b", 30)] {
            timer.arm(Deadline {
                at: start + Duration::from_millis(ms),
                service: name.into(),
                generation: 7,
                due: Due::Expiry,
            });
        }
        let got: Vec<String> = (0..4)
            .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap().0)
            .collect();
        assert_eq!(got[..2], ["a", "b"]);
        // "b" re-armed 30 ms after its first firing lands next to "c" (60 ms): either order.
        let mut tail = got[2..].to_vec();
        tail.sort();
        assert_eq!(tail, ["b", "c"]);
        assert!(start.elapsed() >= Duration::from_millis(60));
        timer.stop();
        thread.join().unwrap();
    }
}
