//! Scenario 6: the durable register round trip, one registration at a time
//! on one connection. procjon answers a `register` only once it is fsynced
//! to the state file; the baseline here appends each line to a file on the
//! same file system and fsyncs it before answering, which is the floor of
//! that design. The file system is reported with the figures.

use crate::Bench;
use crate::client::{self, Conn};
use crate::report::{Row, quantile};
use crate::server::{Kind, Launch, Server};
use serde_json::json;
use std::process::Command;
use std::time::{Duration, Instant};

/// Scenario 6.
pub fn run(bench: &mut Bench) -> Result<(), String> {
    let n: usize = bench.size(300, 20);
    let rounds = bench.size(2, 1);
    let fs = file_system(&bench.work);
    let mut procjon = Vec::new();
    let mut baseline = Vec::new();
    for round in 0..rounds {
        for kind in Kind::alternating(round) {
            let file = bench.fresh_dir()?.join("state.jsonl");
            let server = Server::start(Launch {
                kind,
                certs: &bench.certs,
                state: Some(&file),
                extra: Vec::new(),
                limit: Duration::from_secs(30),
            })?;
            let mut conn = Conn::connect(server.addr, &bench.tls)
                .map_err(|e| format!("{}: connecting: {e}", kind.name()))?;
            let mut took_ms = Vec::with_capacity(n);
            for i in 0..n {
                let line = client::register_line(&format!("reg-{round}-{i}"), 60.0);
                let sent = Instant::now();
                let ok = conn
                    .request(&line)
                    .map_err(|e| format!("{}: registering: {e}", kind.name()))?;
                took_ms.push(sent.elapsed().as_secs_f64() * 1e3);
                if !ok {
                    return Err(format!(
                        "{}: register refused\n{}",
                        kind.name(),
                        server.log_tail()
                    ));
                }
            }
            let mut sorted = took_ms.clone();
            sorted.sort_by(f64::total_cmp);
            let (p50, p99) = (quantile(&sorted, 0.5), quantile(&sorted, 0.99));
            println!(
                "   {:8} {n} registrations on {fs}: p50 {p50:.2} ms, p99 {p99:.2} ms",
                kind.name()
            );
            bench.report.raw(json!({
                "kind": "measurement",
                "scenario": "registration",
                "server": kind.name(),
                "round": round,
                "file_system": fs,
                "registrations": n,
                "p50_ms": p50,
                "p99_ms": p99,
            }));
            match kind {
                Kind::Procjon => procjon.extend(took_ms),
                Kind::Baseline => baseline.extend(took_ms),
            }
        }
    }
    procjon.sort_by(f64::total_cmp);
    baseline.sort_by(f64::total_cmp);
    let case = format!("1 connection, {fs}");
    for (metric, q) in [("p50 ms", 0.5), ("p99 ms", 0.99)] {
        bench.report.row(
            Row::new("registration", case.clone(), metric)
                .figures(quantile(&procjon, q), Some(quantile(&baseline, q))),
        );
    }
    Ok(())
}

/// The file system type of `dir` (`findmnt`, else `stat -f`).
fn file_system(dir: &std::path::Path) -> String {
    let run = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .arg(dir)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    run("findmnt", &["-n", "-o", "FSTYPE", "--target"])
        .or_else(|| run("stat", &["-f", "-c", "%T"]))
        .unwrap_or_else(|| "unknown file system".into())
}
