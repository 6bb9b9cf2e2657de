//! The order gateway's credentials: an API key and an Ed25519 private key or an HMAC secret,
//! each from a file or an environment variable. Never from the journal, never printed (the
//! errors name the file or variable, never a value), never in `/status`.

use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use tape_core::sign::{Ed25519Key, HmacKey, Signer};
use tape_node::live::Credentials;
use zeroize::Zeroizing;

use super::DeskSection;

/// Reads a secret from `file` or the variable `env` (at most one may be set); `None` when
/// neither is.
fn secret(what: &str, file: &str, env: &str) -> Result<Option<Zeroizing<String>>> {
    match (file.is_empty(), env.is_empty()) {
        (true, true) => Ok(None),
        (false, false) => bail!("desk.{what}_file and desk.{what}_env are both set: use one"),
        (false, true) => {
            let text = std::fs::read_to_string(Path::new(file))
                .with_context(|| format!("desk.{what}_file {file:?}"))?;
            let text = Zeroizing::new(text);
            let v = text.trim();
            if v.is_empty() {
                bail!("desk.{what}_file {file:?} is empty");
            }
            Ok(Some(Zeroizing::new(v.to_owned())))
        }
        (true, false) => {
            let v = std::env::var(env).map_err(|_| {
                anyhow!("desk.{what}_env: the environment variable {env} is not set")
            })?;
            let v = Zeroizing::new(v);
            if v.trim().is_empty() {
                bail!("desk.{what}_env: the environment variable {env} is empty");
            }
            Ok(Some(Zeroizing::new(v.trim().to_owned())))
        }
    }
}

/// The credentials `[desk]` names, or `None` when it names none.
///
/// # Errors
/// A key without a signer or the other way round, both kinds of signer, an unreadable or
/// empty file or variable, an encrypted or non-Ed25519 PEM.
pub fn load(d: &DeskSection) -> Result<Option<Arc<Credentials>>> {
    let api_key = secret("api_key", &d.api_key_file, &d.api_key_env)?;
    let hmac = secret("hmac_secret", &d.hmac_secret_file, &d.hmac_secret_env)?;
    let ed = if d.ed25519_key_file.is_empty() {
        None
    } else {
        let pem = Zeroizing::new(
            std::fs::read_to_string(&d.ed25519_key_file)
                .with_context(|| format!("desk.ed25519_key_file {:?}", d.ed25519_key_file))?,
        );
        Some(
            Ed25519Key::from_pkcs8_pem(&pem)
                .map_err(|e| anyhow!("desk.ed25519_key_file {:?}: {e}", d.ed25519_key_file))?,
        )
    };
    let signer = match (ed, hmac) {
        (None, None) => None,
        (Some(_), Some(_)) => {
            bail!("desk.ed25519_key_file and an HMAC secret are both set: use one")
        }
        (Some(k), None) => Some(Signer::Ed25519(k)),
        (None, Some(s)) => Some(Signer::Hmac(HmacKey::new(s.as_bytes()))),
    };
    match (api_key, signer) {
        (None, None) => Ok(None),
        (Some(_), None) => bail!("desk: an API key needs desk.ed25519_key_file or an HMAC secret (desk.hmac_secret_file / desk.hmac_secret_env)"),
        (None, Some(_)) => bail!("desk: a signing key needs its API key (desk.api_key_file or desk.api_key_env)"),
        (Some(k), Some(s)) => Ok(Some(Arc::new(
            Credentials::new(&k, s).map_err(|e| anyhow!("desk API key: {e}"))?,
        ))),
    }
}
