//! Restarts: registrations and announced state survive; no "available" spam;
//! a service that died while procjon was down is reported once.

use crate::support::http::get;
use crate::support::{Client, Daemon, TempDir};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(5);

#[test]
fn restart_keeps_registrations_and_reports_only_real_outages() {
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path()).start();
    let mut client = Client::connect(daemon.addr);
    client.register("alive", 1.0, &["ok", "degraded"]);
    client.register("dies", 1.0, &["ok"]);
    client.register("silent", 1.0, &["ok"]); // never pinged: unknown
    client.register("was-down", 0.2, &["ok"]);
    client.ping_ok("alive", 1);
    client.ping_ok("dies", 0);
    client.ping_ok("was-down", 0);
    let mut first = daemon.lines(5, WAIT);
    first.sort();
    assert_eq!(
        first,
        [
            "alive is available",
            "alive status changed to degraded (was ok)",
            "dies is available",
            "was-down is available",
            "was-down is not available (no ping for 0.2s)",
        ]
    );
    daemon.wait_delivered(5);
    daemon.kill();

    // Taken before the start, so that it is no later than procjon's own
    // start-up instant, which the full timeout is measured from.
    let started = Instant::now();
    let daemon = Daemon::builder(dir.path()).start();
    // Announced available before the restart, not pinged since: available,
    // with no last ping to show (its timeout runs from start-up).
    let http = daemon.http.expect("an `http status on` line in the log");
    let dies: serde_json::Value =
        serde_json::from_str(&get(http, "/api/services/dies").body).unwrap();
    assert_eq!(dies["availability"], "available", "{dies}");
    assert_eq!(dies["last_ping_age_s"], serde_json::Value::Null, "{dies}");
    let mut client = Client::connect(daemon.addr);
    // No re-register: the registration survived. Same status: nothing to say.
    // Keep "alive" pinging until "dies" is reported (bounded), then a little longer.
    let mut expired = None;
    while started.elapsed() < Duration::from_secs(8) {
        client.ping_ok("alive", 1);
        if let Some(line) = daemon.try_line(Duration::from_millis(100)) {
            assert!(expired.is_none(), "second notification {line:?}");
            expired = Some((line, started.elapsed()));
        }
        if expired
            .as_ref()
            .is_some_and(|(_, at)| started.elapsed() > *at + Duration::from_millis(400))
        {
            break;
        }
    }
    let (line, after) =
        expired.expect("the service that died during the downtime was not reported");
    assert!(
        line.starts_with("dies is not available (no ping for 1"),
        "{line}"
    );
    assert!(
        after >= Duration::from_millis(1000),
        "reported after only {after:?}: not a full timeout"
    );
    daemon.assert_quiet(Duration::from_millis(300));

    // "was-down" was announced not available before the restart: a ping makes it available again.
    client.ping_ok("was-down", 0);
    assert_eq!(daemon.next_line(WAIT), "was-down is available");
    // "silent" stays unknown until its first ping.
    client.ping_ok("silent", 0);
    assert_eq!(daemon.next_line(WAIT), "silent is available");
}

#[test]
fn a_status_change_survives_a_restart() {
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path()).start();
    let mut client = Client::connect(daemon.addr);
    client.register("svc", 5.0, &["ok", "degraded"]);
    client.ping_ok("svc", 1);
    assert_eq!(daemon.lines(2, WAIT).len(), 2);
    daemon.wait_delivered(2);
    daemon.kill();
    let daemon = Daemon::builder(dir.path()).start();
    let mut client = Client::connect(daemon.addr);
    client.ping_ok("svc", 1);
    daemon.assert_quiet(Duration::from_millis(300));
    client.ping_ok("svc", 0);
    assert_eq!(
        daemon.next_line(WAIT),
        "svc status changed to ok (was degraded)"
    );
}
