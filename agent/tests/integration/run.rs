//! The `run` agent: a long-running command as the agent's child, reported
//! while it runs, its end announced with how it ended, the service
//! unregistered, and the child's exit code kept, whatever procjon does.

use crate::support::{AgentCommand, Scene, TempDir, WAIT, procjon};
use std::time::{Duration, Instant};

#[test]
fn a_job_that_fails_is_announced_unregistered_and_its_exit_code_kept() {
    let scene = Scene::new();
    let mut agent = scene
        .agent("job-1")
        .args(["run", "--", "sh", "-c", "sleep 1; exit 3"])
        .start();
    let out = &scene.procjon.stdout;
    out.expect_line("job-1 is available");
    out.expect_line("job-1 status changed to failed (was running): exit 3 after 1s");
    out.expect_line("job-1 was unregistered by procjonagent: exit 3 after 1s");
    assert_eq!(agent.wait_exit(WAIT), 3);
    // Nothing cries wolf afterwards: the service is gone, not silent.
    if let Ok(line) = out.recv(Duration::from_secs(3)) {
        panic!("after the unregistration: {line:?}");
    }
}

#[test]
fn a_job_that_succeeds_exits_0_and_keep_leaves_the_service_registered() {
    let scene = Scene::new();
    let mut agent = scene
        .agent("job-ok")
        .args([
            "run",
            "--keep",
            "--statuses",
            "up,done,broken",
            "--",
            "true",
        ])
        .start();
    let out = &scene.procjon.stdout;
    out.expect_line("job-ok is available");
    let line = out.expect_containing("job-ok status changed to done (was up): exit 0 after ");
    assert!(line.ends_with("exit 0 after 0s"), "{line}");
    assert_eq!(agent.wait_exit(WAIT), 0);
    // Kept: no unregister line; the timeout (2 s) reports it later.
    out.expect_line("job-ok is not available (no ping for 2s)");
}

#[test]
fn the_last_report_waits_for_procjon_to_come_back() {
    let dir = TempDir::new().with_certs();
    let daemon = procjon(&dir).start();
    let endpoint = daemon.endpoint();
    let mut agent = AgentCommand::new(&dir)
        .service("job-2")
        .timing("60", "0.3")
        .endpoint(&endpoint)
        .args(["run", "--", "sh", "-c", "sleep 2; exit 0"])
        .start();
    daemon.stdout.expect_line("job-2 is available");
    // procjon goes away before the job ends, and comes back 5 s after.
    daemon.kill();
    let stopped = Instant::now();
    agent
        .stderr
        .expect_containing(&format!("procjon at {endpoint}: cannot report: "));
    std::thread::sleep(Duration::from_secs(5).saturating_sub(stopped.elapsed()));
    let daemon = procjon(&dir).endpoint(endpoint).start();
    daemon
        .stdout
        .expect_line("job-2 status changed to succeeded (was running): exit 0 after 2s");
    daemon
        .stdout
        .expect_line("job-2 was unregistered by procjonagent: exit 0 after 2s");
    assert_eq!(agent.wait_exit(WAIT), 0);
}

#[test]
fn sigterm_to_the_agent_is_passed_on_to_the_job() {
    let scene = Scene::new();
    let script = "trap 'echo stopped > stopped.txt; exit 143' TERM; \
                  echo started > started.txt; while true; do sleep 0.1; done";
    let mut agent = scene
        .agent("job-3")
        .args(["run", "--", "sh", "-c", script])
        .start();
    scene.procjon.stdout.expect_line("job-3 is available");
    crate::support::wait_for("the job to start", || {
        scene.dir.join("started.txt").exists()
    });
    agent.signal("TERM");
    let line = scene
        .procjon
        .stdout
        .expect_containing("job-3 status changed to failed (was running): exit 143 after ");
    assert!(line.starts_with("job-3 status changed"), "{line}");
    assert_eq!(agent.wait_exit(WAIT), 143);
    assert!(
        scene.dir.join("stopped.txt").exists(),
        "the job never saw SIGTERM"
    );
}

#[test]
fn a_command_that_does_not_start_is_a_configuration_error() {
    let dir = TempDir::new().with_certs();
    let (code, log) = AgentCommand::new(&dir)
        .service("job-4")
        .args(["run", "--", "/nonexistent/job"])
        .exit();
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("starting \"/nonexistent/job\""), "{log}");
}
