//! Test support: temp dirs, certificates, the daemon under test, a protocol
//! client and a fake Slack webhook.

#![allow(dead_code)]

pub mod client;
pub mod daemon;
pub mod http;
pub mod raw;
pub mod slack;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub use client::Client;
pub use daemon::Daemon;
pub use raw::RawTls;
pub use slack::FakeSlack;

/// A directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "t-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Runs `scripts/gen-certs.sh DIR`.
pub fn gen_certs(dir: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gen-certs.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gen-certs.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Certificates shared by every test of this run.
pub fn certs() -> &'static Path {
    static CERTS: OnceLock<PathBuf> = OnceLock::new();
    CERTS.get_or_init(|| {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("certs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        gen_certs(&dir);
        dir
    })
}

/// A further agent certificate `NAME.pem`/`NAME.key` (identity NAME) in
/// [`certs`], made once per run with `gen-certs.sh --agent NAME`.
pub fn agent_cert(name: &str) -> (PathBuf, PathBuf) {
    static MADE: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let dir = certs();
    let mut made = MADE.lock().unwrap();
    if !made.iter().any(|n| n == name) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gen-certs.sh");
        let out = std::process::Command::new("bash")
            .arg(script)
            .arg(dir)
            .args(["--agent", name])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "gen-certs.sh --agent failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        made.push(name.to_string());
    }
    (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    )
}

/// Polls `check` every 10 ms until it is true; panics with `what` after `limit`.
#[track_caller]
pub fn wait_until(limit: Duration, what: &str, check: impl FnMut() -> bool) {
    poll_until(limit, Duration::from_millis(10), what, check);
}

/// [`wait_until`] polling every `every`, for checks that cost something.
#[track_caller]
pub fn poll_until(limit: Duration, every: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(every);
    }
}

/// A xorshift64* generator: reproducible randomness without a crate.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value; 0 is mapped to 1).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The seed for randomized tests: `PROCJON_TEST_SEED` or `default`. Printed,
/// so that a failure can be replayed with the same seed.
pub fn seed(test: &str, default: u64) -> u64 {
    let seed = env_number("PROCJON_TEST_SEED", default);
    eprintln!("{test}: seed {seed} (set PROCJON_TEST_SEED to replay)");
    seed
}

/// A count from the environment variable `name`, or `default` when unset.
/// Heavier variants of the attack and crash tests are switched on this way.
#[track_caller]
pub fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a number")),
        _ => default,
    }
}
