//! WebSocket API request validation: Binance's error codes, decimals at the symbol's scales,
//! and no panic on any input.

use proptest::prelude::*;
use tape_core::book::OrderBook;
use tape_core::fixed::{Price, Qty};
use tape_core::instrument::Market;
use tape_core::msg::Level;

use super::kinds::{Kind, OrderSide, Tif};
use super::request::{decimal, parse, Call, CancelParams, DecimalKind};
use super::{Fees, SimAccount, SymbolSpec};

fn err(text: &str) -> (String, i32) {
    let r = parse(text, Market::Spot);
    (r.id.to_owned(), r.call.unwrap_err().code)
}

#[test]
fn orders_parse_with_numbers_kept_as_written() {
    let r = parse(
        r#"{"id":"a-1","method":"order.place","params":{"symbol":"BTCUSDT","side":"BUY",
           "type":"LIMIT","timeInForce":"IOC","quantity":0.50,"price":"61000.1",
           "newClientOrderId":"x:1","apiKey":"k","timestamp":1,"signature":"s"}}"#,
        Market::Spot,
    );
    assert_eq!(r.id, "\"a-1\"");
    let Ok(Call::Place(p)) = r.call else {
        panic!("{:?}", r.call)
    };
    assert_eq!(
        (
            p.side,
            p.kind,
            p.tif,
            p.quantity.as_str(),
            p.price.as_deref()
        ),
        (
            OrderSide::Buy,
            Kind::Limit,
            Tif::Ioc,
            "0.50",
            Some("61000.1")
        )
    );
    assert_eq!(p.client_id.as_deref(), Some("x:1"));
    let r = parse(
        r#"{"id":7,"method":"order.place","params":{"symbol":"BTCUSDT","side":"SELL",
           "type":"MARKET","quantity":"1","reduceOnly":"true","positionSide":"BOTH"}}"#,
        Market::UsdM,
    );
    assert_eq!(r.id, "7");
    let Ok(Call::Place(p)) = r.call else {
        panic!("{:?}", r.call)
    };
    assert!(p.reduce_only && p.tif == Tif::Gtc && p.price.is_none());
    let r = parse(
        r#"{"id":null,"method":"order.cancel","params":{"symbol":"ETHUSDT","orderId":12}}"#,
        Market::Spot,
    );
    assert_eq!(r.id, "null");
    assert!(matches!(
        r.call,
        Ok(Call::Cancel(CancelParams {
            order_id: Some(12),
            ..
        }))
    ));
    assert_eq!(
        parse(r#"{"method":"userDataStream.subscribe"}"#, Market::CoinM).call,
        Ok(Call::Subscribe)
    );
    assert_eq!(
        parse(r#"{"method":"ping","params":{}}"#, Market::Spot).call,
        Ok(Call::Ping)
    );
}

#[test]
fn bad_requests_get_binance_codes() {
    let place = |params: &str| {
        err(&format!(
            r#"{{"id":1,"method":"order.place","params":{{{params}}}}}"#
        ))
    };
    for (params, code) in [
        (r#""side":"BUY","type":"MARKET","quantity":"1""#, -1102),
        (
            r#""symbol":"btcusdt","side":"BUY","type":"MARKET","quantity":"1""#,
            -1100,
        ),
        (
            r#""symbol":"BTCUSDT","side":"HOLD","type":"MARKET","quantity":"1""#,
            -1117,
        ),
        (
            r#""symbol":"BTCUSDT","side":"BUY","type":"STOP_LOSS","quantity":"1""#,
            -1116,
        ),
        (
            r#""symbol":"BTCUSDT","side":"BUY","type":"LIMIT","quantity":"1","price":"1""#,
            -1102,
        ),
        (
            r#""symbol":"BTCUSDT","side":"BUY","type":"LIMIT","timeInForce":"GTX","quantity":"1","price":"1""#,
            -1115,
        ),
        (
            r#""symbol":"BTCUSDT","side":"BUY","type":"LIMIT","timeInForce":"GTC","quantity":"1""#,
            -1102,
        ),
        (
            r#""symbol":"BTCUSDT","side":"BUY","type":"MARKET","timeInForce":"GTC","quantity":"1""#,
            -1106,
        ),
        (
            r#""symbol":"BTCUSDT","side":"BUY","type":"MARKET","quantity":"1","price":"1""#,
            -1106,
        ),
        (r#""symbol":"BTCUSDT","side":"BUY","type":"MARKET""#, -1102),
        (
            r#""symbol":"BTCUSDT","side":"BUY","type":"MARKET","quantity":{"a":1}"#,
            -1102,
        ),
        (
            r#""symbol":"BTCUSDT","side":"BUY","type":"MARKET","quantity":"1","newClientOrderId":"a b""#,
            -1100,
        ),
        (
            r#""symbol":"BTCUSDT","side":"BUY","type":"MARKET","quantity":"1","reduceOnly":"true""#,
            -1103,
        ),
        (
            r#""symbol":"BTCUSDT","side":"BUY","type":"MARKET","quantity":"1","evil":1"#,
            -1103,
        ),
    ] {
        assert_eq!(place(params), ("1".to_owned(), code), "{params}");
    }
    assert_eq!(err("{nope"), ("null".to_owned(), -1135));
    assert_eq!(err("[1,2]"), ("null".to_owned(), -1135));
    assert_eq!(
        err(r#"{"id":[1],"method":"ping"}"#),
        ("null".to_owned(), -1135)
    );
    assert_eq!(
        err(r#"{"id":1.5,"method":"ping"}"#),
        ("null".to_owned(), -1135)
    );
    assert_eq!(err(r#"{"id":2,"method":7}"#), ("2".to_owned(), -1135));
    assert_eq!(
        err(r#"{"id":2,"method":"ping","params":[1]}"#),
        ("2".to_owned(), -1135)
    );
    assert_eq!(err(r#"{"id":3}"#), ("3".to_owned(), -1102));
    assert_eq!(
        err(r#"{"id":3,"method":"order.list"}"#),
        ("3".to_owned(), -1020)
    );
    assert_eq!(
        err(r#"{"id":4,"method":"order.cancel","params":{"symbol":"BTCUSDT"}}"#),
        ("4".to_owned(), -1102)
    );
    assert_eq!(
        err(r#"{"id":4,"method":"order.cancel","params":{"symbol":"BTCUSDT","orderId":"-1"}}"#),
        ("4".to_owned(), -1100)
    );
    let long = format!(r#"{{"id":"{}","method":"ping"}}"#, "x".repeat(100));
    assert_eq!(err(&long).1, -1135);
}

#[test]
fn decimals_parse_at_the_symbol_scale() {
    let q = |s: &str, scale| decimal("quantity", s, scale, DecimalKind::Quantity);
    assert_eq!(q("0.001", 3), Ok(1));
    assert_eq!(q("1.50000000", 2), Ok(150));
    assert_eq!(q("12", 0), Ok(12));
    for (s, scale, code) in [
        ("0.0001", 3, -1111),
        ("0", 3, -1013),
        ("0.000", 3, -1013),
        ("99999999999999999999", 8, -1013),
        ("-1", 3, -1100),
        ("1e3", 3, -1100),
        ("1.", 3, -1100),
        (".5", 3, -1100),
        ("1.2.3", 3, -1100),
        ("", 3, -1100),
        ("0x10", 3, -1100),
    ] {
        assert_eq!(q(s, scale).unwrap_err().code, code, "{s}");
    }
    assert_eq!(
        decimal("price", "0", 2, DecimalKind::Price)
            .unwrap_err()
            .msg,
        "Filter failure: PRICE_FILTER"
    );
}

#[test]
fn arbitrary_text_never_panics() {
    for text in [
        "",
        " ",
        "null",
        "\"x\"",
        "{}",
        "{\"params\":{\"symbol\":\"\\u0000\"}}",
        "{\"method\":\"order.place\",\"params\":{\"symbol\":null}}",
        &"[".repeat(10_000),
        &format!(
            "{{\"method\":\"order.place\",\"params\":{{\"quantity\":\"{}\"}}}}",
            "9".repeat(5000)
        ),
    ] {
        let r = parse(text, Market::UsdM);
        assert!(r.call.is_err(), "{text:.40}");
    }
}

/// A book around 100.00 with a few levels per side (prices 2 decimals, quantities 4).
fn book() -> OrderBook {
    let lv = |p: i64, q: i64| Level {
        price: Price(p),
        qty: Qty(q),
    };
    let mut b = OrderBook::new();
    b.load_snapshot(
        &[lv(9_900, 20_000), lv(9_800, 1)],
        &[lv(10_100, 5_000), lv(10_200, 10_000)],
    );
    b
}

/// Short strings that look like parameter values, hostile ones included.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{0,22}(\\.[0-9]{0,22})?",
        "-?[0-9.eE+-]{0,12}",
        Just("BUY".to_owned()),
        Just("SELL".to_owned()),
        Just("LIMIT".to_owned()),
        Just("MARKET".to_owned()),
        Just("GTC".to_owned()),
        Just("FOK".to_owned()),
        Just("BTCUSDT".to_owned()),
        ".{0,8}",
    ]
}

const KEYS: [&str; 9] = [
    "symbol",
    "side",
    "type",
    "timeInForce",
    "quantity",
    "price",
    "newClientOrderId",
    "orderId",
    "origClientOrderId",
];

proptest! {
    #[test]
    fn arbitrary_frames_never_panic(text in ".{0,200}") {
        let _ = parse(&text, Market::Spot);
    }

    /// Valid orders with some fields replaced by plausible or hostile values, or removed:
    /// parsing, placing against a book, resting, crossing and cancelling never panic, and
    /// whatever is accepted comes back as valid JSON.
    #[test]
    fn arbitrary_orders_never_panic(
        cancel in any::<bool>(),
        fields in proptest::collection::vec(
            (0..KEYS.len(), proptest::option::of(value()), any::<bool>()),
            0..4,
        ),
    ) {
        let mut params = serde_json::json!({
            "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
            "quantity": "1", "price": "101.5", "newClientOrderId": "a-1"
        });
        for (k, v, as_number) in fields {
            let Some(v) = v else {
                params.as_object_mut().unwrap().remove(KEYS[k]);
                continue;
            };
            params[KEYS[k]] = match v.parse::<serde_json::Number>() {
                Ok(n) if as_number => serde_json::Value::Number(n),
                _ => serde_json::Value::String(v),
            };
        }
        let text = serde_json::json!({"id": 1, "method": "order.place", "params": params})
            .to_string();
        for market in [Market::Spot, Market::UsdM] {
            let spec = SymbolSpec::new("BTCUSDT", Some((2, 4)));
            let mut acc = SimAccount::new(market, Fees { taker_bps: 4, maker_bps: 2 });
            let b = book();
            let Ok(Call::Place(p)) = parse(&text, market).call else {
                continue;
            };
            let Ok(out) = acc.place(&spec, 0, &p, Some(&b), 1) else {
                continue;
            };
            serde_json::from_str::<serde_json::Value>(&out.result).unwrap();
            for e in &out.events {
                serde_json::from_str::<serde_json::Value>(e).unwrap();
            }
            let _ = acc.on_book(&spec, 0, &b, 2);
            if cancel {
                let c = CancelParams {
                    symbol: p.symbol.clone(),
                    order_id: Some(1),
                    orig_client_id: p.client_id.clone(),
                    new_client_id: None,
                };
                let _ = acc.cancel(&spec, 0, &c, 3);
            }
        }
    }
}
