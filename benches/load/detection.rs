//! Scenario 4: detection latency. 10,000 "silent" services with a 2 s
//! timeout are pinged once and then left alone, while 1,000 "steady" ones
//! keep pinging every second. For each silent service, the lateness of its
//! `not available` line at the webhook: arrival − (ping sent + timeout).
//! (The send time is taken just before the ping's batch is written, so the
//! figure can only overstate procjon's lateness.) Slack pacing is off
//! (`--slack-interval 0`, the option that exists for benchmarks). The
//! baseline keeps no state and has no timer, so there is no baseline figure.
//!
//! Alternating with that, the same with three sinks: the Slack webhook, a JSON webhook
//! and an Alertmanager (stand-ins answering 200), to show that the other
//! sinks' threads don't slow the channel: the lateness at the Slack
//! webhook is compared with Slack's alone.

use crate::Bench;
use crate::client::{self, Conn, Flag};
use crate::report::{Row, Target, quantile};
use crate::server::Kind;
use crate::webhook::Webhook;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Frames in flight while registering and pinging.
const WINDOW: usize = 64;

/// What one run measured.
struct Measured {
    p50: f64,
    p99: f64,
    max: f64,
    missing: f64,
    false_alarms: u64,
    case: String,
}

/// Scenario 4: Slack alone, then three sinks, alternating for a few
/// rounds (the machine's noise hits both alike); the medians are reported.
pub fn run(bench: &mut Bench) -> Result<(), String> {
    let rounds = bench.size(3, 1);
    let json = Webhook::start()?;
    let alertmanager = Webhook::start()?;
    let sinks = vec![
        "--webhook-json".to_string(),
        json.url.clone(),
        "--alertmanager".to_string(),
        alertmanager.url.clone(),
    ];
    let (mut alone, mut three) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        alone.push(measure(bench, "slack", Vec::new())?);
        three.push(measure(
            bench,
            "slack + json + alertmanager",
            sinks.clone(),
        )?);
    }
    let (json_posts, alert_posts) = (json.arrivals().1, alertmanager.arrivals().1);
    println!(
        "   with three sinks: {json_posts} posts to the JSON webhook, {alert_posts} to Alertmanager in all"
    );
    let alone = Measured::median(alone);
    let three = Measured::median(three);
    println!(
        "   medians of {rounds}: Slack alone p50 {:.1} ms, p99 {:.1} ms; three sinks p50 {:.1} ms, p99 {:.1} ms",
        alone.p50, alone.p99, three.p50, three.p99
    );
    let report = &mut bench.report;
    let case = alone.case.clone();
    report.row(Row::new("detection", case.clone(), "lateness p50 ms").figures(alone.p50, None));
    report.row(
        Row::new("detection", case.clone(), "lateness p99 ms")
            .figures(alone.p99, None)
            .target(Target::AtMost(50.0)),
    );
    report.row(Row::new("detection", case.clone(), "lateness max ms").figures(alone.max, None));
    report.row(
        Row::new("detection", case.clone(), "never arrived")
            .figures(alone.missing, None)
            .target(Target::AtMost(0.0)),
    );
    report.row(
        Row::new("detection", case, "false alarms")
            .figures(alone.false_alarms as f64, None)
            .target(Target::AtMost(0.0)),
    );
    // The baseline column holds Slack alone: the ratio is the cost of the
    // other two sinks.
    let case = format!("{}, 3 sinks vs Slack alone", three.case);
    report.row(
        Row::new("detection", case.clone(), "lateness p50 ms")
            .figures(three.p50, Some(alone.p50))
            .target(Target::RatioAtMost(1.2)),
    );
    report.row(
        Row::new("detection", case.clone(), "lateness p99 ms")
            .figures(three.p99, Some(alone.p99))
            .target(Target::RatioAtMost(1.2)),
    );
    report.row(
        Row::new("detection", case.clone(), "never arrived")
            .figures(three.missing, None)
            .target(Target::AtMost(0.0)),
    );
    report.row(
        Row::new("detection", case, "false alarms")
            .figures(three.false_alarms as f64, None)
            .target(Target::AtMost(0.0)),
    );
    Ok(())
}

impl Measured {
    /// The median of each figure over `runs` (worst for the counts).
    fn median(runs: Vec<Measured>) -> Measured {
        let middle = |figure: fn(&Measured) -> f64| {
            let mut values: Vec<f64> = runs.iter().map(figure).collect();
            values.sort_by(f64::total_cmp);
            values[values.len() / 2]
        };
        Measured {
            p50: middle(|m| m.p50),
            p99: middle(|m| m.p99),
            max: middle(|m| m.max),
            missing: runs.iter().map(|m| m.missing).fold(0.0, f64::max),
            false_alarms: runs.iter().map(|m| m.false_alarms).max().unwrap_or(0),
            case: runs.first().map(|m| m.case.clone()).unwrap_or_default(),
        }
    }
}

/// One run: procjon with `--slack-webhook` and `extra` arguments.
fn measure(bench: &mut Bench, sinks: &str, extra: Vec<String>) -> Result<Measured, String> {
    let silent_n: usize = bench.size(10_000, 200);
    let steady_n: usize = bench.size(1_000, 20);
    let timeout = bench.size(Duration::from_secs(2), Duration::from_millis(500));
    let period = bench.size(Duration::from_secs(1), Duration::from_millis(200));
    let conns: usize = bench.size(10, 2);
    let hook = Webhook::start()?;
    let mut args: Vec<String> = [
        "--slack-webhook",
        &hook.url,
        "--slack-interval",
        "0",
        "--slack-backoff",
        "0.1",
    ]
    .map(String::from)
    .to_vec();
    args.extend(extra);
    let server = bench.start(Kind::Procjon, args)?;
    let fail = |err: String| format!("{err}\n{}", server.log_tail());
    let timeout_s = timeout.as_secs_f64();
    let silent: Vec<String> = (0..silent_n).map(|i| format!("silent-{i}")).collect();
    let steady: Vec<String> = (0..steady_n).map(|i| format!("steady-{i}")).collect();

    // Register everything over many connections (registrations are durable,
    // one at a time per connection; group commit serves them together).
    let registering = Instant::now();
    let all: Vec<String> = silent.iter().chain(&steady).cloned().collect();
    let register_conns = conns * 2;
    let chunk = all.len().div_ceil(register_conns);
    let threads: Vec<_> = all
        .chunks(chunk)
        .map(|names| {
            let lines: Vec<Vec<u8>> = names
                .iter()
                .map(|s| client::register_line(s, timeout_s))
                .collect();
            let (tls, addr) = (bench.tls.clone(), server.addr);
            client::spawn("register", move || {
                let mut conn = Conn::connect(addr, &tls)?;
                conn.pipeline(&lines, WINDOW, |_, _| {})
            })
        })
        .collect::<Result<_, _>>()
        .map_err(|e| format!("spawning: {e}"))?;
    for thread in threads {
        let replies = thread
            .join()
            .map_err(|_| "a register thread panicked".to_string())?
            .map_err(|e| fail(format!("registering: {e}")))?;
        if replies.refused > 0 {
            return Err(fail(format!("{} registrations refused", replies.refused)));
        }
    }
    let register_s = registering.elapsed().as_secs_f64();

    // Steady services: ping every period until stopped.
    let stop = Arc::new(Flag::default());
    let steady_threads: Vec<_> = steady
        .chunks(steady_n.div_ceil(conns))
        .map(|names| {
            let lines: Vec<Vec<u8>> = names.iter().map(|s| client::ping_line(s)).collect();
            let (tls, addr, stop) = (bench.tls.clone(), server.addr, stop.clone());
            client::spawn("steady", move || -> std::io::Result<u64> {
                let mut conn = Conn::connect(addr, &tls)?;
                let mut refused = 0;
                let mut next = Instant::now();
                for _ in 0..10_000 {
                    refused += conn.pipeline(&lines, WINDOW, |_, _| {})?.refused;
                    next += period;
                    if stop.wait_until(next) {
                        break;
                    }
                }
                Ok(refused)
            })
        })
        .collect::<Result<_, _>>()
        .map_err(|e| format!("spawning: {e}"))?;
    std::thread::sleep(period);

    // Silent services: one ping each, recording when it was sent.
    let silent_threads: Vec<_> = silent
        .chunks(silent_n.div_ceil(conns))
        .enumerate()
        .map(|(c, names)| {
            let first = c * silent_n.div_ceil(conns);
            let lines: Vec<Vec<u8>> = names.iter().map(|s| client::ping_line(s)).collect();
            let (tls, addr) = (bench.tls.clone(), server.addr);
            client::spawn(
                "silent",
                move || -> std::io::Result<Vec<(usize, Instant)>> {
                    let mut conn = Conn::connect(addr, &tls)?;
                    let mut sent = Vec::with_capacity(lines.len());
                    let replies =
                        conn.pipeline(&lines, WINDOW, |i, at| sent.push((first + i, at)))?;
                    if replies.refused > 0 {
                        return Err(std::io::Error::other("silent pings refused"));
                    }
                    Ok(sent)
                },
            )
        })
        .collect::<Result<_, _>>()
        .map_err(|e| format!("spawning: {e}"))?;
    let mut sent_at: Vec<Option<Instant>> = vec![None; silent_n];
    for thread in silent_threads {
        let sent = thread
            .join()
            .map_err(|_| "a silent thread panicked".to_string())?
            .map_err(|e| fail(format!("pinging: {e}")))?;
        for (i, at) in sent {
            sent_at[i] = Some(at);
        }
    }
    let last_sent = sent_at
        .iter()
        .flatten()
        .max()
        .copied()
        .unwrap_or_else(Instant::now);

    // Wait for every `not available`, bounded.
    let deadline =
        last_sent + timeout + bench.size(Duration::from_secs(10), Duration::from_secs(3));
    let is_silent_down = |t: &str| t.starts_with("silent-") && t.contains(" is not available");
    while hook.count(is_silent_down) < silent_n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Keep the steady services going a moment longer to catch false alarms.
    std::thread::sleep(period);
    stop.set();
    let mut steady_refused = 0;
    for thread in steady_threads {
        steady_refused += thread
            .join()
            .map_err(|_| "a steady thread panicked".to_string())?
            .map_err(|e| fail(format!("steady pings: {e}")))?;
    }

    let (arrivals, posts) = hook.arrivals();
    let mut first_down: HashMap<&str, Instant> = HashMap::new();
    let mut false_alarms = 0u64;
    for arrival in &arrivals {
        if let Some((service, _)) = arrival.text.split_once(" is not available") {
            if service.starts_with("steady-") {
                false_alarms += 1;
            }
            first_down.entry(service).or_insert(arrival.at);
        }
    }
    let mut lateness_ms: Vec<f64> = Vec::with_capacity(silent_n);
    let mut early = 0u64;
    for (name, sent) in silent.iter().zip(&sent_at) {
        if let (Some(sent), Some(at)) = (sent, first_down.get(name.as_str())) {
            let due = *sent + timeout;
            if *at >= due {
                lateness_ms.push((*at - due).as_secs_f64() * 1e3);
            } else {
                // Earlier than the send time allows: the ping was applied after
                // the recorded send time. Counts as on time.
                early += 1;
                lateness_ms.push(0.0);
            }
        }
    }
    lateness_ms.sort_by(f64::total_cmp);
    let missing = (silent_n - lateness_ms.len()) as f64;
    let (p50, p99, max) = (
        quantile(&lateness_ms, 0.5),
        quantile(&lateness_ms, 0.99),
        lateness_ms.last().copied().unwrap_or(0.0),
    );
    println!(
        "   {sinks}: {silent_n} silent, {steady_n} steady: lateness p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms; {missing} missing, {false_alarms} false alarms, {posts} posts; registering took {register_s:.1} s"
    );
    bench.report.raw(json!({
        "kind": "measurement",
        "scenario": "detection",
        "server": "procjon",
        "sinks": sinks,
        "silent": silent_n,
        "steady": steady_n,
        "timeout_s": timeout_s,
        "steady_period_s": period.as_secs_f64(),
        "lateness_ms_p50": p50,
        "lateness_ms_p99": p99,
        "lateness_ms_max": max,
        "missing": missing,
        "early": early,
        "false_alarms": false_alarms,
        "steady_refused": steady_refused,
        "posts": posts,
        "lines": arrivals.len(),
        "register_s": register_s,
        "registrations": silent_n + steady_n,
    }));
    Ok(Measured {
        p50,
        p99,
        max,
        missing,
        false_alarms,
        case: format!("{silent_n} silent, {steady_n} steady"),
    })
}
