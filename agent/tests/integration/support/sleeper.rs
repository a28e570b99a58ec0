//! A process for the `process` agent to watch: `sleep 600` (or a link to
//! it under another name), owned by the test, killed and reaped on drop.

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running `sleep 600`.
pub struct Sleeper(Child);

impl Sleeper {
    /// Runs `program 600`, where `program` is `sleep` or a link to it (the
    /// link's name is the process's name).
    pub fn start(program: impl AsRef<Path>) -> Sleeper {
        let program = program.as_ref();
        let child = Command::new(program)
            .arg("600")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("starting {}: {err}", program.display()));
        Sleeper(child)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Kills it (SIGKILL) without reaping it: it stays a zombie until
    /// [`Sleeper::reap`] or drop.
    pub fn kill_unreaped(&mut self) {
        self.0.kill().expect("killing the sleeper");
    }

    /// Waits for it to exit, reaping it.
    pub fn reap(&mut self) {
        self.0.wait().expect("reaping the sleeper");
    }

    /// Kills and reaps it.
    pub fn stop(mut self) {
        self.kill_unreaped();
        self.reap();
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
