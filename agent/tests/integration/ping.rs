//! The `ping` agent: registered under its id (or the host name) and
//! announced as available; silent once stopped.

use crate::support::{AgentCommand, Scene};

#[test]
fn ping_agent_makes_the_service_available() {
    let scene = Scene::new();
    let mut agent = scene.agent("web-1").args(["ping"]).start();
    scene.procjon.stdout.expect_line("web-1 is available");
    agent.stderr.expect_containing(&format!(
        "procjon at {}: registered web-1",
        scene.procjon.endpoint()
    ));
    agent.kill();
    let line = scene
        .procjon
        .stdout
        .expect_containing("web-1 is not available");
    assert!(
        line.starts_with("web-1 is not available (no ping for "),
        "{line}"
    );
}

#[test]
fn service_id_defaults_to_the_host_name() {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("reading the host name")
        .trim()
        .to_string();
    let scene = Scene::new();
    // Common flags after the agent's name work too, as in the original.
    let _agent = AgentCommand::new(&scene.dir)
        .args([
            "ping",
            "-t",
            "2",
            "-p",
            "0.2",
            "-e",
            &scene.procjon.endpoint(),
        ])
        .start();
    scene
        .procjon
        .stdout
        .expect_line(&format!("{host} is available"));
}
