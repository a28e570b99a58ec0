//! The `exec` agent: a command's exit code is the status (Nagios plugin
//! convention by default, custom names with `--statuses`); a code past the
//! list, a signal or overrunning the period reports the last status. A
//! plugin's first output line is the detail procjon ends a status change
//! with, and its performance data reaches `/api/services`; real plugins
//! from monitoring-plugins-basic show it.

use crate::support::{Scene, check_dummy, wait_for_service};
use procjon::PerfValue;

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

#[test]
fn a_real_plugin_s_first_line_is_the_detail() {
    let Some(plugin) = check_dummy() else {
        return;
    };
    let scene = Scene::with_http();
    let _agent = scene
        .agent("disk")
        .args(["exec", "--", plugin, "1", "disk low"])
        .start();
    // The first ping has status 1: available, then the change.
    let out = &scene.procjon.stdout;
    out.expect_line("disk is available");
    out.expect_line("disk status changed to warning (was ok): WARNING: disk low");

    let http = scene.procjon.http.expect("procjon's HTTP address");
    let disk = wait_for_service(http, "disk", |s| s.detail.is_some());
    assert_eq!(disk.status_name, "warning");
    assert_eq!(disk.detail.as_deref(), Some("WARNING: disk low"));
    assert!(disk.perfdata.is_empty(), "{:?}", disk.perfdata);
}

/// Runs check_dummy with the state and text on the two lines of `ctl`.
const DUMMY_SCRIPT: &str = r#"{ read code; read text; } < ctl; exec "$0" "$code" "$text""#;

#[test]
fn every_change_ends_with_the_plugin_s_line() {
    let Some(plugin) = check_dummy() else {
        return;
    };
    let scene = Scene::new();
    scene.dir.write("ctl", "0\nall fine\n");
    let _agent = scene
        .agent("root-fs")
        .args(["exec", "--", "sh", "-c", DUMMY_SCRIPT, plugin])
        .start();
    let out = &scene.procjon.stdout;
    out.expect_line("root-fs is available");
    let steps = [
        ("1\ndisk low", "warning (was ok): WARNING: disk low"),
        (
            "2\ndisk full",
            "critical (was warning): CRITICAL: disk full",
        ),
        ("3\nno disk", "unknown (was critical): UNKNOWN: no disk"),
        ("0\nall fine", "ok (was unknown): OK: all fine"),
    ];
    out.expect_changes("root-fs", &steps, |ctl| {
        scene.dir.write("ctl", &format!("{ctl}\n"))
    });
}

/// A plugin with performance data on its first line and in its long text,
/// where the guidelines put it, and a value it could not measure (`U`).
const PERF_PLUGIN: &str =
    "echo \"DISK OK - free space: / 3326 MB (56%) | /=2643MB;5948;5958;0;5968 'my disk'=12%;;;;\"
echo '/ 3326 MB (56%);'
echo \"/boot 68 MB (69%); | /boot=68MB;88;93;0;98 'it''s gone'=U\"
echo 'load1=0.52;4;8;0'
";

#[test]
fn perfdata_reaches_the_api() {
    let scene = Scene::with_http();
    scene.dir.write("plugin.sh", PERF_PLUGIN);
    let _agent = scene
        .agent("disk")
        .args(["exec", "--", "sh", "plugin.sh"])
        .start();
    scene.procjon.stdout.expect_line("disk is available");

    let http = scene.procjon.http.expect("procjon's HTTP address");
    let disk = wait_for_service(http, "disk", |s| !s.perfdata.is_empty());
    assert_eq!(disk.status_name, "ok");
    assert_eq!(
        disk.detail.as_deref(),
        Some("DISK OK - free space: / 3326 MB (56%)")
    );
    let value =
        |label: &str, value: f64, uom: &str, fields: [Option<&str>; 2], min, max| PerfValue {
            label: label.into(),
            value,
            uom: uom.into(),
            warn: fields[0].map(String::from),
            crit: fields[1].map(String::from),
            min,
            max,
        };
    assert_eq!(
        disk.perfdata,
        [
            value(
                "/",
                2643.0,
                "MB",
                [Some("5948"), Some("5958")],
                Some(0.0),
                Some(5968.0)
            ),
            value("my disk", 12.0, "%", [None, None], None, None),
            value(
                "/boot",
                68.0,
                "MB",
                [Some("88"), Some("93")],
                Some(0.0),
                Some(98.0)
            ),
            value("load1", 0.52, "", [Some("4"), Some("8")], Some(0.0), None),
        ]
    );
}
