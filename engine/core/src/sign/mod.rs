//! Binance request signing: the signature payload, HMAC-SHA256 and Ed25519 keys.
//!
//! Every signed WebSocket API request carries `signature` over a payload made from its other
//! parameters: sorted by name (byte order), each written `name=value`, joined with `&`, with no
//! percent-encoding ([`payload`]). An HMAC key signs that payload's UTF-8 bytes with
//! HMAC-SHA256 and writes lower-case hex (Binance compares HMAC signatures without regard to
//! case); an Ed25519 key signs the same bytes and writes standard, padded base64 (compared
//! exactly). RSA keys are not supported.
//!
//! Pure like the rest of the core: keys come in as bytes or PEM text, never from a file or the
//! environment, and `timestamp` is the caller's to put in the parameters.
//!
//! Key material never reaches a log: no key type derives `Debug` (each prints only what is
//! public), secrets are wiped on drop (`zeroize`), and [`KeyError`] names what was wrong with a
//! key without quoting it.

#[cfg(test)]
mod tests;

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;
use zeroize::Zeroizing;

/// The parameter that carries the signature; never part of the payload.
pub const SIGNATURE_PARAM: &str = "signature";
/// Length of an HMAC-SHA256 signature in hex digits.
pub const HMAC_SIG_HEX_LEN: usize = 64;
/// Length of an Ed25519 signature in padded base64.
pub const ED25519_SIG_B64_LEN: usize = 88;

/// The signature payload of a request's parameters: every pair but `signature`, sorted by name
/// (byte order, which is what Binance calls alphabetical), `name=value` joined with `&`, no
/// percent-encoding. Pairs with equal names keep their given order (a JSON object has none).
pub fn payload<'a, I: IntoIterator<Item = (&'a str, &'a str)>>(params: I) -> String {
    let mut pairs: Vec<(&str, &str)> = params
        .into_iter()
        .filter(|(name, _)| *name != SIGNATURE_PARAM)
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let len = pairs
        .iter()
        .map(|(k, v)| k.len() + v.len() + 2)
        .sum::<usize>();
    let mut out = String::with_capacity(len);
    for (i, (name, value)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// Why a request's parameters cannot be signed or checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// A parameter's value is an object, an array or `null`: the payload rule has no text for it.
    #[error("parameter {name:?} is {kind}, which has no signature-payload form (only strings, numbers and booleans do)")]
    NotScalar {
        /// The parameter's name.
        name: String,
        /// `"an object"`, `"an array"` or `"null"`.
        kind: &'static str,
    },
}

/// A request's `params` object as (name, value text) pairs, in the object's order: strings
/// unquoted, numbers as written, booleans `true`/`false`; nested objects, arrays and `null` are
/// refused. "As written" is exact for integers; a number with a fraction or an exponent comes
/// back in its shortest round-trip form (`0.10` is `0.1`), so clients should send prices and
/// quantities as strings, as Binance's own examples do.
///
/// # Errors
/// [`SignError::NotScalar`] naming the first parameter that is not a string, number or boolean.
pub fn params_of(params: &Map<String, Value>) -> Result<Vec<(String, String)>, SignError> {
    params
        .iter()
        .map(|(name, value)| {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => return Err(not_scalar(name, "null")),
                Value::Array(_) => return Err(not_scalar(name, "an array")),
                Value::Object(_) => return Err(not_scalar(name, "an object")),
            };
            Ok((name.clone(), text))
        })
        .collect()
}

fn not_scalar(name: &str, kind: &'static str) -> SignError {
    SignError::NotScalar {
        name: name.to_owned(),
        kind,
    }
}

/// [`payload`] over owned pairs, as [`params_of`] returns them.
pub fn payload_of(pairs: &[(String, String)]) -> String {
    payload(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// An HMAC-SHA256 API secret. `Debug` prints no byte of it; it is wiped on drop.
#[derive(Clone)]
pub struct HmacKey {
    secret: Zeroizing<Vec<u8>>,
}

impl HmacKey {
    /// A key from the secret's bytes (Binance's secret key is the ASCII text as given).
    pub fn new(secret: &[u8]) -> Self {
        Self {
            secret: Zeroizing::new(secret.to_vec()),
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes a key of any length: longer ones are hashed first, shorter ones padded.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.secret).expect("HMAC accepts any key length")
    }

    /// The signature of `payload`: HMAC-SHA256, 64 lower-case hex digits.
    pub fn sign(&self, payload: &str) -> String {
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        hex_lower(&mac.finalize().into_bytes())
    }

    /// Whether `sig` is this key's signature of `payload`: hex in either case, compared in
    /// constant time. Anything that is not 64 hex digits is false.
    pub fn verify(&self, payload: &str, sig: &str) -> bool {
        let Some(bytes) = hex_decode_32(sig) else {
            return false;
        };
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        mac.verify_slice(&bytes).is_ok()
    }
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HmacKey(<{} secret bytes>)", self.secret.len())
    }
}

/// Why a PEM key was refused. The messages never quote the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// An `ENCRYPTED PRIVATE KEY`: tape does not take pass phrases.
    #[error("the private key is encrypted (ENCRYPTED PRIVATE KEY); tape takes only unencrypted keys: decrypt it with `openssl pkey -in k.pem -out plain.pem` and keep plain.pem readable by its owner only")]
    Encrypted,
    /// No `-----BEGIN ...-----` block at all.
    #[error(
        "not a PEM key: expected a -----BEGIN PRIVATE KEY----- or -----BEGIN PUBLIC KEY----- block"
    )]
    NotPem,
    /// A PEM block of another kind than the one wanted (a public key where a private one was
    /// wanted, an RSA or EC key in its own format, a certificate, ...).
    #[error("expected a PEM {expected} block, found {found}")]
    WrongBlock {
        /// The label wanted: `PRIVATE KEY` or `PUBLIC KEY`.
        expected: &'static str,
        /// The label found.
        found: String,
    },
    /// A PKCS#8 or SPKI key of another algorithm (RSA, EC, ...).
    #[error("not an Ed25519 key: the key's algorithm is {oid} ({name}); Binance's Ed25519 keys have 1.3.101.112")]
    NotEd25519 {
        /// The algorithm's object identifier.
        oid: String,
        /// A common name for it, or `unknown`.
        name: &'static str,
    },
    /// The block is there but its content does not decode as a key.
    #[error("malformed key: {0}")]
    Malformed(String),
}

/// Ed25519's algorithm identifier in PKCS#8 and SPKI.
const ED25519_OID: &str = "1.3.101.112";

fn oid_name(oid: &str) -> &'static str {
    match oid {
        "1.2.840.113549.1.1.1" => "RSA",
        "1.2.840.10045.2.1" => "EC",
        "1.3.101.113" => "Ed448",
        "1.3.101.110" => "X25519",
        "1.3.101.111" => "X448",
        _ => "unknown",
    }
}

/// The label of the first PEM block in `pem`, checked against `expected` before any decoding,
/// so that the error names the real problem (an encrypted key, a public key, an RSA key).
fn check_label(pem: &str, expected: &'static str) -> Result<(), KeyError> {
    let Some(start) = pem.find("-----BEGIN ") else {
        return Err(KeyError::NotPem);
    };
    let rest = &pem[start + "-----BEGIN ".len()..];
    let Some(end) = rest.find("-----") else {
        return Err(KeyError::NotPem);
    };
    let label = &rest[..end];
    if label == "ENCRYPTED PRIVATE KEY" {
        return Err(KeyError::Encrypted);
    }
    if label != expected {
        // A label is short ASCII; cap what is echoed so hostile text stays out of logs.
        let found: String = label.chars().take(40).collect();
        return Err(KeyError::WrongBlock { expected, found });
    }
    Ok(())
}

/// The algorithm OID of a DER-encoded PKCS#8 `PrivateKeyInfo` or SPKI, read without trusting it.
fn algorithm_oid(der: &[u8], private: bool) -> Result<String, KeyError> {
    use ed25519_dalek::pkcs8::{spki::SubjectPublicKeyInfoRef, PrivateKeyInfo};
    let oid = if private {
        PrivateKeyInfo::try_from(der)
            .map_err(|e| KeyError::Malformed(e.to_string()))?
            .algorithm
            .oid
    } else {
        SubjectPublicKeyInfoRef::try_from(der)
            .map_err(|e| KeyError::Malformed(e.to_string()))?
            .algorithm
            .oid
    };
    Ok(oid.to_string())
}

fn pem_der(pem: &str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    use ed25519_dalek::pkcs8::spki::der::pem;
    // Leading text (comments, other output) before the block is tolerated, as OpenSSL does.
    let start = pem.find("-----BEGIN ").ok_or(KeyError::NotPem)?;
    let (_label, der) = pem::decode_vec(pem[start..].trim_end().as_bytes())
        .map_err(|e| KeyError::Malformed(e.to_string()))?;
    Ok(Zeroizing::new(der))
}

/// An Ed25519 private key. `Debug` prints only its public half; the secret is wiped on drop.
#[derive(Clone)]
pub struct Ed25519Key {
    key: SigningKey,
}

impl Ed25519Key {
    /// Reads an unencrypted PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), as
    /// `openssl genpkey -algorithm ed25519` writes it.
    ///
    /// # Errors
    /// [`KeyError::Encrypted`] for an `ENCRYPTED PRIVATE KEY` (the message says how to decrypt
    /// it), [`KeyError::NotPem`], [`KeyError::WrongBlock`] for a public key or an RSA/EC key in
    /// its own format, [`KeyError::NotEd25519`] for a PKCS#8 key of another algorithm,
    /// [`KeyError::Malformed`].
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, KeyError> {
        use ed25519_dalek::pkcs8::PrivateKeyInfo;
        check_label(pem, "PRIVATE KEY")?;
        let der = pem_der(pem)?;
        let oid = algorithm_oid(&der, true)?;
        if oid != ED25519_OID {
            let name = oid_name(&oid);
            return Err(KeyError::NotEd25519 { oid, name });
        }
        let info = PrivateKeyInfo::try_from(der.as_slice())
            .map_err(|e| KeyError::Malformed(e.to_string()))?;
        let key = SigningKey::try_from(info).map_err(|e| KeyError::Malformed(e.to_string()))?;
        Ok(Self { key })
    }

    /// A key from its 32-byte seed (the RFC 8032 private key).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(seed),
        }
    }

    /// The unencrypted PKCS#8 PEM of this key (for tests and key generation tools).
    ///
    /// # Panics
    /// Never for a valid key (the encoder's only failure is an allocation limit).
    pub fn to_pkcs8_pem(&self) -> Zeroizing<String> {
        self.key
            .to_pkcs8_pem(LineEnding::LF)
            .expect("an Ed25519 key always encodes")
    }

    /// The signature of `payload`: Ed25519, standard padded base64 (88 characters).
    pub fn sign(&self, payload: &str) -> String {
        STANDARD.encode(self.key.sign(payload.as_bytes()).to_bytes())
    }

    /// The public half.
    pub fn public(&self) -> Ed25519PublicKey {
        Ed25519PublicKey {
            key: self.key.verifying_key(),
        }
    }
}

impl fmt::Debug for Ed25519Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ed25519Key {{ public: {} }}", self.public().to_base64())
    }
}

/// An Ed25519 public key, as registered with an API key.
#[derive(Clone, PartialEq, Eq)]
pub struct Ed25519PublicKey {
    key: VerifyingKey,
}

impl Ed25519PublicKey {
    /// Reads an SPKI PEM (`-----BEGIN PUBLIC KEY-----`), as `openssl pkey -pubout` writes it
    /// and as Binance takes it when an Ed25519 API key is registered.
    ///
    /// # Errors
    /// [`KeyError::NotPem`], [`KeyError::WrongBlock`] (for a private key among others: give
    /// the public half), [`KeyError::NotEd25519`], [`KeyError::Malformed`].
    pub fn from_public_pem(pem: &str) -> Result<Self, KeyError> {
        check_label(pem, "PUBLIC KEY")?;
        let der = pem_der(pem)?;
        let oid = algorithm_oid(&der, false)?;
        if oid != ED25519_OID {
            let name = oid_name(&oid);
            return Err(KeyError::NotEd25519 { oid, name });
        }
        let key = VerifyingKey::from_public_key_der(&der)
            .map_err(|e| KeyError::Malformed(e.to_string()))?;
        Ok(Self { key })
    }

    /// A key from its 32 raw bytes.
    ///
    /// # Errors
    /// [`KeyError::Malformed`] when the bytes are not a point on the curve.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        VerifyingKey::from_bytes(bytes)
            .map(|key| Self { key })
            .map_err(|e| KeyError::Malformed(e.to_string()))
    }

    /// The 32 raw bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The SPKI PEM, `-----BEGIN PUBLIC KEY-----`, LF line endings.
    ///
    /// # Panics
    /// Never for a valid key.
    pub fn to_public_pem(&self) -> String {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .expect("an Ed25519 public key always encodes")
    }

    fn to_base64(&self) -> String {
        STANDARD.encode(self.key.to_bytes())
    }

    /// Whether `sig_b64` (standard, padded base64; compared exactly, as Binance does) is a valid
    /// signature of `payload` by this key. Anything undecodable is false.
    pub fn verify(&self, payload: &str, sig_b64: &str) -> bool {
        if sig_b64.len() != ED25519_SIG_B64_LEN {
            return false;
        }
        let mut raw = [0u8; 66];
        let Ok(64) = STANDARD.decode_slice(sig_b64, &mut raw) else {
            return false;
        };
        let mut bytes = [0u8; 64];
        bytes.copy_from_slice(&raw[..64]);
        let sig = ed25519_dalek::Signature::from_bytes(&bytes);
        self.key.verify_strict(payload.as_bytes(), &sig).is_ok()
    }
}

impl fmt::Debug for Ed25519PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ed25519PublicKey({})", self.to_base64())
    }
}

/// The key a client signs its requests with.
#[derive(Debug, Clone)]
pub enum Signer {
    /// An HMAC-SHA256 secret.
    Hmac(HmacKey),
    /// An Ed25519 private key.
    Ed25519(Ed25519Key),
}

impl Signer {
    /// The signature of `payload` in the key type's text form (hex for HMAC, base64 for
    /// Ed25519).
    pub fn sign(&self, payload: &str) -> String {
        match self {
            Signer::Hmac(k) => k.sign(payload),
            Signer::Ed25519(k) => k.sign(payload),
        }
    }

    /// The key type's name as Binance writes it: `HMAC_SHA256` or `ED25519`.
    pub fn kind(&self) -> KeyKind {
        match self {
            Signer::Hmac(_) => KeyKind::Hmac,
            Signer::Ed25519(_) => KeyKind::Ed25519,
        }
    }

    /// The public half a venue needs to check this signer's requests.
    pub fn verifier(&self) -> Verifier {
        match self {
            Signer::Hmac(k) => Verifier::Hmac(k.clone()),
            Signer::Ed25519(k) => Verifier::Ed25519(k.public()),
        }
    }
}

/// What a venue holds to check an API key's signatures.
#[derive(Debug, Clone)]
pub enum Verifier {
    /// The shared HMAC secret.
    Hmac(HmacKey),
    /// The registered Ed25519 public key.
    Ed25519(Ed25519PublicKey),
}

impl Verifier {
    /// Whether `sig` is a valid signature of `payload` for this key.
    pub fn verify(&self, payload: &str, sig: &str) -> bool {
        match self {
            Verifier::Hmac(k) => k.verify(payload, sig),
            Verifier::Ed25519(k) => k.verify(payload, sig),
        }
    }

    /// The key type.
    pub fn kind(&self) -> KeyKind {
        match self {
            Verifier::Hmac(_) => KeyKind::Hmac,
            Verifier::Ed25519(_) => KeyKind::Ed25519,
        }
    }
}

/// An API key's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// HMAC-SHA256 with a shared secret.
    Hmac,
    /// Ed25519 with a registered public key.
    Ed25519,
}

impl KeyKind {
    /// Binance's name for the type.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Hmac => "HMAC_SHA256",
            KeyKind::Ed25519 => "ED25519",
        }
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

fn hex_decode_32(text: &str) -> Option<[u8; 32]> {
    let digits = text.as_bytes();
    if digits.len() != HMAC_SIG_HEX_LEN {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}
