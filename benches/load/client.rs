//! The load client's building blocks: one protocol v1 connection over rustls
//! (built on the library's frame types and TLS configuration), small-stack
//! threads so ten thousand of them fit, and a [`Flag`] that threads can wait
//! on with a time limit. Every connection lives on its own thread; every read
//! has a timeout, so no thread outlives a stalled server for long.

use procjon::frame::{ClientFrame, OK_LINE, Registration};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Stack of a client thread: small (10,000 threads must fit), bigger in
/// debug builds whose frames are larger.
pub const STACK: usize = if cfg!(debug_assertions) {
    1024 * 1024
} else {
    128 * 1024
};
/// Longest wait for any one read, write or connect.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// Replies counted by a read.
#[derive(Debug, Default, Clone, Copy)]
pub struct Replies {
    /// `{"type":"ok"}` lines.
    pub ok: u64,
    /// Any other line (an error reply).
    pub refused: u64,
}

impl Replies {
    /// All replies.
    pub fn total(self) -> u64 {
        self.ok + self.refused
    }
}

/// One agent connection.
pub struct Conn {
    stream: StreamOwned<ClientConnection, TcpStream>,
    /// Received bytes not yet split into lines.
    pending: Vec<u8>,
    chunk: Vec<u8>,
}

impl Conn {
    /// Connects and completes the mTLS handshake.
    pub fn connect(addr: SocketAddr, tls: &Arc<ClientConfig>) -> io::Result<Conn> {
        let sock = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        sock.set_nodelay(true)?;
        sock.set_read_timeout(Some(IO_TIMEOUT))?;
        sock.set_write_timeout(Some(IO_TIMEOUT))?;
        let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
        let conn = ClientConnection::new(tls.clone(), name).map_err(io::Error::other)?;
        let mut stream = StreamOwned::new(conn, sock);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(Conn {
            stream,
            pending: Vec::with_capacity(1024),
            chunk: vec![0; 16 * 1024],
        })
    }

    /// Sends bytes (one or more whole frames).
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Reads once (blocking) and counts the complete reply lines.
    pub fn read_replies(&mut self) -> io::Result<Replies> {
        let n = self.stream.read(&mut self.chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        self.pending.extend_from_slice(&self.chunk[..n]);
        let mut replies = Replies::default();
        let mut start = 0;
        while let Some(i) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let line = &self.pending[start..=start + i];
            if line == OK_LINE {
                replies.ok += 1;
            } else {
                replies.refused += 1;
            }
            start += i + 1;
        }
        self.pending.drain(..start);
        Ok(replies)
    }

    /// Reads until `n` replies have arrived.
    pub fn expect_replies(&mut self, n: u64) -> io::Result<Replies> {
        let mut all = Replies::default();
        while all.total() < n {
            let got = self.read_replies()?;
            all.ok += got.ok;
            all.refused += got.refused;
        }
        Ok(all)
    }

    /// Sends `lines` (each one frame) in pipelined chunks of `window` and
    /// reads every reply. Calls `sent(i)` just before frame `i` goes out.
    pub fn pipeline(
        &mut self,
        lines: &[Vec<u8>],
        window: usize,
        mut sent: impl FnMut(usize, Instant),
    ) -> io::Result<Replies> {
        let mut all = Replies::default();
        for (n, batch) in lines.chunks(window.max(1)).enumerate() {
            let now = Instant::now();
            for i in 0..batch.len() {
                sent(n * window + i, now);
            }
            self.send(&batch.concat())?;
            let got = self.expect_replies(batch.len() as u64)?;
            all.ok += got.ok;
            all.refused += got.refused;
        }
        Ok(all)
    }

    /// Sends one frame and waits for its reply; true when it was `ok`.
    pub fn request(&mut self, line: &[u8]) -> io::Result<bool> {
        self.send(line)?;
        Ok(self.expect_replies(1)?.ok == 1)
    }
}

/// A `register` frame.
pub fn register_line(service: &str, timeout_s: f64) -> Vec<u8> {
    ClientFrame::Register(Registration {
        service: service.into(),
        timeout_s,
        statuses: vec!["ok".into(), "degraded".into()],
        policy: Default::default(),
    })
    .encode()
}

/// A `ping` frame with status 0.
pub fn ping_line(service: &str) -> Vec<u8> {
    ClientFrame::ping(service, 0).encode()
}

/// Starts a named client thread with a small stack.
pub fn spawn<T: Send + 'static>(
    name: &str,
    body: impl FnOnce() -> T + Send + 'static,
) -> io::Result<JoinHandle<T>> {
    std::thread::Builder::new()
        .name(name.into())
        .stack_size(STACK)
        .spawn(body)
}

/// A one-way flag that threads can wait on: "start now", "stop now". Reading
/// it is one atomic load, so hot loops can check it after every read.
#[derive(Default)]
pub struct Flag {
    set: AtomicBool,
    lock: Mutex<()>,
    changed: Condvar,
}

impl Flag {
    /// Sets the flag and wakes every waiter.
    pub fn set(&self) {
        self.set.store(true, Ordering::SeqCst);
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.changed.notify_all();
    }

    /// Whether it is set.
    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::Relaxed)
    }

    /// Waits until the flag is set or `until` passes; true when set.
    pub fn wait_until(&self, until: Instant) -> bool {
        let mut guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        while !self.set.load(Ordering::SeqCst) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            guard = self
                .changed
                .wait_timeout(guard, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }
}
