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
pub const ENVIRONMENT: [SettingRow; 9] = [
    ("--endpoint", "PROCJON_ENDPOINT", "localhost:8080"),
    ("--root-cert", "PROCJON_ROOT_CERT", ".certs/ca.pem"),
    ("--cert", "PROCJON_CERT", ".certs/procjon.pem"),
    ("--key-cert", "PROCJON_KEY_CERT", ".certs/procjon.key"),
    ("--state", "PROCJON_STATE", "procjon-state.jsonl"),
    ("--http", "PROCJON_HTTP", DEFAULT_HTTP),
    ("--log-level", "PROCJON_LOG_LEVEL", "info"),
    ("--slack-webhook", WEBHOOK_ENV, "(none: standard output)"),
    ("--heartbeat-url", HEARTBEAT_ENV, "(none: no heartbeat)"),
];

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

/// Reads the process environment.
pub fn process_env(var: &str) -> Option<String> {
    std::env::var(var).ok()
}
