//! Every configuration mistake exits 2 with one line naming the file or
//! address and what to do; never a panic.

use crate::support::daemon::run;
use crate::support::{TempDir, certs};
use std::path::Path;

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[track_caller]
fn assert_config_error(extra: &[&str], needles: &[&str]) {
    let dir = TempDir::new();
    let certs = certs();
    let (ca, cert, key) = (
        certs.join("ca.pem"),
        certs.join("procjon.pem"),
        certs.join("procjon.key"),
    );
    let state = dir.join("state.jsonl");
    let mut args: Vec<&str> = extra.to_vec();
    for (flag, value) in [
        ("-e", "127.0.0.1:0"),
        ("--root-cert", p(&ca)),
        ("-c", p(&cert)),
        ("-k", p(&key)),
        ("--state", p(&state)),
        ("--http", "127.0.0.1:0"),
    ] {
        if !extra.contains(&flag) {
            args.extend([flag, value]);
        }
    }
    let (status, _, stderr) = run(&args, dir.path());
    assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.starts_with("procjon: "))
            .count(),
        1,
        "{stderr}"
    );
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{extra:?}: expected {needle:?} in: {stderr}"
        );
    }
}

#[test]
fn missing_certificate_files() {
    assert_config_error(
        &["-c", "/nonexistent/procjon.pem"],
        &[
            "reading certificate /nonexistent/procjon.pem",
            "gen-certs.sh",
        ],
    );
    assert_config_error(
        &["-k", "/nonexistent/procjon.key"],
        &["reading key /nonexistent/procjon.key"],
    );
    assert_config_error(
        &["--root-cert", "/nonexistent/ca.pem"],
        &["/nonexistent/ca.pem"],
    );
}

#[test]
fn files_that_hold_the_wrong_thing() {
    let certs = certs();
    let key = certs.join("procjon.key");
    let cert = certs.join("procjon.pem");
    assert_config_error(&["-c", p(&key)], &[p(&key), "no CERTIFICATE"]);
    assert_config_error(&["-k", p(&cert)], &[p(&cert), "no PRIVATE KEY"]);
    let agent_key = certs.join("procjonagent.key");
    assert_config_error(
        &["-k", p(&agent_key)],
        &[p(&agent_key), "does not fit", p(&cert)],
    );
}

#[test]
fn address_in_use() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    assert_config_error(&["-e", &addr], &[&addr, "in use", "--endpoint"]);
    assert_config_error(
        &["-e", "no-such-host.invalid:1"],
        &["no-such-host.invalid:1"],
    );
}

#[test]
fn bad_flags_and_webhook() {
    assert_config_error(
        &["--slack-webhook", "hooks.slack.com/x"],
        &["webhook", "https://"],
    );
    assert_config_error(&["--slack-interval", "-1"], &["--slack-interval"]);
    assert_config_error(&["-l", "loud"], &["--log-level", "loud"]);
}

#[test]
fn a_bad_state_file() {
    let dir = TempDir::new();
    let state = dir.join("bad.jsonl");
    std::fs::write(
        &state,
        "{\"op\":\"register\",\"service\":\"a\",\"timeout_s\":1,\"statuses\":[\"ok\"]}\n{\"op\":\"regster\"}\n\n",
    )
    .unwrap();
    assert_config_error(
        &["--state", p(&state)],
        &[&format!("state file {} line 2: ", p(&state))],
    );
}

#[test]
fn http_address_in_use_or_unusable() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    assert_config_error(&["--http", &addr], &[&addr, "in use", "--http"]);
    assert_config_error(
        &["--http", "nonsense"],
        &["--http", "nonsense", "HOST:PORT"],
    );
    assert_config_error(
        &["--http", "no-such-host.invalid:1"],
        &["no-such-host.invalid:1", "--http"],
    );
}
