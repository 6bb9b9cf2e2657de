//! Binance's request security for the WebSocket API, as a pure check: which methods need what
//! ([`security`]), and [`check`] of one request frame against the registered keys, the
//! connection's logon and the wall clock (`now_us`, given by the caller).
//!
//! The rules (`web-socket-api.md`, "Request security", "Timing security", "Session
//! Authentication"):
//! - a `SIGNED` method needs `apiKey`, `timestamp` and `signature`; after `session.logon` it
//!   needs only `timestamp` (an explicit `apiKey` + `signature` still authorizes that one
//!   request with another key);
//! - the signature covers every parameter but itself: sorted by name, `name=value` joined with
//!   `&`, values as sent (a string's contents, a number's text) ([`tape_core::sign::payload`]);
//! - `timestamp` is ms or µs; the request is refused when it is 1000 ms or more ahead of the
//!   server's clock, or older than `recvWindow` (ms, up to three decimals, default 5000, at
//!   most 60000);
//! - `session.logon` takes Ed25519 keys only; `userDataStream.subscribe` needs a logged-on
//!   session, `userDataStream.subscribe.signature` a signature by any key.
//!
//! Where Binance's documents leave the exact answer open (a logon with an HMAC key, a
//! subscribe without logon), the choice is written at the constant that makes it.

use std::collections::BTreeMap;

use serde_json::value::RawValue;
use tape_core::sign::{self, KeyKind};

use super::request::ApiError;
use crate::sim::auth::{valid_key_name, ApiKeys, KeyId};

/// `recvWindow` when the request sends none, µs.
pub(crate) const DEFAULT_RECV_WINDOW_US: u64 = 5_000_000;
/// Largest `recvWindow` accepted, ms.
pub(crate) const MAX_RECV_WINDOW_MS: u64 = 60_000;
/// A timestamp this far ahead of the server's clock, or more, is refused, µs.
pub(crate) const FUTURE_TOLERANCE_US: u64 = 1_000_000;
/// Timestamps at or above this are µs (as ms it would be the year 5138).
const MICROS_FROM: u64 = 100_000_000_000_000;

/// What a method needs, by Binance's security types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Security {
    /// `NONE`: anyone.
    None,
    /// listenKey management: an API key, no signature.
    ApiKey,
    /// `userDataStream.subscribe`: a session logged on with `session.logon`.
    Logon,
    /// `TRADE`, `USER_DATA`, `USER_STREAM` (by signature): `SIGNED`.
    Signed,
}

/// The security of `method` (a `vN/` prefix is ignored). Every method not known to be
/// public is `SIGNED`, so methods the sim learns later are protected by default.
pub(crate) fn security(method: &str) -> Security {
    let method = strip_version(method);
    match method {
        "ping"
        | "time"
        | "exchangeInfo"
        | "depth"
        | "trades.recent"
        | "trades.historical"
        | "trades.aggregate"
        | "klines"
        | "uiKlines"
        | "avgPrice"
        | "ticker"
        | "ticker.24hr"
        | "ticker.price"
        | "ticker.book"
        | "ticker.tradingDay"
        | "session.status"
        | "session.logout"
        | "session.subscriptions"
        | "userDataStream.unsubscribe" => Security::None,
        "userDataStream.start" | "userDataStream.ping" | "userDataStream.stop" => Security::ApiKey,
        "userDataStream.subscribe" => Security::Logon,
        _ => Security::Signed,
    }
}

/// `v3/order.place` is `order.place`.
fn strip_version(method: &str) -> &str {
    match method.split_once('/') {
        Some((v, rest))
            if v.len() > 1 && v.starts_with('v') && v[1..].bytes().all(|c| c.is_ascii_digit()) =>
        {
            rest
        }
        _ => method,
    }
}

/// The session methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionOp {
    /// `session.logon`.
    Logon,
    /// `session.status`.
    Status,
    /// `session.logout`.
    Logout,
}

/// A connection's logon, kept in its session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SessionAuth {
    /// The key `session.logon` authorized, and when (wall clock, ms).
    pub logged_on: Option<(KeyId, u64)>,
    /// When the connection opened (wall clock, ms): `connectedSince`.
    pub connected_ms: u64,
    /// The user-data subscription was made by `userDataStream.subscribe` (the logon's), so
    /// `session.logout` ends it; one made by signature outlives the logout.
    pub logon_subscription: bool,
}

/// A request that passed: its method, and the key that authorized it (`None` for public
/// methods).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Authorized {
    pub method: String,
    pub key: Option<KeyId>,
}

/// -2014: `apiKey` is not in Binance's format.
fn bad_key_format() -> ApiError {
    ApiError::new(-2014, "API-key format invalid.")
}

/// -2015: no such key (or, on Binance, no permission or IP).
pub(crate) fn rejected_key() -> ApiError {
    ApiError::new(-2015, "Invalid API-key, IP, or permissions for action.")
}

/// -1022.
pub(crate) fn bad_signature() -> ApiError {
    ApiError::new(-1022, "Signature for this request is not valid.")
}

/// -1002, for `userDataStream.subscribe` on a session that is not logged on. Binance's
/// documents say the method needs a logon but not which error it gives without one; this is
/// Binance's generic "not authorized" code.
fn not_logged_on() -> ApiError {
    ApiError::new(-1002, "You are not authorized to execute this request.")
}

impl ApiError {
    /// The response's `status`: 401 for the authentication errors Binance answers 401
    /// (-2015 is documented so in `web-socket-api.md`; -2014 and -1002 as on the REST API),
    /// 400 for everything else (-1021 and -1022 included, as on the REST API).
    pub(crate) fn status(&self) -> u16 {
        match self.code {
            -2014 | -2015 | -1002 => 401,
            _ => 400,
        }
    }
}

/// Checks one request frame. `Ok` carries the method and the authorizing key; an unreadable
/// frame is `-1135`, which the request parser reports the same way.
///
/// # Errors
/// Binance's: -1102 (a missing `apiKey`, `timestamp` or `signature`, `recvWindow` over
/// 60000), -1100 (a malformed `timestamp` or `recvWindow`), -2014, -2015, -1022, -1021,
/// -1002.
pub(crate) fn check(
    text: &str,
    session: &SessionAuth,
    keys: &ApiKeys,
    now_us: u64,
) -> Result<Authorized, ApiError> {
    let top: BTreeMap<String, &RawValue> =
        serde_json::from_str(text).map_err(|_| ApiError::invalid_json("expected a JSON object"))?;
    let method: String = top
        .get("method")
        .and_then(|raw| serde_json::from_str(raw.get()).ok())
        .ok_or_else(|| ApiError::missing("method"))?;
    let params: BTreeMap<String, &RawValue> = match top.get("params") {
        None => BTreeMap::new(),
        Some(raw) if raw.get() == "null" => BTreeMap::new(),
        Some(raw) => serde_json::from_str(raw.get())
            .map_err(|_| ApiError::invalid_json("'params' must be an object"))?,
    };
    let key = match security(&method) {
        Security::None => None,
        Security::ApiKey => Some(match text_of(&params, "apiKey")? {
            Some(name) => lookup(keys, &name)?.0,
            None => session
                .logged_on
                .map(|(k, _)| k)
                .ok_or_else(|| ApiError::missing("apiKey"))?,
        }),
        Security::Logon => Some(session.logged_on.ok_or_else(not_logged_on)?.0),
        Security::Signed => Some(signed(&method, &params, session, keys, now_us)?),
    };
    Ok(Authorized { method, key })
}

fn lookup<'k>(keys: &'k ApiKeys, name: &str) -> Result<(KeyId, &'k sign::Verifier), ApiError> {
    if !valid_key_name(name) {
        return Err(bad_key_format());
    }
    keys.lookup(name).ok_or_else(rejected_key)
}

fn signed(
    method: &str,
    params: &BTreeMap<String, &RawValue>,
    session: &SessionAuth,
    keys: &ApiKeys,
    now_us: u64,
) -> Result<KeyId, ApiError> {
    let bare = strip_version(method);
    let logon = bare == "session.logon";
    let explicit =
        logon || bare == "userDataStream.subscribe.signature" || params.contains_key("signature");
    let api_key = text_of(params, "apiKey")?;
    let key = match session.logged_on {
        Some((id, _)) if !explicit => {
            // A logged-on session may still name its own key; naming another one needs that
            // key's signature.
            if let Some(name) = &api_key {
                let (named, _) = lookup(keys, name)?;
                if named != id {
                    return Err(ApiError::missing("signature"));
                }
            }
            timing(params, now_us)?;
            return Ok(id);
        }
        _ => {
            let name = api_key.ok_or_else(|| ApiError::missing("apiKey"))?;
            lookup(keys, &name)?
        }
    };
    let signature = text_of(params, "signature")?.ok_or_else(|| ApiError::missing("signature"))?;
    timing(params, now_us)?;
    let (id, verifier) = key;
    // Session logon takes Ed25519 keys only. Binance's documents do not give the error for
    // another key type; an HMAC signature checked as Ed25519 fails, so the sim answers -1022.
    if logon && verifier.kind() != KeyKind::Ed25519 {
        return Err(bad_signature());
    }
    let pairs = values(params)?;
    let payload = sign::payload(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    if !verifier.verify(&payload, &signature) {
        return Err(bad_signature());
    }
    Ok(id)
}

/// `timestamp` against `now_us` with the request's `recvWindow`.
fn timing(params: &BTreeMap<String, &RawValue>, now_us: u64) -> Result<(), ApiError> {
    let ts = text_of(params, "timestamp")?.ok_or_else(|| ApiError::missing("timestamp"))?;
    if ts.is_empty() || ts.len() > 20 || !ts.bytes().all(|c| c.is_ascii_digit()) {
        return Err(ApiError::illegal("timestamp", "^[0-9]{1,20}$"));
    }
    let ts: u64 = ts
        .parse()
        .map_err(|_| ApiError::illegal("timestamp", "^[0-9]{1,20}$"))?;
    let ts_us = if ts >= MICROS_FROM { ts } else { ts * 1000 };
    let window_us = match text_of(params, "recvWindow")? {
        None => DEFAULT_RECV_WINDOW_US,
        Some(w) => recv_window_us(&w)?,
    };
    if ts_us >= now_us.saturating_add(FUTURE_TOLERANCE_US) {
        return Err(ApiError::new(
            -1021,
            "Timestamp for this request was 1000ms ahead of the server's time.",
        ));
    }
    if now_us.saturating_sub(ts_us) > window_us {
        return Err(ApiError::new(
            -1021,
            "Timestamp for this request is outside of the recvWindow.",
        ));
    }
    Ok(())
}

/// `recvWindow` in µs: ms with up to three decimals, at most [`MAX_RECV_WINDOW_MS`].
fn recv_window_us(text: &str) -> Result<u64, ApiError> {
    const RANGE: &str = "^[0-9]{1,20}(\\.[0-9]{1,3})?$";
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |d: &str, max: usize| d.len() <= max && d.bytes().all(|c| c.is_ascii_digit());
    if int.is_empty()
        || !digits(int, 20)
        || !digits(frac, 3)
        || (text.contains('.') && frac.is_empty())
    {
        return Err(ApiError::illegal("recvWindow", RANGE));
    }
    let too_large = || {
        ApiError::new(
            -1102,
            format!("'recvWindow' contains unexpected value. Cannot be greater than {MAX_RECV_WINDOW_MS}."),
        )
    };
    let ms: u64 = int.parse().map_err(|_| too_large())?;
    let micros = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0u64, |acc, c| acc * 10 + u64::from(c - b'0'));
    let us = ms
        .checked_mul(1000)
        .and_then(|v| v.checked_add(micros))
        .ok_or_else(too_large)?;
    if us > MAX_RECV_WINDOW_MS * 1000 {
        return Err(too_large());
    }
    Ok(us)
}

/// A parameter's text: a string's contents, any other value's JSON text; `None` when absent
/// or null.
fn text_of(params: &BTreeMap<String, &RawValue>, name: &str) -> Result<Option<String>, ApiError> {
    match params.get(name).map(|r| r.get()) {
        None | Some("null") => Ok(None),
        Some(raw) => value_text(raw)
            .map(Some)
            .ok_or_else(|| ApiError::missing(name)),
    }
}

fn value_text(raw: &str) -> Option<String> {
    if raw.starts_with('"') {
        serde_json::from_str::<String>(raw).ok()
    } else {
        Some(raw.to_owned())
    }
}

/// Every parameter's (name, text), for the signature payload.
fn values(params: &BTreeMap<String, &RawValue>) -> Result<Vec<(String, String)>, ApiError> {
    params
        .iter()
        .map(|(k, raw)| {
            value_text(raw.get())
                .map(|v| (k.clone(), v))
                .ok_or_else(|| ApiError::missing(k))
        })
        .collect()
}

#[cfg(test)]
#[path = "tests_auth.rs"]
mod tests;
