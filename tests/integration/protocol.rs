//! Wire protocol v1 and the messages it leads to, end to end.

use crate::support::{Client, Daemon, TempDir};
use procjon::frame::{ErrorCode, ServerFrame};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(5);

fn code(reply: ServerFrame) -> ErrorCode {
    match reply {
        ServerFrame::Error { code, .. } => code,
        ServerFrame::Ok => panic!("expected an error, got ok"),
    }
}

#[test]
fn register_ping_change_expire_recover() {
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path()).start();
    let mut client = Client::connect(daemon.addr);
    client.register("web-1", 0.5, &["ok", "degraded"]);
    daemon.assert_quiet(Duration::from_millis(200)); // registered, never pinged: unknown, silent

    client.ping_ok("web-1", 0);
    assert_eq!(daemon.next_line(WAIT), "web-1 is available");
    client.ping_ok("web-1", 0);
    client.ping_ok("web-1", 1);
    assert_eq!(
        daemon.next_line(WAIT),
        "web-1 status changed to degraded (was ok)"
    );
    client.ping_ok("web-1", 1);
    let last_ping = Instant::now();
    let expired = daemon.next_line(WAIT);
    let silent = last_ping.elapsed();
    assert!(
        expired.starts_with("web-1 is not available (no ping for 0.5s")
            || expired.starts_with("web-1 is not available (no ping for 0.6s"),
        "{expired}"
    );
    assert!(
        silent >= Duration::from_millis(450),
        "declared after only {silent:?}"
    );
    daemon.assert_quiet(Duration::from_millis(500)); // once per outage

    client.ping_ok("web-1", 0);
    assert_eq!(
        daemon.lines(2, WAIT),
        [
            "web-1 is available",
            "web-1 status changed to ok (was degraded)"
        ]
    );
}

#[test]
fn first_ping_with_a_non_zero_status_announces_both() {
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path()).start();
    let mut client = Client::connect(daemon.addr);
    client.register("db", 10.0, &["ok", "degraded", "down"]);
    client.ping_ok("db", 2);
    assert_eq!(
        daemon.lines(2, WAIT),
        ["db is available", "db status changed to down (was ok)"]
    );
}

#[test]
fn reconnecting_within_the_timeout_posts_nothing() {
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path()).start();
    let mut client = Client::connect(daemon.addr);
    // Reconnecting takes a TLS handshake, which a loaded 2-core machine can
    // slow to hundreds of milliseconds: the timeout leaves room for that.
    client.register("flaky", 2.0, &["ok"]);
    client.ping_ok("flaky", 0);
    assert_eq!(daemon.next_line(WAIT), "flaky is available");
    for _ in 0..4 {
        drop(client);
        std::thread::sleep(Duration::from_millis(250));
        client = Client::connect(daemon.addr);
        client.ping_ok("flaky", 0);
    }
    daemon.assert_quiet(Duration::from_millis(300));
    // The timeout still works once the pings stop.
    let expired = daemon.next_line(WAIT);
    assert!(
        expired.starts_with("flaky is not available (no ping for "),
        "{expired}"
    );
}

#[test]
fn bad_pings_are_refused_and_change_nothing() {
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path()).start();
    let mut client = Client::connect(daemon.addr);
    client.register("svc", 10.0, &["ok", "bad"]);
    assert_eq!(code(client.ping("svc", 2)), ErrorCode::BadStatus); // index == len crashed the original
    assert_eq!(code(client.ping("svc", u64::MAX)), ErrorCode::BadStatus);
    assert_eq!(code(client.ping("other", 0)), ErrorCode::NotRegistered);
    daemon.assert_quiet(Duration::from_millis(200));
    client.ping_ok("svc", 0);
    assert_eq!(daemon.next_line(WAIT), "svc is available");
}

#[test]
fn bad_frames_are_answered_in_order_and_the_connection_goes_on() {
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path()).start();
    let mut client = Client::connect(daemon.addr);
    // Pipelined: all sent at once, answered one line each, in order.
    let frames = concat!(
        "not json\n",
        "{\"type\":\"register\",\"service\":\"p\",\"timeout_s\":5,\"statuses\":[\"ok\"],\"extra\":[1,2]}\n",
        "{\"type\":\"nope\",\"service\":\"p\"}\n",
        "{\"type\":\"ping\",\"service\":\"bad id!\",\"status\":0}\n",
        "{\"type\":\"ping\",\"service\":\"p\",\"status\":-1}\n",
        "\u{ff}\u{fe}\n",
        "{\"type\":\"ping\",\"service\":\"p\",\"status\":0}\r\n",
    );
    client.send_raw(frames.as_bytes()).unwrap();
    let mut codes = Vec::new();
    for _ in 0..7 {
        codes.push(match client.recv().unwrap().unwrap() {
            ServerFrame::Ok => None,
            ServerFrame::Error { code, message } => {
                assert!(!message.is_empty());
                Some(code)
            }
        });
    }
    use ErrorCode::*;
    assert_eq!(
        codes,
        [
            Some(BadFrame),
            None,
            Some(BadFrame),
            Some(BadService),
            Some(BadFrame),
            Some(BadFrame),
            None
        ]
    );
    assert_eq!(daemon.next_line(WAIT), "p is available");
}

#[test]
fn an_oversized_line_gets_too_large_and_closes_only_that_connection() {
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path()).start();
    let mut other = Client::connect(daemon.addr);
    other.register("steady", 10.0, &["ok"]);
    let mut client = Client::connect(daemon.addr);
    let big = vec![b'a'; 200 * 1024];
    let _ = client.send_raw(&big); // may fail once the server has closed
    assert_eq!(code(client.recv().unwrap().unwrap()), ErrorCode::TooLarge);
    assert!(
        matches!(client.recv(), Ok(None) | Err(_)),
        "connection should be closed"
    );
    other.ping_ok("steady", 0);
    assert_eq!(daemon.next_line(WAIT), "steady is available");
}

#[test]
fn reregistering_replaces_the_definition() {
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path()).start();
    let mut client = Client::connect(daemon.addr);
    client.register("svc", 60.0, &["ok", "bad"]);
    client.register("svc", 60.0, &["ok", "bad"]); // identical: a no-op
    client.ping_ok("svc", 1);
    assert_eq!(
        daemon.lines(2, WAIT),
        ["svc is available", "svc status changed to bad (was ok)"]
    );
    // A shorter timeout takes effect at once, even though the old one was a minute.
    client.register("svc", 0.3, &["ok", "bad", "worse"]);
    client.ping_ok("svc", 2);
    assert_eq!(
        daemon.next_line(WAIT),
        "svc status changed to worse (was bad)"
    );
    let expired = daemon.next_line(WAIT);
    assert!(expired.starts_with("svc is not available"), "{expired}");
}

#[test]
fn one_connection_serves_many_services_pipelined() {
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path()).start();
    let mut client = Client::connect(daemon.addr);
    let mut batch = String::new();
    for i in 0..50 {
        batch.push_str(&format!(
            "{{\"type\":\"register\",\"service\":\"s{i}\",\"timeout_s\":30,\"statuses\":[\"ok\"]}}\n"
        ));
    }
    for i in 0..50 {
        batch.push_str(&format!(
            "{{\"type\":\"ping\",\"service\":\"s{i}\",\"status\":0}}\n"
        ));
    }
    client.send_raw(batch.as_bytes()).unwrap();
    for _ in 0..100 {
        assert_eq!(client.recv().unwrap(), Some(ServerFrame::Ok));
    }
    let mut lines = daemon.lines(50, WAIT);
    lines.sort();
    let mut expected: Vec<String> = (0..50).map(|i| format!("s{i} is available")).collect();
    expected.sort();
    assert_eq!(lines, expected);
}
