//! Attacks on the agent port: bad frames, slow and silent clients, a
//! connection flood past `--max-connections` (wrong certificates: `tls.rs`). Each may
//! cost the attacker its own connection, never the daemon or another agent's
//! service.
//!
//! `PROCJON_TEST_TINY_LINES` sets how many tiny bad lines one connection
//! sends (default 200,000; the million: 1000000).

use crate::support::{Client, Daemon, RawTls, TempDir, certs, env_number, wait_until};
use procjon::frame::{ErrorCode, ServerFrame};
use serde_json::json;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

/// The code of a reply line; `None` for `ok`.
#[track_caller]
fn reply_code(line: &[u8]) -> Option<ErrorCode> {
    match ServerFrame::decode(line) {
        Ok(ServerFrame::Ok) => None,
        Ok(ServerFrame::Error { code, .. }) => Some(code),
        Err(err) => panic!(
            "unreadable reply {:?}: {err}",
            String::from_utf8_lossy(line)
        ),
    }
}

/// The code of a reply frame; `None` for `ok`.
fn code(frame: ServerFrame) -> Option<ErrorCode> {
    match frame {
        ServerFrame::Ok => None,
        ServerFrame::Error { code, .. } => Some(code),
    }
}

/// What a well-behaved agent saw: when each of its pings was answered `ok`,
/// and the slowest answer.
struct Steady {
    answered: Vec<Instant>,
    slowest: Duration,
}

/// Pings `service` every 50 ms on its own connection until `stop` (at most
/// two minutes). Every ping must be answered `ok`.
fn steady_agent(addr: SocketAddr, service: &str, stop: &AtomicBool) -> Steady {
    let mut client = Client::connect(addr);
    let mut seen = Steady {
        answered: Vec::new(),
        slowest: Duration::ZERO,
    };
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(120) {
        let sent = Instant::now();
        client.ping_ok(service, 0);
        seen.slowest = seen.slowest.max(sent.elapsed());
        seen.answered.push(Instant::now());
        // The agent's own period, not a wait for something.
        std::thread::sleep(Duration::from_millis(50));
    }
    seen
}

/// Every notification printed so far; none may be an outage of `service`.
#[track_caller]
fn assert_no_outage(daemon: &Daemon, service: &str) {
    while let Some(line) = daemon.try_line(Duration::ZERO) {
        assert!(
            !line.starts_with(&format!("{service} is not available")),
            "the well-behaved agent's service went down during the attack: {line}\n{}",
            daemon.log()
        );
    }
}

/// A ping frame for `service` (JSON-escaped), status 0.
fn ping_line(service: &str) -> Vec<u8> {
    let mut line = json!({"type": "ping", "service": service, "status": 0})
        .to_string()
        .into_bytes();
    line.push(b'\n');
    line
}

/// Lines an attacker sends, each with the code it must get back.
fn bad_frames() -> Vec<(Vec<u8>, ErrorCode)> {
    use ErrorCode::*;
    let mut cases: Vec<(Vec<u8>, ErrorCode)> = Vec::new();
    let mut add = |line: &[u8], code: ErrorCode| {
        let mut line = line.to_vec();
        line.push(b'\n');
        cases.push((line, code));
    };
    // Garbage and invalid UTF-8.
    add(b"\x00\x01\x02garbage\xff\xfe", BadFrame);
    add(&[0u8; 100], BadFrame);
    add(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", BadFrame); // a TLS record inside TLS
    add(b"GET / HTTP/1.1", BadFrame);
    add(
        b"{\"type\":\"ping\",\"service\":\"\xff\xfe\",\"status\":0}",
        BadFrame,
    );
    add(
        b"{\"type\":\"ping\",\"service\":\"\xc0\xaf\",\"status\":0}",
        BadFrame,
    ); // overlong '/'
    add(
        b"{\"type\":\"ping\",\"service\":\"\\ud800\",\"status\":0}",
        BadFrame,
    ); // lone surrogate
    add(
        "\u{feff}{\"type\":\"ping\",\"service\":\"a\",\"status\":0}".as_bytes(),
        BadFrame,
    );
    add(
        b"{\"type\":\"ping\",\"service\":\"a\",\"status\":0",
        BadFrame,
    ); // unterminated
    add(b"   ", BadFrame);
    // Deep nesting, at the top and inside an ignored field, closed and not.
    let deep = |open: &str, close: &str, n: usize| format!("{}{}", open.repeat(n), close.repeat(n));
    add(deep("[", "]", 30_000).as_bytes(), BadFrame);
    add(
        format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000)).as_bytes(),
        BadFrame,
    );
    add("[".repeat(60_000).as_bytes(), BadFrame);
    // Ignored fields are skipped without recursion, however deep: the frame is fine.
    add(
        format!(
            "{{\"type\":\"ping\",\"service\":\"a\",\"status\":0,\"x\":{}}}",
            deep("[", "]", 20_000)
        )
        .as_bytes(),
        NotRegistered,
    );
    // Huge, negative, fractional and wrongly typed numbers.
    for status in [
        "-1",
        "1.5",
        "1e400",
        "-1e400",
        "18446744073709551616",
        "99999999999999999999999999999999999999",
        "\"0\"",
        "null",
        "[0]",
        "true",
    ] {
        add(
            format!("{{\"type\":\"ping\",\"service\":\"target\",\"status\":{status}}}").as_bytes(),
            BadFrame,
        );
    }
    for timeout in [
        "-1",
        "0",
        "-0.0",
        "1e999",
        "1e308",
        "604800.001",
        "\"5\"",
        "null",
    ] {
        add(
            format!("{{\"type\":\"register\",\"service\":\"t\",\"timeout_s\":{timeout},\"statuses\":[\"ok\"]}}")
                .as_bytes(),
            BadFrame,
        );
    }
    add(
        b"{\"type\":\"ping\",\"service\":\"target\",\"status\":18446744073709551615}",
        BadStatus,
    );
    add(
        b"{\"type\":\"ping\",\"service\":\"target\",\"status\":1}",
        BadStatus,
    );
    // Wrong types and shapes.
    for line in [
        "0",
        "null",
        "true",
        "\"ping\"",
        "[]",
        "{}",
        "{\"type\":1,\"service\":\"a\",\"status\":0}",
        "{\"type\":\"ping\",\"service\":5,\"status\":0}",
        "{\"type\":\"ping\",\"service\":[\"a\"],\"status\":0}",
        "{\"type\":\"ping\",\"service\":{\"a\":1},\"status\":0}",
        "{\"type\":\"ping\",\"service\":\"a\"}",
        "{\"type\":\"ping\",\"status\":0}",
        "{\"type\":\"PING\",\"service\":\"a\",\"status\":0}",
        "{\"type\":\"ping\",\"type\":\"register\",\"service\":\"a\",\"status\":0}",
        "{\"type\":\"register\",\"service\":\"a\",\"timeout_s\":5,\"statuses\":\"ok\"}",
        "{\"type\":\"register\",\"service\":\"a\",\"timeout_s\":5,\"statuses\":[1]}",
        "{\"type\":\"register\",\"service\":\"a\",\"timeout_s\":5,\"statuses\":[null]}",
        "{\"type\":\"register\",\"service\":\"a\",\"timeout_s\":5,\"statuses\":[]}",
        "{\"type\":\"register\",\"service\":\"a\",\"timeout_s\":5,\"statuses\":[\"\"]}",
        "{\"type\":\"register\",\"service\":\"a\",\"timeout_s\":5,\"statuses\":[\"a\\nb\"]}",
        "{\"type\":\"register\",\"service\":\"a\",\"timeout_s\":5}",
    ] {
        add(line.as_bytes(), BadFrame);
    }
    // 257 and 10,000 statuses.
    for count in [257, 10_000] {
        let statuses = vec!["x"; count];
        add(
            json!({"type": "register", "service": "many", "timeout_s": 5, "statuses": statuses})
                .to_string()
                .as_bytes(),
            BadFrame,
        );
    }
    // Service ids: empty, too long, every forbidden ASCII character, lookalikes.
    let mut ids: Vec<String> = vec![String::new(), "a".repeat(129), "a".repeat(60_000)];
    for c in (0u8..=0x7f).map(char::from) {
        if !(c.is_ascii_alphanumeric() || "._:@/-".contains(c)) {
            ids.push(format!("web{c}1"));
        }
    }
    for lookalike in [
        "wеb-1",         // Cyrillic е
        "ｗｅｂ-1",      // fullwidth
        "web‐1",         // U+2010 hyphen
        "web−1",         // U+2212 minus
        "web\u{200b}1",  // zero-width space
        "web\u{202e}1",  // right-to-left override
        "we\u{301}b-1",  // combining acute
        "web-\u{1d7cf}", // mathematical bold digit one
        "web-1\u{fe0f}", // variation selector
        "😀",
        "web\u{0}1",
        "web\u{85}1",   // NEL
        "web\u{2028}1", // line separator
    ] {
        ids.push(lookalike.to_string());
    }
    for id in &ids {
        cases.push((ping_line(id), BadService));
        let mut register =
            json!({"type": "register", "service": id, "timeout_s": 5, "statuses": ["ok"]})
                .to_string()
                .into_bytes();
        register.push(b'\n');
        cases.push((register, BadService));
    }
    // Unknown service.
    cases.push((ping_line("never-registered"), NotRegistered));
    cases
}

#[test]
fn bad_frames_get_their_codes_and_a_steady_agent_sees_no_outage() {
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path()).start();
    let mut steady = Client::connect(daemon.addr);
    // A timeout far above any stall a loaded machine causes: an outage means
    // the attack blocked other agents, not that the scheduler was slow.
    steady.register("steady", 10.0, &["ok"]);
    steady.ping_ok("steady", 0);
    assert_eq!(daemon.next_line(WAIT), "steady is available");
    drop(steady);
    let stop = AtomicBool::new(false);
    let tiny_lines = env_number("PROCJON_TEST_TINY_LINES", 200_000);

    let seen = std::thread::scope(|scope| {
        let agent = scope.spawn(|| steady_agent(daemon.addr, "steady", &stop));
        let attack_started = Instant::now();
        let attack = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // 1. Every kind of bad frame, pipelined on one connection.
            let mut attacker = RawTls::connect(daemon.addr);
            attacker
                .send(b"{\"type\":\"register\",\"service\":\"target\",\"timeout_s\":5,\"statuses\":[\"ok\"]}\n")
                .unwrap();
            assert_eq!(reply_code(&attacker.recv_line().unwrap().unwrap()), None);
            let cases = bad_frames();
            for chunk in cases.chunks(64) {
                for (line, _) in chunk {
                    attacker.send(line).unwrap();
                }
                for (line, expected) in chunk {
                    let reply = attacker
                        .recv_line()
                        .unwrap()
                        .expect("the connection closed during the bad frames");
                    assert_eq!(
                        reply_code(&reply),
                        Some(*expected),
                        "for {:?}: {}",
                        String::from_utf8_lossy(&line[..line.len().min(120)]),
                        String::from_utf8_lossy(&reply)
                    );
                }
            }
            // The connection goes on.
            attacker
                .send(b"{\"type\":\"register\",\"service\":\"attacker-ok\",\"timeout_s\":5,\"statuses\":[\"ok\"]}\n")
                .unwrap();
            assert_eq!(reply_code(&attacker.recv_line().unwrap().unwrap()), None);

            // 2. Many tiny lines, answered in order, read in batches so
            // neither side's buffers fill up.
            let started = Instant::now();
            let batch = 5_000;
            let mut sent = 0;
            while sent < tiny_lines {
                let n = batch.min(tiny_lines - sent);
                attacker.send(&b"0\n".repeat(n as usize)).unwrap();
                for _ in 0..n {
                    let reply = attacker
                        .recv_line()
                        .unwrap()
                        .expect("closed during tiny lines");
                    assert!(
                        reply.starts_with(b"{\"type\":\"error\",\"code\":\"bad_frame\""),
                        "{}",
                        String::from_utf8_lossy(&reply)
                    );
                }
                sent += n;
            }
            eprintln!(
                "{tiny_lines} tiny bad lines answered in {:?}",
                started.elapsed()
            );
            attacker.send(b"\n\r\n\n").unwrap(); // blank lines: no reply
            attacker.send(&ping_line("attacker-ok")).unwrap();
            assert_eq!(reply_code(&attacker.recv_line().unwrap().unwrap()), None);

            // 3. A 10 MiB line without a newline: too_large, then the server closes.
            let mut big = RawTls::connect(daemon.addr);
            let line = vec![b'a'; 10 * 1024 * 1024];
            // Sending stops at the first error: once the server has closed,
            // after 64 KiB and whatever the socket buffers held.
            let _ = line
                .chunks(64 * 1024)
                .take_while(|chunk| big.send(chunk).is_ok())
                .count();
            let reply = big
                .recv_line()
                .unwrap()
                .expect("no reply to the 10 MiB line");
            assert_eq!(reply_code(&reply), Some(ErrorCode::TooLarge));
            assert!(
                matches!(big.recv_line(), Ok(None) | Err(_)),
                "still open after too_large"
            );
        }));
        let attack_ended = Instant::now();
        stop.store(true, Ordering::Relaxed);
        let seen = agent.join().expect("the well-behaved agent failed");
        if let Err(panic) = attack {
            std::panic::resume_unwind(panic);
        }
        (seen, attack_started, attack_ended)
    });
    let (seen, attack_started, attack_ended) = seen;
    assert_no_outage(&daemon, "steady");
    let during = seen
        .answered
        .iter()
        .filter(|t| (attack_started..attack_ended).contains(t))
        .count();
    eprintln!(
        "well-behaved agent: {} pings answered ok, {during} of them during the {:?} attack; slowest answer {:?}",
        seen.answered.len(),
        attack_ended - attack_started,
        seen.slowest
    );
    assert!(
        during > 0,
        "the attack kept the well-behaved agent from being served"
    );
    // The refusals are summed up, not logged one line each.
    daemon.wait_log("frames in all", 1);
    let log = daemon.log();
    let refusal_lines = log.matches("refused frame").count();
    assert!(
        refusal_lines < 100,
        "{refusal_lines} log lines about refused frames: the log is a flood amplifier"
    );
}

/// A TCP connection that stops halfway through a TLS ClientHello.
fn half_client_hello(addr: SocketAddr) -> TcpStream {
    let mut sock = TcpStream::connect(addr).unwrap();
    std::io::Write::write_all(&mut sock, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03").unwrap();
    sock
}

/// Reads until the server closes; panics if it sends anything meaningful or
/// keeps the connection open past `WAIT`.
#[track_caller]
fn assert_closed_by_server(sock: &mut TcpStream) {
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match sock.read(&mut buf) {
            Ok(0) => return,
            // A TLS alert or the server's handshake flight; then the close.
            Ok(_) => continue,
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => return,
            Err(err) => panic!("the server kept a dead connection open: {err}"),
        }
    }
}

#[test]
fn slow_and_silent_clients_are_dropped_and_their_threads_end() {
    let dir = TempDir::new();
    let mut daemon = Daemon::builder(dir.path())
        .arg("--handshake-timeout")
        .arg("2")
        .arg("--idle-timeout")
        .arg("2")
        .start();
    // The baseline: every thread of the daemon but connection threads. One
    // connection is served (so the listener runs), then closed.
    let mut probe = Client::connect(daemon.addr);
    probe.register("probe", 60.0, &["ok"]);
    let baseline = daemon.threads() - 1;
    drop(probe);
    wait_until(WAIT, "the probe's thread to end", || {
        daemon.threads() == baseline
    });

    let mut silent: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(daemon.addr).unwrap())
        .collect();
    let mut half_hello: Vec<TcpStream> = (0..100).map(|_| half_client_hello(daemon.addr)).collect();
    let peak_early = daemon.threads();
    let mut half_frame: Vec<Client> = (0..200)
        .map(|_| {
            let mut client = Client::connect(daemon.addr);
            client.send_raw(b"{\"type\":\"ping\",\"serv").unwrap();
            client
        })
        .collect();
    eprintln!(
        "threads: baseline {baseline}, {peak_early} with 300 connections before the handshake"
    );
    assert!(
        peak_early > baseline,
        "connections before the handshake got no thread"
    );
    // Meanwhile a well-behaved agent is served.
    let mut agent = Client::connect(daemon.addr);
    agent.ping_ok("probe", 0);
    drop(agent);

    wait_until(
        Duration::from_secs(30),
        "the threads to return to the baseline",
        || daemon.threads() == baseline,
    );
    for sock in silent.iter_mut().chain(half_hello.iter_mut()) {
        assert_closed_by_server(sock);
    }
    for client in &mut half_frame {
        assert!(
            matches!(client.recv(), Ok(None) | Err(_)),
            "a half-frame client got a reply"
        );
    }
    daemon.wait_log("TLS handshake failed", 300);
    daemon.wait_log("silent for 2s; closing", 200);
    assert!(daemon.try_wait().is_none(), "procjon died");
}

/// Opens a connection and pings a service nobody registered. Returns the
/// code it gets (`not_registered` when served, `busy` over the cap, `None`
/// when closed without a reply) and the connection.
fn probe(addr: SocketAddr) -> (Option<ErrorCode>, Option<Client>) {
    let Ok(mut client) = Client::connect_with(addr, crate::support::client::agent_tls(certs()))
    else {
        return (None, None);
    };
    // Over the cap the server speaks first; a ping that crosses it is fine.
    if client.send_raw(&ping_line("nobody")).is_err() {
        return (None, None);
    }
    match client.recv() {
        Ok(Some(reply)) => (code(reply), Some(client)),
        _ => (None, None),
    }
}

#[test]
fn a_connection_flood_past_the_cap_is_answered_busy_and_service_returns() {
    const CAP: usize = 20;
    let dir = TempDir::new();
    let mut daemon = Daemon::builder(dir.path())
        .arg("--max-connections")
        .arg(CAP.to_string())
        .start();
    let http = daemon.http.unwrap();
    let mut holders: Vec<Client> = (0..CAP)
        .map(|_| {
            let mut client = Client::connect(daemon.addr);
            assert_eq!(
                code(client.ping("nobody", 0)),
                Some(ErrorCode::NotRegistered)
            );
            client
        })
        .collect();

    // The flood: TLS clients from four threads, and bare TCP connections
    // that close at once.
    let outcomes: Vec<Option<ErrorCode>> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| (0..25).map(|_| probe(daemon.addr).0).collect::<Vec<_>>()))
            .collect();
        for _ in 0..200 {
            drop(TcpStream::connect(daemon.addr).unwrap());
        }
        let health = crate::support::http::get(http, "/healthz");
        assert_eq!(health.status, 200, "{}", health.body);
        threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect()
    });
    // Past the rejecter's queue a connection is closed without a reply.
    let busy = outcomes
        .iter()
        .filter(|o| **o == Some(ErrorCode::Busy))
        .count();
    assert!(
        busy > 0
            && outcomes
                .iter()
                .all(|o| matches!(o, Some(ErrorCode::Busy) | None)),
        "a connection over the cap gets busy or is closed: {outcomes:?}"
    );
    eprintln!(
        "{busy} of {} connections over the cap answered busy, the rest closed",
        outcomes.len()
    );
    assert!(daemon.try_wait().is_none(), "procjon died in the flood");
    daemon.wait_log("answering new ones busy", 1);

    // The flood ends: the slots come back, all of them and no more.
    holders.clear();
    let mut held: Vec<Client> = Vec::new();
    wait_until(WAIT, "every slot to be free again", || {
        while held.len() < CAP {
            match probe(daemon.addr) {
                (Some(ErrorCode::NotRegistered), Some(client)) => held.push(client),
                _ => return false,
            }
        }
        true
    });
    assert_eq!(probe(daemon.addr).0, Some(ErrorCode::Busy));
}
