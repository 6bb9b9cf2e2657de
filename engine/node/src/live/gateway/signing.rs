//! Credentials and the signing of requests for Binance's WebSocket API.
//!
//! The desk renders requests without credentials (`{"id":N,"method":"..","params":{..}}`);
//! here `apiKey`, `timestamp` (the venue's clock: local time plus the measured offset) and
//! `recvWindow` are added and the request is signed by Binance's rule (see
//! [`tape_core::sign`]): HMAC-SHA256 (hex) or Ed25519 (base64) over the parameters sorted by
//! name. What is journaled is the request as sent without `signature` and `apiKey`.
//! Parameter values keep their JSON text exactly (numbers as the desk wrote them), so what is
//! signed is what is sent.

use std::collections::BTreeMap;

use serde_json::value::RawValue;
use tape_core::sign::{payload, KeyKind, Signer};
use zeroize::Zeroizing;

/// An API key and what signs its requests. Never printed, never journaled.
pub struct Credentials {
    api_key: Zeroizing<String>,
    signer: Signer,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("kind", &self.signer.kind().as_str())
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Credentials from an API key and its signer.
    ///
    /// # Errors
    /// An empty API key, or one with characters Binance never issues.
    pub fn new(api_key: &str, signer: Signer) -> Result<Credentials, String> {
        let key = api_key.trim();
        if key.is_empty() {
            return Err("the API key is empty".into());
        }
        if key.len() > 256 || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err("the API key must be 1 to 256 ASCII letters and digits".into());
        }
        Ok(Credentials {
            api_key: Zeroizing::new(key.to_owned()),
            signer,
        })
    }

    /// Ed25519 or HMAC.
    pub fn kind(&self) -> KeyKind {
        self.signer.kind()
    }

    pub(crate) fn api_key(&self) -> &str {
        &self.api_key
    }
}

/// How a request is authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Auth {
    /// Sent as rendered (a lenient venue, or a public method).
    None,
    /// `apiKey` only (listenKey methods).
    ApiKey,
    /// `apiKey`, `timestamp`, `recvWindow`, `signature`.
    Signed,
    /// On a session logged on with `session.logon`: `timestamp` and `recvWindow` only.
    Session,
}

/// A request ready to write, and its journal form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Signed {
    /// The text for the venue.
    pub wire: String,
    /// The same without `signature` and `apiKey`, for the journal.
    pub journal: String,
}

/// A JSON string literal.
fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// The text a parameter value is signed as: a string's contents, anything else as written.
fn value_text(raw: &RawValue) -> Result<String, String> {
    let t = raw.get();
    if t.starts_with('"') {
        serde_json::from_str::<String>(t).map_err(|e| e.to_string())
    } else if t.starts_with('{') || t.starts_with('[') || t == "null" {
        Err("nested values cannot be signed".into())
    } else {
        Ok(t.to_owned())
    }
}

#[derive(serde::Deserialize)]
struct Request<'a> {
    #[serde(borrow)]
    id: &'a RawValue,
    method: String,
    #[serde(borrow, default)]
    params: Option<BTreeMap<String, &'a RawValue>>,
}

/// Adds what `auth` needs to `request` (as the desk rendered it) and signs it.
///
/// # Errors
/// A request that is not `{"id":..,"method":..,"params":{..}}` with flat values, or signing
/// without credentials.
pub(crate) fn sign(
    request: &str,
    auth: Auth,
    creds: Option<&Credentials>,
    timestamp_ms: u64,
    recv_window_ms: Option<u64>,
) -> Result<Signed, String> {
    let req: Request<'_> =
        serde_json::from_str(request).map_err(|e| format!("bad request: {e}"))?;
    // (name, JSON text) in name order; the signed text is derived from the JSON text.
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in req.params.unwrap_or_default() {
        if matches!(
            k.as_str(),
            "apiKey" | "signature" | "timestamp" | "recvWindow"
        ) {
            continue;
        }
        value_text(v)?;
        params.insert(k, v.get().to_owned());
    }
    let need_key = matches!(auth, Auth::ApiKey | Auth::Signed);
    let stamped = matches!(auth, Auth::Signed | Auth::Session);
    if stamped {
        params.insert("timestamp".into(), timestamp_ms.to_string());
        if let Some(w) = recv_window_ms {
            params.insert("recvWindow".into(), w.to_string());
        }
    }
    let render = |params: &BTreeMap<String, String>, extra: &[(&str, String)]| -> String {
        let mut all: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        for (k, v) in extra {
            all.push((k, v.as_str()));
        }
        all.sort_by(|a, b| a.0.cmp(b.0));
        let mut out = format!(
            "{{\"id\":{},\"method\":{}",
            req.id.get(),
            quoted(&req.method)
        );
        if !all.is_empty() {
            out.push_str(",\"params\":{");
            for (i, (k, v)) in all.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&quoted(k));
                out.push(':');
                out.push_str(v);
            }
            out.push('}');
        }
        out.push('}');
        out
    };
    let journal = render(&params, &[]);
    if auth == Auth::None || auth == Auth::Session {
        return Ok(Signed {
            wire: journal.clone(),
            journal,
        });
    }
    let creds = creds.ok_or("no API key is configured")?;
    let mut extra = vec![("apiKey", quoted(creds.api_key()))];
    if auth == Auth::Signed {
        let mut texts: Vec<(String, String)> = Vec::with_capacity(params.len() + 1);
        for (k, v) in &params {
            let raw: &RawValue = serde_json::from_str(v).map_err(|e| e.to_string())?;
            texts.push((k.clone(), value_text(raw)?));
        }
        texts.push(("apiKey".into(), creds.api_key().to_owned()));
        let p = payload(texts.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        extra.push(("signature", quoted(&creds.signer.sign(&p))));
    }
    let _ = need_key;
    Ok(Signed {
        wire: render(&params, &extra),
        journal,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tape_core::sign::{Ed25519Key, HmacKey};

    fn hmac() -> Credentials {
        Credentials::new("key1", Signer::Hmac(HmacKey::new(b"secret"))).unwrap()
    }

    #[test]
    fn a_signed_request_carries_key_time_window_and_a_signature_over_the_rest() {
        let c = hmac();
        let req = r#"{"id":7,"method":"order.place","params":{"symbol":"BTCUSDT","side":"BUY","type":"LIMIT","quantity":0.0100,"price":"50000.5","timeInForce":"GTC","newClientOrderId":"tg7"}}"#;
        let s = sign(req, Auth::Signed, Some(&c), 1_700_000_000_123, Some(5000)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&s.wire).unwrap();
        let p = v["params"].as_object().unwrap();
        assert_eq!(v["id"], 7);
        assert_eq!(p["apiKey"], "key1");
        assert_eq!(p["timestamp"], 1_700_000_000_123u64);
        assert_eq!(p["recvWindow"], 5000);
        // The number keeps the text the desk wrote.
        assert!(s.wire.contains("\"quantity\":0.0100"));
        // Independently: the payload by the documented rule, and HMAC-SHA256 of it.
        let expected = "apiKey=key1&newClientOrderId=tg7&price=50000.5&quantity=0.0100&recvWindow=5000&side=BUY&symbol=BTCUSDT&timeInForce=GTC&timestamp=1700000000123&type=LIMIT";
        assert!(HmacKey::new(b"secret").verify(expected, p["signature"].as_str().unwrap()));
        // The journal form has neither the key nor the signature.
        assert!(!s.journal.contains("key1") && !s.journal.contains("signature"));
        assert!(s.journal.contains("\"timestamp\":1700000000123"));
    }

    #[test]
    fn ed25519_signatures_verify_and_session_requests_carry_no_key() {
        let k = Ed25519Key::from_seed(&[7; 32]);
        let public = k.public();
        let c = Credentials::new("edkey", Signer::Ed25519(k)).unwrap();
        let s = sign(
            r#"{"id":"tape-logon","method":"session.logon"}"#,
            Auth::Signed,
            Some(&c),
            5,
            None,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&s.wire).unwrap();
        assert!(public.verify(
            "apiKey=edkey&timestamp=5",
            v["params"]["signature"].as_str().unwrap()
        ));
        let s = sign(
            r#"{"id":3,"method":"order.cancel","params":{"symbol":"X"}}"#,
            Auth::Session,
            Some(&c),
            9,
            Some(100),
        )
        .unwrap();
        assert_eq!(
            s.wire,
            r#"{"id":3,"method":"order.cancel","params":{"recvWindow":100,"symbol":"X","timestamp":9}}"#
        );
    }

    #[test]
    fn hostile_requests_are_refused_not_signed() {
        let c = hmac();
        for bad in [
            "",
            "nope",
            r#"{"id":1}"#,
            r#"{"id":1,"method":"x","params":{"a":{"b":1}}}"#,
            r#"{"id":1,"method":"x","params":{"a":null}}"#,
        ] {
            assert!(sign(bad, Auth::Signed, Some(&c), 1, None).is_err(), "{bad}");
        }
        assert!(sign(r#"{"id":1,"method":"x"}"#, Auth::Signed, None, 1, None).is_err());
        // Parameters the desk must never set are dropped, not passed through.
        let s = sign(
            r#"{"id":1,"method":"x","params":{"signature":"forged","apiKey":"other"}}"#,
            Auth::Signed,
            Some(&c),
            1,
            None,
        )
        .unwrap();
        assert!(!s.wire.contains("forged") && !s.wire.contains("other"));
    }

    #[test]
    fn credentials_never_print_their_secrets() {
        let c = hmac();
        assert!(!format!("{c:?}").contains("key1"));
        assert!(Credentials::new(" ", Signer::Hmac(HmacKey::new(b"x"))).is_err());
        assert!(Credentials::new("a b", Signer::Hmac(HmacKey::new(b"x"))).is_err());
    }
}
