//! A stand-in for the Slack webhook on 127.0.0.1 (tiny_http, plain HTTP):
//! answers every post 200 `ok` and records the arrival time of each line of
//! its `{"text": ...}` body. Runs one thread in the harness process until
//! dropped.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

/// One line that reached the webhook.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// When its post had been read.
    pub at: Instant,
    /// The line.
    pub text: String,
}

#[derive(Default)]
struct Seen {
    lines: Vec<Arrival>,
    posts: u64,
}

/// The receiver.
pub struct Webhook {
    /// The URL to give procjon.
    pub url: String,
    server: Arc<tiny_http::Server>,
    seen: Arc<Mutex<Seen>>,
    thread: Option<JoinHandle<()>>,
}

impl Webhook {
    /// Starts listening on a free port.
    pub fn start() -> Result<Webhook, String> {
        let server = tiny_http::Server::http("127.0.0.1:0")
            .map_err(|e| format!("starting the webhook receiver: {e}"))?;
        let port = server
            .server_addr()
            .to_ip()
            .map(|a| a.port())
            .ok_or("the webhook receiver has no IP address")?;
        let server = Arc::new(server);
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (server2, seen2) = (server.clone(), seen.clone());
        let thread = std::thread::Builder::new()
            .name("webhook".into())
            .spawn(move || {
                for mut request in server2.incoming_requests() {
                    let mut body = String::new();
                    let _ = std::io::Read::read_to_string(request.as_reader(), &mut body);
                    let at = Instant::now();
                    let text = serde_json::from_str::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v.get("text")?.as_str().map(String::from))
                        .unwrap_or_default();
                    {
                        let mut seen = seen2.lock().unwrap_or_else(|e| e.into_inner());
                        seen.posts += 1;
                        seen.lines.extend(text.lines().map(|line| Arrival {
                            at,
                            text: line.to_string(),
                        }));
                    }
                    let _ = request.respond(tiny_http::Response::from_string("ok"));
                }
            })
            .map_err(|e| format!("starting the webhook thread: {e}"))?;
        Ok(Webhook {
            url: format!("http://127.0.0.1:{port}/services/bench"),
            server,
            seen,
            thread: Some(thread),
        })
    }

    /// How many lines satisfy `predicate` so far.
    pub fn count(&self, predicate: impl Fn(&str) -> bool) -> usize {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.lines.iter().filter(|a| predicate(&a.text)).count()
    }

    /// Every line so far, and the number of posts.
    pub fn arrivals(&self) -> (Vec<Arrival>, u64) {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        (seen.lines.clone(), seen.posts)
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
