//! Who may use the sim's WebSocket API: [`SimAuth`] and the registered [`ApiKeys`].
//!
//! In [`SimAuth::Strict`] mode the sim checks requests as Binance does (`docs/venue-sim.md`,
//! "Authentication"): every signed method needs a registered `apiKey`, a `timestamp` inside
//! `recvWindow` of the wall clock, and a `signature` by the key (HMAC-SHA256 or Ed25519,
//! [`tape_core::sign`]); `session.logon` (Ed25519 keys only) lets later requests leave out
//! `apiKey` and `signature`. [`SimAuth::Lenient`] checks nothing, as the sim did before.

use std::fmt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use tape_core::sign::{Ed25519PublicKey, HmacKey, KeyKind, Verifier};

/// Longest API key name, as Binance's (64 characters).
pub const MAX_API_KEY_LEN: usize = 64;

/// Whether and how the WebSocket API authenticates requests.
#[derive(Debug, Clone)]
pub enum SimAuth {
    /// No checks: `apiKey`, `timestamp`, `signature` and `recvWindow` are accepted and ignored,
    /// `session.logon` always succeeds, `userDataStream.subscribe` needs no logon. For tests
    /// and tools that drive the sim without keys.
    Lenient,
    /// Binance's rules, with these keys registered.
    Strict(ApiKeys),
}

impl SimAuth {
    /// Strict mode with `keys`.
    pub fn strict(keys: ApiKeys) -> SimAuth {
        SimAuth::Strict(keys)
    }

    /// True in [`SimAuth::Lenient`] mode.
    pub fn is_lenient(&self) -> bool {
        matches!(self, SimAuth::Lenient)
    }
}

impl Default for SimAuth {
    /// Strict with no keys: every signed request is refused until keys are registered, as
    /// on a Binance account without API keys.
    fn default() -> Self {
        SimAuth::Strict(ApiKeys::default())
    }
}

/// An index into [`ApiKeys`], stable for the sim's life (keys are fixed at start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct KeyId(pub u32);

/// The registered API keys: a name (what clients send as `apiKey`) and what checks its
/// signatures. `Debug` never prints an HMAC secret.
#[derive(Debug, Clone, Default)]
pub struct ApiKeys {
    keys: Vec<(String, Verifier)>,
}

impl ApiKeys {
    /// No keys.
    pub fn new() -> ApiKeys {
        ApiKeys::default()
    }

    /// Registers `api_key` with the verifier of its signatures; a name registered again is
    /// replaced.
    ///
    /// # Errors
    /// A name that is not 1 to 64 ASCII letters and digits (Binance's API key format).
    pub fn insert(&mut self, api_key: &str, verifier: Verifier) -> Result<()> {
        if !valid_key_name(api_key) {
            bail!(
                "API key {:?}: must be 1 to {MAX_API_KEY_LEN} ASCII letters and digits",
                api_key
                    .chars()
                    .take(MAX_API_KEY_LEN + 1)
                    .collect::<String>()
            );
        }
        match self.keys.iter_mut().find(|(name, _)| name == api_key) {
            Some(slot) => slot.1 = verifier,
            None => self.keys.push((api_key.to_owned(), verifier)),
        }
        Ok(())
    }

    /// [`ApiKeys::insert`] of an HMAC-SHA256 secret, by value (builder style, for tests).
    ///
    /// # Errors
    /// As [`ApiKeys::insert`].
    pub fn with_hmac(mut self, api_key: &str, secret: &[u8]) -> Result<ApiKeys> {
        self.insert(api_key, Verifier::Hmac(HmacKey::new(secret)))?;
        Ok(self)
    }

    /// [`ApiKeys::insert`] of an Ed25519 public key, by value (builder style, for tests).
    ///
    /// # Errors
    /// As [`ApiKeys::insert`].
    pub fn with_ed25519(mut self, api_key: &str, public: Ed25519PublicKey) -> Result<ApiKeys> {
        self.insert(api_key, Verifier::Ed25519(public))?;
        Ok(self)
    }

    /// Registers an HMAC key whose secret is the content of `path` (one trailing newline
    /// dropped, so `echo secret > file` works).
    ///
    /// # Errors
    /// An unreadable or empty file, a bad name.
    pub fn insert_hmac_file(&mut self, api_key: &str, path: &Path) -> Result<()> {
        let bytes = std::fs::read(path).with_context(|| {
            format!(
                "API key {api_key}: reading the HMAC secret {}",
                path.display()
            )
        })?;
        let secret = trim_newline(&bytes);
        if secret.is_empty() {
            bail!(
                "API key {api_key}: the HMAC secret file {} is empty",
                path.display()
            );
        }
        self.insert(api_key, Verifier::Hmac(HmacKey::new(secret)))
    }

    /// Registers an HMAC key whose secret is the environment variable `var`.
    ///
    /// # Errors
    /// An unset or empty variable, a bad name.
    pub fn insert_hmac_env(&mut self, api_key: &str, var: &str) -> Result<()> {
        let value = std::env::var_os(var)
            .with_context(|| format!("API key {api_key}: environment variable {var} is not set"))?;
        let secret = value.as_encoded_bytes();
        if secret.is_empty() {
            bail!("API key {api_key}: environment variable {var} is empty");
        }
        self.insert(api_key, Verifier::Hmac(HmacKey::new(secret)))
    }

    /// Registers an Ed25519 key by its public key PEM file (`-----BEGIN PUBLIC KEY-----`, as
    /// `openssl pkey -in key.pem -pubout` writes it).
    ///
    /// # Errors
    /// An unreadable file, a PEM that is not an Ed25519 public key, a bad name.
    pub fn insert_ed25519_file(&mut self, api_key: &str, path: &Path) -> Result<()> {
        let pem = std::fs::read_to_string(path)
            .with_context(|| format!("API key {api_key}: reading {}", path.display()))?;
        let public = Ed25519PublicKey::from_public_pem(&pem)
            .with_context(|| format!("API key {api_key}: {}", path.display()))?;
        self.insert(api_key, Verifier::Ed25519(public))
    }

    /// How many keys are registered.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key is registered.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The registered names and key types, in registration order.
    pub fn names(&self) -> impl Iterator<Item = (&str, KeyKind)> {
        self.keys.iter().map(|(n, v)| (n.as_str(), v.kind()))
    }

    pub(crate) fn lookup(&self, api_key: &str) -> Option<(KeyId, &Verifier)> {
        self.keys
            .iter()
            .enumerate()
            .find(|(_, (name, _))| name == api_key)
            .map(|(i, (_, v))| (KeyId(i as u32), v))
    }

    pub(crate) fn get(&self, id: KeyId) -> Option<(&str, &Verifier)> {
        self.keys.get(id.0 as usize).map(|(n, v)| (n.as_str(), v))
    }
}

/// Binance's API key format, loosely: 1 to 64 ASCII letters and digits.
pub(crate) fn valid_key_name(s: &str) -> bool {
    (1..=MAX_API_KEY_LEN).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_alphanumeric())
}

fn trim_newline(b: &[u8]) -> &[u8] {
    let b = b.strip_suffix(b"\n").unwrap_or(b);
    b.strip_suffix(b"\r").unwrap_or(b)
}

/// One `--api-key-*` flag value, `NAME=VALUE`.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyFlag {
    /// The API key name.
    pub name: String,
    /// A path or an environment variable name.
    pub value: String,
}

impl fmt::Debug for KeyFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.name, self.value)
    }
}

impl std::str::FromStr for KeyFlag {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, value) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: expected API_KEY=VALUE"))?;
        if !valid_key_name(name) {
            return Err(format!(
                "{name:?}: an API key is 1 to {MAX_API_KEY_LEN} ASCII letters and digits"
            ));
        }
        if value.is_empty() {
            return Err(format!("{name}: empty value"));
        }
        Ok(KeyFlag {
            name: name.to_owned(),
            value: value.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tape_core::sign::Ed25519Key;

    #[test]
    fn keys_register_replace_and_refuse_bad_names() {
        let ed = Ed25519Key::from_seed(&[7; 32]).public();
        let mut keys = ApiKeys::new()
            .with_hmac("alice", b"s1")
            .unwrap()
            .with_ed25519("bob", ed)
            .unwrap();
        keys.insert("alice", Verifier::Hmac(HmacKey::new(b"s2")))
            .unwrap();
        assert_eq!(keys.len(), 2);
        let (id, v) = keys.lookup("alice").unwrap();
        assert_eq!(id, KeyId(0));
        assert!(v.verify("a=1", &HmacKey::new(b"s2").sign("a=1")));
        assert_eq!(keys.lookup("bob").unwrap().1.kind(), KeyKind::Ed25519);
        assert!(keys.lookup("carol").is_none());
        for bad in ["", "a b", "x=y", &"k".repeat(65), "ключ"] {
            assert!(
                keys.insert(bad, Verifier::Hmac(HmacKey::new(b"s")))
                    .is_err(),
                "{bad}"
            );
        }
        assert!(!format!("{keys:?}").contains("s2"));
    }

    #[test]
    fn key_files_load() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "topsecret\n").unwrap();
        let public = dir.path().join("pub.pem");
        let key = Ed25519Key::from_seed(&[9; 32]);
        std::fs::write(&public, key.public().to_public_pem()).unwrap();
        let mut keys = ApiKeys::new();
        keys.insert_hmac_file("h", &secret).unwrap();
        keys.insert_ed25519_file("e", &public).unwrap();
        assert!(keys
            .lookup("h")
            .unwrap()
            .1
            .verify("x", &HmacKey::new(b"topsecret").sign("x")));
        assert!(keys.lookup("e").unwrap().1.verify("x", &key.sign("x")));
        // The private key is not a public key.
        std::fs::write(&public, key.to_pkcs8_pem().as_bytes()).unwrap();
        let err = keys.insert_ed25519_file("e2", &public).unwrap_err();
        assert!(format!("{err:#}").contains("PUBLIC KEY"), "{err:#}");
        std::fs::write(&secret, "").unwrap();
        assert!(keys.insert_hmac_file("h2", &secret).is_err());
        assert!(keys
            .insert_hmac_env("h3", "TAPE_SIM_TEST_SURELY_UNSET_VAR")
            .is_err());
    }

    #[test]
    fn key_flags_parse() {
        let f: KeyFlag = "abc=/tmp/x".parse().unwrap();
        assert_eq!((f.name.as_str(), f.value.as_str()), ("abc", "/tmp/x"));
        assert!("abc".parse::<KeyFlag>().is_err());
        assert!("a b=x".parse::<KeyFlag>().is_err());
        assert!("abc=".parse::<KeyFlag>().is_err());
    }
}
