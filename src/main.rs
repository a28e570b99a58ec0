//! The `procjon` binary: parse the command line, set up logging, run.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: procjon::cli::Args = argh::from_env();
    if let Err(message) = init_logging(args.log_level.as_deref()) {
        eprintln!("procjon: {message}");
        return ExitCode::from(2);
    }
    procjon::cli::run(args)
}

/// `-l LEVEL` wins over `RUST_LOG`; the default is info.
fn init_logging(level: Option<&str>) -> Result<(), String> {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if let Some(level) = level {
        let filter: log::LevelFilter = level
            .parse()
            .map_err(|_| format!("--log-level {level:?}: use error, warn, info, debug or trace"))?;
        builder.filter_level(filter);
    }
    // tiny_http's own lines ("Server listening on ...") read like ours; keep it to problems.
    builder.filter_module("tiny_http", log::LevelFilter::Warn);
    builder.init();
    Ok(())
}
