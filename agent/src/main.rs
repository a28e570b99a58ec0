//! The `procjonagent` binary: parse the command line, set up logging, run.

use std::process::ExitCode;

#[path = "../../src/signal_wait.rs"]
mod signal_wait;
#[path = "../../src/static_nss.rs"]
mod static_nss;

fn main() -> ExitCode {
    let args = match procjon_agent::cli::parse_env() {
        Ok(args) => args,
        Err(code) => return code,
    };
    let level = procjon_agent::cli::log_level(&args, &procjon::process_env);
    if let Err(message) = init_logging(level.as_deref()) {
        eprintln!("procjonagent: {message}");
        return ExitCode::from(2);
    }
    if !static_nss::builtin_host_lookups() {
        log::warn!(
            "glibc refused to restrict host lookups to /etc/hosts and DNS; using nsswitch.conf"
        );
    }
    let (signals, received) = std::sync::mpsc::channel();
    if args.takes_signals() && !signal_wait::forward(signals) {
        log::warn!(
            "cannot take SIGTERM, SIGINT and SIGHUP on a thread of their own: they stop procjonagent and not its child"
        );
    }
    procjon_agent::cli::run(args, received)
}

/// `-l LEVEL` (or `PROCJONAGENT_LOG_LEVEL`) wins over `RUST_LOG`; the default is info. `-l` sets the
/// agent's own level; libraries (rustls, ureq) stay at info at most, so that
/// `-l debug` shows pings rather than handshake internals.
fn init_logging(level: Option<&str>) -> Result<(), String> {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if let Some(level) = level {
        let filter: log::LevelFilter = level
            .parse()
            .map_err(|_| format!("--log-level {level:?}: use error, warn, info, debug or trace"))?;
        builder
            .filter_level(filter.min(log::LevelFilter::Info))
            .filter_module("procjon_agent", filter)
            .filter_module("procjon", filter);
    }
    builder.init();
    Ok(())
}
