//! Mutual TLS: only clients with a valid client certificate from the
//! configured CA get in; no certificate, another CA, an expired one or a
//! server certificate are refused at the handshake.

use crate::support::{Client, Daemon, TempDir, certs, gen_certs};
use procjon::frame::{ClientFrame, ErrorCode, ServerFrame};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use std::io::Read;
use std::path::Path;
use std::process::Command;
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
    let ping = ClientFrame::ping("x", 0);
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
        client.request(&ClientFrame::ping("nobody", 0)),
        ServerFrame::Error {
            code: procjon::ErrorCode::NotRegistered,
            message: "service nobody is not registered; send a register frame first".into()
        }
    );
}

/// A client config presenting `cert`/`key`, whatever they are.
fn presenting(cert: &Path, key: &Path) -> Arc<ClientConfig> {
    Arc::new(
        ClientConfig::builder_with_provider(procjon::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots())
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_file(cert).unwrap()],
                PrivateKeyDer::from_pem_file(key).unwrap(),
            )
            .unwrap(),
    )
}

/// [`assert_refused`], and the daemon logs the handshake failure with `reason`.
#[track_caller]
fn assert_refused_because(daemon: &Daemon, tls: Arc<ClientConfig>, reason: &str) {
    let before = daemon.log().matches("TLS handshake failed").count();
    assert_refused(daemon, tls);
    crate::support::wait_until(
        Duration::from_secs(5),
        "the handshake failure in the log",
        || daemon.log().matches("TLS handshake failed").count() > before,
    );
    let log = daemon.log();
    let line = log
        .lines()
        .filter(|l| l.contains("TLS handshake failed"))
        .nth(before)
        .unwrap();
    assert!(line.contains(reason), "expected {reason:?}: {line}");
}

/// Runs the openssl CLI in `dir`.
#[track_caller]
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Issues `NAME.pem`/`NAME.key` in `dir` from the test CA: a client
/// certificate with `subject`, valid from `start` to `end`
/// (`YYYYMMDDHHMMSSZ`). `openssl ca` because openssl 3.0's `x509 -req` takes
/// no start date.
fn client_certificate(dir: &Path, name: &str, subject: &str, start: &str, end: &str) {
    let (key, csr, pem) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
    );
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &key,
        ],
    );
    openssl(
        dir,
        &["req", "-new", "-key", &key, "-subj", subject, "-out", &csr],
    );
    let ca_dir = dir.join(format!("{name}-ca"));
    std::fs::create_dir_all(ca_dir.join("new")).unwrap();
    std::fs::write(ca_dir.join("index.txt"), "").unwrap();
    std::fs::write(ca_dir.join("serial.txt"), "1000\n").unwrap();
    std::fs::write(
        ca_dir.join("ca.cnf"),
        format!(
            "[ca]\ndefault_ca = test_ca\n[test_ca]\ndir = {}\ndatabase = $dir/index.txt\n\
             new_certs_dir = $dir/new\nserial = $dir/serial.txt\ndefault_md = sha256\n\
             policy = anything\n[anything]\ncommonName = optional\norganizationName = optional\n\
             [client]\nbasicConstraints = critical,CA:FALSE\n\
             keyUsage = critical,digitalSignature\nextendedKeyUsage = clientAuth\n",
            ca_dir.display()
        ),
    )
    .unwrap();
    let (ca_pem, ca_key) = (certs().join("ca.pem"), certs().join("ca.key"));
    let config = ca_dir.join("ca.cnf");
    openssl(
        dir,
        &[
            "ca",
            "-batch",
            "-notext",
            "-config",
            config.to_str().unwrap(),
            "-extensions",
            "client",
            "-cert",
            ca_pem.to_str().unwrap(),
            "-keyfile",
            ca_key.to_str().unwrap(),
            "-startdate",
            start,
            "-enddate",
            end,
            "-in",
            &csr,
            "-out",
            &pem,
        ],
    );
}

#[test]
fn an_expired_client_certificate_is_refused() {
    let dir = TempDir::new();
    client_certificate(
        dir.path(),
        "expired",
        "/CN=expired",
        "20200101000000Z",
        "20200201000000Z",
    );
    let daemon = Daemon::builder(dir.path()).start();
    let tls = presenting(&dir.join("expired.pem"), &dir.join("expired.key"));
    assert_refused_because(&daemon, tls, "certificate expired");
}

#[test]
fn a_server_certificate_used_as_a_client_certificate_is_refused() {
    let dir = TempDir::new();
    let daemon = Daemon::builder(dir.path()).start();
    // Same CA, but its extended key usage allows server authentication only.
    let tls = presenting(&certs().join("procjon.pem"), &certs().join("procjon.key"));
    assert_refused_because(&daemon, tls, "client authentication");
    assert!(!daemon.log().contains(": connected"), "{}", daemon.log());
}

#[test]
fn a_certificate_with_neither_common_name_nor_dns_name_has_identity_dash() {
    let dir = TempDir::new();
    client_certificate(
        dir.path(),
        "noname",
        "/O=procjon tests",
        "20200101000000Z",
        "40960101000000Z",
    );
    let daemon = Daemon::builder(dir.path()).start();
    let mut anonymous = Client::connect_with(
        daemon.addr,
        presenting(&dir.join("noname.pem"), &dir.join("noname.key")),
    )
    .unwrap();
    anonymous.register("anon", 5.0, &["ok"]);
    let mut named = Client::connect(daemon.addr);
    assert!(matches!(
        named.ping("anon", 0),
        ServerFrame::Error {
            code: ErrorCode::Forbidden,
            ..
        }
    ));
    let state = std::fs::read_to_string(dir.join("state.jsonl")).unwrap();
    assert!(state.contains("\"owner\":\"-\""), "{state}");
}
