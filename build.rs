//! Records the git revision (when built from a checkout) for `--version`.

use std::process::Command;

fn main() {
    let revision = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|rev| rev.trim().to_string())
        .unwrap_or_default();
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .is_some_and(|out| !out.stdout.is_empty());
    let revision = if dirty && !revision.is_empty() {
        format!("{revision}-modified")
    } else {
        revision
    };
    println!("cargo:rustc-env=PROCJON_GIT_REVISION={revision}");
    // Rebuild when HEAD moves (a commit, a checkout) or the index changes.
    // Asks git where those files are: in a worktree `.git` is a file and
    // they live elsewhere. Harmless outside a checkout.
    for path in git_files() {
        println!("cargo:rerun-if-changed={path}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}

/// HEAD, the index, and the branch HEAD points to (loose or packed).
fn git_files() -> Vec<String> {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) else {
        return Vec::new();
    };
    // --path-format needs git 2.31; older ones print a path relative to
    // the package, which cargo reads the same way.
    let common = git(&["rev-parse", "--path-format=absolute", "--git-common-dir"])
        .or_else(|| git(&["rev-parse", "--git-common-dir"]))
        .unwrap_or_else(|| dir.clone());
    let mut files = vec![format!("{dir}/HEAD"), format!("{dir}/index")];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        files.push(format!("{common}/{branch}"));
    }
    files.push(format!("{common}/packed-refs"));
    files
        .into_iter()
        .filter(|path| std::path::Path::new(path).exists())
        .collect()
}
