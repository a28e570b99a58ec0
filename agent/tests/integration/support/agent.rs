//! The real `procjonagent` binary: a builder for its command line, and the
//! running process with its log. Killed on drop; its log is printed when
//! the test fails.

use super::{Lines, TempDir, WAIT};
use std::ffi::{OsStr, OsString};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Environment variables that would send the elasticsearch agent's
/// requests to a proxy instead of the fake cluster.
const PROXY_VARS: [&str; 8] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

/// A `procjonagent` command line being built.
#[must_use]
pub struct AgentCommand {
    command: Command,
    /// The common flags, each once.
    common: Vec<(&'static str, String)>,
    args: Vec<OsString>,
}

impl AgentCommand {
    /// `procjonagent` run in `dir`, with the certificates of `dir/certs` and
    /// debug logging.
    pub fn new(dir: &TempDir) -> AgentCommand {
        let mut command = Command::new(env!("CARGO_BIN_EXE_procjonagent"));
        command
            .current_dir(dir.path())
            .env_remove("RUST_LOG")
            .env_remove("PROCJON_ES_PASSWORD");
        for (_, var, _) in procjon_agent::cli::ENVIRONMENT {
            command.env_remove(var);
        }
        for var in PROXY_VARS {
            command.env_remove(var);
        }
        AgentCommand {
            command,
            common: Vec::new(),
            args: Vec::new(),
        }
        .root_cert("certs/ca.pem")
        .cert("certs/procjonagent.pem")
        .key("certs/procjonagent.key")
        .log_level("debug")
    }

    /// Uses another CA certificate file (`--root-cert`).
    pub fn root_cert(self, path: &str) -> Self {
        self.common("--root-cert", path)
    }

    /// Uses another certificate file (`-c`).
    pub fn cert(self, path: &str) -> Self {
        self.common("-c", path)
    }

    /// Uses another key file (`-k`).
    pub fn key(self, path: &str) -> Self {
        self.common("-k", path)
    }

    /// Uses another log level (`-l`).
    pub fn log_level(self, level: &str) -> Self {
        self.common("-l", level)
    }

    /// Sets the service id (`-s`).
    pub fn service(self, id: &str) -> Self {
        self.common("-s", id)
    }

    /// Sets the timeout and the period, in seconds (`-t`, `-p`).
    pub fn timing(self, timeout: &str, period: &str) -> Self {
        self.common("-t", timeout).common("-p", period)
    }

    /// Sets procjon's address (`-e`).
    pub fn endpoint(self, endpoint: &str) -> Self {
        self.common("-e", endpoint)
    }

    /// Leaves a common flag out (e.g. `-c`, to take it from the environment).
    pub fn without(mut self, flag: &str) -> Self {
        self.common.retain(|(f, _)| *f != flag);
        self
    }

    /// Sets a common flag, replacing an earlier value.
    fn common(mut self, flag: &'static str, value: &str) -> Self {
        self.common.retain(|(f, _)| *f != flag);
        self.common.push((flag, value.into()));
        self
    }

    /// Adds arguments, after the common flags.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    /// Starts the agent.
    pub fn start(self) -> RunningAgent {
        self.spawn(false)
    }

    /// Starts the agent, reading its standard output too when `stdout`.
    fn spawn(mut self, stdout: bool) -> RunningAgent {
        let mut child = self
            .command
            .args(self.common.iter().flat_map(|(flag, value)| [*flag, value]))
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(if stdout {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting procjonagent");
        let stderr = Lines::collect("procjonagent stderr", child.stderr.take().expect("stderr"));
        let stdout = child
            .stdout
            .take()
            .map(|out| Lines::collect("procjonagent stdout", out));
        RunningAgent {
            child,
            stderr,
            stdout,
        }
    }

    /// Runs the agent, which must exit on its own; returns its exit code
    /// and log.
    #[track_caller]
    pub fn exit(self) -> (i32, String) {
        let done = self.finish();
        (done.code, done.stderr)
    }

    /// Runs a command that must exit on its own within [`WAIT`] (`silence`,
    /// `unsilence`, or an agent refused at start-up): its exit code, both
    /// outputs and how long it ran.
    #[track_caller]
    pub fn finish(self) -> Finished {
        let started = Instant::now();
        let mut agent = self.spawn(true);
        let status = loop {
            if let Some(status) = agent.child.try_wait().expect("waiting for procjonagent") {
                break status;
            }
            assert!(
                started.elapsed() < WAIT,
                "procjonagent did not exit; log:\n{}",
                agent.stderr.all().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let took = started.elapsed();
        agent.stderr.wait_closed(WAIT);
        let stdout = agent.stdout.as_ref().map_or_else(String::new, |out| {
            out.wait_closed(WAIT);
            out.text()
        });
        Finished {
            code: status.code().expect("procjonagent killed by a signal"),
            stdout,
            stderr: agent.stderr.all().join("\n"),
            took,
        }
    }
}

/// How a command that exits on its own ended.
#[derive(Debug)]
pub struct Finished {
    /// Its exit code.
    pub code: i32,
    /// Its standard output, each line ending in `\n`.
    pub stdout: String,
    /// Its standard error (the log), lines joined by `\n`.
    pub stderr: String,
    /// From its start to its exit.
    pub took: Duration,
}

/// A running agent.
pub struct RunningAgent {
    child: Child,
    /// Its log.
    pub stderr: Lines,
    /// Its standard output, when read (see [`AgentCommand::finish`]).
    stdout: Option<Lines>,
}

impl RunningAgent {
    /// Whether the agent hasn't exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends the agent `signal` (`TERM`, `INT`, ...) with kill(1).
    #[track_caller]
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits up to `limit` for the agent to exit on its own; returns its
    /// exit code.
    #[track_caller]
    pub fn wait_exit(&mut self, limit: Duration) -> i32 {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for procjonagent") {
                self.stderr.wait_closed(WAIT);
                return status.code().expect("procjonagent killed by a signal");
            }
            assert!(
                Instant::now() < deadline,
                "procjonagent did not exit within {limit:?}; log:\n{}",
                self.stderr.all().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the agent and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("{}", self.stderr.report());
            if let Some(stdout) = &self.stdout {
                eprintln!("{}", stdout.report());
            }
        }
    }
}
