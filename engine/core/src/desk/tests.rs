//! Desk unit tests: record and setup formats, hostile commands.

use proptest::prelude::*;

use super::*;
use crate::engine::{Engine, EngineConfig};
use crate::fixed::parse_decimal;
use crate::input::{RecordKind, SourceId, CLIENT_SOURCE};
use crate::instrument::Market;
use crate::output::{Event, VenueCommand};

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
        SourceId(CLIENT_SOURCE),
        RecordKind::DeskSetup,
        setup.to_payload().as_bytes(),
    )
    .unwrap();
    e
}

fn command(e: &mut Engine, body: &[u8]) -> Vec<PrivateMsg> {
    let payload = ClientRecord::encode(ClientOp::Command, 9, "alice", body);
    e.handle_record(
        Nanos(2),
        SourceId(CLIENT_SOURCE),
        RecordKind::Client,
        &payload,
    )
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
        gateway: Some(Market::CoinM),
        dry_run: true,
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
    fn canonical_header_reader_agrees_with_the_full_reader(
        conn in any::<u64>(),
        user in prop_oneof!["[ -~]{0,20}", ".{0,12}"],
        body in proptest::collection::vec(any::<u8>(), 0..60),
        op in 0usize..4,
        edit in proptest::option::of((any::<prop::sample::Index>(), any::<u8>())),
    ) {
        let op = [ClientOp::Login, ClientOp::Logout, ClientOp::Subscribe, ClientOp::Command][op];
        let mut p = ClientRecord::encode(op, conn, &user, &body);
        if let Some((at, b)) = edit {
            let i = at.index(p.len());
            p[i] = b;
        }
        let full = crate::record::parse_client(&p);
        if let Some(fast) = canonical_client(&p) {
            prop_assert_eq!(Ok(fast), full);
        } else if edit.is_none() && !user.is_empty() && user.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\') {
            prop_assert!(false, "a canonical record missed the fast reader: {:?}", p);
        }
    }

    #[test]
    fn client_records_round_trip(conn in any::<u64>(), user in "[a-z0-9_.@-]{1,20}", body in proptest::collection::vec(any::<u8>(), 0..100), op in 0usize..4) {
        let op = [ClientOp::Login, ClientOp::Logout, ClientOp::Subscribe, ClientOp::Command][op];
        let p = ClientRecord::encode(op, conn, &user, &body);
        let r = ClientRecord::parse(&p).unwrap();
        prop_assert_eq!((r.op, r.conn, &*r.user, r.body), (op, conn, user.as_str(), &body[..]));
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

fn gateway_engine() -> Engine {
    let mut e = Engine::new(EngineConfig {
        instruments: vec![(Market::UsdM, "BTCUSDT".into(), 2, 3)],
        ..EngineConfig::default()
    })
    .unwrap();
    let setup = DeskSetup {
        users: vec!["alice".into(), "bob".into()],
        gateway: Some(Market::UsdM),
        ..DeskSetup::default()
    };
    assert!(setup.to_payload().contains(r#""gateway":"usdm""#));
    e.handle_record(
        Nanos(1),
        SourceId(CLIENT_SOURCE),
        RecordKind::DeskSetup,
        setup.to_payload().as_bytes(),
    )
    .unwrap();
    e
}

fn as_user(e: &mut Engine, user: &str, body: &str) -> Vec<PrivateMsg> {
    let payload = ClientRecord::encode(ClientOp::Command, 1, user, body.as_bytes());
    e.handle_record(
        Nanos(2),
        SourceId(CLIENT_SOURCE),
        RecordKind::Client,
        &payload,
    )
    .unwrap();
    drain(e)
}

fn drain(e: &mut Engine) -> Vec<PrivateMsg> {
    let mut v = Vec::new();
    while let Some(o) = e.poll_output() {
        if let Event::Private(m) = o.event {
            v.push(m);
        }
    }
    v
}

/// The venue orders the last input produced, as (user, request).
fn venue_orders(e: &mut Engine) -> Vec<(String, String)> {
    let mut v = Vec::new();
    while let Some(c) = e.poll_venue_command() {
        match c {
            VenueCommand::Order { user, json, .. } => v.push((user, json)),
            VenueCommand::Snapshot { .. } => panic!("no book here: {c:?}"),
        }
    }
    v
}

fn venue(e: &mut Engine, frame: &str) -> Vec<PrivateMsg> {
    e.handle_record(
        Nanos(3),
        SourceId(crate::input::GATEWAY_SOURCE),
        RecordKind::GatewayFrame,
        frame.as_bytes(),
    )
    .unwrap();
    // Nothing the venue says makes the desk send an order of its own here.
    assert_eq!(venue_orders(e), Vec::<(String, String)>::new());
    drain(e)
}

fn otu(c: &str, x: &str, status: &str, l: &str, z: &str) -> String {
    format!(
        r#"{{"subscriptionId":0,"event":{{"e":"ORDER_TRADE_UPDATE","T":1,"E":1,"o":{{"s":"BTCUSDT","c":"{c}","S":"BUY","o":"LIMIT","f":"GTC","q":"0.010","p":"61000.00","ap":"61000.00","sp":"0","x":"{x}","X":"{status}","i":77,"l":"{l}","z":"{z}","L":"61000.00","N":"USDT","n":"0.01","T":1,"t":5,"b":"0","a":"0","m":true,"R":false,"wt":"CONTRACT_PRICE","ot":"LIMIT","ps":"BOTH","cp":false,"rp":"0","pP":false,"si":0,"ss":0,"V":"NONE","pm":"NONE","gtd":0}}}}}}"#
    )
}

/// The one venue order the last input produced, for `user`, parsed.
fn req(e: &mut Engine, user: &str) -> serde_json::Value {
    let orders = venue_orders(e);
    assert_eq!(orders.len(), 1, "{orders:?}");
    assert_eq!(orders[0].0, user);
    serde_json::from_str(&orders[0].1).unwrap()
}

#[test]
fn external_gateway_requests_reports_and_rejections() {
    let mut e = gateway_engine();
    let order = r#"{"type":"place_order","symbol":"BTCUSDT","side":"buy","order_type":"limit","price":"61000.00","qty":"0.010","client_order_id":"same"}"#;
    // Both users pick the same client id: the venue gets two distinct ones.
    let a = as_user(&mut e, "alice", order);
    let ra = req(&mut e, "alice");
    let b = as_user(&mut e, "bob", order);
    let rb = req(&mut e, "bob");
    assert!(b
        .iter()
        .any(|m| m.json.contains("\"status\":\"pending_new\"")));
    assert_eq!(ra["method"], "order.place");
    assert_eq!(ra["params"]["symbol"], "BTCUSDT");
    assert_eq!(ra["params"]["side"], "BUY");
    assert_eq!(ra["params"]["price"], "61000.00");
    assert_eq!(ra["params"]["quantity"], "0.010");
    assert_eq!(ra["params"]["timeInForce"], "GTC");
    assert_eq!(ra["params"]["newClientOrderId"], "tg1");
    assert_eq!(rb["params"]["newClientOrderId"], "tg2");
    assert!(a
        .iter()
        .any(|m| m.json.contains("\"status\":\"pending_new\"")));
    // The venue accepts alice's and fills it; the report reaches alice alone, under her id.
    assert!(venue(&mut e, r#"{"id":1,"status":200,"result":{}}"#).is_empty());
    let out = venue(&mut e, &otu("tg1", "NEW", "NEW", "0", "0"));
    assert!(out.iter().all(|m| m.user == "alice"), "{out:?}");
    let out = venue(&mut e, &otu("tg1", "TRADE", "FILLED", "0.010", "0.010"));
    assert!(
        out.iter().any(|m| m.channel == PrivateChannel::Orders
            && m.json.contains("\"client_order_id\":\"same\"")
            && m.json.contains("\"status\":\"filled\"")),
        "{out:?}"
    );
    assert!(out
        .iter()
        .any(|m| m.channel == PrivateChannel::Positions && m.user == "alice"));
    assert!(out.iter().all(|m| m.user == "alice"));
    // The venue refuses bob's: his order is rejected.
    let out = venue(
        &mut e,
        r#"{"id":2,"status":400,"error":{"code":-2010,"msg":"no"}}"#,
    );
    assert!(
        out.iter()
            .any(|m| m.user == "bob" && m.json.contains("\"status\":\"rejected\"")),
        "{out:?}"
    );
    // A report for an order that is not the desk's, garbage, and account-wide events: counted.
    assert!(venue(&mut e, &otu("elsewhere", "NEW", "NEW", "0", "0")).is_empty());
    assert!(venue(&mut e, "{nope").is_empty());
    // Alice's filled order and Bob's rejected one are no longer tracked.
    assert_eq!(e.desk().unwrap().gateway.as_ref().unwrap().tracked(), 0);
    let st = e.desk().unwrap().gateway_stats().unwrap();
    assert_eq!(
        (
            st.requests,
            st.rejected,
            st.reports,
            st.unattributed,
            st.bad_frames
        ),
        (2, 1, 2, 1, 1)
    );
    // A cancel goes out under the venue id.
    let out = as_user(
        &mut e,
        "alice",
        r#"{"type":"place_order","symbol":"BTCUSDT","side":"sell","order_type":"limit","price":"62000.00","qty":"0.010","client_order_id":"s1"}"#,
    );
    assert!(!out.is_empty());
    assert_eq!(req(&mut e, "alice")["params"]["newClientOrderId"], "tg3");
    venue(
        &mut e,
        &otu("tg3", "NEW", "NEW", "0", "0")
            .replace("\"S\":\"BUY\"", "\"S\":\"SELL\"")
            .replace("61000.00", "62000.00"),
    );
    let out = as_user(
        &mut e,
        "alice",
        r#"{"type":"cancel_order","client_order_id":"s1"}"#,
    );
    assert!(!out.is_empty());
    let c = req(&mut e, "alice");
    assert_eq!(c["method"], "order.cancel");
    assert_eq!(c["params"]["origClientOrderId"], "tg3");
}

// ---------------------------------------------------------------------------------------
// Gateway sessions: reconciliation, rate limits, dry run, cancel_all

fn gw_event(e: &mut Engine, at: u64, ev: crate::desk::GatewayEvent) -> Vec<PrivateMsg> {
    e.handle_record(
        Nanos(at),
        SourceId(crate::input::GATEWAY_SOURCE),
        RecordKind::GatewayEvent,
        ev.to_payload().as_bytes(),
    )
    .unwrap();
    drain(e)
}

/// A frame from the venue at time `at` (ns), and what the desk says and asks after it.
fn venue_at(e: &mut Engine, at: u64, frame: &str) -> (Vec<PrivateMsg>, Vec<(String, String)>) {
    e.handle_record(
        Nanos(at),
        SourceId(crate::input::GATEWAY_SOURCE),
        RecordKind::GatewayFrame,
        frame.as_bytes(),
    )
    .unwrap();
    let out = drain(e);
    (out, venue_orders(e))
}

fn ids_of(reqs: &[(String, String)]) -> Vec<(u64, String)> {
    reqs.iter()
        .map(|(_, j)| {
            let v: serde_json::Value = serde_json::from_str(j).unwrap();
            (
                v["id"].as_u64().unwrap(),
                v["method"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

const LIMIT_ORDER: &str = r#"{"type":"place_order","symbol":"BTCUSDT","side":"buy","order_type":"limit","price":"61000.00","qty":"0.010","client_order_id":"mine"}"#;

fn open_order(c: &str, status: &str, executed: &str) -> String {
    format!(
        r#"{{"symbol":"BTCUSDT","orderId":77,"clientOrderId":"{c}","price":"61000.00","avgPrice":"61000.00","origQty":"0.010","executedQty":"{executed}","cumQuote":"0","status":"{status}","timeInForce":"GTC","type":"LIMIT","side":"BUY","stopPrice":"0","reduceOnly":false,"positionSide":"BOTH","time":5,"updateTime":6}}"#
    )
}

#[test]
fn an_order_accepted_before_a_drop_is_adopted_by_the_reconciliation() {
    let mut e = gateway_engine();
    as_user(&mut e, "alice", LIMIT_ORDER);
    assert_eq!(req(&mut e, "alice")["params"]["newClientOrderId"], "tg1");
    // The connection drops before the answer: the order is in doubt, not rejected.
    let out = gw_event(
        &mut e,
        10,
        crate::desk::GatewayEvent::Down {
            reason: "reset".into(),
        },
    );
    assert!(out.iter().all(|m| !m.json.contains("rejected")), "{out:?}");
    // Ready again: the desk asks for open orders and the account.
    gw_event(&mut e, 20, crate::desk::GatewayEvent::Ready);
    let asked = ids_of(&venue_orders(&mut e));
    let methods: Vec<&str> = asked.iter().map(|(_, m)| m.as_str()).collect();
    assert_eq!(
        methods,
        ["order.status", "account.balance", "account.position"]
    );
    // The venue has it, resting: adopted.
    let (out, more) = venue_at(
        &mut e,
        30,
        &format!(
            r#"{{"id":{},"status":200,"result":{}}}"#,
            asked[0].0,
            open_order("tg1", "NEW", "0")
        ),
    );
    assert!(more.is_empty(), "{more:?}");
    assert!(
        out.iter().any(|m| m.user == "alice"
            && m.json.contains("\"client_order_id\":\"mine\"")
            && m.json.contains("\"status\":\"new\"")),
        "{out:?}"
    );
    // The account answers end the round: one `reconciled` message for alice.
    venue_at(
        &mut e,
        31,
        &format!(r#"{{"id":{},"status":200,"result":[]}}"#, asked[1].0),
    );
    let (out, _) = venue_at(
        &mut e,
        32,
        &format!(r#"{{"id":{},"status":200,"result":[]}}"#, asked[2].0),
    );
    let rec = out
        .iter()
        .find(|m| m.json.contains("\"event\":\"reconciled\""))
        .expect("a reconciled message");
    assert_eq!(rec.user, "alice");
    assert_eq!(rec.channel, PrivateChannel::Orders);
    let v: serde_json::Value = serde_json::from_str(&rec.json).unwrap();
    assert_eq!(v["data"]["trigger"], "connect");
    assert_eq!(v["data"]["adopted"], serde_json::json!(["mine"]));
    assert_eq!(v["data"]["open_at_venue"], 1);
    // It fills later: applied, no invalid transition.
    let out = venue(&mut e, &otu("tg1", "TRADE", "FILLED", "0.010", "0.010"));
    assert!(
        out.iter().any(|m| m.json.contains("\"status\":\"filled\"")),
        "{out:?}"
    );
    // Two users share the venue account: its balances and positions are counted, not applied.
    let st = e.desk().unwrap().gateway_stats().unwrap();
    assert_eq!(
        (st.reconciliations, st.reconciled_orders, st.unattributed),
        (1, 1, 2)
    );
}

#[test]
fn orders_the_venue_no_longer_lists_are_asked_and_closed_with_its_state() {
    let mut e = gateway_engine();
    as_user(&mut e, "alice", LIMIT_ORDER);
    req(&mut e, "alice");
    venue(&mut e, r#"{"id":1,"status":200,"result":{}}"#);
    venue(&mut e, &otu("tg1", "NEW", "NEW", "0", "0"));
    as_user(&mut e, "bob", LIMIT_ORDER);
    req(&mut e, "bob");
    gw_event(
        &mut e,
        10,
        crate::desk::GatewayEvent::Down {
            reason: "reset".into(),
        },
    );
    gw_event(&mut e, 20, crate::desk::GatewayEvent::Ready);
    let all = ids_of(&venue_orders(&mut e));
    // The desk asks about each order it tracks (the futures WebSocket API has no open-orders
    // query), then the account.
    assert_eq!(
        all.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>(),
        [
            "order.status",
            "order.status",
            "account.balance",
            "account.position"
        ]
    );
    let (q, asked) = (&all[..2], &all[1..]);
    // Alice's filled while tape was away: the missed fill is booked at the venue's price.
    let (out, _) = venue_at(
        &mut e,
        31,
        &format!(
            r#"{{"id":{},"status":200,"result":{}}}"#,
            q[0].0,
            open_order("tg1", "FILLED", "0.010")
        ),
    );
    assert!(
        out.iter()
            .any(|m| m.user == "alice" && m.json.contains("\"status\":\"filled\"")),
        "{out:?}"
    );
    assert!(out
        .iter()
        .any(|m| m.user == "alice" && m.channel == PrivateChannel::Positions));
    // Bob's never reached the venue: rejected.
    let (out, _) = venue_at(
        &mut e,
        32,
        &format!(
            r#"{{"id":{},"status":400,"error":{{"code":-2013,"msg":"Order does not exist."}}}}"#,
            q[1].0
        ),
    );
    assert!(
        out.iter()
            .any(|m| m.user == "bob" && m.json.contains("\"status\":\"rejected\"")),
        "{out:?}"
    );
    venue_at(
        &mut e,
        33,
        &format!(r#"{{"id":{},"status":200,"result":[]}}"#, asked[1].0),
    );
    let (out, _) = venue_at(
        &mut e,
        34,
        &format!(r#"{{"id":{},"status":200,"result":[]}}"#, asked[2].0),
    );
    let bob: serde_json::Value = serde_json::from_str(
        &out.iter()
            .find(|m| m.user == "bob" && m.json.contains("reconciled"))
            .expect("bob's")
            .json,
    )
    .unwrap();
    assert_eq!(
        bob["data"]["closed"],
        serde_json::json!([{"client_order_id":"mine","status":"rejected"}])
    );
    let alice: serde_json::Value = serde_json::from_str(
        &out.iter()
            .find(|m| m.user == "alice" && m.json.contains("reconciled"))
            .expect("alice's")
            .json,
    )
    .unwrap();
    assert_eq!(alice["data"]["filled"], serde_json::json!(["mine"]));
    assert_eq!(e.desk().unwrap().gateway.as_ref().unwrap().tracked(), 0);
}

#[test]
fn a_listen_key_expiry_and_a_timed_out_request_reconcile() {
    let mut e = gateway_engine();
    as_user(&mut e, "alice", LIMIT_ORDER);
    req(&mut e, "alice");
    let (_, asked) = venue_at(
        &mut e,
        5,
        r#"{"stream":"k","data":{"e":"listenKeyExpired","E":"1","listenKey":"k"}}"#,
    );
    assert_eq!(ids_of(&asked)[0].1, "order.status");
    // While that round runs, a timeout queues another round after it.
    gw_event(&mut e, 6, crate::desk::GatewayEvent::Timeout { id: 1 });
    assert!(venue_orders(&mut e).is_empty());
    let st = e.desk().unwrap().gateway_stats().unwrap();
    assert_eq!(st.timeouts, 1);
}

#[test]
fn the_venues_rate_limits_refuse_orders_locally_with_an_alert() {
    let mut e = gateway_engine();
    as_user(&mut e, "alice", LIMIT_ORDER);
    req(&mut e, "alice");
    // The answer says the 10 s order limit is used up.
    venue_at(
        &mut e,
        3,
        r#"{"id":1,"status":200,"result":{},"rateLimits":[{"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":1,"count":1}]}"#,
    );
    let out = as_user(&mut e, "alice", &LIMIT_ORDER.replace("mine", "next"));
    assert!(venue_orders(&mut e).is_empty(), "nothing goes to the venue");
    let err = out
        .iter()
        .find(|m| m.channel == PrivateChannel::Reply)
        .unwrap();
    assert!(
        err.json.contains("4021") && err.json.contains("ORDERS"),
        "{}",
        err.json
    );
    assert!(
        out.iter().any(|m| m.channel == PrivateChannel::RiskAlerts && m.json.contains("venue_rate_limit")),
        "{out:?}"
    );
    assert_eq!(e.desk().unwrap().gateway_stats().unwrap().rate_limited, 1);
    // A 429 names the code to the user and blocks orders until `retryAfter`.
    let mut e = gateway_engine();
    as_user(&mut e, "bob", LIMIT_ORDER);
    req(&mut e, "bob");
    let (out, _) = venue_at(
        &mut e,
        3,
        r#"{"id":1,"status":429,"error":{"code":-1015,"msg":"Too many new orders.","data":{"retryAfter":5000}}}"#,
    );
    assert!(
        out.iter()
            .any(|m| m.json.contains("\"error\":\"too_many_orders\"") && m.json.contains("-1015")),
        "{out:?}"
    );
    let out = as_user(&mut e, "bob", &LIMIT_ORDER.replace("mine", "again"));
    assert!(out.iter().any(|m| m.json.contains("4021")), "{out:?}");
}

#[test]
fn venue_errors_reach_the_user_by_name() {
    let mut e = gateway_engine();
    as_user(&mut e, "alice", LIMIT_ORDER);
    req(&mut e, "alice");
    let (out, _) = venue_at(
        &mut e,
        3,
        r#"{"id":1,"status":400,"error":{"code":-1022,"msg":"Signature for this request is not valid."}}"#,
    );
    let m = out
        .iter()
        .find(|m| m.json.contains("venue_error"))
        .expect("a venue error");
    let v: serde_json::Value = serde_json::from_str(&m.json).unwrap();
    assert_eq!(v["data"]["error"], "invalid_signature");
    assert_eq!(v["data"]["code"], -1022);
    assert_eq!(v["data"]["client_order_id"], "mine");
}

#[test]
fn dry_run_signs_nothing_here_sends_the_request_on_and_ends_the_order() {
    let mut e = Engine::new(EngineConfig {
        instruments: vec![(Market::UsdM, "BTCUSDT".into(), 2, 3)],
        ..EngineConfig::default()
    })
    .unwrap();
    let setup = DeskSetup {
        users: vec!["alice".into()],
        gateway: Some(Market::UsdM),
        dry_run: true,
        ..DeskSetup::default()
    };
    e.handle_record(
        Nanos(1),
        SourceId(CLIENT_SOURCE),
        RecordKind::DeskSetup,
        setup.to_payload().as_bytes(),
    )
    .unwrap();
    let out = as_user(&mut e, "alice", LIMIT_ORDER);
    let ack = out
        .iter()
        .find(|m| m.json.contains("\"type\":\"ack\""))
        .unwrap();
    assert!(ack.json.contains("\"dry_run\":true"), "{}", ack.json);
    // The request goes to the io layer (which signs and journals it, and sends nothing).
    assert_eq!(req(&mut e, "alice")["method"], "order.place");
    assert!(
        out.iter()
            .any(|m| m.json.contains("\"status\":\"rejected\"")),
        "{out:?}"
    );
    assert_eq!(e.desk().unwrap().gateway_stats().unwrap().dry_run, 1);
}

#[test]
fn cancel_all_cancels_the_users_orders_or_everyones() {
    let mut e = gateway_engine();
    for (u, id) in [("alice", "a1"), ("alice", "a2"), ("bob", "b1")] {
        as_user(&mut e, u, &LIMIT_ORDER.replace("mine", id));
        venue_orders(&mut e);
    }
    let out = as_user(&mut e, "alice", r#"{"type":"cancel_all","id":9}"#);
    assert!(
        out.iter().any(|m| m.json.contains("\"canceled\":2")),
        "{out:?}"
    );
    let cancels = venue_orders(&mut e);
    assert_eq!(cancels.len(), 2);
    assert!(cancels
        .iter()
        .all(|(u, j)| u == "alice" && j.contains("order.cancel")));
    let out = as_user(
        &mut e,
        "bob",
        r#"{"type":"cancel_all","id":10,"all_users":true}"#,
    );
    assert!(
        out.iter().any(|m| m.json.contains("\"canceled\":1")),
        "{out:?}"
    );
    assert_eq!(venue_orders(&mut e).len(), 1);
    let out = as_user(&mut e, "bob", r#"{"type":"cancel_all","all_users":"yes"}"#);
    assert!(out.iter().any(|m| m.json.contains("4004")), "{out:?}");
    // Shutdown with cancel_on_shutdown: nothing live is left to cancel here.
    gw_event(&mut e, 50, crate::desk::GatewayEvent::Shutdown);
    assert!(venue_orders(&mut e).is_empty());
}

#[test]
fn gateway_events_round_trip_and_garbage_is_refused() {
    use crate::desk::GatewayEvent as G;
    for ev in [
        G::Up,
        G::Ready,
        G::Shutdown,
        G::Down {
            reason: "x \"y\"\nz".into(),
        },
        G::Sent {
            request: r#"{"id":1,"method":"order.place"}"#.into(),
            dry_run: true,
        },
        G::Sent {
            request: String::new(),
            dry_run: false,
        },
        G::Timeout { id: u64::MAX },
    ] {
        let back = crate::record::parse_gateway(ev.to_payload().as_bytes()).unwrap();
        match (&ev, &back) {
            (G::Down { .. }, G::Down { reason }) => assert_eq!(reason, "x \"y\" z"),
            _ => assert_eq!(back, ev),
        }
    }
    for bad in [
        "",
        "{",
        r#"{"v":2,"type":"gateway"}"#,
        r#"{"v":2,"type":"gateway","event":"boom"}"#,
        r#"{"v":2,"type":"gateway","event":"up","x":1}"#,
    ] {
        assert!(
            crate::record::parse_gateway(bad.as_bytes()).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn a_spot_reconciliation_lists_open_orders_and_asks_only_about_the_missing() {
    let mut e = Engine::new(EngineConfig {
        instruments: vec![(Market::Spot, "BTCUSDT".into(), 2, 5)],
        ..EngineConfig::default()
    })
    .unwrap();
    let setup = DeskSetup {
        users: vec!["alice".into()],
        gateway: Some(Market::Spot),
        ..DeskSetup::default()
    };
    e.handle_record(
        Nanos(1),
        SourceId(CLIENT_SOURCE),
        RecordKind::DeskSetup,
        setup.to_payload().as_bytes(),
    )
    .unwrap();
    for id in ["s1", "s2"] {
        as_user(
            &mut e,
            "alice",
            &LIMIT_ORDER.replace("mine", id).replace("0.010", "0.01000"),
        );
        venue_orders(&mut e);
    }
    gw_event(&mut e, 20, crate::desk::GatewayEvent::Ready);
    let asked = ids_of(&venue_orders(&mut e));
    assert_eq!(
        asked.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>(),
        ["openOrders.status", "account.status"]
    );
    let open = r#"{"symbol":"BTCUSDT","orderId":9,"clientOrderId":"tg1","price":"61000.00","origQty":"0.01000","executedQty":"0.00500","cummulativeQuoteQty":"305.0000000","status":"PARTIALLY_FILLED","timeInForce":"GTC","type":"LIMIT","side":"BUY","stopPrice":"0.00","time":5,"updateTime":6}"#;
    let (out, q) = venue_at(
        &mut e,
        30,
        &format!(r#"{{"id":{},"status":200,"result":[{open}]}}"#, asked[0].0),
    );
    // tg1 adopted with its missed half fill at the venue's average price; tg2 is asked about.
    assert!(
        out.iter()
            .any(|m| m.json.contains("\"client_order_id\":\"s1\"")
                && m.json.contains("partially_filled")),
        "{out:?}"
    );
    assert_eq!(
        ids_of(&q)
            .iter()
            .map(|(_, m)| m.as_str())
            .collect::<Vec<_>>(),
        ["order.status"]
    );
    assert!(q[0].1.contains("tg2"));
    // The single user's balances come from the venue.
    let (out, _) = venue_at(
        &mut e,
        31,
        &format!(
            r#"{{"id":{},"status":200,"result":{{"updateTime":7,"balances":[{{"asset":"USDT","free":"1000.5","locked":"305"}}]}}}}"#,
            asked[1].0
        ),
    );
    assert!(
        out.iter()
            .any(|m| m.channel == PrivateChannel::Portfolio || m.json.contains("USDT")),
        "{out:?}"
    );
}

/// Venue orders are counted as `gateway_request` outputs (the name they had as client
/// outputs) and private messages by their channel, each as often as it was handed out.
#[test]
fn venue_orders_and_private_messages_are_counted_by_kind() {
    let mut e = gateway_engine();
    let before = e.stats().outputs_by_kind;
    let replies = as_user(&mut e, "alice", LIMIT_ORDER);
    let orders = venue_orders(&mut e);
    assert_eq!(orders.len(), 1, "{orders:?}");
    let counts = e.stats().outputs_by_kind;
    let grew = |kind: &str| counts.get(kind) - before.get(kind);
    assert_eq!(grew("gateway_request"), 1);
    let on = |ch: PrivateChannel| replies.iter().filter(|m| m.channel == ch).count() as u64;
    assert!(on(PrivateChannel::Reply) > 0, "{replies:?}");
    assert_eq!(grew("private_reply"), on(PrivateChannel::Reply));
    assert_eq!(grew("private_orders"), on(PrivateChannel::Orders));
    let all: u64 = counts.iter().map(|(_, n)| n).sum();
    assert_eq!(all, e.stats().outputs, "every output counted once by kind");
}
