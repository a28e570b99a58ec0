//! The real `procjon` daemon under test, for both crates' tests: started by
//! a [`Builder`] in a test's directory, on port 0, with debug logging and
//! certificates; its stdout (notifications) and stderr (log) read as
//! [`Lines`]; killed and reaped on drop, its output printed when the test
//! fails. The agent port and the HTTP status port (port 0 too, unless the
//! test passes its own `--http`) are read from its log. [`run`] runs its
//! one-shot commands (`check-state`, `status`) and start-up errors.

use crate::Lines;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

/// How long the daemon may take to say where it listens.
const START_LIMIT: Duration = Duration::from_secs(20);

/// How long the log is polled for a line a test waits for.
const LOG_LIMIT: Duration = Duration::from_secs(10);

/// A daemon being configured; [`Builder::start`] starts it.
#[must_use]
#[derive(Clone, Debug)]
pub struct Builder {
    /// The working directory.
    dir: PathBuf,
    state: PathBuf,
    args: Vec<String>,
    endpoint: String,
    /// The binary (default: [`binary`]).
    program: Option<PathBuf>,
    /// A command that runs the binary (e.g. `unshare -m sh -c ...`).
    wrapper: Vec<String>,
    /// The certificates' directory (default: [`crate::certs()`]).
    certs: Option<PathBuf>,
    /// Environment variables set for the daemon.
    env: Vec<(String, String)>,
}

impl Builder {
    /// Adds an argument after the ones the builder sets.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Adds arguments after the ones the builder sets.
    pub fn args<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Posts notifications to the webhook at `url` (`--slack-webhook`).
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

    /// Listens for agents on `endpoint` (`-e`; default `127.0.0.1:0`).
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into();
        self
    }

    /// Runs another `procjon` binary (e.g. the static one).
    pub fn program(mut self, path: impl Into<PathBuf>) -> Self {
        self.program = Some(path.into());
        self
    }

    /// Runs the binary through `wrapper` (the binary and its arguments follow it).
    pub fn wrapper<S: Into<String>>(mut self, wrapper: impl IntoIterator<Item = S>) -> Self {
        self.wrapper = wrapper.into_iter().map(Into::into).collect();
        self
    }

    /// Uses the certificates in `dir` (as made by `gen-certs.sh DIR`)
    /// instead of the run's shared ones.
    pub fn certs(mut self, dir: impl Into<PathBuf>) -> Self {
        self.certs = Some(dir.into());
        self
    }

    /// Sets the environment variable `key` for the daemon (after the
    /// builder has cleared the ones that would configure it).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Puts the state file at `path` instead of `DIR/state.jsonl`.
    pub fn state(mut self, path: impl Into<PathBuf>) -> Self {
        self.state = path.into();
        self
    }

    /// Starts the daemon and waits until it listens.
    #[track_caller]
    pub fn start(self) -> Daemon {
        let program = match &self.program {
            Some(program) => program.clone(),
            None => binary().to_path_buf(),
        };
        let certs = match &self.certs {
            Some(certs) => certs.clone(),
            None => crate::certs().to_path_buf(),
        };
        let mut command = match self.wrapper.split_first() {
            Some((first, rest)) => {
                let mut command = Command::new(first);
                command.args(rest).arg(&program);
                command
            }
            None => Command::new(&program),
        };
        command
            .current_dir(&self.dir)
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
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        hermetic(&mut command);
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        let mut child = command
            .spawn()
            .unwrap_or_else(|err| panic!("starting {}: {err}", program.display()));
        let stdout = Lines::collect("procjon stdout", child.stdout.take().expect("stdout"));
        let stderr = Lines::collect("procjon log", child.stderr.take().expect("stderr"));
        let mut daemon = Daemon {
            child,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            http: None,
            state: self.state.clone(),
            stdout,
            stderr,
            builder: self,
        };
        daemon.wait_listening();
        daemon
    }

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

/// A running daemon.
pub struct Daemon {
    child: Child,
    /// The address agents connect to, from the log.
    pub addr: SocketAddr,
    /// The HTTP status address (none with `--http off`).
    pub http: Option<SocketAddr>,
    /// The state file.
    pub state: PathBuf,
    /// Its notifications (without a webhook).
    pub stdout: Lines,
    /// Its log.
    pub stderr: Lines,
    /// What started it, for [`Daemon::restart`].
    builder: Builder,
}

impl Daemon {
    /// A daemon working in `dir`, with its state file there and
    /// notifications on stdout.
    pub fn builder(dir: &Path) -> Builder {
        Builder {
            dir: dir.to_path_buf(),
            state: dir.join("state.jsonl"),
            args: Vec::new(),
            endpoint: "127.0.0.1:0".into(),
            program: None,
            wrapper: Vec::new(),
            certs: None,
            env: Vec::new(),
        }
    }

    /// Reads the log until the daemon says where it listens (the HTTP
    /// address comes first); panics if it exits or takes too long.
    #[track_caller]
    fn wait_listening(&mut self) {
        let deadline = Instant::now() + START_LIMIT;
        loop {
            match self.stderr.recv(Duration::from_millis(50)) {
                Ok(line) => match announced(&line) {
                    Some(Announced::Agents(addr)) => {
                        self.addr = addr;
                        return;
                    }
                    Some(Announced::Http(addr)) => self.http = Some(addr),
                    None => {}
                },
                Err(err) => {
                    if let Some(status) = self.child.try_wait().expect("waiting for procjon") {
                        self.stderr.wait_closed(Duration::from_secs(1));
                        panic!(
                            "procjon exited with {status} before listening:\n{}",
                            self.log()
                        );
                    }
                    if err == RecvTimeoutError::Disconnected {
                        // The log ended before the exit can be reaped:
                        // poll for it rather than spin.
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "procjon did not start within {START_LIMIT:?}:\n{}",
                self.log()
            );
        }
    }

    /// The `-e` value agents use.
    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    /// The log so far.
    pub fn log(&self) -> String {
        self.stderr.text()
    }

    /// Waits until the log holds `needle` at least `times` times. The log is
    /// read from a pipe by another thread: a line procjon wrote before it
    /// answered may arrive here after the answer.
    #[track_caller]
    pub fn wait_log(&self, needle: &str, times: usize) {
        let start = Instant::now();
        while self.log().matches(needle).count() < times {
            assert!(
                start.elapsed() < LOG_LIMIT,
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
                start.elapsed() < LOG_LIMIT,
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
        match self.stdout.recv(limit) {
            Ok(line) => line,
            Err(_) => panic!("no notification within {limit:?}\nlog:\n{}", self.log()),
        }
    }

    /// The next notification, if one comes within `limit`.
    pub fn try_line(&self, limit: Duration) -> Option<String> {
        self.stdout.recv(limit).ok()
    }

    /// The next `n` notifications.
    #[track_caller]
    pub fn lines(&self, n: usize, limit: Duration) -> Vec<String> {
        (0..n).map(|_| self.next_line(limit)).collect()
    }

    /// Asserts that nothing is printed for `quiet`.
    #[track_caller]
    pub fn assert_quiet(&self, quiet: Duration) {
        if let Ok(line) = self.stdout.recv(quiet) {
            panic!("unexpected notification {line:?}\nlog:\n{}", self.log());
        }
    }

    /// Waits until the state file has marked `n` announcements delivered, so
    /// that a kill after it can't lead to a (correct, at-least-once) re-send.
    #[track_caller]
    pub fn wait_delivered(&self, n: usize) {
        crate::wait_until(
            Duration::from_secs(5),
            "deliveries marked in the state file",
            || {
                std::fs::read_to_string(&self.state)
                    .is_ok_and(|s| s.matches("\"op\":\"delivered\"").count() >= n)
            },
        );
    }

    /// Kills the process (SIGKILL: like a crash), reaps it, and returns
    /// its whole log.
    pub fn kill(mut self) -> String {
        self.stop();
        self.stderr.wait_closed(Duration::from_secs(1));
        self.log()
    }

    /// Kills the process (SIGKILL: like a crash) and starts it again as
    /// before, on the same agent port: agents reconnect to the address
    /// they had.
    #[track_caller]
    pub fn restart(self) -> Daemon {
        let builder = self.builder.clone().endpoint(self.endpoint());
        self.kill();
        builder.start()
    }

    /// Sends the process `signal` (`TERM`, `INT`, `HUP`, ...) with kill(1).
    #[track_caller]
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{signal} {} failed", self.pid());
    }

    /// Waits up to `limit` for the process to exit; panics with its output
    /// if it doesn't.
    #[track_caller]
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.try_wait() {
                self.stderr.wait_closed(Duration::from_secs(1));
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "procjon did not exit within {limit:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Its exit status, if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("waiting for procjon")
    }

    /// Kills and reaps the process.
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            self.stderr.wait_closed(Duration::from_secs(1));
            eprintln!(
                "{}{}--- end of procjon's output ---",
                self.stdout.report(),
                self.stderr.report()
            );
        }
    }
}

/// An address the daemon announces in its log.
#[derive(Debug, PartialEq)]
enum Announced {
    /// `listening on ADDR`: where agents connect.
    Agents(SocketAddr),
    /// `http status on ADDR`: the status endpoint.
    Http(SocketAddr),
}

/// The address `line` announces, if it does: its message (what follows
/// env_logger's `[TIME LEVEL MODULE] `) starts `listening on ADDR` or
/// `http status on ADDR`, whichever module logs it. tiny_http's `Server
/// listening on ...` doesn't, nor does an error about listening.
fn announced(line: &str) -> Option<Announced> {
    let (_, message) = line.split_once("] ")?;
    let addr = |rest: &str| rest.split_whitespace().next()?.parse().ok();
    if let Some(rest) = message.strip_prefix("listening on ") {
        addr(rest).map(Announced::Agents)
    } else if let Some(rest) = message.strip_prefix("http status on ") {
        addr(rest).map(Announced::Http)
    } else {
        None
    }
}

/// Runs `procjon` with `args` in `dir` to completion (for commands and
/// start-up errors); returns its status, stdout and stderr.
#[track_caller]
pub fn run(args: &[&str], dir: &Path) -> (ExitStatus, String, String) {
    let mut command = Command::new(binary());
    command
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    hermetic(&mut command);
    let mut child = command.spawn().expect("starting procjon");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for procjon") {
            break status;
        }
        if start.elapsed() > LOG_LIMIT {
            let _ = child.kill();
            let out = child.wait_with_output().expect("reaping procjon");
            panic!(
                "procjon {args:?} did not exit within {LOG_LIMIT:?}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = child.wait_with_output().expect("reading procjon's output");
    (
        status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Keeps the environment the tests run in from configuring the daemon:
/// removes `RUST_LOG` and every `PROCJON_*` variable (the webhook URL above
/// all) from what the child inherits.
fn hermetic(command: &mut Command) {
    // RUST_LOG would change the log; the systemd variables (tests run
    // under a systemd service) would make it talk to that systemd.
    for key in ["RUST_LOG", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
        command.env_remove(key);
    }
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PROCJON_") {
            command.env_remove(key);
        }
    }
}

/// Prefixes of the variables cargo sets for a test process about its package.
const PACKAGE_VARS: [&str; 7] = [
    "CARGO_PKG_",
    "CARGO_MANIFEST_",
    "CARGO_BIN_",
    "CARGO_CRATE_",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "CARGO_RUSTC_CURRENT_DIR",
];

/// The `procjon` binary of this build: beside the test executable's
/// `deps/` directory (`target/PROFILE/procjon`). A library has no
/// `CARGO_BIN_EXE_procjon`; the root package's tests always find the
/// binary there, the agent's build it once if `cargo test -p
/// procjon-agent` didn't (it belongs to another package).
pub fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test executable's path");
        // target/PROFILE/deps/TEST-HASH
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .unwrap_or_else(|| panic!("{} is not in target/PROFILE/deps", exe.display()));
        let path = profile_dir.join(format!("procjon{}", std::env::consts::EXE_SUFFIX));
        if !path.exists() {
            build(profile_dir);
            assert!(
                path.exists(),
                "cargo build -p procjon made no {}",
                path.display()
            );
        }
        path
    })
}

/// Runs `cargo build -p procjon --bin procjon` into `profile_dir`: the
/// same target dir, profile and target as the running tests.
fn build(profile_dir: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "-p", "procjon", "--bin", "procjon"])
        .current_dir(crate::workspace_root());
    let name = |dir: &Path| {
        dir.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_else(|| panic!("{} has no name", dir.display()))
            .to_string()
    };
    let profile = name(profile_dir);
    build
        .arg("--profile")
        .arg(if profile == "debug" { "dev" } else { &profile });
    let mut target_dir = profile_dir.parent().expect("a target dir");
    if !target_dir.join("CACHEDIR.TAG").exists() {
        // target/TRIPLE/PROFILE: built with --target.
        build.arg("--target").arg(name(target_dir));
        target_dir = target_dir.parent().expect("a target dir");
    }
    build.arg("--target-dir").arg(target_dir);
    // What cargo sets for this test describes this package; build scripts
    // (ring's) watch some of it, and seeing it here would make them, and
    // everything above them, rebuild twice.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if PACKAGE_VARS.iter().any(|p| key.starts_with(p)) {
            build.env_remove(&*key);
        }
    }
    let status = build.status().expect("running cargo build -p procjon");
    assert!(status.success(), "cargo build -p procjon failed");
}

#[cfg(test)]
mod tests {
    use super::{Announced, announced};

    #[test]
    fn addresses_are_read_from_the_message_whichever_module_logs_it() {
        assert_eq!(
            announced("[2026-01-01T00:00:00Z INFO  procjon::daemon] listening on 127.0.0.1:4000"),
            Some(Announced::Agents("127.0.0.1:4000".parse().unwrap()))
        );
        assert_eq!(
            announced("[2026-01-01T00:00:00Z INFO  procjon::listener] listening on [::1]:4000"),
            Some(Announced::Agents("[::1]:4000".parse().unwrap()))
        );
        assert_eq!(
            announced("[2026-01-01T00:00:00Z INFO  procjon] http status on 127.0.0.1:9090"),
            Some(Announced::Http("127.0.0.1:9090".parse().unwrap()))
        );
    }

    #[test]
    fn other_lines_announce_nothing() {
        for line in [
            "[2026-01-01T00:00:00Z DEBUG tiny_http] Server listening on 127.0.0.1:9090",
            "[2026-01-01T00:00:00Z ERROR procjon] listening on 127.0.0.1:80: permission denied",
            "[2026-01-01T00:00:00Z INFO  procjon::daemon] web-1 is listening on 127.0.0.1:1",
            "listening on 127.0.0.1:4000",
        ] {
            assert_eq!(announced(line), None, "{line}");
        }
    }
}
