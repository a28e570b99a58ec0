//! TLS configuration: the only place certificates and keys are loaded and
//! rustls is configured, for the daemon (server side, client certificates
//! required) and for agents and tests (client side). Called once at start-up;
//! the resulting configs are shared read-only by every connection thread.

use crate::config::ConfigError;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::path::Path;
use std::sync::Arc;

/// The crypto provider everything in procjon uses (ring: no cmake, one stack
/// shared with ureq).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Server config: presents `cert`/`key` and requires a client certificate
/// that chains to the CA in `root_cert`. TLS 1.2 and 1.3.
pub fn server_config(
    root_cert: &Path,
    cert: &Path,
    key: &Path,
) -> Result<Arc<ServerConfig>, ConfigError> {
    let roots = load_roots(root_cert)?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| ConfigError::BadCa {
            path: root_cert.to_path_buf(),
            reason: e.to_string(),
        })?;
    let chain = load_certs(cert)?;
    let key_der = load_key(key)?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| ConfigError::Tls {
            reason: e.to_string(),
        })?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key_der)
        .map_err(|e| key_mismatch(cert, key, e))?;
    Ok(Arc::new(config))
}

/// Client config: trusts only the CA in `root_cert` and presents
/// `cert`/`key` as the client certificate.
pub fn client_config(
    root_cert: &Path,
    cert: &Path,
    key: &Path,
) -> Result<Arc<ClientConfig>, ConfigError> {
    let roots = load_roots(root_cert)?;
    let chain = load_certs(cert)?;
    let key_der = load_key(key)?;
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| ConfigError::Tls {
            reason: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key_der)
        .map_err(|e| key_mismatch(cert, key, e))?;
    Ok(Arc::new(config))
}

fn key_mismatch(cert: &Path, key: &Path, err: rustls::Error) -> ConfigError {
    let reason = match err {
        rustls::Error::InconsistentKeys(_) => "it is the key of another certificate".to_string(),
        other => other.to_string(),
    };
    ConfigError::KeyMismatch {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        reason,
    }
}

/// Reads every certificate in a PEM file; at least one must be there.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let pem = read(path, "certificate")?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConfigError::BadPem {
            what: "certificate",
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(ConfigError::BadPem {
            what: "certificate",
            path: path.to_path_buf(),
            reason: "no CERTIFICATE block in the file".into(),
        });
    }
    Ok(certs)
}

/// Reads the first private key (PKCS#8, PKCS#1 or SEC1) in a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, ConfigError> {
    let pem = read(path, "key")?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| ConfigError::BadPem {
        what: "key",
        path: path.to_path_buf(),
        reason: match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no PRIVATE KEY block in the file".into()
            }
            other => other.to_string(),
        },
    })
}

fn load_roots(path: &Path) -> Result<RootCertStore, ConfigError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|e| ConfigError::BadCa {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    }
    Ok(roots)
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::ReadFile {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// The identity of a client certificate: its subject common name (CN), or,
/// when it has none, its first DNS subject alternative name. `None` when the
/// certificate has neither (or can't be parsed). An empty name counts as
/// none: an empty owner would make the state file invalid.
pub fn certificate_identity(cert: &CertificateDer<'_>) -> Option<String> {
    let (subject, extensions) = subject_and_extensions(cert.as_ref())?;
    common_name(subject)
        .filter(|name| !name.is_empty())
        .or_else(|| extensions.and_then(first_dns_name))
        .filter(|name| !name.is_empty())
}

const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
const OID_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

/// Splits one DER TLV off `input`: (tag, value, rest).
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, input) = input.split_first()?;
    let (&first, mut input) = input.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || input.len() < count {
            return None;
        }
        let (bytes, rest) = input.split_at(count);
        input = rest;
        bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    if input.len() < len {
        return None;
    }
    let (value, rest) = input.split_at(len);
    Some((tag, value, rest))
}

/// The subject Name and, if present, the extensions of a certificate.
fn subject_and_extensions(cert: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let (_, certificate, _) = der(cert)?;
    let (_, tbs, _) = der(certificate)?;
    let mut fields = tbs;
    let (tag, _, rest) = der(fields)?;
    if tag == 0xa0 {
        fields = rest; // explicit version
    }
    // serialNumber, signature, issuer, validity
    for _ in 0..4 {
        fields = der(fields)?.2;
    }
    let (_, subject, mut rest) = der(fields)?;
    rest = der(rest)?.2; // subjectPublicKeyInfo
    let mut extensions = None;
    while let Some((tag, value, next)) = der(rest) {
        if tag == 0xa3 {
            extensions = der(value).map(|(_, list, _)| list);
        }
        rest = next;
    }
    Some((subject, extensions))
}

fn common_name(mut subject: &[u8]) -> Option<String> {
    while let Some((_, rdn, next)) = der(subject) {
        let mut attributes = rdn;
        while let Some((_, attribute, more)) = der(attributes) {
            let (_, oid, value) = der(attribute)?;
            if oid == OID_COMMON_NAME {
                let (_, text, _) = der(value)?;
                return Some(String::from_utf8_lossy(text).into_owned());
            }
            attributes = more;
        }
        subject = next;
    }
    None
}

fn first_dns_name(mut extensions: &[u8]) -> Option<String> {
    while let Some((_, extension, next)) = der(extensions) {
        let (_, oid, mut rest) = der(extension)?;
        if oid == OID_SUBJECT_ALT_NAME {
            let (tag, _, after) = der(rest)?;
            if tag == 0x01 {
                rest = after; // critical flag
            }
            let (_, octets, _) = der(rest)?;
            let (_, mut names, _) = der(octets)?;
            while let Some((tag, name, more)) = der(names) {
                if tag == 0x82 {
                    return Some(String::from_utf8_lossy(name).into_owned());
                }
                names = more;
            }
        }
        extensions = next;
    }
    None
}
