//! The JSON shapes of the HTTP status API (`/api/services`), shared by the
//! server side (the `http` request threads build them from registry
//! snapshots) and the `procjon status` client (which reads them back). The
//! README's "Status over HTTP" section is the field reference.

use crate::frame::PerfValue;
use crate::message::rfc3339;
use crate::registry::ServiceView;
use serde::{Deserialize, Serialize};

/// One service as `/api/services` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// The service id.
    pub id: String,
    /// `unknown` (never pinged), `available` or `not_available`.
    pub availability: String,
    /// The announced status index.
    pub status: u64,
    /// The name of that status.
    pub status_name: String,
    /// All status names, by index.
    pub statuses: Vec<String>,
    /// Seconds without a ping after which the service is not available.
    pub timeout_s: f64,
    /// Seconds since the last ping, to the millisecond; `null` when there was
    /// none since procjon started.
    pub last_ping_age_s: Option<f64>,
    /// When the announced state last changed (RFC 3339, UTC); `null` if never.
    pub last_change: Option<String>,
    /// Announcements about this service not yet delivered to the channel.
    pub undelivered: u64,
    /// The client certificate identity (CN, else first DNS name) allowed to
    /// register and ping it; `null` until one adopts a service registered
    /// before ownership existed.
    #[serde(default)]
    pub owner: Option<String>,
    /// What the latest ping said about the status (a check's first output
    /// line, `exit 3 after 12m`); absent when it said nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Performance data the latest ping carried (a Nagios plugin's), each
    /// value with its `label`, `value`, `uom`, `warn`, `crit`, `min`, `max`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub perfdata: Vec<PerfValue>,
    /// Its silence, while one lasts: its events are recorded, not posted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silence: Option<SilenceStatus>,
    /// A service it depends on that is not available now: its own events
    /// are held meanwhile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed_by: Option<String>,
    /// Whether it is flapping: its changes are held until a whole
    /// `--flap-window` passes without one.
    #[serde(default)]
    pub flapping: bool,
}

/// A silence as `/api/services` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SilenceStatus {
    /// When it ends (RFC 3339, UTC).
    pub until: String,
    /// Who asked for it.
    pub by: String,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ServiceStatus {
    /// The API view of a registry snapshot entry.
    pub fn new(view: &ServiceView, undelivered: u64) -> ServiceStatus {
        let definition = &view.definition;
        ServiceStatus {
            id: definition.service.to_string(),
            availability: view.availability.as_str().to_string(),
            status: view.status,
            status_name: definition.status_name(view.status),
            statuses: definition.statuses.to_vec(),
            timeout_s: definition.timeout_s,
            last_ping_age_s: view
                .last_ping_age
                .map(|age| age.as_millis() as f64 / 1000.0),
            last_change: view.last_change.clone(),
            undelivered,
            owner: definition.owner.as_deref().map(String::from),
            detail: view.detail.as_ref().and_then(|d| d.text.clone()),
            perfdata: view
                .detail
                .as_ref()
                .map(|d| d.perfdata.clone())
                .unwrap_or_default(),
            silence: view.silence.as_ref().map(|s| SilenceStatus {
                until: rfc3339(s.until),
                by: s.by.to_string(),
                reason: s.reason.as_deref().map(String::from),
            }),
            suppressed_by: view.suppressed_by.as_deref().map(String::from),
            flapping: view.flapping,
        }
    }

    /// Whether the service is available.
    pub fn is_available(&self) -> bool {
        self.availability == "available"
    }

    /// Whether the service has never been pinged (not counted as a problem).
    pub fn is_unknown(&self) -> bool {
        self.availability == "unknown"
    }

    /// What the policy is doing with it, for people: `silenced until … by
    /// …`, `suppressed by …`, `flapping`; empty when nothing.
    pub fn note(&self) -> String {
        let mut notes = Vec::new();
        if let Some(silence) = &self.silence {
            notes.push(format!(
                "silenced until {} by {}",
                silence.until, silence.by
            ));
        }
        if let Some(parent) = &self.suppressed_by {
            notes.push(format!("suppressed by {parent}"));
        }
        if self.flapping {
            notes.push("flapping".into());
        }
        notes.join("; ")
    }
}

/// The body of an API error (`{"error": "..."}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    /// What went wrong, one line.
    pub error: String,
}
