//! The `procjonagent` command line: raw flags as argh parses them, validated
//! into [`Options`] and an agent, and [`run`], the only place that prints
//! errors and picks exit codes (2: a problem the user must fix).

use crate::agent::Agent;
use crate::elasticsearch::{self, Elasticsearch};
use crate::endpoint;
use crate::error::AgentError;
use crate::exec::{Exec, NAGIOS_STATUSES};
use crate::job::{self, JOB_STATUSES, Job};
use crate::options::Options;
use crate::ping::Ping;
use crate::process::Process;
use crate::silence::{Answer, Silence};
use crate::systemd::Systemd;
use argh::FromArgs;
use procjon::Signal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::Receiver;
use std::time::Duration;

/// Settings an operator may give as environment variables (e.g. in a
/// systemd unit's environment file) instead of flags: (flag, variable,
/// default). A flag wins over its variable; an empty variable counts as
/// unset. The prefix is `PROCJONAGENT_`, not the daemon's `PROCJON_`, so
/// that a shell or host that configures both never hands the agent the
/// server's certificate or listen address.
pub const ENVIRONMENT: [(&str, &str, &str); 6] = [
    ("--service", SERVICE_ENV, "the host name"),
    ("--endpoint", "PROCJONAGENT_ENDPOINT", "localhost:8080"),
    ("--root-cert", "PROCJONAGENT_ROOT_CERT", ".certs/ca.pem"),
    ("--cert", "PROCJONAGENT_CERT", ".certs/procjonagent.pem"),
    (
        "--key-cert",
        "PROCJONAGENT_KEY_CERT",
        ".certs/procjonagent.key",
    ),
    ("--log-level", LOG_LEVEL_ENV, "info"),
];

/// Environment variable for `--service` (its default is computed: the host name).
pub const SERVICE_ENV: &str = "PROCJONAGENT_SERVICE";
/// Environment variable for `--log-level`.
pub const LOG_LEVEL_ENV: &str = "PROCJONAGENT_LOG_LEVEL";

#[derive(FromArgs, Debug)]
/// procjonagent reports a service's status to procjon over mutual TLS every
/// period, until stopped. It reconnects by itself when procjon restarts.
/// The common flags may come before or after the agent's name. silence and
/// unsilence are not agents: they ask procjon once and exit.
pub struct Args {
    /// service id (default $PROCJONAGENT_SERVICE, else the host name)
    #[argh(option, short = 's')]
    pub service: Option<String>,
    /// seconds without a ping after which procjon says the service is not available (default 10)
    #[argh(option, short = 't', default = "10.0")]
    pub timeout: f64,
    /// seconds between two checks and pings; must be below the timeout (default 4)
    #[argh(option, short = 'p', default = "4.0")]
    pub period: f64,
    /// procjon's address, host:port; several separated by commas (an HA pair), each reported to on its own (default $PROCJONAGENT_ENDPOINT, else localhost:8080)
    #[argh(option, short = 'e')]
    pub endpoint: Option<String>,
    /// CA certificate procjon's certificate must chain to (default $PROCJONAGENT_ROOT_CERT, else .certs/ca.pem)
    #[argh(option)]
    pub root_cert: Option<PathBuf>,
    /// agent certificate chain, PEM (default $PROCJONAGENT_CERT, else .certs/procjonagent.pem)
    #[argh(option, short = 'c')]
    pub cert: Option<PathBuf>,
    /// agent private key, PEM (default $PROCJONAGENT_KEY_CERT, else .certs/procjonagent.key)
    #[argh(option, short = 'k')]
    pub key_cert: Option<PathBuf>,
    /// log level: error, warn, info, debug or trace (default $PROCJONAGENT_LOG_LEVEL, else info; overrides RUST_LOG)
    #[argh(option, short = 'l')]
    pub log_level: Option<String>,
    /// print the version and exit
    #[argh(switch)]
    pub version: bool,
    #[argh(subcommand)]
    /// the agent to run, or silence or unsilence
    pub command: Option<Command>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
/// The agents, and the one-shot commands `silence` and `unsilence`.
pub enum Command {
    /// `ping`.
    Ping(PingArgs),
    /// `systemd --unit NAME`.
    Systemd(SystemdArgs),
    /// `elasticsearch [--host URL] [--user NAME] [--ca PATH]`.
    Elasticsearch(ElasticsearchArgs),
    /// `exec [--statuses LIST] -- CMD ARGS...`.
    Exec(ExecArgs),
    /// `process (--pidfile PATH | --name NAME | --pid N)`.
    Process(ProcessArgs),
    /// `run [--statuses LIST] [--keep] [--final-timeout S] -- CMD ARGS...`.
    Run(RunArgs),
    /// `silence --for LENGTH [--reason TEXT] [SERVICE]`: not an agent.
    Silence(SilenceArgs),
    /// `unsilence [SERVICE]`: not an agent.
    Unsilence(UnsilenceArgs),
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "ping")]
/// Report that this host is up: one status, ok.
pub struct PingArgs {}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "systemd")]
/// Report a systemd unit's ActiveState: active, reloading, inactive, failed,
/// activating, deactivating or unknown (systemctl failed).
pub struct SystemdArgs {
    /// the unit, e.g. nginx.service
    #[argh(option)]
    pub unit: String,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "elasticsearch")]
/// Report an Elasticsearch cluster's health: green, yellow, red or unknown
/// (no answer within the period, an HTTP error or an unexpected body). The
/// basic-auth password is read from PROCJON_ES_PASSWORD.
pub struct ElasticsearchArgs {
    /// the cluster's URL (default http://localhost:9200)
    #[argh(option, default = "String::from(\"http://localhost:9200\")")]
    pub host: String,
    /// basic-auth user name; the password comes from $PROCJON_ES_PASSWORD
    #[argh(option)]
    pub user: Option<String>,
    /// CA certificate of an https:// cluster (default: the public web roots)
    #[argh(option)]
    pub ca: Option<PathBuf>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "exec")]
/// Run a command every period and report its exit code as the status: 0 ok,
/// 1 warning, 2 critical, 3 unknown (Nagios plugins work unchanged). A code
/// past the list, a signal or still running at the end of the period
/// reports the last status.
pub struct ExecArgs {
    /// comma-separated status names, indexed by exit code (default ok,warning,critical,unknown)
    #[argh(option)]
    pub statuses: Option<String>,
    /// the command and its arguments (put -- before them)
    #[argh(positional, greedy)]
    pub command: Vec<String>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "run")]
/// Start a command as a child (a soak test, a migration, a backup) and
/// report it while it runs: running, then succeeded (exit 0) or failed, with
/// how it ended (exit 3 after 12m, killed by signal 9 after 2h); then
/// unregister the service with that as the reason and exit with the child's
/// exit code (128 + the signal that killed it). SIGINT, SIGTERM and SIGHUP
/// are passed on to the child. procjon being down never changes the exit
/// code: the last report is retried for --final-timeout.
pub struct RunArgs {
    /// comma-separated names for running, succeeded and failed (default running,succeeded,failed)
    #[argh(option)]
    pub statuses: Option<String>,
    /// keep the service registered when the command ends (procjon then reports it not available after the timeout)
    #[argh(switch)]
    pub keep: bool,
    /// seconds to keep trying to tell procjon how the command ended while it can't be reached (default 600)
    #[argh(option, default = "600.0")]
    pub final_timeout: f64,
    /// the command and its arguments (put -- before them)
    #[argh(positional, greedy)]
    pub command: Vec<String>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "process")]
/// Report whether a process this agent doesn't own runs: running, not
/// running, or restarted (a new pid under the same pidfile or name since the
/// last check; reported once, then running). Found through /proc by exactly
/// one of --pidfile, --name and --pid.
pub struct ProcessArgs {
    /// the file holding the process's pid, read every check, e.g. /run/nginx.pid
    #[argh(option)]
    pub pidfile: Option<PathBuf>,
    /// the process's name exactly as /proc/PID/comm (ps -o comm) shows it, at most 15 bytes; the oldest of several
    #[argh(option)]
    pub name: Option<String>,
    /// the process id; once it is gone the status stays not running
    #[argh(option)]
    pub pid: Option<u32>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "silence")]
/// Not an agent: ask procjon once to hold back a service's notifications
/// for a while (a deploy, maintenance), then exit. procjon posts who
/// silenced it and why, records its events without posting them, and says
/// when the silence ends. Tries to reach procjon for about 10 s, no more.
/// Exit code 0: silenced; 2: a bad flag or a final refusal (forbidden,
/// not_registered); 1: procjon could not be reached. With several
/// endpoints, asks them all and prints a line for each: 0 if at least one
/// silenced it; else 1 if retrying might help one, 2 if not.
pub struct SilenceArgs {
    /// how long: seconds, or a number with s, m, h or d (90, 10m, 1.5h, 7d); at most 7d
    #[argh(option, long = "for")]
    pub length: Option<String>,
    /// why, for people (e.g. deploy): shown in procjon's post; at most 256 characters
    #[argh(option)]
    pub reason: Option<String>,
    /// the service id (default: -s, else the host name), or * for every service of this certificate's identity
    #[argh(positional, arg_name = "SERVICE")]
    pub service: Option<String>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "unsilence")]
/// Not an agent: ask procjon once to end a service's silence now, then
/// exit. procjon posts that the silence ended, and the service's current
/// state if it changed meanwhile. Exit codes as for silence.
pub struct UnsilenceArgs {
    /// the service id (default: -s, else the host name), or * for every service of this certificate's identity
    #[argh(positional, arg_name = "SERVICE")]
    pub service: Option<String>,
}

/// The common flags that take a value, which may follow the agent's name.
const COMMON_OPTIONS: [&str; 15] = [
    "-s",
    "--service",
    "-t",
    "--timeout",
    "-p",
    "--period",
    "-e",
    "--endpoint",
    "--root-cert",
    "-c",
    "--cert",
    "-k",
    "--key-cert",
    "-l",
    "--log-level",
];
/// The subcommands' own flags that take a value.
const AGENT_OPTIONS: [&str; 11] = [
    "--for",
    "--reason",
    "--final-timeout",
    "--unit",
    "--host",
    "--user",
    "--ca",
    "--statuses",
    "--pidfile",
    "--name",
    "--pid",
];
/// The subcommands' names: the agents, then the one-shot commands.
const AGENTS: [&str; 8] = [
    "ping",
    "systemd",
    "elasticsearch",
    "exec",
    "process",
    "run",
    "silence",
    "unsilence",
];
/// The one-shot commands: their only positional argument is SERVICE, so
/// common flags may follow it too.
const ONE_SHOTS: [&str; 2] = ["silence", "unsilence"];

fn is_common(arg: &str) -> bool {
    COMMON_OPTIONS.contains(&arg)
}

/// Parses the process's arguments. `Err` carries the exit code after argh
/// has printed help (0) or a usage error (2).
pub fn parse_env() -> Result<Args, ExitCode> {
    let mut raw = Vec::new();
    for arg in std::env::args_os() {
        match arg.into_string() {
            Ok(arg) => raw.push(arg),
            Err(arg) => {
                eprintln!("procjonagent: argument {arg:?} is not valid UTF-8");
                return Err(ExitCode::from(2));
            }
        }
    }
    let (name, rest) = match raw.split_first() {
        Some((name, rest)) => (name.clone(), rest.to_vec()),
        None => ("procjonagent".to_string(), Vec::new()),
    };
    parse(&name, hoist_common_flags(rest))
}

fn parse(name: &str, args: Vec<String>) -> Result<Args, ExitCode> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Args::from_args(&[name], &args).map_err(|exit| {
        if exit.status.is_ok() {
            print!("{}", exit.output);
            ExitCode::SUCCESS
        } else {
            let command = name.rsplit('/').next().unwrap_or(name);
            eprintln!(
                "{command}: {}; see {command} --help",
                exit.output.trim_end().trim_end_matches('.')
            );
            ExitCode::from(2)
        }
    })
}

/// Moves common flags found after the agent's name in front of it, so that
/// `procjonagent ping -l debug` works like the original's
/// `procjonagent -l debug ping`. Stops at `--` and at the first positional
/// argument (an `exec` command, whose flags are its own), except after
/// `silence` and `unsilence`, whose positional is the SERVICE.
pub fn hoist_common_flags(args: Vec<String>) -> Vec<String> {
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        if AGENTS.contains(&arg) {
            break;
        }
        i += if is_common(arg) { 2 } else { 1 };
    }
    if i >= args.len() {
        return args;
    }
    let one_shot = ONE_SHOTS.contains(&args[i].as_str());
    let (mut front, mut back) = (args[..i].to_vec(), vec![args[i].clone()]);
    let mut rest = args[i + 1..].iter();
    while let Some(arg) = rest.next() {
        if arg == "--" || (!arg.starts_with('-') && !one_shot) {
            back.push(arg.clone());
            back.extend(rest.cloned());
            break;
        }
        if !arg.starts_with('-') {
            back.push(arg.clone()); // a one-shot command's SERVICE
            continue;
        }
        let target = if is_common(arg) {
            &mut front
        } else {
            &mut back
        };
        target.push(arg.clone());
        let takes_value = is_common(arg) || AGENT_OPTIONS.contains(&arg.as_str());
        if takes_value && let Some(value) = rest.next() {
            target.push(value.clone());
        }
    }
    front.extend(back);
    front
}

/// Runs what the arguments ask for and returns the process exit code. Runs
/// until killed unless the configuration is unusable or procjon refuses the
/// service for good; `run` until its child exits; `silence` and `unsilence`
/// once (see `one_shot`). `signals` carries the
/// signals the binary takes for `run` (see [`Args::takes_signals`]), which
/// are passed on to its child.
pub fn run(args: Args, signals: Receiver<Signal>) -> ExitCode {
    if args.version {
        println!(
            "{}",
            procjon::version_of("procjonagent", env!("CARGO_PKG_VERSION"))
        );
        return ExitCode::SUCCESS;
    }
    let options = match options(&args, &procjon::process_env) {
        Ok(options) => options,
        Err(err) => return failed(err),
    };
    let result = match &args.command {
        None => Err(AgentError::BadOption {
            option: "agent",
            reason: "choose one: ping, systemd, elasticsearch, exec, process, run, silence or \
                     unsilence (see --help)"
                .into(),
        }),
        Some(Command::Ping(_)) => start(Ping, &options),
        Some(Command::Systemd(a)) => {
            Systemd::new(&a.unit, options.period).and_then(|agent| start(agent, &options))
        }
        Some(Command::Elasticsearch(a)) => {
            elasticsearch(a, options.period).and_then(|agent| start(agent, &options))
        }
        Some(Command::Exec(a)) => exec(a, options.period).and_then(|agent| start(agent, &options)),
        Some(Command::Process(a)) => process(a).and_then(|agent| start(agent, &options)),
        Some(Command::Run(a)) => {
            return match run_job(a, options, signals) {
                Ok(code) => ExitCode::from(code),
                Err(err) => failed(err),
            };
        }
        // Not agents: they neither register nor go through `start`.
        Some(Command::Silence(a)) => {
            let (length, reason) = (a.length.as_deref(), a.reason.as_deref());
            return one_shot(Silence::begin(
                length,
                reason,
                a.service.as_deref(),
                &options,
            ));
        }
        Some(Command::Unsilence(a)) => {
            return one_shot(Silence::end(a.service.as_deref(), &options));
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => failed(err),
    }
}

/// Prints the error that stopped the agent and picks its exit code: 1 for
/// the agent's own failures, 2 for what the user must fix.
fn failed(err: AgentError) -> ExitCode {
    eprintln!("procjonagent: {err}");
    match err {
        AgentError::Thread { .. } | AgentError::CheckStopped | AgentError::Finished => {
            ExitCode::from(1)
        }
        _ => ExitCode::from(2),
    }
}

/// `silence` and `unsilence`: one frame, one reply per endpoint, no agent
/// behind them. Prints a line per endpoint: what it accepted on standard
/// output (`procjon at ENDPOINT: ` first when there are several), or the
/// error on standard error. Exit code 0 when at least one accepted; else 1
/// when trying again might help (a procjon could not be reached in time,
/// or refused for now: `busy`, `internal`), 2 when only the user can (a
/// flag, a file, final refusals from every procjon).
fn one_shot(checked: Result<Silence, AgentError>) -> ExitCode {
    let silence = match checked {
        Ok(silence) => silence,
        Err(err) => return failed(err),
    };
    let answers = silence.send();
    let several = answers.len() > 1;
    let (mut accepted, mut retry_may_help) = (false, false);
    for Answer { endpoint, result } in answers {
        match result {
            Ok(done) => {
                accepted = true;
                if several {
                    println!("procjon at {endpoint}: {done}");
                } else {
                    println!("{done}");
                }
            }
            Err(err) => {
                eprintln!("procjonagent: {err}");
                retry_may_help |= !err.is_final();
            }
        }
    }
    match (accepted, retry_may_help) {
        (true, _) => ExitCode::SUCCESS,
        (false, true) => ExitCode::from(1),
        (false, false) => ExitCode::from(2),
    }
}

impl Args {
    /// Whether the agent takes SIGINT, SIGTERM and SIGHUP itself (to pass
    /// them on to `run`'s child) rather than leaving them their default.
    pub fn takes_signals(&self) -> bool {
        matches!(self.command, Some(Command::Run(_)))
    }
}

/// `run`: checks everything, starts the child, passes signals on to it,
/// reports it until it exits, and returns its exit code. A refusal from
/// procjon that retrying can't fix is logged, and the child left to finish:
/// monitoring must never cut a three-day job short.
fn run_job(
    args: &RunArgs,
    mut options: Options,
    signals: Receiver<Signal>,
) -> Result<u8, AgentError> {
    options.final_timeout = Duration::try_from_secs_f64(args.final_timeout)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| AgentError::BadOption {
            option: "--final-timeout",
            reason: format!(
                "{} is not a usable number of seconds; give a number above 0",
                args.final_timeout
            ),
        })?;
    let statuses = match &args.statuses {
        Some(list) => list.split(',').map(|s| s.trim().to_string()).collect(),
        None => JOB_STATUSES.map(String::from).to_vec(),
    };
    let command = match args.command.split_first() {
        Some((dashes, rest)) if dashes == "--" => rest,
        _ => &args.command[..],
    };
    let mut job = Job::new(command, statuses, args.keep)?;
    crate::validate(&job, &options)?;
    let handle = job.start()?;
    let forwarding = handle.clone();
    let _ = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals {
                forwarding.signal(signal);
            }
        });
    match crate::run_to_end(job, &options) {
        Ok(ended) if !ended.delivered => log::error!(
            "not every procjon heard how the command ended (see above); those that didn't will \
             report the service as not available"
        ),
        Ok(_) => {}
        Err(err) => log::error!(
            "{err}; the command goes on, and procjonagent exits with its exit code when it ends"
        ),
    }
    let status = handle.wait();
    Ok(job::exit_code(status))
}

fn start(agent: impl Agent, options: &Options) -> Result<(), AgentError> {
    let Err(err) = crate::run(agent, options);
    Err(err)
}

/// Validates the common flags, with the [`ENVIRONMENT`] variables `env`
/// gives for those left out, into [`Options`].
pub fn options(args: &Args, env: &dyn Fn(&str) -> Option<String>) -> Result<Options, AgentError> {
    let service = match args.service.clone().or_else(|| set(env, SERVICE_ENV)) {
        Some(service) => service,
        None => host_name().ok_or_else(|| AgentError::BadOption {
            option: "--service",
            reason: format!(
                "the host name could not be read; give the service id with -s or {SERVICE_ENV}"
            ),
        })?,
    };
    let path = |value: &Option<PathBuf>, flag: &str| match value {
        Some(path) => path.clone(),
        None => PathBuf::from(setting(None, flag, env)),
    };
    Ok(Options {
        service,
        timeout: seconds("--timeout", args.timeout)?,
        period: seconds("--period", args.period)?,
        endpoints: endpoint::split_list(&setting(args.endpoint.as_deref(), "--endpoint", env)),
        root_cert: path(&args.root_cert, "--root-cert"),
        cert: path(&args.cert, "--cert"),
        key: path(&args.key_cert, "--key-cert"),
        final_timeout: Duration::from_secs(600),
    })
}

/// The log level: `-l`, else `$PROCJONAGENT_LOG_LEVEL`, else none (info,
/// or what `RUST_LOG` says).
pub fn log_level(args: &Args, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    args.log_level.clone().or_else(|| set(env, LOG_LEVEL_ENV))
}

/// A setting from its flag, else its variable in [`ENVIRONMENT`], else its default.
fn setting(flag_value: Option<&str>, flag: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    procjon::setting_from(&ENVIRONMENT, flag_value, flag, env)
}

/// An environment variable that is set and not blank.
fn set(env: &dyn Fn(&str) -> Option<String>, var: &str) -> Option<String> {
    env(var).filter(|value| !value.trim().is_empty())
}

fn seconds(option: &'static str, value: f64) -> Result<Duration, AgentError> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| AgentError::BadOption {
            option,
            reason: format!("{value} is not a usable number of seconds; give a number above 0"),
        })
}

fn elasticsearch(
    args: &ElasticsearchArgs,
    deadline: Duration,
) -> Result<Elasticsearch, AgentError> {
    let password = std::env::var(elasticsearch::PASSWORD_ENV).ok();
    let credentials = match (&args.user, &password) {
        (Some(user), Some(password)) => Some((user.as_str(), password.as_str())),
        (Some(_), None) => {
            return Err(AgentError::BadOption {
                option: "--user",
                reason: format!(
                    "the password is read from the environment variable {}, which is not set",
                    elasticsearch::PASSWORD_ENV
                ),
            });
        }
        (None, _) => None,
    };
    Elasticsearch::new(&args.host, credentials, args.ca.as_deref(), deadline)
}

fn exec(args: &ExecArgs, deadline: Duration) -> Result<Exec, AgentError> {
    let statuses = match &args.statuses {
        Some(list) => list.split(',').map(|s| s.trim().to_string()).collect(),
        None => NAGIOS_STATUSES.map(String::from).to_vec(),
    };
    let command = match args.command.split_first() {
        Some((dashes, rest)) if dashes == "--" => rest,
        _ => &args.command[..],
    };
    Exec::new(command, statuses, deadline)
}

fn process(args: &ProcessArgs) -> Result<Process, AgentError> {
    match (&args.pidfile, &args.name, args.pid) {
        (Some(path), None, None) => Process::pidfile(path),
        (None, Some(name), None) => Process::name(name),
        (None, None, Some(pid)) => Process::pid(pid),
        _ => {
            let given: Vec<&str> = [
                ("--pidfile", args.pidfile.is_some()),
                ("--name", args.name.is_some()),
                ("--pid", args.pid.is_some()),
            ]
            .into_iter()
            .filter_map(|(flag, set)| set.then_some(flag))
            .collect();
            let got = match given.as_slice() {
                [] => "none was given".to_string(),
                flags => format!("got {}", flags.join(" and ")),
            };
            Err(AgentError::BadOption {
                option: "process",
                reason: format!(
                    "give exactly one of --pidfile PATH, --name NAME and --pid N; {got}"
                ),
            })
        }
    }
}

/// The host name, from the kernel (Linux) or `/etc/hostname`.
fn host_name() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|name| name.trim().to_string())
        .find(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn environment_fills_in_what_flags_leave_out() {
        let env = |var: &str| {
            let value = match var {
                "PROCJONAGENT_SERVICE" => "web-1/nginx",
                "PROCJONAGENT_ENDPOINT" => "monitor.example.com:8080",
                "PROCJONAGENT_ROOT_CERT" => "/etc/procjon/ca.pem",
                "PROCJONAGENT_CERT" => "/etc/procjon/web-1.pem",
                "PROCJONAGENT_KEY_CERT" => " ",
                "PROCJONAGENT_LOG_LEVEL" => "debug",
                // The daemon's variables are not the agent's.
                "PROCJON_CERT" => "/etc/procjon/procjon.pem",
                _ => return None,
            };
            Some(value.to_string())
        };
        let args = parse_ok(&["ping"]);
        let from_env = options(&args, &env).unwrap();
        assert_eq!(from_env.service, "web-1/nginx");
        assert_eq!(from_env.endpoints, ["monitor.example.com:8080"]);
        assert_eq!(from_env.root_cert, PathBuf::from("/etc/procjon/ca.pem"));
        assert_eq!(from_env.cert, PathBuf::from("/etc/procjon/web-1.pem"));
        assert_eq!(
            from_env.key,
            PathBuf::from(".certs/procjonagent.key"),
            "blank counts as unset"
        );
        assert_eq!(log_level(&args, &env).as_deref(), Some("debug"));

        let flags = parse_ok(&[
            "ping",
            "-s",
            "db",
            "-e",
            "h:1",
            "--root-cert",
            "a",
            "-c",
            "b",
            "-k",
            "c",
            "-l",
            "warn",
        ]);
        let flags_win = options(&flags, &env).unwrap();
        assert_eq!(flags_win.service, "db");
        assert_eq!(flags_win.endpoints, ["h:1"]);
        assert_eq!(
            (flags_win.root_cert, flags_win.cert, flags_win.key),
            (PathBuf::from("a"), PathBuf::from("b"), PathBuf::from("c"))
        );
        assert_eq!(log_level(&flags, &env).as_deref(), Some("warn"));
        assert_eq!(log_level(&parse_ok(&["ping"]), &no_env), None);
    }

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    fn parse_ok(args: &[&str]) -> Args {
        parse("procjonagent", hoist_common_flags(strings(args))).unwrap()
    }

    #[test]
    fn defaults_mirror_the_original() {
        let args = parse_ok(&["-s", "web-1", "ping"]);
        let options = options(&args, &no_env).unwrap();
        let mut expected = Options::new("web-1");
        expected.timeout = Duration::from_secs(10);
        expected.period = Duration::from_secs(4);
        assert_eq!(options, expected);
        assert!(matches!(args.command, Some(Command::Ping(_))));
        let es = parse_ok(&["elasticsearch"]);
        assert!(
            matches!(es.command, Some(Command::Elasticsearch(ref a)) if a.host == "http://localhost:9200")
        );
    }

    #[test]
    fn common_flags_may_follow_the_agent() {
        let hoisted = hoist_common_flags(strings(&[
            "systemd", "--unit", "-l", "-s", "web-1", "-l", "debug",
        ]));
        assert_eq!(
            hoisted,
            strings(&["-s", "web-1", "-l", "debug", "systemd", "--unit", "-l"])
        );
        let args = parse_ok(&["ping", "-t", "3", "-p", "1", "-e", "h:1"]);
        assert_eq!((args.timeout, args.period), (3.0, 1.0));
        assert_eq!(args.endpoint.as_deref(), Some("h:1"));
    }

    #[test]
    fn exec_commands_keep_their_flags() {
        let args = parse_ok(&[
            "-s",
            "x",
            "exec",
            "--statuses",
            "up,down",
            "-t",
            "5",
            "--",
            "check",
            "-t",
            "2",
        ]);
        assert_eq!(args.timeout, 5.0);
        let Some(Command::Exec(exec)) = args.command else {
            panic!("not exec");
        };
        assert_eq!(exec.statuses.as_deref(), Some("up,down"));
        let tail: Vec<&str> = exec.command.iter().map(String::as_str).collect();
        assert!(tail.ends_with(&["check", "-t", "2"]), "{tail:?}");
        let bare = parse_ok(&["exec", "check_load", "-w", "4"]);
        let Some(Command::Exec(exec)) = bare.command else {
            panic!("not exec");
        };
        assert_eq!(exec.command, strings(&["check_load", "-w", "4"]));
    }

    #[test]
    fn common_flags_may_follow_a_silence_service() {
        let args = parse_ok(&[
            "silence", "--for", "1h", "web-1", "-e", "h:1", "--reason", "-deploy",
        ]);
        assert_eq!(args.endpoint.as_deref(), Some("h:1"));
        let Some(Command::Silence(silence)) = args.command else {
            panic!("not silence");
        };
        assert_eq!(silence.length.as_deref(), Some("1h"));
        assert_eq!(silence.reason.as_deref(), Some("-deploy"));
        assert_eq!(silence.service.as_deref(), Some("web-1"));
        let args = parse_ok(&["unsilence", "*", "-s", "x"]);
        assert_eq!(args.service.as_deref(), Some("x"));
        let Some(Command::Unsilence(unsilence)) = args.command else {
            panic!("not unsilence");
        };
        assert_eq!(unsilence.service.as_deref(), Some("*"));
    }

    #[test]
    fn process_takes_exactly_one_target() {
        let args = parse_ok(&["process", "--pidfile", "/run/x.pid", "-s", "x", "-p", "1"]);
        assert_eq!((args.service.as_deref(), args.period), (Some("x"), 1.0));
        let Some(Command::Process(p)) = &args.command else {
            panic!("not process");
        };
        assert_eq!(p.pidfile, Some(PathBuf::from("/run/x.pid")));
        assert!(process(p).is_ok());
        for (flags, got) in [
            (&[][..], "none was given"),
            (&["--pid", "1", "--name", "x"][..], "got --name and --pid"),
            (
                &["--pidfile", "p", "--name", "x", "--pid", "1"][..],
                "got --pidfile and --name and --pid",
            ),
        ] {
            let args = parse_ok(&[&["process"], flags].concat());
            let Some(Command::Process(p)) = &args.command else {
                panic!("not process");
            };
            let err = process(p).unwrap_err().to_string();
            assert_eq!(
                err,
                format!(
                    "process: give exactly one of --pidfile PATH, --name NAME and --pid N; {got}"
                )
            );
        }
    }

    #[test]
    fn endpoint_lists_come_from_the_flag_or_the_environment() {
        let env = |var: &str| {
            (var == "PROCJONAGENT_ENDPOINT").then(|| "a.example.com:8080,b.example.com:8080".into())
        };
        let args = parse_ok(&["-s", "x", "ping"]);
        assert_eq!(
            options(&args, &env).unwrap().endpoints,
            ["a.example.com:8080", "b.example.com:8080"]
        );
        let args = parse_ok(&["-s", "x", "-e", "h:1, h:2,", "ping"]);
        // Empty entries are kept for the runner to refuse by their place.
        assert_eq!(options(&args, &env).unwrap().endpoints, ["h:1", "h:2", ""]);
    }

    #[test]
    fn refuses_unusable_seconds() {
        for bad in ["0", "-1", "NaN", "inf"] {
            let args = parse_ok(&["-s", "x", "-t", bad, "ping"]);
            let err = options(&args, &no_env).unwrap_err().to_string();
            assert!(err.starts_with("--timeout: "), "{err}");
        }
    }
}
