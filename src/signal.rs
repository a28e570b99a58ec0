//! The signals the binaries act on, as the library sees them. The binaries
//! wait for them on a thread of their own (`src/signal_wait.rs`, outside the
//! library, which forbids unsafe code) and send them over a channel; the
//! daemon's main thread receives them: `Terminate` and `Interrupt` stop it
//! gracefully (a second one at once), `Hangup` reloads its certificates.

/// A signal delivered to the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM (systemd's stop, `kill`).
    Terminate,
    /// SIGHUP (`systemctl reload`, `kill -HUP`).
    Hangup,
}

impl Signal {
    /// The signal's number on Linux.
    pub fn number(self) -> i32 {
        match self {
            Signal::Hangup => 1,
            Signal::Interrupt => 2,
            Signal::Terminate => 15,
        }
    }

    /// The signal's name, e.g. `SIGTERM`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Hangup => "SIGHUP",
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }

    /// The exit status of a process that ends because of this signal, as
    /// shells report it: 128 + its number.
    pub fn exit_status(self) -> u8 {
        128 + self.number() as u8
    }
}
