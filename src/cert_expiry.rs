//! The server certificate's expiry. Read when the certificate is loaded
//! (start-up, SIGHUP); shown by `/healthz` (a header, and 503 once it has
//! expired) and `/metrics`; warned about once per certificate, in the log
//! and in the channel, 14 days before it expires (by the watchdog thread).
//! An expired server certificate means no agent can connect: procjon would
//! go blind without a word, the failure this file exists to prevent.

use crate::message::{human_duration, rfc3339};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long before expiry the warning comes.
pub const WARN_BEFORE: Duration = Duration::from_secs(14 * 24 * 3600);

/// What is known about the server certificate's expiry. Lock-free.
#[derive(Debug)]
pub struct CertExpiry {
    /// The certificate file (`--cert`), for messages.
    path: PathBuf,
    /// `notAfter` as Unix seconds; 0 when unknown.
    not_after: AtomicU64,
    /// The `notAfter` the warning was given for; 0 when none.
    warned_for: AtomicU64,
}

impl CertExpiry {
    /// Nothing known yet about the certificate in `path`.
    pub fn new(path: PathBuf) -> CertExpiry {
        CertExpiry {
            path,
            not_after: AtomicU64::new(0),
            warned_for: AtomicU64::new(0),
        }
    }

    /// Records the `notAfter` of the certificate now in use.
    pub fn set(&self, not_after: Option<u64>) {
        self.not_after
            .store(not_after.unwrap_or(0), Ordering::Relaxed);
    }

    /// The `notAfter` of the certificate in use, as Unix seconds.
    pub fn not_after(&self) -> Option<u64> {
        Some(self.not_after.load(Ordering::Relaxed)).filter(|&t| t != 0)
    }

    /// Why agents can't connect, if the certificate has expired.
    pub fn expired(&self, now: u64) -> Option<String> {
        let not_after = self.not_after()?;
        (now >= not_after).then(|| {
            format!(
                "procjon's server certificate {} expired on {}; agents can't connect: renew it and send SIGHUP to procjon (systemctl reload procjon)",
                self.path.display(),
                rfc3339(not_after)
            )
        })
    }

    /// The warning to give at `now`, once per certificate: from
    /// [`WARN_BEFORE`] before its expiry on.
    pub fn warning_due(&self, now: u64) -> Option<String> {
        let not_after = self.not_after()?;
        if now.saturating_add(WARN_BEFORE.as_secs()) < not_after
            || self.warned_for.swap(not_after, Ordering::Relaxed) == not_after
        {
            return None;
        }
        if let Some(expired) = self.expired(now) {
            return Some(expired);
        }
        Some(format!(
            "procjon's server certificate {} expires on {} (in {}); renew it and send SIGHUP to procjon (systemctl reload procjon)",
            self.path.display(),
            rfc3339(not_after),
            human_duration(Duration::from_secs(not_after - now))
        ))
    }
}

/// The time now as Unix seconds.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_once_per_certificate_from_two_weeks_ahead() {
        let expiry = CertExpiry::new("procjon.pem".into());
        assert_eq!(expiry.warning_due(1_000), None, "nothing known");
        let day = 86_400;
        expiry.set(Some(100 * day));
        assert_eq!(expiry.warning_due(80 * day), None, "20 days ahead");
        let warning = expiry.warning_due(90 * day).unwrap();
        assert!(
            warning.contains("expires on") && warning.contains("in 10d0h"),
            "{warning}"
        );
        assert_eq!(expiry.warning_due(91 * day), None, "once");
        assert!(expiry.expired(99 * day).is_none());
        assert!(expiry.expired(100 * day).unwrap().contains("expired on"));
        // A renewed certificate that is also close gets its own warning.
        expiry.set(Some(105 * day));
        assert!(expiry.warning_due(95 * day).is_some());
    }
}
