//! Settings an operator may give as a flag, an environment variable (e.g. in
//! a systemd unit) or not at all: the table of flag → variable → default,
//! and the lookup that walks it. A flag wins over its variable; an empty
//! variable counts as unset. Shared with `procjonagent`, which has its own
//! table; a leaf: it imports nothing of procjon's.

/// One row of a settings table: (flag, environment variable, default).
pub type SettingRow = (&'static str, &'static str, &'static str);

/// Environment variable holding the Slack webhook URL (the original's name).
pub const WEBHOOK_ENV: &str = "PROCJON_SLACK_WEBHOOK";

/// How errors name the webhook URL.
pub const WEBHOOK_WHAT: &str = "Slack webhook URL (--slack-webhook or PROCJON_SLACK_WEBHOOK)";

/// Environment variable holding the heartbeat URL.
pub const HEARTBEAT_ENV: &str = "PROCJON_HEARTBEAT_URL";

/// How errors name the heartbeat URL.
pub const HEARTBEAT_WHAT: &str = "heartbeat URL (--heartbeat-url or PROCJON_HEARTBEAT_URL)";

/// The default `--http` address.
pub const DEFAULT_HTTP: &str = "127.0.0.1:9090";

/// The daemon's settings that may come from the environment.
pub const ENVIRONMENT: [SettingRow; 12] = [
    ("--endpoint", "PROCJON_ENDPOINT", "localhost:8080"),
    ("--root-cert", "PROCJON_ROOT_CERT", ".certs/ca.pem"),
    ("--cert", "PROCJON_CERT", ".certs/procjon.pem"),
    ("--key-cert", "PROCJON_KEY_CERT", ".certs/procjon.key"),
    ("--state", "PROCJON_STATE", "procjon-state.jsonl"),
    ("--http", "PROCJON_HTTP", DEFAULT_HTTP),
    ("--log-level", "PROCJON_LOG_LEVEL", "info"),
    ("--slack-webhook", WEBHOOK_ENV, "(none: standard output)"),
    ("--heartbeat-url", HEARTBEAT_ENV, "(none: no heartbeat)"),
    ("--route", ROUTES_ENV, "(none)"),
    ("--webhook-json", WEBHOOK_JSON_ENV, "(none)"),
    ("--alertmanager", ALERTMANAGER_ENV, "(none)"),
];

/// Environment variable holding the routes, `owner=url,owner=url`.
pub const ROUTES_ENV: &str = "PROCJON_ROUTES";

/// Environment variable holding JSON webhook URLs, comma-separated.
pub const WEBHOOK_JSON_ENV: &str = "PROCJON_WEBHOOK_JSON";

/// Environment variable holding Alertmanager URLs, comma-separated.
pub const ALERTMANAGER_ENV: &str = "PROCJON_ALERTMANAGER";

/// Where settings read environment variables from: the process environment
/// ([`process_env`]) or, in tests, a closure.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A daemon setting from its flag, else its environment variable, else its
/// default (from [`ENVIRONMENT`]).
pub fn setting(flag_value: Option<&str>, flag: &str, env: Env<'_>) -> String {
    setting_from(&ENVIRONMENT, flag_value, flag, env)
}

/// A setting from its flag, else its environment variable, else its
/// default, from `table`'s row for `flag`; empty for a flag not in the table.
pub fn setting_from(
    table: &[SettingRow],
    flag_value: Option<&str>,
    flag: &str,
    env: Env<'_>,
) -> String {
    if let Some(value) = flag_value {
        return value.to_string();
    }
    let Some((_, var, default)) = table.iter().find(|(f, _, _)| *f == flag) else {
        return String::new();
    };
    env(var)
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// A length of time as people write it on a command line: seconds
/// (`90`, `0.5`), or a number with a unit: `s`, `m`, `h`, `d` (`90s`,
/// `10m`, `4h`, `1.5h`, `7d`). `None` for anything else, or a negative or
/// non-finite one.
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let scale = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        _ => return None,
    };
    let value: f64 = number.trim().parse().ok()?;
    std::time::Duration::try_from_secs_f64(value * scale).ok()
}

/// Reads the process environment.
pub fn process_env(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn reads_durations_with_and_without_units() {
        for (text, secs) in [
            ("90", 90.0),
            ("0.5", 0.5),
            ("90s", 90.0),
            ("10m", 600.0),
            ("4h", 14_400.0),
            ("1.5h", 5400.0),
            ("7d", 604_800.0),
            (" 2m ", 120.0),
        ] {
            assert_eq!(
                parse_duration(text),
                Some(Duration::from_secs_f64(secs)),
                "{text}"
            );
        }
        for bad in ["", "h", "-1", "4w", "1h30m", "NaN", "inf"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
