//! Requests: every error code with its id echoed, limits, abuse closes, heartbeats, and a
//! proptest that arbitrary text never panics and always gets valid JSON back.

use proptest::prelude::*;
use serde_json::Value;

use super::tests_util::*;
use super::{Action, ConnId, HubConfig};
use crate::input::{Nanos, RecordKind, SourceDef};
use crate::instrument::Market;

/// A harness with spot and USD-M `BTCUSDT` and spot `ETHUSDT` registered.
fn harness(cfg: HubConfig) -> Harness {
    let mut h = Harness::new(cfg);
    for (i, (market, symbol)) in [
        (Market::Spot, "BTCUSDT"),
        (Market::UsdM, "BTCUSDT"),
        (Market::Spot, "ETHUSDT"),
    ]
    .into_iter()
    .enumerate()
    {
        let def = SourceDef {
            market,
            symbol: Some(symbol.into()),
            scales: Some((2, 3)),
            name: String::new(),
        };
        h.record(&Rec {
            now: 0,
            source: i as u32 + 1,
            kind: RecordKind::SourceDef,
            payload: def.to_text().into_bytes(),
        });
    }
    h
}

fn one(h: &mut Harness, conn: usize, text: &str) -> Value {
    h.send(conn, text);
    let mut m = h.drain(conn);
    assert_eq!(m.len(), 1, "{text}: {m:?}");
    m.remove(0)
}

fn assert_error(v: &Value, code: u64, id: Option<Value>) {
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["code"], code, "{v}");
    assert!(v["message"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(v.get("id").cloned(), id, "{v}");
}

#[test]
fn errors_carry_codes_and_echo_ids() {
    let mut h = harness(HubConfig {
        max_message_bytes: 200,
        max_subscriptions: 3,
        requests_per_sec: 1000,
        request_burst: 1000,
        ..HubConfig::default()
    });
    h.open(1);
    let id7 = Some(Value::from(7));
    for (text, code, id) in [
        (r#"{"type":"#, 4004, None),
        ("not json", 4004, None),
        ("[1,2]", 4004, None),
        ("\"subscribe\"", 4004, None),
        (r#"{"id":7}"#, 4004, id7.clone()),
        (r#"{"type":"dance","id":7}"#, 4004, id7.clone()),
        (r#"{"type":7,"id":7}"#, 4004, id7.clone()),
        (r#"{"type":"ping","id":1.5}"#, 4004, None),
        (r#"{"type":"ping","id":[1]}"#, 4004, None),
        (
            r#"{"type":"subscribe","id":7,"channels":"bbo","symbols":["BTCUSDT"]}"#,
            4004,
            id7.clone(),
        ),
        (
            r#"{"type":"subscribe","id":7,"channels":[],"symbols":["BTCUSDT"]}"#,
            4004,
            id7.clone(),
        ),
        (
            r#"{"type":"subscribe","id":7,"channels":["bbo"],"symbols":[1]}"#,
            4004,
            id7.clone(),
        ),
        (
            r#"{"type":"subscribe","id":7,"channels":["book"],"symbols":["BTCUSDT"],"depth":0}"#,
            4004,
            id7.clone(),
        ),
        (
            r#"{"type":"subscribe","id":7,"channels":["book"],"symbols":["BTCUSDT"],"depth":1001}"#,
            4004,
            id7.clone(),
        ),
        (
            r#"{"type":"subscribe","id":7,"channels":["bbo","candles"],"symbols":["BTCUSDT"]}"#,
            4006,
            id7.clone(),
        ),
        (
            r#"{"type":"subscribe","id":7,"channels":["bbo"],"symbols":["BTCUSDT","DOGEUSDT"]}"#,
            4005,
            id7.clone(),
        ),
        (
            r#"{"type":"subscribe","id":7,"channels":["bbo"],"symbols":["mars:BTCUSDT"]}"#,
            4005,
            id7.clone(),
        ),
        (
            r#"{"type":"subscribe","id":7,"channels":["bbo"],"symbols":["coinm:BTCUSDT"]}"#,
            4005,
            id7.clone(),
        ),
        (
            r#"{"type":"get_book","id":7,"symbol":"BTCUSDT"}"#,
            4005,
            id7.clone(),
        ),
        (r#"{"type":"get_book","id":7}"#, 4004, id7.clone()),
        (
            r#"{"type":"subscribe","id":-3,"channels":["bbo","trades"],"symbols":["BTCUSDT"]}"#,
            4009,
            Some(Value::from(-3)),
        ),
    ] {
        let v = one(&mut h, 1, text);
        assert_error(&v, code, id);
        // Refused requests subscribe nothing.
        assert_eq!(h.hub.stats().per_connection[0].subscriptions, 0, "{text}");
        // A good request in between keeps the connection under max_errors.
        assert_eq!(one(&mut h, 1, r#"{"type":"ping"}"#)["type"], "pong");
    }
    let v = one(
        &mut h,
        1,
        &format!(r#"{{"type":"ping","id":"{}"}}"#, "x".repeat(190)),
    );
    assert_error(&v, 4008, None);
    h.hub.handle_binary(h.now, ConnId(1), 12);
    assert_error(&h.drain(1)[0], 4004, None);
    let v = one(
        &mut h,
        1,
        r#"{"type":"get_book","id":"b","symbol":"usdm:btcusdt"}"#,
    );
    assert_eq!(
        (v["type"].as_str(), v["data"]["reason"].as_str()),
        (Some("status"), Some("initial"))
    );
    assert_eq!(v["id"], "b");
    // Ambiguity names the candidates.
    let v = one(&mut h, 1, r#"{"type":"get_book","symbol":"btcusdt"}"#);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("spot:BTCUSDT, usdm:BTCUSDT"),
        "{v}"
    );
    // Three pairs fit; a fourth does not.
    let v = one(
        &mut h,
        1,
        r#"{"type":"subscribe","channels":["bbo","trades","ticker"],"symbols":["spot:BTCUSDT"]}"#,
    );
    assert_eq!(v["subscriptions"].as_array().unwrap().len(), 3);
    assert_error(
        &one(
            &mut h,
            1,
            r#"{"type":"subscribe","channels":["book"],"symbols":["ETHUSDT"]}"#,
        ),
        4009,
        None,
    );
    // A bare symbol subscribes every market that lists it; duplicates are listed once.
    h.open(2);
    let v = one(
        &mut h,
        2,
        r#"{"type":"subscribe","id":"x","channels":["trades","trades"],"symbols":["BTCUSDT","spot:btcusdt"]}"#,
    );
    assert_eq!(
        v,
        serde_json::json!({"type":"subscribed","id":"x","subscriptions":[
            {"channel":"trades","market":"spot","symbol":"BTCUSDT"},
            {"channel":"trades","market":"usdm","symbol":"BTCUSDT"}]})
    );
    let st = h.hub.stats();
    assert_eq!(st.errors[&4004], 16);
    assert_eq!(st.errors[&4009], 2);
}

#[test]
fn string_ids_are_escaped() {
    let mut h = harness(HubConfig::default());
    h.open(1);
    let raw = r#"{"type":"ping","id":"a\"b\\c\u0001\n</script>é"}"#;
    let v = one(&mut h, 1, raw);
    assert_eq!(v["type"], "pong");
    assert_eq!(v["id"], "a\"b\\c\u{1}\n</script>é");
    let v = one(&mut h, 1, r#"{"type":"nope","id":"q\"uote"}"#);
    assert_error(&v, 4004, Some(Value::from("q\"uote")));
    assert!(v["message"].as_str().unwrap().contains("\"nope\""));
    // 64 bytes is fine, 65 is not.
    let v = one(
        &mut h,
        1,
        &format!(r#"{{"type":"ping","id":"{}"}}"#, "é".repeat(32)),
    );
    assert_eq!(v["id"], "é".repeat(32));
    assert_error(
        &one(
            &mut h,
            1,
            &format!(r#"{{"type":"ping","id":"{}"}}"#, "a".repeat(65)),
        ),
        4004,
        None,
    );
    // Hostile names in error messages come back escaped.
    let v = one(
        &mut h,
        1,
        r#"{"type":"subscribe","channels":["bbo\"\\"],"symbols":["BTCUSDT"]}"#,
    );
    assert_error(&v, 4006, None);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains(r#"unknown channel "bbo\"\\""#),
        "{v}"
    );
}

#[test]
fn rate_limit_and_max_errors() {
    let mut h = harness(HubConfig {
        requests_per_sec: 2,
        request_burst: 3,
        max_errors: 4,
        ..HubConfig::default()
    });
    h.open(1);
    for i in 0..3 {
        assert_eq!(
            one(&mut h, 1, &format!(r#"{{"type":"ping","id":{i}}}"#))["type"],
            "pong"
        );
    }
    assert_error(
        &one(&mut h, 1, r#"{"type":"ping","id":3}"#),
        4007,
        Some(Value::from(3)),
    );
    // Half a second refills one token.
    h.now = Nanos(h.now.0 + 500_000_000);
    assert_eq!(one(&mut h, 1, r#"{"type":"ping"}"#)["type"], "pong");
    assert_error(&one(&mut h, 1, r#"{"type":"ping"}"#), 4007, None);
    // Four bad requests in a row (the rate-limited one above counts): close 1008.
    h.now = Nanos(h.now.0 + 10_000_000_000);
    for _ in 0..2 {
        h.send(1, "{");
    }
    assert!(h.tick().is_empty());
    h.send(1, "{");
    let acts = h.tick();
    assert_eq!(acts.len(), 1);
    assert!(matches!(
        &acts[0],
        Action::Close {
            conn: ConnId(1),
            code: 1008,
            ..
        }
    ));
    // The errors are still delivered before the close; later requests are ignored.
    assert_eq!(h.drain(1).len(), 3);
    h.send(1, r#"{"type":"ping"}"#);
    assert!(h.drain(1).is_empty());
    assert_eq!(h.hub.stats().disconnects.too_many_errors, 1);
    assert_eq!(h.hub.stats().connections, 0);
}

#[test]
fn too_many_connections_and_unread_replies() {
    let mut h = harness(HubConfig {
        max_connections: 2,
        max_queued_replies: 3,
        ..HubConfig::default()
    });
    h.open(1);
    h.open(2);
    assert!(!h.hub.handle_open(h.now, ConnId(3), "token=x"));
    assert!(!h.hub.handle_open(h.now, ConnId(1), ""), "already open");
    assert_eq!(h.hub.poll_timeout(), Some(Nanos(0)));
    let acts = h.tick();
    assert!(matches!(
        &acts[..],
        [Action::Close {
            conn: ConnId(3),
            code: 4003,
            ..
        }]
    ));
    assert_error(&h.drain(3)[0], 4003, None);
    h.hub.handle_closed(ConnId(3));
    // A client that never reads its replies is closed once they exceed their budget.
    for _ in 0..4 {
        h.send(2, r#"{"type":"ping"}"#);
    }
    let acts = h.tick();
    assert!(matches!(
        &acts[..],
        [Action::Close {
            conn: ConnId(2),
            code: 4010,
            ..
        }]
    ));
    assert!(h.drain(2).is_empty());
    h.hub.handle_closed(ConnId(2));
    // Room again.
    assert!(h.hub.handle_open(h.now, ConnId(4), ""));
    let st = h.hub.stats();
    assert_eq!(st.connections, 2);
    assert_eq!(
        (st.disconnects.too_many_connections, st.disconnects.slow),
        (1, 1)
    );
}

#[test]
fn heartbeat_pings_and_times_out() {
    let s = 1_000_000_000;
    let mut h = harness(HubConfig {
        heartbeat_interval_ns: s,
        ..HubConfig::default()
    });
    h.now = Nanos(10 * s);
    h.open(1);
    h.open(2);
    assert_eq!(h.hub.poll_timeout(), Some(Nanos(11 * s)));
    h.now = Nanos(11 * s);
    assert_eq!(h.tick(), [Action::Ping(ConnId(1)), Action::Ping(ConnId(2))]);
    h.hub.handle_heard(Nanos(11 * s + s / 2), ConnId(2));
    h.now = Nanos(12 * s);
    assert_eq!(
        h.tick(),
        [
            Action::Close {
                conn: ConnId(1),
                code: 4011,
                reason: "heartbeat timeout: nothing received for 2000 ms".into()
            },
            Action::Ping(ConnId(2))
        ]
    );
    h.now = Nanos(13 * s + s / 2);
    let acts = h.tick();
    assert!(
        matches!(
            &acts[..],
            [Action::Close {
                conn: ConnId(2),
                code: 4011,
                ..
            }]
        ),
        "{acts:?}"
    );
    assert_eq!(h.hub.stats().disconnects.heartbeat, 2);
    assert_eq!(h.hub.poll_timeout(), None);
}

fn request_text() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        Just("\"type\"".to_string()),
        Just("\"subscribe\"".to_string()),
        Just("\"unsubscribe\"".to_string()),
        Just("\"get_book\"".to_string()),
        Just("\"ping\"".to_string()),
        Just("\"id\"".to_string()),
        Just("\"channels\"".to_string()),
        Just("\"symbols\"".to_string()),
        Just("\"symbol\"".to_string()),
        Just("\"depth\"".to_string()),
        Just("[\"bbo\",\"book\",\"trades\",\"ticker\"]".to_string()),
        Just("[\"BTCUSDT\",\"usdm:btcusdt\",\"ETHUSDT\"]".to_string()),
        Just("\"BTCUSDT\"".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(":".to_string()),
        Just(",".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        "[ -~]{0,8}".prop_map(|s| format!("{s:?}")),
        ".{0,6}",
    ];
    prop_oneof![
        proptest::collection::vec(word, 0..24).prop_map(|w| w.concat()),
        ".{0,80}",
    ]
}

proptest! {
    #[test]
    fn arbitrary_requests_never_panic_and_replies_are_json(texts in proptest::collection::vec(request_text(), 1..12)) {
        let mut h = harness(HubConfig { max_errors: 1000, requests_per_sec: 1000, request_burst: 1000, ..HubConfig::default() });
        h.open(1);
        for t in &texts {
            h.send(1, t);
            // `drain` parses every message and fails on invalid JSON.
            for m in h.drain(1) {
                prop_assert!(m.is_object());
                prop_assert!(m["type"].is_string());
            }
        }
    }
}
