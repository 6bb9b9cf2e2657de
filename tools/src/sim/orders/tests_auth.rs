//! The WebSocket API's request security: Binance's documented example, each refusal with its
//! code and status, the recvWindow arithmetic, and no panic on any input.

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use tape_core::sign::{self, Ed25519Key, HmacKey};

use super::*;
use crate::sim::orders::response_err;

// `web-socket-api.md`, "SIGNED request example (HMAC)" (binance/binance-spot-api-docs).
const DOC_KEY: &str = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
const DOC_SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
const DOC_TS_MS: u64 = 1645423376532;
const ED_KEY: &str = "edkey";

fn keys() -> ApiKeys {
    ApiKeys::new()
        .with_hmac(DOC_KEY, DOC_SECRET.as_bytes())
        .unwrap()
        .with_ed25519(ED_KEY, ed().public())
        .unwrap()
}

fn ed() -> Ed25519Key {
    Ed25519Key::from_seed(&[42; 32])
}

fn frame(method: &str, params: &Map<String, Value>) -> String {
    json!({"id": 1, "method": method, "params": params}).to_string()
}

/// `params` signed with `signer` (the payload by the core's rule, independently checked in
/// `tape_core::sign`'s tests).
fn signed(mut params: Map<String, Value>, signer: &sign::Signer) -> Map<String, Value> {
    let text: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().map_or_else(|| v.to_string(), str::to_owned),
            )
        })
        .collect();
    let sig = signer.sign(&sign::payload_of(&text));
    params.insert("signature".into(), Value::String(sig));
    params
}

fn order(api_key: &str, ts: u64) -> Map<String, Value> {
    json!({"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC",
           "quantity": "0.01000000", "price": "52000.00", "recvWindow": 100,
           "timestamp": ts, "apiKey": api_key})
    .as_object()
    .cloned()
    .unwrap()
}

fn hmac() -> sign::Signer {
    sign::Signer::Hmac(HmacKey::new(DOC_SECRET.as_bytes()))
}

fn code(r: Result<Authorized, ApiError>) -> i32 {
    r.unwrap_err().code
}

const NOW_US: u64 = DOC_TS_MS * 1000 + 50_000;

#[test]
fn the_documented_request_passes_with_its_documented_signature() {
    let mut p = order(DOC_KEY, DOC_TS_MS);
    p.insert(
        "signature".into(),
        "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24".into(),
    );
    let ok = check(
        &frame("order.place", &p),
        &SessionAuth::default(),
        &keys(),
        NOW_US,
    )
    .unwrap();
    assert_eq!(ok.method, "order.place");
    assert_eq!(ok.key, Some(KeyId(0)));
    // Upper-case hex is the same HMAC signature; the version prefix is the same method.
    let sig = p["signature"].as_str().unwrap().to_uppercase();
    p.insert("signature".into(), sig.into());
    assert!(check(
        &frame("v3/order.place", &p),
        &SessionAuth::default(),
        &keys(),
        NOW_US
    )
    .is_ok());
    // One changed parameter and the signature no longer covers the request.
    p.insert("price".into(), "52000.01".into());
    let e = check(
        &frame("order.place", &p),
        &SessionAuth::default(),
        &keys(),
        NOW_US,
    )
    .unwrap_err();
    assert_eq!(
        (e.code, e.status(), e.msg.as_str()),
        (-1022, 400, "Signature for this request is not valid.")
    );
}

#[test]
fn ed25519_signatures_pass_and_wrong_ones_do_not() {
    let signer = sign::Signer::Ed25519(ed());
    let p = signed(order(ED_KEY, DOC_TS_MS), &signer);
    assert_eq!(
        check(
            &frame("order.place", &p),
            &SessionAuth::default(),
            &keys(),
            NOW_US
        )
        .unwrap()
        .key,
        Some(KeyId(1))
    );
    // Signed by another Ed25519 key.
    let other = signed(
        order(ED_KEY, DOC_TS_MS),
        &sign::Signer::Ed25519(Ed25519Key::from_seed(&[1; 32])),
    );
    assert_eq!(
        code(check(
            &frame("order.place", &other),
            &SessionAuth::default(),
            &keys(),
            NOW_US
        )),
        -1022
    );
}

#[test]
fn missing_and_unknown_keys() {
    let s = SessionAuth::default();
    let mut p = order(DOC_KEY, DOC_TS_MS);
    // No signature.
    let e = check(&frame("order.place", &p), &s, &keys(), NOW_US).unwrap_err();
    assert_eq!((e.code, e.msg.contains("'signature'")), (-1102, true));
    // No apiKey.
    p.remove("apiKey");
    let e = check(
        &frame("order.place", &signed(p.clone(), &hmac())),
        &s,
        &keys(),
        NOW_US,
    )
    .unwrap_err();
    assert_eq!((e.code, e.msg.contains("'apiKey'")), (-1102, true));
    // Not a key's format, and a well-formed key nobody registered.
    let e = check(
        &frame(
            "order.place",
            &signed(order("bad key!", DOC_TS_MS), &hmac()),
        ),
        &s,
        &keys(),
        NOW_US,
    )
    .unwrap_err();
    assert_eq!((e.code, e.status()), (-2014, 401));
    let e = check(
        &frame("order.place", &signed(order("nobody", DOC_TS_MS), &hmac())),
        &s,
        &keys(),
        NOW_US,
    )
    .unwrap_err();
    assert_eq!((e.code, e.status()), (-2015, 401));
    let wire = response_err("1", &e);
    assert_eq!(
        wire,
        r#"{"id":1,"status":401,"error":{"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}}"#
    );
    // No timestamp.
    let mut p = order(DOC_KEY, DOC_TS_MS);
    p.remove("timestamp");
    let e = check(
        &frame("order.place", &signed(p, &hmac())),
        &s,
        &keys(),
        NOW_US,
    )
    .unwrap_err();
    assert_eq!((e.code, e.msg.contains("'timestamp'")), (-1102, true));
    // Public methods need nothing.
    for m in [
        "ping",
        "time",
        "session.status",
        "session.logout",
        "userDataStream.unsubscribe",
    ] {
        assert_eq!(
            check(&frame(m, &Map::new()), &s, &ApiKeys::new(), 0)
                .unwrap()
                .key,
            None,
            "{m}"
        );
    }
    // Any method not known to be public is signed.
    assert_eq!(
        code(check(
            &frame("openOrders.status", &Map::new()),
            &s,
            &keys(),
            NOW_US
        )),
        -1102
    );
}

#[test]
fn the_timestamp_window() {
    let s = SessionAuth::default();
    let at = |ts: u64, window: Option<Value>, now_us: u64| {
        let mut p = order(DOC_KEY, ts);
        match window {
            Some(w) => p.insert("recvWindow".into(), w),
            None => p.remove("recvWindow"),
        };
        check(
            &frame("order.place", &signed(p, &hmac())),
            &s,
            &keys(),
            now_us,
        )
        .map_err(|e| (e.code, e.msg))
    };
    let now = 1_700_000_000_000_000u64; // µs
    let ms = now / 1000;
    // Default window 5000 ms: inclusive at the edge.
    assert!(at(ms - 5000, None, now).is_ok());
    assert_eq!(at(ms - 5001, None, now).unwrap_err().0, -1021);
    assert!(at(ms - 5001, None, now)
        .unwrap_err()
        .1
        .contains("outside of the recvWindow"));
    // Ahead: under 1000 ms passes, 1000 ms does not.
    assert!(at(ms + 999, None, now).is_ok());
    let ahead = at(ms + 1000, None, now).unwrap_err();
    assert_eq!(
        ahead,
        (
            -1021,
            "Timestamp for this request was 1000ms ahead of the server's time.".into()
        )
    );
    // µs timestamps, and a window with µs decimals.
    assert!(at(now - 2_000_500, Some(json!("2000.5")), now).is_ok());
    assert_eq!(
        at(now - 2_000_501, Some(json!("2000.5")), now)
            .unwrap_err()
            .0,
        -1021
    );
    assert!(at(ms - 60_000, Some(json!(60000)), now).is_ok());
    let e = at(ms, Some(json!(60001)), now).unwrap_err();
    assert_eq!(e.0, -1102);
    assert!(e.1.contains("Cannot be greater than 60000"), "{}", e.1);
    for bad in [
        json!("1.2345"),
        json!("-1"),
        json!("1."),
        json!("x"),
        json!("1e3"),
    ] {
        assert_eq!(
            at(ms, Some(bad.clone()), now).unwrap_err().0,
            -1100,
            "{bad}"
        );
    }
    assert_eq!(
        at(ms, Some(json!("99999999999999999999")), now)
            .unwrap_err()
            .0,
        -1102
    );
    // A clock at zero refuses everything but does not overflow.
    assert_eq!(at(ms, None, 0).unwrap_err().0, -1021);
    assert_eq!(at(u64::MAX / 2, None, u64::MAX).unwrap_err().0, -1021);
}

#[test]
fn logon_then_requests_carry_only_a_timestamp() {
    let keys = keys();
    let ed = sign::Signer::Ed25519(ed());
    let logon = |key: &str, signer: &sign::Signer| {
        let p = json!({"apiKey": key, "timestamp": DOC_TS_MS})
            .as_object()
            .cloned()
            .unwrap();
        check(
            &frame("session.logon", &signed(p, signer)),
            &SessionAuth::default(),
            &keys,
            NOW_US,
        )
    };
    let ok = logon(ED_KEY, &ed).unwrap();
    assert_eq!(ok.key, Some(KeyId(1)));
    // Logon takes Ed25519 keys only; an HMAC key's signature does not pass.
    assert_eq!(code(logon(DOC_KEY, &hmac())), -1022);

    let session = SessionAuth {
        logged_on: Some((KeyId(1), DOC_TS_MS)),
        ..SessionAuth::default()
    };
    let mut bare = order(ED_KEY, DOC_TS_MS);
    bare.remove("apiKey");
    let r = check(&frame("order.place", &bare), &session, &keys, NOW_US).unwrap();
    assert_eq!(r.key, Some(KeyId(1)));
    // Naming the session's own key is fine; another key needs its signature.
    assert!(check(
        &frame("order.place", &order(ED_KEY, DOC_TS_MS)),
        &session,
        &keys,
        NOW_US
    )
    .is_ok());
    let e = check(
        &frame("order.place", &order(DOC_KEY, DOC_TS_MS)),
        &session,
        &keys,
        NOW_US,
    )
    .unwrap_err();
    assert_eq!(e.code, -1102);
    let ad_hoc = signed(order(DOC_KEY, DOC_TS_MS), &hmac());
    assert_eq!(
        check(&frame("order.place", &ad_hoc), &session, &keys, NOW_US)
            .unwrap()
            .key,
        Some(KeyId(0))
    );
    // The timestamp is still checked.
    let mut stale = bare.clone();
    stale.insert("timestamp".into(), json!(DOC_TS_MS - 10_000));
    assert_eq!(
        code(check(
            &frame("order.place", &stale),
            &session,
            &keys,
            NOW_US
        )),
        -1021
    );
    bare.remove("timestamp");
    assert_eq!(
        code(check(&frame("order.place", &bare), &session, &keys, NOW_US)),
        -1102
    );
    // userDataStream.subscribe needs the logon; the signature form needs a signature.
    let sub = frame("userDataStream.subscribe", &Map::new());
    assert_eq!(
        check(&sub, &session, &keys, NOW_US).unwrap().key,
        Some(KeyId(1))
    );
    let e = check(&sub, &SessionAuth::default(), &keys, NOW_US).unwrap_err();
    assert_eq!((e.code, e.status()), (-1002, 401));
    let p = json!({"apiKey": DOC_KEY, "timestamp": DOC_TS_MS})
        .as_object()
        .cloned()
        .unwrap();
    let by_sig = frame(
        "userDataStream.subscribe.signature",
        &signed(p.clone(), &hmac()),
    );
    assert_eq!(
        check(&by_sig, &SessionAuth::default(), &keys, NOW_US)
            .unwrap()
            .key,
        Some(KeyId(0))
    );
    // ... even on a logged-on session.
    let unsigned = frame("userDataStream.subscribe.signature", &p);
    assert_eq!(code(check(&unsigned, &session, &keys, NOW_US)), -1102);
}

#[test]
fn numbers_are_signed_as_written() {
    // `"quantity":0.50` is signed as `quantity=0.50`, not as a re-printed float.
    let text = format!(
        r#"{{"id":1,"method":"order.place","params":{{"apiKey":"{DOC_KEY}","quantity":0.50,"timestamp":{DOC_TS_MS},"signature":"SIG"}}}}"#
    );
    let payload = format!("apiKey={DOC_KEY}&quantity=0.50&timestamp={DOC_TS_MS}");
    let text = text.replace("SIG", &HmacKey::new(DOC_SECRET.as_bytes()).sign(&payload));
    assert!(check(&text, &SessionAuth::default(), &keys(), NOW_US).is_ok());
}

proptest! {
    #[test]
    fn never_panics(text in "\\PC{0,200}", tail in "[a-zA-Z0-9\":,{}.\\[\\]-]{0,80}") {
        let keys = keys();
        let s = SessionAuth { logged_on: Some((KeyId(1), 0)), ..SessionAuth::default() };
        let _ = check(&text, &s, &keys, NOW_US);
        let framed = format!(r#"{{"method":"order.place","params":{{"timestamp":{tail}}}}}"#);
        let _ = check(&framed, &s, &keys, NOW_US);
        let framed = format!(r#"{{"method":"order.place","params":{{"recvWindow":{tail},"apiKey":"x"}}}}"#);
        let _ = check(&framed, &SessionAuth::default(), &keys, NOW_US);
    }
}
