//! Start-up: loads TLS, replays the state file, binds the ports, starts the
//! store writer, notifier, timer and HTTP status threads, then runs the
//! accept loop. The wiring of who sends what to whom is described in the
//! crate docs.

use crate::config::{Config, ConfigError, Sink};
use crate::connection::{ConnectionStats, Context};
use crate::http::{self, StatusSources};
use crate::notifier::{Notifier, NotifyStats};
use crate::registry::{Registry, Restored};
use crate::store::{self, LiveState, State, StoreHealth, Writer, WriterLinks};
use crate::timer::TimerHandle;
use crate::{listener, tls};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Instant;

/// Runs the daemon. Returns only on a start-up error.
pub fn serve(config: Config) -> Result<(), ConfigError> {
    let tls = tls::server_config(&config.root_cert, &config.cert, &config.key)?;
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
    log::info!(
        "state file {}: {} services, {} notifications pending",
        config.state.display(),
        state.services.len(),
        state.outbox.len()
    );
    // The services' state goes to the registry, the only holder of it at
    // run time; the outbox to the store writer and the notifier.
    let State {
        services,
        outbox,
        next_seq,
        lines,
        interner,
    } = state;

    let (store_tx, store_rx) = mpsc::channel();
    let (notify_tx, notify_rx) = mpsc::channel();
    let notify_stats = Arc::new(NotifyStats::default());
    let notifier = Notifier::new(
        config.sink.clone(),
        config.notify,
        outbox.values().cloned().collect(),
        notify_rx,
        store_tx.clone(),
        notify_stats.clone(),
    );
    let timer = TimerHandle::new();
    let restored = Restored {
        services,
        interner,
        next_seq,
    };
    let registry = Arc::new(Registry::new(
        restored,
        store_tx,
        timer.clone(),
        started,
        config.limits,
    ));
    let store_health = Arc::new(StoreHealth::default());
    let live: Arc<dyn LiveState> = registry.clone();
    let writer = Writer::new(
        file,
        outbox,
        lines,
        WriterLinks {
            inbox: store_rx,
            notifier: notify_tx,
            health: store_health.clone(),
            live: Arc::downgrade(&live),
        },
    );
    drop(live);

    spawn("notifier", move || notifier.run())?;
    spawn("store", move || writer.run())?;
    let expiring = registry.clone();
    spawn("timer", move || {
        timer.run(|service, generation, now| expiring.expire(service, generation, now))
    })?;

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
                notify: notify_stats,
                store: store_health,
                state_path: config.state.clone(),
            });
            spawn("http", move || http::run(socket, sources))?;
        }
        None => log::info!("http status off (--http off)"),
    }

    let ctx = Arc::new(Context {
        tls,
        registry,
        stats: connection_stats,
        handshake_timeout: config.handshake_timeout,
        idle_timeout: config.idle_timeout,
        max_connections: config.max_connections,
    });
    match listener.local_addr() {
        Ok(addr) => log::info!("listening on {addr}"),
        Err(_) => log::info!("listening on {}", config.endpoint),
    }
    listener::run(listener, ctx);
    Ok(())
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
