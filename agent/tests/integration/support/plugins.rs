//! The real Nagios plugins the `exec` tests run, from Debian's
//! `monitoring-plugins-basic` (`.ci/install-test-deps.sh` installs it).
//! Missing, a test is skipped with a note, unless `CI` is set: then it
//! fails, so that CI never passes without running it.

use std::path::Path;

/// `check_dummy STATE [TEXT]`: exits STATE and prints `OK: TEXT`,
/// `WARNING: TEXT`, ...
const CHECK_DUMMY: &str = "/usr/lib/nagios/plugins/check_dummy";

/// Whether the tests run under CI (`CI` set, and not `false` or `0`).
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The path of `check_dummy`, or `None` (after printing why the test is
/// skipped) when it isn't installed; a panic then under CI.
#[track_caller]
pub fn check_dummy() -> Option<&'static str> {
    if Path::new(CHECK_DUMMY).is_file() {
        return Some(CHECK_DUMMY);
    }
    assert!(
        !in_ci(),
        "{CHECK_DUMMY} is not installed and CI is set: install the Debian package \
         monitoring-plugins-basic (.ci/install-test-deps.sh does)"
    );
    eprintln!(
        "SKIPPED: {CHECK_DUMMY} is not installed (Debian package monitoring-plugins-basic; \
         .ci/install-test-deps.sh installs it)"
    );
    None
}
