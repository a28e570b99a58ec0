//! The listener: binds the agent port and runs the accept loop, one thread
//! per connection. An accept error (e.g. out of file descriptors) or a failed
//! thread spawn is logged, the connection dropped, and the loop goes on after
//! a short pause: the listener itself never stops.

use crate::config::ConfigError;
use crate::connection::{self, Context};
use std::net::{TcpListener, ToSocketAddrs};
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

/// Accepts connections forever.
pub fn run(listener: TcpListener, ctx: Arc<Context>) {
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(err) => {
                log::warn!("accepting a connection: {err}; retrying shortly");
                std::thread::sleep(ACCEPT_BACKOFF);
                continue;
            }
        };
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
