//! The `process` agent against real processes (`sleep 600`, owned by the
//! test), found by pidfile and by name: available while running, a restart
//! under the same pidfile reported once with both pids, then running again,
//! and not running with the reason once the process is gone (a zombie
//! counts as gone).

use crate::support::{Lines, Scene, Sleeper, WAIT, wait_for_service};
use std::sync::atomic::{AtomicU32, Ordering};

/// The next status change of `service`, whatever it is.
#[track_caller]
fn next_change(out: &Lines, service: &str) -> String {
    let prefix = format!("{service} status changed to ");
    out.expect(&format!("starting {prefix:?}"), WAIT, |line| {
        line.starts_with(&prefix)
    })
}

#[track_caller]
fn assert_starts(line: &str, prefix: &str) {
    assert!(
        line.starts_with(prefix),
        "{line:?} does not start with {prefix:?}"
    );
}

#[test]
fn pidfile_restart_is_announced_once() {
    let scene = Scene::new();
    let pidfile = scene.dir.join("soak.pid");
    let first = Sleeper::start("sleep");
    let a = first.pid();
    scene.dir.write("soak.pid", &format!("{a}\n"));
    let _agent = scene
        .agent("soak")
        .args(["process", "--pidfile"])
        .args([&pidfile])
        .start();
    let out = &scene.procjon.stdout;
    out.expect_line("soak is available");

    // The new process writes its pid before the old one goes, so that no
    // check can see the old pid dead in between.
    let second = Sleeper::start("sleep");
    let b = second.pid();
    scene.dir.write("soak.pid", &format!("{b}\n"));
    first.stop();
    let restarted = next_change(out, "soak");
    assert_starts(
        &restarted,
        &format!("soak status changed to restarted (was running): pid {a} → {b} (restarted), up "),
    );
    let running = next_change(out, "soak");
    assert_starts(
        &running,
        &format!("soak status changed to running (was restarted): pid {b}, up "),
    );

    second.stop();
    assert_eq!(
        next_change(out, "soak"),
        format!(
            "soak status changed to not running (was running): pidfile {} names pid {b}, which is not running",
            pidfile.display()
        )
    );
}

/// A name no other process has: `pjt-PID-N`, at most 15 bytes.
fn unique_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "pjt-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    assert!(name.len() <= 15, "{name} is too long for /proc/PID/comm");
    name
}

#[test]
fn name_finds_the_process_and_a_zombie_is_gone() {
    let scene = Scene::with_http();
    let name = unique_name();
    // A process's name is the name it was run by: a link to sleep.
    std::fs::create_dir_all(scene.dir.join("bin")).expect("bin dir");
    let link = scene.dir.join(&format!("bin/{name}"));
    std::os::unix::fs::symlink("/bin/sleep", &link).expect("linking sleep");
    let mut sleeper = Sleeper::start(&link);
    let pid = sleeper.pid();
    let _agent = scene
        .agent("worker")
        .args(["process", "--name", &name])
        .start();
    let out = &scene.procjon.stdout;
    out.expect_line("worker is available");
    let http = scene.procjon.http.expect("procjon's HTTP address");
    let worker = wait_for_service(http, "worker", |s| s.detail.is_some());
    assert_eq!(worker.status_name, "running");
    let detail = worker.detail.unwrap_or_default();
    assert_starts(&detail, &format!("pid {pid}, up "));

    // Killed but not reaped: a zombie, still in /proc, no longer running.
    sleeper.kill_unreaped();
    assert_eq!(
        next_change(out, "worker"),
        format!("worker status changed to not running (was running): no process named {name}")
    );
    sleeper.reap();
}

#[test]
fn pid_watches_one_process() {
    let scene = Scene::new();
    let sleeper = Sleeper::start("sleep");
    let pid = sleeper.pid();
    let _agent = scene
        .agent("job")
        .args(["process", "--pid", &pid.to_string()])
        .start();
    let out = &scene.procjon.stdout;
    out.expect_line("job is available");
    sleeper.stop();
    assert_eq!(
        next_change(out, "job"),
        format!("job status changed to not running (was running): pid {pid} is not running")
    );
}
