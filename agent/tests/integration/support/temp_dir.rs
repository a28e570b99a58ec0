//! A directory per test, removed when the test ends.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A fresh directory under the system temp dir; removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Makes a new, empty directory.
    pub fn new() -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "procjon-agent-test-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("creating a temp dir");
        TempDir(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Replaces the file `name` inside the directory with `contents`,
    /// atomically: a script reading it concurrently sees old or new, never
    /// an empty file.
    pub fn write(&self, name: &str, contents: &str) {
        let temp = self.join(&format!("{name}.new"));
        std::fs::write(&temp, contents).expect("writing a test file");
        std::fs::rename(&temp, self.join(name)).expect("renaming a test file");
    }

    /// Makes certificates with `scripts/gen-certs.sh` in `certs/`.
    pub fn with_certs(self) -> TempDir {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/gen-certs.sh");
        let out = std::process::Command::new("bash")
            .arg(&script)
            .arg(self.join("certs"))
            .output()
            .expect("running scripts/gen-certs.sh");
        assert!(
            out.status.success(),
            "gen-certs.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
