//! The rustls client configuration shared by the WebSocket feeds and the REST snapshot thread.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;

/// Why a client TLS configuration could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientTlsError {
    /// The CA file could not be read or parsed.
    #[error("CA file {path}: {message}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The CA file holds no usable certificate.
    #[error("CA file {path} contains no usable PEM certificate")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// rustls refused the configuration.
    #[error("TLS client configuration rejected: {0}")]
    Rejected(String),
}

/// A TLS client configuration (ring provider, TLS 1.2 and 1.3) trusting the Mozilla roots from
/// `webpki-roots` when `webpki_roots` is set, plus every certificate in `extra_ca` (PEM), for
/// test venues and private endpoints. ALPN offers `http/1.1`.
///
/// # Errors
/// [`ClientTlsError`] naming the CA file, or no trust anchor at all.
pub fn client_tls_config(
    webpki_roots: bool,
    extra_ca: Option<&Path>,
) -> Result<Arc<rustls::ClientConfig>, ClientTlsError> {
    let mut roots = RootCertStore::empty();
    if webpki_roots {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if let Some(path) = extra_ca {
        let bad = |message: String| ClientTlsError::CaFile {
            path: path.to_owned(),
            message,
        };
        let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&bytes) {
            let cert = cert.map_err(|e| bad(e.to_string()))?;
            roots.add(cert).map_err(|e| bad(e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(ClientTlsError::NoCertificate {
                path: path.to_owned(),
            });
        }
    }
    if roots.is_empty() {
        return Err(ClientTlsError::Rejected("no trust anchors".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientTlsError::Rejected(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_and_extra_ca() {
        assert!(client_tls_config(true, None).is_ok());
        assert!(matches!(
            client_tls_config(false, None),
            Err(ClientTlsError::Rejected(_))
        ));
        let dir = tempfile::tempdir().unwrap();
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, ck.cert.pem()).unwrap();
        assert!(client_tls_config(false, Some(&ca)).is_ok());
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "nothing here\n").unwrap();
        assert!(matches!(
            client_tls_config(false, Some(&empty)),
            Err(ClientTlsError::NoCertificate { .. })
        ));
        assert!(matches!(
            client_tls_config(false, Some(&dir.path().join("missing.pem"))),
            Err(ClientTlsError::CaFile { .. })
        ));
    }
}
