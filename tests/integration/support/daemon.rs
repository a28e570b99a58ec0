//! The `procjon` binary under test: started on port 0 in a temp dir, its
//! stdout (notifications) and stderr (log) captured, killed on drop. Its log
//! is printed when a test fails. The HTTP status endpoint runs on port 0 too
//! (unless a test passes its own `--http`); its address is read from the log.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_procjon");

#[must_use]
pub struct Builder {
    state: PathBuf,
    args: Vec<String>,
    endpoint: String,
    /// The binary (default: the one cargo built).
    program: PathBuf,
    /// A command that runs the binary (e.g. `unshare -m sh -c ...`).
    wrapper: Vec<String>,
    /// The certificates' directory (default: [`super::certs`]).
    certs: Option<PathBuf>,
}

impl Builder {
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn webhook(self, url: &str) -> Self {
        self.arg("--slack-webhook").arg(url)
    }

    /// Slack pacing and first backoff, in seconds.
    pub fn pacing(self, interval: f64, backoff: f64) -> Self {
        self.arg("--slack-interval")
            .arg(interval.to_string())
            .arg("--slack-backoff")
            .arg(backoff.to_string())
    }

    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into();
        self
    }

    /// Runs another `procjon` binary (e.g. the static one).
    pub fn program(mut self, path: impl Into<PathBuf>) -> Self {
        self.program = path.into();
        self
    }

    /// Runs the binary through `wrapper` (the binary and its arguments follow it).
    pub fn wrapper<S: Into<String>>(mut self, wrapper: impl IntoIterator<Item = S>) -> Self {
        self.wrapper = wrapper.into_iter().map(Into::into).collect();
        self
    }

    /// Uses the certificates in `dir` (as made by `gen-certs.sh DIR`).
    pub fn certs(mut self, dir: impl Into<PathBuf>) -> Self {
        self.certs = Some(dir.into());
        self
    }

    /// Puts the state file at `path` instead of `DIR/state.jsonl`.
    pub fn state(mut self, path: impl Into<PathBuf>) -> Self {
        self.state = path.into();
        self
    }

    #[track_caller]
    pub fn start(self) -> Daemon {
        let certs = self.certs.as_deref().unwrap_or_else(|| super::certs());
        let mut command = match self.wrapper.split_first() {
            Some((first, rest)) => {
                let mut command = Command::new(first);
                command.args(rest).arg(&self.program);
                command
            }
            None => Command::new(&self.program),
        };
        command
            .args(["-e", &self.endpoint, "-l", "debug", "--state"])
            .arg(&self.state)
            .arg("--root-cert")
            .arg(certs.join("ca.pem"))
            .arg("-c")
            .arg(certs.join("procjon.pem"))
            .arg("-k")
            .arg(certs.join("procjon.key"))
            .args(self.default_http())
            .args(&self.args)
            .env_remove("PROCJON_SLACK_WEBHOOK")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("starting procjon");
        let log = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = mpsc::channel();
        let (http_tx, http_rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let log_sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                // Only procjon's own lines: at debug level tiny_http logs
                // "Server listening on" the HTTP port, too.
                if let Some(addr) = line.split("procjon::daemon] listening on ").nth(1) {
                    let _ = addr_tx.send(addr.trim().to_string());
                }
                if let Some(addr) = line.split("procjon::daemon] http status on ").nth(1) {
                    let _ = http_tx.send(addr.trim().to_string());
                }
                let mut log = log_sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let (out_tx, out_rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if out_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut daemon = Daemon {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            http: None,
            log,
            stdout: out_rx,
            state: self.state,
        };
        let start = Instant::now();
        loop {
            if let Ok(addr) = addr_rx.recv_timeout(Duration::from_millis(50)) {
                daemon.addr = addr.parse().expect("listening address");
                // The HTTP port is logged before the agent port.
                daemon.http = http_rx
                    .try_recv()
                    .ok()
                    .map(|addr| addr.parse().expect("http status address"));
                return daemon;
            }
            if let Ok(Some(status)) = daemon.child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "procjon exited with {status} before listening:\n{}",
                    daemon.log()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "procjon did not start:\n{}",
                daemon.log()
            );
        }
    }
}

impl Builder {
    /// `--http 127.0.0.1:0` unless the test chose an `--http` itself, so
    /// that parallel tests don't fight over the default port.
    fn default_http(&self) -> Vec<&'static str> {
        if self.args.iter().any(|a| a == "--http") {
            Vec::new()
        } else {
            vec!["--http", "127.0.0.1:0"]
        }
    }
}

pub struct Daemon {
    child: Child,
    pub addr: SocketAddr,
    /// The HTTP status address (none with `--http off`).
    pub http: Option<SocketAddr>,
    log: Arc<Mutex<String>>,
    stdout: Receiver<String>,
    pub state: PathBuf,
}

impl Daemon {
    /// A daemon with its state file in `dir` and notifications on stdout.
    pub fn builder(dir: &Path) -> Builder {
        Builder {
            state: dir.join("state.jsonl"),
            args: Vec::new(),
            endpoint: "127.0.0.1:0".into(),
            program: PathBuf::from(BIN),
            wrapper: Vec::new(),
            certs: None,
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log holds `needle` at least `times` times. The log is
    /// read from a pipe by another thread: a line procjon wrote before it
    /// answered may arrive here after the answer.
    #[track_caller]
    pub fn wait_log(&self, needle: &str, times: usize) {
        let start = Instant::now();
        while self.log().matches(needle).count() < times {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{needle:?} not {times} times in the log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until the log holds `times` lines at `level` (e.g. `ERROR`)
    /// that contain `needle`, whichever module wrote them.
    #[track_caller]
    pub fn wait_log_at(&self, level: &str, needle: &str, times: usize) {
        let start = Instant::now();
        let level = format!(" {level} ");
        let count = |log: &str| {
            log.lines()
                .filter(|line| line.contains(&level) && line.contains(needle))
                .count()
        };
        while count(&self.log()) < times {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{needle:?} not {times} times at{level}in the log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The process id of the daemon.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How many threads the daemon runs now (`Threads:` of `/proc/PID/status`).
    #[track_caller]
    pub fn threads(&self) -> usize {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("reading the daemon's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|n| n.trim().parse().ok())
            .expect("a Threads: line")
    }

    /// The next notification printed on stdout.
    #[track_caller]
    pub fn next_line(&self, limit: Duration) -> String {
        match self.stdout.recv_timeout(limit) {
            Ok(line) => line,
            Err(_) => panic!("no notification within {limit:?}\nlog:\n{}", self.log()),
        }
    }

    /// The next notification, if one comes within `limit`.
    pub fn try_line(&self, limit: Duration) -> Option<String> {
        self.stdout.recv_timeout(limit).ok()
    }

    /// The next `n` notifications.
    #[track_caller]
    pub fn lines(&self, n: usize, limit: Duration) -> Vec<String> {
        (0..n).map(|_| self.next_line(limit)).collect()
    }

    /// Asserts that nothing is printed for `quiet`.
    #[track_caller]
    pub fn assert_quiet(&self, quiet: Duration) {
        if let Ok(line) = self.stdout.recv_timeout(quiet) {
            panic!("unexpected notification {line:?}\nlog:\n{}", self.log());
        }
    }

    /// Waits until the state file has marked `n` announcements delivered, so
    /// that a kill after it can't lead to a (correct, at-least-once) re-send.
    #[track_caller]
    pub fn wait_delivered(&self, n: usize) {
        super::wait_until(
            Duration::from_secs(5),
            "deliveries marked in the state file",
            || {
                std::fs::read_to_string(&self.state)
                    .is_ok_and(|s| s.matches("\"op\":\"delivered\"").count() >= n)
            },
        );
    }

    /// Kills the process (SIGKILL: like a crash) and waits for it.
    pub fn kill(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(20));
        self.log()
    }

    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- procjon log ---\n{}--- end of log ---", self.log());
        }
    }
}

/// Runs `procjon` with `args` to completion (for commands and start-up errors).
pub fn run(args: &[&str], dir: &Path) -> (ExitStatus, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("PROCJON_SLACK_WEBHOOK")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "procjon {args:?} did not exit within 10 s\nstderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = child.wait_with_output().unwrap();
    (
        status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
