//! [`Options`]: what every agent needs to reach procjon, with the defaults of
//! `procjonagent`'s common flags. Read once by the runner, which validates
//! them before anything starts.

use std::path::PathBuf;
use std::time::Duration;

/// Where and how an agent reports. Fields state their default. Make one
/// with [`Options::new`] and change the fields you need (more may come).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Options {
    /// The service id: 1 to 128 characters from `[A-Za-z0-9._:@/-]`.
    /// No default here; `procjonagent` uses the host name.
    pub service: String,
    /// Silence after which procjon announces the service as not available.
    /// Default 10 s.
    pub timeout: Duration,
    /// How often the check runs and a ping is sent. Must be below
    /// `timeout`. Default 4 s.
    pub period: Duration,
    /// The procjon daemons to report to, each `host:port` (`[::1]:8080`
    /// for IPv6); the host is also the name its certificate must be valid
    /// for. Each gets its own connection, registration and backoff, so
    /// one that is down never delays the others (an HA pair lists both).
    /// One to [`crate::MAX_ENDPOINTS`], each once. Default
    /// `["localhost:8080"]`.
    pub endpoints: Vec<String>,
    /// The CA certificate procjon's certificate must chain to. Default
    /// `.certs/ca.pem`.
    pub root_cert: PathBuf,
    /// The agent's certificate chain, PEM. Default `.certs/procjonagent.pem`.
    pub cert: PathBuf,
    /// The agent's private key, PEM. Default `.certs/procjonagent.key`.
    pub key: PathBuf,
    /// How long a finished agent ([`crate::run_to_end`]) keeps trying to
    /// deliver its last report to a procjon that can't be reached (to each
    /// endpoint independently). Default 10 minutes.
    pub final_timeout: Duration,
}

impl Options {
    /// The defaults, for the service `service`.
    pub fn new(service: impl Into<String>) -> Options {
        Options {
            service: service.into(),
            timeout: Duration::from_secs(10),
            period: Duration::from_secs(4),
            endpoints: vec!["localhost:8080".into()],
            root_cert: PathBuf::from(".certs/ca.pem"),
            cert: PathBuf::from(".certs/procjonagent.pem"),
            key: PathBuf::from(".certs/procjonagent.key"),
            final_timeout: Duration::from_secs(600),
        }
    }
}
