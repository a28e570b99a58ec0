//! The `elasticsearch` agent against a fake node: health colours, basic
//! auth, and every failure (5xx, garbage, no answer, nothing listening)
//! reported as `unknown` without missing a period.

use crate::support::{FakeEs, Health, Scene, free_port};

#[test]
fn cluster_health_is_announced_and_failures_are_unknown() {
    let scene = Scene::new();
    let es = FakeEs::start(Health::Green, true);
    let _agent = scene
        .agent("es")
        .env("PROCJON_ES_PASSWORD", "s3cret")
        .args(["elasticsearch", "--host", &es.url, "--user", "elastic"])
        .start();
    let out = &scene.procjon.stdout;
    out.expect_line("es is available");
    let steps = [
        (Health::Yellow, "yellow (was green)"),
        (Health::Red, "red (was yellow)"),
        (Health::ServerError, "unknown (was red)"),
        (Health::Green, "green (was unknown)"),
        (Health::Garbage, "unknown (was green)"),
        (Health::Green, "green (was unknown)"),
        (Health::Hang, "unknown (was green)"),
        (Health::Green, "green (was unknown)"),
    ];
    out.expect_changes("es", &steps, |health| es.set(health));
    let paths = es.paths();
    assert!(paths.iter().all(|p| p == "/_cluster/health"), "{paths:?}");
}

#[test]
fn wrong_password_or_no_cluster_is_unknown() {
    let scene = Scene::new();
    let es = FakeEs::start(Health::Green, true);
    let wrong = scene
        .agent("es-auth")
        .env("PROCJON_ES_PASSWORD", "wrong")
        .args(["elasticsearch", "--host", &es.url, "--user", "elastic"])
        .start();
    let nothing = format!("http://127.0.0.1:{}", free_port());
    let refused = scene
        .agent("es-down")
        .args(["elasticsearch", "--host", &nothing])
        .start();
    scene.procjon.stdout.expect_lines_in_any_order(&[
        "es-auth is available",
        "es-auth status changed to unknown (was green)",
        "es-down is available",
        "es-down status changed to unknown (was green)",
    ]);
    wrong.stderr.expect_containing("http status: 401");
    refused.stderr.expect_containing("check failed: GET ");
}
