//! The real `procjon` daemon, run in a test's temp dir on a loopback port,
//! printing notifications on its standard output. Killed on drop; its
//! output is printed when the test fails.

use super::{Lines, TempDir};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// A running daemon.
pub struct Procjon {
    child: Child,
    /// The port it listens on.
    pub port: u16,
    /// Its notifications.
    pub stdout: Lines,
    /// Its log.
    pub stderr: Lines,
}

/// Prefixes of the variables cargo sets for a test process about its package.
const PACKAGE_VARS: [&str; 7] = [
    "CARGO_PKG_",
    "CARGO_MANIFEST_",
    "CARGO_BIN_",
    "CARGO_CRATE_",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "CARGO_RUSTC_CURRENT_DIR",
];

/// The daemon binary beside `procjonagent` in the target dir, built once
/// if `cargo test -p procjon-agent` didn't (it belongs to another package).
fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let path = Path::new(env!("CARGO_BIN_EXE_procjonagent")).with_file_name("procjon");
        if !path.exists() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut build = Command::new(cargo);
            build
                .args(["build", "-p", "procjon", "--bin", "procjon"])
                .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
            // What cargo sets for this test describes this package; build
            // scripts (ring's) watch some of it, and seeing it here would
            // make them, and everything above them, rebuild twice.
            for (key, _) in std::env::vars_os() {
                let key = key.to_string_lossy();
                if PACKAGE_VARS.iter().any(|p| key.starts_with(p)) {
                    build.env_remove(&*key);
                }
            }
            let status = build.status().expect("running cargo build -p procjon");
            assert!(status.success(), "cargo build -p procjon failed");
        }
        path
    })
}

impl Procjon {
    /// Starts procjon on a free port, with its state file in `dir`.
    pub fn start(dir: &TempDir) -> Procjon {
        Procjon::start_on(dir, 0)
    }

    /// Starts procjon on `port` (0: any free one).
    pub fn start_on(dir: &TempDir, port: u16) -> Procjon {
        let mut child = Command::new(binary())
            .current_dir(dir.path())
            .args(["-e", &format!("127.0.0.1:{port}")])
            .args(["--root-cert", "certs/ca.pem"])
            .args(["-c", "certs/procjon.pem", "-k", "certs/procjon.key"])
            .args(["--state", "state.jsonl", "--slack-interval", "0"])
            .args(["-l", "debug", "--http", "off"])
            .env_remove("PROCJON_SLACK_WEBHOOK")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting procjon");
        let stdout = Lines::collect("procjon stdout", child.stdout.take().expect("stdout"));
        let stderr = Lines::collect("procjon stderr", child.stderr.take().expect("stderr"));
        let mut procjon = Procjon {
            child,
            port,
            stdout,
            stderr,
        };
        let line = procjon.stderr.expect_containing("listening on 127.0.0.1:");
        procjon.port = line
            .rsplit(':')
            .next()
            .and_then(|p| p.trim().parse().ok())
            .expect("a port in the listening line");
        procjon
    }

    /// The `-e` value agents use.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the daemon (SIGKILL, as a crash would) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Procjon {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("{}\n{}", self.stdout.report(), self.stderr.report());
        }
    }
}
