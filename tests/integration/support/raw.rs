//! A TLS client driven by hand, for attacks: it keeps reading after a write
//! failed (the server closed on a too-large line), and sends without waiting
//! for replies. [`super::Client`] can't: rustls's `Stream` retries a pending
//! write before every read.

use rustls::ClientConnection;
use rustls::pki_types::ServerName;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub struct RawTls {
    conn: ClientConnection,
    sock: TcpStream,
    /// Plaintext received and not yet returned as lines.
    inbuf: Vec<u8>,
}

impl RawTls {
    /// Connects with the test agent certificate and completes the handshake.
    #[track_caller]
    pub fn connect(addr: SocketAddr) -> RawTls {
        RawTls::try_connect(addr).expect("connecting to procjon")
    }

    /// [`RawTls::connect`] that returns the error (procjon may be gone).
    pub fn try_connect(addr: SocketAddr) -> io::Result<RawTls> {
        let tls = super::client::agent_tls(super::certs());
        let mut sock = TcpStream::connect(addr)?;
        sock.set_read_timeout(Some(Duration::from_secs(10)))?;
        sock.set_write_timeout(Some(Duration::from_secs(10)))?;
        let mut conn =
            ClientConnection::new(tls, ServerName::try_from("localhost").unwrap()).unwrap();
        while conn.is_handshaking() {
            conn.complete_io(&mut sock)?;
        }
        Ok(RawTls {
            conn,
            sock,
            inbuf: Vec::new(),
        })
    }

    /// Encrypts and writes `bytes`; fails once the server has closed.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        // rustls buffers a bounded amount of plaintext: feed it in pieces.
        for piece in bytes.chunks(16 * 1024) {
            let mut rest = piece;
            while !rest.is_empty() {
                let n = self.conn.writer().write(rest)?;
                rest = &rest[n..];
                while self.conn.wants_write() {
                    self.conn.write_tls(&mut self.sock)?;
                }
            }
        }
        Ok(())
    }

    /// The next reply line without its `\n`; `Ok(None)` once the server closed.
    pub fn recv_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(i) = self.inbuf.iter().position(|&b| b == b'\n') {
                let line = self.inbuf[..i].to_vec();
                self.inbuf.drain(..=i);
                return Ok(Some(line));
            }
            let mut plain = [0u8; 16 * 1024];
            match self.conn.reader().read(&mut plain) {
                Ok(0) => return Ok(None),
                Ok(n) => {
                    self.inbuf.extend_from_slice(&plain[..n]);
                    continue;
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => return Err(err),
            }
            if self.conn.read_tls(&mut self.sock)? == 0 {
                return Ok(None);
            }
            self.conn
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
    }
}
