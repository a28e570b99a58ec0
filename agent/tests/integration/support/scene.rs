//! A test's world: a temp dir with certificates and a procjon serving from
//! it (with or without its HTTP status endpoint, posting to stdout or to a
//! webhook), further procjons trusting the same CA (the other half of an
//! HA pair), and agents pointed at it with short timings.

use super::{AgentCommand, TempDir};
use std::path::Path;
use std::process::Command;
use test_support::Daemon;
use test_support::daemon::Builder;

/// A temp dir with certificates and a running procjon.
pub struct Scene {
    /// The daemon (dropped, so killed, before the dir is removed).
    pub procjon: Daemon,
    /// The dir: certificates in `certs/`, the state file, test files.
    pub dir: TempDir,
}

impl Scene {
    /// Makes certificates and starts procjon.
    pub fn new() -> Scene {
        Scene::start(procjon)
    }

    /// Like [`Scene::new`], with procjon's HTTP status endpoint on a port
    /// of its own (`procjon.http`), for tests that read `/api/services`.
    pub fn with_http() -> Scene {
        Scene::start(procjon_with_http)
    }

    /// Like [`Scene::with_http`], with procjon posting to the webhook at
    /// `url` (a [`test_support::FakeSlack`]'s) instead of its stdout.
    pub fn with_webhook(url: &str) -> Scene {
        Scene::start(|dir| procjon_with_http(dir).webhook(url))
    }

    /// A scene whose procjon `daemon` configures (from
    /// [`procjon_with_http`], say).
    pub fn start(daemon: impl FnOnce(&TempDir) -> Builder) -> Scene {
        let dir = TempDir::new().with_certs();
        let procjon = daemon(&dir).start();
        Scene { procjon, dir }
    }

    /// Another procjon for this scene's agents, as an HA pair's second
    /// daemon: a dir and state file of its own, this scene's certificates
    /// (so the same agent certificate is trusted), notifications on its
    /// stdout and its HTTP status endpoint on a port of its own.
    pub fn peer(&self) -> Peer {
        self.peer_with(|builder| builder)
    }

    /// [`Scene::peer`], configured further by `configure` (e.g. to listen
    /// on a port reserved earlier).
    pub fn peer_with(&self, configure: impl FnOnce(Builder) -> Builder) -> Peer {
        let dir = TempDir::new();
        let procjon = configure(procjon_with_http(&dir).certs(self.dir.join("certs"))).start();
        Peer { procjon, _dir: dir }
    }

    /// An agent for `service` reporting to this procjon with a 2 s timeout
    /// and a 0.3 s period.
    pub fn agent(&self, service: &str) -> AgentCommand {
        AgentCommand::new(&self.dir)
            .service(service)
            .timing("2", "0.3")
            .endpoint(&self.procjon.endpoint())
    }

    /// Makes a further agent certificate from this scene's CA, with the
    /// identity `name` (`scripts/gen-certs.sh certs --agent NAME`, as users
    /// do); returns its certificate and key paths, relative to the dir,
    /// for [`AgentCommand::cert`] and [`AgentCommand::key`].
    #[track_caller]
    pub fn agent_identity(&self, name: &str) -> (String, String) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/gen-certs.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg(self.dir.join("certs"))
            .args(["--agent", name])
            .output()
            .unwrap_or_else(|err| panic!("running {}: {err}", script.display()));
        assert!(
            out.status.success(),
            "gen-certs.sh --agent {name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (format!("certs/{name}.pem"), format!("certs/{name}.key"))
    }
}

/// A further procjon of a [`Scene`] (see [`Scene::peer`]).
pub struct Peer {
    /// The daemon (dropped, so killed, before the dir is removed).
    pub procjon: Daemon,
    /// Its dir, with its state file: removed after the daemon is killed.
    _dir: TempDir,
}

/// procjon serving from `dir` as the agent's tests run it: with the
/// certificates of `dir/certs`, notifications printed on its stdout at once
/// (no pacing), and no HTTP status endpoint.
pub fn procjon(dir: &TempDir) -> Builder {
    procjon_with_http(dir).arg("--http").arg("off")
}

/// [`procjon`] with the HTTP status endpoint on `127.0.0.1:0` (the
/// builder's default when no `--http` is given).
pub fn procjon_with_http(dir: &TempDir) -> Builder {
    // The agents' tests go through statuses quickly: procjon's flapping
    // policy, whose tests are the daemon's own, would hold their lines.
    Daemon::builder(dir.path())
        .certs(dir.join("certs"))
        .arg("--slack-interval")
        .arg("0")
        .args(["--flap-changes", "0"])
}
