//! Scenarios 1 and 2: pings per second at 1, 10 and 100 connections, either
//! pipelined (64 frames in flight per connection) or one at a time (round
//! trip, with latency percentiles). Each connection registers its own
//! service, then pings it until told to stop; only the measurement window
//! (after a warm-up) counts. procjon and the baseline alternate, each on a
//! fresh process.

use crate::client::{self, Conn, Flag};
use crate::report::{Point, Row, Target, number, quantile};
use crate::server::Kind;
use crate::{Bench, procfs};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Frames in flight per connection in the pipelined scenario.
const WINDOW: usize = 64;

/// Scenario 1.
pub fn pipelined(bench: &mut Bench) -> Result<(), String> {
    sweep(bench, "throughput", Some(WINDOW))
}

/// Scenario 2.
pub fn round_trip(bench: &mut Bench) -> Result<(), String> {
    sweep(bench, "round-trip", None)
}

/// What one measurement found.
#[derive(Debug, Default)]
struct Outcome {
    pings_per_s: f64,
    /// Server CPU seconds per second of the window (cores busy).
    server_cores: f64,
    /// This process's (the load client's) CPU seconds per second.
    client_cores: f64,
    rss_kib: u64,
    refused: u64,
    /// Round-trip times in the window, µs.
    latencies_us: Vec<f64>,
}

fn sweep(bench: &mut Bench, scenario: &'static str, window: Option<usize>) -> Result<(), String> {
    let connections: Vec<usize> = bench.size(vec![1, 10, 100], vec![1, 4]);
    let rounds = bench.size(2, 1);
    let duration = bench.size(Duration::from_secs(10), Duration::from_millis(300));
    for (case, &conns) in connections.iter().enumerate() {
        let mut procjon = Vec::new();
        let mut baseline = Vec::new();
        for round in 0..rounds {
            for kind in Kind::alternating(round + case) {
                let outcome = measure(bench, kind, conns, window, duration)?;
                println!(
                    "   {:8} {conns:>3} conn: {:>10} pings/s, server {:.2} cores, client {:.2} cores{}",
                    kind.name(),
                    number(outcome.pings_per_s),
                    outcome.server_cores,
                    outcome.client_cores,
                    if outcome.latencies_us.is_empty() {
                        String::new()
                    } else {
                        let mut sorted = outcome.latencies_us.clone();
                        sorted.sort_by(f64::total_cmp);
                        format!(
                            ", p50 {:.0} µs, p99 {:.0} µs",
                            quantile(&sorted, 0.5),
                            quantile(&sorted, 0.99)
                        )
                    }
                );
                bench.report.raw(json!({
                    "kind": "measurement",
                    "scenario": scenario,
                    "server": kind.name(),
                    "connections": conns,
                    "round": round,
                    "window": window,
                    "seconds": duration.as_secs_f64(),
                    "pings_per_s": outcome.pings_per_s,
                    "server_cores": outcome.server_cores,
                    "client_cores": outcome.client_cores,
                    "server_rss_kib": outcome.rss_kib,
                    "refused": outcome.refused,
                    "samples": outcome.latencies_us.len(),
                }));
                if outcome.refused > 0 {
                    return Err(format!(
                        "{} refused {} pings at {conns} connections",
                        kind.name(),
                        outcome.refused
                    ));
                }
                match kind {
                    Kind::Procjon => procjon.push(outcome),
                    Kind::Baseline => baseline.push(outcome),
                }
            }
        }
        summarize(
            bench,
            scenario,
            conns,
            window.is_some(),
            &procjon,
            &baseline,
        );
    }
    Ok(())
}

fn summarize(
    bench: &mut Bench,
    scenario: &'static str,
    conns: usize,
    pipelined: bool,
    procjon: &[Outcome],
    baseline: &[Outcome],
) {
    let mean = |runs: &[Outcome], f: fn(&Outcome) -> f64| {
        runs.iter().map(f).sum::<f64>() / runs.len().max(1) as f64
    };
    let case = format!("{conns} connections");
    let (p_rate, b_rate) = (
        mean(procjon, |o| o.pings_per_s),
        mean(baseline, |o| o.pings_per_s),
    );
    let target = match (pipelined, conns >= 10) {
        (true, true) => Target::RatioAtLeast(0.7),
        (true, false) => Target::None,
        (false, _) => Target::RatioAtLeast(0.8),
    };
    bench.report.row(
        Row::new(scenario, case.clone(), "pings/s")
            .figures(p_rate, Some(b_rate))
            .target(target),
    );
    let per_ping = |runs: &[Outcome]| mean(runs, |o| o.server_cores / o.pings_per_s.max(1.0) * 1e6);
    bench.report.row(
        Row::new(scenario, case.clone(), "server CPU µs/ping")
            .figures(per_ping(procjon), Some(per_ping(baseline))),
    );
    bench.report.row(
        Row::new(scenario, case.clone(), "client CPU, cores").figures(
            mean(procjon, |o| o.client_cores),
            Some(mean(baseline, |o| o.client_cores)),
        ),
    );
    if pipelined {
        for (kind, rate) in [(Kind::Procjon, p_rate), (Kind::Baseline, b_rate)] {
            bench.report.points.push(Point {
                chart: "throughput",
                kind,
                x: conns as u64,
                y: rate,
            });
        }
    } else {
        let pooled = |runs: &[Outcome]| {
            let mut all: Vec<f64> = runs.iter().flat_map(|o| o.latencies_us.clone()).collect();
            all.sort_by(f64::total_cmp);
            all
        };
        let (p, b) = (pooled(procjon), pooled(baseline));
        for (metric, q) in [("p50 latency µs", 0.5), ("p99 latency µs", 0.99)] {
            bench.report.row(
                Row::new(scenario, case.clone(), metric)
                    .figures(quantile(&p, q), Some(quantile(&b, q))),
            );
        }
    }
}

/// One measurement: a fresh server, `conns` connections, a warm-up, then a
/// window of `duration`. `window` frames in flight per connection, or one
/// at a time (with latencies) when `None`.
fn measure(
    bench: &mut Bench,
    kind: Kind,
    conns: usize,
    window: Option<usize>,
    duration: Duration,
) -> Result<Outcome, String> {
    let server = bench.start(kind, Vec::new())?;
    let start = Arc::new(Flag::default());
    let stop = Arc::new(Flag::default());
    let measuring = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let mut threads = Vec::with_capacity(conns);
    for i in 0..conns {
        let (start, stop, measuring, count) = (
            start.clone(),
            stop.clone(),
            measuring.clone(),
            count.clone(),
        );
        let (ready, tls, addr) = (ready_tx.clone(), bench.tls.clone(), server.addr);
        let thread = client::spawn("load", move || -> Result<(u64, Vec<f64>), String> {
            let service = format!("load-{i}");
            let set_up = Conn::connect(addr, &tls).and_then(|mut conn| {
                conn.request(&client::register_line(&service, 3600.0))
                    .map(|ok| (conn, ok))
            });
            let mut conn = match set_up {
                Ok((conn, true)) => conn,
                Ok((_, false)) => {
                    let _ = ready.send(Err(format!("registering {service} was refused")));
                    return Ok((0, Vec::new()));
                }
                Err(err) => {
                    let _ = ready.send(Err(format!("connection {i}: {err}")));
                    return Ok((0, Vec::new()));
                }
            };
            let _ = ready.send(Ok(()));
            if !start.wait_until(Instant::now() + Duration::from_secs(120)) {
                return Ok((0, Vec::new()));
            }
            let ping = client::ping_line(&service);
            let drive = match window {
                Some(window) => drive_pipelined(&mut conn, &ping, window, &stop, &count),
                None => drive_one_at_a_time(&mut conn, &ping, &stop, &measuring, &count),
            };
            drive.map_err(|e| format!("connection {i}: {e}"))
        })
        .map_err(|e| format!("spawning client thread {i}: {e}"))?;
        threads.push(thread);
    }
    drop(ready_tx);
    let mut failure = None;
    for _ in 0..conns {
        match ready_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Ok(())) => {}
            Ok(Err(err)) => failure = failure.or(Some(err)),
            Err(_) => failure = failure.or(Some("connections not ready within 60 s".into())),
        }
    }
    if let Some(err) = failure {
        stop.set();
        start.set();
        return Err(format!("{}: {err}\n{}", kind.name(), server.log_tail()));
    }
    start.set();
    std::thread::sleep(bench.size(Duration::from_millis(500), Duration::from_millis(50)));
    let me = std::process::id();
    let (t0, c0, s0, k0) = (
        Instant::now(),
        count.load(Ordering::Relaxed),
        server.cpu(),
        procfs::cpu_seconds(me),
    );
    measuring.store(true, Ordering::Relaxed);
    std::thread::sleep(duration);
    measuring.store(false, Ordering::Relaxed);
    let (c1, s1, k1) = (
        count.load(Ordering::Relaxed),
        server.cpu(),
        procfs::cpu_seconds(me),
    );
    let secs = t0.elapsed().as_secs_f64();
    let rss_kib = server.rss_kib();
    stop.set();
    let mut outcome = Outcome {
        pings_per_s: (c1 - c0) as f64 / secs,
        server_cores: (s1 - s0) / secs,
        client_cores: (k1 - k0) / secs,
        rss_kib,
        ..Outcome::default()
    };
    for thread in threads {
        match thread.join() {
            Ok(Ok((refused, latencies))) => {
                outcome.refused += refused;
                outcome.latencies_us.extend(latencies);
            }
            Ok(Err(err)) => return Err(format!("{}: {err}\n{}", kind.name(), server.log_tail())),
            Err(_) => return Err("a client thread panicked".into()),
        }
    }
    Ok(outcome)
}

/// Keeps `window` pings in flight: every reply read is answered by as many
/// new pings. Returns the refused count.
fn drive_pipelined(
    conn: &mut Conn,
    ping: &[u8],
    window: usize,
    stop: &Flag,
    count: &AtomicU64,
) -> std::io::Result<(u64, Vec<f64>)> {
    let batch = ping.repeat(window);
    let mut refused = 0;
    conn.send(&batch)?;
    while !stop.is_set() {
        let got = conn.read_replies()?;
        refused += got.refused;
        count.fetch_add(got.ok, Ordering::Relaxed);
        let n = got.total() as usize;
        if n > 0 {
            conn.send(&batch[..n * ping.len()])?;
        }
    }
    Ok((refused, Vec::new()))
}

/// One ping at a time; records each round trip while `measuring`.
fn drive_one_at_a_time(
    conn: &mut Conn,
    ping: &[u8],
    stop: &Flag,
    measuring: &AtomicBool,
    count: &AtomicU64,
) -> std::io::Result<(u64, Vec<f64>)> {
    let mut refused = 0;
    let mut latencies = Vec::new();
    while !stop.is_set() {
        let sent = Instant::now();
        let ok = conn.request(ping)?;
        let took = sent.elapsed();
        if !ok {
            refused += 1;
            continue;
        }
        count.fetch_add(1, Ordering::Relaxed);
        if measuring.load(Ordering::Relaxed) {
            latencies.push(took.as_secs_f64() * 1e6);
        }
    }
    Ok((refused, latencies))
}
