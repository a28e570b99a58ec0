//! The HTTP status endpoint (`--http`, plain HTTP, loopback by default): the
//! status page, the JSON API, Prometheus metrics and a health check.
//!
//! Threads: tiny_http's accept thread and its per-connection reader threads
//! parse requests; the **http** thread ([`run`]) takes each request and hands
//! it to a short-lived **http-request** thread (at most [`MAX_IN_FLIGHT`] at a
//! time; beyond that the answer is 503), so a client that reads slowly holds
//! up only its own request. Request threads read a registry snapshot and the
//! other threads' counters; they never hold a lock across I/O and never wait
//! for the connection threads, the timer, the store writer or the notifier.
//!
//! tiny_http's accept loop ends on the first accept error (e.g. out of file
//! descriptors); [`run`] notices and starts a new server on the same socket
//! after a pause, so the endpoint never goes away for good.

use crate::api::{ApiError, ServiceStatus};
use crate::cert_expiry::{CertExpiry, unix_now};
use crate::config::ConfigError;
use crate::connection::ConnectionStats;
use crate::listener;
use crate::message::rfc3339;
use crate::metrics::{self, StateFileFacts};
use crate::registry::Registry;
use crate::silence_api;
use crate::sinks::Deliveries;
use crate::store::StoreHealth;
use std::fs::OpenOptions;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tiny_http::{Header, Method, Request, Response, Server};

/// The status page, embedded in the binary.
const STATUS_PAGE: &str = include_str!("status_page.html");
/// Most requests handled at once; more are answered 503.
pub const MAX_IN_FLIGHT: usize = 8;
/// Pause before a new server is started after the accept loop ended.
const RESTART_PAUSE: Duration = Duration::from_millis(500);
/// What the status page may do: nothing from elsewhere, fetch only from here.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
     style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// What the HTTP endpoint reads. Everything here is shared with the threads
/// that update it; the endpoint only reads.
pub struct StatusSources {
    /// The service registry (read through [`Registry::snapshot`]).
    pub registry: Arc<Registry>,
    /// Connection counters.
    pub connections: Arc<ConnectionStats>,
    /// Notification counters.
    pub deliveries: Arc<Deliveries>,
    /// The store writer's health flags.
    pub store: Arc<StoreHealth>,
    /// The state file, to check it can still be opened for appending.
    pub state_path: PathBuf,
    /// The server certificate's expiry.
    pub cert: Arc<CertExpiry>,
}

/// The `/healthz` header that says when the server certificate expires.
pub const CERTIFICATE_EXPIRES_HEADER: &str = "Procjon-Certificate-Expires";

impl StatusSources {
    /// Why the state file is not writable, if it is not: the last append
    /// failed, or it can't be opened for appending (e.g. removed or made
    /// read-only behind procjon's back).
    fn state_file_problem(&self) -> Option<String> {
        let path = self.state_path.display();
        if self.store.failing.load(Ordering::Relaxed) {
            return Some(format!(
                "state file {path}: writing it failed (see the log); procjon retries every second"
            ));
        }
        match OpenOptions::new().append(true).open(&self.state_path) {
            Ok(_) => None,
            Err(err) => Some(format!(
                "state file {path} can't be opened for appending: {err}"
            )),
        }
    }
}

/// Resolves and binds the `--http` address.
pub fn bind(addr: &str) -> Result<TcpListener, ConfigError> {
    listener::bind_first(addr).map_err(|source| ConfigError::HttpListen {
        addr: addr.to_string(),
        source,
    })
}

/// Serves status requests forever (see the module docs).
pub fn run(socket: TcpListener, sources: Arc<StatusSources>) {
    let in_flight = Arc::new(AtomicUsize::new(0));
    loop {
        let server = socket
            .try_clone()
            .map_err(|err| err.to_string())
            .and_then(|socket| Server::from_listener(socket, None).map_err(|e| e.to_string()));
        match server {
            Ok(server) => loop {
                match server.recv() {
                    Ok(request) => dispatch(request, &sources, &in_flight),
                    Err(err) => {
                        log::warn!(
                            "http status: accepting a connection: {err}; restarting the HTTP server"
                        );
                        break;
                    }
                }
            },
            Err(err) => log::error!("http status: starting the HTTP server: {err}; retrying"),
        }
        std::thread::sleep(RESTART_PAUSE);
    }
}

/// Hands `request` to a request thread, or answers 503 when too many run.
fn dispatch(request: Request, sources: &Arc<StatusSources>, in_flight: &Arc<AtomicUsize>) {
    if in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_IN_FLIGHT {
        in_flight.fetch_sub(1, Ordering::AcqRel);
        let reply = Reply::text(503, "busy: too many status requests at once; try again\n");
        respond(request, reply);
        return;
    }
    let guard = InFlight(in_flight.clone());
    let sources = sources.clone();
    let spawned = std::thread::Builder::new()
        .name("http-request".into())
        .spawn(move || {
            let _guard = guard;
            let mut request = request;
            let path = request.url().split(['?', '#']).next().unwrap_or_default();
            let reply = if silence_api::is_silence_path(path) {
                silences(&mut request, &sources)
            } else {
                route(request.method(), request.url(), &sources)
            };
            respond(request, reply);
        });
    if let Err(err) = spawned {
        // The request went down with the closure; tiny_http answered it 500.
        log::warn!("http status: cannot start a thread for a request: {err}");
    }
}

/// Gives back an in-flight slot however the request thread ends.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An answer, before it becomes a tiny_http response.
#[derive(Debug)]
struct Reply {
    status: u16,
    content_type: &'static str,
    body: String,
    /// Extra headers, as (name, value).
    headers: Vec<(&'static str, String)>,
}

impl Reply {
    fn text(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
            headers: Vec::new(),
        }
    }

    fn json(status: u16, value: &impl serde::Serialize) -> Reply {
        match serde_json::to_string(value) {
            Ok(mut body) => {
                body.push('\n');
                Reply {
                    status,
                    content_type: "application/json",
                    body,
                    headers: Vec::new(),
                }
            }
            Err(err) => Reply::text(500, format!("encoding JSON: {err}\n")),
        }
    }

    fn api_error(status: u16, error: String) -> Reply {
        Reply::json(status, &ApiError { error })
    }
}

fn respond(request: Request, reply: Reply) {
    let method = request.method().clone();
    let url = request.url().to_string();
    let peer = request.remote_addr().copied();
    let mut response = Response::from_string(reply.body).with_status_code(reply.status);
    let headers = [
        ("Content-Type", reply.content_type),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
    ];
    let extra = reply
        .headers
        .iter()
        .map(|(name, value)| (*name, value.as_str()));
    for (name, value) in headers.into_iter().chain(extra) {
        if let Ok(header) = Header::from_bytes(name, value) {
            response.add_header(header);
        }
    }
    match request.respond(response) {
        Ok(()) => log::debug!(
            "http status: {} {method} {url}: {}",
            peer.map_or_else(|| "?".into(), |p| p.to_string()),
            reply.status
        ),
        Err(err) => log::debug!("http status: answering {method} {url}: {err}"),
    }
}

/// Answers the silence endpoints (see [`silence_api`]).
fn silences(request: &mut Request, sources: &StatusSources) -> Reply {
    let answer = silence_api::check_peer(request.remote_addr().copied())
        .err()
        .unwrap_or_else(|| {
            let url = request.url().to_string();
            let path = url.split(['?', '#']).next().unwrap_or_default();
            match (request.method(), path.strip_prefix("/api/silences/")) {
                (Method::Post, None) => {
                    silence_api::silence(request.as_reader(), &sources.registry)
                }
                (Method::Delete, Some(raw)) if !raw.is_empty() => match percent_decode(raw) {
                    Some(service) => silence_api::unsilence(&service, &sources.registry),
                    None => {
                        silence_api::Answer::error(400, format!("{raw:?} is not a valid URL path"))
                    }
                },
                _ => silence_api::wrong_method(),
            }
        });
    Reply {
        status: answer.status,
        content_type: "application/json",
        body: answer.body,
        headers: Vec::new(),
    }
}

/// Picks the answer for a request.
fn route(method: &Method, url: &str, sources: &StatusSources) -> Reply {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let known = matches!(path, "/" | "/healthz" | "/metrics")
        || path == "/api/services"
        || path.starts_with("/api/services/");
    if !known {
        return if path.starts_with("/api/") {
            Reply::api_error(404, format!("no such API path {path}; try /api/services"))
        } else {
            Reply::text(
                404,
                "not found; try /, /api/services, /metrics or /healthz\n",
            )
        };
    }
    if !matches!(method, Method::Get | Method::Head) {
        let mut reply = Reply::text(405, "method not allowed: use GET\n");
        reply.headers.push(("Allow", "GET, HEAD".into()));
        return reply;
    }
    match path {
        "/" => Reply {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body: STATUS_PAGE.to_string(),
            headers: vec![("Content-Security-Policy", PAGE_POLICY.into())],
        },
        "/healthz" => {
            let problem = sources
                .state_file_problem()
                .or_else(|| sources.cert.expired(unix_now()));
            let mut reply = match problem {
                None => Reply::text(200, "ok\n"),
                Some(problem) => Reply::text(503, format!("{problem}\n")),
            };
            if let Some(not_after) = sources.cert.not_after() {
                reply
                    .headers
                    .push((CERTIFICATE_EXPIRES_HEADER, rfc3339(not_after)));
            }
            reply
        }
        "/metrics" => {
            let services = sources.registry.snapshot();
            let problem = sources.state_file_problem();
            let inputs = metrics::Inputs {
                services: &services,
                connections: &sources.connections,
                deliveries: &sources.deliveries,
                certificate_expiry: sources.cert.not_after(),
                state_file: StateFileFacts {
                    bytes: std::fs::metadata(&sources.state_path).ok().map(|m| m.len()),
                    lines: sources.store.lines.load(Ordering::Relaxed),
                    writable: problem.is_none(),
                },
            };
            let mut reply = Reply::text(200, metrics::render(&inputs));
            reply.content_type = metrics::CONTENT_TYPE;
            reply
        }
        "/api/services" | "/api/services/" => {
            let pending = sources.deliveries.pending_by_service();
            let services: Vec<ServiceStatus> = sources
                .registry
                .snapshot()
                .iter()
                .map(|view| {
                    let undelivered = pending.get(&view.definition.service).copied().unwrap_or(0);
                    ServiceStatus::new(view, undelivered)
                })
                .collect();
            Reply::json(200, &services)
        }
        _ => {
            let raw = path.trim_start_matches("/api/services/");
            let Some(id) = percent_decode(raw) else {
                return Reply::api_error(400, format!("{raw:?} is not a valid URL path"));
            };
            let pending = sources.deliveries.pending_by_service();
            match sources.registry.get(&id) {
                Some(view) => {
                    let undelivered = pending.get(id.as_str()).copied().unwrap_or(0);
                    Reply::json(200, &ServiceStatus::new(&view, undelivered))
                }
                None => Reply::api_error(404, format!("no service {id:?} is registered")),
            }
        }
    }
}

/// Decodes `%XX` escapes; `None` when an escape is malformed or the result
/// is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(percent_decode("db%40eu%2F1").as_deref(), Some("db@eu/1"));
        assert_eq!(percent_decode("a/b:c").as_deref(), Some("a/b:c"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%ff"), None);
        assert_eq!(percent_decode("%+f"), None);
    }
}
