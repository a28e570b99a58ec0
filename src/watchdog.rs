//! The watchdog thread: procjon's own signs of life.
//!
//! - To systemd (when it runs procjon with `Type=notify`): `WATCHDOG=1` at
//!   half the interval systemd asks for, only while the timer, store writer
//!   and notifier threads are each getting on with their work, so a stuck
//!   thread gets procjon restarted; and `STATUS=` with a one-line summary.
//! - To the state file: an `alive` record every few seconds, so that after
//!   a crash or a power cut the next start knows, to within a minute, how
//!   long procjon was down (and tells the channel).
//! - To people: one warning, in the log and the channel, when the server
//!   certificate is about to expire.
//!
//! It takes the registry's read lock for the summary, and sends to the
//! store writer; it never blocks on I/O but one datagram.

use crate::cert_expiry::{CertExpiry, unix_now};
use crate::health::Health;
use crate::registry::Registry;
use crate::sinks::Deliveries;
use crate::store::{Record, StoreCmd, Timestamp};
use crate::systemd::Systemd;
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

/// Longest time between two looks at everything.
const TICK: Duration = Duration::from_secs(1);
/// Longest time between two `alive` records.
pub const ALIVE_EVERY: Duration = Duration::from_secs(30);

/// The watchdog thread's state.
pub struct Watchdog {
    /// systemd's notification socket, if procjon runs under systemd.
    pub systemd: Option<Arc<Systemd>>,
    /// Whether procjon can do its job.
    pub health: Arc<Health>,
    /// For the status summary and the certificate warning.
    pub registry: Arc<Registry>,
    /// For the status summary.
    pub deliveries: Arc<Deliveries>,
    /// Where `alive` records go.
    pub store: Sender<StoreCmd>,
    /// Time between two `alive` records.
    pub alive_every: Duration,
    /// The server certificate's expiry.
    pub cert: Arc<CertExpiry>,
}

impl Watchdog {
    /// Runs for ever (the process ends around it).
    pub fn run(self) {
        let watchdog_every = self
            .systemd
            .as_ref()
            .and_then(|s| s.watchdog())
            .map(|interval| interval / 2);
        let tick = [Some(TICK), Some(self.alive_every), watchdog_every]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(TICK)
            .max(Duration::from_millis(10));
        let mut next_alive = Instant::now();
        let mut next_watchdog = Instant::now();
        let mut status = String::new();
        let mut stalled = false;
        loop {
            let now = Instant::now();
            if now >= next_alive {
                let alive = Record::Alive {
                    at: Timestamp::now(),
                };
                let _ = self.store.send(StoreCmd::Append {
                    records: vec![alive],
                    ack: None,
                });
                next_alive = now + self.alive_every;
            }
            let problem = self.health.stalled();
            match (&problem, stalled) {
                (Some(reason), false) => log::error!(
                    "{reason}; procjon can't do its job: systemd's watchdog (if on) stops hearing from it and restarts it"
                ),
                (None, true) => log::info!("every thread is making progress again"),
                _ => {}
            }
            stalled = problem.is_some();
            if let Some(systemd) = &self.systemd {
                if let Some(every) = watchdog_every
                    && now >= next_watchdog
                    && !stalled
                {
                    systemd.notify("WATCHDOG=1");
                    next_watchdog = now + every;
                }
                let summary = self.summary();
                if summary != status {
                    systemd.notify(&format!("STATUS={summary}"));
                    status = summary;
                }
            }
            if let Some(warning) = self.cert.warning_due(unix_now()) {
                log::warn!("{warning}");
                self.registry.announce_self(warning);
            }
            std::thread::sleep(tick);
        }
    }

    /// The one-line status systemd shows.
    fn summary(&self) -> String {
        let (services, down) = self.registry.summary();
        let pending = self.deliveries.pending();
        format!("{services} services, {down} not available, {pending} notifications pending")
    }
}
