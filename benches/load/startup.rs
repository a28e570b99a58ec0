//! Scenario 5: start-up with a big state file. The harness writes a file of
//! 100,000 services and 1,000,000 records (registrations, re-registrations,
//! announcements and deliveries, interleaved across services as a long-lived
//! daemon would write them), kept in `target/bench/` for later runs, and
//! times procjon from spawn to its `listening on` line and to the answer to
//! its first ping (accepting and serving). The baseline's start-up (empty
//! state: process, TLS configuration, bind) is the floor.

use crate::Bench;
use crate::client::{self, Conn};
use crate::report::{Row, Target, number};
use crate::server::{Kind, Launch, Server};
use serde_json::json;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Records per service in the generated file.
const RECORDS_PER_SERVICE: usize = 10;

/// Scenario 5.
pub fn run(bench: &mut Bench) -> Result<(), String> {
    let services: usize = bench.size(100_000, 1_000);
    let source = state_file(bench, services)?;
    let rounds = bench.size(2, 1);
    let mut figures: Vec<(Kind, f64, f64, u64)> = Vec::new();
    for round in 0..rounds {
        for kind in Kind::alternating(round) {
            let dir = bench.fresh_dir()?;
            let state = match kind {
                Kind::Procjon => {
                    let state = dir.join("state.jsonl");
                    std::fs::copy(&source, &state)
                        .map_err(|e| format!("copying {}: {e}", source.display()))?;
                    Some(state)
                }
                Kind::Baseline => None,
            };
            let server = Server::start(Launch {
                kind,
                certs: &bench.certs,
                state: state.as_deref(),
                extra: Vec::new(),
                limit: Duration::from_secs(120),
            })?;
            let mut conn = Conn::connect(server.addr, &bench.tls)
                .map_err(|e| format!("{}: connecting: {e}", kind.name()))?;
            let ok = conn
                .request(&client::ping_line("svc-0"))
                .map_err(|e| format!("{}: first ping: {e}", kind.name()))?;
            let ready = server.spawned.elapsed();
            if !ok {
                return Err(format!(
                    "{}: first ping refused\n{}",
                    kind.name(),
                    server.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
            let rss = server.rss_kib();
            let (listening_ms, ready_ms) = (
                server.listening_after.as_secs_f64() * 1e3,
                ready.as_secs_f64() * 1e3,
            );
            println!(
                "   {:8} listening after {listening_ms:.0} ms, first ping answered after {ready_ms:.0} ms, RSS {} KiB ({:.2} KiB per service)",
                kind.name(),
                number(rss as f64),
                rss as f64 / services as f64
            );
            bench.report.raw(json!({
                "kind": "measurement",
                "scenario": "startup",
                "server": kind.name(),
                "round": round,
                "services": services,
                "records": services * RECORDS_PER_SERVICE,
                "listening_ms": listening_ms,
                "ready_ms": ready_ms,
                "rss_kib": rss,
            }));
            figures.push((kind, listening_ms, ready_ms, rss));
        }
    }
    let mean = |kind: Kind, f: fn(&(Kind, f64, f64, u64)) -> f64| {
        let of_kind: Vec<f64> = figures.iter().filter(|x| x.0 == kind).map(f).collect();
        of_kind.iter().sum::<f64>() / of_kind.len().max(1) as f64
    };
    let case = format!(
        "{} services, {} records",
        number(services as f64),
        number((services * RECORDS_PER_SERVICE) as f64)
    );
    for (metric, f, target) in [
        (
            "listening after ms",
            (|x: &(Kind, f64, f64, u64)| x.1) as fn(&_) -> f64,
            Target::None,
        ),
        ("first reply after ms", |x| x.2, Target::AtMost(1000.0)),
        (
            "RSS after start MiB",
            |x| x.3 as f64 / 1024.0,
            Target::AtMost(48.0),
        ),
    ] {
        bench.report.row(
            Row::new("startup", case.clone(), metric)
                .figures(mean(Kind::Procjon, f), Some(mean(Kind::Baseline, f)))
                .target(target),
        );
    }
    // All of procjon's RSS over its services (the baseline holds none).
    let rss_kib = mean(Kind::Procjon, |x| x.3 as f64);
    bench.report.row(
        Row::new("startup", case, "RSS per service KiB")
            .figures(rss_kib / services as f64, None)
            .target(Target::AtMost(0.5)),
    );
    Ok(())
}

/// The generated state file for `services` services, made once.
fn state_file(bench: &Bench, services: usize) -> Result<PathBuf, String> {
    let dir = bench.work.parent().unwrap_or(&bench.work);
    let path = dir.join(format!("startup-{services}.jsonl"));
    if path.exists() {
        return Ok(path);
    }
    let partial = path.with_extension("partial");
    let started = Instant::now();
    write_state(&partial, services).map_err(|e| format!("writing {}: {e}", partial.display()))?;
    std::fs::rename(&partial, &path).map_err(|e| format!("renaming {}: {e}", partial.display()))?;
    println!(
        "   wrote {} ({} records) in {:.1} s",
        path.display(),
        number((services * RECORDS_PER_SERVICE) as f64),
        started.elapsed().as_secs_f64()
    );
    Ok(path)
}

/// Ten records per service, written step by step across all services: a
/// registration, "available", a re-registration with a third status,
/// "degraded", "not available", and a last announcement (even services end
/// available with a 1 h timeout, so nothing expires during the run; odd
/// ones not available), each announcement followed by its delivery.
fn write_state(path: &Path, services: usize) -> std::io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let at = "2026-01-01T00:00:00Z";
    for step in 0..RECORDS_PER_SERVICE {
        for i in 0..services {
            let seq = (step / 2) * services + i + 1;
            let name = format!("svc-{i}");
            match step {
                0 => writeln!(
                    out,
                    r#"{{"op":"register","service":"{name}","timeout_s":3600,"statuses":["ok","degraded"]}}"#
                )?,
                3 => writeln!(
                    out,
                    r#"{{"op":"register","service":"{name}","timeout_s":3600,"statuses":["ok","degraded","down"]}}"#
                )?,
                1 | 4 | 6 | 8 => {
                    let (available, status, text) = match step {
                        1 => (true, 0, format!("{name} is available")),
                        4 => (
                            true,
                            1,
                            format!("{name} status changed to degraded (was ok)"),
                        ),
                        6 => (
                            false,
                            1,
                            format!("{name} is not available (no ping for 1h)"),
                        ),
                        _ if i % 2 == 0 => (true, 0, format!("{name} is available")),
                        _ => (
                            false,
                            2,
                            format!("{name} status changed to down (was degraded)"),
                        ),
                    };
                    writeln!(
                        out,
                        r#"{{"op":"announce","seq":{seq},"service":"{name}","available":{available},"status":{status},"text":"{text}","at":"{at}"}}"#
                    )?
                }
                _ => writeln!(
                    out,
                    r#"{{"op":"delivered","seq":{}}}"#,
                    (step - 1) / 2 * services + i + 1
                )?,
            }
        }
    }
    out.flush()?;
    out.get_ref().sync_all()
}
