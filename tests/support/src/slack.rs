//! A stand-in for a Slack incoming webhook on 127.0.0.1, built on tiny_http.
//! Like Slack it takes `{"text": ...}` JSON and answers 200 `ok`; it can be
//! told to fail with a status (500, 404, ...), with 429 and `Retry-After`,
//! or to hang. Every attempt is recorded, into a channel tests wait on.
//! Threads: one serves the requests; a hanging answer gets one of its own.

use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the fake answers the next posts.
#[derive(Clone, Debug)]
pub enum Mode {
    /// 200 `ok`, as Slack does.
    Ok,
    /// This status (500, 404, ...) with the body `failed`.
    Status(u16),
    /// 429 with `Retry-After` in seconds.
    TooMany {
        /// The `Retry-After` value, in seconds.
        retry_after_s: u64,
    },
    /// No answer for this long, then 200.
    Hang(Duration),
}

/// One post the fake received.
#[derive(Clone, Debug)]
pub struct Attempt {
    /// The status the fake answered.
    pub status: u16,
    /// The message's `text`.
    pub text: String,
    /// When it arrived.
    pub at: Instant,
}

/// A running fake webhook; stops on drop.
pub struct FakeSlack {
    /// The webhook URL to give procjon (`http://127.0.0.1:PORT/services/...`).
    pub url: String,
    mode: Arc<Mutex<Mode>>,
    attempts: Receiver<Attempt>,
    server: Arc<tiny_http::Server>,
}

impl FakeSlack {
    /// Starts the fake on a free loopback port, answering [`Mode::Ok`].
    pub fn start() -> FakeSlack {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let mode = Arc::new(Mutex::new(Mode::Ok));
        let (tx, rx) = mpsc::channel();
        let (server2, mode2) = (server.clone(), mode.clone());
        std::thread::spawn(move || {
            for mut request in server2.incoming_requests() {
                let mut body = String::new();
                let _ = std::io::Read::read_to_string(request.as_reader(), &mut body);
                let text = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("text").and_then(|t| t.as_str()).map(String::from));
                let Some(text) = text else {
                    let _ = request.respond(
                        tiny_http::Response::from_string("invalid_payload").with_status_code(400),
                    );
                    continue;
                };
                let mode = mode2.lock().unwrap().clone();
                let tx = tx.clone();
                let respond = move |status: u16, extra: Option<tiny_http::Header>| {
                    let _ = tx.send(Attempt {
                        status,
                        text,
                        at: Instant::now(),
                    });
                    let body = if status == 200 { "ok" } else { "failed" };
                    let mut response =
                        tiny_http::Response::from_string(body).with_status_code(status);
                    if let Some(header) = extra {
                        response.add_header(header);
                    }
                    let _ = request.respond(response);
                };
                match mode {
                    Mode::Ok => respond(200, None),
                    Mode::Status(code) => respond(code, None),
                    Mode::TooMany { retry_after_s } => {
                        let header =
                            tiny_http::Header::from_bytes("Retry-After", retry_after_s.to_string())
                                .unwrap();
                        respond(429, Some(header))
                    }
                    Mode::Hang(time) => {
                        std::thread::spawn(move || {
                            std::thread::sleep(time);
                            respond(200, None)
                        });
                    }
                }
            }
        });
        FakeSlack {
            url: format!("http://127.0.0.1:{port}/services/T000/B000/secret"),
            mode,
            attempts: rx,
            server,
        }
    }

    /// Changes how the next posts are answered.
    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// The next attempt (any status).
    #[track_caller]
    pub fn next_attempt(&self, limit: Duration) -> Attempt {
        self.attempts
            .recv_timeout(limit)
            .unwrap_or_else(|_| panic!("no post to the fake Slack within {limit:?}"))
    }

    /// The next attempt, if one comes within `limit`.
    pub fn try_attempt(&self, limit: Duration) -> Option<Attempt> {
        self.attempts.recv_timeout(limit).ok()
    }

    /// Collects delivered (200) lines until there are `n`; returns them and
    /// every attempt seen on the way.
    #[track_caller]
    pub fn delivered_lines(&self, n: usize, limit: Duration) -> (Vec<String>, Vec<Attempt>) {
        let deadline = Instant::now() + limit;
        let mut lines = Vec::new();
        let mut attempts = Vec::new();
        while lines.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(attempt) = self.attempts.recv_timeout(left) else {
                panic!(
                    "only {} of {n} lines delivered within {limit:?}: {lines:?}; attempts: {attempts:?}",
                    lines.len()
                );
            };
            if attempt.status == 200 {
                lines.extend(attempt.text.lines().map(String::from));
            }
            attempts.push(attempt);
        }
        (lines, attempts)
    }

    /// Asserts that no post arrives for `quiet`.
    #[track_caller]
    pub fn assert_quiet(&self, quiet: Duration) {
        if let Ok(attempt) = self.attempts.recv_timeout(quiet) {
            panic!("unexpected post: {attempt:?}");
        }
    }
}

impl Drop for FakeSlack {
    fn drop(&mut self) {
        self.server.unblock();
    }
}
