//! The `run` agent: starts a long-running command as its child (a soak
//! test, a migration, a training run, a backup) and reports it while it
//! runs. When the child exits, the last report says how (`exit 0 after
//! 3d4h`, `exit 3 after 12m`, `killed by signal 9 after 2h`) and the
//! service is unregistered with that as the reason, so procjon says the job
//! ended instead of crying "not available" after the timeout.
//!
//! A waiter thread owns the child's `wait`; the check thread (the runner's)
//! sees the exit at once, because [`Agent::pause`] waits on it. The caller
//! keeps a [`JobHandle`] to forward signals to the child and to read its
//! exit status, which is never lost or changed by procjon being down.

use crate::agent::{Agent, CheckError, Finish, Report};
use crate::error::AgentError;
use procjon::{Signal, human_duration};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The default status names: while it runs, after exit 0, after anything else.
pub const JOB_STATUSES: [&str; 3] = ["running", "succeeded", "failed"];

/// A child command, reported as a service.
pub struct Job {
    command: Vec<String>,
    statuses: Vec<String>,
    keep: bool,
    pid: u32,
    started: Instant,
    since: String,
    exits: Receiver<ExitStatus>,
    /// How it ended and after how long, once it has.
    ended: Option<(ExitStatus, Duration)>,
}

/// What the caller keeps of a [`Job`]: the child's pid, for signals, and
/// its exit status once it has one.
#[derive(Debug, Clone)]
pub struct JobHandle {
    pid: u32,
    status: Arc<OnceLock<ExitStatus>>,
}

impl Job {
    /// A job for `command` (program and arguments), not started yet (see
    /// [`Job::start`]). `statuses` are the names for running, succeeded
    /// and failed; with `keep` the service stays registered after the
    /// child exits.
    pub fn new(command: &[String], statuses: Vec<String>, keep: bool) -> Result<Job, AgentError> {
        if statuses.len() != 3 {
            return Err(AgentError::BadOption {
                option: "--statuses",
                reason: format!(
                    "give three names (running, succeeded, failed), not {}",
                    statuses.len()
                ),
            });
        }
        if command.is_empty() {
            return Err(AgentError::BadOption {
                option: "run",
                reason:
                    "no command given; e.g. procjonagent -s soak-1 run -- ./soak-test --hours 72"
                        .into(),
            });
        }
        let (_, exits) = mpsc::channel();
        Ok(Job {
            command: command.to_vec(),
            statuses,
            keep,
            pid: 0,
            started: Instant::now(),
            since: String::new(),
            exits,
            ended: None,
        })
    }

    /// Starts the command as a child that shares this process's standard
    /// input, output and error, and a thread that waits for it.
    pub fn start(&mut self) -> Result<JobHandle, AgentError> {
        let (program, args) = self.command.split_first().ok_or(AgentError::BadOption {
            option: "run",
            reason: "no command given".into(),
        })?;
        let mut child =
            Command::new(program)
                .args(args)
                .spawn()
                .map_err(|err| AgentError::BadOption {
                    option: "run",
                    reason: format!("starting {program:?}: {err}"),
                })?;
        let pid = child.id();
        let status = Arc::new(OnceLock::new());
        let (exited, exits) = mpsc::channel();
        let seen = status.clone();
        std::thread::Builder::new()
            .name("child".into())
            .spawn(move || {
                // The child is reaped here and nowhere else.
                if let Ok(status) = child.wait() {
                    let _ = seen.set(status);
                    let _ = exited.send(status);
                }
            })
            .map_err(|source| AgentError::Thread { source })?;
        log::info!("started {program} as pid {pid}");
        self.pid = pid;
        self.started = Instant::now();
        self.since = procjon::state_file::Timestamp::now().to_string();
        self.exits = exits;
        Ok(JobHandle { pid, status })
    }

    /// Takes in the child's exit, if it happened.
    fn note_exit(&mut self, status: ExitStatus) {
        if self.ended.is_none() {
            self.ended = Some((status, self.started.elapsed()));
        }
    }
}

impl JobHandle {
    /// Sends `signal` to the child (with kill(1): no unsafe code here).
    pub fn signal(&self, signal: Signal) {
        if self.status.get().is_some() {
            return;
        }
        log::info!("{}: passing it on to pid {}", signal.name(), self.pid);
        let sent = Command::new("kill")
            .arg(format!("-{}", signal.number()))
            .arg(self.pid.to_string())
            .status();
        if let Err(err) = sent {
            log::warn!("sending {} to pid {}: {err}", signal.name(), self.pid);
        }
    }

    /// The child's exit status, once it has exited.
    pub fn status(&self) -> Option<ExitStatus> {
        self.status.get().copied()
    }

    /// Waits for the child to exit and returns its status.
    pub fn wait(&self) -> ExitStatus {
        loop {
            if let Some(status) = self.status() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// How a child ended, the way the channel says it: `exit 3 after 12m`,
/// `killed by signal 9 after 2h`. Whole seconds: a job's length to the
/// tenth of a second is noise.
pub fn describe(status: ExitStatus, after: Duration) -> String {
    let after = human_duration(Duration::from_secs(after.as_secs_f64().round() as u64));
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code} after {after}"),
        (None, Some(signal)) => format!("killed by signal {signal} after {after}"),
        (None, None) => format!("ended after {after}"),
    }
}

/// The exit code to leave with for a child's `status`: its own, or 128 +
/// the signal that killed it, as shells report it.
pub fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(signal)) => (128 + signal) as u8,
        (None, None) => 1,
    }
}

impl Agent for Job {
    fn statuses(&self) -> Vec<String> {
        self.statuses.clone()
    }

    fn check(&mut self) -> Result<u64, CheckError> {
        self.report().map(|report| report.status)
    }

    fn report(&mut self) -> Result<Report, CheckError> {
        if let Ok(status) = self.exits.try_recv() {
            self.note_exit(status);
        }
        Ok(match self.ended {
            None => Report::new(0).with_detail(format!("pid {} since {}", self.pid, self.since)),
            Some((status, after)) => Report::new(if status.success() { 1 } else { 2 })
                .with_detail(describe(status, after)),
        })
    }

    /// Never reported as unknown: a running child is running.
    fn failure_status(&self) -> Option<u64> {
        None
    }

    fn pause(&mut self, duration: Duration) {
        if self.ended.is_some() {
            return;
        }
        match self.exits.recv_timeout(duration) {
            Ok(status) => self.note_exit(status),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
        }
    }

    fn finished(&self) -> Option<Finish> {
        let (status, after) = self.ended?;
        Some(if self.keep {
            Finish::Keep
        } else {
            Finish::Unregister {
                reason: describe(status, after),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_exits_and_signals() {
        let exit3 = ExitStatus::from_raw(3 << 8);
        assert_eq!(
            describe(exit3, Duration::from_millis(1040)),
            "exit 3 after 1s"
        );
        assert_eq!(exit_code(exit3), 3);
        let killed = ExitStatus::from_raw(9);
        assert_eq!(
            describe(killed, Duration::from_secs(7200)),
            "killed by signal 9 after 2h0m"
        );
        assert_eq!(exit_code(killed), 137);
        let ok = ExitStatus::from_raw(0);
        assert_eq!(
            describe(ok, Duration::from_secs(273_600)),
            "exit 0 after 3d4h"
        );
    }

    #[test]
    fn reports_running_then_how_it_ended() {
        let command = ["sh", "-c", "exit 3"].map(String::from);
        let statuses = JOB_STATUSES.map(String::from).to_vec();
        let mut job = Job::new(&command, statuses, false).unwrap();
        let handle = job.start().unwrap();
        job.pause(Duration::from_secs(10));
        let report = job.report().unwrap();
        assert_eq!(report.status, 2);
        assert!(report.detail.unwrap().starts_with("exit 3 after "));
        assert!(matches!(job.finished(), Some(Finish::Unregister { .. })));
        assert_eq!(handle.wait().code(), Some(3));
    }
}
