//! The notification policy against the real binary, with durations scaled
//! down to seconds: silences (frames and the local HTTP API), reminders,
//! confirmation, flapping and dependencies, and what a restart keeps.

use crate::support::http::get;
use crate::support::{Client, Daemon, FakeSlack, TempDir, daemon};
use procjon::frame::{ErrorCode, Policy, ServerFrame};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

#[track_caller]
fn refused(reply: ServerFrame) -> (ErrorCode, String) {
    match reply {
        ServerFrame::Error { code, message } => (code, message),
        ServerFrame::Ok => panic!("accepted"),
    }
}

#[test]
fn a_silence_holds_a_down_and_up_pair_and_posts_only_its_start_and_end() {
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path()).start();
    let mut client = Client::connect(daemon.addr);
    client.register("web-1", 0.5, &["ok"]);
    client.ping_ok("web-1", 0);
    assert_eq!(daemon.next_line(WAIT), "web-1 is available");
    assert_eq!(
        client.silence("web-1", 3600.0, Some("deploy")),
        ServerFrame::Ok
    );
    assert_eq!(
        daemon.next_line(WAIT),
        "web-1 silenced for 1h by procjonagent: deploy"
    );
    // Down and back up while silenced: recorded, not posted.
    daemon.wait_log("web-1 is not available (no ping for", 1);
    client.ping_ok("web-1", 0);
    daemon.wait_log("web-1 is available (held: Silenced)", 1);
    assert_eq!(client.unsilence("web-1"), ServerFrame::Ok);
    // The channel saw it available, and it is: nothing more to say.
    assert_eq!(daemon.next_line(WAIT), "web-1 silence ended");
    daemon.assert_quiet(Duration::from_millis(300));
    let text = std::fs::read_to_string(&daemon.state).unwrap();
    assert!(
        text.contains(r#""text":"web-1 is not available (no ping for"#)
            && text.contains(r#""held":"silenced""#),
        "{text}"
    );
}

#[test]
fn a_silence_that_ends_with_the_service_down_tells_it_once() {
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path()).start();
    let mut client = Client::connect(daemon.addr);
    client.register("web-1", 0.5, &["ok"]);
    client.ping_ok("web-1", 0);
    assert_eq!(daemon.next_line(WAIT), "web-1 is available");
    assert_eq!(client.silence("web-1", 1.5, None), ServerFrame::Ok);
    assert_eq!(
        daemon.next_line(WAIT),
        "web-1 silenced for 2s by procjonagent"
    );
    assert_eq!(daemon.next_line(WAIT), "web-1 silence ended");
    let line = daemon.next_line(WAIT);
    assert!(
        line.starts_with("web-1 is not available (no ping for "),
        "{line}"
    );
    daemon.assert_quiet(Duration::from_millis(500));
}

#[test]
fn silences_survive_a_restart_and_one_that_ended_meanwhile_is_told_once() {
    let dir = TempDir::new();
    let builder = Daemon::builder(dir.path());
    let daemon = builder.clone().start();
    let mut client = Client::connect(daemon.addr);
    client.register("long", 60.0, &["ok"]);
    client.register("short", 60.0, &["ok"]);
    client.ping_ok("long", 0);
    client.ping_ok("short", 0);
    daemon.lines(2, WAIT);
    assert_eq!(client.silence("long", 3600.0, None), ServerFrame::Ok);
    assert_eq!(client.silence("short", 1.0, None), ServerFrame::Ok);
    daemon.lines(2, WAIT);
    drop(client);
    daemon.kill();
    std::thread::sleep(Duration::from_millis(1500));

    let daemon = builder.start();
    assert_eq!(daemon.next_line(WAIT), "short silence ended");
    daemon.assert_quiet(Duration::from_millis(500));
    let http = daemon.http.unwrap();
    let long = get(http, "/api/services/long").json();
    assert_eq!(long["silence"]["by"], "procjonagent", "{long}");
    assert!(
        get(http, "/api/services/short")
            .json()
            .get("silence")
            .is_none()
    );

    // Another restart: the ended silence is not told again.
    let daemon = daemon.restart();
    daemon.assert_quiet(Duration::from_millis(700));
}

#[test]
fn reminders_come_at_doubling_lengths_stop_at_the_cap_and_on_recovery() {
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path())
        .args(["--remind-after", "1", "--remind-max", "3"])
        .start();
    let mut client = Client::connect(daemon.addr);
    client.register("db", 0.3, &["ok", "degraded"]);
    client.ping_ok("db", 0);
    assert_eq!(daemon.next_line(WAIT), "db is available");
    let down = daemon.next_line(WAIT);
    assert!(down.starts_with("db is not available"), "{down}");
    let since = Instant::now();
    for (line, at) in [
        ("db is still not available (for 1s)", 1.0),
        ("db is still not available (for 2s)", 2.0),
        ("db is still not available (for 4s)", 4.0),
    ] {
        assert_eq!(daemon.next_line(WAIT), line);
        let elapsed = since.elapsed().as_secs_f64();
        // A sweep every few hundred ms; times are whole seconds.
        assert!(
            elapsed > at - 1.1 && elapsed < at + 1.5,
            "{line} after {elapsed:.1} s"
        );
    }
    // At the cap: no fourth one at 8 s.
    daemon.assert_quiet(Duration::from_secs(5));

    // In a non-zero status: reminded, until it recovers.
    client.register("queue", 60.0, &["ok", "degraded"]);
    client.ping_ok("queue", 1);
    assert_eq!(daemon.next_line(WAIT), "queue is available");
    assert_eq!(
        daemon.next_line(WAIT),
        "queue status changed to degraded (was ok)"
    );
    assert_eq!(daemon.next_line(WAIT), "queue is still degraded (for 1s)");
    client.ping_ok("queue", 0);
    assert_eq!(
        daemon.next_line(WAIT),
        "queue status changed to ok (was degraded)"
    );
    daemon.assert_quiet(Duration::from_secs(3));
}

#[test]
fn a_restart_neither_repeats_nor_resets_the_reminders() {
    let dir = TempDir::new();
    let builder = Daemon::builder(dir.path()).args(["--remind-after", "2", "--remind-max", "2"]);
    let daemon = builder.clone().start();
    let mut client = Client::connect(daemon.addr);
    client.register("db", 0.3, &["ok"]);
    client.ping_ok("db", 0);
    assert_eq!(daemon.next_line(WAIT), "db is available");
    assert!(daemon.next_line(WAIT).starts_with("db is not available"));
    let since = Instant::now();
    assert_eq!(daemon.next_line(WAIT), "db is still not available (for 2s)");
    drop(client);
    daemon.kill();
    let daemon = builder.start();
    // The next one is 4 s after the outage began, not 2 s after the start.
    assert_eq!(daemon.next_line(WAIT), "db is still not available (for 4s)");
    let elapsed = since.elapsed().as_secs_f64();
    assert!(elapsed > 2.9 && elapsed < 5.5, "{elapsed:.1} s");
    daemon.assert_quiet(Duration::from_secs(3));
}

#[test]
fn confirmation_keeps_single_ping_blips_quiet() {
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path()).start();
    let mut client = Client::connect(daemon.addr);
    let policy = Policy {
        confirm: Some(3),
        ..Policy::default()
    };
    assert_eq!(
        client.register_with("web-1", 60.0, &["ok", "bad"], policy),
        ServerFrame::Ok
    );
    client.ping_ok("web-1", 0);
    client.ping_ok("web-1", 0);
    daemon.assert_quiet(Duration::from_millis(300));
    client.ping_ok("web-1", 0);
    assert_eq!(daemon.next_line(WAIT), "web-1 is available");
    // Blips of one and two pings: nothing.
    for status in [1, 0, 1, 1, 0, 0] {
        client.ping_ok("web-1", status);
    }
    daemon.assert_quiet(Duration::from_millis(500));
    for _ in 0..3 {
        client.ping_ok("web-1", 1);
    }
    assert_eq!(
        daemon.next_line(WAIT),
        "web-1 status changed to bad (was ok)"
    );
    let (code, _) = refused(client.register_with(
        "x",
        60.0,
        &["ok"],
        Policy {
            confirm: Some(0),
            ..Policy::default()
        },
    ));
    assert_eq!(code, ErrorCode::BadFrame);
}

#[test]
fn a_service_toggling_every_ping_is_flapping_once_and_stable_once() {
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path())
        .args(["--flap-changes", "3", "--flap-window", "1"])
        .start();
    let mut client = Client::connect(daemon.addr);
    client.register("web-1", 60.0, &["ok", "bad"]);
    client.ping_ok("web-1", 0);
    assert_eq!(daemon.next_line(WAIT), "web-1 is available");
    for i in 0..20 {
        client.ping_ok("web-1", (i + 1) % 2);
    }
    // Changes 1 (available), 2, 3: posted; the 4th makes it flapping.
    assert_eq!(
        daemon.lines(2, WAIT),
        [
            "web-1 status changed to bad (was ok)",
            "web-1 status changed to ok (was bad)",
        ]
    );
    assert_eq!(
        daemon.next_line(WAIT),
        "web-1 is flapping (4 changes in 1s)"
    );
    // Quiet for a whole window: stable, in the state it ended in.
    assert_eq!(
        daemon.next_line(WAIT),
        "web-1 is stable again: available, ok"
    );
    daemon.assert_quiet(Duration::from_millis(1500));
    let api = get(daemon.http.unwrap(), "/api/services/web-1").json();
    assert_eq!(api["flapping"], false);
}

#[test]
fn a_parent_outage_is_one_line_and_the_dependents_still_down_come_after_once() {
    let slack = FakeSlack::start();
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path())
        .webhook(&slack.url)
        .pacing(0.0, 0.05)
        .start();
    let mut client = Client::connect(daemon.addr);
    client.register("host", 0.5, &["ok"]);
    let on_host = Policy {
        depends_on: vec!["host".into()],
        ..Policy::default()
    };
    for i in 0..20 {
        let id = format!("app-{i:02}");
        assert_eq!(
            client.register_with(&id, 1.5, &["ok"], on_host.clone()),
            ServerFrame::Ok
        );
    }
    client.ping_ok("host", 0);
    for i in 0..20 {
        client.ping_ok(&format!("app-{i:02}"), 0);
    }
    slack.delivered_lines(21, WAIT);
    // Everything goes quiet: the host first (shorter timeout), then its apps.
    let (lines, _) = slack.delivered_lines(1, WAIT);
    assert_eq!(
        lines,
        ["host is not available (no ping for 0.5s); 20 dependent services affected"]
    );
    daemon.wait_log("app-19 is not available (no ping for", 1);
    slack.assert_quiet(Duration::from_millis(500));
    let api = get(daemon.http.unwrap(), "/api/services/app-07").json();
    assert_eq!(api["suppressed_by"], "host");
    // The host comes back (and stays: a longer timeout); its apps don't:
    // one post tells all of it.
    client.ping_ok("host", 0);
    client.register("host", 60.0, &["ok"]);
    let post = slack.next_attempt(WAIT);
    let lines: Vec<&str> = post.text.lines().collect();
    assert_eq!(lines.len(), 21, "{lines:?}");
    assert_eq!(lines[0], "host is available");
    for (i, line) in lines[1..].iter().enumerate() {
        assert!(
            line.starts_with(&format!("app-{i:02} is not available (no ping for ")),
            "{line}"
        );
    }
    slack.assert_quiet(Duration::from_millis(500));

    // A cycle is refused, naming it.
    let (code, message) = refused(client.register_with(
        "host",
        0.5,
        &["ok"],
        Policy {
            depends_on: vec!["app-03".into()],
            ..Policy::default()
        },
    ));
    assert_eq!(code, ErrorCode::BadFrame);
    assert!(message.contains("host → app-03 → host"), "{message}");
}

#[test]
fn procjon_silence_and_unsilence_work_from_the_daemons_machine() {
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path()).start();
    let http = daemon.http.unwrap().to_string();
    let mut client = Client::connect(daemon.addr);
    client.register("web-1", 60.0, &["ok"]);
    client.ping_ok("web-1", 0);
    assert_eq!(daemon.next_line(WAIT), "web-1 is available");

    let (status, stdout, stderr) = daemon::run(
        &[
            "silence",
            "--http",
            &http,
            "--for",
            "90m",
            "--reason",
            "disk swap",
            "--by",
            "alice",
            "web-1",
        ],
        dir.path(),
    );
    assert_eq!(status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(stdout.trim(), "silenced web-1 for 1h30m");
    assert_eq!(
        daemon.next_line(WAIT),
        "web-1 silenced for 1h30m by alice: disk swap"
    );
    let metrics = get(daemon.http.unwrap(), "/metrics").body;
    assert!(
        metrics.contains("procjon_service_silenced{service=\"web-1\"} 1"),
        "{metrics}"
    );
    let (status, table, _) = daemon::run(&["status", "--http", &http], dir.path());
    assert_eq!(status.code(), Some(0));
    assert!(
        table.contains("NOTE") && table.contains("silenced until "),
        "{table}"
    );

    let (status, stdout, _) = daemon::run(&["unsilence", "--http", &http, "web-1"], dir.path());
    assert_eq!(status.code(), Some(0));
    assert_eq!(stdout.trim(), "unsilenced web-1");
    assert_eq!(daemon.next_line(WAIT), "web-1 silence ended");

    let (status, _, stderr) = daemon::run(
        &["silence", "--http", &http, "--for", "1h", "nope"],
        dir.path(),
    );
    assert_eq!(status.code(), Some(2));
    assert!(
        stderr.contains("404") && stderr.contains("not registered"),
        "{stderr}"
    );
    let (status, _, stderr) = daemon::run(
        &["silence", "--http", &http, "--for", "soon", "web-1"],
        dir.path(),
    );
    assert_eq!(status.code(), Some(2));
    assert!(stderr.contains("--for \"soon\""), "{stderr}");
}

#[test]
fn a_silence_of_another_identitys_service_is_forbidden() {
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path()).start();
    let mut owner = Client::connect(daemon.addr);
    owner.register("web-1", 60.0, &["ok"]);
    let mut other = Client::connect_as(daemon.addr, "other-team");
    let (code, _) = refused(other.silence("web-1", 60.0, None));
    assert_eq!(code, ErrorCode::Forbidden);
    // `*` is every service of the caller's identity: other-team has none.
    let (code, _) = refused(other.silence("*", 60.0, None));
    assert_eq!(code, ErrorCode::NotRegistered);
    assert_eq!(owner.silence("*", 60.0, Some("all mine")), ServerFrame::Ok);
    assert_eq!(
        daemon.next_line(WAIT),
        "web-1 silenced for 1m by procjonagent: all mine"
    );
}
