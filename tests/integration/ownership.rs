//! Service ownership: only the certificate identity that registered a
//! service may register or ping it again.

use crate::support::{Client, Daemon, TempDir};
use procjon::frame::{ErrorCode, ServerFrame};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

fn forbidden(reply: ServerFrame) -> String {
    match reply {
        ServerFrame::Error {
            code: ErrorCode::Forbidden,
            message,
        } => message,
        other => panic!("expected forbidden, got {other:?}"),
    }
}

#[test]
fn another_identity_can_neither_ping_nor_reregister() {
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path()).start();
    let mut owner = Client::connect_as(daemon.addr, "team-a");
    owner.register("db-1", 0.6, &["ok", "degraded"]);
    owner.ping_ok("db-1", 0);
    assert_eq!(daemon.next_line(WAIT), "db-1 is available");

    let mut intruder = Client::connect_as(daemon.addr, "team-b");
    let message = forbidden(intruder.ping("db-1", 1));
    assert!(
        message.contains("team-a") && message.contains("team-b"),
        "{message}"
    );
    let reregister = procjon::ClientFrame::Register(procjon::Registration {
        service: "db-1".into(),
        timeout_s: 3600.0,
        statuses: vec!["ok".into()],
        policy: Default::default(),
    });
    forbidden(intruder.request(&reregister));
    // The intruder can't keep the outage quiet: the owner stops, the outage is reported.
    for _ in 0..10 {
        forbidden(intruder.ping("db-1", 0));
        std::thread::sleep(Duration::from_millis(100));
    }
    let line = daemon.next_line(WAIT);
    assert!(line.starts_with("db-1 is not available"), "{line}");
    // The intruder may use its own ids.
    intruder.register("db-2", 5.0, &["ok"]);
    // The owner, on a new connection, still can.
    let mut owner = Client::connect_as(daemon.addr, "team-a");
    owner.ping_ok("db-1", 0);
    assert_eq!(daemon.next_line(WAIT), "db-1 is available");
}

#[test]
fn a_registration_without_owner_is_adopted_by_the_first_identity() {
    let dir = TempDir::new();
    std::fs::write(
        dir.join("state.jsonl"),
        "{\"op\":\"register\",\"service\":\"legacy\",\"timeout_s\":5,\"statuses\":[\"ok\"]}\n",
    )
    .unwrap();
    let daemon = Daemon::builder(dir.path()).start();
    let mut first = Client::connect_as(daemon.addr, "team-a");
    first.ping_ok("legacy", 0);
    assert_eq!(daemon.next_line(WAIT), "legacy is available");
    let mut second = Client::connect_as(daemon.addr, "team-b");
    forbidden(second.ping("legacy", 0));
    // The adoption is on disk: it survives a restart.
    daemon.wait_delivered(1);
    daemon.kill();
    let daemon = Daemon::builder(dir.path()).start();
    let mut second = Client::connect_as(daemon.addr, "team-b");
    forbidden(second.ping("legacy", 0));
    // A person moves the service by editing the owner in the state file.
    daemon.kill();
    let state = dir.join("state.jsonl");
    let text = std::fs::read_to_string(&state)
        .unwrap()
        .replace("\"owner\":\"team-a\"", "\"owner\":\"team-b\"");
    std::fs::write(&state, text).unwrap();
    let daemon = Daemon::builder(dir.path()).start();
    let mut second = Client::connect_as(daemon.addr, "team-b");
    second.ping_ok("legacy", 0);
    let mut first = Client::connect_as(daemon.addr, "team-a");
    forbidden(first.ping("legacy", 0));
}

#[test]
fn a_shared_certificate_keeps_working_everywhere() {
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path()).start();
    let mut a = Client::connect(daemon.addr);
    a.register("shared", 5.0, &["ok"]);
    let mut b = Client::connect(daemon.addr); // same procjonagent certificate, another connection
    b.ping_ok("shared", 0);
    b.register("shared", 5.0, &["ok"]);
    assert_eq!(daemon.next_line(WAIT), "shared is available");
}
