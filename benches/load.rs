//! The load benchmark (issue 5): procjon side by side with a bare rustls
//! line-ack server, the baseline, in the same run.
//!
//! `cargo bench --bench load [-- --quick] [-- --scenario NAME]`, or
//! `scripts/bench.sh`. The harness (this process, main thread) starts the
//! release `procjon` binary and the baseline (this binary re-executed with
//! `--serve-baseline`) as child processes with real certificates, drives
//! them with a load client that has one small-stack thread per connection
//! speaking protocol v1 over rustls, reads their CPU and RSS from `/proc`,
//! receives procjon's notifications on a loopback webhook, and writes every
//! figure as a JSON line plus a table and an SVG chart. All traffic stays on
//! 127.0.0.1; every loop is bounded in count and time.
//!
//! `PROCJON_BENCH_BIN=PATH` runs another procjon build (to compare two, or
//! to profile one built with symbols).
//!
//! `--quick` scales every scenario down to a smoke run of a few seconds, for
//! CI (`cargo test --bench load -- --quick` runs it in the test profile).
//!
//! The modules live in `benches/load/`, one file per concept; `#[path]` is
//! needed because a bench's root file is not a `mod.rs`.

#[path = "load/baseline.rs"]
mod baseline;
#[path = "load/client.rs"]
mod client;
#[path = "load/detection.rs"]
mod detection;
#[path = "load/footprint.rs"]
mod footprint;
#[path = "load/held.rs"]
mod held;
#[path = "load/procfs.rs"]
mod procfs;
#[path = "load/registration.rs"]
mod registration;
#[path = "load/report.rs"]
mod report;
#[path = "load/server.rs"]
mod server;
#[path = "load/startup.rs"]
mod startup;
#[path = "load/svg.rs"]
mod svg;
#[path = "load/throughput.rs"]
mod throughput;
#[path = "load/webhook.rs"]
mod webhook;

use report::Report;
use rustls::ClientConfig;
use server::{Certs, Kind, Launch, Server};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A scenario: its name on the command line, what it measures, its body.
type Scenario = (
    &'static str,
    &'static str,
    fn(&mut Bench) -> Result<(), String>,
);

const SCENARIOS: [Scenario; 7] = [
    (
        "throughput",
        "pipelined pings (64 in flight) at 1, 10 and 100 connections",
        throughput::pipelined,
    ),
    (
        "round-trip",
        "one ping at a time at 1, 10 and 100 connections",
        throughput::round_trip,
    ),
    (
        "held",
        "1,000, 5,000 and 10,000 agents held, each pinging every 5 s",
        held::run,
    ),
    (
        "detection",
        "lateness of `not available` for 10,000 silent services",
        detection::run,
    ),
    (
        "startup",
        "start-up with 100,000 services and 1,000,000 records",
        startup::run,
    ),
    (
        "registration",
        "durable register round trip",
        registration::run,
    ),
    ("footprint", "idle RSS and binary size", footprint::run),
];

/// Open files the harness and its servers may need: 10,000 connections on
/// each side plus slack.
const OPEN_FILES: u64 = 65_536;
/// Set in the environment once the harness has re-executed itself under a
/// higher open-file limit.
const RAISED_ENV: &str = "PROCJON_BENCH_NOFILE_RAISED";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve-baseline") {
        return baseline::main(&args[1..]);
    }
    let options = match Options::parse(&args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("bench: {message}\n{}", Options::USAGE);
            return ExitCode::from(2);
        }
    };
    if options.list {
        for (name, what, _) in SCENARIOS {
            println!("{name:14} {what}");
        }
        return ExitCode::SUCCESS;
    }
    raise_open_files(&args);
    match run(&options) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("bench: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The command line.
#[derive(Debug, Default)]
struct Options {
    quick: bool,
    scenario: Option<String>,
    out: Option<PathBuf>,
    svg: Option<PathBuf>,
    list: bool,
}

impl Options {
    const USAGE: &str = "usage: cargo bench --bench load -- [--quick] [--scenario NAME] [--out FILE.jsonl] [--svg FILE.svg] [--list]";

    fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options::default();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = |flag: &str| {
                args.next()
                    .cloned()
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match arg.as_str() {
                "--quick" => options.quick = true,
                "--list" => options.list = true,
                "--scenario" => {
                    let mut name = value(arg)?;
                    // The scenario's name before it was `held`.
                    if name == "connections" {
                        name = "held".into();
                    }
                    if !SCENARIOS.iter().any(|(n, _, _)| *n == name) {
                        return Err(format!("no scenario {name:?} (--list shows them)"));
                    }
                    options.scenario = Some(name);
                }
                "--out" => options.out = Some(value(arg)?.into()),
                "--svg" => options.svg = Some(value(arg)?.into()),
                // cargo bench passes --bench to targets without the libtest harness.
                "--bench" => {}
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(options)
    }
}

/// Re-executes the harness through `sh -c 'ulimit -n ...'` when its open-file
/// limit is below [`OPEN_FILES`]; the servers it starts inherit the limit.
fn raise_open_files(args: &[String]) {
    let enough = procfs::open_file_limit().is_some_and(|n| n >= OPEN_FILES);
    if enough || std::env::var_os(RAISED_ENV).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let script = format!(
        "ulimit -n {OPEN_FILES} 2>/dev/null || ulimit -n \"$(ulimit -Hn)\"; exec \"$0\" \"$@\""
    );
    let err = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(exe)
        .args(args)
        .env(RAISED_ENV, "1")
        .exec();
    eprintln!("bench: could not re-execute under a higher open-file limit: {err}; going on");
}

/// What every scenario shares: sizes, certificates, the client TLS
/// configuration, a scratch directory and the report.
pub struct Bench {
    /// Scaled-down smoke run.
    pub quick: bool,
    /// The certificates both servers and the client use.
    pub certs: Certs,
    /// The agent's TLS configuration.
    pub tls: Arc<ClientConfig>,
    /// Scratch directory for state files, removed at the end.
    pub work: PathBuf,
    /// Where findings go.
    pub report: Report,
    dirs: u64,
}

impl Bench {
    /// `full` in a full run, `quick` in a quick one.
    pub fn size<T>(&self, full: T, quick: T) -> T {
        if self.quick { quick } else { full }
    }

    /// A new empty directory under the scratch directory.
    pub fn fresh_dir(&mut self) -> Result<PathBuf, String> {
        self.dirs += 1;
        let dir = self.work.join(format!("run-{}", self.dirs));
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        Ok(dir)
    }

    /// Starts a server with an empty state (procjon) or a plain baseline.
    pub fn start(&mut self, kind: Kind, extra: Vec<String>) -> Result<Server, String> {
        let state = self.fresh_dir()?.join("state.jsonl");
        Server::start(Launch {
            kind,
            certs: &self.certs,
            state: (kind == Kind::Procjon).then_some(state.as_path()),
            extra,
            limit: Duration::from_secs(30),
        })
    }
}

fn run(options: &Options) -> Result<bool, String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("target"));
    let dir = target.join("bench");
    let certs = Certs {
        dir: dir.join("certs"),
    };
    let work = dir.join(format!("work-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| format!("creating {}: {e}", work.display()))?;
    make_certs(manifest, &certs)?;
    let tls = procjon::tls::client_config(
        &certs.file("ca.pem"),
        &certs.file("procjonagent.pem"),
        &certs.file("procjonagent.key"),
    )
    .map_err(|e| e.to_string())?;
    let whole = options.scenario.is_none();
    let out = options.out.clone().unwrap_or_else(|| {
        dir.join(if options.quick {
            "results-quick.jsonl"
        } else {
            "results.jsonl"
        })
    });
    let svg_path = options.svg.clone().unwrap_or_else(|| {
        if whole && !options.quick {
            manifest.join("docs/bench-throughput.svg")
        } else {
            dir.join("bench-throughput.svg")
        }
    });
    let mut bench = Bench {
        quick: options.quick,
        certs,
        tls,
        work: work.clone(),
        report: Report::create(&out)?,
        dirs: 0,
    };
    let machine = procfs::machine();
    println!(
        "procjon load benchmark{}: {} cores, {}, kernel {}, load average {}",
        if options.quick { " (quick)" } else { "" },
        machine["cores"],
        machine["model"].as_str().unwrap_or("?"),
        machine["kernel"].as_str().unwrap_or("?"),
        procfs::load_average()
    );
    bench.report.raw(machine);
    bench.report.raw(serde_json::json!({
        "kind": "run",
        "date": utc_now(),
        "quick": options.quick,
        "scenario": options.scenario,
        "procjon": server::procjon_binary(),
    }));
    for (name, what, body) in SCENARIOS {
        if options.scenario.as_deref().is_some_and(|s| s != name) {
            continue;
        }
        println!("== {name}: {what}");
        let started = Instant::now();
        if let Err(message) = body(&mut bench) {
            bench.report.error(name, message);
        }
        println!("   {name} took {:.1} s", started.elapsed().as_secs_f64());
    }
    println!("\n{}", bench.report.table());
    if !bench.report.points.is_empty() {
        std::fs::write(&svg_path, svg::chart(&bench.report.points))
            .map_err(|e| format!("writing {}: {e}", svg_path.display()))?;
        println!("chart: {}", svg_path.display());
    }
    println!("raw figures: {}", out.display());
    let _ = std::fs::remove_dir_all(&work);
    let errors = bench.report.errors();
    for error in errors {
        eprintln!("bench: FAILED {error}");
    }
    Ok(errors.is_empty())
}

/// Makes the certificates with `scripts/gen-certs.sh` (it keeps existing ones).
/// The time now, as `date -u` prints it in RFC 3339 (`?` if it can't).
fn utc_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map_or_else(|| "?".into(), |date| date.trim().to_string())
}

fn make_certs(manifest: &Path, certs: &Certs) -> Result<(), String> {
    let out = Command::new("bash")
        .arg(manifest.join("scripts/gen-certs.sh"))
        .arg(&certs.dir)
        .output()
        .map_err(|e| format!("running scripts/gen-certs.sh: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "scripts/gen-certs.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
