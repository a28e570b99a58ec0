//! The `elasticsearch` agent: the cluster health colour from
//! `GET /_cluster/health`, with optional basic auth and a private CA. The
//! request has a deadline; any HTTP error, timeout or unexpected body is
//! reported as `unknown`.

use crate::agent::{Agent, CheckError};
use crate::error::{AgentError, one_line};
use serde::Deserialize;
use std::fmt;
use std::path::Path;
use std::time::Duration;

/// The statuses: the health colours, then `unknown`.
pub const STATUSES: [&str; 4] = ["green", "yellow", "red", "unknown"];
/// Environment variable holding the basic-auth password.
pub const PASSWORD_ENV: &str = "PROCJON_ES_PASSWORD";
/// Most bytes of a health response read.
const BODY_LIMIT: u64 = 64 * 1024;

/// Reports an Elasticsearch cluster's health.
#[derive(Debug)]
pub struct Elasticsearch {
    url: String,
    shown: String,
    authorization: Option<Authorization>,
    http: ureq::Agent,
}

/// An `Authorization` header value. It holds the password: `Debug` hides it.
struct Authorization(String);

impl fmt::Debug for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Authorization(…)")
    }
}

impl Elasticsearch {
    /// An agent for the cluster at `host` (`http://` or `https://`, e.g.
    /// `http://localhost:9200`). `credentials` (user, password) turn on
    /// basic auth;
    /// `ca` is the CA certificate an HTTPS cluster's certificate chains to
    /// (default: the public web roots). A request gives up after `deadline`
    /// (`procjonagent` uses the period).
    pub fn new(
        host: &str,
        credentials: Option<(&str, &str)>,
        ca: Option<&Path>,
        deadline: Duration,
    ) -> Result<Elasticsearch, AgentError> {
        let base = host.trim().trim_end_matches('/');
        let https = base.starts_with("https://");
        let has_host = base
            .strip_prefix("https://")
            .or_else(|| base.strip_prefix("http://"))
            .is_some_and(|rest| !rest.is_empty());
        if !has_host {
            return Err(AgentError::BadOption {
                option: "--host",
                reason: format!(
                    "{:?} is not an http:// or https:// URL with a host, e.g. http://localhost:9200",
                    without_userinfo(host)
                ),
            });
        }
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(ca) = ca {
            if !https {
                return Err(AgentError::BadOption {
                    option: "--ca",
                    reason: format!(
                        "the cluster {:?} is not https://; drop --ca or use an https:// --host",
                        without_userinfo(base)
                    ),
                });
            }
            let roots: Vec<ureq::tls::Certificate<'static>> = procjon::tls::load_certs(ca)
                .map_err(|err| AgentError::BadOption {
                    option: "--ca",
                    reason: format!("{err}; give the CA certificate that signed the cluster's"),
                })?
                .iter()
                .map(|der| ureq::tls::Certificate::from_der(der.as_ref()).to_owned())
                .collect();
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&roots));
        }
        let http = ureq::Agent::config_builder()
            .timeout_global(Some(deadline))
            .http_status_as_error(true)
            .max_redirects(0)
            .tls_config(tls.build())
            .build()
            .new_agent();
        let url = format!("{base}/_cluster/health");
        let shown = without_userinfo(&url);
        Ok(Elasticsearch {
            url,
            shown,
            authorization: credentials.map(|(user, password)| {
                Authorization(format!(
                    "Basic {}",
                    base64(format!("{user}:{password}").as_bytes())
                ))
            }),
            http,
        })
    }
}

impl Agent for Elasticsearch {
    fn statuses(&self) -> Vec<String> {
        STATUSES.iter().map(|s| s.to_string()).collect()
    }

    fn check(&mut self) -> Result<u64, CheckError> {
        let shown = &self.shown;
        let http = |source| EsError::Http {
            url: shown.clone(),
            source,
        };
        let mut request = self.http.get(&self.url);
        if let Some(Authorization(value)) = &self.authorization {
            request = request.header("Authorization", value);
        }
        let mut response = request.call().map_err(http)?;
        let body = response
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .read_to_vec()
            .map_err(http)?;
        let health: Health = serde_json::from_slice(&body).map_err(|e| EsError::Body {
            url: shown.clone(),
            reason: e.to_string(),
        })?;
        let colours = &STATUSES[..3];
        colours
            .iter()
            .position(|c| *c == health.status)
            .map(|i| i as u64)
            .ok_or_else(|| {
                EsError::Body {
                    url: shown.clone(),
                    reason: format!("unexpected status {:?}", one_line(&health.status)),
                }
                .into()
            })
    }
}

/// The part of a `_cluster/health` response this agent reads.
#[derive(Deserialize)]
struct Health {
    status: String,
}

/// Why the health could not be read.
#[derive(Debug)]
enum EsError {
    /// The request failed: connection, TLS, timeout or an HTTP error status.
    Http { url: String, source: ureq::Error },
    /// The response is not a cluster health document.
    Body { url: String, reason: String },
}

impl fmt::Display for EsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EsError::Http { url, source } => write!(f, "GET {url}: {source}"),
            EsError::Body { url, reason } => {
                write!(f, "GET {url}: not a cluster health response: {reason}")
            }
        }
    }
}

impl std::error::Error for EsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EsError::Http { source, .. } => Some(source),
            EsError::Body { .. } => None,
        }
    }
}

/// `url` without a `user:password@` part, safe to show.
fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{host}{path}")
}

/// Standard base64 with padding, for the basic-auth header.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let bytes = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(base64(b"martin:secret"), "bWFydGluOnNlY3JldA==");
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"elastic:p\xffss"), "ZWxhc3RpYzpw/3Nz");
    }

    #[test]
    fn hides_credentials() {
        assert_eq!(
            without_userinfo("https://u:pw@es.local:9200/_cluster/health"),
            "https://es.local:9200/_cluster/health"
        );
        let agent = Elasticsearch::new(
            "http://es:9200/",
            Some(("elastic", "hunter2")),
            None,
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(agent.url, "http://es:9200/_cluster/health");
        assert!(!format!("{agent:?}").contains("hunter2"));
    }

    #[test]
    fn refuses_unusable_hosts() {
        for (host, ca, option) in [
            ("localhost:9200", None, "--host"),
            ("http://", None, "--host"),
            ("http://es:9200", Some(Path::new("ca.pem")), "--ca"),
        ] {
            let err = Elasticsearch::new(host, None, ca, Duration::from_secs(1)).unwrap_err();
            assert!(err.to_string().starts_with(option), "{err}");
        }
        let err = Elasticsearch::new(
            "https://es:9200",
            None,
            Some(Path::new("/nonexistent/ca.pem")),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }
}
