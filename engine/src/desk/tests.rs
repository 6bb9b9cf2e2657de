//! Desk unit tests: record and setup formats, hostile commands.

use proptest::prelude::*;

use super::*;
use crate::engine::{Engine, EngineConfig};
use crate::fixed::parse_decimal;
use crate::input::{RecordKind, CLIENT_SOURCE};
use crate::instrument::Market;
use crate::output::Event;

fn engine_with_desk() -> Engine {
    let mut e = Engine::new(EngineConfig {
        instruments: vec![(Market::UsdM, "BTCUSDT".into(), 2, 3)],
        ..EngineConfig::default()
    })
    .unwrap();
    let setup = DeskSetup {
        users: vec!["alice".into()],
        max_order_qty: Some(parse_decimal(b"2").unwrap()),
        ..DeskSetup::default()
    };
    e.handle_record(
        Nanos(1),
        CLIENT_SOURCE,
        RecordKind::DeskSetup as u16,
        setup.to_payload().as_bytes(),
    )
    .unwrap();
    e
}

fn command(e: &mut Engine, body: &[u8]) -> Vec<PrivateMsg> {
    let payload = ClientRecord::encode(ClientOp::Command, 9, "alice", body);
    e.handle_record(Nanos(2), CLIENT_SOURCE, RecordKind::Client as u16, &payload)
        .unwrap();
    let mut v = Vec::new();
    while let Some(o) = e.poll_output() {
        if let Event::Private(m) = o.event {
            v.push(m);
        }
    }
    v
}

#[test]
fn setup_round_trips_and_names_bad_keys() {
    let s = DeskSetup {
        users: vec!["a".into(), "b.c@d".into()],
        quote_asset: "USDC".into(),
        mark: crate::account::MarkSource::Last,
        maker_fee_bps: -1,
        taker_fee_bps: 5,
        max_order_qty: Some(parse_decimal(b"0.5").unwrap()),
        max_order_notional: Some(crate::account::Money::parse(b"1000.25").unwrap()),
        max_position: Some(parse_decimal(b"3").unwrap()),
        max_open_orders: Some(7),
        max_orders_per_sec: Some(3),
        max_drawdown: Some(crate::account::Money::parse(b"50").unwrap()),
    };
    assert_eq!(DeskSetup::parse(s.to_payload().as_bytes()).unwrap(), s);
    for (text, needle) in [
        ("tape-desk/1\nuser=a\nuser=a\n", "duplicate"),
        ("tape-desk/1\nmark=vwap\n", "mark"),
        ("tape-desk/1\nmax_open_orders=0\n", "max_open_orders"),
        ("tape-desk/1\nmax_order_qty=-1\n", "max_order_qty"),
        ("tape-desk/1\nwat=1\n", "unknown key"),
        ("tape-desk/2\n", "tape-desk/1"),
    ] {
        let e = DeskSetup::parse(text.as_bytes()).unwrap_err().to_string();
        assert!(e.contains(needle), "{text:?}: {e}");
    }
}

#[test]
fn commands_are_validated_with_named_fields() {
    let mut e = engine_with_desk();
    for (body, code, needle) in [
        (&br#"{"type":"place_order","symbol":"BTCUSDT","side":"buy","order_type":"limit","qty":"0.001"}"#[..], 4004, "price"),
        (br#"{"type":"place_order","symbol":"BTCUSDT","side":"buy","order_type":"limit","price":61000.5,"qty":"0.001"}"#, 4004, "price"),
        (br#"{"type":"place_order","symbol":"BTCUSDT","side":"buy","order_type":"limit","price":"61000.123","qty":"0.001"}"#, 4004, "price"),
        (br#"{"type":"place_order","symbol":"BTCUSDT","side":"up","order_type":"market","qty":"0.001"}"#, 4004, "side"),
        (br#"{"type":"place_order","symbol":"DOGE","side":"buy","order_type":"market","qty":"1"}"#, 4005, "DOGE"),
        (br#"{"type":"place_order","symbol":"BTCUSDT","side":"buy","order_type":"market","qty":"0.001","take_profit":"62000.00"}"#, 4004, "stop_loss"),
        (br#"{"type":"place_order","symbol":"BTCUSDT","side":"buy","order_type":"limit","price":"61000.00","qty":"3.000"}"#, 4021, "qty"),
        (br#"{"type":"cancel_order","client_order_id":"nope"}"#, 4020, "nope"),
        (br#"{"type":"cancel_order","advanced_id":"x"}"#, 4004, "adv-"),
        (br#"{"type":"place_trailing","symbol":"BTCUSDT","side":"sell","qty":"0.001","offset_bps":0}"#, 4004, "offset_bps"),
        (br#"{"type":"publish","channel":"news","data":{}}"#, 4004, "channel"),
        (br#"{"type":"launch"}"#, 4004, "launch"),
        (b"[1,2]", 4004, "object"),
        (b"{", 4004, "JSON"),
    ] {
        let out = command(&mut e, body);
        let reply = out
            .iter()
            .find(|m| m.channel == PrivateChannel::Reply)
            .unwrap_or_else(|| panic!("no reply to {}", String::from_utf8_lossy(body)));
        assert_eq!(reply.conn, Some(9));
        let v: serde_json::Value = serde_json::from_str(&reply.json).unwrap();
        assert_eq!(v["code"], code, "{}: {}", String::from_utf8_lossy(body), reply.json);
        assert!(
            v["message"].as_str().unwrap().contains(needle),
            "{}: {}",
            String::from_utf8_lossy(body),
            reply.json
        );
    }
    // A good limit order rests (no book yet: the paper venue acknowledges it).
    let out = command(
        &mut e,
        br#"{"type":"place_order","id":"x","symbol":"usdm:BTCUSDT","side":"buy","order_type":"limit","price":"61000.00","qty":"0.001","client_order_id":"mine-1"}"#,
    );
    assert!(
        out[0].json.starts_with(r#"{"type":"ack","id":"x""#),
        "{}",
        out[0].json
    );
    assert!(out
        .iter()
        .any(|m| m.channel == PrivateChannel::Orders && m.json.contains("\"status\":\"new\"")));
    // Its duplicate id is refused, then a cancel works.
    let dup = command(
        &mut e,
        br#"{"type":"place_order","symbol":"BTCUSDT","side":"buy","order_type":"limit","price":"61000.00","qty":"0.001","client_order_id":"mine-1"}"#,
    );
    assert!(dup[0].json.contains("4020"), "{}", dup[0].json);
    let c = command(
        &mut e,
        br#"{"type":"cancel_order","client_order_id":"mine-1"}"#,
    );
    assert!(
        c[0].json.contains("\"request\":\"cancel_order\""),
        "{}",
        c[0].json
    );
    assert!(c.iter().any(|m| m.json.contains("\"status\":\"canceled\"")));
}

proptest! {
    #[test]
    fn client_records_parse_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = ClientRecord::parse(&bytes);
        let _ = DeskSetup::parse(&bytes);
    }

    #[test]
    fn client_records_round_trip(conn in any::<u64>(), user in "[a-z0-9_.@-]{1,20}", body in proptest::collection::vec(any::<u8>(), 0..100), op in 0usize..4) {
        let op = [ClientOp::Login, ClientOp::Logout, ClientOp::Subscribe, ClientOp::Command][op];
        let p = ClientRecord::encode(op, conn, &user, &body);
        let r = ClientRecord::parse(&p).unwrap();
        prop_assert_eq!((r.op, r.conn, r.user, r.body), (op, conn, user.as_str(), &body[..]));
    }

    #[test]
    fn any_command_gets_exactly_one_reply(
        kind in prop::sample::select(vec!["place_order", "place_oco", "place_trailing", "cancel_order", "publish", "x"]),
        fields in proptest::collection::vec((
            prop::sample::select(vec!["symbol", "side", "order_type", "qty", "price", "take_profit", "stop_loss", "legs", "offset", "offset_bps", "client_order_id", "advanced_id", "channel", "data", "id", "time_in_force", "reduce_only"]),
            prop::sample::select(vec![r#""BTCUSDT""#, r#""buy""#, r#""sell""#, r#""market""#, r#""limit""#, r#""0.001""#, r#""61000.00""#, "1", "-1", "1e308", "null", "true", "[]", r#"[{"price":"1.00"},{"trigger":"2.00","when":"below"}]"#, "{}", r#""adv-1""#, r#""""#]),
        ), 0..8),
    ) {
        let mut e = engine_with_desk();
        let mut body = format!(r#"{{"type":"{kind}""#);
        for (k, v) in &fields {
            body.push_str(&format!(r#","{k}":{v}"#));
        }
        body.push('}');
        let out = command(&mut e, body.as_bytes());
        let replies = out.iter().filter(|m| m.channel == PrivateChannel::Reply).count();
        prop_assert_eq!(replies, 1, "{}", body);
        for m in &out {
            prop_assert!(serde_json::from_str::<serde_json::Value>(&m.json).is_ok(), "{}", m.json);
        }
    }
}
