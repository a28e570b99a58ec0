//! The server under test as a child process: the release `procjon` binary or
//! the baseline (this harness re-executed with `--serve-baseline`). Both log
//! `listening on ADDR` to stderr; a thread drains stderr (keeping the tail for
//! error reports) so that logging never blocks the server. Killed and reaped
//! on drop.

use crate::procfs;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Which server a measurement ran against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The real daemon.
    Procjon,
    /// The bare line-ack rustls server.
    Baseline,
}

impl Kind {
    /// The name used in the table and the JSON lines.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Procjon => "procjon",
            Kind::Baseline => "baseline",
        }
    }

    /// Both kinds, procjon first on even `round`s and baseline first on odd
    /// ones, so that neither always runs on a warmer (or busier) machine.
    pub fn alternating(round: usize) -> [Kind; 2] {
        if round.is_multiple_of(2) {
            [Kind::Procjon, Kind::Baseline]
        } else {
            [Kind::Baseline, Kind::Procjon]
        }
    }
}

/// The certificate files from `scripts/gen-certs.sh`.
#[derive(Debug, Clone)]
pub struct Certs {
    /// Their directory.
    pub dir: PathBuf,
}

impl Certs {
    /// A file in the directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// How to start one server.
pub struct Launch<'a> {
    /// Which server.
    pub kind: Kind,
    /// The certificates.
    pub certs: &'a Certs,
    /// procjon's state file; for the baseline, a file to append and fsync every
    /// line to before answering (none: answer at once).
    pub state: Option<&'a Path>,
    /// Extra procjon flags (e.g. the webhook).
    pub extra: Vec<String>,
    /// How long start-up may take.
    pub limit: Duration,
}

/// A running server.
pub struct Server {
    child: Child,
    /// Its address on 127.0.0.1.
    pub addr: SocketAddr,
    /// Time from spawn to its `listening on` line.
    pub listening_after: Duration,
    /// When it was spawned.
    pub spawned: Instant,
    log: Arc<Mutex<VecDeque<String>>>,
    /// Which server.
    pub kind: Kind,
}

/// The procjon binary: `$PROCJON_BENCH_BIN` when set (to compare two builds,
/// or profile one with symbols), else the one cargo built with this harness.
pub fn procjon_binary() -> PathBuf {
    std::env::var_os("PROCJON_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_procjon")))
}

/// Lines of a server's log kept for error reports.
const LOG_TAIL: usize = 40;

impl Server {
    /// Starts a server and waits for its `listening on` line.
    pub fn start(launch: Launch<'_>) -> Result<Server, String> {
        let certs = launch.certs;
        let mut command = match launch.kind {
            Kind::Procjon => {
                let mut command = Command::new(procjon_binary());
                command
                    .args([
                        "-e",
                        "127.0.0.1:0",
                        "--http",
                        "off",
                        "-l",
                        "info",
                        "--state",
                    ])
                    .arg(launch.state.ok_or("procjon needs a state file")?)
                    .arg("--root-cert")
                    .arg(certs.file("ca.pem"))
                    .arg("-c")
                    .arg(certs.file("procjon.pem"))
                    .arg("-k")
                    .arg(certs.file("procjon.key"))
                    .args(&launch.extra)
                    .env_remove("PROCJON_SLACK_WEBHOOK")
                    .env_remove("RUST_LOG");
                command
            }
            Kind::Baseline => {
                let exe =
                    std::env::current_exe().map_err(|e| format!("finding the harness: {e}"))?;
                let mut command = Command::new(exe);
                command
                    .arg("--serve-baseline")
                    .arg(certs.file("ca.pem"))
                    .arg(certs.file("procjon.pem"))
                    .arg(certs.file("procjon.key"));
                if let Some(durable) = launch.state {
                    command.arg(durable);
                }
                command
            }
        };
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let spawned = Instant::now();
        let mut child = command
            .spawn()
            .map_err(|e| format!("starting {}: {e}", launch.kind.name()))?;
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (addr_tx, addr_rx) = mpsc::channel();
        let stderr = child.stderr.take().ok_or("no stderr pipe")?;
        let sink = log.clone();
        std::thread::Builder::new()
            .name("server-log".into())
            .spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(addr) = line.split("listening on ").nth(1) {
                        let _ = addr_tx.send((Instant::now(), addr.trim().to_string()));
                    }
                    let mut log = sink.lock().unwrap_or_else(|e| e.into_inner());
                    if log.len() == LOG_TAIL {
                        log.pop_front();
                    }
                    log.push_back(line);
                }
            })
            .map_err(|e| format!("starting the log reader: {e}"))?;
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            listening_after: Duration::ZERO,
            spawned,
            log,
            kind: launch.kind,
        };
        loop {
            if let Ok((at, addr)) = addr_rx.recv_timeout(Duration::from_millis(20)) {
                server.addr = addr.parse().map_err(|e| {
                    format!("{} said it listens on {addr:?}: {e}", launch.kind.name())
                })?;
                server.listening_after = at - spawned;
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                std::thread::sleep(Duration::from_millis(50));
                return Err(format!(
                    "{} exited with {status} before listening:\n{}",
                    launch.kind.name(),
                    server.log_tail()
                ));
            }
            if spawned.elapsed() > launch.limit {
                return Err(format!(
                    "{} did not listen within {:?}:\n{}",
                    launch.kind.name(),
                    launch.limit,
                    server.log_tail()
                ));
            }
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU seconds (user + system) it has used.
    pub fn cpu(&self) -> f64 {
        procfs::cpu_seconds(self.pid())
    }

    /// Its resident set size, KiB.
    pub fn rss_kib(&self) -> u64 {
        procfs::rss_kib(self.pid())
    }

    /// Its thread count.
    pub fn threads(&self) -> u64 {
        procfs::threads(self.pid())
    }

    /// The last lines of its log.
    pub fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.iter().map(|l| format!("  | {l}\n")).collect()
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
