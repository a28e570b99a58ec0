//! The listener: binds the agent port and runs the accept loop, one thread
//! per connection. An accept error (e.g. out of file descriptors) or a failed
//! thread spawn is logged, the connection dropped, and the loop goes on after
//! a short pause: the listener itself never stops.

use crate::config::ConfigError;
use crate::connection::{self, Context};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Stack size of connection threads: enough for TLS and JSON, small enough
/// for ten thousand of them.
const CONNECTION_STACK: usize = 256 * 1024;
/// Pause after an accept error, so a shortage doesn't become a busy loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Resolves `endpoint` and binds the first address that works.
pub fn bind(endpoint: &str) -> Result<TcpListener, ConfigError> {
    bind_first(endpoint).map_err(|source| ConfigError::Listen {
        addr: endpoint.to_string(),
        source,
    })
}

/// Resolves `addr` (`HOST:PORT`) and binds the first of its addresses that
/// works; the error is the last one met. Also used for the HTTP status port.
pub fn bind_first(addr: &str) -> std::io::Result<TcpListener> {
    let mut last_err = std::io::Error::new(
        std::io::ErrorKind::AddrNotAvailable,
        "the name resolves to no address",
    );
    for addr in addr.to_socket_addrs()? {
        match TcpListener::bind(addr) {
            Ok(listener) => return Ok(listener),
            Err(err) => last_err = err,
        }
    }
    Err(last_err)
}

/// Connections over the cap waiting for the rejecter; more are just closed.
const REJECT_QUEUE: usize = 64;

/// Accepts connections until procjon stops (see [`wake`]). Over
/// `--max-connections`, a connection is handed to one rejecter thread that
/// answers `busy` and closes it: no thread and no buffers per refused
/// connection.
pub fn run(listener: TcpListener, ctx: Arc<Context>) {
    let (reject, rejected) = std::sync::mpsc::sync_channel::<(TcpStream, SocketAddr)>(REJECT_QUEUE);
    let rejecter_ctx = ctx.clone();
    let rejecter = std::thread::Builder::new()
        .name("rejecter".into())
        .stack_size(CONNECTION_STACK)
        .spawn(move || {
            for (stream, peer) in rejected {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    connection::refuse_busy(stream, peer, &rejecter_ctx)
                }));
            }
        });
    if let Err(err) = rejecter {
        log::warn!(
            "cannot start the rejecter thread: {err}; connections over the cap will be closed without a reply"
        );
    }
    let mut warned_full = false;
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(_) if ctx.is_stopping() => return,
            Ok(accepted) => accepted,
            Err(err) => {
                log::warn!("accepting a connection: {err}; retrying shortly");
                std::thread::sleep(ACCEPT_BACKOFF);
                continue;
            }
        };
        if ctx.stats.open.load(Ordering::Relaxed) >= ctx.max_connections {
            if !warned_full {
                log::warn!(
                    "{} connections open (--max-connections): answering new ones busy",
                    ctx.max_connections
                );
                warned_full = true;
            }
            ctx.stats.refused_busy.fetch_add(1, Ordering::Relaxed);
            // A full queue or a missing rejecter: just close it.
            let _ = reject.try_send((stream, peer));
            continue;
        }
        warned_full = false;
        ctx.stats.open.fetch_add(1, Ordering::Relaxed);
        let thread_ctx = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("connection".into())
            .stack_size(CONNECTION_STACK)
            .spawn(move || {
                let ctx = thread_ctx;
                let _open = OpenGuard(&ctx);
                let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    connection::serve(stream, peer, &ctx)
                }));
                if served.is_err() {
                    log::error!(
                        "{peer}: connection thread panicked (see above); connection dropped"
                    );
                }
            });
        if let Err(err) = spawned {
            // The closure (and with it the socket) was dropped: undo the count.
            ctx.stats.open.fetch_sub(1, Ordering::Relaxed);
            log::warn!("{peer}: cannot start a thread for the connection: {err}; dropped it");
            std::thread::sleep(ACCEPT_BACKOFF);
        }
    }
}

/// Decrements the open-connection count when the thread ends, however it ends.
struct OpenGuard<'a>(&'a Context);

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.stats.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Wakes the accept loop at `addr` (after [`Context::stopping`] is set) by
/// connecting to it, so that it sees the flag, returns and closes the port.
pub fn wake(addr: SocketAddr) {
    let ip = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => std::net::Ipv4Addr::LOCALHOST.into(),
        ip if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    let _ = TcpStream::connect_timeout(&SocketAddr::new(ip, addr.port()), Duration::from_secs(1));
}
