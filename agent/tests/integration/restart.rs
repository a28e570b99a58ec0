//! Resilience: the agent outlives procjon. It reconnects and registers again
//! by itself after a restart, waits for a procjon that isn't up yet, and
//! keeps checking while disconnected.

use crate::support::{AgentCommand, Scene, TempDir, WAIT, free_port, procjon, wait_for};
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

    let endpoint = scene.procjon.endpoint();
    let restarted = scene.procjon.restart();
    // `connection lost` once a ping of the session was answered; `cannot
    // report` when the kill came between procjon taking the first ping
    // (and announcing the service) and the agent reading the reply.
    let prefix = format!("procjon at {endpoint}: ");
    agent
        .stderr
        .expect("saying the connection ended", WAIT, |l| {
            l.contains(&format!("{prefix}connection lost: "))
                || l.contains(&format!("{prefix}cannot report: "))
        });
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
        .expect_containing(&format!("procjon at 127.0.0.1:{port}: cannot report: "));
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
