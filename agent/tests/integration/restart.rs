//! Resilience: the agent outlives procjon. It reconnects and registers again
//! by itself after a restart, waits for a procjon that isn't up yet, and
//! keeps checking while disconnected.

use crate::support::{AgentCommand, Scene, TempDir, free_port, procjon, wait_for};
use std::time::Duration;

#[test]
fn agent_reconnects_after_procjon_restarts() {
    let scene = Scene::new();
    let agent = scene
        .agent("web-1")
        .timing("3", "0.2")
        .args(["ping"])
        .start();
    scene.procjon.stdout.expect_line("web-1 is available");
    agent.stderr.expect_containing("registered web-1");

    let restarted = scene.procjon.restart();
    agent.stderr.expect_containing("connection to procjon at");
    agent.stderr.expect_containing("registered web-1");
    // The restart took less than the 3 s timeout and pings carry on: the
    // service never goes silent.
    let outage = restarted
        .stdout
        .first_within(Duration::from_secs(4), |l| l.contains("not available"));
    assert_eq!(outage, None);
    drop(agent);
    restarted.stdout.expect_containing("web-1 is not available");
}

#[test]
fn agent_waits_for_procjon_and_checks_meanwhile() {
    let dir = TempDir::new().with_certs();
    let port = free_port();
    // Every run appends a line to `runs` and exits 1 (warning).
    let agent = AgentCommand::new(&dir)
        .service("web-1")
        .timing("2", "0.2")
        .endpoint(&format!("127.0.0.1:{port}"))
        .args(["exec", "--", "sh", "-c", "echo run >> runs; exit 1"])
        .start();
    agent
        .stderr
        .expect_containing("cannot report to procjon at");
    let runs = || {
        std::fs::read_to_string(dir.join("runs"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    wait_for("three checks while procjon is down", || runs() >= 3);

    let procjon = procjon(&dir).endpoint(format!("127.0.0.1:{port}")).start();
    procjon.stdout.expect_line("web-1 is available");
    procjon
        .stdout
        .expect_line("web-1 status changed to warning (was ok)");
}
