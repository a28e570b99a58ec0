//! One mutual-TLS connection to one procjon: connecting to an [`Endpoint`]
//! under a deadline, and the frame exchange: write one line, read the
//! one-line reply. Used by that endpoint's ping thread (and by `silence`);
//! every failure here is transient and ends in a reconnection.

use crate::endpoint::Endpoint;
use crate::error::one_line;
use procjon::frame::{ClientFrame, MAX_FRAME_LEN, ServerFrame};
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

/// A transient failure talking to procjon.
#[derive(Debug)]
pub(crate) enum ConnectionError {
    /// The host name could not be resolved.
    Resolve { endpoint: String, source: io::Error },
    /// No address of the endpoint accepted a TCP connection.
    Connect { addr: SocketAddr, source: io::Error },
    /// The TLS handshake failed (certificate refused, protocol error…).
    Handshake { addr: SocketAddr, source: io::Error },
    /// Writing a frame failed.
    Send { source: io::Error },
    /// Reading the reply failed.
    Receive {
        source: io::Error,
        timeout: Duration,
    },
    /// procjon closed the connection.
    Closed,
    /// procjon refused the agent's certificate (a TLS alert).
    CertificateRefused { addr: SocketAddr, alert: String },
    /// procjon's certificate is not trusted.
    ServerCertificate {
        addr: SocketAddr,
        host: String,
        reason: String,
    },
    /// procjon sent a line that isn't a reply.
    BadReply { reason: String },
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionError::Resolve { endpoint, source } => {
                write!(f, "resolving {endpoint}: {source}")
            }
            ConnectionError::Connect { addr, source } => {
                write!(f, "connecting to {addr}: {source}")
            }
            ConnectionError::Handshake { addr, source } => {
                write!(f, "TLS handshake with {addr}: {source}")
            }
            ConnectionError::Send { source } => write!(f, "sending a frame: {source}"),
            ConnectionError::Receive { source, timeout } if is_timeout(source) => {
                write!(f, "no reply within {timeout:?}")
            }
            ConnectionError::Receive { source, .. } => write!(f, "reading the reply: {source}"),
            ConnectionError::Closed => f.write_str("procjon closed the connection"),
            ConnectionError::CertificateRefused { addr, alert } => write!(
                f,
                "procjon at {addr} refused the agent's certificate ({alert}); check -c/-k and \
                 that the certificate was made by the CA procjon trusts"
            ),
            ConnectionError::ServerCertificate { addr, host, reason } => write!(
                f,
                "the certificate of {addr} is not trusted ({reason}); check that --root-cert \
                 is procjon's CA and that procjon's certificate is valid for {host}"
            ),
            ConnectionError::BadReply { reason } => {
                write!(f, "procjon sent an unreadable reply: {reason}")
            }
        }
    }
}

impl std::error::Error for ConnectionError {}

/// Names the certificate problems behind a TLS failure, which rustls
/// reports as an I/O error wrapping its own; others stay as `fallback`.
fn certificate_problem(
    err: io::Error,
    addr: SocketAddr,
    endpoint: &Endpoint,
    fallback: impl FnOnce(io::Error) -> ConnectionError,
) -> ConnectionError {
    use rustls::AlertDescription as Alert;
    match err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::AlertReceived(
            alert @ (Alert::BadCertificate
            | Alert::UnsupportedCertificate
            | Alert::CertificateRevoked
            | Alert::CertificateExpired
            | Alert::CertificateUnknown
            | Alert::UnknownCA
            | Alert::CertificateRequired
            | Alert::AccessDenied
            // rustls's answer to a certificate whose signature doesn't
            // verify, e.g. one made by another CA of the same name.
            | Alert::DecryptError),
        )) => ConnectionError::CertificateRefused {
            addr,
            alert: format!("{alert:?}"),
        },
        Some(rustls::Error::InvalidCertificate(reason)) => ConnectionError::ServerCertificate {
            addr,
            host: endpoint.host.clone(),
            reason: format!("{reason:?}"),
        },
        _ => fallback(err),
    }
}

fn is_timeout(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// An open, authenticated connection to procjon.
pub(crate) struct Connection {
    stream: BufReader<StreamOwned<ClientConnection, TcpStream>>,
    peer: SocketAddr,
    endpoint: Endpoint,
    timeout: Duration,
}

impl Connection {
    /// Connects to the first address of `endpoint` that answers and
    /// completes the TLS handshake. Every socket operation, connecting
    /// included, gives up after `timeout`.
    pub(crate) fn open(
        endpoint: &Endpoint,
        tls: &Arc<ClientConfig>,
        timeout: Duration,
    ) -> Result<Connection, ConnectionError> {
        let addrs: Vec<SocketAddr> = (endpoint.host.as_str(), endpoint.port)
            .to_socket_addrs()
            .map_err(|source| ConnectionError::Resolve {
                endpoint: endpoint.to_string(),
                source,
            })?
            .collect();
        let mut last = ConnectionError::Resolve {
            endpoint: endpoint.to_string(),
            source: io::Error::new(io::ErrorKind::NotFound, "the name has no address"),
        };
        for addr in addrs {
            match Self::open_addr(addr, endpoint, tls, timeout) {
                Ok(conn) => return Ok(conn),
                Err(err) => last = err,
            }
        }
        Err(last)
    }

    fn open_addr(
        addr: SocketAddr,
        endpoint: &Endpoint,
        tls: &Arc<ClientConfig>,
        timeout: Duration,
    ) -> Result<Connection, ConnectionError> {
        let connect = |source| ConnectionError::Connect { addr, source };
        let handshake = |source| ConnectionError::Handshake { addr, source };
        let mut sock = TcpStream::connect_timeout(&addr, timeout).map_err(connect)?;
        sock.set_read_timeout(Some(timeout)).map_err(connect)?;
        sock.set_write_timeout(Some(timeout)).map_err(connect)?;
        let _ = sock.set_nodelay(true);
        let mut conn = ClientConnection::new(tls.clone(), endpoint.server_name.clone())
            .map_err(|e| handshake(io::Error::other(e)))?;
        while conn.is_handshaking() {
            conn.complete_io(&mut sock)
                .map_err(|err| certificate_problem(err, addr, endpoint, handshake))?;
        }
        Ok(Connection {
            stream: BufReader::new(StreamOwned::new(conn, sock)),
            peer: addr,
            endpoint: endpoint.clone(),
            timeout,
        })
    }

    /// The address connected to.
    pub(crate) fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Gives every socket operation from now on `timeout` instead of the
    /// one the connection was opened with.
    pub(crate) fn set_timeout(&mut self, timeout: Duration) -> Result<(), ConnectionError> {
        let sock = &self.stream.get_ref().sock;
        let set = |source| ConnectionError::Send { source };
        sock.set_read_timeout(Some(timeout)).map_err(set)?;
        sock.set_write_timeout(Some(timeout)).map_err(set)?;
        self.timeout = timeout;
        Ok(())
    }

    /// Sends one frame and reads procjon's reply to it.
    pub(crate) fn exchange(&mut self, frame: &ClientFrame) -> Result<ServerFrame, ConnectionError> {
        let line = frame.encode();
        log::trace!(
            "procjon at {}: sending {:?}",
            self.endpoint,
            String::from_utf8_lossy(&line)
        );
        let stream = self.stream.get_mut();
        stream
            .write_all(&line)
            .and_then(|()| stream.flush())
            .map_err(|source| ConnectionError::Send { source })?;
        let reply = self.read_line()?;
        log::trace!(
            "procjon at {}: received {:?}",
            self.endpoint,
            String::from_utf8_lossy(&reply)
        );
        ServerFrame::decode(&reply).map_err(|err| ConnectionError::BadReply {
            reason: one_line(&err.message),
        })
    }

    /// Reads one reply line, without its `\n`, refusing lines longer than
    /// a frame may be.
    fn read_line(&mut self) -> Result<Vec<u8>, ConnectionError> {
        let mut line = Vec::with_capacity(64);
        let limit = MAX_FRAME_LEN as u64 + 1;
        let read = (&mut self.stream)
            .take(limit)
            .read_until(b'\n', &mut line)
            .map_err(|source| match source.kind() {
                // rustls: the socket closed without a TLS close_notify, as
                // when procjon is killed or restarted.
                io::ErrorKind::UnexpectedEof => ConnectionError::Closed,
                // With TLS 1.3, procjon checks the agent's certificate after
                // the client's side of the handshake: its refusal arrives here.
                _ => certificate_problem(source, self.peer, &self.endpoint, |source| {
                    ConnectionError::Receive {
                        source,
                        timeout: self.timeout,
                    }
                }),
            })?;
        match line.last() {
            Some(b'\n') => {
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                Ok(line)
            }
            _ if read as u64 >= limit => Err(ConnectionError::BadReply {
                reason: format!("a line over {MAX_FRAME_LEN} bytes"),
            }),
            _ => Err(ConnectionError::Closed),
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let stream = self.stream.get_mut();
        stream.conn.send_close_notify();
        let _ = stream.flush();
    }
}
