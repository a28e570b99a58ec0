//! The texts procjon posts to the channel, and the times stamped on them.
//! These phrases are a contract with the people and scripts reading the
//! channel: change them only by extending.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `<id> is available`
pub fn available(service: &str) -> String {
    format!("{service} is available")
}

/// `<id> status changed to <name> (was <old name>)`
pub fn status_changed(service: &str, new: &str, old: &str) -> String {
    format!("{service} status changed to {new} (was {old})")
}

/// `<id> is not available (no ping for <duration>)`
pub fn not_available(service: &str, silent_for: Duration) -> String {
    format!(
        "{service} is not available (no ping for {})",
        human_duration(silent_for)
    )
}

/// A duration the way people say it: `0.3s`, `12s`, `4m10s`, `2h5m`, `3d4h`.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 10.0 {
        let tenths = (secs * 10.0).round() / 10.0;
        return if tenths.fract() == 0.0 {
            format!("{tenths:.0}s")
        } else {
            format!("{tenths:.1}s")
        };
    }
    let total = secs.round() as u64;
    let (days, hours, minutes, seconds) = (
        total / 86_400,
        total / 3600 % 24,
        total / 60 % 60,
        total % 60,
    );
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds}s"),
        (0, 0, _) => format!("{minutes}m{seconds}s"),
        (0, _, _) => format!("{hours}h{minutes}m"),
        _ => format!("{days}d{hours}h"),
    }
}

/// The current time as RFC 3339 UTC with seconds, e.g. `2026-11-23T11:04:55Z`.
pub fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

/// Formats Unix seconds as RFC 3339 UTC.
pub fn rfc3339(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let rem = unix_secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_are_exact() {
        assert_eq!(available("web-1"), "web-1 is available");
        assert_eq!(
            status_changed("web-1", "degraded", "ok"),
            "web-1 status changed to degraded (was ok)"
        );
        assert_eq!(
            not_available("web-1", Duration::from_millis(10_020)),
            "web-1 is not available (no ping for 10s)"
        );
    }

    #[test]
    fn durations_read_naturally() {
        let cases = [
            (300, "0.3s"),
            (2_000, "2s"),
            (9_940, "9.9s"),
            (12_400, "12s"),
            (250_000, "4m10s"),
            (7_500_000, "2h5m"),
            (277_200_000, "3d5h"),
        ];
        for (ms, text) in cases {
            assert_eq!(human_duration(Duration::from_millis(ms)), text);
        }
    }

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_431_895), "2026-11-23T11:04:55Z");
    }
}
