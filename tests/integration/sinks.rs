//! Sinks against the real binary: routing by owner to separate fake Slack
//! webhooks, the JSON webhook checked against its documented schema by a
//! real validator (python3-jsonschema), sinks failing independently and a
//! restart re-sending each sink only what it lacks, and a real
//! Alertmanager cluster (Debian's prometheus-alertmanager, two peers).

use crate::support::{Client, Daemon, FakeSlack, TempDir};
use procjon::frame::{ClientFrame, ServerFrame};
use procjon::state_file::replay;
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use test_support::alertmanager::Cluster;
use test_support::{Received, Receiver, poll_until};

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn routes_give_each_team_its_own_lines_and_the_default_channel_the_rest() {
    let dir = TempDir::new();
    let (default, web, db) = (FakeSlack::start(), FakeSlack::start(), FakeSlack::start());
    let daemon = Daemon::builder(dir.path())
        .webhook(&default.url)
        .pacing(0.0, 0.05)
        .args(["--route", &format!("web-team={}", web.url)])
        .env("PROCJON_ROUTES", "ignored=off")
        .args(["--route", &format!("db-team={}", db.url)])
        .args(["--route", "muted-team=off"])
        .start();
    let mut web_agent = Client::connect_as(daemon.addr, "web-team");
    let mut db_agent = Client::connect_as(daemon.addr, "db-team");
    let mut muted_agent = Client::connect_as(daemon.addr, "muted-team");
    let mut other_agent = Client::connect(daemon.addr);
    for (client, service) in [
        (&mut web_agent, "web-1"),
        (&mut db_agent, "db-1"),
        (&mut muted_agent, "quiet-1"),
        (&mut other_agent, "misc-1"),
    ] {
        client.register(service, 10.0, &["ok", "degraded"]);
        client.ping_ok(service, 0);
        client.ping_ok(service, 1);
    }
    let lines = |slack: &FakeSlack| {
        let (mut lines, _) = slack.delivered_lines(2, WAIT);
        lines.sort();
        lines
    };
    assert_eq!(
        lines(&web),
        [
            "web-1 is available",
            "web-1 status changed to degraded (was ok)"
        ]
    );
    assert_eq!(
        lines(&db),
        [
            "db-1 is available",
            "db-1 status changed to degraded (was ok)"
        ]
    );
    assert_eq!(
        lines(&default),
        [
            "misc-1 is available",
            "misc-1 status changed to degraded (was ok)"
        ]
    );
    for slack in [&default, &web, &db] {
        slack.assert_quiet(Duration::from_millis(500));
    }
    // The muted team's lines went nowhere, and left the outbox all the same.
    daemon.wait_log("quiet-1 status changed to degraded (was ok)", 1);
    poll_until(WAIT, Duration::from_millis(100), "an empty outbox", || {
        replay(&daemon.state).unwrap().state.outbox.is_empty()
    });
    let log = daemon.log();
    assert!(
        log.contains("to Slack webhook 127.0.0.1:") && !log.contains("/services/"),
        "route URLs are secrets: the log shows hosts only:\n{log}"
    );
}

#[test]
fn route_mistakes_are_refused_at_start_up() {
    let dir = TempDir::new();
    for (args, message) in [
        (
            vec!["--route", "web-team"],
            "--route: an entry has no \"=\"",
        ),
        (
            vec!["--route", "=https://hooks.example/x"],
            "--route: an entry has no OWNER",
        ),
        (
            vec!["--route", "web=ftp://hooks.example/secret"],
            "--route: the URL for \"web\": it must start with https://",
        ),
        (
            vec!["--route", "web=off", "--route", "web=off"],
            "--route: \"web\" is routed twice",
        ),
        (
            vec!["--webhook-json", "hooks.example/secret"],
            "JSON webhook URL (--webhook-json or PROCJON_WEBHOOK_JSON): it must start with https://",
        ),
        (
            vec!["--alertmanager-watchdog"],
            "--alertmanager: --alertmanager-label and --alertmanager-watchdog need at least one --alertmanager URL",
        ),
        (
            vec![
                "--alertmanager",
                "http://127.0.0.1:9",
                "--alertmanager-label",
                "service=x",
            ],
            "--alertmanager-label: \"service\" is set by procjon itself",
        ),
        (
            vec![
                "--alertmanager",
                "http://127.0.0.1:9",
                "--alertmanager-label",
                "9lives=x",
            ],
            "--alertmanager-label: \"9lives\" is not a label name",
        ),
        (
            vec![
                "--alertmanager",
                "http://127.0.0.1:9",
                "--alertmanager-resend",
                "0.5s",
            ],
            "--alertmanager-resend: \"0.5s\" is too short",
        ),
    ] {
        let (status, _, stderr) = test_support::daemon::run(&args, dir.path());
        assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("secret"),
            "{args:?} leaked a URL: {stderr}"
        );
    }
}

/// The JSON bodies `receiver` gets within `limit` until `done` says so.
#[track_caller]
fn json_bodies_until(
    receiver: &Receiver,
    limit: Duration,
    mut done: impl FnMut(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + limit;
    let mut bodies: Vec<Value> = Vec::new();
    while !done(&bodies) {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(Received { body, .. }) = receiver.next(left) else {
            panic!("the JSON webhook got only {bodies:#?}");
        };
        bodies.push(serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}")));
    }
    bodies
}

/// Every event of `bodies`, in order.
fn events(bodies: &[Value]) -> Vec<Value> {
    bodies
        .iter()
        .flat_map(|b| b["events"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// The kinds of `bodies`' events.
fn kinds(bodies: &[Value]) -> BTreeSet<String> {
    events(bodies)
        .iter()
        .filter_map(|e| e["kind"].as_str().map(String::from))
        .collect()
}

/// Validates each of `bodies` against `docs/webhook-json.schema.json`
/// with python3-jsonschema; `false` when that is not installed (outside CI).
#[track_caller]
fn validate_against_schema(bodies: &[Value]) -> bool {
    let has_validator = Command::new("python3")
        .args(["-c", "import jsonschema"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_validator {
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
        assert!(
            !ci,
            "python3-jsonschema is not installed and CI is set (.ci/install-test-deps.sh installs it)"
        );
        eprintln!("SKIPPED the schema check: python3-jsonschema is not installed");
        return false;
    }
    let schema =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/webhook-json.schema.json");
    let script = "import json, sys, jsonschema\n\
        schema = json.load(open(sys.argv[1]))\n\
        jsonschema.Draft202012Validator.check_schema(schema)\n\
        for n, line in enumerate(sys.stdin, 1):\n    \
            jsonschema.validate(json.loads(line), schema, cls=jsonschema.Draft202012Validator)\n\
        print('valid', n)\n";
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&schema)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    let input: String = bodies.iter().map(|b| format!("{b}\n")).collect();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "a body does not match docs/webhook-json.schema.json:\n{}\n{input}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("valid {}", bodies.len())
    );
    true
}

#[test]
fn json_events_of_every_kind_match_the_documented_schema() {
    let dir = TempDir::new();
    let hook = Receiver::start();
    let builder = Daemon::builder(dir.path())
        .args([
            "--webhook-json",
            &format!("{}/hooks/secret-token", hook.base),
        ])
        .args(["--flap-changes", "3", "--flap-window", "2s"])
        .args(["--remind-after", "1s", "--remind-max", "1"]);
    let daemon = builder.start();
    let mut client = Client::connect(daemon.addr);
    client.register("web-1", 0.5, &["ok", "degraded"]);
    client.ping_ok("web-1", 0);
    client.ping_ok("web-1", 1);
    // Silent past its timeout, then reminded about.
    let mut bodies = json_bodies_until(&hook, WAIT, |b| kinds(b).contains("reminder"));
    client.ping_ok("web-1", 0);
    assert_eq!(
        client.silence("web-1", 60.0, Some("deploy")),
        ServerFrame::Ok
    );
    assert_eq!(client.unsilence("web-1"), ServerFrame::Ok);
    // Four changes in the window: flapping, then stable once it is quiet.
    for status in [1, 0, 1, 0] {
        client.ping_ok("web-1", status);
    }
    let keep = std::thread::spawn(move || {
        for _ in 0..30 {
            client.ping_ok("web-1", 0);
            std::thread::sleep(Duration::from_millis(200));
        }
        client
    });
    bodies.extend(json_bodies_until(&hook, WAIT, |b| {
        kinds(b).contains("stable")
    }));
    let mut client = keep.join().unwrap();
    let reply = client.request(&ClientFrame::Unregister {
        service: "web-1".into(),
        reason: Some("finished".into()),
    });
    assert_eq!(reply, ServerFrame::Ok);
    bodies.extend(json_bodies_until(&hook, WAIT, |b| {
        kinds(b).contains("unregistered")
    }));
    // A planned restart: procjon's own event.
    let mut daemon = daemon;
    daemon.signal("TERM");
    daemon.wait_exit(WAIT);
    let daemon = daemon.restart();
    bodies.extend(json_bodies_until(&hook, WAIT, |b| {
        kinds(b).contains("procjon")
    }));

    let seen = kinds(&bodies);
    for kind in [
        "available",
        "status_changed",
        "not_available",
        "reminder",
        "silenced",
        "silence_ended",
        "flapping",
        "stable",
        "unregistered",
        "procjon",
    ] {
        assert!(seen.contains(kind), "no {kind} event in {bodies:#?}");
    }
    let all = events(&bodies);
    let changed = all.iter().find(|e| e["kind"] == "status_changed").unwrap();
    assert_eq!(changed["status"], "degraded");
    assert_eq!(changed["previous_status"], "ok");
    assert_eq!(changed["owner"], "procjonagent");
    assert_eq!(changed["service"], "web-1");
    let back = all.iter().find(|e| e["kind"] == "procjon").unwrap();
    assert_eq!(back["service"], Value::Null);
    // seq increases through the run and across the restart.
    let seqs: Vec<u64> = all.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    validate_against_schema(&bodies);
    assert!(!daemon.log().contains("secret-token"));
}

#[test]
fn a_failing_json_sink_delays_nothing_on_slack_and_a_restart_resends_only_what_it_lacks() {
    let dir = TempDir::new();
    let slack = FakeSlack::start();
    let hook = Receiver::start();
    hook.answer(500);
    let daemon = Daemon::builder(dir.path())
        .webhook(&slack.url)
        .pacing(0.0, 0.05)
        .args(["--webhook-json", &format!("{}/events", hook.base)])
        .start();
    let mut client = Client::connect(daemon.addr);
    client.register("web-1", 10.0, &["ok", "degraded"]);
    client.register("db-1", 10.0, &["ok"]);
    client.ping_ok("web-1", 0);
    client.ping_ok("db-1", 0);
    client.ping_ok("web-1", 1);
    // Slack gets every line while the JSON webhook answers 500.
    let started = Instant::now();
    let (mut lines, _) = slack.delivered_lines(3, WAIT);
    lines.sort();
    assert_eq!(
        lines,
        [
            "db-1 is available",
            "web-1 is available",
            "web-1 status changed to degraded (was ok)"
        ]
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    hook.expect("a failed JSON post", WAIT, |r| r.method == "POST");
    daemon.wait_log("posting to JSON webhook 127.0.0.1:", 1);
    // What the file says: Slack has them, the JSON webhook not yet.
    poll_until(
        WAIT,
        Duration::from_millis(100),
        "Slack's marks on disk",
        || {
            let state = replay(&daemon.state).unwrap().state;
            state.outbox.len() == 3
                && state
                    .outbox
                    .values()
                    .all(|p| p.delivered_to_sinks().iter().map(|s| &**s).eq(["slack"]))
        },
    );
    let text = std::fs::read_to_string(&daemon.state).unwrap();
    assert!(text.contains(r#""sink":"slack""#), "{text}");

    // Killed; started again with the JSON webhook working: it gets the
    // three events, Slack nothing again.
    let _ = daemon.kill();
    hook.answer(200);
    while hook.next(Duration::from_millis(100)).is_some() {}
    let daemon = Daemon::builder(dir.path())
        .webhook(&slack.url)
        .pacing(0.0, 0.05)
        .args(["--webhook-json", &format!("{}/events", hook.base)])
        .start();
    let bodies = json_bodies_until(&hook, WAIT, |b| events(b).len() >= 3);
    let texts: BTreeSet<String> = events(&bodies)
        .iter()
        .map(|e| e["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        texts,
        BTreeSet::from([
            "db-1 is available".to_string(),
            "web-1 is available".to_string(),
            "web-1 status changed to degraded (was ok)".to_string()
        ])
    );
    slack.assert_quiet(Duration::from_secs(1));
    poll_until(WAIT, Duration::from_millis(100), "an empty outbox", || {
        replay(&daemon.state).unwrap().state.outbox.is_empty()
    });
    assert!(hook.next(Duration::from_millis(300)).is_none());
}

/// The alerts of peer `i` named `name` for `service`.
fn alerts_named(cluster: &Cluster, i: usize, name: &str, service: &str) -> Vec<Value> {
    cluster
        .alerts(i)
        .into_iter()
        .filter(|a| a["labels"]["alertname"] == name && a["labels"]["service"] == service)
        .collect()
}

/// The notifications the cluster's receiver gets within `window`.
fn notifications(cluster: &Cluster, window: Duration) -> Vec<Value> {
    let deadline = Instant::now() + window;
    let mut all = Vec::new();
    while let Some(request) = cluster
        .receiver
        .next(deadline.saturating_duration_since(Instant::now()))
    {
        all.push(serde_json::from_str(&request.body).unwrap());
    }
    all
}

/// Waits for a notification from the cluster with `status` (`firing`,
/// `resolved`) about `service`; returns it and what came before it.
#[track_caller]
fn notification(cluster: &Cluster, status: &str, service: &str) -> (Value, Vec<Value>) {
    let mut before = Vec::new();
    loop {
        let Some(request) = cluster.receiver.next(Duration::from_secs(20)) else {
            let log = cluster.log(0);
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            panic!(
                "no {status} notification about {service}; got {before:#?}\npeer 0 now holds {:#?}\npeer 0's log ends:\n{}",
                cluster.alerts(0),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        };
        let body: Value = serde_json::from_str(&request.body).unwrap();
        let about = body["alerts"]
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a["labels"]["service"] == service));
        if body["status"] == status && about {
            return (body, before);
        }
        before.push(body);
    }
}

fn alertmanager_daemon(dir: &TempDir, cluster: &Cluster, extra: &[&str]) -> Daemon {
    let mut builder = Daemon::builder(dir.path())
        .args(["--alertmanager-resend", "1s"])
        .args(extra.iter().copied());
    for peer in &cluster.peers {
        builder = builder.args(["--alertmanager", &peer.url]);
    }
    builder.start()
}

#[test]
fn alertmanager_peers_get_firing_and_resolved_alerts_and_notify_once() {
    let Some(cluster) = Cluster::start(2) else {
        return;
    };
    let dir = TempDir::new();
    let daemon = alertmanager_daemon(
        &dir,
        &cluster,
        &[
            "--alertmanager-label",
            "team=web",
            "--alertmanager-watchdog",
        ],
    );
    let mut client = Client::connect(daemon.addr);
    client.register("web-1", 0.5, &["ok", "degraded"]);
    client.ping_ok("web-1", 0);
    assert_eq!(daemon.next_line(WAIT), "web-1 is available");
    // The watchdog fires on every peer while procjon is healthy.
    for peer in 0..2 {
        poll_until(
            WAIT,
            Duration::from_millis(100),
            "the watchdog alert",
            || {
                cluster.alerts(peer).iter().any(|a| {
                    a["labels"]["alertname"] == "ProcjonWatchdog" && a["labels"]["team"] == "web"
                })
            },
        );
    }
    // Silent past its timeout: firing on both peers with procjon's labels.
    assert!(daemon.next_line(WAIT).starts_with("web-1 is not available"));
    for peer in 0..2 {
        poll_until(
            WAIT,
            Duration::from_millis(100),
            "the unavailable alert",
            || alerts_named(&cluster, peer, "ProcjonServiceUnavailable", "web-1").len() == 1,
        );
        let alert = &alerts_named(&cluster, peer, "ProcjonServiceUnavailable", "web-1")[0];
        assert_eq!(alert["labels"]["owner"], "procjonagent", "{alert}");
        assert_eq!(alert["labels"]["team"], "web", "{alert}");
        assert_eq!(alert["status"]["state"], "active", "{alert}");
        let summary = alert["annotations"]["summary"].as_str().unwrap();
        assert!(
            summary.starts_with("web-1 is not available (no ping for"),
            "{alert}"
        );
        assert!(
            alert["annotations"]["description"]
                .as_str()
                .unwrap()
                .contains("has not pinged procjon within its timeout since"),
            "{alert}"
        );
    }
    let (firing, _) = notification(&cluster, "firing", "web-1");
    assert_eq!(
        firing["alerts"][0]["labels"]["alertname"],
        "ProcjonServiceUnavailable"
    );
    // While the outage lasts, procjon resends it every second to both
    // peers, and nobody is notified again: the second peer waits its peer
    // timeout (2 s here), sees the first one's notification log, and stays
    // quiet.
    let steady = notifications(&cluster, Duration::from_secs(5));
    assert!(
        unavailable(&steady).is_empty(),
        "the outage was notified twice: {steady:#?}"
    );
    // Pinging again in a non-zero status (with a longer timeout, so that
    // it stays up): the outage resolves, the status fires.
    client.register("web-1", 60.0, &["ok", "degraded"]);
    client.ping_ok("web-1", 1);
    let (resolved, _) = notification(&cluster, "resolved", "web-1");
    assert_eq!(
        resolved["alerts"][0]["labels"]["alertname"],
        "ProcjonServiceUnavailable"
    );
    for peer in 0..2 {
        poll_until(WAIT, Duration::from_millis(100), "the status alert", || {
            alerts_named(&cluster, peer, "ProcjonServiceStatus", "web-1")
                .iter()
                .any(|a| a["labels"]["status"] == "degraded")
        });
        assert!(alerts_named(&cluster, peer, "ProcjonServiceUnavailable", "web-1").is_empty());
    }
    // Alertmanager's own HA race may repeat a notification right at a
    // transition (a peer's check that began before it); once that window
    // (peer timeout + group interval) has passed, procjon's resends of the
    // resolved alert notify nobody.
    let _ = notifications(&cluster, Duration::from_secs(4));
    let later = notifications(&cluster, Duration::from_secs(4));
    assert!(
        unavailable(&later).is_empty(),
        "resends notified again: {later:#?}"
    );
}

/// The notifications among `bodies` about the outage alert.
fn unavailable(bodies: &[Value]) -> Vec<&Value> {
    bodies
        .iter()
        .filter(|b| b["groupLabels"]["alertname"] == "ProcjonServiceUnavailable")
        .collect()
}

#[test]
fn a_killed_procjon_leaves_its_alerts_to_end_by_themselves() {
    let Some(cluster) = Cluster::start(2) else {
        return;
    };
    let dir = TempDir::new();
    let daemon = alertmanager_daemon(&dir, &cluster, &[]);
    let mut client = Client::connect(daemon.addr);
    client.register("web-1", 0.5, &["ok"]);
    client.ping_ok("web-1", 0);
    assert_eq!(daemon.next_line(WAIT), "web-1 is available");
    assert!(daemon.next_line(WAIT).starts_with("web-1 is not available"));
    notification(&cluster, "firing", "web-1");
    let _ = daemon.kill();
    let killed = Instant::now();
    // endsAt was four resends ahead (4 s): Alertmanager resolves it then.
    let (resolved, _) = notification(&cluster, "resolved", "web-1");
    let after = killed.elapsed();
    assert!(
        after >= Duration::from_secs(2) && after < Duration::from_secs(15),
        "resolved {after:?} after the kill: {resolved}"
    );
    for peer in 0..2 {
        assert!(alerts_named(&cluster, peer, "ProcjonServiceUnavailable", "web-1").is_empty());
    }
}

#[test]
fn a_dead_alertmanager_peer_loses_nothing() {
    let Some(mut cluster) = Cluster::start(2) else {
        return;
    };
    let dir = TempDir::new();
    let daemon = alertmanager_daemon(&dir, &cluster, &[]);
    let mut client = Client::connect(daemon.addr);
    client.register("web-1", 0.5, &["ok"]);
    client.ping_ok("web-1", 0);
    assert_eq!(daemon.next_line(WAIT), "web-1 is available");
    cluster.kill(1);
    assert!(daemon.next_line(WAIT).starts_with("web-1 is not available"));
    // The live peer has it and notifies; procjon says the other is down.
    let (firing, _) = notification(&cluster, "firing", "web-1");
    assert_eq!(firing["alerts"][0]["labels"]["service"], "web-1");
    assert_eq!(
        alerts_named(&cluster, 0, "ProcjonServiceUnavailable", "web-1").len(),
        1
    );
    daemon.wait_log("posting alerts to Alertmanager 127.0.0.1:", 1);
    // Back (with its storage), it is told the state again within a resend.
    cluster.restart(1);
    poll_until(
        WAIT,
        Duration::from_millis(100),
        "the alert on the restarted peer",
        || alerts_named(&cluster, 1, "ProcjonServiceUnavailable", "web-1").len() == 1,
    );
    daemon.wait_log("takes alerts again", 1);
    // No second notification for the same outage.
    let again = notifications(&cluster, Duration::from_secs(3));
    assert!(
        again.iter().all(|b| b["status"] != "firing"),
        "notified again: {again:#?}"
    );
}
