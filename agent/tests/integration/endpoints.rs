//! Agents that report to several procjon daemons (`-e a:8080,b:8080`, an
//! HA pair): each daemon registered and pinged on its own; one that is
//! down or blackholed never leaves a gap at the other, and is caught up
//! with once it answers; `run`'s end delivered to each; `silence` sent to
//! each; and bad lists refused before anything connects.

use crate::support::{
    AgentCommand, Blackhole, FakeSlack, Peer, RunningAgent, Scene, TempDir, WAIT, free_port,
    service, wait_for, wait_for_service,
};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The scene's agents' timeout (`-t 2`, pinging every 0.3 s): a ping
/// younger than that is recent.
const TIMEOUT_S: f64 = 2.0;

/// The agent's longest reconnection delay: a procjon that comes up is
/// registered with within it (plus start-up time on a busy machine).
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How long a down endpoint stays down while the other is watched for a
/// gap. The case is a minute; with a 2 s timeout, 7 s (3.5
/// timeouts, and longer than the agent's first four reconnection delays
/// together) shows the same thing in less time.
const OUTAGE: Duration = Duration::from_secs(7);

/// `-e` for two daemons.
fn both(a: &str, b: &str) -> String {
    format!("{a},{b}")
}

/// Two procjons trusting one CA, both with their HTTP status endpoint: A,
/// the scene's, and B, its peer.
struct Pair {
    a: Scene,
    b: Peer,
    /// A's `-e` value.
    ea: String,
    /// B's `-e` value.
    eb: String,
}

impl Pair {
    fn new() -> Pair {
        let a = Scene::with_http();
        let b = a.peer();
        let (ea, eb) = (a.procjon.endpoint(), b.procjon.endpoint());
        Pair { a, b, ea, eb }
    }

    /// `-e` for both.
    fn endpoints(&self) -> String {
        both(&self.ea, &self.eb)
    }

    /// An agent for `service` reporting to both.
    fn agent(&self, service: &str) -> AgentCommand {
        self.a.agent(service).endpoint(&self.endpoints())
    }

    /// A `ping` agent for web-1 reporting to both, once each has announced
    /// it available.
    #[track_caller]
    fn ping(&self) -> RunningAgent {
        let agent = self.agent("web-1").args(["ping"]).start();
        self.a.procjon.stdout.expect_line("web-1 is available");
        self.b.procjon.stdout.expect_line("web-1 is available");
        agent
    }
}

/// Waits until the procjon at `http` has a ping of `id` that arrived after
/// `since`: pings keep coming, not merely came once.
#[track_caller]
fn wait_pinged_since(http: SocketAddr, id: &str, since: Instant) {
    wait_for_service(http, id, |s| {
        s.availability == "available"
            && s.last_ping_age_s
                .is_some_and(|age| age < since.elapsed().as_secs_f64())
    });
}

/// Watches the daemon behind `slack` and `http` for `window`: nothing
/// posted at all (a gap in the pings would post `ID is not available`),
/// and every second or so `/api/services/ID` shows the service available
/// with a ping younger than its timeout.
#[track_caller]
fn assert_no_gap(slack: &FakeSlack, http: SocketAddr, id: &str, window: Duration) {
    let end = Instant::now() + window;
    let mut looks = 0;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        if let Some(post) = slack.try_attempt(left.min(Duration::from_secs(1))) {
            panic!("posted while the other endpoint was down: {post:?}");
        }
        let status = service(http, id).unwrap_or_else(|| panic!("{id} is not registered"));
        let age = status.last_ping_age_s.unwrap_or(f64::INFINITY);
        assert!(
            status.availability == "available" && age < TIMEOUT_S,
            "a gap after {looks} looks: {status:#?}"
        );
        looks += 1;
    }
    assert!(
        looks >= 3,
        "only {looks} looks at /api/services in {window:?}"
    );
}

#[test]
fn both_daemons_hear_an_agent_with_two_endpoints() {
    let pair = Pair::new();
    let agent = pair.ping();
    let registered = Instant::now();
    for endpoint in [&pair.ea, &pair.eb] {
        wait_for("the agent's registration line for each endpoint", || {
            agent
                .stderr
                .text()
                .contains(&format!("procjon at {endpoint}: registered web-1"))
        });
    }
    for daemon in [&pair.a.procjon, &pair.b.procjon] {
        let http = daemon.http.expect("procjon's HTTP address");
        wait_pinged_since(http, "web-1", registered);
    }
    // Both keep hearing from it.
    let later = Instant::now();
    for daemon in [&pair.a.procjon, &pair.b.procjon] {
        wait_pinged_since(daemon.http.expect("procjon's HTTP address"), "web-1", later);
    }
}

#[test]
fn one_endpoint_down_the_other_sees_no_gap_and_it_is_caught_up_with() {
    let slack = FakeSlack::start();
    let a = Scene::with_webhook(&slack.url);
    let http = a.procjon.http.expect("procjon's HTTP address");
    // B's port, reserved: nothing listens there until B starts on it.
    let eb = format!("127.0.0.1:{}", free_port());
    let agent = a
        .agent("web-1")
        .endpoint(&both(&a.procjon.endpoint(), &eb))
        .args(["ping"])
        .start();
    let (lines, _) = slack.delivered_lines(1, WAIT);
    assert_eq!(lines, ["web-1 is available"]);
    agent
        .stderr
        .expect_containing(&format!("procjon at {eb}: cannot report: connecting to "));

    assert_no_gap(&slack, http, "web-1", OUTAGE);
    let retries = agent
        .stderr
        .text()
        .matches(&format!("procjon at {eb}: cannot report: "))
        .count();
    assert!(retries >= 3, "{retries} attempts at {eb} in {OUTAGE:?}");

    // B comes up on its port: the agent registers there at its next
    // attempt, within the longest reconnection delay.
    let b = a.peer_with(|builder| builder.endpoint(eb.clone()));
    let up = Instant::now();
    b.procjon
        .stdout
        .expect("web-1 is available", MAX_BACKOFF + WAIT, |l| {
            l == "web-1 is available"
        });
    assert!(up.elapsed() < MAX_BACKOFF + WAIT, "{:?}", up.elapsed());
    agent
        .stderr
        .expect_containing(&format!("procjon at {eb}: registered web-1"));
    wait_pinged_since(b.procjon.http.expect("B's HTTP address"), "web-1", up);
    // A noticed nothing all along.
    assert!(slack.try_attempt(Duration::ZERO).is_none());
    wait_pinged_since(http, "web-1", up);
}

#[test]
fn a_blackholed_endpoint_does_not_hold_up_the_other() {
    let slack = FakeSlack::start();
    let a = Scene::with_webhook(&slack.url);
    let http = a.procjon.http.expect("procjon's HTTP address");
    let hole = Blackhole::new();
    let agent = a
        .agent("web-1")
        .endpoint(&both(&a.procjon.endpoint(), &hole.endpoint))
        .args(["ping"])
        .start();
    let (lines, _) = slack.delivered_lines(1, WAIT);
    assert_eq!(lines, ["web-1 is available"]);
    // Each attempt there connects, then waits out the 2 s timeout for a
    // TLS reply: as long as the service's own timeout, so pinging the two
    // in turn would leave a gap at A.
    agent.stderr.expect_containing(&format!(
        "procjon at {}: cannot report: TLS handshake with ",
        hole.endpoint
    ));
    assert_no_gap(&slack, http, "web-1", OUTAGE);
}

#[test]
fn a_refusal_from_one_endpoint_leaves_the_other_reported_to() {
    let Pair { a, b, ea: _, eb } = Pair::new();
    // On B, web-1 belongs to another identity: B refuses this agent for good.
    let (cert, key) = a.agent_identity("other-team");
    let _owner = a
        .agent("web-1")
        .endpoint(&eb)
        .cert(&cert)
        .key(&key)
        .args(["ping"])
        .start();
    b.procjon.stdout.expect_line("web-1 is available");

    let mut agent = a
        .agent("web-1")
        .endpoint(&both(&a.procjon.endpoint(), &eb))
        .args(["ping"])
        .start();
    a.procjon.stdout.expect_line("web-1 is available");
    let line = agent.stderr.expect_containing(&format!(
        "procjon at {eb} refused the register of web-1: forbidden: "
    ));
    assert!(line.contains(" ERROR "), "{line}");
    assert!(line.ends_with("; still reporting to the other 1"), "{line}");
    let refused = Instant::now();
    wait_pinged_since(
        a.procjon.http.expect("procjon's HTTP address"),
        "web-1",
        refused,
    );
    assert!(agent.is_running(), "{}", agent.stderr.text());
}

#[test]
fn run_delivers_its_end_to_both_daemons() {
    let pair = Pair::new();
    let mut agent = pair
        .agent("job-1")
        .args(["run", "--", "sh", "-c", "sleep 1; exit 3"])
        .start();
    for daemon in [&pair.a.procjon, &pair.b.procjon] {
        let out = &daemon.stdout;
        out.expect_line("job-1 is available");
        out.expect_line("job-1 status changed to failed (was running): exit 3 after 1s");
        out.expect_line("job-1 was unregistered by procjonagent: exit 3 after 1s");
    }
    assert_eq!(agent.wait_exit(WAIT), 3);
    let log = agent.stderr.text();
    for endpoint in [&pair.ea, &pair.eb] {
        let line = format!("procjon at {endpoint}: unregistered job-1: exit 3 after 1s");
        assert!(log.contains(&line), "{line:?} not in:\n{log}");
    }
}

#[test]
fn run_gives_up_on_a_down_endpoint_after_the_final_timeout_and_keeps_the_exit_code() {
    let a = Scene::new();
    let down = format!("127.0.0.1:{}", free_port());
    let started = Instant::now();
    let mut agent = a
        .agent("job-2")
        .endpoint(&both(&a.procjon.endpoint(), &down))
        .args(["run", "--final-timeout", "4"])
        .args(["--", "sh", "-c", "sleep 1; exit 3"])
        .start();
    // A hears the end at once, not after B's final timeout.
    let out = &a.procjon.stdout;
    out.expect_line("job-2 is available");
    out.expect_line("job-2 was unregistered by procjonagent: exit 3 after 1s");
    assert!(agent.is_running(), "exited before giving up on {down}");
    assert_eq!(agent.wait_exit(WAIT), 3);
    let took = started.elapsed();
    // The job's 1 s, then B tried for its 4 s; not much more.
    assert!(took >= Duration::from_secs(5), "{took:?}");
    assert!(took < Duration::from_secs(5) + WAIT, "{took:?}");
    let log = agent.stderr.text();
    assert!(
        log.contains(&format!(
            "procjon at {down}: cannot report: connecting to {down}: "
        )) && log.contains("; giving up on the last report after 4 s"),
        "{log}"
    );
    assert!(
        log.contains("not every procjon heard how the command ended"),
        "{log}"
    );
}

#[test]
fn silence_goes_to_every_endpoint_and_succeeds_if_one_accepts() {
    let pair = Pair::new();
    let _agent = pair.ping();
    let done = pair
        .agent("web-1")
        .args(["silence", "--for", "1h", "--reason", "deploy"])
        .finish();
    let Pair { a, b, ea, eb } = pair;
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert_eq!(
        done.stdout,
        format!("procjon at {ea}: silenced web-1 for 1h\nprocjon at {eb}: silenced web-1 for 1h\n")
    );
    for daemon in [&a.procjon, &b.procjon] {
        daemon
            .stdout
            .expect_line("web-1 silenced for 1h by procjonagent: deploy");
    }

    // With B gone, the unsilence reaches A alone: that is enough.
    drop(b);
    let done = a
        .agent("web-1")
        .endpoint(&both(&ea, &eb))
        .args(["unsilence"])
        .finish();
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert_eq!(done.stdout, format!("procjon at {ea}: unsilenced web-1\n"));
    let last = done.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!(
            "procjonagent: cannot reach procjon at {eb} to unsilence web-1: "
        )),
        "{}",
        done.stderr
    );
    // B was tried for about 10 s, as one endpoint alone would be.
    assert!(done.took >= Duration::from_secs(5), "{:?}", done.took);
    a.procjon.stdout.expect_line("web-1 silence ended");
}

#[test]
fn silence_fails_when_no_endpoint_accepts() {
    let pair = Pair::new();
    let _agent = pair.ping();
    // Another identity is refused by both, for good: exit code 2.
    let (cert, key) = pair.a.agent_identity("other-team");
    let done = pair
        .agent("web-1")
        .cert(&cert)
        .key(&key)
        .args(["silence", "--for", "10m"])
        .finish();
    assert_eq!(
        (done.code, done.stdout.as_str()),
        (2, ""),
        "{}",
        done.stderr
    );
    for endpoint in [&pair.ea, &pair.eb] {
        let line = format!(
            "procjonagent: procjon at {endpoint} refused the silence of web-1: forbidden: "
        );
        assert!(
            done.stderr.lines().any(|l| l.starts_with(&line)),
            "{line:?} not in:\n{}",
            done.stderr
        );
    }
}

#[test]
fn bad_endpoint_lists_are_refused_before_connecting() {
    let dir = TempDir::new().with_certs();
    // Nothing listens there: an agent that connected would keep retrying.
    let ok = format!("127.0.0.1:{}", free_port());
    let nine: Vec<String> = (1..=9).map(|i| format!("127.0.0.{i}:8080")).collect();
    let nine = nine.join(",");
    let cases = [
        (
            format!("{ok},,127.0.0.1:2"),
            format!("--endpoint: entry 2 of \"{ok},,127.0.0.1:2\" is empty; "),
        ),
        (
            format!("{ok},"),
            format!("--endpoint: entry 2 of \"{ok},\" is empty; "),
        ),
        (
            format!("{ok},{ok}"),
            format!(
                "--endpoint: \"{ok}\" (entry 2 of \"{ok},{ok}\") is the same procjon as entry 1, \
                 \"{ok}\"; list each once"
            ),
        ),
        (
            format!("{ok},localhost"),
            format!("--endpoint: \"localhost\" (entry 2 of \"{ok},localhost\") has no port; "),
        ),
        (
            format!("{ok},bad host:1"),
            format!("--endpoint: \"bad host:1\" (entry 2 of \"{ok},bad host:1\") has a host "),
        ),
        (
            nine.clone(),
            format!("--endpoint: \"{nine}\" lists 9 procjon daemons; at most 8 are allowed"),
        ),
    ];
    let commands: [&[&str]; 3] = [&["ping"], &["run", "--", "true"], &["unsilence"]];
    for (list, expected) in &cases {
        for command in commands {
            let done = AgentCommand::new(&dir)
                .service("web-1")
                .endpoint(list)
                .args(command)
                .finish();
            check_refused(&done, &format!("-e {list:?} {command:?}"), expected);
        }
    }
    // The environment variable takes the same lists, and is checked alike.
    let (list, expected) = &cases[2];
    let done = AgentCommand::new(&dir)
        .service("web-1")
        .env("PROCJONAGENT_ENDPOINT", list)
        .args(["ping"])
        .finish();
    check_refused(&done, "PROCJONAGENT_ENDPOINT", expected);
}

/// Asserts that `done` exited 2 quickly, its last line the error `expected`.
#[track_caller]
fn check_refused(done: &crate::support::Finished, what: &str, expected: &str) {
    assert_eq!(done.code, 2, "{what}: {}", done.stderr);
    let last = done.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!("procjonagent: {expected}")),
        "{what}: {expected:?} not in:\n{}",
        done.stderr
    );
    assert!(
        done.took < Duration::from_secs(3),
        "{what}: {:?}",
        done.took
    );
}
