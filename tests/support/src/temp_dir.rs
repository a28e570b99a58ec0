//! A directory per test under the system temp dir, removed when the test
//! ends, or kept for a post-mortem when it fails.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A fresh directory under the system temp dir: removed on drop, except
/// while the thread is panicking (a failing test), when it is kept and its
/// path printed.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Makes a new, empty directory.
    pub fn new() -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        // The process id and a counter make the name unique among running
        // tests; the clock, against a kept directory of an earlier run
        // whose process id is reused.
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "procjon-test-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|err| panic!("creating {}: {err}", path.display()));
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

    /// Makes certificates of its own in `certs/` (see [`crate::gen_certs`]):
    /// a CA no other test shares.
    pub fn with_certs(self) -> TempDir {
        crate::gen_certs(&self.join("certs"));
        self
    }
}

impl Default for TempDir {
    fn default() -> TempDir {
        TempDir::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept {} for a post-mortem", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
