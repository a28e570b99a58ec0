//! The validated configuration of a `procjon` run and the errors that stop
//! start-up. Built once by `cli` from the command line and environment; read
//! by `daemon` while it wires the threads together.

use crate::store::StoreError;
use crate::tls::TlsError;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Everything `procjon` (serving) needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on for agents. Default `localhost:8080`.
    pub endpoint: String,
    /// CA certificate that agent certificates must chain to. Default `.certs/ca.pem`.
    pub root_cert: PathBuf,
    /// The server's certificate chain. Default `.certs/procjon.pem`.
    pub cert: PathBuf,
    /// The server's private key. Default `.certs/procjon.key`.
    pub key: PathBuf,
    /// State file. Default `procjon-state.jsonl`.
    pub state: PathBuf,
    /// Where notifications go. Default: standard output.
    pub sink: Sink,
    /// Pacing and retry settings for the notifier.
    pub notify: NotifyTuning,
    /// How long a TLS handshake may take before the connection is dropped. Default 5 s.
    pub handshake_timeout: Duration,
    /// Address of the plain-HTTP status endpoint; `None` when turned off
    /// (`--http off`). Default `127.0.0.1:9090`.
    pub http: Option<String>,
    /// How long an established connection may be silent; `None` (the
    /// default): three times the longest registered timeout, at least a minute.
    pub idle_timeout: Option<Duration>,
    /// Most agent connections open at once; more are answered `busy`. Default 10,000.
    pub max_connections: u64,
    /// Registry limits (most services: default 100,000).
    pub limits: crate::registry::Limits,
}

/// Where notifications are delivered.
#[derive(Debug, Clone, PartialEq)]
pub enum Sink {
    /// Print each notification as one line on standard output.
    Stdout,
    /// Post to a Slack incoming webhook.
    Slack(WebhookUrl),
}

/// Notifier timings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NotifyTuning {
    /// Least time between two posts. Default 1 s (Slack's documented rate).
    pub interval: Duration,
    /// First retry delay after a failed post; doubles up to `max_backoff`. Default 1 s.
    pub backoff: Duration,
    /// Longest retry delay. 5 minutes.
    pub max_backoff: Duration,
    /// Time limit for one post, connection included. Default 10 s.
    pub timeout: Duration,
}

impl Default for NotifyTuning {
    fn default() -> Self {
        NotifyTuning {
            interval: Duration::from_secs(1),
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            timeout: Duration::from_secs(10),
        }
    }
}

/// A webhook URL. It is a secret: `Debug` and `Display` show its host only.
#[derive(Clone, PartialEq)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    /// Checks that `url` is an `http://` or `https://` URL with a host.
    pub fn parse(url: &str) -> Result<WebhookUrl, ConfigError> {
        let url = url.trim();
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(|| ConfigError::BadWebhook {
                reason: "it must start with https:// (or http://)".into(),
            })?;
        let webhook = WebhookUrl(url.to_string());
        if rest.is_empty() || webhook.host().is_empty() {
            return Err(ConfigError::BadWebhook {
                reason: "it has no host".into(),
            });
        }
        Ok(webhook)
    }

    /// The full URL, for the HTTP client only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The host (and port) part, safe to log.
    pub fn host(&self) -> &str {
        let rest = self.0.split_once("://").map_or("", |(_, rest)| rest);
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host)
    }
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookUrl({}/…)", self.host())
    }
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/…", self.host())
    }
}

/// A problem that stops start-up (exit code 2).
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// A certificate, key or CA file can't be used.
    Tls(TlsError),
    /// The listen address can't be resolved or bound.
    Listen {
        /// The address as given.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The HTTP status address (`--http`) can't be resolved or bound.
    HttpListen {
        /// The address as given.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The webhook URL is unusable.
    BadWebhook {
        /// What is wrong with it (never the URL itself: it is a secret).
        reason: String,
    },
    /// A flag has a value that can't be used.
    BadFlag {
        /// The flag, e.g. `--slack-interval`.
        flag: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The state file can't be read, replayed or written.
    State(StoreError),
    /// One of procjon's own threads could not be started.
    Thread {
        /// The thread's name.
        name: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

const GEN_CERTS_HINT: &str =
    "run scripts/gen-certs.sh to make development certificates, or point the flag at yours";

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Tls(err) if err.is_missing_file() => write!(f, "{err}; {GEN_CERTS_HINT}"),
            ConfigError::Tls(err) => err.fmt(f),
            ConfigError::Listen { addr, source } => write!(
                f,
                "listening on {addr}: {source}; stop whatever uses it or pick another address with --endpoint"
            ),
            ConfigError::HttpListen { addr, source } => write!(
                f,
                "serving HTTP status on {addr}: {source}; give a free HOST:PORT with --http, or --http off"
            ),
            ConfigError::BadWebhook { reason } => write!(
                f,
                "Slack webhook URL (--slack-webhook or PROCJON_SLACK_WEBHOOK): {reason}"
            ),
            ConfigError::BadFlag { flag, reason } => write!(f, "{flag}: {reason}"),
            ConfigError::State(err) => err.fmt(f),
            ConfigError::Thread { name, source } => {
                write!(f, "starting the {name} thread: {source}")
            }
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Listen { source, .. }
            | ConfigError::HttpListen { source, .. }
            | ConfigError::Thread { source, .. } => Some(source),
            ConfigError::State(err) => Some(err),
            ConfigError::Tls(err) => Some(err),
            ConfigError::BadWebhook { .. } | ConfigError::BadFlag { .. } => None,
        }
    }
}

impl From<TlsError> for ConfigError {
    fn from(err: TlsError) -> Self {
        ConfigError::Tls(err)
    }
}

impl From<StoreError> for ConfigError {
    fn from(err: StoreError) -> Self {
        ConfigError::State(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_shows_host_only() {
        let url = WebhookUrl::parse("https://hooks.slack.com/services/T000/B000/XXXX").unwrap();
        assert_eq!(url.host(), "hooks.slack.com");
        assert_eq!(format!("{url:?}"), "WebhookUrl(hooks.slack.com/…)");
        assert!(!format!("{url}").contains("XXXX"));
        let with_user = WebhookUrl::parse("http://user:pw@127.0.0.1:99/x").unwrap();
        assert_eq!(with_user.host(), "127.0.0.1:99");
        assert!(WebhookUrl::parse("ftp://x").is_err());
        assert!(WebhookUrl::parse("https://").is_err());
        assert!(WebhookUrl::parse("https:///path").is_err());
    }
}
