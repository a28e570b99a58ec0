//! The validated configuration of a `procjon` run and the errors that stop
//! start-up. Built once by `cli` from the command line and environment; read
//! by `daemon` while it wires the threads together.

use crate::secret_url::SecretUrl;
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
    /// Owners whose announcements go to another Slack webhook, or nowhere
    /// on Slack (`--route`). Default: none.
    pub routes: Vec<Route>,
    /// JSON webhooks that get every announcement (`--webhook-json`).
    /// Default: none.
    pub json_webhooks: Vec<SecretUrl>,
    /// The Alertmanager cluster told the services' state, if any
    /// (`--alertmanager`).
    pub alertmanager: Option<crate::alertmanager::AlertmanagerConfig>,
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
    /// Watching the watcher: heartbeat, stop and stall settings.
    pub liveness: Liveness,
    /// The notification policy's defaults (reminders, flapping).
    pub policy: crate::registry::PolicyConfig,
}

/// How procjon tells others it is alive, and how it stops.
#[derive(Debug, Clone, PartialEq)]
pub struct Liveness {
    /// The dead man's switch to request while healthy (`URL/fail` when
    /// not). Default: none.
    pub heartbeat_url: Option<SecretUrl>,
    /// Time between two heartbeat requests. Default 60 s.
    pub heartbeat_interval: Duration,
    /// How long the webhook may fail before the heartbeat says so. Default 10 min.
    pub heartbeat_fail_after: Duration,
    /// Least downtime the channel is told about at start-up. Default twice
    /// the heartbeat interval, at least a minute.
    pub announce_downtime_after: Duration,
    /// How long a stop waits for queued notifications. Default 5 s.
    pub stop_timeout: Duration,
    /// How long a thread may be busy with one operation before it counts
    /// as stalled. Default 60 s.
    pub stall_after: Duration,
}

/// Where notifications are delivered.
#[derive(Debug, Clone, PartialEq)]
pub enum Sink {
    /// Print each notification as one line on standard output.
    Stdout,
    /// Post to a Slack incoming webhook.
    Slack(SecretUrl),
}

/// `--route OWNER=URL`: the announcements of the services `owner` owns go
/// to `to` instead of the default webhook; `None` (`OWNER=off`): to no
/// Slack webhook at all.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// The certificate identity.
    pub owner: String,
    /// The team's Slack webhook, or none.
    pub to: Option<SecretUrl>,
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
    /// A URL (the webhook, the heartbeat) is unusable.
    BadUrl {
        /// Which URL, and where it came from.
        what: &'static str,
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
            ConfigError::BadUrl { what, reason } => write!(f, "{what}: {reason}"),
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
            ConfigError::BadUrl { .. } | ConfigError::BadFlag { .. } => None,
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
