//! Delivery to the webhook: order, batching, retries, and the outbox across
//! restarts.

use crate::support::slack::Mode;
use crate::support::{Client, Daemon, FakeSlack, TempDir};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn posts_are_slack_payloads_in_event_order() {
    let slack = FakeSlack::start();
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path())
        .webhook(&slack.url)
        .pacing(0.0, 0.05)
        .start();
    let mut client = Client::connect(daemon.addr);
    client.register("a", 10.0, &["ok", "bad"]);
    client.ping_ok("a", 0);
    client.ping_ok("a", 1);
    client.ping_ok("a", 0);
    let (lines, _) = slack.delivered_lines(3, WAIT);
    assert_eq!(
        lines,
        [
            "a is available",
            "a status changed to bad (was ok)",
            "a status changed to ok (was bad)"
        ]
    );
    assert!(
        !daemon.log().contains("secret"),
        "the webhook URL leaked into the log"
    );
}

#[test]
fn failing_slack_then_recovering_delivers_every_event_once_in_order() {
    let slack = FakeSlack::start();
    slack.set(Mode::Status(500));
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path())
        .webhook(&slack.url)
        .pacing(0.0, 0.05)
        .start();
    let mut client = Client::connect(daemon.addr);
    client.register("a", 10.0, &["ok", "bad"]);
    client.ping_ok("a", 0);
    client.ping_ok("a", 1);
    // At least two failed attempts, backing off.
    assert_eq!(slack.next_attempt(WAIT).status, 500);
    assert_eq!(slack.next_attempt(WAIT).status, 500);
    slack.set(Mode::Ok);
    let (lines, attempts) = slack.delivered_lines(2, WAIT);
    assert_eq!(
        lines,
        ["a is available", "a status changed to bad (was ok)"]
    );
    assert!(attempts.iter().all(|a| a.status == 500 || a.status == 200));
    slack.assert_quiet(Duration::from_millis(500)); // once
    assert!(daemon.log().contains("HTTP 500"), "{}", daemon.log());
    assert!(
        !daemon.log().contains("secret"),
        "the webhook URL leaked into the log"
    );
}

#[test]
fn too_many_requests_is_retried_after_retry_after() {
    let slack = FakeSlack::start();
    slack.set(Mode::TooMany { retry_after_s: 1 });
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path())
        .webhook(&slack.url)
        .pacing(0.0, 0.05)
        .start();
    let mut client = Client::connect(daemon.addr);
    client.register("a", 10.0, &["ok"]);
    client.ping_ok("a", 0);
    let refused = slack.next_attempt(WAIT);
    assert_eq!(refused.status, 429);
    slack.set(Mode::Ok);
    let retried = slack.next_attempt(WAIT);
    assert_eq!(
        (retried.status, retried.text.as_str()),
        (200, "a is available")
    );
    let gap = retried.at - refused.at;
    // Retry-After: 1 wins over the 0.05 s backoff.
    assert!(
        gap >= Duration::from_millis(950),
        "retried after only {gap:?}"
    );
}

#[test]
fn a_hanging_webhook_times_out_and_is_retried() {
    let slack = FakeSlack::start();
    slack.set(Mode::Hang(Duration::from_secs(3)));
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path())
        .webhook(&slack.url)
        .pacing(0.0, 0.05)
        .arg("--slack-timeout")
        .arg("0.5")
        .start();
    let mut client = Client::connect(daemon.addr);
    client.register("a", 10.0, &["ok"]);
    client.ping_ok("a", 0);
    // The first post hangs past --slack-timeout: procjon gives up on it and
    // says so (waiting for the line, not a fixed time, which a loaded
    // machine can outrun); then Slack is back and the retry is delivered.
    crate::support::wait_until(WAIT, "a warning that the post timed out", || {
        daemon.log().contains("posting to")
    });
    slack.set(Mode::Ok);
    let (lines, _) = slack.delivered_lines(1, WAIT);
    assert_eq!(lines, ["a is available"]);
}

#[test]
fn other_4xx_keeps_events_queued() {
    let slack = FakeSlack::start();
    slack.set(Mode::Status(404));
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path())
        .webhook(&slack.url)
        .pacing(0.0, 0.05)
        .start();
    let mut client = Client::connect(daemon.addr);
    client.register("a", 10.0, &["ok"]);
    client.ping_ok("a", 0);
    assert_eq!(slack.next_attempt(WAIT).status, 404);
    crate::support::wait_until(WAIT, "a loud error", || daemon.log().contains("ERROR"));
    slack.set(Mode::Ok);
    let (lines, _) = slack.delivered_lines(1, WAIT);
    assert_eq!(lines, ["a is available"]);
}

#[test]
fn many_events_are_batched_into_few_posts() {
    let slack = FakeSlack::start();
    let dir = TempDir::new();
    // Default pacing: one post per second.
    let daemon = Daemon::builder(dir.path()).webhook(&slack.url).start();
    let mut client = Client::connect(daemon.addr);
    let mut batch = String::new();
    for i in 0..200 {
        batch.push_str(&format!(
            "{{\"type\":\"register\",\"service\":\"host-{i:03}\",\"timeout_s\":60,\"statuses\":[\"ok\"]}}\n{{\"type\":\"ping\",\"service\":\"host-{i:03}\",\"status\":0}}\n"
        ));
    }
    client.send_raw(batch.as_bytes()).unwrap();
    for _ in 0..400 {
        client.recv().unwrap().unwrap();
    }
    let (lines, attempts) = slack.delivered_lines(200, Duration::from_secs(20));
    let expected: Vec<String> = (0..200)
        .map(|i| format!("host-{i:03} is available"))
        .collect();
    assert_eq!(lines, expected, "every event once, in order");
    assert!(
        attempts.len() <= 6,
        "{} posts for 200 events",
        attempts.len()
    );
    for pair in attempts.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap >= Duration::from_millis(900),
            "posts {gap:?} apart: pacing not honoured"
        );
    }
    drop(daemon);
}

#[test]
fn a_restart_while_slack_fails_still_delivers_after_the_restart() {
    let slack = FakeSlack::start();
    slack.set(Mode::Status(503));
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path())
        .webhook(&slack.url)
        .pacing(0.0, 0.05)
        .start();
    let mut client = Client::connect(daemon.addr);
    client.register("a", 10.0, &["ok", "bad"]);
    client.ping_ok("a", 0);
    client.ping_ok("a", 1);
    assert_eq!(slack.next_attempt(WAIT).status, 503);
    daemon.kill();
    slack.set(Mode::Ok);
    // Drain attempts made before the kill landed.
    while let Some(attempt) = slack.try_attempt(Duration::from_millis(200)) {
        assert_ne!(attempt.status, 200);
    }
    let daemon = Daemon::builder(dir.path())
        .webhook(&slack.url)
        .pacing(0.0, 0.05)
        .start();
    let (lines, _) = slack.delivered_lines(2, WAIT);
    assert_eq!(
        lines,
        ["a is available", "a status changed to bad (was ok)"]
    );
    slack.assert_quiet(Duration::from_millis(500));
    // Delivered means marked: a further restart sends nothing again.
    daemon.wait_delivered(2);
    daemon.kill();
    let _daemon = Daemon::builder(dir.path())
        .webhook(&slack.url)
        .pacing(0.0, 0.05)
        .start();
    slack.assert_quiet(Duration::from_millis(700));
}

#[test]
fn slack_control_sequences_in_status_names_are_escaped() {
    let slack = FakeSlack::start();
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path())
        .webhook(&slack.url)
        .pacing(0.0, 0.05)
        .start();
    let mut client = Client::connect(daemon.addr);
    client.register(
        "a",
        10.0,
        &["ok", "<!channel>", "<https://evil.example|click> & co"],
    );
    client.ping_ok("a", 0);
    client.ping_ok("a", 1);
    client.ping_ok("a", 2);
    let (lines, _) = slack.delivered_lines(3, WAIT);
    assert_eq!(
        lines,
        [
            "a is available",
            "a status changed to &lt;!channel&gt; (was ok)",
            "a status changed to &lt;https://evil.example|click&gt; &amp; co (was &lt;!channel&gt;)",
        ]
    );
    // The state file keeps what happened, unescaped: escaping is Slack's.
    let state = std::fs::read_to_string(dir.join("state.jsonl")).unwrap();
    assert!(
        state.contains("a status changed to <!channel> (was ok)"),
        "{state}"
    );
}
