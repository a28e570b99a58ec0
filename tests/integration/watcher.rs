//! Watching the watcher, against the real binary: systemd's notification
//! protocol and watchdog (a test-owned datagram socket as `NOTIFY_SOCKET`),
//! the outgoing heartbeat (a test-owned HTTP receiver as the dead man's
//! switch), the line that says procjon is back, graceful stop, a second
//! signal, and certificates reloaded on SIGHUP.

use crate::support::client::agent_tls;
use crate::support::http::get;
use crate::support::slack::Mode;
use crate::support::{Client, Daemon, FakeSlack, TempDir, gen_certs, wait_until};
use procjon::frame::ServerFrame;
use procjon::state_file::replay;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use test_support::Receiver;

const WAIT: Duration = Duration::from_secs(10);

/// The socket systemd would own: it receives the daemon's notifications.
struct NotifySocket {
    socket: UnixDatagram,
    path: String,
}

impl NotifySocket {
    fn new(dir: &TempDir) -> NotifySocket {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        NotifySocket {
            socket,
            path: path.display().to_string(),
        }
    }

    /// The next notification within `limit`.
    fn next(&self, limit: Duration) -> Option<String> {
        self.socket.set_read_timeout(Some(limit)).unwrap();
        let mut buf = [0u8; 4096];
        let n = self.socket.recv(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// Skips notifications until one that starts with `prefix`.
    #[track_caller]
    fn expect(&self, prefix: &str) -> String {
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.next(left) {
                Some(message) if message.starts_with(prefix) => return message,
                Some(message) => seen.push(message),
                None => break,
            }
        }
        panic!("no {prefix:?} notification within {WAIT:?}; saw {seen:?}");
    }

    /// The notifications that arrive within `time`.
    fn during(&self, time: Duration) -> Vec<String> {
        let end = Instant::now() + time;
        let mut all = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            if left.is_zero() {
                break;
            }
            match self.next(left) {
                Some(message) => all.push(message),
                None => break,
            }
        }
        all
    }
}

fn watchdog_pings(messages: &[String]) -> usize {
    messages.iter().filter(|m| *m == "WATCHDOG=1").count()
}

#[test]
fn systemd_hears_ready_status_watchdog_and_stopping() {
    let dir = TempDir::new();
    let notify = NotifySocket::new(&dir);
    let mut daemon = Daemon::builder(dir.path())
        .env("NOTIFY_SOCKET", &notify.path)
        .env("WATCHDOG_USEC", "400000")
        .start();
    notify.expect("READY=1");
    let status = notify.expect("STATUS=");
    assert_eq!(
        status,
        "STATUS=0 services, 0 not available, 0 notifications pending"
    );
    // WatchdogSec=0.4s: a ping every 0.2 s.
    let pings = watchdog_pings(&notify.during(Duration::from_millis(1500)));
    assert!((4..=12).contains(&pings), "{pings} watchdog pings in 1.5 s");

    let mut client = Client::connect(daemon.addr);
    client.register("web-1", 10.0, &["ok"]);
    assert_eq!(
        notify.expect("STATUS=1 "),
        "STATUS=1 services, 0 not available, 0 notifications pending"
    );

    daemon.signal("TERM");
    notify.expect("STOPPING=1");
    let status = daemon.wait_exit(WAIT);
    assert_eq!(status.code(), Some(0), "{}", daemon.log());
}

#[test]
fn a_stuck_notifier_stops_the_watchdog_pings() {
    let slack = FakeSlack::start();
    slack.set(Mode::Hang(Duration::from_secs(120)));
    let dir = TempDir::new();
    let notify = NotifySocket::new(&dir);
    let daemon = Daemon::builder(dir.path())
        .webhook(&slack.url)
        .pacing(0.0, 0.05)
        .args(["--slack-timeout", "120", "--stall-after", "1"])
        .env("NOTIFY_SOCKET", &notify.path)
        .env("WATCHDOG_USEC", "200000")
        .start();
    notify.expect("WATCHDOG=1");
    let mut client = Client::connect(daemon.addr);
    client.register("web-1", 60.0, &["ok"]);
    client.ping_ok("web-1", 0);
    // The post hangs; past --stall-after the notifier counts as stuck.
    daemon.wait_log_at("ERROR", "the notifier thread has been stuck", 1);
    notify.during(Duration::from_millis(300));
    let after = notify.during(Duration::from_millis(1500));
    assert_eq!(
        watchdog_pings(&after),
        0,
        "systemd still hears WATCHDOG=1 from a stuck procjon: {after:?}"
    );
}

#[test]
fn the_heartbeat_says_fail_while_the_webhook_fails_and_recovers() {
    let switch = Receiver::start();
    let slack = FakeSlack::start();
    slack.set(Mode::Status(500));
    let dir = TempDir::new();
    let ping = format!("{}/ping/5f2c-secret", switch.base);
    let daemon = Daemon::builder(dir.path())
        .webhook(&slack.url)
        .pacing(0.0, 0.1)
        .args(["--heartbeat-url", &ping])
        .args(["--heartbeat-interval", "0.3", "--heartbeat-fail-after", "1"])
        .start();
    // Healthy: plain requests at the interval.
    let first = switch.expect("GET /ping/…", WAIT, |r| r.method == "GET");
    let second = switch.expect("GET /ping/…", WAIT, |r| r.method == "GET");
    assert_eq!(first.path, "/ping/5f2c-secret");
    let gap = second.at - first.at;
    assert!(
        gap >= Duration::from_millis(250) && gap < Duration::from_secs(2),
        "{gap:?} between two heartbeats at a 0.3 s interval"
    );

    // The webhook fails for longer than --heartbeat-fail-after.
    let mut client = Client::connect(daemon.addr);
    client.register("web-1", 60.0, &["ok"]);
    client.ping_ok("web-1", 0);
    let failing_from = slack.next_attempt(WAIT).at;
    let fail = switch.expect("POST /ping/…/fail", WAIT, |r| r.method == "POST");
    assert_eq!(fail.path, "/ping/5f2c-secret/fail");
    assert!(
        fail.body.contains("Slack webhook have failed for"),
        "{:?}",
        fail.body
    );
    assert!(
        fail.at - failing_from >= Duration::from_millis(900),
        "reported a failure after {:?}, before --heartbeat-fail-after",
        fail.at - failing_from
    );

    // Slack recovers: the queue drains and the heartbeat is plain again.
    slack.set(Mode::Ok);
    slack.delivered_lines(1, WAIT);
    switch.expect("GET /ping/… after recovery", WAIT, |r| r.method == "GET");
    assert!(
        !daemon.log().contains("5f2c-secret"),
        "the heartbeat URL leaked into the log"
    );
}

/// The seconds in `procjon is back after 3s …`.
fn back_after_secs(line: &str) -> f64 {
    let rest = line
        .strip_prefix("procjon is back after ")
        .unwrap_or_else(|| panic!("not a back-online line: {line:?}"));
    let duration = rest.split(' ').next().unwrap();
    duration
        .strip_suffix('s')
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not seconds: {line:?}"))
}

#[test]
fn after_a_crash_the_channel_hears_that_procjon_is_back_before_any_service_event() {
    let dir = TempDir::new();
    let builder = Daemon::builder(dir.path()).args(["--announce-downtime-after", "1"]);
    let daemon = builder.clone().start();
    let mut client = Client::connect(daemon.addr);
    client.register("web-1", 2.0, &["ok"]);
    client.ping_ok("web-1", 0);
    assert_eq!(daemon.next_line(WAIT), "web-1 is available");
    let state = daemon.state.clone();
    let alive = |state: &Path| {
        std::fs::read_to_string(state)
            .unwrap()
            .matches("\"op\":\"alive\"")
            .count()
    };
    let before = alive(&state);
    wait_until(WAIT, "a sign of life after the announcement", || {
        alive(&state) > before
    });
    drop(client);
    daemon.kill();
    // The outage itself.
    std::thread::sleep(Duration::from_secs(2));

    let daemon = builder.start();
    let back = daemon.next_line(WAIT);
    let down = back_after_secs(&back);
    assert!((2.0..10.0).contains(&down), "{back}");
    assert!(
        back.contains(" (down since 20")
            && back.ends_with("Z); 1 services are being checked again"),
        "{back}"
    );
    // Then the service, which nobody pings any more, and nothing else.
    assert_eq!(
        daemon.next_line(WAIT),
        "web-1 is not available (no ping for 2s)"
    );
    daemon.assert_quiet(Duration::from_millis(500));
}

#[test]
fn a_quick_restart_after_a_crash_is_not_announced() {
    let dir = TempDir::new();
    let builder = Daemon::builder(dir.path()).args(["--announce-downtime-after", "30"]);
    let daemon = builder.clone().start();
    wait_until(WAIT, "a sign of life", || {
        std::fs::read_to_string(&daemon.state).is_ok_and(|s| s.contains("\"op\":\"alive\""))
    });
    daemon.kill();
    let daemon = builder.start();
    daemon.assert_quiet(Duration::from_millis(700));
}

#[test]
fn sigterm_stops_gracefully_and_the_next_start_says_planned_restart() {
    let slack = FakeSlack::start();
    let dir = TempDir::new();
    let builder = Daemon::builder(dir.path())
        .webhook(&slack.url)
        .pacing(0.0, 0.05)
        .args(["--stop-timeout", "3"]);
    let mut daemon = builder.clone().start();
    let mut client = Client::connect(daemon.addr);
    client.register("web-1", 60.0, &["ok"]);
    client.ping_ok("web-1", 0);
    slack.delivered_lines(1, WAIT);
    daemon.wait_delivered(1);

    let stopping = Instant::now();
    daemon.signal("TERM");
    let status = daemon.wait_exit(WAIT);
    assert_eq!(status.code(), Some(0), "{}", daemon.log());
    assert!(stopping.elapsed() < Duration::from_secs(3));
    assert!(
        daemon.log().contains("SIGTERM: stopping"),
        "{}",
        daemon.log()
    );
    // The agent's connection was closed: it reads the end of the stream.
    assert!(matches!(client.recv(), Ok(None) | Err(_)));
    let text = std::fs::read_to_string(&daemon.state).unwrap();
    let last_sign = text
        .lines()
        .rfind(|l| l.starts_with("{\"op\":\"alive\"") || l.starts_with("{\"op\":\"stop\""))
        .unwrap();
    assert!(last_sign.starts_with("{\"op\":\"stop\""), "{text}");

    let _daemon = builder.start();
    let (lines, _) = slack.delivered_lines(1, WAIT);
    let down = back_after_secs(&lines[0]);
    assert!(down < 5.0, "{lines:?}");
    assert!(lines[0].ends_with("s (planned restart)"), "{lines:?}");
}

#[test]
fn a_stop_keeps_what_it_could_not_deliver_and_a_second_signal_stops_at_once() {
    let slack = FakeSlack::start();
    slack.set(Mode::Status(500));
    let dir = TempDir::new();
    let mut daemon = Daemon::builder(dir.path())
        .webhook(&slack.url)
        .pacing(0.0, 0.05)
        .args(["--stop-timeout", "1"])
        .start();
    let mut client = Client::connect(daemon.addr);
    client.register("web-1", 60.0, &["ok"]);
    client.ping_ok("web-1", 0);
    slack.next_attempt(WAIT);
    let stopping = Instant::now();
    daemon.signal("TERM");
    let status = daemon.wait_exit(WAIT);
    let took = stopping.elapsed();
    assert_eq!(status.code(), Some(0), "{}", daemon.log());
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "stopping took {took:?} with --stop-timeout 1 and Slack down"
    );
    assert!(
        daemon
            .log()
            .contains("1 notifications not delivered within --stop-timeout"),
        "{}",
        daemon.log()
    );
    let outbox = replay(&daemon.state).unwrap().state.outbox;
    assert!(
        outbox
            .values()
            .any(|p| &*p.announcement.text == "web-1 is available"),
        "{outbox:?}"
    );

    // With a long stop timeout, a second SIGTERM ends it at once.
    let mut daemon = Daemon::builder(dir.path())
        .webhook(&slack.url)
        .pacing(0.0, 0.05)
        .args(["--stop-timeout", "60"])
        .start();
    daemon.signal("TERM");
    daemon.wait_log("SIGTERM: stopping", 1);
    let second = Instant::now();
    daemon.signal("TERM");
    let status = daemon.wait_exit(WAIT);
    assert_eq!(status.code(), Some(143), "{}", daemon.log());
    assert!(second.elapsed() < Duration::from_secs(3));
}

/// Copies a certificate set's CA, server certificate and key into `live`.
fn install_certs(from: &Path, live: &Path) {
    std::fs::create_dir_all(live).unwrap();
    for name in ["ca.pem", "procjon.pem", "procjon.key"] {
        std::fs::copy(from.join(name), live.join(name)).unwrap();
    }
}

/// `openssl x509 -enddate` of `cert`, as RFC 3339 (`2029-03-07T19:47:53Z`).
fn openssl_not_after(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-enddate", "-dateopt", "iso_8601", "-in"])
        .arg(cert)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.trim()
        .strip_prefix("notAfter=")
        .unwrap()
        .replace(' ', "T")
}

#[test]
fn sighup_reloads_certificates_without_dropping_agents() {
    let dir = TempDir::new();
    let (old, new, live) = (dir.join("old"), dir.join("new"), dir.join("live"));
    gen_certs(&old);
    gen_certs(&new);
    install_certs(&old, &live);
    let daemon = Daemon::builder(dir.path()).certs(&live).start();
    let old_tls = agent_tls(&old);
    let mut connected = Client::connect_with(daemon.addr, old_tls.clone()).unwrap();
    connected.register("before", 60.0, &["ok"]);
    connected.ping_ok("before", 0);
    let http = daemon.http.unwrap();
    assert_eq!(
        get(http, "/healthz").certificate_expires,
        Some(openssl_not_after(&old.join("procjon.pem")))
    );

    // New CA, new server certificate and key; then SIGHUP.
    install_certs(&new, &live);
    daemon.signal("HUP");
    daemon.wait_log("SIGHUP: reloaded", 1);
    // The agent connected before keeps its connection and goes on.
    connected.ping_ok("before", 0);
    // An agent with a certificate from the new CA gets in.
    let mut newcomer = Client::connect_with(daemon.addr, agent_tls(&new)).unwrap();
    newcomer.register("after", 60.0, &["ok"]);
    // One that only trusts the old CA can't (the server's certificate changed).
    let mut stale = Client::connect_with(daemon.addr, old_tls).unwrap();
    assert!(
        stale
            .send_raw(b"{\"type\":\"ping\",\"service\":\"before\",\"status\":0}\n")
            .is_err()
            || stale.recv().is_err()
    );
    let expiry = openssl_not_after(&new.join("procjon.pem"));
    assert_eq!(
        get(http, "/healthz").certificate_expires,
        Some(expiry.clone())
    );
    let metrics = get(http, "/metrics").body;
    let seconds = metrics
        .lines()
        .find_map(|l| l.strip_prefix("procjon_certificate_expiry_timestamp_seconds "))
        .unwrap_or_else(|| panic!("no expiry in /metrics:\n{metrics}"));
    let date = Command::new("date")
        .args(["-u", "-d", &format!("@{seconds}"), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(date.stdout).unwrap().trim(), expiry);

    // A broken key: logged, and the configuration in force stays whole.
    std::fs::write(live.join("procjon.key"), "not a key\n").unwrap();
    daemon.signal("HUP");
    daemon.wait_log_at("ERROR", "SIGHUP: ", 1);
    assert!(
        daemon
            .log()
            .contains("keeping the certificates loaded before")
    );
    let mut still = Client::connect_with(daemon.addr, agent_tls(&new)).unwrap();
    assert_eq!(
        still.request(&procjon::ClientFrame::ping("after", 0)),
        ServerFrame::Ok
    );
    connected.ping_ok("before", 0);
}

#[test]
fn a_certificate_about_to_expire_is_told_once() {
    let dir = TempDir::new();
    let certs = dir.join("short");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gen-certs.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(&certs)
        .env("PROCJON_CERT_DAYS", "7")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let daemon = Daemon::builder(dir.path()).certs(&certs).start();
    let line = daemon.next_line(WAIT);
    assert!(
        line.starts_with(&format!(
            "procjon's server certificate {} expires on ",
            certs.join("procjon.pem").display()
        )) && (line.contains(" (in 6d23h); renew it and send SIGHUP")
            || line.contains(" (in 7d0h); renew it and send SIGHUP")),
        "{line}"
    );
    daemon.wait_log_at("WARN", "expires on", 1);
    daemon.assert_quiet(Duration::from_millis(1500));
}
