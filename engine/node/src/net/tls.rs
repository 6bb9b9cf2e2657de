//! Loading a rustls server configuration from PEM files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why a TLS configuration could not be built. Every file-related variant names the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsConfigError {
    /// The file could not be read (missing, permissions, ...).
    #[error("cannot read {what} file {path}: {message}")]
    Read {
        /// `"certificate"` or `"private key"`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error's kind, for matching.
        kind: std::io::ErrorKind,
        /// The I/O error's text.
        message: String,
    },
    /// The file was read but is not valid PEM.
    #[error("{what} file {path} is not valid PEM: {message}")]
    BadPem {
        /// `"certificate"` or `"private key"`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What the PEM parser said.
        message: String,
    },
    /// The certificate file holds no `CERTIFICATE` section.
    #[error("certificate file {path} contains no PEM certificate")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key file holds no PKCS#8, PKCS#1 or SEC1 private key.
    #[error("private key file {path} contains no PEM private key")]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// rustls refused the certificate/key pair (mismatch, unsupported key type, ...).
    #[error("TLS configuration rejected for certificate {cert} and key {key}: {message}")]
    Rejected {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        message: String,
    },
}

/// Builds a TLS server configuration (ring provider, TLS 1.2 and 1.3, ALPN `http/1.1`) from a
/// PEM certificate chain and a PEM private key.
///
/// # Errors
/// [`TlsConfigError`] naming the offending file: unreadable, not PEM, empty, or rejected.
pub fn load_tls_config(
    cert_pem: &Path,
    key_pem: &Path,
) -> Result<Arc<rustls::ServerConfig>, TlsConfigError> {
    let cert_bytes = read("certificate", cert_pem)?;
    let key_bytes = read("private key", key_pem)?;

    let certs = CertificateDer::pem_slice_iter(&cert_bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsConfigError::BadPem {
            what: "certificate",
            path: cert_pem.to_owned(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsConfigError::NoCertificate {
            path: cert_pem.to_owned(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsConfigError::NoPrivateKey {
            path: key_pem.to_owned(),
        },
        other => TlsConfigError::BadPem {
            what: "private key",
            path: key_pem.to_owned(),
            message: other.to_string(),
        },
    })?;

    let rejected = |e: rustls::Error| TlsConfigError::Rejected {
        cert: cert_pem.to_owned(),
        key: key_pem.to_owned(),
        message: e.to_string(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(rejected)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(rejected)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsConfigError> {
    std::fs::read(path).map_err(|e| TlsConfigError::Read {
        what,
        path: path.to_owned(),
        kind: e.kind(),
        message: e.to_string(),
    })
}
