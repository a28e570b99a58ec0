//! Certificates from `scripts/gen-certs.sh`, the script users run: one set
//! shared by every test of a run, further agent identities in it, or a set
//! of a test's own in a given directory.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// The prefix of the shared certificates' directory under the system temp
/// dir; the process id follows.
const SHARED_PREFIX: &str = "procjon-test-certs-";

/// Runs `scripts/gen-certs.sh DIR`: a CA, `procjon.pem`/`.key` for the
/// daemon and `procjonagent.pem`/`.key` for an agent. Files already in
/// `dir` are kept.
#[track_caller]
pub fn gen_certs(dir: &Path) {
    gen_certs_with(dir, &[]);
}

/// Certificates shared by every test of this run, made once, in a
/// directory under the system temp dir named after the process.
/// Directories of earlier runs whose process has ended are removed first:
/// nothing else would, as a static is never dropped.
pub fn certs() -> &'static Path {
    static CERTS: OnceLock<PathBuf> = OnceLock::new();
    CERTS.get_or_init(|| {
        remove_ended_runs();
        let dir = std::env::temp_dir().join(format!("{SHARED_PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        gen_certs(&dir);
        dir
    })
}

/// A further agent certificate `NAME.pem`/`NAME.key` (identity NAME) in
/// [`certs`], made once per run with `gen-certs.sh --agent NAME`.
pub fn agent_cert(name: &str) -> (PathBuf, PathBuf) {
    static MADE: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let dir = certs();
    let mut made = MADE.lock().unwrap();
    if !made.iter().any(|n| n == name) {
        gen_certs_with(dir, &["--agent", name]);
        made.push(name.to_string());
    }
    (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    )
}

/// Runs `scripts/gen-certs.sh DIR ARGS...`; panics with its stderr if it fails.
#[track_caller]
fn gen_certs_with(dir: &Path, args: &[&str]) {
    let script = crate::workspace_root().join("scripts/gen-certs.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg(dir)
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("running {}: {err}", script.display()));
    assert!(
        out.status.success(),
        "gen-certs.sh {} {args:?} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Removes the shared certificates of runs whose process is gone (on
/// Linux, where `/proc` tells; elsewhere nothing).
fn remove_ended_runs() {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(SHARED_PREFIX)) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
