//! The texts procjon posts to the channel, and the times stamped on them.
//! These phrases are a contract with the people and scripts reading the
//! channel: change them only by extending.

use std::time::Duration;

/// `<id> is available`
pub fn available(service: &str) -> String {
    format!("{service} is available")
}

/// `<id> status changed to <name> (was <old name>)`, and `: <detail>` when
/// the ping that changed it said more.
pub fn status_changed(service: &str, new: &str, old: &str, detail: Option<&str>) -> String {
    match detail.filter(|d| !d.is_empty()) {
        Some(detail) => format!("{service} status changed to {new} (was {old}): {detail}"),
        None => format!("{service} status changed to {new} (was {old})"),
    }
}

/// `<id> was unregistered by <identity>`, and `: <reason>` when given.
pub fn unregistered(service: &str, identity: &str, reason: Option<&str>) -> String {
    match reason.filter(|r| !r.is_empty()) {
        Some(reason) => format!("{service} was unregistered by {identity}: {reason}"),
        None => format!("{service} was unregistered by {identity}"),
    }
}

/// `<id> is not available (no ping for <duration>)`
pub fn not_available(service: &str, silent_for: Duration) -> String {
    format!(
        "{service} is not available (no ping for {})",
        human_duration(silent_for)
    )
}

/// `<id> is not available (no ping for <duration>); <n> dependent services
/// affected`: the line of a service that others depend on.
pub fn not_available_with_dependents(
    service: &str,
    silent_for: Duration,
    dependents: usize,
) -> String {
    let line = not_available(service, silent_for);
    if dependents == 0 {
        line
    } else {
        format!("{line}; {dependents} dependent services affected")
    }
}

/// `<id> silenced for <duration> by <who>: <reason>`
pub fn silenced(service: &str, length: Duration, by: &str, reason: Option<&str>) -> String {
    let line = format!("{service} silenced for {} by {by}", round_duration(length));
    match reason.filter(|r| !r.is_empty()) {
        Some(reason) => format!("{line}: {reason}"),
        None => line,
    }
}

/// `<id> silence ended`
pub fn silence_ended(service: &str) -> String {
    format!("{service} silence ended")
}

/// `<id> is still not available (for <duration>)`, or `<id> is still
/// <status> (for <duration>)` for a service in a non-zero status.
pub fn reminder(service: &str, state: Option<&str>, bad_for: Duration) -> String {
    let state = state.unwrap_or("not available");
    format!(
        "{service} is still {state} (for {})",
        round_duration(bad_for)
    )
}

/// `<id> is flapping (<n> changes in <window>)`
pub fn flapping(service: &str, changes: usize, window: Duration) -> String {
    format!(
        "{service} is flapping ({changes} changes in {})",
        round_duration(window)
    )
}

/// `<id> is stable again: <available|not available>, <status>`
pub fn stable(service: &str, available: bool, status: &str) -> String {
    let availability = if available {
        "available"
    } else {
        "not available"
    };
    format!("{service} is stable again: {availability}, {status}")
}

/// A duration in its largest units, without a trailing zero one: `8h`,
/// `1h30m`, `10m`, `45s`, `2d`, `3d4h`. For lengths people chose or
/// thresholds (a silence, a reminder, a window), which are round.
pub fn round_duration(d: Duration) -> String {
    let total = d.as_secs_f64().round() as u64;
    let (days, hours, minutes, seconds) = (
        total / 86_400,
        total / 3600 % 24,
        total / 60 % 60,
        total % 60,
    );
    let units = [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")];
    let Some(first) = units.iter().position(|(n, _)| *n > 0) else {
        return "0s".into();
    };
    let mut out = format!("{}{}", units[first].0, units[first].1);
    if let Some((n, unit)) = units.get(first + 1)
        && *n > 0
    {
        out.push_str(&format!("{n}{unit}"));
    }
    out
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

/// Reads RFC 3339 UTC to the second (`2026-11-23T11:04:55Z`) as Unix
/// seconds; `None` for anything else. Lenient about day ranges: callers
/// that need the exact text back compare it with [`rfc3339`] of the result.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = b.get(range)?;
        digits.iter().try_fold(0i64, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0'))
        })
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    // Days-from-civil (Howard Hinnant's algorithm), the inverse of [`rfc3339`].
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hour * 3600 + minute * 60 + second).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_are_exact() {
        assert_eq!(available("web-1"), "web-1 is available");
        assert_eq!(
            status_changed("web-1", "degraded", "ok", None),
            "web-1 status changed to degraded (was ok)"
        );
        assert_eq!(
            status_changed(
                "web-1",
                "WARNING",
                "OK",
                Some("DISK WARNING - free space: / 9%")
            ),
            "web-1 status changed to WARNING (was OK): DISK WARNING - free space: / 9%"
        );
        assert_eq!(
            unregistered("web-1", "web-hosts", Some("finished")),
            "web-1 was unregistered by web-hosts: finished"
        );
        assert_eq!(
            unregistered("web-1", "web-hosts", None),
            "web-1 was unregistered by web-hosts"
        );
        assert_eq!(
            not_available("web-1", Duration::from_millis(10_020)),
            "web-1 is not available (no ping for 10s)"
        );
    }

    #[test]
    fn policy_phrases_are_exact() {
        assert_eq!(
            silenced(
                "web-1",
                Duration::from_secs(3600),
                "deploy-bot",
                Some("deploy")
            ),
            "web-1 silenced for 1h by deploy-bot: deploy"
        );
        assert_eq!(silence_ended("web-1"), "web-1 silence ended");
        assert_eq!(
            reminder("web-1", None, Duration::from_secs(8 * 3600)),
            "web-1 is still not available (for 8h)"
        );
        assert_eq!(
            reminder("web-1", Some("degraded"), Duration::from_secs(8 * 3600)),
            "web-1 is still degraded (for 8h)"
        );
        assert_eq!(
            flapping("web-1", 7, Duration::from_secs(600)),
            "web-1 is flapping (7 changes in 10m)"
        );
        assert_eq!(
            stable("web-1", true, "ok"),
            "web-1 is stable again: available, ok"
        );
        assert_eq!(
            not_available_with_dependents("host-web-1", Duration::from_secs(30), 12),
            "host-web-1 is not available (no ping for 30s); 12 dependent services affected"
        );
        for (secs, text) in [
            (5400, "1h30m"),
            (86_400, "1d"),
            (273_600, "3d4h"),
            (45, "45s"),
            (0, "0s"),
        ] {
            assert_eq!(round_duration(Duration::from_secs(secs)), text);
        }
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
        for secs in [0, 951_782_400, 1_795_431_895, 4_102_444_799, 86_399] {
            assert_eq!(parse_rfc3339(&rfc3339(secs)), Some(secs));
        }
        for bad in [
            "2026-11-23T11:04:55",
            "2026-13-01T00:00:00Z",
            "20x6-11-23T11:04:55Z",
            "",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
