//! Configuration errors and final refusals: exit code 2 and one line that
//! says what is wrong, without retrying. Also the settings that come from
//! the environment, and `--version` (exit code 0).

use crate::support::{AgentCommand, TempDir};

#[track_caller]
fn exits_2(dir: &TempDir, args: &[&str], expected: &str) {
    fails(AgentCommand::new(dir).args(args), args, expected);
}

#[track_caller]
fn fails(agent: AgentCommand, args: &[&str], expected: &str) {
    let (code, log) = agent.exit();
    assert_eq!(code, 2, "{args:?}: {log}");
    let last = log.lines().last().unwrap_or_default();
    assert!(
        last.contains(expected),
        "{args:?}: {expected:?} not in {log}"
    );
}

#[test]
fn missing_certificate_names_the_file() {
    let dir = TempDir::new().with_certs();
    let ping = ["-s", "x", "ping"];
    fails(
        AgentCommand::new(&dir).cert("certs/nope.pem").args(ping),
        &ping,
        "procjonagent: reading certificate certs/nope.pem: ",
    );
    fails(
        AgentCommand::new(&dir).key("certs/nope.key").args(ping),
        &ping,
        "procjonagent: reading key certs/nope.key: ",
    );
    fails(
        AgentCommand::new(&dir).key("certs/procjon.key").args(ping),
        &ping,
        "procjonagent: key certs/procjon.key does not fit certificate certs/procjonagent.pem",
    );
    fails(
        AgentCommand::new(&dir)
            .root_cert("certs/none.pem")
            .args(ping),
        &ping,
        "procjonagent: reading certificate certs/none.pem: ",
    );
}

#[test]
fn period_must_be_below_timeout() {
    let dir = TempDir::new().with_certs();
    exits_2(
        &dir,
        &["-s", "x", "-t", "2", "-p", "2", "ping"],
        "procjonagent: --period: 2 s must be above 0 and below the timeout (2 s)",
    );
    exits_2(
        &dir,
        &["-s", "x", "-p", "abc", "ping"],
        "'-p' with value 'abc'",
    );
}

#[test]
fn bad_service_id_is_refused() {
    let dir = TempDir::new().with_certs();
    exits_2(
        &dir,
        &["-s", "bad id", "ping"],
        "procjonagent: service id \"bad id\": service id has the character ' '",
    );
}

#[test]
fn unusable_flags_are_refused() {
    let dir = TempDir::new().with_certs();
    let cases: [(&[&str], &str); 10] = [
        (
            &["-s", "x", "-e", "localhost", "ping"],
            "--endpoint: \"localhost\" has no port",
        ),
        (
            &["-s", "x", "ping", "--bogus"],
            "Unrecognized argument: --bogus",
        ),
        (
            &["-s", "x"],
            "choose one: ping, systemd, elasticsearch, exec, process, run, silence or unsilence",
        ),
        (
            &["-s", "x", "process"],
            "process: give exactly one of --pidfile PATH, --name NAME and --pid N; none was given",
        ),
        (
            &["-s", "x", "process", "--pid", "1", "--pidfile", "x.pid"],
            "got --pidfile and --pid",
        ),
        (
            &["-s", "x", "process", "--name", "postgres: checkpointer"],
            "--name: \"postgres: checkpointer\" can never match: the kernel keeps 15 bytes",
        ),
        (&["-s", "x", "exec"], "exec: no command given"),
        (
            &["-s", "x", "exec", "--", "no-such-check"],
            "command \"no-such-check\" not found",
        ),
        (
            &["-s", "x", "elasticsearch", "--user", "elastic"],
            "PROCJON_ES_PASSWORD, which is not set",
        ),
        (
            &["-s", "x", "elasticsearch", "--host", "localhost:9200"],
            "--host: \"localhost:9200\" is not an http",
        ),
    ];
    for (args, expected) in cases {
        exits_2(&dir, args, expected);
    }
    let ping = ["-s", "x", "ping"];
    fails(
        AgentCommand::new(&dir).log_level("loud").args(ping),
        &ping,
        "procjonagent: --log-level \"loud\": use error, warn, info, debug or trace",
    );
}

#[test]
fn environment_gives_what_flags_leave_out_and_flags_win() {
    let dir = TempDir::new().with_certs();
    let ping = ["ping"];
    let from_env = AgentCommand::new(&dir)
        .without("-l")
        .env("PROCJONAGENT_SERVICE", "x")
        .env("PROCJONAGENT_LOG_LEVEL", "loud")
        .args(ping);
    // The log level is read first: its error proves the variable is used.
    fails(
        from_env,
        &ping,
        "procjonagent: --log-level \"loud\": use error, warn, info, debug or trace",
    );
    let cert_from_env = AgentCommand::new(&dir)
        .without("-c")
        .env("PROCJONAGENT_SERVICE", "x")
        .env("PROCJONAGENT_CERT", "certs/from-env.pem")
        .args(ping);
    fails(
        cert_from_env,
        &ping,
        "procjonagent: reading certificate certs/from-env.pem: ",
    );
    let flag_wins = AgentCommand::new(&dir)
        .cert("certs/from-flag.pem")
        .env("PROCJONAGENT_SERVICE", "x")
        .env("PROCJONAGENT_CERT", "certs/from-env.pem")
        .args(ping);
    fails(
        flag_wins,
        &ping,
        "procjonagent: reading certificate certs/from-flag.pem: ",
    );
}

#[test]
fn version_names_the_build() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_procjonagent"))
        .arg("--version")
        .output()
        .expect("running procjonagent --version");
    assert!(out.status.success());
    let line = String::from_utf8_lossy(&out.stdout);
    let expected = procjon::version_of("procjonagent", env!("CARGO_PKG_VERSION"));
    assert_eq!(line.trim(), expected);
    assert!(
        line.starts_with(&format!("procjonagent {}", env!("CARGO_PKG_VERSION"))),
        "{line}"
    );
    if !procjon::GIT_REVISION.is_empty() {
        assert!(line.contains("(git "), "{line}");
    }
}

/// The table of environment variables in the README names every agent variable with its flag and default.
#[test]
fn deploy_guide_lists_every_agent_variable() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let guides =
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    for (flag, var, default) in procjon_agent::cli::ENVIRONMENT {
        let rows: Vec<&str> = guides
            .lines()
            .filter(|line| line.starts_with("| procjonagent") && line.contains(&format!("`{var}`")))
            .collect();
        assert!(!rows.is_empty(), "no row for {var} in the deploy guide");
        for row in rows {
            assert!(row.contains(&format!("`{flag}`")), "{row}");
            assert!(row.contains(default), "{row}: default {default}");
        }
    }
}
