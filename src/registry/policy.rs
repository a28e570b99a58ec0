//! The notification policy: which of a service's events reach the channel,
//! and the lines the policy adds. Every event is recorded in the state file
//! (with why it was held back, if it was); only the channel is spared.
//!
//! - **Silences** hold a service's events back until they end; the end
//!   brings the current state, if the channel saw another.
//! - **Dependencies**: while a service another depends on is not
//!   available, the dependent's events are held; when it recovers, the
//!   dependents still not as the channel last saw them are posted together.
//! - **Flapping**: more than `--flap-changes` changes of the announced state
//!   within `--flap-window` say so once and hold the changes, until a whole
//!   window passes without one.
//! - **Confirmation**: a status change (or availability after an outage)
//!   waits for `confirm` consecutive pings.
//! - **Reminders** of a service still not available, or still in a non-zero
//!   status, at `--remind-after`, then at doubling lengths, `--remind-max`
//!   times; swept every few seconds from the time the state began, so a
//!   restart neither repeats nor resets them.
//!
//! All of it runs under the registry's write lock, called from the ping,
//! expiry, registration and timer paths; none of it does I/O.

use super::{Availability, Inner, Service, take};
use crate::message;
use crate::store::{Announcement, Hold, Kind, Record, Silence, Timestamp};
use crate::timer::Due;
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The daemon-wide defaults of the notification policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyConfig {
    /// How long a service may stay not available, or in a non-zero
    /// status, before the first reminder (`--remind-after`, default 4 h);
    /// zero: no reminders.
    pub remind_after: Duration,
    /// Most reminders per episode (`--remind-max`, default 5).
    pub remind_max: u32,
    /// Changes within a window past which a service is flapping
    /// (`--flap-changes`, default 6).
    pub flap_changes: u32,
    /// The flapping window (`--flap-window`, default 10 min).
    pub flap_window: Duration,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            remind_after: Duration::from_secs(4 * 3600),
            remind_max: 5,
            flap_changes: 6,
            flap_window: Duration::from_secs(600),
        }
    }
}

/// The time now, as Unix seconds.
pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Longest time between two reminder sweeps.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

impl Inner {
    /// Why an event of `id` of `kind` would be held now, if it would.
    pub(super) fn hold(&self, id: &str, kind: Kind, now_unix: u64) -> Option<Hold> {
        if matches!(
            kind,
            Kind::Procjon | Kind::Unregistered | Kind::Silenced | Kind::SilenceEnded
        ) {
            return None;
        }
        let service = self.services.get(id)?;
        if service.silence(now_unix).is_some() {
            return Some(Hold::Silenced);
        }
        if self.suppressed_by(service).is_some() {
            return Some(Hold::Suppressed);
        }
        let flapping = service
            .saved
            .policy
            .as_ref()
            .is_some_and(|p| p.flapping.is_some());
        (flapping && kind.carries_state()).then_some(Hold::Flapping)
    }

    /// A service `service` depends on that is not available now, if any.
    pub(super) fn suppressed_by(&self, service: &Service) -> Option<Arc<str>> {
        service
            .saved
            .definition
            .policy()
            .depends_on
            .iter()
            .find_map(|parent| {
                let parent = self.services.get(parent.as_str())?;
                (parent.availability() == Availability::NotAvailable).then(|| parent.id().clone())
            })
    }

    /// Every registered service that depends on `id`, directly or through
    /// others, once each.
    pub(super) fn dependents_of(&self, id: &str) -> Vec<Arc<str>> {
        let mut seen: HashSet<Arc<str>> = HashSet::new();
        let mut todo: Vec<&str> = vec![id];
        let mut all = Vec::new();
        while let Some(parent) = todo.pop() {
            for child in self.dependents.get(parent).into_iter().flatten() {
                if self.services.contains_key(child) && seen.insert(child.clone()) {
                    all.push(child.clone());
                    todo.push(child);
                }
            }
        }
        all
    }

    /// Records an announcement about `id`, held back or posted as the
    /// policy says, and returns it. A change of the announced state
    /// (`change`) counts towards flapping, which may add the flapping line
    /// before it.
    pub(super) fn emit(
        &mut self,
        id: &str,
        kind: Kind,
        state: (bool, u64),
        text: String,
        change: bool,
        out: &mut Vec<Record>,
    ) -> Option<Arc<Announcement>> {
        let now = Instant::now();
        let now_unix = unix_now();
        if change {
            self.count_change(id, now, now_unix, out);
        }
        let held = self.hold(id, kind, now_unix);
        let announcement = self.announcement(id, kind, state, text, held, now_unix)?;
        let service = self.services.get_mut(id)?;
        service.saved.announced(&announcement);
        if kind.carries_state()
            && let Some(policy) = &mut service.saved.policy
        {
            policy.candidate = None;
            service.saved.tidy();
        }
        out.push(Record::Announce(announcement.clone()));
        Some(announcement)
    }

    /// A new announcement about `id` with the next `seq`, its subject
    /// (owner, status names) taken from the service as it is now and from
    /// what the channel last saw of it.
    fn announcement(
        &mut self,
        id: &str,
        kind: Kind,
        state: (bool, u64),
        text: String,
        held: Option<Hold>,
        now_unix: u64,
    ) -> Option<Arc<Announcement>> {
        let service = self.services.get(id)?;
        let definition = &service.saved.definition;
        let channel = service
            .saved
            .policy
            .as_ref()
            .and_then(|p| p.seen.as_ref())
            .or(service.saved.last.as_ref());
        let previous = channel
            .filter(|seen| kind.carries_state() && seen.status != state.1)
            .map(|seen| definition.status_name(seen.status));
        let status = definition.status_name(state.1);
        let (service_id, owner) = (service.id().clone(), definition.owner.clone());
        let subject = self
            .interner
            .subject_of(owner.as_ref(), &status, previous.as_deref());
        Some(Arc::new(Announcement {
            seq: take(&mut self.next_seq),
            service: service_id,
            available: state.0,
            status: state.1,
            text: text.into_boxed_str(),
            at: Timestamp::Seconds(now_unix),
            kind,
            held,
            subject: Some(subject),
        }))
    }

    /// Counts a change of `id`'s announced state; past the limit within the
    /// window, it is flapping from now on, and says so.
    fn count_change(&mut self, id: &str, now: Instant, now_unix: u64, out: &mut Vec<Record>) {
        let (limit, window) = (self.policy.flap_changes, self.policy.flap_window);
        if limit == 0 || window.is_zero() {
            return;
        }
        let Some(service) = self.services.get_mut(id) else {
            return;
        };
        let policy = service.saved.policy();
        policy.changes.push_back(now);
        forget_old(&mut policy.changes, now, window);
        let count = policy.changes.len();
        let starts = policy.flapping.is_none() && count > limit as usize;
        let state = service.state();
        if !starts {
            self.arm_policy(id, now);
            return;
        }
        let text = message::flapping(id, count, window);
        let held = self.hold(id, Kind::Flapping, now_unix);
        let Some(announcement) = self.announcement(id, Kind::Flapping, state, text, held, now_unix)
        else {
            return;
        };
        let Some(service) = self.services.get_mut(id) else {
            return;
        };
        service.saved.announced(&announcement);
        out.push(Record::Announce(announcement));
        self.arm_policy(id, now);
    }

    /// Posts `id`'s current state if the channel last saw another and
    /// nothing holds it back any more: after a silence, after a service it
    /// depends on recovered.
    pub(super) fn restate(&mut self, id: &str, now: Instant, out: &mut Vec<Record>) {
        let Some(service) = self.services.get(id) else {
            return;
        };
        let Some(seen) = service.saved.policy.as_ref().and_then(|p| p.seen.clone()) else {
            return; // the channel is in step
        };
        let state = service.state();
        if self.hold(id, Kind::StatusChanged, unix_now()).is_some() {
            return;
        }
        let definition = &service.saved.definition;
        let mut lines = Vec::new();
        if !state.0 {
            let last_ping = service.last_ping(self.epoch).unwrap_or(self.epoch);
            lines.push((
                Kind::NotAvailable,
                message::not_available(id, now.saturating_duration_since(last_ping)),
            ));
        } else {
            if !seen.available {
                lines.push((Kind::Available, message::available(id)));
            }
            if seen.status != state.1 {
                let text = message::status_changed(
                    id,
                    &definition.status_name(state.1),
                    &definition.status_name(seen.status),
                    None,
                );
                lines.push((Kind::StatusChanged, text));
            }
        }
        for (kind, text) in lines {
            self.emit(id, kind, state, text, false, out);
        }
        if let Some(service) = self.services.get_mut(id) {
            // Said, or nothing differed after all: in step either way.
            if let Some(policy) = &mut service.saved.policy {
                policy.seen = None;
            }
            service.saved.tidy();
        }
    }

    /// After `id` became available: its dependents that the channel still
    /// sees otherwise than they are are posted now, together.
    pub(super) fn release_dependents(&mut self, id: &str, now: Instant, out: &mut Vec<Record>) {
        for child in self.dependents_of(id) {
            self.restate(&child, now, out);
        }
    }

    /// Silences `id` until `until` for `by`; says so.
    pub(super) fn silence(
        &mut self,
        id: &str,
        until: u64,
        by: &Arc<str>,
        reason: Option<&str>,
        out: &mut Vec<Record>,
    ) {
        let now_unix = unix_now();
        let Some(service) = self.services.get_mut(id) else {
            return;
        };
        service.saved.policy().silence = Some(Silence {
            until,
            by: by.clone(),
            reason: reason.map(Box::from),
        });
        let state = service.state();
        out.push(Record::Silence {
            service: id.to_string(),
            until: Timestamp::Seconds(until),
            by: by.to_string(),
            reason: reason.map(String::from),
        });
        let length = Duration::from_secs(until.saturating_sub(now_unix));
        let text = message::silenced(id, length, by, reason);
        self.emit(id, Kind::Silenced, state, text, false, out);
        self.arm_policy(id, Instant::now());
    }

    /// Ends `id`'s silence, if it has one: says so, and posts its state if
    /// the channel saw another.
    pub(super) fn end_silence(&mut self, id: &str, now: Instant, out: &mut Vec<Record>) {
        let Some(service) = self.services.get_mut(id) else {
            return;
        };
        let Some(policy) = &mut service.saved.policy else {
            return;
        };
        if policy.silence.take().is_none() {
            return;
        }
        let state = service.state();
        out.push(Record::Unsilence {
            service: id.to_string(),
        });
        self.emit(
            id,
            Kind::SilenceEnded,
            state,
            message::silence_ended(id),
            false,
            out,
        );
        self.restate(id, now, out);
        self.arm_policy(id, now);
    }

    /// What is due for `id`'s policy at `now`: a silence's end, the end of
    /// its flapping. Returns when to look again.
    pub(super) fn policy_due(
        &mut self,
        id: &str,
        now: Instant,
        out: &mut Vec<Record>,
    ) -> Option<Instant> {
        let now_unix = unix_now();
        let service = self.services.get(id)?;
        if service
            .saved
            .policy
            .as_ref()
            .and_then(|p| p.silence.as_ref())
            .is_some_and(|s| s.until <= now_unix)
        {
            self.end_silence(id, now, out);
        }
        let window = self.policy.flap_window;
        let service = self.services.get_mut(id)?;
        let calm = service.saved.policy.as_ref().is_some_and(|p| {
            p.flapping.is_some()
                && p.changes
                    .back()
                    .is_none_or(|t| now.duration_since(*t) >= window)
        });
        if calm {
            let state = service.state();
            let status = service.saved.definition.status_name(state.1);
            let text = message::stable(id, state.0, &status);
            if let Some(policy) = &mut service.saved.policy {
                policy.changes.clear();
            }
            self.emit(id, Kind::Stable, state, text, false, out);
            // Still held for other reasons (silenced, suppressed)? Then the
            // channel didn't see it: what it saw stays what it saw.
        }
        self.next_policy_deadline(id, now)
    }

    /// When `id`'s policy needs looking at next: its silence's end, or the
    /// end of a flapping window. Drops the policy state when idle.
    fn next_policy_deadline(&mut self, id: &str, now: Instant) -> Option<Instant> {
        let now_unix = unix_now();
        let window = self.policy.flap_window;
        let service = self.services.get_mut(id)?;
        let policy = service.saved.policy.as_mut()?;
        let silence_end = policy
            .silence
            .as_ref()
            .map(|s| now + Duration::from_secs(s.until.saturating_sub(now_unix)));
        // Old changes stop counting once a window has passed.
        forget_old(&mut policy.changes, now, window);
        let calm_at = match (&policy.flapping, policy.changes.back()) {
            // Flapping ends a whole window after the last change.
            (Some(_), Some(last)) => Some(*last + window),
            (Some(_), None) => Some(now),
            // Otherwise the oldest change stops counting.
            (None, Some(_)) => policy.changes.front().map(|first| *first + window),
            (None, None) => None,
        };
        let next = [silence_end, calm_at].into_iter().flatten().min();
        if next.is_none() {
            policy.timer_generation = 0;
            service.saved.tidy();
        }
        next
    }

    /// Arms `id`'s policy timer for what its policy waits for, if anything.
    pub(super) fn arm_policy(&mut self, id: &str, now: Instant) {
        let Some(at) = self.next_policy_deadline(id, now) else {
            return;
        };
        let Some(service) = self.services.get(id) else {
            return;
        };
        let shared = service.id().clone();
        let generation = self.timers.arm(&shared, at, Due::Policy);
        if let Some(service) = self.services.get_mut(id) {
            service.saved.policy().timer_generation = generation;
        }
    }

    /// The reminders due between the last sweep and `now_unix`, as (id,
    /// line); updates the sweep time.
    pub(super) fn due_reminders(
        &self,
        since: u64,
        now_unix: u64,
    ) -> Vec<(Arc<str>, (bool, u64), String)> {
        let mut due = Vec::new();
        for service in self.services.values() {
            let Some(last) = &service.saved.last else {
                continue;
            };
            let bad = !last.available || last.status != 0;
            if !bad {
                continue;
            }
            let Timestamp::Seconds(began) = last.at else {
                continue;
            };
            let definition = &service.saved.definition;
            let after = definition
                .policy()
                .remind_s
                .unwrap_or(self.policy.remind_after.as_secs());
            if after == 0 {
                continue;
            }
            // Reminder k (from 0) is due when the state is after × 2^k old.
            let crossed = (0..self.policy.remind_max).find_map(|k| {
                let at = began.checked_add(after.checked_mul(1u64.checked_shl(k)?)?)?;
                (at > since && at <= now_unix).then_some(at - began)
            });
            let Some(bad_for) = crossed else {
                continue;
            };
            if self.hold(service.id(), Kind::Reminder, now_unix).is_some() {
                continue;
            }
            let state = if last.available {
                Some(definition.status_name(last.status))
            } else {
                None
            };
            let text =
                message::reminder(service.id(), state.as_deref(), Duration::from_secs(bad_for));
            due.push((service.id().clone(), (last.available, last.status), text));
        }
        due
    }

    /// How long until the next reminder sweep: a tenth of the shortest
    /// reminder length in use, between a second and [`SWEEP_EVERY`].
    pub(super) fn sweep_every(&self) -> Duration {
        let shortest = self
            .services
            .values()
            .filter_map(|s| s.saved.definition.policy().remind_s)
            .filter(|&s| s > 0)
            .map(Duration::from_secs)
            .chain((!self.policy.remind_after.is_zero()).then_some(self.policy.remind_after))
            .min()
            .unwrap_or(SWEEP_EVERY);
        (shortest / 10).clamp(Duration::from_millis(200), SWEEP_EVERY)
    }
}

/// Keeps `changes` to those within `window` of `now`.
pub(super) fn forget_old(changes: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while changes
        .front()
        .is_some_and(|t| now.duration_since(*t) > window)
    {
        changes.pop_front();
    }
}
