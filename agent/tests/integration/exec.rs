//! The `exec` agent: a command's exit code is the status (Nagios plugin
//! convention by default, custom names with `--statuses`); a code past the
//! list, a signal or overrunning the period reports the last status.

use crate::support::Scene;

/// Exits with the code in the file `ctl`, or is killed, or hangs.
const SCRIPT: &str =
    "read c < ctl; case $c in kill) kill -9 $$;; hang) exec sleep 5;; *) exit $c;; esac";

#[test]
fn exit_codes_map_to_nagios_statuses() {
    let scene = Scene::new();
    scene.dir.write("ctl", "0\n");
    let _agent = scene
        .agent("check-1")
        .args(["exec", "--", "sh", "-c", SCRIPT])
        .start();
    let out = &scene.procjon.stdout;
    out.expect_line("check-1 is available");
    let steps = [
        ("1", "warning (was ok)"),
        ("2", "critical (was warning)"),
        ("3", "unknown (was critical)"),
        ("0", "ok (was unknown)"),
        ("9", "unknown (was ok)"),
        ("0", "ok (was unknown)"),
        ("kill", "unknown (was ok)"),
        ("0", "ok (was unknown)"),
        ("hang", "unknown (was ok)"),
        ("0", "ok (was unknown)"),
    ];
    out.expect_changes("check-1", &steps, |ctl| {
        scene.dir.write("ctl", &format!("{ctl}\n"))
    });
}

#[test]
fn custom_statuses_are_registered_and_announced() {
    let scene = Scene::new();
    scene.dir.write("ctl", "0\n");
    let _agent = scene
        .agent("queue")
        .args([
            "exec",
            "--statuses",
            "empty,busy,full",
            "--",
            "sh",
            "-c",
            SCRIPT,
        ])
        .start();
    let out = &scene.procjon.stdout;
    out.expect_line("queue is available");
    // 7 is past the list: the last status.
    let steps = [
        ("1", "busy (was empty)"),
        ("0", "empty (was busy)"),
        ("7", "full (was empty)"),
    ];
    out.expect_changes("queue", &steps, |ctl| {
        scene.dir.write("ctl", &format!("{ctl}\n"))
    });
}
