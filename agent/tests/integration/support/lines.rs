//! A child's output, line by line: a reader thread sends each line to a
//! channel that tests wait on, and keeps them all for failure reports.

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The lines a child writes to one stream.
pub struct Lines {
    name: String,
    rx: Receiver<String>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Lines {
    /// Starts reading `stream`; `name` labels failure reports.
    pub fn collect(name: &str, stream: impl Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::channel();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let keep = seen.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { return };
                keep.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        Lines {
            name: name.to_string(),
            rx,
            seen,
        }
    }

    /// Every line so far.
    pub fn all(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
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
                    self.all().join("\n")
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "{}: stream ended without a line {what}; saw:\n{}",
                    self.name,
                    self.all().join("\n")
                ),
            }
        }
    }

    /// Waits for the line `line` exactly.
    #[track_caller]
    pub fn expect_line(&self, line: &str) -> String {
        self.expect(&format!("{line:?}"), super::WAIT, |l| l == line)
    }

    /// Waits for a line containing `text`.
    #[track_caller]
    pub fn expect_containing(&self, text: &str) -> String {
        self.expect(&format!("containing {text:?}"), super::WAIT, |l| {
            l.contains(text)
        })
    }

    /// Waits for each of `lines`, in any order.
    #[track_caller]
    pub fn expect_lines_in_any_order(&self, lines: &[&str]) {
        let mut missing: Vec<&str> = lines.to_vec();
        while !missing.is_empty() {
            let what = format!("among {missing:?}");
            let line = self.expect(&what, super::WAIT, |l| missing.contains(&l));
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
            let line = self.expect(&format!("starting {prefix:?}"), super::WAIT, |l| {
                l.starts_with(&prefix)
            });
            assert_eq!(line, format!("{prefix}{change}"), "{}", self.report());
        }
    }

    /// Watches for `window`; returns the first line matching `matches`.
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
                    self.all().join("\n")
                ),
            }
        }
    }

    /// Waits up to `timeout` for the stream to end (its writer exited).
    pub fn wait_closed(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(_) => {}
                Err(_) => return,
            }
        }
    }

    /// The report printed when a test fails.
    pub fn report(&self) -> String {
        format!("--- {} ---\n{}", self.name, self.all().join("\n"))
    }
}
