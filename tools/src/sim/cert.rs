//! The simulator's self-signed TLS certificate: generated once with rcgen, kept on disk so
//! clients can trust `cert.pem` as their CA.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Paths of a certificate and its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Makes sure `dir` holds `cert.pem` and `key.pem`: both are reused when present, otherwise a
/// new self-signed certificate for `localhost` and `127.0.0.1` is written (the key readable by
/// the owner only).
///
/// # Errors
/// The directory or the files cannot be created.
pub(crate) fn ensure(dir: &Path) -> Result<CertFiles> {
    let files = CertFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    if files.cert.is_file() && files.key.is_file() {
        return Ok(files);
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}: cannot create certificate directory", dir.display()))?;
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .context("generating a self-signed certificate")?;
    // Each file appears whole (written aside, then renamed), the key before the certificate.
    write_new(&files.key, ck.signing_key.serialize_pem().as_bytes(), true)?;
    write_new(&files.cert, ck.cert.pem().as_bytes(), false)?;
    Ok(files)
}

fn write_new(path: &Path, bytes: &[u8], private: bool) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("{}: cannot write", tmp.display()))?;
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("{}: cannot restrict permissions", tmp.display()))?;
    }
    #[cfg(not(unix))]
    let _ = private;
    std::fs::rename(&tmp, path).with_context(|| format!("{}: cannot write", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_then_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/b");
        let files = ensure(&sub).unwrap();
        let cert = std::fs::read(&files.cert).unwrap();
        assert!(cert.starts_with(b"-----BEGIN CERTIFICATE-----"));
        tape_node::net::load_tls_config(&files.cert, &files.key).unwrap();
        assert_eq!(ensure(&sub).unwrap(), files);
        assert_eq!(
            std::fs::read(&files.cert).unwrap(),
            cert,
            "reused, not regenerated"
        );
        // Only one of the two present: a fresh pair.
        std::fs::remove_file(&files.key).unwrap();
        ensure(&sub).unwrap();
        assert_ne!(std::fs::read(&files.cert).unwrap(), cert);
        tape_node::net::load_tls_config(&files.cert, &files.key).unwrap();
    }
}
