//! A child's output, line by line: a reader thread sends each line to a
//! channel that tests wait on with timeouts, and keeps them all for
//! failure reports and searches of the whole log.

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::WAIT;

/// The lines a child writes to one stream (stdout or stderr).
pub struct Lines {
    name: String,
    rx: Receiver<String>,
    /// Every line so far, each ending in `\n`.
    seen: Arc<Mutex<String>>,
}

impl Lines {
    /// Starts reading `stream` on a thread of its own; `name` labels
    /// failure reports.
    pub fn collect(name: &str, stream: impl Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::channel();
        let seen = Arc::new(Mutex::new(String::new()));
        let keep = seen.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { return };
                {
                    let mut seen = keep.lock().unwrap();
                    seen.push_str(&line);
                    seen.push('\n');
                }
                // The receiver may be gone: keep reading, so that the
                // child never blocks on a full pipe.
                let _ = tx.send(line);
            }
        });
        Lines {
            name: name.to_string(),
            rx,
            seen,
        }
    }

    /// Every line so far, each ending in `\n`.
    pub fn text(&self) -> String {
        self.seen.lock().unwrap().clone()
    }

    /// Every line so far.
    pub fn all(&self) -> Vec<String> {
        self.text().lines().map(String::from).collect()
    }

    /// The next line not yet taken, waiting up to `limit`; an error on
    /// timeout or once the stream has ended.
    pub fn recv(&self, limit: Duration) -> Result<String, RecvTimeoutError> {
        self.rx.recv_timeout(limit)
    }

    /// Waits up to `timeout` for the next line matching `matches`, skipping
    /// others; panics with everything seen if none comes.
    #[track_caller]
    pub fn expect(&self, what: &str, timeout: Duration, matches: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) if matches(&line) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!(
                    "{}: no line {what} within {timeout:?}; saw:\n{}",
                    self.name,
                    self.text()
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "{}: stream ended without a line {what}; saw:\n{}",
                    self.name,
                    self.text()
                ),
            }
        }
    }

    /// Waits for the line `line` exactly.
    #[track_caller]
    pub fn expect_line(&self, line: &str) -> String {
        self.expect(&format!("{line:?}"), WAIT, |l| l == line)
    }

    /// Waits for a line containing `text`.
    #[track_caller]
    pub fn expect_containing(&self, text: &str) -> String {
        self.expect(&format!("containing {text:?}"), WAIT, |l| l.contains(text))
    }

    /// Waits for each of `lines`, in any order.
    #[track_caller]
    pub fn expect_lines_in_any_order(&self, lines: &[&str]) {
        let mut missing: Vec<&str> = lines.to_vec();
        while !missing.is_empty() {
            let what = format!("among {missing:?}");
            let line = self.expect(&what, WAIT, |l| missing.contains(&l));
            missing.retain(|m| *m != line);
        }
    }

    /// For each step: `apply`s it, then waits for the next status change
    /// of `service`, which must be `SERVICE status changed to CHANGE` (a
    /// flap in between fails the test).
    #[track_caller]
    pub fn expect_changes<T: Copy>(
        &self,
        service: &str,
        steps: &[(T, &str)],
        mut apply: impl FnMut(T),
    ) {
        let prefix = format!("{service} status changed to ");
        for (step, change) in steps {
            apply(*step);
            let line = self.expect(&format!("starting {prefix:?}"), WAIT, |l| {
                l.starts_with(&prefix)
            });
            assert_eq!(line, format!("{prefix}{change}"), "{}", self.report());
        }
    }

    /// Watches for `window`; returns the first line matching `matches`.
    #[track_caller]
    pub fn first_within(&self, window: Duration, matches: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + window;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) if matches(&line) => return Some(line),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "{}: stream ended while watching it; saw:\n{}",
                    self.name,
                    self.text()
                ),
            }
        }
    }

    /// Waits up to `timeout` for the stream to end (its writer exited),
    /// taking the lines still unread.
    pub fn wait_closed(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.rx.recv_timeout(left).is_err() {
                return;
            }
        }
    }

    /// The report printed when a test fails: the name, then every line.
    pub fn report(&self) -> String {
        format!("--- {} ---\n{}", self.name, self.text())
    }
}
