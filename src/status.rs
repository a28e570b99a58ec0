//! The clients of a running daemon's HTTP API: `procjon status` asks for
//! its services and lays them out as a table; `procjon silence` and
//! `procjon unsilence` change silences (only from the daemon's own
//! machine). Each runs on the main thread of a short-lived process;
//! `cli::run` prints the result or the error and picks the exit code
//! (`status`: 0 all known services available, 1 not, 2 the daemon could
//! not be asked).

use crate::api::{ApiError, ServiceStatus};
use crate::message::human_duration;
use crate::silence_api::SilenceRequest;
use std::fmt;
use std::time::Duration;

/// How long the whole request may take, connecting included.
const TIMEOUT: Duration = Duration::from_secs(5);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest answer read (about 30 000 services).
const MAX_BODY: u64 = 16 * 1024 * 1024;

/// Why the daemon's status could not be read.
#[derive(Debug)]
#[non_exhaustive]
pub enum StatusError {
    /// The address is not something to connect to (e.g. `off`).
    BadAddress {
        /// The address as given.
        addr: String,
    },
    /// Connecting, sending or receiving failed.
    Unreachable {
        /// The URL asked.
        url: String,
        /// ureq's error.
        source: ureq::Error,
    },
    /// The server answered with a status other than 200.
    HttpStatus {
        /// The URL asked.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// procjon refused the request, saying why.
    Refused {
        /// The URL asked.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// procjon's reason.
        message: String,
    },
    /// The answer is not the JSON procjon sends.
    BadReply {
        /// The URL asked.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusError::BadAddress { addr } => write!(
                f,
                "--http {addr:?}: give the daemon's status address as HOST:PORT (default 127.0.0.1:9090)"
            ),
            StatusError::Unreachable { url, source } => write!(
                f,
                "cannot reach procjon at {url}: {source}; is it running, with the same --http address?"
            ),
            StatusError::HttpStatus { url, status } => write!(
                f,
                "{url} answered HTTP {status}; is that address procjon's --http address?"
            ),
            StatusError::Refused {
                url,
                status,
                message,
            } => write!(f, "{url} answered HTTP {status}: {message}"),
            StatusError::BadReply { url, reason } => write!(
                f,
                "{url} did not answer procjon's JSON: {reason}; is that address procjon's --http address?"
            ),
        }
    }
}

impl std::error::Error for StatusError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StatusError::Unreachable { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The `/api/services` URL for a `--http` address: `HOST:PORT`, or a base
/// URL starting with `http://` or `https://`.
pub fn services_url(addr: &str) -> Result<String, StatusError> {
    let addr = addr.trim();
    if addr.is_empty() || addr.eq_ignore_ascii_case("off") {
        return Err(StatusError::BadAddress {
            addr: addr.to_string(),
        });
    }
    let base = if addr.starts_with("http://") || addr.starts_with("https://") {
        addr.trim_end_matches('/').to_string()
    } else {
        format!("http://{addr}")
    };
    Ok(format!("{base}/api/services"))
}

/// The HTTP client of these commands: short timeouts, no redirects.
fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(concat!("procjon-status/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// Fetches every service's status from the daemon at `addr`.
pub fn fetch(addr: &str) -> Result<Vec<ServiceStatus>, StatusError> {
    let url = services_url(addr)?;
    let agent = agent(TIMEOUT);
    let unreachable = |source| StatusError::Unreachable {
        url: url.clone(),
        source,
    };
    let mut response = agent.get(&url).call().map_err(unreachable)?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(StatusError::HttpStatus { url, status });
    }
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_BODY)
        .read_to_string()
        .map_err(unreachable)?;
    serde_json::from_str(&body).map_err(|err| StatusError::BadReply {
        url,
        reason: err.to_string(),
    })
}

/// How long a silence request may take: procjon answers once the silence
/// is on disk.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(35);

/// Silences a service (or `*`) through the daemon at `addr`.
pub fn silence(addr: &str, request: &SilenceRequest) -> Result<(), StatusError> {
    let url = silences_url(addr)?;
    let body = serde_json::to_string(request).map_err(|err| StatusError::BadReply {
        url: url.clone(),
        reason: err.to_string(),
    })?;
    let sent = agent(CHANGE_TIMEOUT)
        .post(&url)
        .header("Content-Type", "application/json")
        .send(&body);
    answered(url, sent)
}

/// Ends the silence of a service (or `*`) through the daemon at `addr`.
pub fn unsilence(addr: &str, service: &str) -> Result<(), StatusError> {
    let base = silences_url(addr)?;
    let url = format!("{base}/{}", percent_encode(service));
    let sent = agent(CHANGE_TIMEOUT).delete(&url).call();
    answered(url, sent)
}

/// The `/api/silences` URL for a `--http` address.
fn silences_url(addr: &str) -> Result<String, StatusError> {
    let services = services_url(addr)?;
    let base = services.strip_suffix("/api/services").unwrap_or(&services);
    Ok(format!("{base}/api/silences"))
}

/// `Ok` for a 200, else the error procjon gave.
fn answered(
    url: String,
    sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<(), StatusError> {
    let mut response = sent.map_err(|source| StatusError::Unreachable {
        url: url.clone(),
        source,
    })?;
    let status = response.status().as_u16();
    if status == 200 {
        return Ok(());
    }
    let body = response
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .unwrap_or_default();
    match serde_json::from_str::<ApiError>(&body) {
        Ok(error) => Err(StatusError::Refused {
            url,
            status,
            message: error.error,
        }),
        Err(_) => Err(StatusError::HttpStatus { url, status }),
    }
}

/// `%XX`-escapes what a path segment can't hold as is.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~:@".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Whether every service that has been pinged at least once is available.
pub fn all_known_available(services: &[ServiceStatus]) -> bool {
    services.iter().all(|s| s.is_available() || s.is_unknown())
}

/// The services as an aligned table with a header line, one row each:
/// service, availability, status name, age of the last ping (`-`: none since
/// the daemon started), and, when any service has one, the detail its
/// latest ping gave.
pub fn table(services: &[ServiceStatus]) -> String {
    let with_detail = services.iter().any(|s| s.detail.is_some());
    let with_note = services.iter().any(|s| !s.note().is_empty());
    let mut header = vec!["SERVICE", "AVAILABILITY", "STATUS", "LAST PING"];
    if with_note {
        header.push("NOTE");
    }
    if with_detail {
        header.push("DETAIL");
    }
    let rows: Vec<Vec<String>> = std::iter::once(header.iter().map(|h| h.to_string()).collect())
        .chain(services.iter().map(|s| {
            let mut row = vec![
                s.id.clone(),
                s.availability.clone(),
                s.status_name.clone(),
                s.last_ping_age_s
                    .filter(|age| age.is_finite() && *age >= 0.0)
                    .map_or_else(
                        || "-".to_string(),
                        |age| format!("{} ago", human_duration(Duration::from_secs_f64(age))),
                    ),
            ];
            if with_note {
                row.push(s.note());
            }
            if with_detail {
                row.push(s.detail.clone().unwrap_or_default());
            }
            row
        }))
        .collect();
    let mut widths = vec![0usize; header.len()];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(id: &str, availability: &str, age: Option<f64>) -> ServiceStatus {
        ServiceStatus {
            id: id.into(),
            availability: availability.into(),
            status: 0,
            status_name: "ok".into(),
            statuses: vec!["ok".into()],
            timeout_s: 10.0,
            last_ping_age_s: age,
            last_change: None,
            undelivered: 0,
            owner: Some("procjonagent".into()),
            detail: None,
            perfdata: Vec::new(),
            silence: None,
            suppressed_by: None,
            flapping: false,
        }
    }

    #[test]
    fn builds_urls_from_addresses() {
        assert_eq!(
            services_url("127.0.0.1:9090").unwrap(),
            "http://127.0.0.1:9090/api/services"
        );
        assert_eq!(
            services_url("http://status.example/procjon/").unwrap(),
            "http://status.example/procjon/api/services"
        );
        assert!(services_url("off").is_err());
        assert!(services_url(" ").is_err());
    }

    #[test]
    fn lays_out_a_table_and_judges_availability() {
        let services = [
            service("db", "not_available", None),
            service("web-1", "available", Some(2.04)),
            service("new", "unknown", None),
        ];
        assert_eq!(
            table(&services),
            "SERVICE  AVAILABILITY   STATUS  LAST PING\n\
             db       not_available  ok      -\n\
             web-1    available      ok      2s ago\n\
             new      unknown        ok      -\n"
        );
        assert!(!all_known_available(&services));
        let mut checked = service("disk", "available", Some(1.0));
        checked.detail = Some("DISK OK - free space: / 61%".into());
        assert_eq!(
            table(&[checked, service("db", "available", None)]),
            "SERVICE  AVAILABILITY  STATUS  LAST PING  DETAIL\n\
             disk     available     ok      1s ago     DISK OK - free space: / 61%\n\
             db       available     ok      -\n"
        );
        assert!(all_known_available(&services[1..]));
        assert!(all_known_available(&[]));
    }
}
