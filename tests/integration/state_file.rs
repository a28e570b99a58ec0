//! The state file on disk: torn lines, hand edits, `check-state`.

use crate::support::daemon::run;
use crate::support::{Client, Daemon, TempDir};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);
const REG_A: &str =
    "{\"op\":\"register\",\"service\":\"a\",\"timeout_s\":5,\"statuses\":[\"ok\",\"bad\"]}\n";

#[test]
fn a_torn_last_line_is_dropped_and_the_file_repaired() {
    let dir = TempDir::new();
    let state = dir.join("state.jsonl");
    std::fs::write(
        &state,
        format!("{REG_A}{{\"op\":\"announce\",\"seq\":1,\"serv"),
    )
    .unwrap();
    let daemon = Daemon::builder(dir.path()).start();
    assert!(
        daemon.log().contains("line 2: incomplete last line"),
        "{}",
        daemon.log()
    );
    assert_eq!(
        without_alive(&std::fs::read_to_string(&state).unwrap()),
        REG_A
    );
    let mut client = Client::connect(daemon.addr);
    client.ping_ok("a", 0); // the registration on line 1 survived
    assert_eq!(daemon.next_line(WAIT), "a is available");
    // The repaired file is whole lines only.
    crate::support::wait_until(WAIT, "the announcement on disk", || {
        std::fs::read_to_string(&state).is_ok_and(|s| s.lines().count() >= 2)
    });
    let text = std::fs::read_to_string(&state).unwrap();
    for line in text.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap();
    }
}

#[test]
fn hand_edits_are_honoured() {
    let dir = TempDir::new();
    let state = dir.join("state.jsonl");
    // A person removed "b" and wrote a line for "c" without a final newline.
    let text = format!(
        "{REG_A}{}{}{}",
        "{\"op\":\"register\",\"service\":\"b\",\"timeout_s\":5,\"statuses\":[\"ok\"]}\n",
        "{\"op\":\"remove\",\"service\":\"b\"}\n",
        "{\"op\":\"register\",\"service\":\"c\",\"timeout_s\":5,\"statuses\":[\"ok\"]}"
    );
    std::fs::write(&state, text).unwrap();
    let daemon = Daemon::builder(dir.path()).start();
    let mut client = Client::connect(daemon.addr);
    assert!(matches!(
        client.ping("b", 0),
        procjon::ServerFrame::Error {
            code: procjon::ErrorCode::NotRegistered,
            ..
        }
    ));
    client.ping_ok("c", 0);
    assert_eq!(daemon.next_line(WAIT), "c is available");
    crate::support::wait_until(WAIT, "the announcement on disk", || {
        std::fs::read_to_string(&state).is_ok_and(|s| s.contains("announce"))
    });
    let after = std::fs::read_to_string(&state).unwrap();
    // The missing newline was added before appending: every line is whole.
    for line in after.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("{line}: {e}\n{after}"));
    }
    // The hand-written registration had no owner: the first agent adopted it.
    assert!(
        after.contains(
            "\"service\":\"c\",\"timeout_s\":5.0,\"statuses\":[\"ok\"],\"owner\":\"procjonagent\"}"
        ),
        "{after}"
    );
}

#[test]
fn check_state_summarises_or_points_at_the_bad_line() {
    let dir = TempDir::new();
    let good = dir.join("good.jsonl");
    std::fs::write(
        &good,
        format!(
            "{REG_A}{}{}",
            "{\"op\":\"announce\",\"seq\":1,\"service\":\"a\",\"available\":true,\"status\":0,\"text\":\"a is available\"}\n",
            "{\"op\":\"register\",\"service\":\"b\",\"timeout_s\":5,\"statuses\":[\"ok\"]}\n"
        ),
    )
    .unwrap();
    let (status, stdout, _) = run(&["check-state", good.to_str().unwrap()], dir.path());
    assert_eq!(status.code(), Some(0));
    assert!(
        stdout.contains("is valid: 2 services (1 available, 0 not available, 1 unknown), 1 notifications pending"),
        "{stdout}"
    );
    let bad = dir.join("bad.jsonl");
    std::fs::write(&bad, format!("{REG_A}{{\"op\":\"ping\"}}\n{REG_A}")).unwrap();
    let (status, _, stderr) = run(&["check-state", bad.to_str().unwrap()], dir.path());
    assert_eq!(status.code(), Some(2));
    assert!(
        stderr.contains(&format!("state file {} line 2: ", bad.display())),
        "{stderr}"
    );
    // check-state changes nothing.
    assert_eq!(
        std::fs::read_to_string(&bad).unwrap(),
        format!("{REG_A}{{\"op\":\"ping\"}}\n{REG_A}")
    );
}

#[test]
fn the_file_is_compacted_at_start_up_when_mostly_history() {
    let dir = TempDir::new();
    let state = dir.join("state.jsonl");
    let mut text = String::from(REG_A);
    for seq in 1..=12_000u64 {
        let (available, word) = if seq % 2 == 1 {
            (true, "is available")
        } else {
            (false, "is not available (no ping for 5s)")
        };
        text.push_str(&format!(
            "{{\"op\":\"announce\",\"seq\":{seq},\"service\":\"a\",\"available\":{available},\"status\":0,\"text\":\"a {word}\"}}\n{{\"op\":\"delivered\",\"seq\":{seq}}}\n"
        ));
    }
    std::fs::write(&state, text).unwrap();
    let daemon = Daemon::builder(dir.path()).start();
    let compacted = without_alive(&std::fs::read_to_string(&state).unwrap());
    assert_eq!(compacted.lines().count(), 3, "{compacted}");
    assert!(compacted.contains("\"seq\":12000"));
    // The last announced state (not available) survived: a ping announces availability.
    let mut client = Client::connect(daemon.addr);
    client.ping_ok("a", 0);
    assert_eq!(daemon.next_line(WAIT), "a is available");
    assert!(!dir.join("state.jsonl.compacting").exists());
}

/// The file without the `alive` records procjon writes while it runs (the
/// signs of life that tell the next start how long it was down).
fn without_alive(text: &str) -> String {
    text.split_inclusive('\n')
        .filter(|line| !line.starts_with("{\"op\":\"alive\""))
        .collect()
}
