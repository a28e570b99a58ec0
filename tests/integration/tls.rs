//! Mutual TLS: only clients with a certificate from the configured CA get in.

use crate::support::{Client, Daemon, TempDir, gen_certs};
use procjon::frame::{ClientFrame, ServerFrame};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

fn roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(crate::support::certs().join("ca.pem")).unwrap())
        .unwrap();
    roots
}

/// Sends a ping and expects no `ok`: the handshake or the first read fails.
fn assert_refused(daemon: &Daemon, tls: Arc<ClientConfig>) {
    let Ok(mut client) = Client::connect_with(daemon.addr, tls) else {
        return;
    };
    let ping = ClientFrame::Ping {
        service: "x".into(),
        status: 0,
    };
    if client.send_raw(&ping.encode()).is_err() {
        return;
    }
    match client.recv() {
        Err(_) | Ok(None) => {}
        Ok(Some(reply)) => panic!("refused client got a reply: {reply:?}"),
    }
}

#[test]
fn a_client_without_a_certificate_is_refused() {
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path()).start();
    let tls = ClientConfig::builder_with_provider(procjon::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots())
        .with_no_client_auth();
    assert_refused(&daemon, Arc::new(tls));
    crate::support::wait_until(
        Duration::from_secs(5),
        "the handshake failure in the log",
        || daemon.log().contains("TLS handshake failed"),
    );
}

#[test]
fn a_client_certificate_from_another_ca_is_refused() {
    let dir = TempDir::new();
    gen_certs(&dir.join("other"));
    let other = dir.join("other");
    let tls = ClientConfig::builder_with_provider(procjon::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots())
        .with_client_auth_cert(
            vec![CertificateDer::from_pem_file(other.join("procjonagent.pem")).unwrap()],
            rustls::pki_types::PrivateKeyDer::from_pem_file(other.join("procjonagent.key"))
                .unwrap(),
        )
        .unwrap();
    let daemon = Daemon::builder(dir.path()).start();
    assert_refused(&daemon, Arc::new(tls));
    // The right certificate still works.
    let mut client = Client::connect(daemon.addr);
    client.register("ok", 5.0, &["ok"]);
}

#[test]
fn a_silent_client_is_dropped_after_the_handshake_deadline() {
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path())
        .arg("--handshake-timeout")
        .arg("0.3")
        .start();
    let mut sock = std::net::TcpStream::connect(daemon.addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 16];
    let n = sock.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "expected the server to close the silent connection");
    let after = started.elapsed();
    assert!(
        after >= Duration::from_millis(250) && after < Duration::from_secs(4),
        "{after:?}"
    );
    // And the daemon still serves.
    let mut client = Client::connect(daemon.addr);
    assert_eq!(
        client.request(&ClientFrame::Ping {
            service: "nobody".into(),
            status: 0
        }),
        ServerFrame::Error {
            code: procjon::ErrorCode::NotRegistered,
            message: "service nobody is not registered; send a register frame first".into()
        }
    );
}
