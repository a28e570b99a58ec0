//! Start-up, signals and stop. [`serve`] loads TLS, replays the state file,
//! binds the ports, starts every thread (the wiring of who sends what to
//! whom is described in the crate docs), tells systemd it is ready, then
//! waits on the main thread for signals: SIGHUP reloads the certificates,
//! SIGTERM or SIGINT stop procjon gracefully (a second one at once).

use crate::cert_expiry::{CertExpiry, unix_now};
use crate::config::{Config, ConfigError, Sink};
use crate::connection::{ConnectionStats, Context};
use crate::health::Health;
use crate::heartbeat::Heartbeat;
use crate::http::{self, StatusSources};
use crate::message::{human_duration, rfc3339};
use crate::progress::Threads;
use crate::registry::{Registry, Restored};
use crate::signal::Signal;
use crate::sinks::{Deliveries, Sinks};
use crate::store::{
    self, LastSeen, LiveState, Record, State, StoreCmd, StoreHealth, Timestamp, Writer, WriterLinks,
};
use crate::systemd::Systemd;
use crate::timer::{Due, TimerHandle};
use crate::watchdog::{ALIVE_EVERY, Watchdog};
use crate::{listener, tls};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

/// Runs the daemon until a stop signal. Returns an error only at start-up.
pub fn serve(config: Config, signals: Receiver<Signal>) -> Result<(), ConfigError> {
    let tls = tls::server_config(&config.root_cert, &config.cert, &config.key)?;
    let cert = Arc::new(CertExpiry::new(config.cert.clone()));
    cert.set(server_not_after(&config));
    let (state, file) = store::open(&config.state)?;
    let listener = listener::bind(&config.endpoint)?;
    let http_socket = config.http.as_deref().map(http::bind).transpose()?;
    let started = Instant::now();

    match &config.sink {
        Sink::Stdout => log::info!(
            "no Slack webhook set (--slack-webhook or PROCJON_SLACK_WEBHOOK): printing notifications to standard output"
        ),
        Sink::Slack(url) => log::info!("posting notifications to Slack webhook {url}"),
    }
    log_sinks(&config);
    log::info!(
        "state file {}: {} services, {} notifications pending",
        config.state.display(),
        state.services.len(),
        state.outbox.len()
    );
    let back = back_online(state.last_seen, state.services.len(), &config);
    // The services' state goes to the registry, the only holder of it at
    // run time; the outbox to the store writer and the notifier.
    let State {
        services,
        outbox,
        next_seq,
        lines,
        last_seen,
        interner,
        ..
    } = state;

    let (store_tx, store_rx) = mpsc::channel();
    let sinks = Sinks::new(&config);
    let deliveries = sinks.deliveries();
    let threads = Threads::new(deliveries.progress());
    let timer = TimerHandle::new();
    let restored = Restored {
        services,
        interner,
        next_seq,
    };
    let registry = Arc::new(Registry::new(
        restored,
        store_tx.clone(),
        timer.clone(),
        started,
        config.limits,
        config.policy,
    ));
    if let Some(text) = back {
        // Before any thread runs: the first announcement of this run.
        log::info!("{text}");
        registry.announce_self(text);
    }
    let store_health = Arc::new(StoreHealth::default());
    let live: Arc<dyn LiveState> = registry.clone();
    // What the channel last saw of each service, for the Alertmanager
    // book (only then: with 100,000 services it is a sizeable copy).
    let seen = if config.alertmanager.is_some() {
        registry.channel_seen()
    } else {
        Vec::new()
    };
    let sinks_outbox = outbox.clone();
    let writer = Writer::new(
        file,
        outbox,
        lines,
        last_seen,
        WriterLinks {
            inbox: store_rx,
            outlets: sinks.outlets(),
            sinks: sinks.marks(),
            health: store_health.clone(),
            live: Arc::downgrade(&live),
            progress: threads.store.clone(),
        },
    );
    drop(live);

    spawn("store", move || writer.run())?;
    let expiring = registry.clone();
    let timer_progress = threads.timer.clone();
    let timer_thread = timer.clone();
    spawn("timer", move || {
        timer_thread.run(|due, now| {
            let _busy = timer_progress.busy();
            match due.due {
                Due::Expiry => expiring.expire(&due.service, due.generation, now),
                Due::Policy => expiring.policy_due(&due.service, due.generation, now),
                Due::Reminders => expiring.remind(now),
            }
        })
    })?;

    let liveness = &config.liveness;
    let health = Arc::new(Health {
        threads,
        deliveries: deliveries.clone(),
        store: store_health.clone(),
        stall_after: liveness.stall_after,
        webhook_fail_after: liveness.heartbeat_fail_after,
    });
    sinks.start(
        &config,
        &sinks_outbox,
        &seen,
        &store_tx,
        &health,
        &|name, body| spawn(name, body),
    )?;
    drop((sinks_outbox, seen));
    let systemd = Systemd::from_env().map(Arc::new);
    match &liveness.heartbeat_url {
        Some(url) => {
            log::info!(
                "heartbeat to {url} every {}",
                human_duration(liveness.heartbeat_interval)
            );
            let heartbeat = Heartbeat::new(
                url.clone(),
                liveness.heartbeat_interval,
                config.notify.timeout,
                health.clone(),
            );
            spawn("heartbeat", move || heartbeat.run())?;
        }
        None => log::info!("heartbeat off (no --heartbeat-url or PROCJON_HEARTBEAT_URL)"),
    }

    let connection_stats = Arc::new(ConnectionStats::default());
    match http_socket {
        Some(socket) => {
            match socket.local_addr() {
                Ok(addr) => log::info!("http status on {addr}"),
                Err(_) => log::info!("http status on {}", config.http.as_deref().unwrap_or("?")),
            }
            let sources = Arc::new(StatusSources {
                registry: registry.clone(),
                connections: connection_stats.clone(),
                deliveries: deliveries.clone(),
                store: store_health,
                state_path: config.state.clone(),
                cert: cert.clone(),
            });
            spawn("http", move || http::run(socket, sources))?;
        }
        None => log::info!("http status off (--http off)"),
    }

    let ctx = Arc::new(Context {
        tls: tls.into(),
        stopping: false.into(),
        registry: registry.clone(),
        stats: connection_stats,
        handshake_timeout: config.handshake_timeout,
        idle_timeout: config.idle_timeout,
        max_connections: config.max_connections,
    });
    let addr = listener.local_addr().ok();
    match addr {
        Some(addr) => log::info!("listening on {addr}"),
        None => log::info!("listening on {}", config.endpoint),
    }
    let accepting = ctx.clone();
    spawn("listener", move || listener::run(listener, accepting))?;
    if let Some(systemd) = &systemd {
        systemd.notify("READY=1");
    }
    let watchdog = Watchdog {
        systemd: systemd.clone(),
        health,
        registry,
        deliveries: deliveries.clone(),
        store: store_tx.clone(),
        alive_every: ALIVE_EVERY.min(liveness.announce_downtime_after / 2),
        cert: cert.clone(),
    };
    spawn("watchdog", move || watchdog.run())?;

    let running = Running {
        config: &config,
        ctx,
        cert,
        timer,
        store: store_tx,
        deliveries,
        systemd,
        listening: addr,
    };
    loop {
        match signals.recv() {
            Ok(Signal::Hangup) => running.reload_tls(),
            Ok(signal) => {
                running.stop(signal, &signals);
                return Ok(());
            }
            // Nobody forwards signals (they keep their default action).
            Err(_) => loop {
                std::thread::park();
            },
        }
    }
}

/// Logs where announcements go besides the default channel.
fn log_sinks(config: &Config) {
    for route in &config.routes {
        match &route.to {
            Some(url) => log::info!(
                "posting the notifications of {}'s services to Slack webhook {url}",
                route.owner
            ),
            None => log::info!(
                "not posting the notifications of {}'s services to Slack (--route {}=off)",
                route.owner,
                route.owner
            ),
        }
    }
    for url in &config.json_webhooks {
        log::info!("posting notifications as JSON events to {url}");
    }
    if let Some(am) = &config.alertmanager {
        let peers: Vec<String> = am.peers.iter().map(|p| p.host().to_string()).collect();
        log::info!(
            "sending alerts to Alertmanager {} every {}{}",
            peers.join(", "),
            human_duration(am.resend),
            if am.watchdog {
                ", with the ProcjonWatchdog alert"
            } else {
                ""
            }
        );
    }
}

/// The line that tells the channel procjon is back, if it is owed one: after
/// a planned stop always, after a crash or a power cut when procjon was down
/// for longer than `--announce-downtime-after`. Never on a first start.
fn back_online(last_seen: Option<LastSeen>, services: usize, config: &Config) -> Option<String> {
    let seen = last_seen?;
    let down = Duration::from_secs(unix_now().saturating_sub(seen.at));
    if seen.stopped {
        return Some(format!(
            "procjon is back after {} (planned restart)",
            human_duration(down)
        ));
    }
    (down >= config.liveness.announce_downtime_after).then(|| {
        format!(
            "procjon is back after {} (down since {}); {services} services are being checked again",
            human_duration(down),
            rfc3339(seen.at)
        )
    })
}

/// The `notAfter` of the server certificate file, if it can be read.
fn server_not_after(config: &Config) -> Option<u64> {
    let chain = tls::load_certs(&config.cert).ok()?;
    tls::not_after(chain.first()?)
}

/// What the main thread needs once everything runs.
struct Running<'a> {
    config: &'a Config,
    ctx: Arc<Context>,
    cert: Arc<CertExpiry>,
    timer: TimerHandle,
    store: Sender<StoreCmd>,
    deliveries: Arc<Deliveries>,
    systemd: Option<Arc<Systemd>>,
    listening: Option<SocketAddr>,
}

impl Running<'_> {
    /// SIGHUP: reads the certificate, key and CA files again. New
    /// handshakes use them; connected agents keep theirs. A file that
    /// doesn't load leaves the old settings in force, whole.
    fn reload_tls(&self) {
        let config = self.config;
        match tls::server_config(&config.root_cert, &config.cert, &config.key) {
            Ok(tls) => {
                self.ctx.set_tls(tls);
                self.cert.set(server_not_after(config));
                let expiry = self
                    .cert
                    .not_after()
                    .map_or_else(|| "unknown".to_string(), rfc3339);
                log::info!(
                    "SIGHUP: reloaded {}, {} and {}; new connections use them (certificate valid until {expiry})",
                    config.cert.display(),
                    config.key.display(),
                    config.root_cert.display()
                );
                if let Some(expired) = self.cert.expired(unix_now()) {
                    log::error!("{expired}");
                }
            }
            Err(err) => log::error!(
                "SIGHUP: {err}; keeping the certificates loaded before, which still serve"
            ),
        }
    }

    /// SIGTERM or SIGINT: stop accepting, close agent connections, stop
    /// expiring services (they can't reach procjon any more), write down
    /// that the stop is planned, give the sinks up to `--stop-timeout`
    /// to deliver what is queued (the rest stays in the outbox), and return.
    /// A second stop signal exits at once.
    fn stop(&self, signal: Signal, signals: &Receiver<Signal>) {
        let timeout = self.config.liveness.stop_timeout;
        log::info!(
            "{}: stopping; delivering queued notifications for up to {} (a second signal stops at once)",
            signal.name(),
            human_duration(timeout)
        );
        if let Some(systemd) = &self.systemd {
            systemd.notify("STOPPING=1");
        }
        self.ctx.stopping.store(true, Ordering::Relaxed);
        if let Some(addr) = self.listening {
            listener::wake(addr);
        }
        self.timer.stop();
        let deadline = Instant::now() + timeout;
        let stop = Record::Stop {
            at: Timestamp::now(),
        };
        if !self.flush(vec![stop], deadline, signals) {
            log::warn!("the state file did not take the stop record in time");
        }
        loop {
            let pending = self.deliveries.outbox_pending();
            if pending == 0 {
                // Delivery marks reach the store before the count drops.
                self.flush(Vec::new(), deadline, signals);
                break;
            }
            if Instant::now() >= deadline {
                log::warn!(
                    "{pending} notifications not delivered within --stop-timeout; they stay in the state file's outbox and are sent after the next start"
                );
                break;
            }
            wait_for_second_signal(signals, Duration::from_millis(20));
        }
        log::info!("stopped");
    }

    /// Appends `records` (none: just waits for what was sent before) and
    /// waits until they are on disk or `deadline` passes; false if not.
    fn flush(&self, records: Vec<Record>, deadline: Instant, signals: &Receiver<Signal>) -> bool {
        let (ack, durable) = mpsc::channel();
        let cmd = if records.is_empty() {
            StoreCmd::Barrier(ack)
        } else {
            StoreCmd::Append {
                records,
                ack: Some(ack),
            }
        };
        if self.store.send(cmd).is_err() {
            return false;
        }
        loop {
            match durable.recv_timeout(Duration::from_millis(20)) {
                Ok(result) => return result.is_ok(),
                Err(RecvTimeoutError::Disconnected) => return false,
                Err(RecvTimeoutError::Timeout) if Instant::now() >= deadline => return false,
                Err(RecvTimeoutError::Timeout) => wait_for_second_signal(signals, Duration::ZERO),
            }
        }
    }
}

/// Waits up to `time` for another signal while stopping; a second SIGTERM
/// or SIGINT ends the process at once.
fn wait_for_second_signal(signals: &Receiver<Signal>, time: Duration) {
    let received = if time.is_zero() {
        signals.try_recv().ok()
    } else {
        signals.recv_timeout(time).ok()
    };
    match received {
        Some(Signal::Hangup) | None => {}
        Some(signal) => {
            log::warn!("{}: stopping at once", signal.name());
            std::process::exit(i32::from(signal.exit_status()));
        }
    }
}

/// Starts one of the daemon's own threads. Should it ever panic, procjon
/// can't do its job any more: it exits (code 70) so that the service manager
/// restarts it, and the state file carries everything across.
fn spawn(name: &'static str, body: impl FnOnce() + Send + 'static) -> Result<(), ConfigError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).is_err() {
                log::error!(
                    "the {name} thread panicked (see above); exiting so that procjon is restarted"
                );
                std::process::exit(70);
            }
        })
        .map(drop)
        .map_err(|source| ConfigError::Thread {
            name: name.to_string(),
            source,
        })
}
