//! Which procjon this is: the package version and the git revision it was
//! built from (recorded by `build.rs`). Shared by `--version`, `/metrics`
//! and `procjonagent --version`; a leaf: it imports nothing of procjon's.

/// The git revision procjon was built from (empty outside a checkout).
pub const GIT_REVISION: &str = env!("PROCJON_GIT_REVISION");

/// The version line printed by `procjon --version`, e.g.
/// `procjon 0.1.0 (git 1a2b3c4d5e6f)`.
pub fn version() -> String {
    version_of("procjon", env!("CARGO_PKG_VERSION"))
}

/// The version line of program `name` at `version`, with [`GIT_REVISION`].
pub fn version_of(name: &str, version: &str) -> String {
    if GIT_REVISION.is_empty() {
        format!("{name} {version}")
    } else {
        format!("{name} {version} (git {GIT_REVISION})")
    }
}
