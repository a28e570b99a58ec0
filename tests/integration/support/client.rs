//! A protocol v1 client over rustls, built on the library's frame types.

use procjon::frame::{ClientFrame, Registration, ServerFrame};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub struct Client {
    stream: BufReader<StreamOwned<ClientConnection, TcpStream>>,
}

/// The agent's TLS config from the shared test certificates.
pub fn agent_tls(certs: &Path) -> Arc<ClientConfig> {
    procjon::tls::client_config(
        &certs.join("ca.pem"),
        &certs.join("procjonagent.pem"),
        &certs.join("procjonagent.key"),
    )
    .unwrap()
}

impl Client {
    /// Connects with the test agent certificate.
    pub fn connect(addr: SocketAddr) -> Client {
        Client::connect_with(addr, agent_tls(super::certs())).unwrap()
    }

    /// Connects with the certificate of agent identity `name` (see [`super::agent_cert`]).
    pub fn connect_as(addr: SocketAddr, name: &str) -> Client {
        let (cert, key) = super::agent_cert(name);
        let tls = procjon::tls::client_config(&super::certs().join("ca.pem"), &cert, &key).unwrap();
        Client::connect_with(addr, tls).unwrap()
    }

    /// Connects with the given TLS config; the handshake runs on first I/O.
    pub fn connect_with(addr: SocketAddr, tls: Arc<ClientConfig>) -> std::io::Result<Client> {
        let sock = TcpStream::connect(addr)?;
        sock.set_read_timeout(Some(Duration::from_secs(10)))?;
        let conn = ClientConnection::new(tls, ServerName::try_from("localhost").unwrap()).unwrap();
        Ok(Client {
            stream: BufReader::new(StreamOwned::new(conn, sock)),
        })
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let stream = self.stream.get_mut();
        stream.write_all(bytes)?;
        stream.flush()
    }

    /// Reads one reply line; `Ok(None)` at end of stream.
    pub fn recv(&mut self) -> std::io::Result<Option<ServerFrame>> {
        let mut line = String::new();
        if self.stream.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        assert!(line.ends_with('\n'), "reply without newline: {line:?}");
        Ok(Some(
            ServerFrame::decode(line.trim_end().as_bytes()).unwrap(),
        ))
    }

    #[track_caller]
    pub fn request(&mut self, frame: &ClientFrame) -> ServerFrame {
        self.send_raw(&frame.encode()).unwrap();
        self.recv()
            .unwrap()
            .expect("connection closed instead of a reply")
    }

    #[track_caller]
    pub fn register(&mut self, service: &str, timeout_s: f64, statuses: &[&str]) {
        let reply = self.request(&ClientFrame::Register(Registration {
            service: service.into(),
            timeout_s,
            statuses: statuses.iter().map(|s| s.to_string()).collect(),
            policy: Default::default(),
        }));
        assert_eq!(reply, ServerFrame::Ok, "registering {service}");
    }

    /// Registers `service` with a notification policy.
    #[track_caller]
    pub fn register_with(
        &mut self,
        service: &str,
        timeout_s: f64,
        statuses: &[&str],
        policy: procjon::frame::Policy,
    ) -> ServerFrame {
        self.request(&ClientFrame::Register(Registration {
            service: service.into(),
            timeout_s,
            statuses: statuses.iter().map(|s| s.to_string()).collect(),
            policy,
        }))
    }

    /// Sends a silence frame.
    #[track_caller]
    pub fn silence(&mut self, service: &str, for_s: f64, reason: Option<&str>) -> ServerFrame {
        self.request(&ClientFrame::Silence {
            service: service.into(),
            for_s,
            reason: reason.map(String::from),
        })
    }

    /// Sends an unsilence frame.
    #[track_caller]
    pub fn unsilence(&mut self, service: &str) -> ServerFrame {
        self.request(&ClientFrame::Unsilence {
            service: service.into(),
        })
    }

    #[track_caller]
    pub fn ping(&mut self, service: &str, status: u64) -> ServerFrame {
        self.request(&ClientFrame::ping(service, status))
    }

    #[track_caller]
    pub fn ping_ok(&mut self, service: &str, status: u64) {
        assert_eq!(
            self.ping(service, status),
            ServerFrame::Ok,
            "pinging {service}"
        );
    }
}
