//! `silence` and `unsilence`, the one-shot commands of deploy scripts:
//! procjon holds a silenced service's outage back and tells it when the
//! silence ends; another identity is refused; bad flags are refused before
//! connecting; and a procjon that can't be reached costs about 10 s, not a
//! hung deploy.

use crate::support::{AgentCommand, Finished, Scene, TempDir, free_port, wait_for};
use std::time::Duration;

/// The last line of the command's log: the one error it prints.
fn last_line(done: &Finished) -> &str {
    done.stderr.lines().last().unwrap_or_default()
}

#[test]
fn a_silenced_outage_is_held_until_unsilence() {
    let scene = Scene::new();
    let out = &scene.procjon.stdout;
    let mut agent = scene.agent("web-1").args(["ping"]).start();
    out.expect_line("web-1 is available");

    let done = scene
        .agent("web-1")
        .args(["silence", "--for", "1h", "--reason", "deploy"])
        .finish();
    assert_eq!(
        (done.code, done.stdout.as_str()),
        (0, "silenced web-1 for 1h\n"),
        "{}",
        done.stderr
    );
    out.expect_line("web-1 silenced for 1h by procjonagent: deploy");

    // The deploy stops the service: twice its 2 s timeout passes unposted,
    // while procjon did see the outage (its log says it held it back).
    agent.kill();
    let posted = out.first_within(Duration::from_secs(4), |l| l.starts_with("web-1"));
    assert_eq!(posted, None, "posted while silenced");
    wait_for("the held outage in procjon's log", || {
        scene.procjon.log().lines().any(|l| {
            l.contains("web-1 is not available (no ping for ") && l.ends_with("(held: Silenced)")
        })
    });

    let done = scene.agent("web-1").args(["unsilence"]).finish();
    assert_eq!(
        (done.code, done.stdout.as_str()),
        (0, "unsilenced web-1\n"),
        "{}",
        done.stderr
    );
    out.expect_line("web-1 silence ended");
    // The channel last saw it available: it is told the current state.
    let line = out.expect("about web-1", crate::support::WAIT, |l| {
        l.starts_with("web-1")
    });
    assert!(
        line.starts_with("web-1 is not available (no ping for "),
        "{line}"
    );
}

#[test]
fn another_identity_is_refused_for_good() {
    let scene = Scene::new();
    let _agent = scene.agent("web-1").args(["ping"]).start();
    scene.procjon.stdout.expect_line("web-1 is available");
    let (cert, key) = scene.agent_identity("other-team");
    let other = |args: &[&str]| {
        scene
            .agent("web-1")
            .cert(&cert)
            .key(&key)
            .args(args)
            .finish()
    };
    let endpoint = scene.procjon.endpoint();
    for (args, expected) in [
        (
            &["silence", "--for", "10m", "--reason", "deploy"][..],
            format!(
                "procjonagent: procjon at {endpoint} refused the silence of web-1: forbidden: "
            ),
        ),
        (
            &["unsilence"][..],
            format!(
                "procjonagent: procjon at {endpoint} refused the unsilence of web-1: forbidden: "
            ),
        ),
        // other-team owns no service: nothing to silence, and retrying
        // won't change that.
        (
            &["silence", "--for", "10m", "*"][..],
            format!(
                "procjonagent: procjon at {endpoint} refused the silence of *: not_registered: "
            ),
        ),
    ] {
        let done = other(args);
        assert_eq!(done.code, 2, "{args:?}: {}", done.stderr);
        assert!(
            last_line(&done).starts_with(&expected),
            "{args:?}: {}",
            done.stderr
        );
        assert_eq!(done.stdout, "", "{args:?}");
    }
    let posted = scene
        .procjon
        .stdout
        .first_within(Duration::from_millis(500), |l| l.contains("silence"));
    assert_eq!(posted, None);
}

#[test]
fn bad_flags_are_refused_before_connecting() {
    let dir = TempDir::new().with_certs();
    // Nothing listens there: a command that connected would exit 1, later.
    let endpoint = format!("127.0.0.1:{}", free_port());
    let too_long = "x".repeat(300);
    let cases: [(&[&str], &str); 6] = [
        (
            &["silence", "--for", "8d"],
            "procjonagent: --for: \"8d\" is too long; a silence lasts at most 7d",
        ),
        (
            &["silence", "--for", "soon"],
            "procjonagent: --for: \"soon\" is not a length of time; give seconds or a number with s, m, h or d",
        ),
        (&["silence"], "procjonagent: --for: missing; "),
        (
            &["silence", "--for", "0"],
            "procjonagent: --for: \"0\" is no time at all",
        ),
        (
            &["silence", "--for", "1h", "--reason", &too_long],
            "procjonagent: --reason: the reason has 300 characters; at most 256 are allowed",
        ),
        (
            &["unsilence", "bad id"],
            "procjonagent: service id \"bad id\": ",
        ),
    ];
    for (args, expected) in cases {
        let done = AgentCommand::new(&dir)
            .service("web-1")
            .endpoint(&endpoint)
            .args(args)
            .finish();
        assert_eq!(done.code, 2, "{args:?}: {}", done.stderr);
        assert!(
            last_line(&done).starts_with(expected),
            "{args:?}: {expected:?} not in {}",
            done.stderr
        );
        assert!(
            done.took < Duration::from_secs(3),
            "{args:?}: {:?}",
            done.took
        );
    }
}

#[test]
fn an_unreachable_procjon_costs_about_10_seconds() {
    let dir = TempDir::new().with_certs();
    let endpoint = format!("127.0.0.1:{}", free_port());
    let done = AgentCommand::new(&dir)
        .service("web-1")
        .endpoint(&endpoint)
        .args(["silence", "--for", "30m", "--reason", "deploy"])
        .finish();
    assert_eq!(done.code, 1, "{}", done.stderr);
    let last = last_line(&done);
    assert!(
        last.starts_with(&format!(
            "procjonagent: cannot reach procjon at {endpoint} to silence web-1: connecting to {endpoint}: "
        )) && last.contains("; gave up after "),
        "{}",
        done.stderr
    );
    assert!(done.stderr.contains("(attempt 2)"), "{}", done.stderr);
    // It kept trying (the last pause is at most 4 s of the 10)...
    assert!(done.took >= Duration::from_secs(5), "{:?}", done.took);
    // ...and not for long.
    assert!(done.took < Duration::from_secs(15), "{:?}", done.took);
    assert_eq!(done.stdout, "");
}
