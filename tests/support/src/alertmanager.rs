//! A real Alertmanager cluster on 127.0.0.1 (Debian's
//! `prometheus-alertmanager`, which `.ci/install-test-deps.sh` installs):
//! N peers gossiping with each other, every one routing all alerts to one
//! webhook receiver ([`Receiver`]) with `send_resolved`, grouped by
//! `alertname` and `service` and sent after 1 s. Timings are scaled down
//! (peer timeout, settle time, gossip interval) so that the HA
//! deduplication shows within seconds. Peers are killed on drop.

use crate::{Receiver, TempDir};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a peer may take to start and join.
const START_LIMIT: Duration = Duration::from_secs(30);

/// The Alertmanager binary: Debian's name, else upstream's. When it is
/// missing: under CI a panic, otherwise `None` and a printed note that the
/// test is skipped.
#[track_caller]
pub fn binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["prometheus-alertmanager", "alertmanager"] {
        if let Some(found) = std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
        {
            return Some(found);
        }
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(
        !ci,
        "prometheus-alertmanager is not installed and CI is set: install the Debian package \
         prometheus-alertmanager (.ci/install-test-deps.sh does)"
    );
    eprintln!(
        "SKIPPED: prometheus-alertmanager is not installed (.ci/install-test-deps.sh installs it)"
    );
    None
}

/// One peer.
pub struct Peer {
    /// `http://127.0.0.1:PORT`, its API.
    pub url: String,
    port: u16,
    /// Its gossip address.
    pub cluster: String,
    child: Option<Child>,
    log: PathBuf,
}

/// A running cluster and its receiver.
pub struct Cluster {
    /// The peers, in the order they were started.
    pub peers: Vec<Peer>,
    /// Where every peer sends its notifications.
    pub receiver: Receiver,
    binary: PathBuf,
    dir: TempDir,
}

/// A free loopback port (bound, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Cluster {
    /// Starts `size` clustered peers; `None` when Alertmanager is not
    /// installed (outside CI). Returns once each peer reports the cluster
    /// ready with every member.
    #[track_caller]
    pub fn start(size: usize) -> Option<Cluster> {
        let binary = binary()?;
        let dir = TempDir::new();
        let receiver = Receiver::start();
        dir.write(
            "alertmanager.yml",
            &format!(
                "route:\n  receiver: hook\n  group_by: ['alertname', 'service']\n  group_wait: 1s\n  \
                 group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n- name: hook\n  webhook_configs:\n  \
                 - url: {}/alerts\n    send_resolved: true\n",
                receiver.base
            ),
        );
        let clusters: Vec<String> = (0..size)
            .map(|_| format!("127.0.0.1:{}", free_port()))
            .collect();
        let mut cluster = Cluster {
            peers: Vec::new(),
            receiver,
            binary,
            dir,
        };
        for (i, address) in clusters.iter().enumerate() {
            let others: Vec<&String> = clusters.iter().filter(|c| *c != address).collect();
            let peer = cluster.spawn(i, address, &others, free_port());
            cluster.peers.push(peer);
        }
        for i in 0..size {
            cluster.wait_ready(i, size);
        }
        Some(cluster)
    }

    fn spawn(&self, i: usize, cluster: &str, others: &[&String], port: u16) -> Peer {
        let storage = self.dir.join(&format!("peer-{i}"));
        std::fs::create_dir_all(&storage).expect("peer storage");
        let log = self.dir.join(&format!("peer-{i}.log"));
        let mut command = Command::new(&self.binary);
        command
            .arg(format!(
                "--config.file={}",
                self.dir.join("alertmanager.yml").display()
            ))
            .arg(format!("--storage.path={}", storage.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--cluster.listen-address={cluster}"))
            .arg(format!("--cluster.advertise-address={cluster}"))
            .args(["--cluster.peer-timeout=2s", "--cluster.settle-timeout=2s"])
            .args([
                "--cluster.gossip-interval=100ms",
                "--cluster.pushpull-interval=2s",
            ])
            .args(["--cluster.reconnect-interval=1s", "--log.level=debug"]);
        for other in others {
            command.arg(format!("--cluster.peer={other}"));
        }
        let out = std::fs::File::create(&log).expect("peer log");
        let err = out.try_clone().expect("peer log");
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("starting prometheus-alertmanager");
        Peer {
            url: format!("http://127.0.0.1:{port}"),
            port,
            cluster: cluster.to_string(),
            child: Some(child),
            log,
        }
    }

    /// Waits until peer `i` answers and sees `members` cluster members.
    #[track_caller]
    fn wait_ready(&self, i: usize, members: usize) {
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Ok(status) = self.get(i, "/api/v2/status") {
                let cluster = &status["cluster"];
                let peers = cluster["peers"].as_array().map_or(0, Vec::len);
                if cluster["status"] == "ready" && peers >= members {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "Alertmanager peer {i} not ready with {members} members within {START_LIMIT:?}:\n{}",
                self.log(i)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// GETs `path` from peer `i` as JSON.
    pub fn get(&self, i: usize, path: &str) -> Result<serde_json::Value, String> {
        let url = format!("{}{path}", self.peers[i].url);
        let text = crate::http_get(&url)?;
        serde_json::from_str(&text).map_err(|e| format!("{url}: {e}: {text}"))
    }

    /// The alerts peer `i` holds (`GET /api/v2/alerts`: active, silenced
    /// and inhibited ones; resolved ones are gone).
    #[track_caller]
    pub fn alerts(&self, i: usize) -> Vec<serde_json::Value> {
        match self.get(i, "/api/v2/alerts") {
            Ok(serde_json::Value::Array(alerts)) => alerts,
            other => panic!("alerts of peer {i}: {other:?}\n{}", self.log(i)),
        }
    }

    /// Kills peer `i` (SIGKILL), as a crash would.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.peers[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts peer `i` again on its old addresses, with the storage it
    /// had, and waits until it is back in the cluster.
    #[track_caller]
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        let cluster = self.peers[i].cluster.clone();
        let others: Vec<String> = self
            .peers
            .iter()
            .filter(|p| p.cluster != cluster)
            .map(|p| p.cluster.clone())
            .collect();
        let others: Vec<&String> = others.iter().collect();
        let port = self.peers[i].port;
        self.peers[i] = self.spawn(i, &cluster, &others, port);
        self.wait_ready(i, self.peers.len());
    }

    /// Peer `i`'s log.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.peers[i].log).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.peers.len() {
            self.kill(i);
        }
    }
}
