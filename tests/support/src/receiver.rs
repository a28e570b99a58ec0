//! A plain HTTP receiver on 127.0.0.1 that records every request (method,
//! path with query, body) and answers with a status the test sets: the
//! stand-in for a dead man's switch (healthchecks.io answers any ping URL
//! with 200 `OK`, an unknown one with 404) or any webhook a test needs.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request as it arrived.
#[derive(Clone, Debug, PartialEq)]
pub struct Received {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path and query, e.g. `/ping/abc/fail`.
    pub path: String,
    /// The body, as text.
    pub body: String,
    /// When it arrived.
    pub at: Instant,
}

/// The receiver; stops when dropped.
pub struct Receiver {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    status: Arc<Mutex<u16>>,
    requests: mpsc::Receiver<Received>,
    server: Arc<tiny_http::Server>,
}

impl Receiver {
    /// Starts a receiver answering 200.
    pub fn start() -> Receiver {
        let server =
            Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("binding the receiver"));
        let port = server.server_addr().to_ip().expect("an IP address").port();
        let status = Arc::new(Mutex::new(200u16));
        let (tx, rx) = mpsc::channel();
        let (accepting, answer) = (server.clone(), status.clone());
        std::thread::spawn(move || {
            for mut request in accepting.incoming_requests() {
                let mut body = String::new();
                let _ = std::io::Read::read_to_string(request.as_reader(), &mut body);
                let received = Received {
                    method: request.method().to_string(),
                    path: request.url().to_string(),
                    body,
                    at: Instant::now(),
                };
                let code = *answer.lock().unwrap();
                let reply = if code == 200 { "OK" } else { "failed" };
                let _ =
                    request.respond(tiny_http::Response::from_string(reply).with_status_code(code));
                if tx.send(received).is_err() {
                    return;
                }
            }
        });
        Receiver {
            base: format!("http://127.0.0.1:{port}"),
            status,
            requests: rx,
            server,
        }
    }

    /// Answers every request from now on with `code`.
    pub fn answer(&self, code: u16) {
        *self.status.lock().unwrap() = code;
    }

    /// The next request, if one comes within `limit`.
    pub fn next(&self, limit: Duration) -> Option<Received> {
        self.requests.recv_timeout(limit).ok()
    }

    /// Waits up to `limit` for a request that `matches`, skipping others;
    /// panics with what it saw if none comes.
    #[track_caller]
    pub fn expect(
        &self,
        what: &str,
        limit: Duration,
        matches: impl Fn(&Received) -> bool,
    ) -> Received {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.requests.recv_timeout(left) {
                Ok(request) if matches(&request) => return request,
                Ok(request) => seen.push(request),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    panic!("no request {what} within {limit:?}; saw {seen:#?}")
                }
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.unblock();
    }
}
