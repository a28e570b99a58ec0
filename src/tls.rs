//! TLS configuration: the only place certificates and keys are loaded and
//! rustls is configured, for the daemon (server side, client certificates
//! required) and for agents and tests (client side). Called once at start-up;
//! the resulting configs are shared read-only by every connection thread.

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{VerifierBuilderError, WebPkiClientVerifier};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A certificate, key or CA file that can't be used. Each variant names the
/// file; the daemon's and the agent's errors wrap it and add their own hint
/// (which flag to fix, how to make development certificates).
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    ReadFile {
        /// "certificate" or "key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not valid PEM.
    BadPem {
        /// "certificate" or "key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The PEM parser's error.
        source: pem::Error,
    },
    /// A file is valid PEM but holds no block of the kind wanted.
    NoPemBlock {
        /// "certificate" or "key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The block wanted: `CERTIFICATE` or `PRIVATE KEY`.
        block: &'static str,
    },
    /// A CA certificate can't be added to the trusted roots.
    BadCa {
        /// The file.
        path: PathBuf,
        /// rustls's reason.
        source: rustls::Error,
    },
    /// The CA certificates can't verify client certificates.
    UnusableCa {
        /// The file.
        path: PathBuf,
        /// rustls's reason.
        source: VerifierBuilderError,
    },
    /// The key doesn't belong to the certificate (or can't be used).
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls's reason.
        source: rustls::Error,
    },
    /// rustls refused the protocol versions (a build without TLS 1.2 or 1.3).
    Protocol {
        /// rustls's reason.
        source: rustls::Error,
    },
}

impl TlsError {
    /// Whether the error is about a file that is missing or unreadable (as
    /// opposed to one with the wrong content), where making development
    /// certificates is the likely fix.
    pub fn is_missing_file(&self) -> bool {
        matches!(self, TlsError::ReadFile { .. })
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::ReadFile { what, path, source } => {
                write!(f, "reading {what} {}: {source}", path.display())
            }
            TlsError::BadPem { what, path, source } => write!(
                f,
                "{what} file {}: {source}; it must be a PEM file",
                path.display()
            ),
            TlsError::NoPemBlock { what, path, block } => write!(
                f,
                "{what} file {}: no {block} block in the file; it must be a PEM file",
                path.display()
            ),
            TlsError::BadCa { path, source } => {
                write!(f, "CA certificate {}: {source}", path.display())
            }
            TlsError::UnusableCa { path, source } => {
                write!(f, "CA certificate {}: {source}", path.display())
            }
            TlsError::KeyMismatch { cert, key, source } => {
                let reason = match source {
                    rustls::Error::InconsistentKeys(_) => {
                        "it is the key of another certificate".to_string()
                    }
                    other => other.to_string(),
                };
                write!(
                    f,
                    "key {} does not fit certificate {}: {reason}; use the key the certificate was made for",
                    key.display(),
                    cert.display()
                )
            }
            TlsError::Protocol { source } => write!(f, "TLS configuration: {source}"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::ReadFile { source, .. } => Some(source),
            TlsError::BadPem { source, .. } => Some(source),
            TlsError::NoPemBlock { .. } => None,
            TlsError::BadCa { source, .. }
            | TlsError::KeyMismatch { source, .. }
            | TlsError::Protocol { source } => Some(source),
            TlsError::UnusableCa { source, .. } => Some(source),
        }
    }
}

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
) -> Result<Arc<ServerConfig>, TlsError> {
    let roots = load_roots(root_cert)?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|source| TlsError::UnusableCa {
            path: root_cert.to_path_buf(),
            source,
        })?;
    let chain = load_certs(cert)?;
    let key_der = load_key(key)?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|source| TlsError::Protocol { source })?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key_der)
        .map_err(|source| key_mismatch(cert, key, source))?;
    Ok(Arc::new(config))
}

/// Client config: trusts only the CA in `root_cert` and presents
/// `cert`/`key` as the client certificate.
pub fn client_config(
    root_cert: &Path,
    cert: &Path,
    key: &Path,
) -> Result<Arc<ClientConfig>, TlsError> {
    let roots = load_roots(root_cert)?;
    let chain = load_certs(cert)?;
    let key_der = load_key(key)?;
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|source| TlsError::Protocol { source })?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key_der)
        .map_err(|source| key_mismatch(cert, key, source))?;
    Ok(Arc::new(config))
}

fn key_mismatch(cert: &Path, key: &Path, source: rustls::Error) -> TlsError {
    TlsError::KeyMismatch {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        source,
    }
}

/// Reads every certificate in a PEM file; at least one must be there.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path, "certificate")?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::BadPem {
            what: "certificate",
            path: path.to_path_buf(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoPemBlock {
            what: "certificate",
            path: path.to_path_buf(),
            block: "CERTIFICATE",
        });
    }
    Ok(certs)
}

/// Reads the first private key (PKCS#8, PKCS#1 or SEC1) in a PEM file.
fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path, "key")?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|source| match source {
        pem::Error::NoItemsFound => TlsError::NoPemBlock {
            what: "key",
            path: path.to_path_buf(),
            block: "PRIVATE KEY",
        },
        source => TlsError::BadPem {
            what: "key",
            path: path.to_path_buf(),
            source,
        },
    })
}

fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|source| TlsError::BadCa {
            path: path.to_path_buf(),
            source,
        })?;
    }
    Ok(roots)
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::ReadFile {
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

/// When a certificate stops being valid (its `notAfter`), as Unix seconds;
/// `None` when it can't be read.
pub fn not_after(cert: &CertificateDer<'_>) -> Option<u64> {
    let (_, certificate, _) = der(cert.as_ref())?;
    let (_, tbs, _) = der(certificate)?;
    let mut fields = tbs;
    let (tag, _, rest) = der(fields)?;
    if tag == 0xa0 {
        fields = rest; // explicit version
    }
    // serialNumber, signature, issuer
    for _ in 0..3 {
        fields = der(fields)?.2;
    }
    let (_, validity, _) = der(fields)?;
    let (_, _, rest) = der(validity)?; // notBefore
    let (tag, value, _) = der(rest)?;
    der_time(tag, value)
}

/// A DER UTCTime (`YYMMDDHHMMSSZ`, tag 0x17) or GeneralizedTime
/// (`YYYYMMDDHHMMSSZ`, tag 0x18) as Unix seconds.
fn der_time(tag: u8, value: &[u8]) -> Option<u64> {
    if !value.is_ascii() {
        return None;
    }
    let text = std::str::from_utf8(value).ok()?;
    let full = match (tag, text.len()) {
        (0x17, 13) => {
            // RFC 5280: two-digit years 50-99 are 19xx, 00-49 are 20xx.
            let century = if text[..2].parse::<u8>().ok()? >= 50 {
                "19"
            } else {
                "20"
            };
            format!("{century}{text}")
        }
        (0x18, 15) => text.to_string(),
        _ => return None,
    };
    if full.as_bytes().get(14) != Some(&b'Z') {
        return None;
    }
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &full[0..4],
        &full[4..6],
        &full[6..8],
        &full[8..10],
        &full[10..12],
        &full[12..14]
    );
    crate::message::parse_rfc3339(&rfc3339)
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
