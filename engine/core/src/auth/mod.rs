//! Client authentication: HS256 JSON Web Tokens naming configured users (`docs/auth.md`).
//!
//! A client presents a token (`?token=` on the WebSocket URL, an `auth` request, or
//! `Authorization: Bearer` on HTTP); [`Authenticator::verify`] checks it against the shared
//! secret and `now` and returns the [`Principal`]: which configured user, with which
//! [`Roles`]. Roles live in the configuration; the token only names the user (`sub`).
//!
//! Sans-IO like the rest of the core: `verify` takes `now_ms` and reads no clock.
//! [`AuthConfig::secret_from_env`] is a start-up helper for binaries, not part of the core.

mod roles;
#[cfg(test)]
mod tests;

pub use roles::{Role, Roles};

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::hmac;
use serde_json::{Map, Value};

/// Longest token accepted, in bytes; checked before any decoding.
pub const MAX_TOKEN_BYTES: usize = 4096;
/// Shortest secret accepted: an HS256 key must be at least the hash size (RFC 7518 §3.2).
pub const MIN_SECRET_BYTES: usize = 32;
/// Longest user name.
pub const MAX_USER_NAME: usize = 64;
/// Most users in one configuration.
pub const MAX_USERS: usize = 1 << 16;
/// Default clock leeway for `exp` and `nbf`, seconds.
pub const DEFAULT_LEEWAY_S: u64 = 30;
/// Default open connections per user.
pub const DEFAULT_MAX_CONNECTIONS_PER_USER: usize = 5;

/// `{"alg":"HS256","typ":"JWT"}` in base64url: the header of every token [`sign_hs256`] makes.
const HEADER_B64: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// One configured user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserDef {
    /// The name a token's `sub` must match exactly: 1 to 64 of `[A-Za-z0-9_.@-]`.
    pub name: String,
    /// What the user may do.
    pub roles: Roles,
    /// Open connections allowed; `None` takes [`AuthConfig::max_connections_per_user`].
    pub max_connections: Option<usize>,
}

/// The secret and the user table. `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// The HS256 key, at least [`MIN_SECRET_BYTES`].
    pub secret: Vec<u8>,
    /// Every user a token may name.
    pub users: Vec<UserDef>,
    /// Clock skew tolerated on `exp` and `nbf`, seconds. Default [`DEFAULT_LEEWAY_S`].
    pub leeway_s: u64,
    /// Open connections per user unless the user says otherwise. Default
    /// [`DEFAULT_MAX_CONNECTIONS_PER_USER`].
    pub max_connections_per_user: usize,
}

impl AuthConfig {
    /// A configuration with the default leeway and connection limit.
    pub fn new(secret: Vec<u8>, users: Vec<UserDef>) -> Self {
        AuthConfig {
            secret,
            users,
            leeway_s: DEFAULT_LEEWAY_S,
            max_connections_per_user: DEFAULT_MAX_CONNECTIONS_PER_USER,
        }
    }

    /// Reads the secret from the environment variable `var_name`, as raw bytes (nothing is
    /// trimmed or decoded). For binaries at start-up; the core never calls it.
    ///
    /// # Errors
    /// [`AuthConfigError::SecretUnset`], [`AuthConfigError::SecretEmpty`].
    pub fn secret_from_env(var_name: &str) -> Result<Vec<u8>, AuthConfigError> {
        secret_from_var(var_name, std::env::var_os(var_name))
    }
}

fn secret_from_var(var_name: &str, value: Option<OsString>) -> Result<Vec<u8>, AuthConfigError> {
    match value {
        None => Err(AuthConfigError::SecretUnset(var_name.to_owned())),
        Some(v) if v.is_empty() => Err(AuthConfigError::SecretEmpty(var_name.to_owned())),
        Some(v) => Ok(v.into_encoded_bytes()),
    }
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("secret", &format_args!("<{} bytes>", self.secret.len()))
            .field("users", &self.users)
            .field("leeway_s", &self.leeway_s)
            .field("max_connections_per_user", &self.max_connections_per_user)
            .finish()
    }
}

/// Why an [`AuthConfig`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthConfigError {
    /// The secret's environment variable is not set.
    #[error("auth secret: environment variable {0} is not set")]
    SecretUnset(String),
    /// The secret's environment variable is empty.
    #[error("auth secret: environment variable {0} is empty")]
    SecretEmpty(String),
    /// The secret is shorter than [`MIN_SECRET_BYTES`].
    #[error("auth secret is {0} bytes; HS256 needs at least {min} random bytes (RFC 7518 3.2)", min = MIN_SECRET_BYTES)]
    SecretTooShort(usize),
    /// A user name is empty, too long or has a character outside `[A-Za-z0-9_.@-]`.
    #[error("invalid user name {0:?}: must be 1 to {max} characters of A-Z a-z 0-9 _ . @ -", max = MAX_USER_NAME)]
    InvalidUserName(String),
    /// Two users share a name.
    #[error("user {0} is declared more than once")]
    DuplicateUser(String),
    /// A role name is not one of viewer, trader, publisher, admin, replay.
    #[error("unknown role {0:?}: expected viewer, trader, publisher, admin or replay")]
    UnknownRole(String),
    /// `max_connections_per_user` is zero.
    #[error("max_connections_per_user must be at least 1")]
    ZeroMaxConnectionsPerUser,
    /// A user's `max_connections` is zero.
    #[error("user {0}: max_connections must be at least 1")]
    ZeroUserMaxConnections(String),
    /// More than [`MAX_USERS`] users.
    #[error("{0} users declared; at most {max} supported", max = MAX_USERS)]
    TooManyUsers(usize),
}

/// A configured user, as an index into the [`Authenticator`]'s table (not the account
/// layer's name-based `account::UserId`). Only meaningful for the authenticator that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserId(u32);

impl UserId {
    /// The position in the configured user list, for per-user tables.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Who a verified token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    /// The configured user named by `sub`.
    pub user: UserId,
    /// That user's roles, from the configuration.
    pub roles: Roles,
}

/// Why a token was refused. Report [`AuthError::code`] to clients and in counters; the
/// message is for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Longer than [`MAX_TOKEN_BYTES`].
    #[error("token is {0} bytes; at most {max} accepted", max = MAX_TOKEN_BYTES)]
    TooLong(usize),
    /// Not three base64url segments, or a header or payload that is not a JSON object, or a
    /// header this verifier does not accept (`typ` other than `JWT`, `crit`).
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The header's `alg` is missing or not `HS256` (the quoted value, shortened).
    #[error("unsupported token alg {0}: only HS256 is accepted")]
    UnsupportedAlg(String),
    /// The HMAC does not match: tampered, or signed with another secret.
    #[error("bad token signature")]
    BadSignature,
    /// Correctly signed, but a claim is missing or has the wrong type.
    #[error("invalid token claim {claim}: {problem}")]
    InvalidClaim {
        /// The claim's name.
        claim: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// `exp` plus the leeway is before now.
    #[error("token expired: exp {exp} s, now {now_s} s")]
    Expired {
        /// The token's `exp`, seconds.
        exp: u64,
        /// Now, seconds.
        now_s: u64,
    },
    /// `nbf` minus the leeway is after now.
    #[error("token not valid yet: nbf {nbf} s, now {now_s} s")]
    NotYetValid {
        /// The token's `nbf`, seconds.
        nbf: u64,
        /// Now, seconds.
        now_s: u64,
    },
    /// `sub` names no configured user (the name, shortened).
    #[error("unknown user {0:?}")]
    UnknownUser(String),
}

impl AuthError {
    /// A stable short code: `too_long`, `malformed`, `unsupported_alg`, `bad_signature`,
    /// `invalid_claim`, `expired`, `not_yet_valid`, `unknown_user`.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::TooLong(_) => "too_long",
            AuthError::Malformed(_) => "malformed",
            AuthError::UnsupportedAlg(_) => "unsupported_alg",
            AuthError::BadSignature => "bad_signature",
            AuthError::InvalidClaim { .. } => "invalid_claim",
            AuthError::Expired { .. } => "expired",
            AuthError::NotYetValid { .. } => "not_yet_valid",
            AuthError::UnknownUser(_) => "unknown_user",
        }
    }
}

#[derive(Debug)]
struct User {
    name: Box<str>,
    roles: Roles,
    max_connections: usize,
}

/// Verifies tokens against one secret and user table.
pub struct Authenticator {
    key: hmac::Key,
    users: Vec<User>,
    by_name: HashMap<Box<str>, UserId>,
    leeway_s: u64,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("users", &self.users)
            .field("leeway_s", &self.leeway_s)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Validates `config` and builds the verifier.
    ///
    /// # Errors
    /// [`AuthConfigError`] for a short secret, a bad or duplicate user name, a zero
    /// connection limit or too many users.
    pub fn new(config: AuthConfig) -> Result<Self, AuthConfigError> {
        if config.secret.len() < MIN_SECRET_BYTES {
            return Err(AuthConfigError::SecretTooShort(config.secret.len()));
        }
        if config.max_connections_per_user == 0 {
            return Err(AuthConfigError::ZeroMaxConnectionsPerUser);
        }
        if config.users.len() > MAX_USERS {
            return Err(AuthConfigError::TooManyUsers(config.users.len()));
        }
        let mut users = Vec::with_capacity(config.users.len());
        let mut by_name = HashMap::with_capacity(config.users.len());
        for (i, def) in config.users.into_iter().enumerate() {
            if !valid_user_name(&def.name) {
                let shown = def.name.chars().take(MAX_USER_NAME + 16).collect();
                return Err(AuthConfigError::InvalidUserName(shown));
            }
            if def.max_connections == Some(0) {
                return Err(AuthConfigError::ZeroUserMaxConnections(def.name));
            }
            let name: Box<str> = def.name.into();
            // i < MAX_USERS, checked above, so it fits.
            let id = UserId(i as u32);
            if by_name.insert(name.clone(), id).is_some() {
                return Err(AuthConfigError::DuplicateUser(name.into()));
            }
            users.push(User {
                name,
                roles: def.roles,
                max_connections: def
                    .max_connections
                    .unwrap_or(config.max_connections_per_user),
            });
        }
        Ok(Authenticator {
            key: hmac::Key::new(hmac::HMAC_SHA256, &config.secret),
            users,
            by_name,
            leeway_s: config.leeway_s,
        })
    }

    /// Verifies `token` at `now_ms` (Unix milliseconds) and returns who it speaks for.
    ///
    /// Checks, in order: length, three base64url segments, header (`alg` exactly `HS256`,
    /// `typ` absent or `JWT`, no `crit`), the HMAC in constant time, then the claims: `sub`
    /// a string, `exp` required and `nbf`/`iat` optional non-negative integers, the time
    /// window with the leeway, and `sub` naming a configured user. Other claims are ignored.
    ///
    /// # Errors
    /// [`AuthError`]; see [`AuthError::code`].
    pub fn verify(&self, token: &str, now_ms: u64) -> Result<Principal, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::TooLong(token.len()));
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed(
                "expected three dot-separated segments",
            ));
        };
        let header = decode_object(h, "header is not base64url", "header is not a JSON object")?;
        check_header(&header)?;
        let sig = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| AuthError::Malformed("signature is not base64url"))?;
        // The claims are parsed only once the signature is known good.
        let signed = &token[..h.len() + 1 + p.len()];
        hmac::verify(&self.key, signed.as_bytes(), &sig).map_err(|_| AuthError::BadSignature)?;
        let claims = decode_object(
            p,
            "payload is not base64url",
            "payload is not a JSON object",
        )?;

        let sub = match claims.get("sub") {
            Some(Value::String(s)) => s.as_str(),
            Some(_) => return Err(invalid("sub", "not a string")),
            None => return Err(invalid("sub", "missing")),
        };
        let exp = numeric_date(&claims, "exp")?.ok_or(invalid("exp", "missing"))?;
        let nbf = numeric_date(&claims, "nbf")?;
        numeric_date(&claims, "iat")?;

        let now_s = now_ms / 1000;
        if now_s > exp.saturating_add(self.leeway_s) {
            return Err(AuthError::Expired { exp, now_s });
        }
        if let Some(nbf) = nbf {
            if now_s.saturating_add(self.leeway_s) < nbf {
                return Err(AuthError::NotYetValid { nbf, now_s });
            }
        }
        let user = *self
            .by_name
            .get(sub)
            .ok_or_else(|| AuthError::UnknownUser(sub.chars().take(MAX_USER_NAME).collect()))?;
        Ok(Principal {
            user,
            roles: self.users[user.index()].roles,
        })
    }

    /// The user's configured name.
    ///
    /// # Panics
    /// If `user` came from another authenticator with fewer users.
    pub fn user_name(&self, user: UserId) -> &str {
        &self.users[user.index()].name
    }

    /// The user's connection limit (its own, else the configured default).
    ///
    /// # Panics
    /// If `user` came from another authenticator with fewer users.
    pub fn max_connections(&self, user: UserId) -> usize {
        self.users[user.index()].max_connections
    }

    /// The user with this exact name.
    pub fn user_by_name(&self, name: &str) -> Option<UserId> {
        self.by_name.get(name).copied()
    }

    /// How many users are configured; every [`UserId::index`] is below it.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }
}

fn valid_user_name(s: &str) -> bool {
    (1..=MAX_USER_NAME).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'@'))
}

fn invalid(claim: &'static str, problem: &'static str) -> AuthError {
    AuthError::InvalidClaim { claim, problem }
}

fn decode_object(
    segment: &str,
    bad_b64: &'static str,
    bad_json: &'static str,
) -> Result<Map<String, Value>, AuthError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| AuthError::Malformed(bad_b64))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(AuthError::Malformed(bad_json)),
    }
}

fn check_header(header: &Map<String, Value>) -> Result<(), AuthError> {
    match header.get("alg") {
        Some(Value::String(alg)) if alg == "HS256" => {}
        Some(Value::String(alg)) => {
            let shown: String = alg.chars().take(32).collect();
            return Err(AuthError::UnsupportedAlg(format!("{shown:?}")));
        }
        Some(_) => return Err(AuthError::UnsupportedAlg("(not a string)".into())),
        None => return Err(AuthError::UnsupportedAlg("(missing)".into())),
    }
    match header.get("typ") {
        None => {}
        Some(Value::String(t)) if t == "JWT" => {}
        Some(_) => return Err(AuthError::Malformed("header typ is not \"JWT\"")),
    }
    // RFC 7515 4.1.11: extensions listed in crit must be understood; this verifier has none.
    if header.contains_key("crit") {
        return Err(AuthError::Malformed("header crit is not supported"));
    }
    Ok(())
}

/// An optional NumericDate claim, which must be a non-negative integer of seconds.
fn numeric_date(
    claims: &Map<String, Value>,
    claim: &'static str,
) -> Result<Option<u64>, AuthError> {
    match claims.get(claim) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or(invalid(claim, "not a non-negative integer of seconds")),
    }
}

/// Signs `claims_json` as an HS256 token with the header `{"alg":"HS256","typ":"JWT"}`.
///
/// The claims are signed as given, unchecked (tests mint bad tokens with it), and the
/// secret's length is not checked here: [`Authenticator::new`] refuses short secrets.
pub fn sign_hs256(secret: &[u8], claims_json: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut token = String::with_capacity(HEADER_B64.len() + claims_json.len() * 4 / 3 + 48);
    token.push_str(HEADER_B64);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(claims_json, &mut token);
    let tag = hmac::sign(&key, token.as_bytes());
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(tag.as_ref(), &mut token);
    token
}

/// A token for user `sub` expiring at `exp_s` (Unix seconds): claims `{"exp":..,"sub":..}`.
pub fn token_for(secret: &[u8], sub: &str, exp_s: u64) -> String {
    let claims = serde_json::json!({ "sub": sub, "exp": exp_s });
    sign_hs256(secret, &claims.to_string())
}
