//! The heartbeat thread (`--heartbeat-url`): tells an independent dead
//! man's switch (healthchecks.io, Uptime Kuma's push monitor, Cronitor, …)
//! that procjon is alive, so that someone hears about it when procjon
//! itself is gone, which procjon can't say. Every `--heartbeat-interval`
//! it requests the URL while procjon is healthy, and `URL/fail` with a
//! one-line reason as the body when it is not (the healthchecks.io
//! convention): a thread stalled, the state file unwritable, or the webhook
//! failing for longer than `--heartbeat-fail-after`. The URL is a secret:
//! logs show its host only.

use crate::health::Health;
use crate::secret_url::SecretUrl;
use std::sync::Arc;
use std::time::Duration;

/// The heartbeat thread's state.
pub struct Heartbeat {
    url: SecretUrl,
    fail_url: SecretUrl,
    interval: Duration,
    health: Arc<Health>,
    agent: ureq::Agent,
}

/// What the last request said, to log changes only.
#[derive(Debug, Clone, PartialEq)]
enum Said {
    Nothing,
    Healthy,
    Failing(String),
    Unreachable,
}

impl Heartbeat {
    /// A heartbeat to `url` every `interval`, judged by `health`; each
    /// request may take `timeout` (the webhook's `--slack-timeout`), at
    /// most the interval.
    pub fn new(
        url: SecretUrl,
        interval: Duration,
        timeout: Duration,
        health: Arc<Health>,
    ) -> Heartbeat {
        let agent = crate::outbound::client(timeout.min(interval));
        Heartbeat {
            fail_url: url.join("fail"),
            url,
            interval,
            health,
            agent,
        }
    }

    /// Runs for ever: one request now, then one per interval.
    pub fn run(self) {
        let mut said = Said::Nothing;
        loop {
            said = self.beat(said);
            std::thread::sleep(self.interval);
        }
    }

    /// One request; returns what it said.
    fn beat(&self, before: Said) -> Said {
        let (said, result) = match self.health.problem() {
            None => (Said::Healthy, self.agent.get(self.url.expose()).call()),
            Some(reason) => {
                let result = self
                    .agent
                    .post(self.fail_url.expose())
                    .header("Content-Type", "text/plain; charset=utf-8")
                    .send(reason.as_str());
                (Said::Failing(reason), result)
            }
        };
        let host = self.url.to_string();
        let status = match result {
            Ok(response) => response.status().as_u16(),
            Err(err) => {
                if before != Said::Unreachable {
                    log::warn!(
                        "heartbeat to {host}: {}; trying again every {}",
                        self.url.redact(&err.to_string()),
                        crate::message::human_duration(self.interval)
                    );
                }
                return Said::Unreachable;
            }
        };
        if !(200..300).contains(&status) {
            if before != Said::Unreachable {
                log::warn!(
                    "heartbeat to {host}: HTTP {status}; is --heartbeat-url right? Trying again every {}",
                    crate::message::human_duration(self.interval)
                );
            }
            return Said::Unreachable;
        }
        if std::mem::discriminant(&said) != std::mem::discriminant(&before) {
            match &said {
                Said::Failing(reason) => {
                    log::warn!("heartbeat to {host}: reporting a failure: {reason}")
                }
                _ => log::info!("heartbeat to {host}: healthy"),
            }
        }
        said
    }
}
