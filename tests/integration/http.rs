//! The HTTP status endpoint against the real binary: every endpoint with a
//! service in each state, `/metrics` through the real `promtool`, the page
//! in a real headless Chromium, and `procjon status`.

use crate::support::daemon::run;
use crate::support::http::{delete, get, post, run_with_limit, tool};
use crate::support::{Client, Daemon, TempDir, wait_until};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(5);
/// An id with every punctuation character ids may have.
const DB: &str = "db@eu-1/primary:5432";
/// The status name of the never-pinged service: markup the page must show as text.
const MARKUP: &str = "<img src=x onerror=alert(1)>";

/// A daemon with one service in each state: `batch` not available, `DB`
/// available in its second status (changed), `new` never pinged (unknown)
/// and `web-1` available in its first status.
struct Scene {
    daemon: Daemon,
    http: SocketAddr,
    client: Client,
    dir: TempDir,
}

fn scene() -> Scene {
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path()).start();
    let http = daemon.http.expect("an `http status on` line in the log");
    let mut client = Client::connect(daemon.addr);
    client.register("web-1", 30.0, &["ok", "degraded"]);
    client.register(DB, 30.0, &["ok", "replica-lag"]);
    client.register("batch", 0.3, &["ok", "failed"]);
    client.register("new", 30.0, &[MARKUP, "ok"]);
    client.ping_ok("web-1", 0);
    client.ping_ok(DB, 0);
    client.ping_ok(DB, 1);
    client.ping_ok("batch", 0);
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|l: &String| l.starts_with("batch is not available"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        seen.push(daemon.next_line(left));
    }
    Scene {
        daemon,
        http,
        client,
        dir,
    }
}

fn by_id(services: &Value, id: &str) -> Value {
    services
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("{id} missing from {services}"))
        .clone()
}

/// The service without its ping age (which moves between two requests).
fn settled(mut service: Value) -> Value {
    service.as_object_mut().unwrap().remove("last_ping_age_s");
    service
}

#[test]
fn api_reports_every_state() {
    let scene = scene();
    let http = scene.http;
    let reply = get(http, "/api/services");
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.content_type, "application/json");
    let services = reply.json();
    let ids: Vec<&str> = services
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["batch", DB, "new", "web-1"]);

    let batch = by_id(&services, "batch");
    assert_eq!(batch["availability"], "not_available");
    assert_eq!(
        (batch["status"].clone(), batch["status_name"].clone()),
        (json!(0), json!("ok"))
    );
    assert!(batch["last_ping_age_s"].is_f64(), "{batch}");
    assert!(
        batch["last_change"].as_str().unwrap().ends_with('Z'),
        "{batch}"
    );
    assert_eq!(batch["timeout_s"], 0.3);

    let db = by_id(&services, DB);
    assert_eq!(db["availability"], "available");
    assert_eq!(
        (db["status"].clone(), db["status_name"].clone()),
        (json!(1), json!("replica-lag"))
    );
    assert_eq!(db["statuses"], json!(["ok", "replica-lag"]));
    assert_eq!(db["timeout_s"], 30.0);

    let new = by_id(&services, "new");
    assert_eq!(new["availability"], "unknown");
    assert_eq!(new["status_name"], MARKUP);
    assert_eq!(new["last_ping_age_s"], Value::Null);
    assert_eq!(new["last_change"], Value::Null);

    let web = by_id(&services, "web-1");
    assert_eq!(web["availability"], "available");
    assert_eq!(web["status_name"], "ok");

    // Every announcement was printed, so none stays undelivered for long.
    wait_until(WAIT, "undelivered to drop to 0", || {
        get(http, "/api/services")
            .json()
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["undelivered"] == 0)
    });

    for (path, id) in [
        ("/api/services/web-1", "web-1"),
        ("/api/services/db@eu-1/primary:5432", DB),
        ("/api/services/db%40eu-1%2Fprimary%3A5432", DB),
        ("/api/services/new?pretty", "new"),
    ] {
        let reply = get(http, path);
        assert_eq!(reply.status, 200, "{path}: {reply:?}");
        let all = get(http, "/api/services").json();
        assert_eq!(settled(reply.json()), settled(by_id(&all, id)), "{path}");
    }
    let missing = get(http, "/api/services/nope");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.content_type, "application/json");
    assert!(
        missing.json()["error"].as_str().unwrap().contains("nope"),
        "{missing:?}"
    );
    drop(scene.client);
}

#[test]
fn metrics_report_services_and_counters() {
    let mut scene = scene();
    let http = scene.http;
    let bad = scene.client.ping("web-1", 7);
    assert!(matches!(bad, procjon::ServerFrame::Error { .. }), "{bad:?}");
    wait_until(WAIT, "5 notifications counted as sent", || {
        get(http, "/metrics")
            .body
            .contains("\nprocjon_notifications_sent_total 5\n")
    });
    let reply = get(http, "/metrics");
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.content_type,
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = reply.body;
    let has = |line: &str| text.lines().any(|l| l == line);
    let starts = |prefix: &str| text.lines().any(|l| l.starts_with(prefix));
    for line in [
        "procjon_service_up{service=\"web-1\"} 1",
        "procjon_service_up{service=\"db@eu-1/primary:5432\"} 1",
        "procjon_service_up{service=\"batch\"} 0",
        "procjon_service_status{service=\"db@eu-1/primary:5432\"} 1",
        "procjon_service_status{service=\"new\"} 0",
        "procjon_services{availability=\"unknown\"} 1",
        "procjon_services{availability=\"available\"} 2",
        "procjon_pings_total 4",
        "procjon_frames_rejected_total{code=\"bad_status\"} 1",
        "procjon_frames_rejected_total{code=\"bad_frame\"} 0",
        "procjon_notifications_pending 0",
        "procjon_notifications_failed_total 0",
        "procjon_connections_open 1",
        "procjon_state_file_writable 1",
        "# TYPE procjon_pings_total counter",
        "# TYPE procjon_service_up gauge",
    ] {
        assert!(has(line), "missing {line:?} in:\n{text}");
    }
    for prefix in [
        "procjon_service_last_ping_age_seconds{service=\"web-1\"} ",
        "procjon_service_last_ping_age_seconds{service=\"batch\"} ",
        "procjon_state_file_bytes ",
        "procjon_state_file_lines ",
        "procjon_build_info{version=\"",
    ] {
        assert!(starts(prefix), "missing {prefix:?}… in:\n{text}");
    }
    // Unknown: no up sample, no ping age.
    assert!(
        !text.contains("procjon_service_up{service=\"new\"}"),
        "{text}"
    );
    assert!(!text.contains("seconds{service=\"new\"}"), "{text}");
    // HELP and TYPE once per family.
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = line.split(' ').nth(2).unwrap();
        assert_eq!(
            text.matches(&format!("# HELP {name} ")).count(),
            1,
            "{name}"
        );
        assert_eq!(
            text.matches(&format!("# TYPE {name} ")).count(),
            1,
            "{name}"
        );
    }
}

#[test]
fn metrics_pass_promtool() {
    let Some(promtool) = tool(&["promtool"], "prometheus") else {
        return;
    };
    let scene = scene();
    let body = get(scene.http, "/metrics").body;
    let mut command = Command::new(promtool);
    command.args(["check", "metrics"]);
    let out = run_with_limit(
        command,
        body.as_bytes(),
        scene.dir.path(),
        Duration::from_secs(60),
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics ({}): {said}\n--- scraped ---\n{body}",
        out.status
    );
}

#[test]
fn health_page_and_errors() {
    let scene = scene();
    let http = scene.http;
    let health = get(http, "/healthz");
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));

    let page = get(http, "/");
    assert_eq!(page.status, 200);
    assert_eq!(page.content_type, "text/html; charset=utf-8");
    assert!(page.body.contains("<title>procjon</title>"));
    for external in [
        "src=\"http",
        "href=\"http",
        "src='http",
        "@import",
        "url(http",
    ] {
        assert!(!page.body.contains(external), "the page loads {external}…");
    }

    for path in ["/nope", "/index.html", "/api", "/metrics/x"] {
        let reply = get(http, path);
        assert_eq!(reply.status, 404, "{path}: {reply:?}");
        assert!(reply.body.len() < 100, "{path}: {reply:?}");
    }
    let api_404 = get(http, "/api/nope");
    assert_eq!(api_404.status, 404);
    assert!(api_404.json()["error"].is_string());

    for reply in [
        post(http, "/metrics"),
        post(http, "/"),
        delete(http, "/api/services/web-1"),
    ] {
        assert_eq!(reply.status, 405, "{reply:?}");
        assert_eq!(reply.allow.as_deref(), Some("GET, HEAD"));
        assert!(reply.body.len() < 100, "{reply:?}");
    }

    // Take the state file away: procjon can't persist anything any more.
    std::fs::remove_file(&scene.daemon.state).unwrap();
    let health = get(http, "/healthz");
    assert_eq!(health.status, 503, "{health:?}");
    assert!(
        health.body.starts_with("state file ") && health.body.contains("state.jsonl"),
        "{health:?}"
    );
    assert!(
        get(http, "/metrics")
            .body
            .contains("\nprocjon_state_file_writable 0\n")
    );
}

/// The row of the service `id` in the dumped DOM.
fn row<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("data-id=\"{id}\""))
        .unwrap_or_else(|| panic!("no row for {id} in:\n{dom}"));
    let end = dom[start..].find("</li>").map_or(dom.len(), |e| start + e);
    &dom[start..end]
}

#[test]
fn page_shows_every_service_in_chromium() {
    let Some(chromium) = tool(
        &["chromium", "chromium-browser", "google-chrome"],
        "chromium",
    ) else {
        return;
    };
    let scene = scene();
    let profile = scene.dir.join("chromium-profile");
    let mut command = Command::new(chromium);
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        &format!("--user-data-dir={}", profile.display()),
        "--virtual-time-budget=5000",
        "--dump-dom",
        &format!("http://{}/", scene.http),
    ]);
    let out = run_with_limit(command, b"", scene.dir.path(), Duration::from_secs(120));
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "chromium {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    for (id, class, availability, badge, status) in [
        (
            "batch",
            "not_available",
            "not_available",
            "not available",
            "ok",
        ),
        (DB, "changed", "available", "available", "replica-lag"),
        (
            "new",
            "unknown",
            "unknown",
            "unknown",
            "&lt;img src=x onerror=alert(1)&gt;",
        ),
        ("web-1", "available", "available", "available", "ok"),
    ] {
        assert!(
            dom.contains(&format!("<li class=\"service {class}\" data-id=\"{id}\"")),
            "{id} is not shown as {class}:\n{dom}"
        );
        let row = row(&dom, id);
        for needle in [
            format!("data-availability=\"{availability}\""),
            format!("<span class=\"badge\">{badge}</span>"),
            format!("<span class=\"id\">{id}</span>"),
            format!(">{status}</span>"),
        ] {
            assert!(row.contains(&needle), "{id}: no {needle:?} in {row}");
        }
    }
    // Problems first.
    let at = |id: &str| dom.find(&format!("data-id=\"{id}\"")).unwrap();
    assert!(at("batch") < at(DB) && at(DB) < at("new") && at("new") < at("web-1"));
    // The markup in a status name stayed text: no element was made of it.
    assert!(!dom.contains("<img src=\"x\""), "{dom}");
    assert!(
        dom.contains("<title>1 not available · procjon</title>"),
        "{dom}"
    );
}

#[test]
fn status_command_prints_a_table_and_exit_codes() {
    let scene = scene();
    let addr = scene.http.to_string();
    let (status, stdout, stderr) = run(&["status", "--http", &addr], scene.dir.path());
    assert_eq!(status.code(), Some(1), "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{stdout}");
    assert!(
        lines[0].starts_with("SERVICE ") && lines[0].contains("LAST PING"),
        "{stdout}"
    );
    for (line, (id, availability, status)) in lines[1..].iter().zip([
        ("batch", "not_available", "ok"),
        (DB, "available", "replica-lag"),
        ("new", "unknown", MARKUP),
        ("web-1", "available", "ok"),
    ]) {
        let cells: Vec<&str> = line
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(&cells[..3], [id, availability, status], "{line}");
    }

    // Only available and never-pinged services: all is well.
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path()).start();
    let mut client = Client::connect(daemon.addr);
    client.register("web-1", 30.0, &["ok"]);
    client.register("new", 30.0, &["ok"]);
    client.ping_ok("web-1", 0);
    let addr = daemon.http.unwrap().to_string();
    let (status, stdout, stderr) = run(&["status", "--http", &addr], dir.path());
    assert_eq!(status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
}

#[test]
fn status_command_without_a_daemon_exits_2() {
    let dir = TempDir::new();
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let (status, stdout, stderr) = run(&["status", "--http", &free], dir.path());
    assert_eq!(status.code(), Some(2), "{stdout}{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "procjon: cannot reach procjon at http://{free}/api/services: "
        )),
        "{stderr}"
    );
}

#[test]
fn http_can_be_turned_off() {
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path()).arg("--http").arg("off").start();
    assert_eq!(daemon.http, None);
    assert!(daemon.log().contains("http status off"), "{}", daemon.log());
}
