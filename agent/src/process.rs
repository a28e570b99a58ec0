//! The `process` agent: watches a process it doesn't own (a daemon started
//! by something else, a soak test under nohup, a backup job) through
//! `/proc` alone. The process is found each period by its pidfile, its name
//! or its pid; a new process under the same pidfile or name since the last
//! check is reported once as `restarted`. Runs on the check thread.

use crate::agent::{Agent, CheckError, Report};
use crate::error::AgentError;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The statuses, in index order.
pub const STATUSES: [&str; 3] = ["running", "not running", "restarted"];
const RUNNING: u64 = 0;
const NOT_RUNNING: u64 = 1;
const RESTARTED: u64 = 2;

/// Clock ticks per second of `/proc/PID/stat`'s times: `USER_HZ`, which
/// Linux fixes at 100 on every architecture it runs on.
const TICKS_PER_SECOND: u64 = 100;
/// The longest name `/proc/PID/comm` holds (`TASK_COMM_LEN` less the NUL).
const COMM_MAX: usize = 15;

/// Watches one process, found by its pidfile, its name or its pid.
#[derive(Debug, Clone)]
pub struct Process {
    target: Target,
    /// Where procfs is mounted: `/proc`, or a fake one in tests.
    proc: PathBuf,
    /// The process the last check saw running: a restart is a different
    /// one. For `--pid`, the first one seen, for good.
    last: Option<Seen>,
}

/// How the process is found.
#[derive(Debug, Clone)]
enum Target {
    Pidfile(PathBuf),
    Name(String),
    Pid(u32),
}

/// A running process: its pid and when it started, which together tell it
/// apart from a later process under the same pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    pid: u32,
    /// `starttime`, in clock ticks after boot.
    start: u64,
}

/// What one look found.
enum Found {
    Running(Seen),
    /// Not running, and why, for people.
    Gone(String),
}

impl Process {
    /// Watches the process whose pid the file `path` holds (read every
    /// check, so a restart that rewrites it is seen).
    pub fn pidfile(path: impl Into<PathBuf>) -> Result<Process, AgentError> {
        let path = path.into();
        if path.as_os_str().is_empty() {
            return Err(AgentError::BadOption {
                option: "--pidfile",
                reason:
                    "is empty; give the file the process writes its pid to, e.g. /run/nginx.pid"
                        .into(),
            });
        }
        Ok(Process::watching(Target::Pidfile(path)))
    }

    /// Watches the oldest process (zombies aside) whose `/proc/PID/comm` is
    /// `name` exactly.
    pub fn name(name: &str) -> Result<Process, AgentError> {
        let bad = |reason: String| AgentError::BadOption {
            option: "--name",
            reason,
        };
        if name.is_empty() {
            return Err(bad(
                "is empty; give the process's name as ps -o comm shows it".into(),
            ));
        }
        if name.len() > COMM_MAX || name.contains('\n') {
            let prefix: String = name
                .chars()
                .scan(0, |len, c| {
                    *len += c.len_utf8();
                    (*len <= COMM_MAX).then_some(c)
                })
                .collect();
            return Err(bad(format!(
                "{name:?} can never match: the kernel keeps {COMM_MAX} bytes of a process's \
                 name; give --name {prefix:?} (what ps -o comm shows)"
            )));
        }
        Ok(Process::watching(Target::Name(name.to_string())))
    }

    /// Watches the process `pid`; once it is gone it stays `not running`,
    /// even if another process gets its pid.
    pub fn pid(pid: u32) -> Result<Process, AgentError> {
        if pid == 0 {
            return Err(AgentError::BadOption {
                option: "--pid",
                reason: "0 is not a process id".into(),
            });
        }
        Ok(Process::watching(Target::Pid(pid)))
    }

    fn watching(target: Target) -> Process {
        Process {
            target,
            proc: PathBuf::from("/proc"),
            last: None,
        }
    }

    /// Looks for the process once.
    fn find(&self) -> Result<Found, ProcessError> {
        match &self.target {
            Target::Pidfile(path) => {
                let text = match std::fs::read_to_string(path) {
                    Ok(text) => text,
                    Err(err) if err.kind() == io::ErrorKind::NotFound => {
                        return Ok(Found::Gone(format!(
                            "pidfile {} is missing",
                            path.display()
                        )));
                    }
                    Err(source) => {
                        return Err(ProcessError::Pidfile {
                            path: path.clone(),
                            source,
                        });
                    }
                };
                let pid = text.split_whitespace().next().and_then(|p| p.parse().ok());
                Ok(match pid {
                    Some(pid) if pid > 0 => match self.stat(pid) {
                        Some(seen) => Found::Running(seen),
                        None => Found::Gone(format!(
                            "pidfile {} names pid {pid}, which is not running",
                            path.display()
                        )),
                    },
                    _ => Found::Gone(format!("pidfile {} holds no pid", path.display())),
                })
            }
            Target::Name(name) => Ok(match self.oldest_named(name)? {
                Some(seen) => Found::Running(seen),
                None => Found::Gone(format!("no process named {name}")),
            }),
            Target::Pid(pid) => Ok(match self.stat(*pid) {
                Some(seen) => Found::Running(seen),
                None => Found::Gone(format!("pid {pid} is not running")),
            }),
        }
    }

    /// The process `pid` if it runs (a zombie has exited: it doesn't).
    fn stat(&self, pid: u32) -> Option<Seen> {
        let stat = std::fs::read_to_string(self.proc.join(pid.to_string()).join("stat")).ok()?;
        let (state, start) = parse_stat(&stat)?;
        (state != 'Z' && state != 'X').then_some(Seen { pid, start })
    }

    /// The oldest running process named `name`; the lower pid on a tie.
    fn oldest_named(&self, name: &str) -> Result<Option<Seen>, ProcessError> {
        let entries = std::fs::read_dir(&self.proc).map_err(|source| ProcessError::List {
            proc: self.proc.clone(),
            source,
        })?;
        let mut oldest: Option<Seen> = None;
        for entry in entries {
            // An entry that vanishes while listed is a process that exited.
            let Ok(entry) = entry else { continue };
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) else {
                continue;
            };
            if comm.strip_suffix('\n').unwrap_or(&comm) != name {
                continue;
            }
            if let Some(seen) = self.stat(pid)
                && oldest.is_none_or(|o| (seen.start, seen.pid) < (o.start, o.pid))
            {
                oldest = Some(seen);
            }
        }
        Ok(oldest)
    }

    /// How long the process has run: now less boot time (`btime` of
    /// `/proc/stat`) and its start after boot; `None` when unreadable.
    fn uptime(&self, seen: Seen) -> Option<Duration> {
        let stat = std::fs::read_to_string(self.proc.join("stat")).ok()?;
        let boot: u64 = stat
            .lines()
            .find_map(|line| line.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
        let started = boot + seen.start / TICKS_PER_SECOND;
        Some(Duration::from_secs(now.saturating_sub(started)))
    }

    /// `, up 3d4h`, or nothing when the uptime can't be read.
    fn up(&self, seen: Seen) -> String {
        match self.uptime(seen) {
            Some(up) => format!(", up {}", procjon::human_duration(up)),
            None => {
                log::debug!("pid {}: no uptime: /proc/stat has no btime", seen.pid);
                String::new()
            }
        }
    }
}

/// The state (field 3) and starttime (field 22) of a `/proc/PID/stat`
/// line. The name (field 2) is in parentheses and may hold spaces and
/// parentheses itself, so the fields are counted from the last `)`.
fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Fields 4 to 21 come between the state and starttime.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

impl Agent for Process {
    fn statuses(&self) -> Vec<String> {
        STATUSES.map(String::from).to_vec()
    }

    fn check(&mut self) -> Result<u64, CheckError> {
        self.report().map(|report| report.status)
    }

    /// `running` with `pid 1234, up 3d4h`; `restarted` (once) with
    /// `pid 1234 → 5678 (restarted), up 2s`; `not running` with why.
    fn report(&mut self) -> Result<Report, CheckError> {
        let pinned = matches!(self.target, Target::Pid(_));
        match self.find()? {
            Found::Running(now) => {
                match self.last {
                    Some(old) if old != now && pinned => {
                        Ok(Report::new(NOT_RUNNING).with_detail(format!(
                            "pid {} is not running (another process has its pid now)",
                            old.pid
                        )))
                    }
                    Some(old) if old != now => {
                        self.last = Some(now);
                        Ok(Report::new(RESTARTED).with_detail(format!(
                            "pid {} → {} (restarted){}",
                            old.pid,
                            now.pid,
                            self.up(now)
                        )))
                    }
                    _ => {
                        self.last = Some(now);
                        Ok(Report::new(RUNNING).with_detail(format!(
                            "pid {}{}",
                            now.pid,
                            self.up(now)
                        )))
                    }
                }
            }
            Found::Gone(why) => {
                if !pinned {
                    self.last = None;
                }
                Ok(Report::new(NOT_RUNNING).with_detail(why))
            }
        }
    }
}

/// Why the agent could not tell whether the process runs.
#[derive(Debug)]
enum ProcessError {
    /// The pidfile exists but can't be read.
    Pidfile { path: PathBuf, source: io::Error },
    /// The processes can't be listed.
    List { proc: PathBuf, source: io::Error },
}

impl fmt::Display for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessError::Pidfile { path, source } => {
                write!(f, "reading pidfile {}: {source}", path.display())
            }
            ProcessError::List { proc, source } => {
                write!(f, "listing processes in {}: {source}", proc.display())
            }
        }
    }
}

impl std::error::Error for ProcessError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProcessError::Pidfile { source, .. } | ProcessError::List { source, .. } => {
                Some(source)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A fake `/proc` in a temp dir: `stat` with a boot time, and one
    /// directory per process with `comm` and `stat`.
    struct FakeProc(PathBuf);

    const BOOT: u64 = 1_700_000_000;

    impl FakeProc {
        fn new() -> FakeProc {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let dir = std::env::temp_dir().join(format!(
                "procjon-fake-proc-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("stat"), format!("cpu 1 2 3\nbtime {BOOT}\n")).unwrap();
            FakeProc(dir)
        }

        /// A process `pid` named `comm`, in `state`, started `ago` ago.
        fn add(&self, pid: u32, comm: &str, state: char, ago: Duration) {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let start = (now - ago.as_secs() - BOOT) * TICKS_PER_SECOND;
            let dir = self.0.join(pid.to_string());
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("comm"), format!("{comm}\n")).unwrap();
            let middle = "1 1 1 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0";
            let stat = format!("{pid} ({comm}) {state} {middle} {start} 1000 200\n");
            std::fs::write(dir.join("stat"), stat).unwrap();
        }

        fn remove(&self, pid: u32) {
            std::fs::remove_dir_all(self.0.join(pid.to_string())).unwrap();
        }

        fn agent(&self, mut agent: Process) -> Process {
            agent.proc = self.0.clone();
            agent
        }
    }

    impl Drop for FakeProc {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn report(agent: &mut Process) -> (u64, String) {
        let report = agent.report().unwrap();
        (report.status, report.detail.unwrap_or_default())
    }

    // Ages a second or two off still read the same: the uptime is counted
    // from when the fake process was added.
    const DAYS_3_4H: Duration = Duration::from_secs(3 * 86_400 + 4 * 3600 + 600);
    const HOUR: Duration = Duration::from_secs(3600 + 20);

    #[test]
    fn reads_state_and_start_past_odd_names() {
        let line = "42 (a (b) c) S 1 1 1 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 98765 1000 200";
        assert_eq!(parse_stat(line), Some(('S', 98765)));
        assert_eq!(parse_stat("42 (x) Z 1 2"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn pidfile_restart_is_reported_once() {
        let proc = FakeProc::new();
        let pidfile = proc.0.join("x.pid");
        let shown = pidfile.display().to_string();
        let mut agent = proc.agent(Process::pidfile(&pidfile).unwrap());
        assert_eq!(
            report(&mut agent),
            (NOT_RUNNING, format!("pidfile {shown} is missing"))
        );
        std::fs::write(&pidfile, "1234\n").unwrap();
        assert_eq!(
            report(&mut agent),
            (
                NOT_RUNNING,
                format!("pidfile {shown} names pid 1234, which is not running")
            )
        );
        proc.add(1234, "x", 'S', DAYS_3_4H);
        assert_eq!(report(&mut agent), (RUNNING, "pid 1234, up 3d4h".into()));
        assert_eq!(report(&mut agent), (RUNNING, "pid 1234, up 3d4h".into()));

        proc.add(5678, "x", 'S', Duration::from_secs(2));
        std::fs::write(&pidfile, "5678\n").unwrap();
        proc.remove(1234);
        let (status, detail) = report(&mut agent);
        assert_eq!(status, RESTARTED);
        assert!(
            detail.starts_with("pid 1234 → 5678 (restarted), up "),
            "{detail}"
        );
        assert_eq!(report(&mut agent).0, RUNNING);

        // A zombie has exited.
        proc.add(5678, "x", 'Z', Duration::from_secs(2));
        assert_eq!(
            report(&mut agent),
            (
                NOT_RUNNING,
                format!("pidfile {shown} names pid 5678, which is not running")
            )
        );
        // Back after being seen down: running, not restarted.
        proc.add(5678, "x", 'S', Duration::from_secs(1));
        assert_eq!(report(&mut agent).0, RUNNING);

        std::fs::write(&pidfile, "not a pid\n").unwrap();
        assert_eq!(
            report(&mut agent),
            (NOT_RUNNING, format!("pidfile {shown} holds no pid"))
        );
    }

    #[test]
    fn same_pid_with_another_start_is_a_restart() {
        let proc = FakeProc::new();
        let pidfile = proc.0.join("x.pid");
        std::fs::write(&pidfile, "77").unwrap();
        proc.add(77, "x", 'S', HOUR);
        let mut agent = proc.agent(Process::pidfile(&pidfile).unwrap());
        assert_eq!(report(&mut agent), (RUNNING, "pid 77, up 1h0m".into()));
        proc.add(77, "x", 'S', Duration::from_secs(5));
        let (status, detail) = report(&mut agent);
        assert_eq!(status, RESTARTED);
        assert!(
            detail.starts_with("pid 77 → 77 (restarted), up "),
            "{detail}"
        );
    }

    #[test]
    fn name_takes_the_oldest_and_skips_zombies() {
        let proc = FakeProc::new();
        let mut agent = proc.agent(Process::name("worker").unwrap());
        assert_eq!(
            report(&mut agent),
            (NOT_RUNNING, "no process named worker".into())
        );
        proc.add(300, "worker", 'S', HOUR);
        proc.add(200, "worker", 'Z', 5 * HOUR);
        proc.add(400, "worker", 'R', 2 * HOUR);
        proc.add(100, "worker2", 'S', 9 * HOUR);
        proc.add(101, "worke", 'S', 9 * HOUR);
        assert_eq!(report(&mut agent), (RUNNING, "pid 400, up 2h0m".into()));
        proc.remove(400);
        assert_eq!(
            report(&mut agent),
            (RESTARTED, "pid 400 → 300 (restarted), up 1h0m".into())
        );
        assert_eq!(report(&mut agent), (RUNNING, "pid 300, up 1h0m".into()));
        proc.remove(300);
        assert_eq!(
            report(&mut agent),
            (NOT_RUNNING, "no process named worker".into())
        );
    }

    #[test]
    fn pid_stays_gone_once_reused() {
        let proc = FakeProc::new();
        let mut agent = proc.agent(Process::pid(55).unwrap());
        proc.add(55, "db", 'S', HOUR);
        assert_eq!(report(&mut agent), (RUNNING, "pid 55, up 1h0m".into()));
        proc.remove(55);
        assert_eq!(
            report(&mut agent),
            (NOT_RUNNING, "pid 55 is not running".into())
        );
        proc.add(55, "other", 'S', Duration::from_secs(1));
        assert_eq!(
            report(&mut agent),
            (
                NOT_RUNNING,
                "pid 55 is not running (another process has its pid now)".into()
            )
        );
    }

    #[test]
    fn refuses_targets_that_can_never_match() {
        let err = Process::name("a-very-long-process-name").unwrap_err();
        assert_eq!(
            err.to_string(),
            "--name: \"a-very-long-process-name\" can never match: the kernel keeps 15 bytes \
             of a process's name; give --name \"a-very-long-pro\" (what ps -o comm shows)"
        );
        assert!(
            Process::name("")
                .unwrap_err()
                .to_string()
                .starts_with("--name: ")
        );
        assert!(
            Process::pid(0)
                .unwrap_err()
                .to_string()
                .starts_with("--pid: ")
        );
        assert!(
            Process::pidfile("")
                .unwrap_err()
                .to_string()
                .starts_with("--pidfile: ")
        );
        assert!(Process::name("fifteen-chars-x").is_ok());
    }

    #[test]
    fn an_unreadable_pidfile_fails_the_check() {
        let proc = FakeProc::new();
        // A directory can't be read as a file.
        let mut agent = proc.agent(Process::pidfile(&proc.0).unwrap());
        let err = agent.report().unwrap_err().to_string();
        assert!(err.starts_with("reading pidfile "), "{err}");
        assert_eq!(agent.failure_status(), None);
    }

    #[test]
    fn watches_this_very_process() {
        let mut agent = Process::pid(std::process::id()).unwrap();
        let (status, detail) = report(&mut agent);
        assert_eq!(status, RUNNING);
        assert!(
            detail.starts_with(&format!("pid {}, up ", std::process::id())),
            "{detail}"
        );
    }
}
