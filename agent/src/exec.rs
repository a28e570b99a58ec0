//! The `exec` agent: runs a command every period and reports its exit code
//! as the status index. With the default statuses `ok, warning, critical,
//! unknown` that is the Nagios plugin convention, so existing check plugins
//! work unchanged, and their output is read as plugins write it: the first
//! line is the detail, performance data follows a `|`. An exit code past
//! the list, a signal or the deadline reports the last status. Runs on the
//! check thread.

use crate::agent::{Agent, CheckError, Report};
use crate::command::{self, CommandError};
use crate::error::{AgentError, one_line};
use crate::perfdata;
use std::fmt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The statuses of the Nagios plugin convention.
pub const NAGIOS_STATUSES: [&str; 4] = ["ok", "warning", "critical", "unknown"];

/// Reports the exit code of a command.
#[derive(Debug, Clone)]
pub struct Exec {
    program: PathBuf,
    args: Vec<String>,
    statuses: Vec<String>,
    deadline: Duration,
}

impl Exec {
    /// An agent that runs `command` (program and arguments; a program
    /// without `/` is looked up in `PATH` now) and kills it after
    /// `deadline` (`procjonagent` uses the period).
    pub fn new(
        command: &[String],
        statuses: Vec<String>,
        deadline: Duration,
    ) -> Result<Exec, AgentError> {
        let Some((program, args)) = command.split_first() else {
            return Err(AgentError::BadOption {
                option: "exec",
                reason: "no command given; e.g. procjonagent exec -- /usr/lib/nagios/plugins/check_load -w 4 -c 8".into(),
            });
        };
        let found = find_program(program).ok_or_else(|| AgentError::BadOption {
            option: "exec",
            reason: format!("command {program:?} not found (PATH is searched when it has no '/')"),
        })?;
        Ok(Exec {
            program: found,
            args: args.to_vec(),
            statuses,
            deadline,
        })
    }
}

/// `program` itself when it names a path, else the first match in `PATH`.
fn find_program(program: &str) -> Option<PathBuf> {
    if program.is_empty() {
        return None;
    }
    if program.contains('/') {
        let path = Path::new(program);
        return path.is_file().then(|| path.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// A plugin's standard output split as the Nagios plugin guidelines say:
/// `TEXT | PERFDATA` on the first line, then long text, where a `|` starts
/// more performance data that runs to the end.
#[derive(Debug, PartialEq)]
struct PluginOutput<'a> {
    /// The first line's text, trimmed; `None` when empty.
    detail: Option<&'a str>,
    /// The performance data of the first line and of the long text,
    /// whitespace-separated.
    perfdata: String,
}

impl<'a> PluginOutput<'a> {
    fn parse(stdout: &'a str) -> PluginOutput<'a> {
        let (first, long) = stdout.split_once('\n').unwrap_or((stdout, ""));
        let (text, first_perf) = first.split_once('|').unwrap_or((first, ""));
        let long_perf = long.split_once('|').map_or("", |(_, perf)| perf);
        let text = text.trim();
        PluginOutput {
            detail: (!text.is_empty()).then_some(text),
            perfdata: format!("{first_perf}\n{long_perf}"),
        }
    }
}

impl Agent for Exec {
    fn statuses(&self) -> Vec<String> {
        self.statuses.clone()
    }

    fn check(&mut self) -> Result<u64, CheckError> {
        self.report().map(|report| report.status)
    }

    /// The exit code as the status, the first output line as the detail
    /// and the performance data after `|`.
    fn report(&mut self) -> Result<Report, CheckError> {
        let done = command::run(Command::new(&self.program).args(&self.args), self.deadline)
            .map_err(ExecError::Command)?;
        let program = self.program.display().to_string();
        let stdout = String::from_utf8_lossy(&done.stdout);
        let output = PluginOutput::parse(&stdout);
        log::debug!(
            "{program}: {}: {}",
            done.status,
            one_line(output.detail.unwrap_or(""))
        );
        let status = match (done.status.code(), done.status.signal()) {
            (Some(code), _) if (code as usize) < self.statuses.len() && code >= 0 => code as u64,
            (Some(code), _) => {
                return Err(ExecError::CodePastStatuses {
                    program,
                    code,
                    statuses: self.statuses.len(),
                }
                .into());
            }
            (None, signal) => {
                return Err(ExecError::Signal {
                    program,
                    signal: signal.unwrap_or(0),
                }
                .into());
            }
        };
        let mut perfdata = Vec::new();
        for value in perfdata::parse(&output.perfdata) {
            match value {
                Ok(value) => perfdata.push(value),
                Err(bad) => log::debug!("{program}: skipping performance data {bad}"),
            }
        }
        Ok(Report {
            status,
            detail: output.detail.map(String::from),
            perfdata,
        })
    }

    /// The last status, `unknown` by the Nagios convention.
    fn failure_status(&self) -> Option<u64> {
        self.statuses.len().checked_sub(1).map(|i| i as u64)
    }
}

/// Why a run gave no status of its own.
#[derive(Debug)]
enum ExecError {
    /// The command could not be run or did not finish in time.
    Command(CommandError),
    /// The exit code has no status name.
    CodePastStatuses {
        program: String,
        code: i32,
        statuses: usize,
    },
    /// The command was killed by a signal.
    Signal { program: String, signal: i32 },
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecError::Command(err) => err.fmt(f),
            ExecError::CodePastStatuses {
                program,
                code,
                statuses,
            } => write!(
                f,
                "{program} exited with code {code}, past the {statuses} statuses"
            ),
            ExecError::Signal { program, signal } => {
                write!(f, "{program} was killed by signal {signal}")
            }
        }
    }
}

impl std::error::Error for ExecError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ExecError::Command(err) => Some(err),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(script: &str) -> Exec {
        let command = ["sh", "-c", script].map(String::from);
        let statuses = NAGIOS_STATUSES.map(String::from).to_vec();
        Exec::new(&command, statuses, Duration::from_secs(5)).unwrap()
    }

    #[test]
    fn exit_codes_are_statuses() {
        for code in 0..4 {
            assert_eq!(exec(&format!("exit {code}")).check().unwrap(), code);
        }
        assert!(exec("exit 4").check().is_err());
        assert!(exec("kill -9 $$").check().is_err());
        assert_eq!(exec("exit 0").failure_status(), Some(3));
    }

    #[test]
    fn output_gives_detail_and_perfdata() {
        let report = exec(
            "echo 'DISK OK - free space: / 3326 MB (56%) | /=2643MB;5948;5958;0;5968'; \
             echo '/ 15272 MB (77%);'; \
             echo \"/boot 68 MB (69%); | /boot=68MB;88;93;0;98 bad=U 'my disk'=12%;;;;\"; \
             echo '/var=1KB'; exit 1",
        )
        .report()
        .unwrap();
        assert_eq!(report.status, 1);
        assert_eq!(
            report.detail.as_deref(),
            Some("DISK OK - free space: / 3326 MB (56%)")
        );
        let labels: Vec<&str> = report.perfdata.iter().map(|v| v.label.as_str()).collect();
        assert_eq!(labels, ["/", "/boot", "my disk", "/var"]);
        assert_eq!(
            report.perfdata[0],
            procjon::PerfValue {
                label: "/".into(),
                value: 2643.0,
                uom: "MB".into(),
                warn: Some("5948".into()),
                crit: Some("5958".into()),
                min: Some(0.0),
                max: Some(5968.0),
            }
        );
    }

    #[test]
    fn output_without_text_or_perfdata() {
        let quiet = exec("exit 2").report().unwrap();
        assert_eq!(
            (quiet.status, quiet.detail, quiet.perfdata),
            (2, None, vec![])
        );
        let only_perf = exec("echo ' | a=1'").report().unwrap();
        assert_eq!(only_perf.detail, None);
        assert_eq!(only_perf.perfdata.len(), 1);
        // Text after the first line without a '|' is long text, not perfdata.
        let long = exec("printf 'OK\\nx=1\\n'").report().unwrap();
        assert_eq!(long.detail.as_deref(), Some("OK"));
        assert!(long.perfdata.is_empty());
        // Bad perfdata never fails the check.
        let garbage = exec("echo 'WARNING: odd | =;; a=U b=x'; exit 1")
            .report()
            .unwrap();
        assert_eq!(garbage.status, 1);
        assert_eq!(garbage.detail.as_deref(), Some("WARNING: odd"));
        assert!(garbage.perfdata.is_empty());
    }

    #[test]
    fn plugin_output_is_split_per_the_guidelines() {
        let split = |s| PluginOutput::parse(s);
        assert_eq!(split("").detail, None);
        assert_eq!(split("  OK  \r\n").detail, Some("OK"));
        assert_eq!(split("OK | a=1 | b=2").perfdata, " a=1 | b=2\n");
        let long = split("OK\nmore text\nstill | b=2\nc=3\n");
        assert_eq!(long.detail, Some("OK"));
        assert_eq!(long.perfdata, "\n b=2\nc=3\n");
    }

    #[test]
    fn refuses_missing_commands() {
        let statuses = vec!["ok".to_string()];
        for command in [
            vec![],
            vec!["procjon-no-such-command".to_string()],
            vec!["/nonexistent/check".to_string()],
        ] {
            let err = Exec::new(&command, statuses.clone(), Duration::from_secs(1)).unwrap_err();
            assert!(err.to_string().starts_with("exec: "), "{err}");
        }
    }
}
