//! `--webhook-json URL`: every announcement as a JSON event, for a team's
//! own automation. A notifier thread posts, per batch,
//! `{"version":1,"events":[…]}` (see `docs/sinks.md` for every field).
//! Delivery is at least once: a receiver drops the events whose `seq` it
//! has seen.

use crate::notifier::Destination;
use crate::outbound::{self, Outcome};
use crate::secret_url::SecretUrl;
use crate::store::{Announcement, Kind};
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// Most events in one post.
pub const MAX_EVENTS: usize = 500;

/// Least time between two posts: a burst (a network partition takes
/// thousands of services down at once) goes out in a few large posts,
/// after the channel's, rather than in hundreds competing with it.
pub const INTERVAL: Duration = Duration::from_millis(250);

/// The body's format version; a change that could break a receiver gets a
/// new one.
pub const VERSION: u32 = 1;

/// A JSON webhook.
pub struct JsonWebhook {
    url: SecretUrl,
    client: ureq::Agent,
}

impl JsonWebhook {
    /// Posts to `url`; each post may take `timeout`.
    pub fn new(url: SecretUrl, timeout: Duration) -> JsonWebhook {
        JsonWebhook {
            url,
            client: outbound::client(timeout),
        }
    }
}

/// One event as posted.
#[derive(Debug, Serialize)]
pub struct Event<'a> {
    /// The announcement's sequence number: unique, increasing.
    pub seq: u64,
    /// The service id; `null` for procjon's own events (`kind` `procjon`).
    pub service: Option<&'a str>,
    /// The certificate identity that owns the service, when known.
    pub owner: Option<&'a str>,
    /// What happened.
    pub kind: &'static str,
    /// Whether the service is available after the event.
    pub available: bool,
    /// The name of its status after the event.
    pub status: Option<&'a str>,
    /// The name of its status before, when the event changed it.
    pub previous_status: Option<&'a str>,
    /// The line the channel gets.
    pub text: &'a str,
    /// When it happened, RFC 3339 UTC.
    pub at: String,
}

impl<'a> Event<'a> {
    /// The event that `announcement` makes.
    pub fn of(announcement: &'a Announcement) -> Event<'a> {
        let subject = announcement.subject.as_deref();
        let procjon = announcement.kind == Kind::Procjon || announcement.service.is_empty();
        Event {
            seq: announcement.seq,
            service: (!procjon).then_some(&*announcement.service),
            owner: subject.and_then(|s| s.owner.as_deref()),
            kind: announcement.kind.as_str(),
            available: announcement.available,
            status: subject.and_then(|s| s.status.as_deref()),
            previous_status: subject.and_then(|s| s.previous_status.as_deref()),
            text: &announcement.text,
            at: announcement.at.to_string(),
        }
    }
}

/// The body of one post.
pub fn body(batch: &[Arc<Announcement>]) -> String {
    #[derive(Serialize)]
    struct Body<'a> {
        version: u32,
        events: Vec<Event<'a>>,
    }
    let events = batch.iter().map(|a| Event::of(a)).collect();
    serde_json::to_string(&Body {
        version: VERSION,
        events,
    })
    .unwrap_or_default()
}

impl Destination for JsonWebhook {
    fn describe(&self) -> String {
        format!("JSON webhook {}", self.url)
    }

    fn batch_len(&self, queue: &VecDeque<Arc<Announcement>>) -> usize {
        queue.len().min(MAX_EVENTS)
    }

    fn deliver(&self, batch: &[Arc<Announcement>]) -> Outcome {
        outbound::post_json(&self.client, &self.url, &body(batch))
    }

    fn refused_hint(&self) -> String {
        "the receiver refused the events: check it and --webhook-json".into()
    }

    fn interval(&self, _configured: Duration) -> Duration {
        INTERVAL
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Subject, Timestamp};

    #[test]
    fn events_carry_the_subject_and_procjon_has_no_service() {
        let down = Arc::new(Announcement {
            seq: 17,
            service: "web-1".into(),
            available: false,
            status: 0,
            text: "web-1 is not available (no ping for 10s)".into(),
            at: Timestamp::Seconds(1_796_292_000),
            kind: Kind::NotAvailable,
            held: None,
            subject: Some(Arc::new(Subject {
                owner: Some("web-hosts".into()),
                status: Some("ok".into()),
                previous_status: None,
            })),
        });
        let back = Arc::new(Announcement {
            seq: 18,
            service: "".into(),
            text: "procjon is back after 12s (planned restart)".into(),
            kind: Kind::Procjon,
            available: true,
            ..Default::default()
        });
        let value: serde_json::Value = serde_json::from_str(&body(&[down, back])).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"version": 1, "events": [
                {"seq": 17, "service": "web-1", "owner": "web-hosts", "kind": "not_available",
                 "available": false, "status": "ok", "previous_status": null,
                 "text": "web-1 is not available (no ping for 10s)", "at": "2026-12-03T10:00:00Z"},
                {"seq": 18, "service": null, "owner": null, "kind": "procjon",
                 "available": true, "status": null, "previous_status": null,
                 "text": "procjon is back after 12s (planned restart)", "at": ""}
            ]})
        );
    }
}
