//! Scenario 3 (`held`): connections held. 1,000, 5,000 and 10,000 agents connect (at most
//! [`RAMP`] handshakes in flight), each registers its own service and pings
//! it every 5 s with its own phase; after a hold of two ping periods the
//! server's RSS per connection is read, the agents disconnect, and a minute
//! later the RSS is read again (what a reconnect storm leaves behind).
//!
//! Kernel limits that bound this on one machine: every connection is a
//! thread on each side (`kernel.pid_max`, `kernel.threads-max`), each
//! thread stack is two mappings (`vm.max_map_count`), and each connection an
//! open file on each side (RLIMIT_NOFILE, raised by the harness).

use crate::Bench;
use crate::client::{self, Conn, Flag};
use crate::report::{Point, Row, Target, number};
use crate::server::{Kind, Server};
use serde_json::json;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Most connections connecting (handshake and registration) at once.
const RAMP: usize = 64;

/// What one hold found.
#[derive(Debug, Default)]
struct Held {
    idle_kib: u64,
    held_kib: u64,
    after_kib: u64,
    served: u64,
    failed: Vec<String>,
    pings: u64,
    ramp_s: f64,
    hold_cores: f64,
    threads_held: u64,
}

/// Scenario 3.
pub fn run(bench: &mut Bench) -> Result<(), String> {
    let sizes: Vec<usize> = bench.size(vec![1_000, 5_000, 10_000], vec![20, 50]);
    let period = bench.size(Duration::from_secs(5), Duration::from_millis(400));
    let hold = period * 2 + bench.size(Duration::from_secs(2), Duration::from_millis(200));
    let after = bench.size(Duration::from_secs(60), Duration::from_millis(300));
    for (case, &n) in sizes.iter().enumerate() {
        let mut procjon = Held::default();
        let mut baseline = Held::default();
        for kind in Kind::alternating(case) {
            let server = bench.start(kind, Vec::new())?;
            let held = hold_connections(bench, &server, n, period, hold, after)?;
            println!(
                "   {:8} {n:>6} conn: ramp {:.1} s, RSS idle {} KiB, held {} KiB ({:.1} KiB/conn), after {} KiB; {} served, {} failed",
                kind.name(),
                held.ramp_s,
                number(held.idle_kib as f64),
                number(held.held_kib as f64),
                per_conn(&held, n),
                number(held.after_kib as f64),
                held.served,
                held.failed.len()
            );
            for failure in held.failed.iter().take(3) {
                println!("      e.g. {failure}");
            }
            bench.report.raw(json!({
                "kind": "measurement",
                "scenario": "held",
                "server": kind.name(),
                "connections": n,
                "ping_period_s": period.as_secs_f64(),
                "hold_s": hold.as_secs_f64(),
                "after_s": after.as_secs_f64(),
                "idle_rss_kib": held.idle_kib,
                "held_rss_kib": held.held_kib,
                "after_rss_kib": held.after_kib,
                "served": held.served,
                "failed": held.failed.len(),
                "failures": held.failed.iter().take(10).collect::<Vec<_>>(),
                "pings": held.pings,
                "ramp_s": held.ramp_s,
                "hold_server_cores": held.hold_cores,
                "server_threads_held": held.threads_held,
            }));
            if kind == Kind::Procjon && !held.failed.is_empty() {
                println!("{}", server.log_tail());
            }
            match kind {
                Kind::Procjon => procjon = held,
                Kind::Baseline => baseline = held,
            }
        }
        let case = format!("{n} connections");
        let report = &mut bench.report;
        report.row(
            Row::new("held", case.clone(), "connections served")
                .figures(procjon.served as f64, Some(baseline.served as f64))
                .target(Target::AtLeast(n as f64)),
        );
        report.row(
            Row::new("held", case.clone(), "RSS/connection KiB")
                .figures(per_conn(&procjon, n), Some(per_conn(&baseline, n)))
                .target(Target::RatioAtMost(1.15)),
        );
        report.row(
            Row::new("held", case.clone(), "RSS held MiB")
                .figures(mib(procjon.held_kib), Some(mib(baseline.held_kib))),
        );
        report.row(
            Row::new("held", case.clone(), "RSS after disconnect MiB")
                .figures(mib(procjon.after_kib), Some(mib(baseline.after_kib))),
        );
        report.row(
            Row::new("held", case.clone(), "connect+register s")
                .figures(procjon.ramp_s, Some(baseline.ramp_s)),
        );
        for (kind, held) in [(Kind::Procjon, &procjon), (Kind::Baseline, &baseline)] {
            report.points.push(Point {
                chart: "rss",
                kind,
                x: n as u64,
                y: mib(held.held_kib),
            });
        }
    }
    Ok(())
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn per_conn(held: &Held, n: usize) -> f64 {
    held.held_kib.saturating_sub(held.idle_kib) as f64 / n as f64
}

/// What one agent thread did.
struct Agent {
    pings: u64,
    /// Why it was not served, if it wasn't.
    failure: Option<String>,
}

fn hold_connections(
    bench: &Bench,
    server: &Server,
    n: usize,
    period: Duration,
    hold: Duration,
    after: Duration,
) -> Result<Held, String> {
    std::thread::sleep(Duration::from_millis(200));
    let mut held = Held {
        idle_kib: server.rss_kib(),
        ..Held::default()
    };
    let idle_threads = server.threads();
    let stop = Arc::new(Flag::default());
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let ramp_start = Instant::now();
    let mut threads = Vec::with_capacity(n);
    let mut in_flight = 0;
    for i in 0..n {
        let (agent_stop, ready, tls, addr) = (
            stop.clone(),
            ready_tx.clone(),
            bench.tls.clone(),
            server.addr,
        );
        // Spread the agents' pings evenly over the period.
        let phase = period.mul_f64(i as f64 / n as f64);
        let spawned = client::spawn("agent", move || {
            let service = format!("held-{i}");
            let connected = Conn::connect(addr, &tls).and_then(|mut conn| {
                conn.request(&client::register_line(&service, 3600.0))
                    .map(|ok| (conn, ok))
            });
            let _ = ready.send(());
            let mut agent = Agent {
                pings: 0,
                failure: None,
            };
            let mut conn = match connected {
                Ok((conn, true)) => conn,
                Ok((_, false)) => {
                    agent.failure = Some(format!("registering {service} was refused"));
                    return agent;
                }
                Err(err) => {
                    agent.failure = Some(format!("agent {i}: connecting: {err}"));
                    return agent;
                }
            };
            let ping = client::ping_line(&service);
            let mut next = Instant::now() + phase;
            // Bounded by the stop flag, and by the harness's own limit.
            while !agent_stop.wait_until(next) && agent.pings < 100_000 {
                match conn.request(&ping) {
                    Ok(true) => agent.pings += 1,
                    Ok(false) => {
                        agent.failure = Some(format!("agent {i}: ping refused"));
                        break;
                    }
                    Err(err) => {
                        agent.failure = Some(format!("agent {i}: ping: {err}"));
                        break;
                    }
                }
                next += period;
            }
            agent
        });
        match spawned {
            Ok(thread) => threads.push(thread),
            Err(err) => {
                held.failed.push(format!("agent {i}: no thread: {err}"));
                continue;
            }
        }
        in_flight += 1;
        while in_flight >= RAMP {
            if ready_rx.recv_timeout(Duration::from_secs(60)).is_err() {
                stop.set();
                return Err(format!("agents stopped connecting ({i} of {n} started)"));
            }
            in_flight -= 1;
        }
    }
    drop(ready_tx);
    while in_flight > 0 && ready_rx.recv_timeout(Duration::from_secs(60)).is_ok() {
        in_flight -= 1;
    }
    held.ramp_s = ramp_start.elapsed().as_secs_f64();
    let cpu0 = server.cpu();
    std::thread::sleep(hold);
    held.hold_cores = (server.cpu() - cpu0) / hold.as_secs_f64();
    held.held_kib = server.rss_kib();
    held.threads_held = server.threads();
    stop.set();
    for thread in threads {
        match thread.join() {
            Ok(agent) => {
                held.pings += agent.pings;
                match agent.failure {
                    None if agent.pings > 0 => held.served += 1,
                    None => held.failed.push("no ping answered during the hold".into()),
                    Some(failure) => held.failed.push(failure),
                }
            }
            Err(_) => held.failed.push("agent thread panicked".into()),
        }
    }
    // Wait for the server to end its connection threads, then for `after`.
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.threads() > idle_threads && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(after);
    held.after_kib = server.rss_kib();
    Ok(held)
}
