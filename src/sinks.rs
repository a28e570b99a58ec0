//! The sinks: where announcements go once they are on disk. Built once at
//! start-up from the configuration:
//!
//! - the **channel**: the default Slack webhook (or standard output), one
//!   more Slack webhook per `--route OWNER=URL`, each a notifier thread
//!   taking the announcements of its owners;
//! - one notifier thread per `--webhook-json URL`, taking all of them;
//! - with `--alertmanager`, the alertmanager thread and one thread per
//!   peer (see [`crate::alertmanager`]).
//!
//! Each notifier is a sink with its own delivery marks in the state file's
//! outbox (its id: `slack`, `slack:OWNER`, `json:HOST:HASH`), so a sink
//! that is down delays only itself and a restart re-sends each sink only
//! what it has not acknowledged. Alertmanager is told the state rather
//! than the events and needs no marks: every resend carries it whole.

use crate::alertmanager::{self, AlertBook, AlertmanagerConfig, Peer};
use crate::config::{Config, ConfigError, Sink};
use crate::health::Health;
use crate::json_webhook::JsonWebhook;
use crate::notifier::{Audience, Destination, Notifier, NotifierLinks, NotifyStats};
use crate::progress::Progress;
use crate::secret_url::SecretUrl;
use crate::slack::{SlackWebhook, Stdout};
use crate::store::{Announcement, Pending, SinkMarks, StoreCmd};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

/// One sink's counters and progress, for status reporting and health.
#[derive(Debug)]
pub struct SinkStats {
    /// What to call it (its id for notifiers, `alertmanager HOST` for a
    /// peer); never a secret.
    pub name: String,
    /// Its counters.
    pub stats: Arc<NotifyStats>,
    /// Its thread's progress.
    pub progress: Arc<Progress>,
    /// Whether it delivers from the outbox (a notifier), rather than
    /// sending the state (an Alertmanager peer).
    pub from_outbox: bool,
}

/// Every sink's counters, read lock-free by the http, heartbeat and
/// watchdog threads and by the stop.
#[derive(Debug, Default)]
pub struct Deliveries {
    /// One per sink (the default channel first).
    pub sinks: Vec<SinkStats>,
}

impl Deliveries {
    /// Deliveries waiting, over every sink.
    pub fn pending(&self) -> u64 {
        self.sum(|s| &s.pending)
    }

    /// Outbox deliveries waiting: what a stop waits for (what is left
    /// stays in the state file's outbox).
    pub fn outbox_pending(&self) -> u64 {
        self.sinks
            .iter()
            .filter(|s| s.from_outbox)
            .map(|s| s.stats.pending.load(Ordering::Relaxed))
            .sum()
    }

    /// Announcements delivered, over every sink.
    pub fn sent(&self) -> u64 {
        self.sum(|s| &s.sent)
    }

    /// Failed deliveries, over every sink.
    pub fn failed(&self) -> u64 {
        self.sum(|s| &s.failed)
    }

    fn sum(&self, counter: impl Fn(&NotifyStats) -> &std::sync::atomic::AtomicU64) -> u64 {
        self.sinks
            .iter()
            .map(|s| counter(&s.stats).load(Ordering::Relaxed))
            .sum()
    }

    /// The sink that has been failing the longest, and for how long.
    pub fn failing(&self) -> Option<(&SinkStats, Duration)> {
        self.sinks
            .iter()
            .filter_map(|s| Some((s, s.stats.failing_for()?)))
            .max_by_key(|(_, failing)| *failing)
    }

    /// Deliveries waiting, by service id, over every sink.
    pub fn pending_by_service(&self) -> HashMap<Arc<str>, u64> {
        let mut all: HashMap<Arc<str>, u64> = HashMap::new();
        for sink in &self.sinks {
            for (service, count) in sink.stats.pending_by_service() {
                *all.entry(service).or_default() += count;
            }
        }
        all
    }

    /// The sinks' thread progress.
    pub fn progress(&self) -> Vec<Arc<Progress>> {
        self.sinks.iter().map(|s| s.progress.clone()).collect()
    }
}

/// A notifier, built and not started.
struct Planned {
    id: Arc<str>,
    audience: Audience,
    destination: Box<dyn Destination>,
    inbox: Receiver<Vec<Arc<Announcement>>>,
    stats: Arc<NotifyStats>,
    progress: Arc<Progress>,
}

/// The Alertmanager threads, built and not started.
struct AlertmanagerPlan {
    config: Arc<AlertmanagerConfig>,
    book: Arc<AlertBook>,
    inbox: Receiver<Vec<Arc<Announcement>>>,
    peers: Vec<PeerPlan>,
}

/// One Alertmanager peer's thread, built and not started.
struct PeerPlan {
    endpoint: SecretUrl,
    stats: Arc<NotifyStats>,
    progress: Arc<Progress>,
}

/// The sinks of one run, built and not started.
pub struct Sinks {
    notifiers: Vec<Planned>,
    /// The Alertmanager part, when configured.
    alertmanager: Option<AlertmanagerPlan>,
    outlets: Vec<Sender<Vec<Arc<Announcement>>>>,
    deliveries: Arc<Deliveries>,
}

/// The id of the default channel's delivery marks.
pub const CHANNEL_ID: &str = "slack";

impl Sinks {
    /// The sinks `config` asks for.
    pub fn new(config: &Config) -> Sinks {
        let timeout = config.notify.timeout;
        let mut notifiers = Vec::new();
        let mut outlets = Vec::new();
        let mut plan =
            |id: String, name: String, audience: Audience, destination: Box<dyn Destination>| {
                let (tx, rx) = mpsc::channel();
                outlets.push(tx);
                notifiers.push(Planned {
                    id: id.into(),
                    audience,
                    destination,
                    inbox: rx,
                    stats: Arc::new(NotifyStats::default()),
                    progress: Progress::new(name),
                });
            };
        let routed: HashSet<Arc<str>> = config
            .routes
            .iter()
            .map(|r| Arc::from(r.owner.as_str()))
            .collect();
        let channel: Box<dyn Destination> = match &config.sink {
            Sink::Stdout => Box::new(Stdout),
            Sink::Slack(url) => Box::new(SlackWebhook::new(
                url.clone(),
                "--slack-webhook".into(),
                timeout,
            )),
        };
        let audience = if routed.is_empty() {
            Audience::Everyone
        } else {
            Audience::AllBut(routed)
        };
        plan(CHANNEL_ID.into(), "notifier".into(), audience, channel);
        for route in &config.routes {
            let Some(url) = &route.to else {
                continue; // routed nowhere: the default channel skips them
            };
            let flag = format!("--route {}=…", route.owner);
            plan(
                format!("slack:{}", route.owner),
                format!("notifier for {}", route.owner),
                Audience::Owner(route.owner.as_str().into()),
                Box::new(SlackWebhook::new(url.clone(), flag, timeout)),
            );
        }
        for url in &config.json_webhooks {
            plan(
                json_sink_id(url),
                format!("notifier for JSON webhook {url}"),
                Audience::Everyone,
                Box::new(JsonWebhook::new(url.clone(), timeout)),
            );
        }
        let alertmanager = config.alertmanager.as_ref().map(|am| {
            let (tx, rx) = mpsc::channel();
            outlets.push(tx);
            let peers = am
                .peers
                .iter()
                .map(|url| PeerPlan {
                    endpoint: url.clone(),
                    stats: Arc::new(NotifyStats::default()),
                    progress: Progress::new(format!("Alertmanager {}", url.host())),
                })
                .collect();
            AlertmanagerPlan {
                config: Arc::new(am.clone()),
                book: Arc::new(AlertBook::default()),
                inbox: rx,
                peers,
            }
        });
        let mut deliveries = Deliveries::default();
        for n in &notifiers {
            deliveries.sinks.push(SinkStats {
                name: n.id.to_string(),
                stats: n.stats.clone(),
                progress: n.progress.clone(),
                from_outbox: true,
            });
        }
        for peer in alertmanager.iter().flat_map(|am| &am.peers) {
            deliveries.sinks.push(SinkStats {
                name: format!("alertmanager {}", peer.endpoint.host()),
                stats: peer.stats.clone(),
                progress: peer.progress.clone(),
                from_outbox: false,
            });
        }
        Sinks {
            notifiers,
            alertmanager,
            outlets,
            deliveries: Arc::new(deliveries),
        }
    }

    /// The sinks that keep delivery marks, for the store writer.
    pub fn marks(&self) -> Vec<SinkMarks> {
        self.notifiers
            .iter()
            .map(|n| {
                let audience = n.audience.clone();
                SinkMarks {
                    id: n.id.clone(),
                    takes: Box::new(move |a| audience.takes(a)),
                }
            })
            .collect()
    }

    /// Where the store writer sends announcements once written: one
    /// channel per sink thread.
    pub fn outlets(&self) -> Vec<Sender<Vec<Arc<Announcement>>>> {
        self.outlets.clone()
    }

    /// Every sink's counters.
    pub fn deliveries(&self) -> Arc<Deliveries> {
        self.deliveries.clone()
    }

    /// Starts every sink thread. Each notifier starts with the outbox
    /// entries its sink doesn't have; the Alertmanager book with `seen`,
    /// what the channel last saw of each service. `spawn` starts a thread.
    pub fn start(
        self,
        config: &Config,
        outbox: &BTreeMap<u64, Pending>,
        seen: &[Arc<Announcement>],
        store: &Sender<StoreCmd>,
        health: &Arc<Health>,
        spawn: &dyn Fn(&'static str, Box<dyn FnOnce() + Send>) -> Result<(), ConfigError>,
    ) -> Result<(), ConfigError> {
        for planned in self.notifiers {
            let pending: Vec<Arc<Announcement>> = outbox
                .values()
                .filter(|p| !p.delivered_to(&planned.id))
                .map(|p| p.announcement.clone())
                .collect();
            let notifier = Notifier::new(
                planned.id,
                planned.audience,
                planned.destination,
                config.notify,
                pending,
                NotifierLinks {
                    inbox: planned.inbox,
                    store: store.clone(),
                    stats: planned.stats,
                    progress: planned.progress,
                },
            );
            spawn("notifier", Box::new(move || notifier.run()))?;
        }
        if let Some(am) = self.alertmanager {
            am.book.seed(seen, crate::cert_expiry::unix_now());
            let (inbox, book) = (am.inbox, am.book.clone());
            spawn(
                "alertmanager",
                Box::new(move || alertmanager::take_in(inbox, book)),
            )?;
            for plan in am.peers {
                let peer = Peer::new(
                    plan.endpoint,
                    am.config.clone(),
                    am.book.clone(),
                    plan.stats,
                    plan.progress,
                    health.clone(),
                );
                spawn("alertmanager-peer", Box::new(move || peer.run()))?;
            }
        }
        Ok(())
    }
}

/// The id of a JSON webhook's delivery marks: `json:HOST:HASH`, where the
/// hash (FNV-1a of the whole URL, 32 bits) tells apart two webhooks on one
/// host without writing the URL, a secret, into the state file.
pub fn json_sink_id(url: &SecretUrl) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in url.expose().bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    format!("json:{}:{hash:08x}", url.host())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Subject;

    #[test]
    fn audiences_split_by_owner_and_everyone_gets_procjon() {
        let of = |owner: Option<&str>| Announcement {
            subject: Some(Arc::new(Subject {
                owner: owner.map(Arc::from),
                ..Default::default()
            })),
            ..Default::default()
        };
        let routed = Audience::AllBut(HashSet::from([Arc::from("web")]));
        let team = Audience::Owner("web".into());
        assert!(!routed.takes(&of(Some("web"))));
        assert!(routed.takes(&of(Some("db"))));
        assert!(team.takes(&of(Some("web"))));
        assert!(!team.takes(&of(Some("db"))));
        for audience in [&routed, &team, &Audience::Everyone] {
            assert!(audience.takes(&of(None)));
            assert!(audience.takes(&Announcement::default()));
        }
    }

    #[test]
    fn json_ids_name_the_host_and_tell_urls_apart() {
        let a = SecretUrl::parse("https://hooks.example/a/secret").unwrap();
        let b = SecretUrl::parse("https://hooks.example/b/secret").unwrap();
        let id = json_sink_id(&a);
        assert!(id.starts_with("json:hooks.example:"), "{id}");
        assert!(!id.contains("secret"));
        assert_ne!(id, json_sink_id(&b));
        assert_eq!(id, json_sink_id(&a));
    }
}
