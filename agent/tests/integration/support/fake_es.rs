//! A fake Elasticsearch node on tiny_http: answers `GET /_cluster/health`
//! like the real one (a JSON document with `"status":"green"` and friends),
//! or fails on demand: a 500, a body that isn't health, or no answer.

use std::io::Cursor;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tiny_http::{Header, Response, Server, StatusCode};

/// What the fake answers next.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Health {
    /// 200 with `"status":"green"`.
    Green,
    /// 200 with `"status":"yellow"`.
    Yellow,
    /// 200 with `"status":"red"`.
    Red,
    /// 500 with Elasticsearch's error document.
    ServerError,
    /// 200 with an HTML page.
    Garbage,
    /// Holds the request for a while without answering.
    Hang,
}

/// A running fake node; stops on drop.
pub struct FakeEs {
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    mode: Arc<Mutex<Health>>,
    paths: Arc<Mutex<Vec<String>>>,
    server: Arc<Server>,
}

/// Basic auth the fake demands when set: `elastic:s3cret`.
pub const AUTHORIZATION: &str = "Basic ZWxhc3RpYzpzM2NyZXQ=";

impl FakeEs {
    /// Starts a node answering `mode`; with `require_auth`, requests without
    /// the right basic-auth header get a 401 as from a secured cluster.
    pub fn start(mode: Health, require_auth: bool) -> FakeEs {
        let server =
            Arc::new(Server::http("127.0.0.1:0").expect("starting the fake Elasticsearch"));
        let url = format!(
            "http://{}",
            server.server_addr().to_ip().expect("an IP address")
        );
        let mode = Arc::new(Mutex::new(mode));
        let paths = Arc::new(Mutex::new(Vec::new()));
        let (shared_mode, shared_paths, shared) = (mode.clone(), paths.clone(), server.clone());
        std::thread::spawn(move || {
            let server = shared;
            for request in server.incoming_requests() {
                shared_paths.lock().unwrap().push(request.url().to_string());
                let authorized = !require_auth
                    || request
                        .headers()
                        .iter()
                        .any(|h| h.field.equiv("Authorization") && h.value == AUTHORIZATION);
                let mode = *shared_mode.lock().unwrap();
                let (status, body) = if request.url() != "/_cluster/health" {
                    (404, error_body("resource_not_found_exception", 404))
                } else if !authorized {
                    (401, error_body("security_exception", 401))
                } else {
                    match mode {
                        Health::Green => (200, health_body("green")),
                        Health::Yellow => (200, health_body("yellow")),
                        Health::Red => (200, health_body("red")),
                        Health::ServerError => (500, error_body("illegal_state_exception", 500)),
                        Health::Garbage => (200, "<html><body>It works!</body></html>".into()),
                        Health::Hang => {
                            std::thread::spawn(move || {
                                std::thread::sleep(Duration::from_secs(3));
                                drop(request);
                            });
                            continue;
                        }
                    }
                };
                let content_type = if body.starts_with('<') {
                    "text/html"
                } else {
                    "application/json"
                };
                let response = Response::new(
                    StatusCode(status),
                    vec![
                        Header::from_bytes("Content-Type", content_type).expect("header"),
                        Header::from_bytes("X-elastic-product", "Elasticsearch").expect("header"),
                    ],
                    Cursor::new(body.clone().into_bytes()),
                    Some(body.len()),
                    None,
                );
                let _ = request.respond(response);
            }
        });
        FakeEs {
            url,
            mode,
            paths,
            server,
        }
    }

    /// Changes what the next requests get.
    pub fn set(&self, mode: Health) {
        *self.mode.lock().unwrap() = mode;
    }

    /// The paths requested so far.
    pub fn paths(&self) -> Vec<String> {
        self.paths.lock().unwrap().clone()
    }
}

impl Drop for FakeEs {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

fn health_body(status: &str) -> String {
    format!(
        r#"{{"cluster_name":"procjon-test","status":"{status}","timed_out":false,"number_of_nodes":1,"number_of_data_nodes":1,"active_primary_shards":3,"active_shards":3,"relocating_shards":0,"initializing_shards":0,"unassigned_shards":0,"delayed_unassigned_shards":0,"number_of_pending_tasks":0,"number_of_in_flight_fetch":0,"task_max_waiting_in_queue_millis":0,"active_shards_percent_as_number":100.0}}"#
    )
}

fn error_body(kind: &str, status: u16) -> String {
    format!(
        r#"{{"error":{{"root_cause":[{{"type":"{kind}","reason":"fake"}}],"type":"{kind}","reason":"fake"}},"status":{status}}}"#
    )
}
