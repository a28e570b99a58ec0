//! Two monitors: two procjons fed by one agent (`-e a,b`), both sending to
//! a real two-peer Alertmanager cluster (Debian's prometheus-alertmanager):
//! the outage reaches the receiver once, not twice, and each procjon
//! carries it alone when the other is gone.

use crate::support::{Scene, procjon_with_http};
use serde_json::Value;
use std::time::{Duration, Instant};
use test_support::alertmanager::Cluster;
use test_support::daemon::Builder;

const WAIT: Duration = Duration::from_secs(20);

/// `builder` sending alerts to every peer of `cluster`, resent each second.
fn with_alertmanager(builder: Builder, cluster: &Cluster) -> Builder {
    let mut builder = builder.args(["--alertmanager-resend", "1s"]);
    for peer in &cluster.peers {
        builder = builder.args(["--alertmanager", &peer.url]);
    }
    builder
}

/// The notifications the receiver gets within `window`.
fn notifications(cluster: &Cluster, window: Duration) -> Vec<Value> {
    let deadline = Instant::now() + window;
    let mut all = Vec::new();
    while let Some(request) = cluster
        .receiver
        .next(deadline.saturating_duration_since(Instant::now()))
    {
        all.push(serde_json::from_str(&request.body).expect("a JSON notification"));
    }
    all
}

/// Those of `bodies` that are about web-1's outage with `status`.
fn outage<'a>(bodies: &'a [Value], status: &str) -> Vec<&'a Value> {
    bodies
        .iter()
        .filter(|b| {
            b["status"] == status
                && b["groupLabels"]["alertname"] == "ProcjonServiceUnavailable"
                && b["groupLabels"]["service"] == "web-1"
        })
        .collect()
}

#[test]
fn two_procjons_fed_by_one_agent_notify_once() {
    let Some(cluster) = Cluster::start(2) else {
        return;
    };
    let a = Scene::start(|dir| with_alertmanager(procjon_with_http(dir), &cluster));
    let b = a.peer_with(|builder| with_alertmanager(builder, &cluster));
    let endpoints = format!("{},{}", a.procjon.endpoint(), b.procjon.endpoint());
    let mut agent = a.agent("web-1").endpoint(&endpoints).args(["ping"]).start();
    a.procjon.stdout.expect_line("web-1 is available");
    b.procjon.stdout.expect_line("web-1 is available");

    // The agent's host dies: both procjons see the outage and both send it.
    agent.kill();
    for procjon in [&a.procjon, &b.procjon] {
        procjon.stdout.expect("the outage", WAIT, |l| {
            l.starts_with("web-1 is not available")
        });
    }
    // One alert on each peer (the two senders' alerts are one), and one
    // notification, over a window longer than the peers' dedup needs
    // (peer timeout 2 s, group interval 1 s) several times over.
    let bodies = notifications(&cluster, Duration::from_secs(8));
    let firing = outage(&bodies, "firing");
    assert_eq!(
        firing.len(),
        1,
        "notified {} times: {bodies:#?}",
        firing.len()
    );
    for peer in 0..2 {
        let alerts: Vec<Value> = cluster
            .alerts(peer)
            .into_iter()
            .filter(|a| a["labels"]["alertname"] == "ProcjonServiceUnavailable")
            .collect();
        assert_eq!(alerts.len(), 1, "peer {peer}: {alerts:#?}");
        assert_eq!(alerts[0]["labels"]["service"], "web-1");
        assert_eq!(alerts[0]["labels"]["owner"], "procjonagent");
    }

    // One procjon gone: the other keeps the alert firing (it would end 4 s
    // after the last resend otherwise), and nobody hears of it again.
    let b_log = b.procjon.kill();
    assert!(b_log.contains("sending alerts to Alertmanager"), "{b_log}");
    let later = notifications(&cluster, Duration::from_secs(8));
    assert!(
        outage(&later, "resolved").is_empty() && outage(&later, "firing").is_empty(),
        "the surviving procjon let the outage end or notified it again: {later:#?}"
    );
    for peer in 0..2 {
        assert!(
            cluster
                .alerts(peer)
                .iter()
                .any(|a| a["labels"]["alertname"] == "ProcjonServiceUnavailable"),
            "peer {peer} lost the alert"
        );
    }
}
