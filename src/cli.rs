//! The command line: raw flags as argh parses them, validated once into a
//! [`Config`], and [`run`], the only place that prints errors and picks exit
//! codes (0 fine, 1 `procjon status` found a service not available, 2 a
//! problem the user must fix).

use crate::alertmanager::{AlertmanagerConfig, alerts_endpoint};
use crate::config::{Config, ConfigError, Liveness, NotifyTuning, Route, Sink};
use crate::registry::PolicyConfig;
use crate::registry::{Availability, Limits};
use crate::secret_url::SecretUrl;
use crate::settings::{
    ALERTMANAGER_ENV, DEFAULT_HTTP, Env, HEARTBEAT_ENV, HEARTBEAT_WHAT, ROUTES_ENV, WEBHOOK_ENV,
    WEBHOOK_JSON_ENV, WEBHOOK_WHAT, parse_duration, process_env, setting,
};
use crate::signal::Signal;
use crate::silence_api::SilenceRequest;
use crate::version::version;
use crate::{daemon, status, store};
use argh::FromArgs;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::Receiver;
use std::time::Duration;

#[derive(FromArgs, Debug)]
/// procjon watches services that ping it over mutual TLS and tells a Slack
/// channel when they become available, go silent or change status. With no
/// subcommand it serves.
pub struct Args {
    /// address to listen on for agents (default $PROCJON_ENDPOINT, else localhost:8080)
    #[argh(option, short = 'e')]
    pub endpoint: Option<String>,
    /// CA certificate that agent certificates must chain to (default $PROCJON_ROOT_CERT, else .certs/ca.pem)
    #[argh(option)]
    pub root_cert: Option<PathBuf>,
    /// server certificate chain, PEM (default $PROCJON_CERT, else .certs/procjon.pem)
    #[argh(option, short = 'c')]
    pub cert: Option<PathBuf>,
    /// server private key, PEM (default $PROCJON_KEY_CERT, else .certs/procjon.key)
    #[argh(option, short = 'k')]
    pub key_cert: Option<PathBuf>,
    /// log level: error, warn, info, debug or trace (default $PROCJON_LOG_LEVEL, else info; overrides RUST_LOG)
    #[argh(option, short = 'l')]
    pub log_level: Option<String>,
    /// state file (default $PROCJON_STATE, else procjon-state.jsonl)
    #[argh(option)]
    pub state: Option<PathBuf>,
    /// the Slack incoming webhook URL (default: $PROCJON_SLACK_WEBHOOK; with neither, notifications are printed to standard output)
    #[argh(option)]
    pub slack_webhook: Option<String>,
    /// least seconds between two Slack posts (default 1, Slack's rate; 0 turns pacing off for tests and benchmarks)
    #[argh(option, default = "1.0")]
    pub slack_interval: f64,
    /// seconds before the first retry of a failed post; doubles up to 300 (default 1)
    #[argh(option, default = "1.0")]
    pub slack_backoff: f64,
    /// seconds one Slack post may take, connecting included (default 10)
    #[argh(option, default = "10.0")]
    pub slack_timeout: f64,
    /// seconds a TLS handshake may take before the connection is dropped (default 5)
    #[argh(option, default = "5.0")]
    pub handshake_timeout: f64,
    /// seconds an established agent connection may stay silent before it is closed (default: 3 times the longest registered timeout, at least 60)
    #[argh(option)]
    pub idle_timeout: Option<f64>,
    /// most agent connections open at once; more are answered "busy" (default 10000)
    #[argh(option, default = "10_000")]
    pub max_connections: u64,
    /// most registered services; registering more is answered "busy" (default 100000)
    #[argh(option, default = "100_000")]
    pub max_services: usize,
    /// address of the plain-HTTP status page, JSON API and metrics, or "off" (default $PROCJON_HTTP, else 127.0.0.1:9090)
    #[argh(option)]
    pub http: Option<String>,
    /// URL of a dead man's switch (healthchecks.io, Uptime Kuma push, ...) to request every --heartbeat-interval while procjon is healthy, and URL/fail when it is not (default $PROCJON_HEARTBEAT_URL, else none)
    #[argh(option)]
    pub heartbeat_url: Option<String>,
    /// seconds between two heartbeat requests (default 60)
    #[argh(option, default = "60.0")]
    pub heartbeat_interval: f64,
    /// seconds a sink (the Slack webhook, a JSON webhook, an Alertmanager) may fail before the heartbeat reports a failure (default 600)
    #[argh(option, default = "600.0")]
    pub heartbeat_fail_after: f64,
    /// seconds procjon must have been down for the channel to hear that it is back (default twice --heartbeat-interval, at least 60); a planned stop is always told
    #[argh(option)]
    pub announce_downtime_after: Option<f64>,
    /// seconds a stop (SIGTERM, SIGINT) waits for queued notifications to be delivered (default 5)
    #[argh(option, default = "5.0")]
    pub stop_timeout: f64,
    /// how long a service may stay not available, or in a non-zero status, before the first reminder, then at doubling lengths: seconds or 30m, 4h, 1d (default 4h; 0 turns reminders off)
    #[argh(option, default = "String::from(\"4h\")")]
    pub remind_after: String,
    /// most reminders per outage (default 5)
    #[argh(option, default = "5")]
    pub remind_max: u32,
    /// changes of a service's state within --flap-window past which it is flapping and its changes are held (default 6; 0 turns it off)
    #[argh(option, default = "6")]
    pub flap_changes: u32,
    /// the flapping window: seconds or 10m, 1h (default 10m)
    #[argh(option, default = "String::from(\"10m\")")]
    pub flap_window: String,
    /// send the announcements of the services that certificate identity OWNER owns to another Slack webhook instead of the default one, or to none with OWNER=off: OWNER=URL (repeatable; default $PROCJON_ROUTES as owner=url,owner=url)
    #[argh(option)]
    pub route: Vec<String>,
    /// also post every announcement as JSON events to this URL (repeatable; default $PROCJON_WEBHOOK_JSON, comma-separated)
    #[argh(option)]
    pub webhook_json: Vec<String>,
    /// an Alertmanager to send the services' state to as alerts; give every peer of a cluster (repeatable; default $PROCJON_ALERTMANAGER, comma-separated)
    #[argh(option)]
    pub alertmanager: Vec<String>,
    /// a label NAME=VALUE added to every alert (repeatable)
    #[argh(option)]
    pub alertmanager_label: Vec<String>,
    /// how often firing alerts are sent again: seconds or 30s, 2m (default 60s); Alertmanager ends them by itself 4 resends after procjon stops sending
    #[argh(option, default = "String::from(\"60s\")")]
    pub alertmanager_resend: String,
    /// keep an always-firing ProcjonWatchdog alert while procjon is healthy, for a dead man's switch receiver
    #[argh(switch)]
    pub alertmanager_watchdog: bool,
    /// seconds one of procjon's own threads may spend in one operation (a post, an fsync) before it counts as stalled: systemd's watchdog pings stop and the heartbeat fails (default 60)
    #[argh(option, default = "60.0")]
    pub stall_after: f64,
    /// print the version and exit
    #[argh(switch)]
    pub version: bool,
    #[argh(subcommand)]
    /// what to do instead of serving
    pub command: Option<Command>,
}

impl Args {
    /// Whether these arguments run the daemon (rather than a subcommand or
    /// `--version`), which is what takes signals.
    pub fn serves(&self) -> bool {
        self.command.is_none() && !self.version
    }
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
/// Subcommands.
pub enum Command {
    /// `check-state PATH`.
    CheckState(CheckStateArgs),
    /// `status [--http ADDR]`.
    Status(StatusArgs),
    /// `silence --for LENGTH [--reason R] [--by NAME] SERVICE`.
    Silence(SilenceArgs),
    /// `unsilence SERVICE`.
    Unsilence(UnsilenceArgs),
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "silence")]
/// Silence a service of the running procjon on this machine (maintenance):
/// its events are recorded, not posted, until the silence ends; the channel
/// hears when it starts and ends. SERVICE may be * (every service). Exit
/// code 0 once procjon has it on disk, 2 otherwise.
pub struct SilenceArgs {
    /// how long: seconds or a number with s, m, h or d (90, 30m, 1h, 2d), at most 7 days
    #[argh(option, long = "for")]
    pub length: String,
    /// why, shown in the channel
    #[argh(option)]
    pub reason: Option<String>,
    /// who asks, shown in the channel (default procjon)
    #[argh(option)]
    pub by: Option<String>,
    /// the daemon's --http address (default $PROCJON_HTTP, else 127.0.0.1:9090)
    #[argh(option)]
    pub http: Option<String>,
    /// the service id, or *
    #[argh(positional)]
    pub service: String,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "unsilence")]
/// End a silence now. SERVICE may be * (every service).
pub struct UnsilenceArgs {
    /// the daemon's --http address (default $PROCJON_HTTP, else 127.0.0.1:9090)
    #[argh(option)]
    pub http: Option<String>,
    /// the service id, or *
    #[argh(positional)]
    pub service: String,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "status")]
/// Print the services of a running procjon as a table, from its HTTP status
/// endpoint. Exit code 0 when every service that has been pinged is
/// available, 1 when one is not, 2 when the daemon can't be asked.
pub struct StatusArgs {
    /// the daemon's --http address (default $PROCJON_HTTP, else 127.0.0.1:9090)
    #[argh(option)]
    pub http: Option<String>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "check-state")]
/// Validate a state file and print a summary (like nginx -t). Exit code 0 when
/// procjon would start with it, 2 when not.
pub struct CheckStateArgs {
    /// the state file to check
    #[argh(positional)]
    pub path: PathBuf,
}

/// Runs what the arguments ask for and returns the process exit code. The
/// daemon takes the process's signals from `signals` (see [`Signal`]);
/// other commands ignore it.
pub fn run(args: Args, signals: Receiver<Signal>) -> ExitCode {
    if args.version {
        println!("{}", version());
        return ExitCode::SUCCESS;
    }
    let result = match &args.command {
        Some(Command::CheckState(check)) => check_state(&check.path),
        Some(Command::Status(status)) => {
            return status_table(&setting(status.http.as_deref(), "--http", &process_env));
        }
        Some(Command::Silence(args)) => return silence(args),
        Some(Command::Unsilence(args)) => {
            let addr = setting(args.http.as_deref(), "--http", &process_env);
            return changed(
                status::unsilence(&addr, &args.service),
                format!("unsilenced {}", args.service),
            );
        }
        None => config(&args, &process_env).and_then(|config| daemon::serve(config, signals)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("procjon: {err}");
            ExitCode::from(2)
        }
    }
}

/// `procjon silence`: checks the length, then asks the daemon.
fn silence(args: &SilenceArgs) -> ExitCode {
    let Some(length) = parse_duration(&args.length).filter(|d| !d.is_zero()) else {
        eprintln!(
            "procjon: --for {:?}: give a length above 0 and at most 7 days, as seconds or with s, m, h or d (90, 30m, 1h, 2d)",
            args.length
        );
        return ExitCode::from(2);
    };
    let request = SilenceRequest {
        service: args.service.clone(),
        length: serde_json::json!(length.as_secs_f64()),
        reason: args.reason.clone(),
        by: args.by.clone(),
    };
    let addr = setting(args.http.as_deref(), "--http", &process_env);
    changed(
        status::silence(&addr, &request),
        format!(
            "silenced {} for {}",
            args.service,
            crate::message::round_duration(length)
        ),
    )
}

/// Prints `done` (0) or the error (2) of a change asked of the daemon.
fn changed(result: Result<(), status::StatusError>, done: String) -> ExitCode {
    match result {
        Ok(()) => {
            println!("{done}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("procjon: {err}");
            ExitCode::from(2)
        }
    }
}

/// `procjon status`: the table on stdout; 0 all known services available,
/// 1 not, 2 no answer.
fn status_table(addr: &str) -> ExitCode {
    match status::fetch(addr) {
        Ok(services) => {
            print!("{}", status::table(&services));
            if status::all_known_available(&services) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(err) => {
            eprintln!("procjon: {err}");
            ExitCode::from(2)
        }
    }
}

/// Validates the flags (and the webhook from the environment) into a [`Config`].
fn config(args: &Args, env: Env<'_>) -> Result<Config, ConfigError> {
    let webhook = args
        .slack_webhook
        .clone()
        .or_else(|| env(WEBHOOK_ENV))
        .filter(|url| !url.trim().is_empty());
    let sink = match webhook {
        Some(url) => Sink::Slack(secret_url(&url, WEBHOOK_WHAT)?),
        None => Sink::Stdout,
    };
    let notify = NotifyTuning {
        interval: seconds("--slack-interval", args.slack_interval, true)?,
        backoff: seconds("--slack-backoff", args.slack_backoff, false)?,
        timeout: seconds("--slack-timeout", args.slack_timeout, false)?,
        ..NotifyTuning::default()
    };
    Ok(Config {
        endpoint: setting(args.endpoint.as_deref(), "--endpoint", env),
        root_cert: path_setting(&args.root_cert, "--root-cert", env),
        cert: path_setting(&args.cert, "--cert", env),
        key: path_setting(&args.key_cert, "--key-cert", env),
        state: path_setting(&args.state, "--state", env),
        sink,
        routes: routes(args, env)?,
        json_webhooks: listed(&args.webhook_json, WEBHOOK_JSON_ENV, env)
            .iter()
            .map(|url| secret_url(url, WEBHOOK_JSON_WHAT))
            .collect::<Result<_, _>>()?,
        alertmanager: alertmanager(args, env, notify.timeout)?,
        notify,
        handshake_timeout: seconds("--handshake-timeout", args.handshake_timeout, false)?,
        http: http_address(&setting(args.http.as_deref(), "--http", env))?,
        idle_timeout: args
            .idle_timeout
            .map(|s| seconds("--idle-timeout", s, false))
            .transpose()?,
        max_connections: at_least_one("--max-connections", args.max_connections)?,
        limits: Limits {
            max_services: at_least_one("--max-services", args.max_services as u64)? as usize,
        },
        liveness: liveness(args, env)?,
        policy: PolicyConfig {
            remind_after: duration_flag("--remind-after", &args.remind_after, true)?,
            remind_max: args.remind_max,
            flap_changes: args.flap_changes,
            flap_window: duration_flag("--flap-window", &args.flap_window, false)?,
        },
    })
}

/// A flag's length of time (see [`parse_duration`]), at most 30 days;
/// zero only when allowed.
fn duration_flag(flag: &'static str, text: &str, zero_ok: bool) -> Result<Duration, ConfigError> {
    match parse_duration(text) {
        Some(d) if d <= Duration::from_secs(30 * 86_400) && (zero_ok || !d.is_zero()) => Ok(d),
        _ => Err(ConfigError::BadFlag {
            flag,
            reason: format!(
                "{text:?} is not a usable length of time; give seconds or a number with s, m, h or d (e.g. 90, 10m, 4h){}",
                if zero_ok { ", or 0" } else { "" }
            ),
        }),
    }
}

/// How errors name a JSON webhook URL.
const WEBHOOK_JSON_WHAT: &str = "JSON webhook URL (--webhook-json or PROCJON_WEBHOOK_JSON)";

/// A repeatable flag's values, else its variable's comma-separated ones.
fn listed(flag: &[String], var: &str, env: Env<'_>) -> Vec<String> {
    let values: Vec<String> = if flag.is_empty() {
        env(var)
            .unwrap_or_default()
            .split(',')
            .map(str::to_string)
            .collect()
    } else {
        flag.to_vec()
    };
    values
        .into_iter()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

/// `--route OWNER=URL|off` (or `PROCJON_ROUTES`): one per owner.
fn routes(args: &Args, env: Env<'_>) -> Result<Vec<Route>, ConfigError> {
    let mut routes: Vec<Route> = Vec::new();
    for entry in listed(&args.route, ROUTES_ENV, env) {
        let bad = |reason: String| ConfigError::BadFlag {
            flag: "--route",
            reason,
        };
        // Not the entry itself in errors: its URL is a secret.
        let Some((owner, to)) = entry.split_once('=') else {
            return Err(bad(
                "an entry has no \"=\"; give OWNER=URL or OWNER=off (OWNER is the certificate identity that owns the services)".into(),
            ));
        };
        let owner = owner.trim();
        if owner.is_empty() {
            return Err(bad(
                "an entry has no OWNER before \"=\"; give OWNER=URL or OWNER=off".into(),
            ));
        }
        if routes.iter().any(|r| r.owner == owner) {
            return Err(bad(format!(
                "{owner:?} is routed twice; give one route per owner"
            )));
        }
        let to = match to.trim() {
            off if off.eq_ignore_ascii_case("off") => None,
            url => Some(
                SecretUrl::parse(url)
                    .map_err(|reason| bad(format!("the URL for {owner:?}: {reason}")))?,
            ),
        };
        routes.push(Route {
            owner: owner.to_string(),
            to,
        });
    }
    Ok(routes)
}

/// The `--alertmanager*` settings; none without a URL.
fn alertmanager(
    args: &Args,
    env: Env<'_>,
    timeout: Duration,
) -> Result<Option<AlertmanagerConfig>, ConfigError> {
    let urls = listed(&args.alertmanager, ALERTMANAGER_ENV, env);
    let extras = !args.alertmanager_label.is_empty() || args.alertmanager_watchdog;
    if urls.is_empty() {
        if extras {
            return Err(ConfigError::BadFlag {
                flag: "--alertmanager",
                reason: "--alertmanager-label and --alertmanager-watchdog need at least one --alertmanager URL".into(),
            });
        }
        return Ok(None);
    }
    let mut peers = Vec::new();
    for url in &urls {
        let url = secret_url(url, ALERTMANAGER_WHAT)?;
        let endpoint = alerts_endpoint(&url);
        if peers.contains(&endpoint) {
            return Err(ConfigError::BadFlag {
                flag: "--alertmanager",
                reason: format!("{url} is given twice; give each peer once"),
            });
        }
        peers.push(endpoint);
    }
    let mut labels: Vec<(String, String)> = Vec::new();
    for entry in &args.alertmanager_label {
        let (name, value) = label(entry)?;
        if labels.iter().any(|(n, _)| *n == name) {
            return Err(ConfigError::BadFlag {
                flag: "--alertmanager-label",
                reason: format!("label {name:?} is given twice"),
            });
        }
        labels.push((name, value));
    }
    let resend = duration_flag("--alertmanager-resend", &args.alertmanager_resend, false)?;
    if resend < Duration::from_secs(1) {
        return Err(ConfigError::BadFlag {
            flag: "--alertmanager-resend",
            reason: format!(
                "{:?} is too short; give at least 1s",
                args.alertmanager_resend
            ),
        });
    }
    Ok(Some(AlertmanagerConfig {
        peers,
        labels,
        resend,
        watchdog: args.alertmanager_watchdog,
        timeout,
        host: crate::alertmanager::host_name(),
    }))
}

/// How errors name an Alertmanager URL.
const ALERTMANAGER_WHAT: &str = "Alertmanager URL (--alertmanager or PROCJON_ALERTMANAGER)";

/// One `--alertmanager-label NAME=VALUE`, checked as Prometheus checks
/// label names.
fn label(entry: &str) -> Result<(String, String), ConfigError> {
    let bad = |reason: String| ConfigError::BadFlag {
        flag: "--alertmanager-label",
        reason,
    };
    let Some((name, value)) = entry.split_once('=') else {
        return Err(bad(format!(
            "{entry:?} has no \"=\"; give NAME=VALUE, e.g. team=web"
        )));
    };
    let (name, value) = (name.trim(), value.trim());
    let name_ok = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__");
    if !name_ok {
        return Err(bad(format!(
            "{name:?} is not a label name; use letters, digits and _, not starting with a digit or __"
        )));
    }
    if crate::alertmanager::OWN_LABELS.contains(&name) {
        return Err(bad(format!(
            "{name:?} is set by procjon itself (alertname, service, owner, status); pick another name"
        )));
    }
    if value.is_empty() {
        return Err(bad(format!("label {name:?} has no value")));
    }
    Ok((name.to_string(), value.to_string()))
}

/// The heartbeat, stop and stall settings.
fn liveness(args: &Args, env: Env<'_>) -> Result<Liveness, ConfigError> {
    let heartbeat_url = args
        .heartbeat_url
        .clone()
        .or_else(|| env(HEARTBEAT_ENV))
        .filter(|url| !url.trim().is_empty())
        .map(|url| secret_url(&url, HEARTBEAT_WHAT))
        .transpose()?;
    let heartbeat_interval = seconds("--heartbeat-interval", args.heartbeat_interval, false)?;
    let announce_downtime_after = match args.announce_downtime_after {
        Some(s) => seconds("--announce-downtime-after", s, true)?,
        None => (heartbeat_interval * 2).max(Duration::from_secs(60)),
    };
    Ok(Liveness {
        heartbeat_url,
        heartbeat_interval,
        heartbeat_fail_after: seconds("--heartbeat-fail-after", args.heartbeat_fail_after, true)?,
        announce_downtime_after,
        stop_timeout: seconds("--stop-timeout", args.stop_timeout, true)?,
        stall_after: seconds("--stall-after", args.stall_after, false)?,
    })
}

/// A secret URL from a flag or variable that `what` names in the error.
fn secret_url(url: &str, what: &'static str) -> Result<SecretUrl, ConfigError> {
    SecretUrl::parse(url).map_err(|reason| ConfigError::BadUrl {
        what,
        reason: reason.into(),
    })
}

fn path_setting(flag_value: &Option<PathBuf>, flag: &str, env: Env<'_>) -> PathBuf {
    match flag_value {
        Some(path) => path.clone(),
        None => PathBuf::from(setting(None, flag, env)),
    }
}

fn at_least_one(flag: &'static str, value: u64) -> Result<u64, ConfigError> {
    if value == 0 {
        return Err(ConfigError::BadFlag {
            flag,
            reason: "0 would refuse everything; give at least 1".into(),
        });
    }
    Ok(value)
}

/// `--http`: `off` turns the endpoint off; anything else must look like
/// `HOST:PORT` (whether it resolves and binds is found out at start-up).
fn http_address(addr: &str) -> Result<Option<String>, ConfigError> {
    let addr = addr.trim();
    if addr.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let port_ok = addr
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !port_ok {
        return Err(ConfigError::BadFlag {
            flag: "--http",
            reason: format!(
                "{addr:?} is not an address; give HOST:PORT (e.g. {DEFAULT_HTTP} or [::1]:9090), or off"
            ),
        });
    }
    Ok(Some(addr.to_string()))
}

/// A flag's seconds as a duration: finite, not negative, at most a day; zero only when allowed.
fn seconds(flag: &'static str, value: f64, zero_ok: bool) -> Result<Duration, ConfigError> {
    let ok = (0.0..=86_400.0).contains(&value) && (zero_ok || value > 0.0);
    if !ok {
        let range = if zero_ok {
            "0 to 86400"
        } else {
            "above 0 and at most 86400"
        };
        return Err(ConfigError::BadFlag {
            flag,
            reason: format!("{value} is not a usable number of seconds; give {range}"),
        });
    }
    Ok(Duration::from_secs_f64(value))
}

/// `procjon check-state PATH`: replays the file without changing it.
fn check_state(path: &std::path::Path) -> Result<(), ConfigError> {
    let replay = store::replay(path)?;
    let state = &replay.state;
    let mut counts = [0usize; 3];
    for service in state.services.values() {
        counts[Availability::of(service) as usize] += 1;
    }
    println!(
        "state file {} is valid: {} services ({} available, {} not available, {} unknown), \
         {} notifications pending, {} lines (compacted: {})",
        path.display(),
        state.services.len(),
        counts[Availability::Available as usize],
        counts[Availability::NotAvailable as usize],
        counts[Availability::Unknown as usize],
        state.outbox.len(),
        state.lines,
        state.live_lines()
    );
    if let Some(line) = replay.torn_line {
        println!(
            "line {line} is incomplete (procjon stopped while writing it); procjon drops it at start-up"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn environment_fills_in_what_flags_leave_out() {
        let env = |var: &str| match var {
            "PROCJON_ENDPOINT" => Some("0.0.0.0:7000".to_string()),
            "PROCJON_STATE" => Some("/var/lib/procjon/state.jsonl".to_string()),
            "PROCJON_HTTP" => Some("off".to_string()),
            "PROCJON_CERT" => Some("/etc/procjon/procjon.pem".to_string()),
            "PROCJON_KEY_CERT" => Some(" ".to_string()),
            _ => None,
        };
        let from_env = config(&parse(&[]), &env).unwrap();
        assert_eq!(from_env.endpoint, "0.0.0.0:7000");
        assert_eq!(
            from_env.state,
            PathBuf::from("/var/lib/procjon/state.jsonl")
        );
        assert_eq!(from_env.http, None);
        assert_eq!(from_env.cert, PathBuf::from("/etc/procjon/procjon.pem"));
        assert_eq!(
            from_env.key,
            PathBuf::from(".certs/procjon.key"),
            "blank counts as unset"
        );
        let flags_win = config(&parse(&["-e", "127.0.0.1:1", "--state", "x.jsonl"]), &env).unwrap();
        assert_eq!(flags_win.endpoint, "127.0.0.1:1");
        assert_eq!(flags_win.state, PathBuf::from("x.jsonl"));
    }

    fn parse(args: &[&str]) -> Args {
        Args::from_args(&["procjon"], args).unwrap()
    }

    #[test]
    fn defaults_mirror_the_original() {
        let args = parse(&[]);
        let config = config(&args, &no_env).unwrap();
        assert_eq!(config.endpoint, "localhost:8080");
        assert_eq!(config.root_cert, PathBuf::from(".certs/ca.pem"));
        assert_eq!(config.cert, PathBuf::from(".certs/procjon.pem"));
        assert_eq!(config.key, PathBuf::from(".certs/procjon.key"));
        assert_eq!(config.state, PathBuf::from("procjon-state.jsonl"));
        assert_eq!(config.sink, Sink::Stdout);
        assert_eq!(config.notify.interval, Duration::from_secs(1));
        assert_eq!(config.http.as_deref(), Some("127.0.0.1:9090"));
    }

    #[test]
    fn http_address_can_be_turned_off_and_must_have_a_port() {
        assert_eq!(
            config(&parse(&["--http", "off"]), &no_env).unwrap().http,
            None
        );
        let any = config(&parse(&["--http", "[::]:0"]), &no_env).unwrap();
        assert_eq!(any.http.as_deref(), Some("[::]:0"));
        for bad in ["9090", "localhost", ":9090", "host:port", "host:70000"] {
            let err = config(&parse(&["--http", bad]), &no_env)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("--http: ") && err.contains(bad), "{err}");
        }
    }

    #[test]
    fn status_takes_its_own_http_flag() {
        let args = parse(&["status", "--http", "10.0.0.1:1"]);
        assert!(
            matches!(args.command, Some(Command::Status(ref s)) if s.http.as_deref() == Some("10.0.0.1:1"))
        );
        let args = parse(&["status"]);
        assert!(matches!(args.command, Some(Command::Status(ref s)) if s.http.is_none()));
    }

    #[test]
    fn webhook_comes_from_flag_or_environment() {
        let env = |var: &str| (var == WEBHOOK_ENV).then(|| "https://env.example/x".to_string());
        let from_env = config(&parse(&[]), &env).unwrap();
        assert!(matches!(from_env.sink, Sink::Slack(ref u) if u.host() == "env.example"));
        let from_flag =
            config(&parse(&["--slack-webhook", "https://flag.example/y"]), &env).unwrap();
        assert!(matches!(from_flag.sink, Sink::Slack(ref u) if u.host() == "flag.example"));
        let empty = config(&parse(&[]), &|_: &str| Some(String::new())).unwrap();
        assert_eq!(empty.sink, Sink::Stdout);
        assert!(config(&parse(&["--slack-webhook", "nope"]), &no_env).is_err());
    }

    #[test]
    fn refuses_unusable_seconds() {
        assert!(config(&parse(&["--slack-interval", "0"]), &no_env).is_ok());
        for bad in [
            ["--slack-interval", "-1"],
            ["--slack-backoff", "0"],
            ["--handshake-timeout", "NaN"],
        ] {
            let err = config(&parse(&bad), &no_env).unwrap_err().to_string();
            assert!(err.starts_with(bad[0]), "{err}");
        }
    }

    #[test]
    fn short_flags_work() {
        let args = parse(&[
            "-e",
            "0.0.0.0:1",
            "-c",
            "a.pem",
            "-k",
            "a.key",
            "-l",
            "debug",
        ]);
        assert_eq!(args.endpoint.as_deref(), Some("0.0.0.0:1"));
        assert_eq!(args.cert, Some(PathBuf::from("a.pem")));
        assert_eq!(args.key_cert, Some(PathBuf::from("a.key")));
        assert_eq!(args.log_level.as_deref(), Some("debug"));
    }
}
