//! The `procjon` binary: parse the command line, set up logging, run.

use argh::FromArgs;
use std::process::ExitCode;

mod signal_wait;
mod static_nss;

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(code) => return code,
    };
    let level = args
        .log_level
        .clone()
        .or_else(|| procjon::process_env("PROCJON_LOG_LEVEL").filter(|l| !l.trim().is_empty()));
    if let Err(message) = init_logging(level.as_deref()) {
        eprintln!("procjon: {message}");
        return ExitCode::from(2);
    }
    if !static_nss::builtin_host_lookups() {
        log::warn!(
            "glibc refused to restrict host lookups to /etc/hosts and DNS; using nsswitch.conf"
        );
    }
    let (signals, received) = std::sync::mpsc::channel();
    if args.serves() && !signal_wait::forward(signals) {
        log::warn!(
            "cannot take SIGTERM, SIGINT and SIGHUP on a thread of their own: they stop procjon at once, and SIGHUP reloads nothing"
        );
    }
    procjon::run(args, received)
}

/// Like `argh::from_env`, but a usage error exits 2 (a configuration
/// problem), not 1 (which `procjon status` uses for "a service is down").
fn parse_args() -> Result<procjon::Args, ExitCode> {
    let strings: Vec<String> = std::env::args().collect();
    let command = strings
        .first()
        .map(|path| path.rsplit('/').next().unwrap_or(path))
        .unwrap_or("procjon");
    let rest: Vec<&str> = strings.iter().skip(1).map(String::as_str).collect();
    procjon::Args::from_args(&[command], &rest).map_err(|early| match early.status {
        Ok(()) => {
            println!("{}", early.output);
            ExitCode::SUCCESS
        }
        Err(()) => {
            eprintln!(
                "{}: {}; see {} --help",
                command,
                early.output.trim_end().trim_end_matches('.'),
                command
            );
            ExitCode::from(2)
        }
    })
}

/// `-l LEVEL` (or `PROCJON_LOG_LEVEL`) wins over `RUST_LOG`; the default is
/// info. The TLS and HTTP libraries only speak at warn (trace shows all).
fn init_logging(level: Option<&str>) -> Result<(), String> {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    let mut filter = log::LevelFilter::Info;
    if let Some(level) = level {
        filter = level
            .parse()
            .map_err(|_| format!("--log-level {level:?}: use error, warn, info, debug or trace"))?;
        builder.filter_level(filter);
    }
    if filter < log::LevelFilter::Trace {
        // rustls's handshake details, tiny_http's "Server listening on ..."
        // and ureq's per-request lines read like ours.
        builder.filter_module("rustls", log::LevelFilter::Warn);
        builder.filter_module("tiny_http", log::LevelFilter::Warn);
        builder.filter_module("ureq", log::LevelFilter::Warn);
        builder.filter_module("ureq_proto", log::LevelFilter::Warn);
    }
    builder.init();
    Ok(())
}
