//! Deployment: `scripts/install.sh` into a temporary prefix (dry run, real
//! install, a second run that changes nothing, files it never overwrites),
//! the systemd units under `systemd-analyze verify`, the default prefix `/`
//! inside a private mount namespace, and host names from /etc/hosts for the
//! webhook and the endpoint. With `PROCJON_TEST_STATIC=1`, also
//! `scripts/build-static.sh` (minutes) and the same name checks on its
//! static binaries.
//!
//! Tests that need a tool or a namespace this machine lacks print why and
//! pass.

use crate::support::daemon::binary;
use crate::support::{Daemon, FakeSlack, TempDir};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

/// The host name the name-resolution tests put in a private /etc/hosts.
const NAME: &str = "procjon-nss-check.test";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn ok(self) -> Run {
        assert_eq!(
            self.code,
            Some(0),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

fn run(command: &mut Command) -> Run {
    let out = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("running {command:?}: {err}"));
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `scripts/install.sh ARGS`.
fn install(args: &[&str]) -> Run {
    run(Command::new("bash")
        .arg(repo().join("scripts/install.sh"))
        .args(args))
}

/// `scripts/install.sh --prefix PREFIX --from FROM EXTRA`.
fn install_into(prefix: &Path, from: &Path, extra: &[&str]) -> Run {
    run(Command::new("bash")
        .arg(repo().join("scripts/install.sh"))
        .arg("--prefix")
        .arg(prefix)
        .arg("--from")
        .arg(from)
        .args(extra))
}

/// Stand-ins for the two binaries (the script only copies them and asks
/// their version): `DIR/procjon` and `DIR/procjonagent`.
fn stub_binaries(dir: &Path, version: &str) {
    std::fs::create_dir_all(dir).unwrap();
    for name in ["procjon", "procjonagent"] {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\necho '{name} {version}'\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// An executable that does nothing at `path`, as the root that
/// `systemd-analyze verify --root` checks would have it.
fn stub_command(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Every file and directory below `dir`: mode, contents, modification time.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u32, Vec<u8>, SystemTime)> {
    let mut all = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(path) = todo.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let contents = if meta.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                todo.push(entry.unwrap().path());
            }
            Vec::new()
        } else {
            std::fs::read(&path).unwrap()
        };
        let rel = path.strip_prefix(dir).unwrap().to_path_buf();
        all.insert(
            rel,
            (meta.mode() & 0o7777, contents, meta.modified().unwrap()),
        );
    }
    all
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        .mode()
        & 0o7777
}

#[track_caller]
fn assert_lines(output: &str, expected: &[&str]) {
    let missing: Vec<_> = expected
        .iter()
        .filter(|needle| !output.lines().any(|line| line.contains(*needle)))
        .collect();
    assert!(missing.is_empty(), "missing {missing:?} in:\n{output}");
}

#[test]
fn install_dry_run_plans_every_step_and_changes_nothing() {
    let dir = TempDir::new();
    let from = dir.join("dist");
    stub_binaries(&from, "1.0");
    let prefix = dir.join("root");
    std::fs::create_dir(&prefix).unwrap();
    let p = prefix.display();
    let out = install_into(&prefix, &from, &["--dry-run"]).ok();
    assert_lines(
        &out.stdout,
        &[
            "dry run into",
            "skip           user procjon (--prefix",
            &format!("would create   {p}/etc/procjon/ (mode 0750)"),
            &format!("would create   {p}/var/lib/procjon/ (mode 0750)"),
            &format!("would install  {p}/usr/local/bin/procjon (procjon 1.0)"),
            &format!("would install  {p}/usr/local/bin/procjonagent (procjonagent 1.0)"),
            &format!("would install  {p}/etc/systemd/system/procjon.service"),
            &format!("would install  {p}/etc/systemd/system/procjonagent@.service"),
            &format!("would create   {p}/etc/procjon/procjon.env"),
            &format!("would create   {p}/etc/procjon/agent.env"),
            &format!("missing        {p}/etc/procjon/procjon.key"),
            "dry run: 10 changes planned, nothing changed",
        ],
    );
    assert_eq!(
        snapshot(&prefix).len(),
        1,
        "the dry run wrote into the prefix"
    );

    // On an installed tree, a dry run plans nothing.
    install_into(&prefix, &from, &[]).ok();
    let before = snapshot(&prefix);
    let out = install_into(&prefix, &from, &["--dry-run"]).ok();
    assert_lines(&out.stdout, &["dry run: 0 changes planned"]);
    assert_eq!(snapshot(&prefix), before);
}

#[test]
fn install_twice_changes_nothing_the_second_time_and_keeps_operator_files() {
    let dir = TempDir::new();
    let from = dir.join("dist");
    stub_binaries(&from, "1.0");
    let prefix = dir.join("root");
    let first = install_into(&prefix, &from, &[]).ok();
    assert_lines(&first.stdout, &["done, 10 changes"]);
    for (path, want) in [
        ("usr/local/bin/procjon", 0o755),
        ("usr/local/bin/procjonagent", 0o755),
        ("etc/systemd/system/procjon.service", 0o644),
        ("etc/systemd/system/procjonagent@.service", 0o644),
        ("etc/procjon", 0o750),
        ("etc/procjon/procjon.env", 0o640),
        ("etc/procjon/agent.env", 0o640),
        ("var/lib/procjon", 0o750),
    ] {
        assert_eq!(mode(&prefix.join(path)), want, "{path}");
    }
    assert_eq!(
        std::fs::read(prefix.join("etc/systemd/system/procjon.service")).unwrap(),
        std::fs::read(repo().join("scripts/systemd/procjon.service")).unwrap()
    );
    let env = std::fs::read_to_string(prefix.join("etc/procjon/procjon.env")).unwrap();
    assert!(env.contains("#PROCJON_SLACK_WEBHOOK="), "{env}");

    // The operator's files: certificates, the webhook, a state file.
    let operator = [
        ("etc/procjon/ca.pem", "operator's CA"),
        ("etc/procjon/procjon.pem", "operator's certificate"),
        ("etc/procjon/procjon.key", "operator's key"),
        (
            "etc/procjon/procjonagent.pem",
            "operator's agent certificate",
        ),
        ("etc/procjon/procjonagent.key", "operator's agent key"),
        (
            "etc/procjon/procjon.env",
            "PROCJON_SLACK_WEBHOOK=https://hooks.example/x",
        ),
        ("etc/procjon/agent.env", "PROCJONAGENT_ENDPOINT=m:8080"),
        (
            "var/lib/procjon/procjon-state.jsonl",
            "{\"op\":\"remove\",\"service\":\"x\"}\n",
        ),
    ];
    for (path, text) in operator {
        std::fs::write(prefix.join(path), text).unwrap();
    }
    let before = snapshot(&prefix);
    let second = install_into(&prefix, &from, &[]).ok();
    assert_lines(
        &second.stdout,
        &[
            "same           ",
            "keep           ",
            "(exists, not overwritten)",
            "done, 0 changes",
        ],
    );
    assert!(!second.stdout.contains("missing"), "{}", second.stdout);
    assert_eq!(snapshot(&prefix), before, "the second run changed files");

    // An upgrade replaces the binaries only.
    stub_binaries(&from, "2.0");
    let upgrade = install_into(&prefix, &from, &[]).ok();
    assert_lines(
        &upgrade.stdout,
        &[
            "update         ",
            "/usr/local/bin/procjon (procjon 2.0)",
            "done, 2 changes",
        ],
    );
    for (path, text) in operator {
        assert_eq!(
            std::fs::read_to_string(prefix.join(path)).unwrap(),
            text,
            "{path}"
        );
    }
}

#[test]
fn install_daemon_only_or_agent_only() {
    let dir = TempDir::new();
    let from = dir.join("dist");
    stub_binaries(&from, "1.0");
    let agent_host = dir.join("agent-host");
    install_into(&agent_host, &from, &["--agent-only"]).ok();
    assert!(agent_host.join("usr/local/bin/procjonagent").exists());
    assert!(agent_host.join("etc/procjon/agent.env").exists());
    for absent in [
        "usr/local/bin/procjon",
        "etc/systemd/system/procjon.service",
        "etc/procjon/procjon.env",
        "var/lib/procjon",
    ] {
        assert!(!agent_host.join(absent).exists(), "{absent}");
    }

    let monitor = dir.join("monitor");
    install_into(&monitor, &from, &["--daemon-only"]).ok();
    assert!(monitor.join("usr/local/bin/procjon").exists());
    assert!(!monitor.join("usr/local/bin/procjonagent").exists());
    assert!(!monitor.join("etc/procjon/agent.env").exists());

    let both = install(&["--daemon-only", "--agent-only", "--dry-run"]);
    assert_eq!(both.code, Some(2), "{}", both.stderr);
    assert!(
        both.stderr.contains("exclude each other"),
        "{}",
        both.stderr
    );
    let nothing = install_into(&monitor, &dir.join("none"), &["--dry-run"]);
    assert_eq!(nothing.code, Some(2));
    assert!(
        nothing.stderr.contains("run scripts/build-static.sh first"),
        "{}",
        nothing.stderr
    );
}

#[test]
fn units_pass_systemd_analyze_verify() {
    let probe = Command::new("systemd-analyze").arg("--version").output();
    if !probe.is_ok_and(|out| out.status.success()) {
        eprintln!(
            "skipped: systemd-analyze is not installed (Debian: apt-get install systemd), so the units are not verified"
        );
        return;
    }
    let dir = TempDir::new();
    let from = dir.join("dist");
    stub_binaries(&from, "1.0");
    let prefix = dir.join("root");
    install_into(&prefix, &from, &[]).ok();
    // What the units run besides procjon: ExecReload's /bin/kill.
    stub_command(&prefix.join("bin/kill"));
    // --root: the units and their ExecStart binaries as installed.
    // --recursive-errors=no: the targets they name (multi-user.target, ...)
    // are not in the temporary root.
    let verify = run(Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", prefix.display()))
        .arg("--recursive-errors=no")
        .args(["procjon.service", "procjonagent@ping.service"])
        .env("SYSTEMD_LOG_LEVEL", "notice"));
    if verify.stderr.contains("unrecognized option") {
        eprintln!(
            "skipped: this systemd-analyze is too old for --root/--recursive-errors (systemd 250 or later)"
        );
        return;
    }
    assert_eq!(verify.code, Some(0), "{}", verify.stderr);
    assert_eq!(verify.stderr.trim(), "", "warnings from systemd-analyze");

    // It does catch mistakes: a misspelt key.
    let unit = prefix.join("etc/systemd/system/procjon.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    std::fs::write(&unit, text.replace("Restart=always", "Restrat=always")).unwrap();
    let bad = run(Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", prefix.display()))
        .arg("--recursive-errors=no")
        .arg("procjon.service"));
    assert!(bad.stderr.contains("Restrat"), "{}", bad.stderr);
}

/// The table of environment variables in the README names every daemon variable with its flag and default;
/// the agent's tests check the agent's.
#[test]
fn deploy_guide_lists_every_daemon_variable() {
    let guides = std::fs::read_to_string(repo().join("README.md")).unwrap();
    for (flag, var, default) in procjon::ENVIRONMENT {
        let rows: Vec<&str> = guides
            .lines()
            .filter(|line| line.starts_with("| procjon") && line.contains(&format!("`{var}`")))
            .collect();
        assert!(!rows.is_empty(), "no row for {var} in the deploy guide");
        for row in rows {
            assert!(row.contains(&format!("`{flag}`")), "{row}");
            assert!(
                default.starts_with('(') || row.contains(&format!("`{default}`")),
                "{row}: default {default}"
            );
        }
    }
}

/// The default prefix `/` as root: the user, the owners, the warnings about
/// keys. In a private mount namespace over a copy of /etc and empty
/// /usr/local/bin, /var/lib and /run/systemd, so this machine is untouched.
#[test]
fn install_as_root_makes_the_user_and_sets_owners() {
    let unshare = match private_mounts() {
        Ok(unshare) if unshare.len() == 2 => unshare,
        Ok(_) => {
            eprintln!("skipped: not root, so useradd and chown can't be tried even in a namespace");
            return;
        }
        Err(reason) => {
            eprintln!("skipped: {reason}; the install as root is not tested");
            return;
        }
    };
    if !Path::new("/usr/local/bin").is_dir() || !Path::new("/var/lib").is_dir() {
        eprintln!("skipped: no /usr/local/bin or /var/lib to mount over");
        return;
    }
    let dir = TempDir::new();
    let from = dir.join("dist");
    stub_binaries(&from, "1.0");
    let etc = dir.join("etc");
    run(Command::new("cp").arg("-a").arg("/etc").arg(&etc)).ok();
    let certs = dir.join("certs");
    crate::support::gen_certs(&certs);
    let script = format!(
        r#"set -eu
mount --bind '{etc}' /etc
mount -t tmpfs tmpfs /usr/local/bin
mount -t tmpfs tmpfs /var/lib
if [ -d /run/systemd ]; then mount -t tmpfs tmpfs /run/systemd; fi
install() {{ bash '{script}' --daemon-only --from '{from}'; }}
echo "== first"; install
getent passwd procjon | cut -d: -f1,6,7
stat -c '%U:%G %a %n' /etc/procjon /var/lib/procjon /etc/procjon/procjon.env
cp '{certs}/ca.pem' '{certs}/procjon.pem' '{certs}/procjon.key' '{certs}/ca.key' /etc/procjon/
echo "== second"; install
chown root:procjon /etc/procjon/procjon.key
chmod 0640 /etc/procjon/procjon.key
rm /etc/procjon/ca.key
echo "== third"; install
printf '#!/bin/sh\necho procjon 2.0\n' > '{from}/procjon'
echo "== upgrade"; install
"#,
        etc = etc.display(),
        script = repo().join("scripts/install.sh").display(),
        from = from.display(),
        certs = certs.display(),
    );
    let out = run(Command::new(&unshare[0])
        .args(&unshare[1..])
        .args(["bash", "-c", &script]))
    .ok();
    let (first, rest) = out.stdout.split_once("== second").unwrap();
    let (second, rest) = rest.split_once("== third").unwrap();
    let (third, upgrade) = rest.split_once("== upgrade").unwrap();
    let existed = first.contains("keep           user procjon");
    if !existed {
        assert_lines(first, &["create         user procjon (system user"]);
    }
    assert_lines(
        first,
        &[
            "procjon:/var/lib/procjon:",
            "root:procjon 750 /etc/procjon",
            "procjon:procjon 750 /var/lib/procjon",
            "root:procjon 640 /etc/procjon/procjon.env",
            "missing        /etc/procjon/procjon.key",
            "next: put the certificates in /etc/procjon",
        ],
    );
    assert_lines(
        second,
        &[
            "keep           user procjon (exists)",
            "keep           /etc/procjon/procjon.pem (exists, not overwritten)",
            "warning        /etc/procjon/procjon.key (user procjon can't read it",
            "warning        /etc/procjon/ca.key (the CA's private key does not belong on a server",
            "done, 0 changes",
        ],
    );
    assert!(!third.contains("warning"), "{third}");
    assert_lines(third, &["done, 0 changes"]);
    assert_lines(
        upgrade,
        &[
            "update         /usr/local/bin/procjon (procjon 2.0)",
            "done, 1 change",
            "next: to run the new binaries: systemctl restart procjon (agents",
        ],
    );
    if !existed {
        let outside = run(Command::new("getent").args(["passwd", "procjon"]));
        assert_ne!(
            outside.code,
            Some(0),
            "the user leaked out of the namespace"
        );
    }
}

/// The command that runs a program in a private mount namespace (so that
/// /etc can be changed for it alone), or why there is none here.
fn private_mounts() -> Result<Vec<String>, String> {
    let root = run(Command::new("id").arg("-u")).stdout.trim() == "0";
    let unshare: Vec<String> = if root {
        vec!["unshare".into(), "--mount".into()]
    } else {
        // A user namespace maps us to root in it, which may mount there.
        vec!["unshare".into(), "--map-root-user".into(), "--mount".into()]
    };
    let probe = Command::new(&unshare[0])
        .args(&unshare[1..])
        .args(["sh", "-c", "mount -t tmpfs tmpfs /mnt"])
        .stdin(Stdio::null())
        .output();
    match probe {
        Ok(out) if out.status.success() => Ok(unshare),
        Ok(out) => Err(format!(
            "{} can't make a private mount namespace here: {}",
            unshare.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(err) => Err(format!("unshare (util-linux) can't run: {err}")),
    }
}

/// A wrapper that runs a program with `hosts` over /etc/hosts and, if
/// given, `nsswitch` over /etc/nsswitch.conf, in its own mount namespace:
/// the files of this machine stay as they are.
fn with_files(unshare: &[String], hosts: &Path, nsswitch: Option<&Path>) -> Vec<String> {
    let mut script = format!("mount --bind '{}' /etc/hosts", hosts.display());
    if let Some(nsswitch) = nsswitch {
        script += &format!(
            " && mount --bind '{}' /etc/nsswitch.conf",
            nsswitch.display()
        );
    }
    script += " && exec \"$@\"";
    let mut wrapper = unshare.to_vec();
    wrapper.extend(["sh".into(), "-c".into(), script, "sh".into()]);
    wrapper
}

/// A child process killed and reaped on drop, its stderr kept.
struct Reaped {
    child: Child,
    log: mpsc::Receiver<String>,
}

impl Reaped {
    fn log(&self) -> String {
        self.log.try_iter().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- agent log ---\n{}\n--- end ---", self.log());
        }
    }
}

/// The daemon `procjon` (and, if given, the agent `agent`) reach each
/// other and the webhook through [`NAME`], which only a private /etc/hosts
/// knows. With `nsswitch`, /etc/nsswitch.conf is replaced too.
fn names_resolve(procjon: &Path, agent: Option<&Path>, nsswitch: Option<&str>) {
    let unshare = match private_mounts() {
        Ok(unshare) => unshare,
        Err(reason) => {
            eprintln!("skipped: {reason}; host names from /etc/hosts are not tested");
            return;
        }
    };
    let dir = TempDir::new();
    let certs = dir.join("certs");
    run(Command::new("bash")
        .arg(repo().join("scripts/gen-certs.sh"))
        .arg(&certs)
        .env("PROCJON_CERT_NAMES", NAME))
    .ok();
    let hosts = dir.join("hosts");
    std::fs::write(&hosts, format!("127.0.0.1 localhost\n127.0.0.1 {NAME}\n")).unwrap();
    let nsswitch = nsswitch.map(|text| {
        let path = dir.join("nsswitch.conf");
        std::fs::write(&path, text).unwrap();
        path
    });
    let wrapper = with_files(&unshare, &hosts, nsswitch.as_deref());

    // One announcement waits in the outbox, so procjon posts at start-up.
    std::fs::write(
        dir.join("state.jsonl"),
        concat!(
            r#"{"op":"register","service":"from-outbox","timeout_s":60,"statuses":["ok"]}"#,
            "\n",
            r#"{"op":"announce","seq":1,"service":"from-outbox","available":true,"status":0,"text":"from-outbox is available","at":"2026-01-01T00:00:00Z"}"#,
            "\n"
        ),
    )
    .unwrap();
    let slack = FakeSlack::start();
    let port = slack
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let daemon = Daemon::builder(dir.path())
        .program(procjon)
        .wrapper(wrapper.clone())
        .certs(&certs)
        .endpoint(format!("{NAME}:0"))
        .webhook(&format!("http://{NAME}:{port}/services/T/B/secret"))
        .pacing(0.0, 0.1)
        .start();
    let (lines, _) = slack.delivered_lines(1, Duration::from_secs(10));
    assert_eq!(lines, ["from-outbox is available"], "{}", daemon.log());
    assert!(
        daemon.addr.ip().is_loopback(),
        "{NAME} resolved to {}",
        daemon.addr
    );

    let Some(agent) = agent else { return };
    let mut command = Command::new(&wrapper[0]);
    command
        .args(&wrapper[1..])
        .arg(agent)
        .arg("ping")
        .env_remove("RUST_LOG")
        .env("PROCJONAGENT_SERVICE", "nss-check")
        .env(
            "PROCJONAGENT_ENDPOINT",
            format!("{NAME}:{}", daemon.addr.port()),
        )
        .env("PROCJONAGENT_ROOT_CERT", certs.join("ca.pem"))
        .env("PROCJONAGENT_CERT", certs.join("procjonagent.pem"))
        .env("PROCJONAGENT_KEY_CERT", certs.join("procjonagent.key"))
        .env("PROCJONAGENT_LOG_LEVEL", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("starting procjonagent");
    let (tx, log) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let agent = Reaped { child, log };
    let (lines, _) = slack.delivered_lines(1, Duration::from_secs(10));
    assert_eq!(
        lines,
        ["nss-check is available"],
        "agent:\n{}\nprocjon:\n{}",
        agent.log(),
        daemon.log()
    );
}

#[test]
fn webhook_and_endpoint_names_resolve_from_etc_hosts() {
    names_resolve(binary(), None, None);
}

/// `scripts/build-static.sh`, then its binaries: static, stripped, their
/// versions, names from /etc/hosts whatever nsswitch.conf says, and the
/// bundle's install.sh. Minutes of building: only with
/// `PROCJON_TEST_STATIC=1`.
#[test]
fn static_build() {
    if std::env::var("PROCJON_TEST_STATIC").as_deref() != Ok("1") {
        eprintln!(
            "skipped: the static build takes minutes; PROCJON_TEST_STATIC=1 cargo test -p procjon --test integration static_build runs it"
        );
        return;
    }
    if std::env::consts::ARCH != "x86_64" {
        eprintln!("skipped: scripts/build-static.sh builds x86_64 binaries on x86_64 only");
        return;
    }
    let dir = TempDir::new();
    let dist = dir.join("dist");
    let build = run(Command::new("bash")
        .arg(repo().join("scripts/build-static.sh"))
        .arg("--out")
        .arg(&dist))
    .ok();
    eprintln!("{}", build.stdout);
    assert_lines(
        &build.stdout,
        &["procjon 0.", "procjonagent 0.", "are static and run"],
    );
    for name in ["procjon", "procjonagent"] {
        let bin = dist.join(name);
        let headers = run(Command::new("readelf").arg("-lW").arg(&bin))
            .ok()
            .stdout;
        assert!(
            !headers.contains("INTERP"),
            "{name} needs ld.so:\n{headers}"
        );
        let dynamic = run(Command::new("readelf").arg("-dW").arg(&bin))
            .ok()
            .stdout;
        assert!(!dynamic.contains("NEEDED"), "{name}:\n{dynamic}");
        let sections = run(Command::new("readelf").arg("-SW").arg(&bin))
            .ok()
            .stdout;
        assert!(!sections.contains(".symtab"), "{name} is not stripped");
        let version = run(Command::new(&bin).arg("--version")).ok().stdout;
        assert!(
            version.starts_with(&format!("{name} {}", env!("CARGO_PKG_VERSION"))),
            "{version}"
        );
        if !procjon::GIT_REVISION.is_empty() {
            assert!(version.contains("(git "), "{version}");
        }
    }
    // "hosts: dns" alone would not find the name; the static binaries read
    // /etc/hosts anyway (src/static_nss.rs).
    names_resolve(
        &dist.join("procjon"),
        Some(&dist.join("procjonagent")),
        Some("hosts: dns\n"),
    );

    // The bundle installs from where it lies.
    let prefix = dir.join("root");
    let out = run(Command::new("bash")
        .arg(dist.join("install.sh"))
        .arg("--dry-run")
        .arg("--prefix")
        .arg(&prefix))
    .ok();
    assert_lines(
        &out.stdout,
        &[
            "would install  ",
            "/usr/local/bin/procjon (procjon 0.",
            "/etc/systemd/system/procjonagent@.service",
        ],
    );
}
