//! Running a child process under a deadline, for the agents that ask the
//! system (`systemctl`) or a plugin (`exec`) for a status. Called from the
//! check thread; a helper thread per run collects standard output so that a
//! chatty child can't block on a full pipe.

use std::fmt;
use std::io::{self, Read};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Most bytes of standard output kept; the rest is read and dropped.
const OUTPUT_LIMIT: u64 = 64 * 1024;
/// Longest pause between two looks at whether the child has exited.
const POLL_MAX: Duration = Duration::from_millis(20);

/// A child that exited before its deadline.
#[derive(Debug)]
pub(crate) struct Finished {
    /// How it exited.
    pub(crate) status: ExitStatus,
    /// The start of its standard output.
    pub(crate) stdout: Vec<u8>,
}

/// Why a child gave no exit status.
#[derive(Debug)]
pub(crate) enum CommandError {
    /// It could not be started.
    Spawn { program: String, source: io::Error },
    /// It was still running at the deadline and was killed.
    TimedOut { program: String, after: Duration },
    /// Waiting for it failed.
    Wait { program: String, source: io::Error },
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Spawn { program, source } => write!(f, "running {program}: {source}"),
            CommandError::TimedOut { program, after } => {
                write!(f, "{program} was still running after {after:?}; killed it")
            }
            CommandError::Wait { program, source } => {
                write!(f, "waiting for {program}: {source}")
            }
        }
    }
}

impl std::error::Error for CommandError {}

/// Runs `command` with no input and standard error discarded; kills it if it
/// hasn't exited after `deadline`.
pub(crate) fn run(command: &mut Command, deadline: Duration) -> Result<Finished, CommandError> {
    let program = command.get_program().to_string_lossy().into_owned();
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| CommandError::Spawn {
            program: program.clone(),
            source,
        })?;
    let (tx, output) = mpsc::channel();
    if let Some(mut stdout) = child.stdout.take() {
        let spawned = std::thread::Builder::new()
            .name("command-output".into())
            .spawn(move || {
                let mut kept = Vec::new();
                let _ = (&mut stdout).take(OUTPUT_LIMIT).read_to_end(&mut kept);
                let _ = io::copy(&mut stdout, &mut io::sink());
                let _ = tx.send(kept);
            });
        if let Err(source) = spawned {
            let _ = child.kill();
            let _ = child.wait();
            return Err(CommandError::Spawn { program, source });
        }
    }
    let mut pause = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(CommandError::TimedOut {
                    program,
                    after: deadline,
                });
            }
            Ok(None) => {
                let left = deadline.saturating_sub(started.elapsed());
                std::thread::sleep(pause.min(left));
                pause = (pause * 2).min(POLL_MAX);
            }
            Err(source) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(CommandError::Wait { program, source });
            }
        }
    };
    // A grandchild may still hold the pipe open; don't wait for it past the
    // deadline (nor less than a moment, for the last bytes).
    let left = deadline
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(50));
    let stdout = output.recv_timeout(left).unwrap_or_default();
    Ok(Finished { status, stdout })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    #[test]
    fn collects_status_and_output() {
        let done = run(&mut sh("echo hello; exit 3"), Duration::from_secs(10)).unwrap();
        assert_eq!(done.status.code(), Some(3));
        assert_eq!(done.stdout, b"hello\n");
    }

    #[test]
    fn kills_at_the_deadline() {
        let started = Instant::now();
        let err = run(&mut sh("exec sleep 10"), Duration::from_millis(200)).unwrap_err();
        assert!(matches!(err, CommandError::TimedOut { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn reports_a_missing_program() {
        let err = run(
            &mut Command::new("/nonexistent/procjon-test"),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("running /nonexistent/procjon-test: ")
        );
    }
}
