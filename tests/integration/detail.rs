//! A ping's detail and performance data, and unregistering a service:
//! protocol v1's additions, against the real binary.

use crate::support::http::get;
use crate::support::{Client, Daemon, TempDir, daemon};
use procjon::frame::{ClientFrame, ErrorCode, MAX_DETAIL_CHARS, PerfValue, ServerFrame};
use procjon::state_file::{Record, replay};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

fn ping(service: &str, status: u64, detail: Option<&str>) -> ClientFrame {
    ClientFrame::Ping {
        service: service.into(),
        status,
        detail: detail.map(String::from),
        perfdata: Vec::new(),
    }
}

#[track_caller]
fn refused(reply: ServerFrame) -> (ErrorCode, String) {
    match reply {
        ServerFrame::Error { code, message } => (code, message),
        ServerFrame::Ok => panic!("accepted"),
    }
}

/// `/api/services/<id>` as JSON.
fn api(daemon: &Daemon, id: &str) -> serde_json::Value {
    get(daemon.http.unwrap(), &format!("/api/services/{id}")).json()
}

#[test]
fn a_detail_ends_the_status_change_and_shows_in_the_api() {
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path()).start();
    let mut client = Client::connect(daemon.addr);
    client.register("disk-1", 30.0, &["ok", "warning"]);
    assert_eq!(
        client.request(&ping("disk-1", 0, Some("DISK OK - free space: / 61%"))),
        ServerFrame::Ok
    );
    assert_eq!(daemon.next_line(WAIT), "disk-1 is available");
    assert_eq!(
        api(&daemon, "disk-1")["detail"],
        "DISK OK - free space: / 61%"
    );

    // Only the detail changes: nothing is posted, the API follows.
    for free in [60, 59, 58] {
        let detail = format!("DISK OK - free space: / {free}%");
        assert_eq!(
            client.request(&ping("disk-1", 0, Some(&detail))),
            ServerFrame::Ok
        );
    }
    daemon.assert_quiet(Duration::from_millis(300));
    assert_eq!(
        api(&daemon, "disk-1")["detail"],
        "DISK OK - free space: / 58%"
    );

    // The status changes: the line ends with the detail.
    let warning = ClientFrame::Ping {
        service: "disk-1".into(),
        status: 1,
        detail: Some("DISK WARNING - free space: / 9%".into()),
        perfdata: vec![PerfValue {
            label: "/".into(),
            value: 9.0,
            uom: "%".into(),
            warn: Some("10:".into()),
            crit: Some("5:".into()),
            min: Some(0.0),
            max: Some(100.0),
        }],
    };
    assert_eq!(client.request(&warning), ServerFrame::Ok);
    assert_eq!(
        daemon.next_line(WAIT),
        "disk-1 status changed to warning (was ok): DISK WARNING - free space: / 9%"
    );
    let service = api(&daemon, "disk-1");
    assert_eq!(service["detail"], "DISK WARNING - free space: / 9%");
    assert_eq!(
        service["perfdata"],
        serde_json::json!([{"label":"/","value":9.0,"uom":"%","warn":"10:","crit":"5:","min":0.0,"max":100.0}])
    );
    let (status, table, _) = daemon::run(
        &["status", "--http", &daemon.http.unwrap().to_string()],
        dir.path(),
    );
    assert_eq!(status.code(), Some(0), "{table}");
    assert!(
        table.lines().next().unwrap().ends_with("DETAIL")
            && table.contains("DISK WARNING - free space: / 9%"),
        "{table}"
    );

    // A ping without a detail clears it.
    client.ping_ok("disk-1", 1);
    assert!(api(&daemon, "disk-1").get("detail").is_none());
}

#[test]
fn an_over_long_or_multi_line_detail_is_refused_and_changes_nothing() {
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path()).start();
    let mut client = Client::connect(daemon.addr);
    client.register("x", 30.0, &["ok", "bad"]);
    client.ping_ok("x", 0);
    assert_eq!(daemon.next_line(WAIT), "x is available");
    let long = "d".repeat(MAX_DETAIL_CHARS + 1);
    let (code, message) = refused(client.request(&ping("x", 1, Some(&long))));
    assert_eq!(code, ErrorCode::BadFrame);
    assert!(message.contains("detail has 257 characters"), "{message}");
    let (code, _) = refused(client.request(&ping("x", 1, Some("two\nlines"))));
    assert_eq!(code, ErrorCode::BadFrame);
    daemon.assert_quiet(Duration::from_millis(300));
    assert_eq!(api(&daemon, "x")["status_name"], "ok");
    // Exactly the limit is fine.
    let most = "é".repeat(MAX_DETAIL_CHARS);
    assert_eq!(client.request(&ping("x", 1, Some(&most))), ServerFrame::Ok);
    assert_eq!(
        daemon.next_line(WAIT),
        format!("x status changed to bad (was ok): {most}")
    );
}

#[test]
fn the_owner_unregisters_a_service_for_good() {
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path()).start();
    let mut owner = Client::connect(daemon.addr);
    owner.register("job-1", 30.0, &["running", "succeeded", "failed"]);
    owner.ping_ok("job-1", 0);
    assert_eq!(daemon.next_line(WAIT), "job-1 is available");

    let unregister = |reason: Option<&str>| ClientFrame::Unregister {
        service: "job-1".into(),
        reason: reason.map(String::from),
    };
    let mut other = Client::connect_as(daemon.addr, "other-team");
    let (code, _) = refused(other.request(&unregister(Some("mine now"))));
    assert_eq!(code, ErrorCode::Forbidden);

    assert_eq!(
        owner.request(&unregister(Some("exit 0 after 3d4h"))),
        ServerFrame::Ok
    );
    assert_eq!(
        daemon.next_line(WAIT),
        "job-1 was unregistered by procjonagent: exit 0 after 3d4h"
    );
    // The ok came after the fsync: the file says it, and forgets the service.
    let records: Vec<Record> = std::fs::read_to_string(&daemon.state)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        records
            .iter()
            .any(|r| matches!(r, Record::Remove { service } if service == "job-1")),
        "{records:?}"
    );
    assert!(
        !replay(&daemon.state)
            .unwrap()
            .state
            .services
            .contains_key("job-1")
    );
    let (code, _) = refused(owner.ping("job-1", 0));
    assert_eq!(code, ErrorCode::NotRegistered);
    let (code, _) = refused(owner.request(&unregister(None)));
    assert_eq!(code, ErrorCode::NotRegistered);
    assert_eq!(get(daemon.http.unwrap(), "/api/services/job-1").status, 404);
    // No timer is left behind to cry wolf.
    daemon.assert_quiet(Duration::from_millis(500));

    // The id is free again, for anyone.
    other.register("job-1", 30.0, &["ok"]);
    other.ping_ok("job-1", 0);
    assert_eq!(daemon.next_line(WAIT), "job-1 is available");
    let reply = other.request(&ClientFrame::Unregister {
        service: "job-1".into(),
        reason: None,
    });
    assert_eq!(reply, ServerFrame::Ok);
    assert_eq!(
        daemon.next_line(WAIT),
        "job-1 was unregistered by other-team"
    );

    // After a restart it stays gone.
    let daemon = daemon.restart();
    let mut again = Client::connect(daemon.addr);
    let (code, _) = refused(again.ping("job-1", 0));
    assert_eq!(code, ErrorCode::NotRegistered);
}
