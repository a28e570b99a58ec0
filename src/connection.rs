//! One agent connection: the TLS handshake under a deadline, then the read
//! loop that splits newline-delimited frames, hands each to the registry and
//! answers every frame with exactly one line, in order. Runs on its own
//! thread, spawned by the listener; shares only the registry and counters.

use crate::frame::{
    self, CanonicalPing, ClientFrame, ErrorCode, FrameError, MAX_FRAME_LEN, OK_LINE,
};
use crate::registry::{Ping, Registry};
use crate::tls;
use rustls::{ServerConfig, ServerConnection};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// Daemon-wide connection counters, for status reporting.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    /// Connections currently open (handshaking included).
    pub open: AtomicU64,
    /// Pings accepted.
    pub pings: AtomicU64,
    /// Connections refused because `--max-connections` were open.
    pub refused_busy: AtomicU64,
    /// Frames refused, by code (see [`ConnectionStats::rejected`]).
    rejected: [AtomicU64; REJECT_CODES.len()],
}

/// The codes counted in [`ConnectionStats`], in order.
pub const REJECT_CODES: [ErrorCode; 8] = [
    ErrorCode::BadFrame,
    ErrorCode::BadService,
    ErrorCode::NotRegistered,
    ErrorCode::BadStatus,
    ErrorCode::TooLarge,
    ErrorCode::Busy,
    ErrorCode::Internal,
    ErrorCode::Forbidden,
];

impl ConnectionStats {
    /// Frames refused with `code` so far.
    pub fn rejected(&self, code: ErrorCode) -> u64 {
        REJECT_CODES
            .iter()
            .position(|c| *c == code)
            .map_or(0, |i| self.rejected[i].load(Ordering::Relaxed))
    }

    fn count_rejected(&self, code: ErrorCode) {
        if let Some(i) = REJECT_CODES.iter().position(|c| *c == code) {
            self.rejected[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What every connection thread shares.
pub struct Context {
    /// TLS settings (client certificates required); replaced as a whole on
    /// SIGHUP. Each connection keeps the settings it started with.
    pub tls: RwLock<Arc<ServerConfig>>,
    /// Set when procjon stops: connections close at their next read, and
    /// the listener stops accepting.
    pub stopping: AtomicBool,
    /// The service registry.
    pub registry: Arc<Registry>,
    /// Counters.
    pub stats: Arc<ConnectionStats>,
    /// Longest time a handshake may take.
    pub handshake_timeout: Duration,
    /// How long an established connection may stay silent; `None`: three
    /// times the longest registered timeout, at least [`MIN_IDLE_TIMEOUT`].
    pub idle_timeout: Option<Duration>,
    /// Most connections served at once; more are answered `busy`.
    pub max_connections: u64,
}

/// The least idle deadline when it is derived from the registered timeouts.
pub const MIN_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Identity shown and used for ownership when a client certificate has
/// neither a common name nor a DNS name.
pub const UNNAMED_IDENTITY: &str = "-";

impl Context {
    /// The TLS settings for a new connection.
    pub fn tls(&self) -> Arc<ServerConfig> {
        self.tls
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Puts new TLS settings in force for the connections that follow.
    pub fn set_tls(&self, tls: Arc<ServerConfig>) {
        *self.tls.write().unwrap_or_else(PoisonError::into_inner) = tls;
    }

    /// Whether procjon is stopping.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// The idle deadline in force now.
    fn idle_timeout(&self) -> Duration {
        self.idle_timeout
            .unwrap_or_else(|| (self.registry.longest_timeout() * 3).max(MIN_IDLE_TIMEOUT))
    }
}

/// How long a write of replies may block before the client is dropped (it
/// stopped reading).
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// Bytes read from TLS at a time.
const READ_CHUNK: usize = 16 * 1024;

/// Serves one accepted connection until it closes. Never panics on peer input.
pub fn serve(stream: TcpStream, peer: SocketAddr, ctx: &Context) {
    let _ = stream.set_nodelay(true);
    let mut conn = match ServerConnection::new(ctx.tls()) {
        Ok(conn) => conn,
        Err(err) => {
            log::error!("{peer}: cannot start TLS: {err}");
            return;
        }
    };
    let mut sock = stream;
    if let Err(err) = handshake(&mut conn, &mut sock, ctx.handshake_timeout) {
        log::warn!("{peer}: TLS handshake failed: {err}");
        return;
    }
    let identity = conn
        .peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(|cert| tls::certificate_identity(cert))
        .unwrap_or_else(|| UNNAMED_IDENTITY.into());
    let who = format!("{peer} ({identity})");
    log::debug!("{who}: connected");
    let _ = sock.set_write_timeout(Some(WRITE_TIMEOUT));
    let mut idle = ctx.idle_timeout();
    let _ = sock.set_read_timeout(Some(idle));
    let mut stream = rustls::Stream::new(&mut conn, &mut sock);
    let peer = Peer {
        who: &who,
        identity: &identity,
    };
    let mut refused = 0;
    let result = read_loop(&mut stream, &peer, ctx, &mut refused, |stream| {
        // The deadline follows the registered timeouts; a syscall only when it moves.
        let now = ctx.idle_timeout();
        if now != idle {
            idle = now;
            let _ = stream.sock.set_read_timeout(Some(idle));
        }
    });
    let unread_input = matches!(result, Ok(Ended::TooLarge));
    match result {
        Ok(Ended::Stopping) => log::debug!("{who}: closing: procjon is stopping"),
        Ok(_) => log::debug!("{who}: closed"),
        Err(err)
            if matches!(
                err.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            log::info!(
                "{who}: silent for {}; closing the connection",
                crate::message::human_duration(idle)
            );
        }
        Err(err) => log::debug!("{who}: connection ended: {err}"),
    }
    if refused > LOGGED_REFUSALS {
        log::warn!(
            "{who}: refused {refused} frames in all ({} not logged one by one)",
            refused - LOGGED_REFUSALS
        );
    }
    stream.conn.send_close_notify();
    let _ = stream.flush();
    if unread_input {
        linger(stream.sock);
    }
}

/// Most time and bytes [`linger`] spends on a peer that keeps sending.
const LINGER_TIME: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 1 << 20;

/// Closes our side, then reads and drops what the peer still sends, for a
/// bounded time. Closing a socket with unread input makes the kernel reset
/// the connection, and the peer then loses the reply that says why (an
/// agent still writing its oversized line gets "broken pipe" instead of
/// `too_large`).
fn linger(sock: &mut TcpStream) {
    let _ = sock.shutdown(std::net::Shutdown::Write);
    let deadline = Instant::now() + LINGER_TIME;
    let mut drained = 0;
    let mut sink = [0u8; 4096];
    while drained < LINGER_BYTES {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || sock.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match sock.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(n) => drained += n,
        }
    }
}

/// How a connection's read loop ended without an I/O error.
enum Ended {
    /// The peer closed the connection.
    ByPeer,
    /// A line over the limit: procjon answered `too_large` and closes,
    /// with the rest of the line unread.
    TooLarge,
    /// procjon is stopping: what was read is not applied, and the agent
    /// sends it again to the next procjon.
    Stopping,
}

/// Who is on the other end: for log lines and ownership checks.
struct Peer<'a> {
    /// `ADDR (IDENTITY)`, the prefix of every log line about the connection.
    who: &'a str,
    /// The client certificate identity.
    identity: &'a str,
}

/// Refused frames logged one by one per connection. Past these they are
/// only counted, and the count is logged when the connection ends: otherwise
/// a peer could make procjon write a log line for every two bytes it sends.
const LOGGED_REFUSALS: u64 = 10;

/// Counts a refused frame and logs it while the connection is under
/// [`LOGGED_REFUSALS`]; later ones at trace level only.
fn note_refusal(who: &str, err: &FrameError, refused: &mut u64, ctx: &Context) {
    *refused += 1;
    ctx.stats.count_rejected(err.code);
    match (*refused).cmp(&LOGGED_REFUSALS) {
        std::cmp::Ordering::Less => log::warn!("{who}: refused frame: {err}"),
        std::cmp::Ordering::Equal => log::warn!(
            "{who}: refused frame: {err}; further refusals on this connection are counted, not logged"
        ),
        std::cmp::Ordering::Greater => log::trace!("{who}: refused frame: {err}"),
    }
}

fn read_loop<'a>(
    stream: &mut rustls::Stream<'a, ServerConnection, TcpStream>,
    peer: &Peer<'_>,
    ctx: &Context,
    refused: &mut u64,
    mut before_read: impl FnMut(&mut rustls::Stream<'a, ServerConnection, TcpStream>),
) -> io::Result<Ended> {
    let who = peer.who;
    let mut buf: Vec<u8> = Vec::new();
    // On the heap, zeroed by the allocator: an idle agent's connection
    // touches only the pages its pings fill, where a zeroed stack array
    // would touch all 16 KiB of it.
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut out: Vec<u8> = Vec::new();
    loop {
        before_read(stream);
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Ok(Ended::ByPeer),
            Ok(_) if ctx.is_stopping() => return Ok(Ended::Stopping),
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        log::trace!("{who}: read {:?}", String::from_utf8_lossy(&chunk[..n]));
        buf.extend_from_slice(&chunk[..n]);
        let mut start = 0;
        let mut pings = 0;
        let mut close = false;
        let mut received = Instant::now();
        // Canonical pings waiting to be applied under one hold of the lock.
        let mut pending = Vec::new();
        while let Some(i) = frame::find_byte(&buf[start..], b'\n') {
            let mut line = &buf[start..start + i];
            start += i + 1;
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            if line.is_empty() {
                continue;
            }
            if let Some(ping) = frame::canonical_ping(line) {
                pending.push(ping);
                continue;
            }
            pings += apply_pings(&mut pending, received, peer, ctx, refused, &mut out);
            let handled = handle(line, peer.identity, ctx);
            // A registration waits for the disk: the pings after it were
            // not received before it was done.
            received = Instant::now();
            match handled {
                Ok(is_ping) => {
                    pings += u64::from(is_ping);
                    out.extend_from_slice(OK_LINE);
                }
                Err(err) => {
                    note_refusal(who, &err, refused, ctx);
                    out.extend_from_slice(&err.to_reply().encode());
                    if err.code == ErrorCode::TooLarge {
                        close = true;
                        break;
                    }
                }
            }
        }
        pings += apply_pings(&mut pending, received, peer, ctx, refused, &mut out);
        buf.drain(..start);
        if !close && buf.len() > MAX_FRAME_LEN {
            let err = FrameError::new(
                ErrorCode::TooLarge,
                format!("line is over the {MAX_FRAME_LEN}-byte limit; closing the connection"),
            );
            note_refusal(who, &err, refused, ctx);
            out.extend_from_slice(&err.to_reply().encode());
            close = true;
        }
        if pings > 0 {
            ctx.stats.pings.fetch_add(pings, Ordering::Relaxed);
        }
        if !out.is_empty() {
            stream.write_all(&out)?;
            stream.flush()?;
            out.clear();
        }
        if close {
            return Ok(Ended::TooLarge);
        }
        if buf.capacity() > 4 * READ_CHUNK && buf.len() < READ_CHUNK {
            buf.shrink_to(READ_CHUNK);
        }
        if out.capacity() > 4 * READ_CHUNK {
            out = Vec::new();
        }
    }
}

/// Applies the canonical pings of one read, in order, through one
/// [`PingBatch`](crate::registry::PingBatch) (one hold of the registry's
/// read lock), and appends their replies to `out`; returns how many were
/// accepted. Parsing happens before, outside the lock, so that connection
/// threads contend only for the lookups themselves. Refusals are logged
/// after the lock is released.
fn apply_pings(
    pending: &mut Vec<CanonicalPing<'_>>,
    received: Instant,
    peer: &Peer<'_>,
    ctx: &Context,
    refused: &mut u64,
    out: &mut Vec<u8>,
) -> u64 {
    if pending.is_empty() {
        return 0;
    }
    let mut accepted = 0;
    let mut refusals = Vec::new();
    let mut batch = ctx.registry.ping_batch(received);
    for canonical in pending.iter() {
        let ping = Ping {
            service: canonical.service,
            status: canonical.status,
            detail: canonical.detail,
            perfdata: &[],
        };
        match batch.ping(&ping, peer.identity) {
            Ok(()) => {
                accepted += 1;
                out.extend_from_slice(OK_LINE);
            }
            Err(err) => {
                out.extend_from_slice(&err.to_reply().encode());
                refusals.push(err);
            }
        }
    }
    drop(batch);
    for err in &refusals {
        note_refusal(peer.who, err, refused, ctx);
    }
    pending.clear();
    accepted
}

/// Applies one frame other than a canonical ping (so serde's path straight
/// away: the fast path was tried already); `Ok(true)` for an accepted ping.
fn handle(line: &[u8], identity: &str, ctx: &Context) -> Result<bool, FrameError> {
    match ClientFrame::decode_general(line)? {
        ClientFrame::Ping {
            service,
            status,
            detail,
            perfdata,
        } => {
            let ping = Ping {
                service: &service,
                status,
                detail: detail.as_deref(),
                perfdata: &perfdata,
            };
            ctx.registry.ping(&ping, identity).map(|()| true)
        }
        ClientFrame::Register(registration) => {
            log::debug!("register {registration:?}");
            ctx.registry
                .register(registration, identity)
                .map(|()| false)
        }
        ClientFrame::Silence {
            service,
            for_s,
            reason,
        } => {
            log::debug!("silence {service} for {for_s} s ({reason:?})");
            ctx.registry
                .silence(
                    &service,
                    Duration::from_secs_f64(for_s),
                    reason.as_deref(),
                    Some(identity),
                    identity,
                )
                .map(|()| false)
        }
        ClientFrame::Unsilence { service } => {
            log::debug!("unsilence {service}");
            ctx.registry
                .unsilence(&service, Some(identity))
                .map(|()| false)
        }
        ClientFrame::Unregister { service, reason } => {
            log::debug!("unregister {service} ({reason:?})");
            ctx.registry
                .unregister(&service, reason.as_deref(), identity)
                .map(|()| false)
        }
    }
}

/// Answers a connection over the cap with one `busy` line and closes it.
/// Runs on the listener's single rejecter thread, never on a thread of its own.
pub fn refuse_busy(stream: TcpStream, peer: SocketAddr, ctx: &Context) {
    let Ok(mut conn) = ServerConnection::new(ctx.tls()) else {
        return;
    };
    let mut sock = stream;
    let deadline = ctx.handshake_timeout.min(BUSY_HANDSHAKE_TIMEOUT);
    if handshake(&mut conn, &mut sock, deadline).is_err() {
        return;
    }
    let reply = FrameError::new(
        ErrorCode::Busy,
        format!(
            "procjon serves its maximum of {} connections (--max-connections); try again later",
            ctx.max_connections
        ),
    )
    .to_reply()
    .encode();
    let _ = sock.set_write_timeout(Some(BUSY_HANDSHAKE_TIMEOUT));
    let mut stream = rustls::Stream::new(&mut conn, &mut sock);
    let _ = stream.write_all(&reply);
    stream.conn.send_close_notify();
    let _ = stream.flush();
    log::debug!("{peer}: refused: busy");
}

/// How long the rejecter spends on one connection at most.
const BUSY_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);

/// Drives the handshake to completion or fails once `timeout` has passed in
/// total, however slowly the peer trickles bytes.
fn handshake(
    conn: &mut ServerConnection,
    sock: &mut TcpStream,
    timeout: Duration,
) -> io::Result<()> {
    let mut io = DeadlineIo {
        sock,
        deadline: Instant::now() + timeout,
    };
    while conn.is_handshaking() {
        conn.complete_io(&mut io)?;
    }
    Ok(())
}

/// A socket whose reads and writes fail with `TimedOut` after a deadline.
struct DeadlineIo<'a> {
    sock: &'a mut TcpStream,
    deadline: Instant,
}

impl DeadlineIo<'_> {
    fn left(&self) -> io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "handshake deadline passed",
            ))
        } else {
            Ok(left)
        }
    }
}

impl Read for DeadlineIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.left()?;
        self.sock.set_read_timeout(Some(left))?;
        self.sock.read(buf).map_err(timed_out)
    }
}

impl Write for DeadlineIo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.left()?;
        self.sock.set_write_timeout(Some(left))?;
        self.sock.write(buf).map_err(timed_out)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sock.flush()
    }
}

/// Socket timeouts surface as `WouldBlock` on Unix; call them what they are.
fn timed_out(err: io::Error) -> io::Error {
    if err.kind() == io::ErrorKind::WouldBlock {
        io::Error::new(io::ErrorKind::TimedOut, "handshake deadline passed")
    } else {
        err
    }
}
