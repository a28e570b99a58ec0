//! Faults around procjon: its state file's filesystem fills up or is forced
//! read-only mid-run, and Slack is down while a thousand services flap.
//!
//! The disk tests mount a small tmpfs or a loop-mounted ext4 image (they need
//! root); where that is not possible they print SKIPPED and pass.

use crate::support::http::get;
use crate::support::slack::Mode;
use crate::support::{Client, Daemon, FakeSlack, TempDir, poll_until, wait_until};
use procjon::frame::{ClientFrame, ErrorCode, Registration, ServerFrame};
use procjon::state_file::replay;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

/// Runs a command; its output when it succeeded, else `Err` with its stderr.
fn sh(program: &str, args: &[&str]) -> Result<String, String> {
    match Command::new(program).args(args).output() {
        Ok(out) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        Ok(out) => Err(format!(
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
        Err(err) => Err(format!("{program}: {err}")),
    }
}

/// A filesystem mounted for one test; unmounted (lazily, in case something
/// still holds it) on drop.
struct Mount(PathBuf);

impl Mount {
    /// Mounts `args` (e.g. `-t tmpfs ...`) on `dir`, or prints why the test
    /// is skipped.
    fn new(dir: &Path, args: &[&str]) -> Option<Mount> {
        std::fs::create_dir_all(dir).unwrap();
        let mut all = args.to_vec();
        all.push(dir.to_str().unwrap());
        match sh("mount", &all) {
            Ok(_) => Some(Mount(dir.to_path_buf())),
            Err(err) => {
                eprintln!("SKIPPED: cannot mount a test filesystem (needs root): {err}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn unmount(&self) {
        let _ = sh("umount", &[self.0.to_str().unwrap()]);
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = sh("umount", &["-l", self.0.to_str().unwrap()]);
    }
}

fn register_frame(service: &str) -> ClientFrame {
    ClientFrame::Register(Registration {
        service: service.into(),
        timeout_s: 60.0,
        statuses: vec!["ok".into(), "degraded".into()],
        policy: Default::default(),
    })
}

/// The `internal` message a register gets while the state file can't be written.
#[track_caller]
fn expect_internal(reply: ServerFrame) -> String {
    match reply {
        ServerFrame::Error {
            code: ErrorCode::Internal,
            message,
        } => message,
        other => panic!("expected internal, got {other:?}"),
    }
}

/// Before the fault: a service registered, pinged and announced; healthy.
fn healthy_start(daemon: &Daemon) -> Client {
    let mut client = Client::connect(daemon.addr);
    client.register("steady", 60.0, &["ok", "degraded"]);
    client.ping_ok("steady", 0);
    assert_eq!(daemon.next_line(WAIT), "steady is available");
    assert_eq!(get(daemon.http.unwrap(), "/healthz").status, 200);
    client
}

/// During the fault: pings are answered and announced, `/healthz` says 503.
#[track_caller]
fn pings_work_and_health_reports(daemon: &Daemon, client: &mut Client) {
    client.ping_ok("steady", 0);
    client.ping_ok("steady", 1);
    assert_eq!(
        daemon.next_line(WAIT),
        "steady status changed to degraded (was ok)"
    );
    let health = get(daemon.http.unwrap(), "/healthz");
    assert_eq!(health.status, 503, "{}", health.body);
    assert!(health.body.contains("state file"), "{}", health.body);
    let metrics = get(daemon.http.unwrap(), "/metrics").body;
    assert!(
        metrics.contains("procjon_state_file_writable 0"),
        "{metrics}"
    );
}

#[test]
fn a_full_disk_refuses_registrations_keeps_pings_and_recovers() {
    let dir = TempDir::new();
    let Some(disk) = Mount::new(
        &dir.join("disk"),
        &["-t", "tmpfs", "-o", "size=256k,mode=0700", "procjon-test"],
    ) else {
        return;
    };
    let state = disk.path().join("state.jsonl");
    let daemon = Daemon::builder(dir.path()).state(&state).start();
    let mut client = healthy_start(&daemon);

    // Fill the filesystem.
    let filler_path = disk.path().join("filler");
    let mut filler = std::fs::File::create(&filler_path).unwrap();
    let full = (0..1000).any(|_| filler.write_all(&[0u8; 4096]).is_err());
    assert!(full, "256 KiB tmpfs took 4 MB");
    drop(filler);

    // Registrations fit in the file's last page for a while, then fail.
    let message = (0..200)
        .find_map(
            |i| match client.request(&register_frame(&format!("full-{i}"))) {
                ServerFrame::Ok => None,
                reply => Some(expect_internal(reply)),
            },
        )
        .expect("no registration was refused on a full disk");
    assert!(message.contains("No space left on device"), "{message}");
    daemon.wait_log_at("ERROR", "] appending to state file", 1);
    daemon.wait_log(
        "No space left on device (os error 28); keeping the records",
        1,
    );
    pings_work_and_health_reports(&daemon, &mut client);

    // Space comes back: the kept records are written, registrations work.
    std::fs::remove_file(&filler_path).unwrap();
    wait_until(WAIT, "/healthz to recover", || {
        get(daemon.http.unwrap(), "/healthz").status == 200
    });
    daemon.wait_log("is writable again", 1);
    client.register("after", 60.0, &["ok"]);
    daemon.kill();
    let saved = replay(&state).unwrap().state;
    for service in ["steady", "after"] {
        assert!(saved.services.contains_key(service), "{service} lost");
    }
    let last = saved.services["steady"].last.as_ref().unwrap();
    assert_eq!(
        last.status, 1,
        "the status change made on a full disk was lost"
    );
}

#[test]
fn a_filesystem_forced_read_only_keeps_pings_and_loses_nothing_acknowledged() {
    let dir = TempDir::new();
    let image = dir.join("ext4.img");
    let image = image.to_str().unwrap();
    std::fs::File::create(image)
        .unwrap()
        .set_len(8 << 20)
        .unwrap();
    if let Err(err) = sh("mkfs.ext4", &["-q", "-O", "^has_journal", image]) {
        eprintln!("SKIPPED: cannot make an ext4 image: {err}");
        return;
    }
    let mount_point = dir.join("disk");
    let mount_args = ["-o", "loop,errors=remount-ro", image];
    let Some(disk) = Mount::new(&mount_point, &mount_args) else {
        return;
    };
    let state = disk.path().join("state.jsonl");
    let daemon = Daemon::builder(dir.path()).state(&state).start();
    let mut client = healthy_start(&daemon);
    daemon.wait_delivered(1);

    // What the kernel does on a disk error with errors=remount-ro. An
    // ordinary `mount -o remount,ro` is refused while procjon holds the file
    // open for writing.
    let device = sh(
        "findmnt",
        &["-n", "-o", "SOURCE", mount_point.to_str().unwrap()],
    )
    .unwrap();
    let device = device.trim().rsplit('/').next().unwrap().to_string();
    let trigger = format!("/sys/fs/ext4/{device}/trigger_fs_error");
    if let Err(err) = std::fs::write(&trigger, "procjon test") {
        eprintln!("SKIPPED: cannot force {trigger}: {err}");
        return;
    }
    let message = expect_internal(client.request(&register_frame("during")));
    assert!(message.contains("Read-only file system"), "{message}");
    daemon.wait_log(
        "Read-only file system (os error 30); keeping the records",
        1,
    );
    pings_work_and_health_reports(&daemon, &mut client);

    // Recovery needs the filesystem repaired, so procjon is restarted.
    daemon.kill();
    disk.unmount();
    // e2fsck exits 1 when it corrected something.
    let fsck = Command::new("e2fsck")
        .args(["-fy", image])
        .output()
        .unwrap();
    assert!(matches!(fsck.status.code(), Some(0 | 1)), "{fsck:?}");
    let disk = Mount::new(&mount_point, &mount_args).expect("remounting the repaired image");
    let state = disk.path().join("state.jsonl");
    let saved = replay(&state).unwrap().state;
    assert!(saved.services.contains_key("steady"), "steady lost");
    let daemon = Daemon::builder(dir.path()).state(&state).start();
    let mut client = Client::connect(daemon.addr);
    client.register("during", 60.0, &["ok", "degraded"]);
    client.ping_ok("steady", 1);
    // The change announced while read-only was not recorded: it is announced
    // again (at least once, never lost).
    assert_eq!(
        daemon.next_line(WAIT),
        "steady status changed to degraded (was ok)"
    );
    assert_eq!(get(daemon.http.unwrap(), "/healthz").status, 200);
}

#[test]
fn slack_down_while_a_thousand_services_flap_delivers_every_event_in_order_in_few_posts() {
    const SERVICES: usize = 1000;
    let dir = TempDir::new();
    let ids: Vec<String> = (0..SERVICES).map(|i| format!("svc-{i:04}")).collect();
    // Registered before start-up, as a state file from an earlier run.
    let mut file = String::new();
    for id in &ids {
        file.push_str(&format!(
            "{{\"op\":\"register\",\"service\":\"{id}\",\"timeout_s\":0.5,\"statuses\":[\"ok\",\"degraded\"],\"owner\":\"procjonagent\"}}\n"
        ));
    }
    std::fs::write(dir.join("state.jsonl"), file).unwrap();
    let slack = FakeSlack::start();
    slack.set(Mode::Status(503));
    let daemon = Daemon::builder(dir.path())
        .webhook(&slack.url)
        .pacing(0.0, 0.05)
        .start();
    let http = daemon.http.unwrap();
    let mut client = Client::connect(daemon.addr);
    // Each service gets `statuses` back to back, so none can time out in between.
    let ping_all = |client: &mut Client, statuses: &[u64]| {
        let mut batch = Vec::new();
        for id in &ids {
            for &status in statuses {
                batch.extend(ClientFrame::ping(id.clone(), status).encode());
            }
        }
        client.send_raw(&batch).unwrap();
        for _ in 0..ids.len() * statuses.len() {
            assert_eq!(client.recv().unwrap(), Some(ServerFrame::Ok));
        }
    };
    let count = |availability: &str| {
        let services = get(http, "/api/services").json();
        services
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["availability"] == availability)
            .count()
    };

    // Up, degraded, down, up again, ok again, down again: six events per service.
    ping_all(&mut client, &[0, 1]);
    // A thousand services per look: every 100 ms is often enough.
    let every = Duration::from_millis(100);
    let all_down = || count("not_available") == SERVICES;
    poll_until(
        Duration::from_secs(30),
        every,
        "every service to time out",
        all_down,
    );
    ping_all(&mut client, &[1, 0]);
    poll_until(
        Duration::from_secs(30),
        every,
        "all to time out again",
        all_down,
    );

    // Slack has been failing all along; then it rate-limits once; then it is back.
    for _ in 0..3 {
        assert_eq!(slack.next_attempt(WAIT).status, 503);
    }
    slack.set(Mode::TooMany { retry_after_s: 1 });
    while slack.next_attempt(WAIT).status != 429 {}
    slack.set(Mode::Ok);
    let total = 6 * SERVICES;
    let (lines, attempts) = slack.delivered_lines(total, Duration::from_secs(60));
    slack.assert_quiet(Duration::from_millis(500));
    assert_eq!(lines.len(), total, "more lines than events");

    let mut by_service: HashMap<&str, Vec<&str>> = HashMap::new();
    for line in &lines {
        let id = line.split(' ').next().unwrap();
        by_service.entry(id).or_default().push(line);
    }
    for id in &ids {
        let events = &by_service[id.as_str()];
        let expected_prefixes = [
            format!("{id} is available"),
            format!("{id} status changed to degraded (was ok)"),
            format!("{id} is not available (no ping for "),
            format!("{id} is available"),
            format!("{id} status changed to ok (was degraded)"),
            format!("{id} is not available (no ping for "),
        ];
        assert!(
            events.len() == expected_prefixes.len()
                && events
                    .iter()
                    .zip(&expected_prefixes)
                    .all(|(event, prefix)| event.starts_with(prefix.as_str())),
            "{id}: {events:?}"
        );
    }
    let posts = attempts.iter().filter(|a| a.status == 200).count();
    let chars: usize = lines.iter().map(|l| l.len() + 1).sum();
    let longest = lines.iter().map(|l| l.len() + 1).max().unwrap();
    let fewest = chars.div_ceil(procjon::MAX_POST_CHARS);
    let bound = chars.div_ceil(procjon::MAX_POST_CHARS - longest);
    eprintln!("{total} events in {posts} posts ({chars} characters; full posts would be {fewest})");
    assert!(posts <= bound, "{posts} posts for {total} events");
    daemon.wait_delivered(total);
    let saved = replay(&dir.join("state.jsonl")).unwrap().state;
    assert!(saved.outbox.is_empty());
}
