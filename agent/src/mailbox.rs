//! The one-slot mailbox between the check thread and one endpoint's ping
//! thread. The check thread posts every check's outcome to each endpoint's
//! mailbox without ever waiting; outcomes the ping thread hasn't taken yet
//! (its procjon is slow, or blackholed) are folded into the newest, since
//! only the latest status matters. So a stuck endpoint costs one pending
//! report, never a growing queue, and never delays the check or the other
//! endpoints.
//!
//! The lock is held only to fold or take the pending update: no I/O, no
//! logging inside it.

use crate::agent::{Finish, Report};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// What the check thread tells the ping threads after one check.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// The report to ping with, or `None` to skip this ping.
    Check(Option<Report>),
    /// The agent's last report, and what to do once it is delivered.
    Last(Report, Finish),
}

/// The outcomes posted since the ping thread last took them, folded.
#[derive(Debug, Default)]
pub(crate) struct Update {
    /// The newest report among them, for the first ping after a
    /// reconnection.
    pub(crate) latest: Option<Report>,
    /// What the newest outcome asks to ping with now (`None`: skip).
    pub(crate) ping: Option<Report>,
    /// Once the agent has finished: what to do after its last report, and
    /// when it finished (the `final_timeout` counts from there).
    pub(crate) last: Option<(Finish, Instant)>,
}

impl Update {
    /// Folds `outcome`, newer than everything folded so far, in.
    fn fold(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Check(report) => {
                if report.is_some() {
                    self.latest.clone_from(&report);
                }
                self.ping = report;
            }
            Outcome::Last(report, finish) => {
                self.latest = Some(report.clone());
                self.ping = Some(report);
                self.last = Some((finish, Instant::now()));
            }
        }
    }
}

/// What [`Post::put`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Put {
    /// The outcome waits for the ping thread.
    Queued,
    /// The outcome took the place of a ping the thread hadn't sent yet.
    Replaced,
    /// The ping thread has ended: nobody will read it.
    Gone,
}

/// The ping thread has nothing more to take: the check thread has ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Closed;

#[derive(Debug, Default)]
struct State {
    pending: Option<Update>,
    /// The check thread's end ([`Post`] dropped).
    closed: bool,
    /// The ping thread's end ([`Inbox`] dropped).
    gone: bool,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    posted: Condvar,
}

impl Shared {
    /// The state; a panic elsewhere while holding the lock can't leave it
    /// half-changed (every change is one assignment), so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A new mailbox: the check thread's end and the ping thread's.
pub(crate) fn mailbox() -> (Post, Inbox) {
    let shared = Arc::new(Shared::default());
    (Post(shared.clone()), Inbox(shared))
}

/// The check thread's end of a mailbox; dropping it closes the mailbox.
#[derive(Debug)]
pub(crate) struct Post(Arc<Shared>);

impl Post {
    /// Posts `outcome` without waiting, folding it into the update not yet
    /// taken, if any.
    pub(crate) fn put(&self, outcome: Outcome) -> Put {
        let put = {
            let mut state = self.0.lock();
            if state.gone {
                return Put::Gone;
            }
            let update = state.pending.get_or_insert_with(Update::default);
            let replaced = update.ping.is_some();
            update.fold(outcome);
            if replaced { Put::Replaced } else { Put::Queued }
        };
        self.0.posted.notify_one();
        put
    }
}

impl Drop for Post {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.posted.notify_all();
    }
}

/// The ping thread's end of a mailbox; dropping it tells the check thread
/// that nobody reads it any more.
#[derive(Debug)]
pub(crate) struct Inbox(Arc<Shared>);

impl Inbox {
    /// Waits for the next update, as long as it takes.
    pub(crate) fn recv(&self) -> Result<Update, Closed> {
        let mut state = self.0.lock();
        loop {
            if let Some(update) = state.pending.take() {
                return Ok(update);
            }
            if state.closed {
                return Err(Closed);
            }
            state = self
                .0
                .posted
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Waits up to `limit` for the next update; `Ok(None)` when none came.
    pub(crate) fn recv_timeout(&self, limit: Duration) -> Result<Option<Update>, Closed> {
        let deadline = Instant::now() + limit;
        let mut state = self.0.lock();
        loop {
            if let Some(update) = state.pending.take() {
                return Ok(Some(update));
            }
            if state.closed {
                return Err(Closed);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            state = self
                .0
                .posted
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.gone = true;
        state.pending = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(status: u64) -> Outcome {
        Outcome::Check(Some(Report::new(status)))
    }

    #[test]
    fn only_the_newest_ping_waits_and_the_newest_report_is_kept() {
        let (post, inbox) = mailbox();
        assert!(inbox.recv_timeout(Duration::ZERO).unwrap().is_none());
        assert_eq!(post.put(check(0)), Put::Queued);
        for status in 1..1000 {
            assert_eq!(post.put(check(status)), Put::Replaced);
        }
        // A skipped check after them: nothing to ping now, but the newest
        // report is still the one to send after a reconnection.
        assert_eq!(post.put(Outcome::Check(None)), Put::Replaced);
        let update = inbox.recv().unwrap();
        assert_eq!(update.ping, None);
        assert_eq!(update.latest, Some(Report::new(999)));
        assert!(update.last.is_none());
        assert!(
            inbox
                .recv_timeout(Duration::from_millis(1))
                .unwrap()
                .is_none()
        );
        assert_eq!(post.put(Outcome::Check(None)), Put::Queued);
    }

    #[test]
    fn the_last_report_survives_the_close() {
        let (post, inbox) = mailbox();
        post.put(check(0));
        let finish = Finish::Unregister {
            reason: "exit 0 after 1s".into(),
        };
        post.put(Outcome::Last(Report::new(1), finish.clone()));
        drop(post);
        let update = inbox.recv().unwrap();
        assert_eq!(update.ping, Some(Report::new(1)));
        assert_eq!(update.last.map(|(f, _)| f), Some(finish));
        assert_eq!(inbox.recv().unwrap_err(), Closed);
        assert_eq!(
            inbox.recv_timeout(Duration::from_secs(5)).unwrap_err(),
            Closed
        );
    }

    #[test]
    fn a_waiting_inbox_wakes_for_a_post_and_the_post_sees_it_gone() {
        let (post, inbox) = mailbox();
        let waiter = std::thread::spawn(move || {
            let update = inbox.recv_timeout(Duration::from_secs(30));
            (update.map(|u| u.and_then(|u| u.ping)), inbox)
        });
        post.put(check(7));
        let (update, inbox) = waiter.join().unwrap();
        assert_eq!(update, Ok(Some(Report::new(7))));
        drop(inbox);
        assert_eq!(post.put(check(8)), Put::Gone);
    }
}
