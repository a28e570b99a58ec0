//! The HTTP requests procjon makes (Slack, JSON webhooks, Alertmanager, the
//! heartbeat): one client configuration and one reading of what a response
//! means, so every sink retries and logs alike. Used by the sink threads and
//! the heartbeat thread; holds no state of its own.

use crate::secret_url::SecretUrl;
use std::time::Duration;

/// A client for requests that may take `timeout` each, connecting
/// included. It follows no redirect (a redirect would send a secret URL's
/// path to another host) and returns 4xx and 5xx as statuses, not errors.
pub fn client(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(concat!("procjon/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// What happened to one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The receiver took it (2xx).
    Delivered,
    /// Network error, 5xx or 429: try again after `after` (or the backoff).
    Retry {
        /// What the receiver asked for (`Retry-After`), if anything.
        after: Option<Duration>,
        /// Why, for the log (never the URL).
        reason: String,
    },
    /// Any other status: the URL or the request is wrong; retry slowly.
    Rejected {
        /// Why, for the log (never the URL).
        reason: String,
    },
}

/// POSTs `body` as JSON to `url`.
pub fn post_json(client: &ureq::Agent, url: &SecretUrl, body: &str) -> Outcome {
    let response = client
        .post(url.expose())
        .header("Content-Type", "application/json")
        .send(body);
    let mut response = match response {
        Ok(response) => response,
        Err(err) => {
            return Outcome::Retry {
                after: None,
                reason: url.redact(&err.to_string()),
            };
        }
    };
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let reply = response
        .body_mut()
        .with_config()
        .limit(4096)
        .read_to_string()
        .unwrap_or_default();
    let reply = reply.trim().chars().take(200).collect::<String>();
    match status {
        200..=299 => Outcome::Delivered,
        429 | 500..=599 => Outcome::Retry {
            after: retry_after,
            reason: format!("HTTP {status} {reply}"),
        },
        _ => Outcome::Rejected {
            reason: format!("HTTP {status} {reply}"),
        },
    }
}
