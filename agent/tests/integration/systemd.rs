//! The `systemd` agent, with a stub `systemctl` first on PATH (systemd
//! can't run here). The stub answers like systemctl: the unit's state, or
//! `inactive` for a unit that doesn't exist; it fails on demand.

use crate::support::{Scene, TempDir};

/// Logs its arguments; prints `units/UNIT` or `inactive`; fails if `broken`
/// exists.
const STUB: &str = r#"#!/bin/sh
dir=$(dirname "$0")/..
echo "$@" >> "$dir/calls"
if [ -e "$dir/broken" ]; then echo "Failed to connect to bus" >&2; exit 1; fi
for last; do :; done
if [ -f "$dir/units/$last" ]; then cat "$dir/units/$last"; else echo inactive; fi
"#;

fn install_stub(dir: &TempDir) -> String {
    std::fs::create_dir_all(dir.join("bin")).expect("bin dir");
    std::fs::create_dir_all(dir.join("units")).expect("units dir");
    dir.write("bin/systemctl", STUB);
    let status = std::process::Command::new("chmod")
        .args(["+x"])
        .arg(dir.join("bin/systemctl"))
        .status()
        .expect("chmod");
    assert!(status.success());
    let path = std::env::var("PATH").unwrap_or_default();
    format!("{}:{path}", dir.join("bin").display())
}

#[test]
fn unit_states_are_announced() {
    let scene = Scene::new();
    let dir = &scene.dir;
    let path = install_stub(dir);
    dir.write("units/web.service", "active\n");
    let _agent = scene
        .agent("web")
        .env("PATH", &path)
        .args(["systemd", "--unit", "web.service"])
        .start();
    let out = &scene.procjon.stdout;
    out.expect_line("web is available");
    let steps = [
        ("failed", "failed (was active)"),
        // The unit is removed: systemctl says inactive.
        ("", "inactive (was failed)"),
        ("broken", "unknown (was inactive)"),
        ("activating", "activating (was unknown)"),
        ("maintenance", "unknown (was activating)"),
    ];
    out.expect_changes("web", &steps, |state| {
        let _ = std::fs::remove_file(dir.join("broken"));
        let _ = std::fs::remove_file(dir.join("units/web.service"));
        match state {
            "" => {}
            "broken" => dir.write("broken", ""),
            state => dir.write("units/web.service", &format!("{state}\n")),
        }
    });

    let calls = std::fs::read_to_string(dir.join("calls")).expect("reading the calls");
    let first = calls.lines().next().unwrap_or_default();
    assert_eq!(first, "show --property=ActiveState --value web.service");
}

#[test]
fn missing_systemctl_reports_unknown() {
    let scene = Scene::new();
    std::fs::create_dir_all(scene.dir.join("empty")).expect("empty dir");
    let agent = scene
        .agent("db")
        .env("PATH", scene.dir.join("empty"))
        .args(["systemd", "--unit", "db.service"])
        .start();
    scene.procjon.stdout.expect_lines_in_any_order(&[
        "db is available",
        "db status changed to unknown (was active)",
    ]);
    agent.stderr.expect_containing("running systemctl: ");
}
