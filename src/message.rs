//! The texts procjon posts to the channel. These phrases are a contract with
//! the people and scripts reading the channel: change them only by extending.

use std::time::Duration;

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
}
