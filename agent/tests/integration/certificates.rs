//! Certificate mismatches found at connection time: the agent says which
//! side refused which certificate, and keeps retrying (procjon's CA may be
//! changing) instead of exiting.

use crate::support::{Scene, TempDir};

#[test]
fn procjon_refusing_the_agent_certificate_is_retried() {
    let scene = Scene::new();
    let other = TempDir::new().with_certs();
    let cert = other.join("certs/procjonagent.pem");
    let key = other.join("certs/procjonagent.key");
    let mut agent = scene
        .agent("web-1")
        .cert(&cert.display().to_string())
        .key(&key.display().to_string())
        .args(["ping"])
        .start();
    agent
        .stderr
        .expect_containing("refused the agent's certificate");
    let again = agent.stderr.expect_containing("(attempt 2)");
    assert!(again.contains("refused the agent's certificate"), "{again}");
    assert!(agent.is_running());
}

#[test]
fn an_untrusted_procjon_certificate_is_retried() {
    let scene = Scene::new();
    let other = TempDir::new().with_certs();
    let mut agent = scene
        .agent("web-1")
        .root_cert(&other.join("certs/ca.pem").display().to_string())
        .args(["ping"])
        .start();
    let line = agent.stderr.expect_containing("(attempt 2)");
    assert!(
        line.contains("is not trusted") && line.contains("--root-cert"),
        "{line}"
    );
    assert!(agent.is_running());
}
