//! `--alertmanager URL` (one per cluster peer): the channel's state as
//! Prometheus-style alerts, so that Alertmanager does the routing,
//! escalation, inhibition and, with two procjon instances, the
//! deduplication. Alertmanager is told the state, not the events, the way
//! Prometheus tells it:
//!
//! - a service the channel knows as not available is a firing
//!   `ProcjonServiceUnavailable`; one in a non-zero status a firing
//!   `ProcjonServiceStatus` with label `status`;
//! - firing alerts are sent again every `--alertmanager-resend` with
//!   `endsAt` four resends ahead, so Alertmanager resolves them by itself
//!   when procjon is gone;
//! - a recovery is sent with `endsAt` at the recovery, again at every
//!   resend for five minutes (Alertmanager keeps nothing across its own
//!   crash);
//! - with `--alertmanager-watchdog`, an always-firing `ProcjonWatchdog`
//!   while procjon is healthy, for a dead man's switch receiver.
//!
//! The labels depend only on the service (never on which procjon sends
//! them), so two instances fed by the same agents make the same alerts and
//! Alertmanager deduplicates them.
//!
//! Threads: the **alertmanager** thread takes announcements from the store
//! writer (once on disk) into the [`AlertBook`]; one **alertmanager-peer**
//! thread per URL posts from the book, each with its own retries, so a
//! peer that is down delays only itself (Alertmanager's HA docs ask
//! clients to send to every peer).

use crate::health::Health;
use crate::message::{human_duration, rfc3339};
use crate::notifier::NotifyStats;
use crate::outbound::{self, Outcome};
use crate::progress::Progress;
use crate::secret_url::SecretUrl;
use crate::store::{Announcement, Kind, Timestamp};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The alert of a service that is not available.
pub const UNAVAILABLE: &str = "ProcjonServiceUnavailable";
/// The alert of a service in a non-zero status.
pub const STATUS: &str = "ProcjonServiceStatus";
/// The always-firing alert of `--alertmanager-watchdog`.
pub const WATCHDOG: &str = "ProcjonWatchdog";
/// How long a recovery is sent again.
pub const RESOLVED_FOR: Duration = Duration::from_secs(300);
/// Least time between two posts of changes to one peer.
pub const CHANGE_INTERVAL: Duration = Duration::from_secs(1);
/// How long a change waits for others to go with it. A burst (thousands of
/// services down at once) then goes in one post after the channel's
/// rather than competing with it, and Alertmanager waits `group_wait` (30 s
/// by default) before it notifies anyway.
pub const GATHER: Duration = Duration::from_millis(500);

/// Label names procjon sets itself, which `--alertmanager-label` can't.
pub const OWN_LABELS: [&str; 4] = ["alertname", "service", "owner", "status"];

/// The validated `--alertmanager*` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertmanagerConfig {
    /// Each peer's alerts endpoint (`…/api/v2/alerts`).
    pub peers: Vec<SecretUrl>,
    /// Labels added to every alert (`--alertmanager-label k=v`).
    pub labels: Vec<(String, String)>,
    /// How often firing alerts are sent again. Default 60 s.
    pub resend: Duration,
    /// Whether to keep `ProcjonWatchdog` firing while healthy.
    pub watchdog: bool,
    /// Time limit of one request. Default 10 s (`--slack-timeout`).
    pub timeout: Duration,
    /// This machine's host name, which descriptions name: with two
    /// procjons, it tells which one reported an alert.
    pub host: String,
}

/// This machine's host name (Linux), or `unknown`.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// The endpoint alerts are posted to on the Alertmanager at `url`: its
/// `/api/v2/alerts`, unless `url` names it already.
pub fn alerts_endpoint(url: &SecretUrl) -> SecretUrl {
    let path_end = url.expose().split(['?', '#']).next().unwrap_or("");
    if path_end.trim_end_matches('/').ends_with("/api/v2/alerts") {
        url.clone()
    } else {
        url.join("api/v2/alerts")
    }
}

/// Which alert: the service, the alert name, and for a status alert the
/// status. Ordered by service first, so one service's alerts are a range.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct AlertKey {
    service: Arc<str>,
    name: &'static str,
    status: Option<Arc<str>>,
}

/// One alert as the book holds it.
#[derive(Debug, Clone)]
struct Alert {
    owner: Option<Arc<str>>,
    /// When it started firing, Unix seconds.
    starts_at: u64,
    /// When it was resolved, Unix seconds; `None` while firing.
    resolved_at: Option<u64>,
    /// The line that made it fire.
    summary: Box<str>,
    /// The book's generation when it last changed.
    changed: u64,
}

/// The alerts procjon wants Alertmanager to know: what fires, and what
/// was resolved within [`RESOLVED_FOR`]. Written by the alertmanager
/// thread, read by the peer threads; its lock is never held across I/O.
#[derive(Debug, Default)]
pub struct AlertBook {
    inner: Mutex<Book>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Book {
    alerts: BTreeMap<AlertKey, Alert>,
    /// Counts changes; each alert remembers the one that last touched it.
    generation: u64,
}

impl AlertBook {
    fn lock(&self) -> MutexGuard<'_, Book> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes in the channel's state at start-up: what it last saw of each
    /// service. Recoveries within [`RESOLVED_FOR`] are sent as resolved
    /// again: the run before may not have sent them.
    pub fn seed(&self, seen: &[Arc<Announcement>], now: u64) {
        let mut book = self.lock();
        for announcement in seen {
            book.apply(announcement);
            let recent = unix(&announcement.at, now) + RESOLVED_FOR.as_secs() > now;
            if !recent || !announcement.kind.carries_state() {
                continue;
            }
            let subject = announcement.subject.as_deref();
            let at = unix(&announcement.at, now);
            let recovered = match announcement.kind {
                Kind::Available => Some((UNAVAILABLE, None)),
                Kind::StatusChanged if announcement.status == 0 => subject
                    .and_then(|s| s.previous_status.clone())
                    .map(|previous| (STATUS, Some(previous))),
                _ => None,
            };
            if let Some((name, status)) = recovered {
                let key = AlertKey {
                    service: announcement.service.clone(),
                    name,
                    status,
                };
                let generation = book.generation;
                book.alerts.entry(key).or_insert_with(|| Alert {
                    owner: subject.and_then(|s| s.owner.clone()),
                    starts_at: at,
                    resolved_at: Some(at),
                    summary: announcement.text.clone(),
                    changed: generation,
                });
            }
        }
        book.generation += 1;
        drop(book);
        self.changed.notify_all();
    }

    /// Takes in announcements as the channel gets them.
    pub fn apply(&self, batch: &[Arc<Announcement>]) {
        let mut book = self.lock();
        for announcement in batch {
            book.apply(announcement);
        }
        drop(book);
        self.changed.notify_all();
    }

    /// Waits until the book changes past `generation` or `until` passes.
    fn wait(&self, generation: u64, until: Instant) {
        let mut book = self.lock();
        while book.generation <= generation {
            let now = Instant::now();
            if now >= until {
                return;
            }
            book = match self.changed.wait_timeout(book, until - now) {
                Ok((book, _)) => book,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// The alerts to send at `now` and the generation they reflect: every
    /// one when `since` is `None` (a resend), else those changed after
    /// generation `since`. Forgets recoveries older than [`RESOLVED_FOR`].
    fn snapshot(&self, since: Option<u64>, now: u64) -> (Vec<(AlertKey, Alert)>, u64) {
        let mut book = self.lock();
        book.alerts.retain(|_, alert| {
            alert
                .resolved_at
                .is_none_or(|at| at + RESOLVED_FOR.as_secs() > now)
        });
        let alerts = book
            .alerts
            .iter()
            .filter(|(_, alert)| since.is_none_or(|since| alert.changed > since))
            .map(|(key, alert)| (key.clone(), alert.clone()))
            .collect();
        (alerts, book.generation)
    }
}

impl Book {
    /// Sets the alerts of `announcement`'s service to what it says.
    fn apply(&mut self, announcement: &Announcement) {
        let says_state = announcement.kind.carries_state() || announcement.kind == Kind::Stable;
        if announcement.kind == Kind::Procjon || !says_state {
            return;
        }
        self.generation += 1;
        let generation = self.generation;
        let at = unix(&announcement.at, unix_now());
        let subject = announcement.subject.as_deref();
        let service = &announcement.service;
        let mut wanted: Vec<AlertKey> = Vec::new();
        if announcement.kind != Kind::Unregistered {
            if !announcement.available {
                wanted.push(AlertKey {
                    service: service.clone(),
                    name: UNAVAILABLE,
                    status: None,
                });
            }
            if announcement.status != 0 {
                let status = subject
                    .and_then(|s| s.status.clone())
                    .unwrap_or_else(|| format!("status {}", announcement.status).into());
                wanted.push(AlertKey {
                    service: service.clone(),
                    name: STATUS,
                    status: Some(status),
                });
            }
        }
        // What fires and is no longer wanted is resolved now.
        for (key, alert) in self.service_alerts(service) {
            if alert.resolved_at.is_none() && !wanted.contains(key) {
                alert.resolved_at = Some(at);
                alert.changed = generation;
            }
        }
        for key in wanted {
            let alert = self.alerts.entry(key).or_insert_with(|| Alert {
                owner: None,
                starts_at: at,
                resolved_at: Some(at),
                summary: Box::from(""),
                changed: generation,
            });
            if alert.resolved_at.is_some() {
                *alert = Alert {
                    owner: subject.and_then(|s| s.owner.clone()),
                    starts_at: at,
                    resolved_at: None,
                    summary: announcement.text.clone(),
                    changed: generation,
                };
            }
        }
    }

    /// The alerts of `service`.
    fn service_alerts<'a>(
        &'a mut self,
        service: &'a Arc<str>,
    ) -> impl Iterator<Item = (&'a AlertKey, &'a mut Alert)> + 'a {
        let first = AlertKey {
            service: service.clone(),
            name: "",
            status: None,
        };
        self.alerts
            .range_mut(first..)
            .take_while(move |(key, _)| key.service == *service)
    }
}

/// An announcement's time as Unix seconds; `now` when it has none procjon
/// can read (a hand-edited file).
fn unix(at: &Timestamp, now: u64) -> u64 {
    match at {
        Timestamp::Seconds(secs) => *secs,
        Timestamp::Text(_) => now,
    }
}

/// The current time, Unix seconds.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The alertmanager thread: takes announcements into the book until the
/// store writer is gone.
pub fn take_in(inbox: Receiver<Vec<Arc<Announcement>>>, book: Arc<AlertBook>) {
    for batch in inbox {
        book.apply(&batch);
    }
}

/// One alert as Alertmanager's API v2 takes it (`postableAlert`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Postable<'a> {
    labels: BTreeMap<&'a str, &'a str>,
    annotations: BTreeMap<&'static str, String>,
    starts_at: String,
    ends_at: String,
}

/// A peer thread: posts the book to one Alertmanager.
pub struct Peer {
    endpoint: SecretUrl,
    config: Arc<AlertmanagerConfig>,
    book: Arc<AlertBook>,
    client: ureq::Agent,
    stats: Arc<NotifyStats>,
    progress: Arc<Progress>,
    health: Arc<Health>,
}

impl Peer {
    /// A thread for the peer at `endpoint` (see [`alerts_endpoint`]).
    pub fn new(
        endpoint: SecretUrl,
        config: Arc<AlertmanagerConfig>,
        book: Arc<AlertBook>,
        stats: Arc<NotifyStats>,
        progress: Arc<Progress>,
        health: Arc<Health>,
    ) -> Peer {
        Peer {
            client: outbound::client(config.timeout),
            endpoint,
            config,
            book,
            stats,
            progress,
            health,
        }
    }

    /// Runs for ever: changes as they come, everything every resend.
    pub fn run(self) {
        let resend = self.config.resend;
        let backoff_start = Duration::from_secs(1).min(resend);
        let mut backoff = backoff_start;
        // The generation the peer has every change up to; `None` until the
        // first full send worked.
        let mut sent: Option<u64> = None;
        let mut next_full = Instant::now();
        let mut next_change = Instant::now();
        let mut failing = false;
        loop {
            if let Some(generation) = sent {
                self.book.wait(generation, next_full);
                let now = Instant::now();
                let post_at = next_change.max(now + GATHER.min(resend)).min(next_full);
                if now < post_at {
                    std::thread::sleep(post_at - now);
                }
            }
            let full = sent.is_none() || Instant::now() >= next_full;
            if !full && !self.book_changed(sent) {
                continue;
            }
            let now_unix = unix_now();
            let (alerts, generation) = self.book.snapshot(if full { None } else { sent }, now_unix);
            let count = alerts.len();
            self.stats.pending.store(count as u64, Ordering::Relaxed);
            let outcome = match self.body(&alerts, full, now_unix) {
                None => Outcome::Delivered,
                Some(body) => {
                    let _busy = self.progress.busy();
                    outbound::post_json(&self.client, &self.endpoint, &body)
                }
            };
            let now = Instant::now();
            match outcome {
                Outcome::Delivered => {
                    if failing {
                        log::info!("Alertmanager {} takes alerts again", self.endpoint);
                        failing = false;
                    }
                    self.stats.pending.store(0, Ordering::Relaxed);
                    self.stats.sent.fetch_add(count as u64, Ordering::Relaxed);
                    self.stats.succeeded();
                    sent = Some(generation);
                    if full {
                        next_full = now + resend;
                    }
                    next_change = now + CHANGE_INTERVAL.min(resend);
                    backoff = backoff_start;
                }
                Outcome::Retry { reason, .. } | Outcome::Rejected { reason } => {
                    self.stats.failed(now);
                    if !failing {
                        log::warn!(
                            "posting alerts to Alertmanager {}: {reason}; retrying, at least every {} (the other peers are not held up)",
                            self.endpoint,
                            human_duration(resend)
                        );
                        failing = true;
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(resend);
                }
            }
        }
    }

    /// Whether the book moved past `sent`.
    fn book_changed(&self, sent: Option<u64>) -> bool {
        let generation = self.book.lock().generation;
        sent.is_none_or(|sent| generation > sent)
    }

    /// The JSON body for `alerts` at `now`; none when there is nothing to
    /// send. A full send adds the watchdog alert while procjon is healthy.
    fn body(&self, alerts: &[(AlertKey, Alert)], full: bool, now: u64) -> Option<String> {
        let ends_firing = rfc3339(now + 4 * self.config.resend.as_secs().max(1));
        let mut postable: Vec<Postable<'_>> = Vec::with_capacity(alerts.len() + 1);
        for (key, alert) in alerts {
            let mut labels = self.labels(key.name);
            labels.insert("service", &key.service);
            if let Some(owner) = &alert.owner {
                labels.insert("owner", owner);
            }
            if let Some(status) = &key.status {
                labels.insert("status", status);
            }
            postable.push(Postable {
                labels,
                annotations: BTreeMap::from([
                    ("summary", alert.summary.to_string()),
                    ("description", description(key, alert, &self.config.host)),
                ]),
                starts_at: rfc3339(alert.starts_at),
                ends_at: alert
                    .resolved_at
                    .map_or_else(|| ends_firing.clone(), rfc3339),
            });
        }
        if full && self.config.watchdog && self.health.problem().is_none() {
            postable.push(Postable {
                labels: self.labels(WATCHDOG),
                annotations: BTreeMap::from([
                    (
                        "summary",
                        "procjon is running and healthy (this alert always fires)".to_string(),
                    ),
                    (
                        "description",
                        "procjon keeps this alert firing while it can do its job; a dead man's switch receiver should alert when it stops."
                            .to_string(),
                    ),
                ]),
                starts_at: rfc3339(now),
                ends_at: ends_firing.clone(),
            });
        }
        if postable.is_empty() {
            return None;
        }
        serde_json::to_string(&postable).ok()
    }

    /// The labels every alert called `name` has.
    fn labels(&self, name: &'static str) -> BTreeMap<&str, &str> {
        let mut labels: BTreeMap<&str, &str> = self
            .config
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        labels.insert("alertname", name);
        labels
    }
}

/// The `description` annotation: what the alert means, for people.
fn description(key: &AlertKey, alert: &Alert, host: &str) -> String {
    let owner = alert
        .owner
        .as_deref()
        .map_or_else(String::new, |owner| format!(" (owner {owner})"));
    let since = rfc3339(alert.starts_at);
    match &key.status {
        Some(status) => format!(
            "{}{owner} has reported status {status} since {since} (procjon on {host}).",
            key.service
        ),
        None => format!(
            "{}{owner} has not pinged procjon within its timeout since {since} (procjon on {host}).",
            key.service
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Subject;

    fn event(
        seq: u64,
        kind: Kind,
        available: bool,
        status: (u64, &str),
        at: u64,
    ) -> Arc<Announcement> {
        Arc::new(Announcement {
            seq,
            service: "web-1".into(),
            available,
            status: status.0,
            text: format!("web-1 event {seq}").into(),
            at: Timestamp::Seconds(at),
            kind,
            held: None,
            subject: Some(Arc::new(Subject {
                owner: Some("web-hosts".into()),
                status: Some(status.1.into()),
                previous_status: None,
            })),
        })
    }

    fn state(book: &AlertBook) -> Vec<(&'static str, Option<String>, bool)> {
        let (alerts, _) = book.snapshot(None, 1_000);
        alerts
            .into_iter()
            .map(|(k, a)| {
                (
                    k.name,
                    k.status.map(|s| s.to_string()),
                    a.resolved_at.is_none(),
                )
            })
            .collect()
    }

    #[test]
    fn alerts_follow_the_channel_state() {
        let book = AlertBook::default();
        book.apply(&[event(1, Kind::Available, true, (0, "ok"), 900)]);
        assert!(state(&book).is_empty());
        book.apply(&[event(2, Kind::NotAvailable, false, (0, "ok"), 910)]);
        assert_eq!(state(&book), vec![(UNAVAILABLE, None, true)]);
        book.apply(&[
            event(3, Kind::Available, true, (0, "ok"), 920),
            event(4, Kind::StatusChanged, true, (1, "degraded"), 921),
        ]);
        assert_eq!(
            state(&book),
            vec![
                (STATUS, Some("degraded".into()), true),
                (UNAVAILABLE, None, false)
            ]
        );
        // A reminder or a silence says nothing new about the state.
        book.apply(&[event(5, Kind::Reminder, true, (0, "ok"), 930)]);
        assert_eq!(state(&book)[0], (STATUS, Some("degraded".into()), true));
        book.apply(&[event(6, Kind::Unregistered, true, (1, "degraded"), 940)]);
        assert!(state(&book).iter().all(|(_, _, firing)| !firing));
        // Recoveries are forgotten after five minutes.
        assert!(book.snapshot(None, 940 + 300).0.is_empty());
    }

    #[test]
    fn changes_only_since_a_generation_and_restart_resends_recent_recoveries() {
        let book = AlertBook::default();
        book.apply(&[event(1, Kind::NotAvailable, false, (0, "ok"), 900)]);
        let (_, generation) = book.snapshot(None, 900);
        assert!(book.snapshot(Some(generation), 900).0.is_empty());
        book.apply(&[event(2, Kind::Available, true, (0, "ok"), 905)]);
        let (changed, _) = book.snapshot(Some(generation), 905);
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].1.resolved_at, Some(905));

        let restarted = AlertBook::default();
        restarted.seed(&[event(2, Kind::Available, true, (0, "ok"), 905)], 1_000);
        assert_eq!(state(&restarted), vec![(UNAVAILABLE, None, false)]);
        let old = AlertBook::default();
        old.seed(&[event(2, Kind::Available, true, (0, "ok"), 605)], 1_000);
        assert!(state(&old).is_empty());
    }

    #[test]
    fn the_endpoint_is_the_v2_alerts_path() {
        let base = SecretUrl::parse("http://127.0.0.1:9093").unwrap();
        assert_eq!(
            alerts_endpoint(&base).expose(),
            "http://127.0.0.1:9093/api/v2/alerts"
        );
        let full = SecretUrl::parse("http://am:9093/api/v2/alerts").unwrap();
        assert_eq!(
            alerts_endpoint(&full).expose(),
            "http://am:9093/api/v2/alerts"
        );
    }
}
