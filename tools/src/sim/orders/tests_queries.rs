//! Query methods without sockets: parsing with Binance's codes, and the response shapes.

use serde_json::{json, Value};
use tape_core::book::OrderBook;
use tape_core::fixed::{Price, Qty};
use tape_core::instrument::Market;
use tape_core::msg::Level;

use super::kinds::{Kind, OrderSide, Tif};
use super::{parse, Call, Fees, PlaceParams, QueryParams, SimAccount, SymbolSpec};

const FEES: Fees = Fees {
    taker_bps: 4,
    maker_bps: 2,
};

fn spec() -> SymbolSpec {
    SymbolSpec::new("BTCUSDT", Some((2, 4)))
}

/// Bids 99.00 × 2; asks 101.00 × 0.5.
fn book() -> OrderBook {
    let lv = |p, q| Level {
        price: Price(p),
        qty: Qty(q),
    };
    let mut b = OrderBook::new();
    b.load_snapshot(&[lv(9900, 20_000)], &[lv(10_100, 5_000)]);
    b
}

fn place(side: OrderSide, kind: Kind, qty: &str, price: Option<&str>, cid: &str) -> PlaceParams {
    PlaceParams {
        symbol: "BTCUSDT".into(),
        side,
        kind,
        tif: Tif::Gtc,
        quantity: qty.into(),
        price: price.map(str::to_owned),
        client_id: Some(cid.into()),
        reduce_only: false,
    }
}

fn call(text: &str, market: Market) -> Result<Call, (i32, String)> {
    parse(text, market).call.map_err(|e| (e.code, e.msg))
}

fn v(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

fn by_id(id: Option<u64>, cid: Option<&str>) -> QueryParams {
    QueryParams {
        symbol: "BTCUSDT".into(),
        order_id: id,
        orig_client_id: cid.map(str::to_owned),
    }
}

#[test]
fn queries_parse_per_market_with_binance_codes() {
    let spot = Market::Spot;
    assert_eq!(
        call(
            r#"{"id":1,"method":"order.status","params":{"symbol":"BTCUSDT","orderId":7,"apiKey":"k","timestamp":1,"signature":"s"}}"#,
            spot
        ),
        Ok(Call::OrderStatus(by_id(Some(7), None)))
    );
    assert_eq!(
        call(
            r#"{"id":1,"method":"order.status","params":{"symbol":"BTCUSDT"}}"#,
            spot
        )
        .unwrap_err()
        .0,
        -1102
    );
    assert_eq!(
        call(
            r#"{"id":1,"method":"order.status","params":{"orderId":1}}"#,
            spot
        )
        .unwrap_err(),
        (
            -1102,
            "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.".into()
        )
    );
    assert_eq!(
        call(
            r#"{"id":1,"method":"order.status","params":{"symbol":"BTCUSDT","orderId":"x"}}"#,
            spot
        )
        .unwrap_err()
        .0,
        -1100
    );
    assert_eq!(
        call(r#"{"id":1,"method":"openOrders.status"}"#, spot),
        Ok(Call::OpenOrders(None))
    );
    assert_eq!(
        call(
            r#"{"id":1,"method":"openOrders.status","params":{"symbol":"ETHUSDT"}}"#,
            spot
        ),
        Ok(Call::OpenOrders(Some("ETHUSDT".into())))
    );
    // Futures have no openOrders.status on Binance's WebSocket APIs.
    assert_eq!(
        call(r#"{"id":1,"method":"openOrders.status"}"#, Market::UsdM)
            .unwrap_err()
            .0,
        -1020
    );
    assert_eq!(
        call(
            r#"{"id":1,"method":"openOrders.status","params":{"side":"BUY"}}"#,
            spot
        )
        .unwrap_err()
        .0,
        -1103
    );
    assert_eq!(
        call(
            r#"{"id":1,"method":"account.status","params":{"omitZeroBalances":true}}"#,
            spot
        ),
        Ok(Call::AccountStatus(true))
    );
    assert_eq!(
        call(
            r#"{"id":1,"method":"account.position","params":{"symbol":"BTCUSDT"}}"#,
            Market::UsdM
        ),
        Ok(Call::AccountPosition(Some("BTCUSDT".into())))
    );
    assert_eq!(
        call(r#"{"id":1,"method":"account.balance"}"#, Market::CoinM),
        Ok(Call::AccountBalance)
    );
    for m in [
        "userDataStream.start",
        "userDataStream.ping",
        "userDataStream.stop",
    ] {
        let text = format!(r#"{{"id":1,"method":"{m}","params":{{"apiKey":"k"}}}}"#);
        assert!(call(&text, Market::UsdM).is_ok(), "{m}");
        // Spot has no listen keys any more: an unknown method there.
        assert_eq!(call(&text, spot).unwrap_err().0, -1020, "{m}");
    }
    // Market-specific methods are unknown on the other markets.
    assert_eq!(
        call(r#"{"id":1,"method":"account.status"}"#, Market::UsdM)
            .unwrap_err()
            .0,
        -1020
    );
    assert_eq!(
        call(r#"{"id":1,"method":"account.position"}"#, spot)
            .unwrap_err()
            .0,
        -1020
    );
    // OCO: mandatory parameters first, then the honest refusal.
    assert_eq!(
        call(
            r#"{"id":1,"method":"orderList.place.oco","params":{"symbol":"BTCUSDT"}}"#,
            spot
        )
        .unwrap_err()
        .0,
        -1102
    );
    let (code, msg) = call(
        r#"{"id":1,"method":"orderList.place.oco","params":{"symbol":"BTCUSDT","side":"SELL","quantity":"1","aboveType":"LIMIT_MAKER","belowType":"STOP_LOSS"}}"#,
        spot,
    )
    .unwrap_err();
    assert_eq!(code, -1020, "{msg}");
    // returnRateLimits is every method's parameter.
    assert_eq!(
        call(
            r#"{"id":1,"method":"ping","params":{"returnRateLimits":false}}"#,
            spot
        ),
        Ok(Call::Ping)
    );
}

#[test]
fn order_status_finds_open_and_closed_orders_and_refuses_unknown_ones() {
    let s = spec();
    let mut acct = SimAccount::new(Market::Spot, FEES);
    acct.place(
        &s,
        0,
        &place(OrderSide::Buy, Kind::Limit, "1", Some("50"), "rest"),
        Some(&book()),
        10,
    )
    .unwrap();
    acct.place(
        &s,
        0,
        &place(OrderSide::Buy, Kind::Market, "0.5", None, "take"),
        Some(&book()),
        20,
    )
    .unwrap();
    let rest = v(&acct.order_status(&s, 0, &by_id(Some(1), None)).unwrap());
    assert_eq!(
        rest,
        json!({"symbol":"BTCUSDT","orderId":1,"orderListId":-1,"clientOrderId":"rest",
            "price":"50.00","origQty":"1.0000","executedQty":"0.0000",
            "cummulativeQuoteQty":"0.00000000","status":"NEW","timeInForce":"GTC",
            "type":"LIMIT","side":"BUY","stopPrice":"0.00","icebergQty":"0.0000",
            "time":10,"updateTime":10,"isWorking":true,"workingTime":10,
            "origQuoteOrderQty":"0.00000000","selfTradePreventionMode":"NONE"})
    );
    let take = v(&acct
        .order_status(&s, 0, &by_id(None, Some("take")))
        .unwrap());
    assert_eq!(
        (
            &take["status"],
            &take["executedQty"],
            &take["cummulativeQuoteQty"],
            &take["isWorking"]
        ),
        (
            &json!("FILLED"),
            &json!("0.5000"),
            &json!("50.50000000"),
            &json!(false)
        )
    );
    assert_eq!(take["updateTime"], 20);
    // Both ids must match the same order; unknown ids and other symbols are -2013.
    for q in [
        by_id(Some(1), Some("take")),
        by_id(Some(99), None),
        by_id(None, Some("nope")),
    ] {
        let e = acct.order_status(&s, 0, &q).unwrap_err();
        assert_eq!((e.code, e.msg.as_str()), (-2013, "Order does not exist."));
    }
    assert_eq!(
        acct.order_status(&s, 1, &by_id(Some(1), None))
            .unwrap_err()
            .code,
        -2013
    );
    // Open orders list only the resting one; after a cancel, order.status says CANCELED.
    let open = v(&acct.open_orders(std::slice::from_ref(&s), None));
    assert_eq!(open.as_array().unwrap().len(), 1);
    assert_eq!(open[0]["clientOrderId"], "rest");
    assert_eq!(
        v(&acct.open_orders(std::slice::from_ref(&s), Some(1))),
        json!([])
    );
    let cancel = super::CancelParams {
        symbol: "BTCUSDT".into(),
        order_id: Some(1),
        orig_client_id: None,
        new_client_id: None,
    };
    acct.cancel(&s, 0, &cancel, 30).unwrap();
    let gone = v(&acct.order_status(&s, 0, &by_id(Some(1), None)).unwrap());
    assert_eq!(
        (&gone["status"], &gone["updateTime"]),
        (&json!("CANCELED"), &json!(30))
    );
    assert_eq!(
        v(&acct.open_orders(std::slice::from_ref(&s), None)),
        json!([])
    );
}

#[test]
fn closed_orders_are_kept_up_to_a_bound() {
    let s = spec();
    let mut acct = SimAccount::new(Market::Spot, FEES);
    let n = super::queries::MAX_CLOSED as u64 + 5;
    for i in 0..n {
        let mut p = place(OrderSide::Buy, Kind::Market, "0.0001", None, "m");
        p.client_id = None;
        acct.place(&s, 0, &p, None, i).unwrap();
    }
    assert_eq!(acct.closed.len(), super::queries::MAX_CLOSED);
    assert_eq!(
        acct.order_status(&s, 0, &by_id(Some(1), None))
            .unwrap_err()
            .code,
        -2013
    );
    let last = v(&acct.order_status(&s, 0, &by_id(Some(n), None)).unwrap());
    assert_eq!(last["status"], "EXPIRED");
}

#[test]
fn spot_account_status_shows_balances_after_a_fill() {
    let s = spec();
    let mut acct = SimAccount::new(Market::Spot, FEES);
    acct.place(
        &s,
        0,
        &place(OrderSide::Buy, Kind::Market, "0.5", None, "b"),
        Some(&book()),
        5,
    )
    .unwrap();
    let a = v(&acct.account_status(&[&s], false, 9));
    assert_eq!(a["makerCommission"], 2);
    assert_eq!(a["takerCommission"], 4);
    assert_eq!(a["commissionRates"]["taker"], "0.00040000");
    assert_eq!(a["accountType"], "SPOT");
    assert_eq!(a["updateTime"], 9);
    // 0.5 BTC bought at 101.00 (50.50 USDT) with a 4 bps fee of 0.0202 USDT.
    assert_eq!(
        a["balances"],
        json!([
            {"asset":"BTC","free":"1000000.50000000","locked":"0.00000000"},
            {"asset":"USDT","free":"999949.47980000","locked":"0.00000000"}
        ])
    );
}

#[test]
fn futures_position_and_balance_follow_fills() {
    let s = spec();
    let mut acct = SimAccount::new(Market::UsdM, FEES);
    let empty = v(&acct.account_position(&[(0, &s)]));
    assert_eq!(empty[0]["positionAmt"], "0.0000");
    assert_eq!(empty[0]["updateTime"], 0);
    acct.place(
        &s,
        0,
        &place(OrderSide::Sell, Kind::Market, "2", None, "s"),
        Some(&book()),
        7,
    )
    .unwrap();
    let p = v(&acct.account_position(&[(0, &s)]));
    assert_eq!(
        p,
        json!([{"entryPrice":"99.00","breakEvenPrice":"99.00","marginType":"cross",
            "isAutoAddMargin":"false","isolatedMargin":"0.00000000","leverage":"20",
            "liquidationPrice":"0","markPrice":"99.00","maxNotionalValue":"1000000000",
            "positionAmt":"-2.0000","notional":"-198.00000000","isolatedWallet":"0.00000000",
            "symbol":"BTCUSDT","unRealizedProfit":"0.00000000","positionSide":"BOTH",
            "updateTime":7}])
    );
    let b = v(&acct.account_balance(&[(0, &s)], 8));
    // Fee: 4 bps of 198.00 = 0.0792 USDT.
    assert_eq!(
        b,
        json!([{"accountAlias":"sim","asset":"USDT","balance":"999999.92080000",
            "crossWalletBalance":"999999.92080000","crossUnPnl":"0.00000000",
            "availableBalance":"999999.92080000","maxWithdrawAmount":"999999.92080000",
            "marginAvailable":true,"updateTime":8}])
    );
    let st = v(&acct.order_status(&s, 0, &by_id(None, Some("s"))).unwrap());
    assert_eq!(
        (
            &st["status"],
            &st["avgPrice"],
            &st["cumQuote"],
            &st["origType"],
            &st["time"]
        ),
        (
            &json!("FILLED"),
            &json!("99.00"),
            &json!("198.00000000"),
            &json!("MARKET"),
            &json!(7)
        )
    );
}

#[test]
fn coinm_balance_and_position_use_coinm_field_names() {
    let s = SymbolSpec::new("BTCUSD_PERP", Some((1, 0)));
    let acct = SimAccount::new(Market::CoinM, FEES);
    let b = v(&acct.account_balance(&[(0, &s)], 3));
    assert_eq!(b[0]["asset"], "USD");
    assert_eq!(b[0]["withdrawAvailable"], "1000000.00000000");
    assert!(b[0].get("maxWithdrawAmount").is_none(), "{b}");
    let p = v(&acct.account_position(&[(0, &s)]));
    assert_eq!(
        (&p[0]["positionAmt"], &p[0]["notionalValue"]),
        (&json!("0"), &json!("0.00000000"))
    );
    assert!(p[0].get("notional").is_none(), "{p}");
}

/// Short values, plausible and hostile.
fn value() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    prop_oneof![
        "[0-9]{0,22}",
        Just("BTCUSDT".to_owned()),
        Just("true".to_owned()),
        Just("rest".to_owned()),
        ".{0,8}",
    ]
}

const METHODS: [&str; 9] = [
    "order.status",
    "openOrders.status",
    "account.status",
    "account.position",
    "account.balance",
    "userDataStream.start",
    "userDataStream.ping",
    "userDataStream.stop",
    "orderList.place.oco",
];
const KEYS: [&str; 6] = [
    "symbol",
    "orderId",
    "origClientOrderId",
    "omitZeroBalances",
    "listenKey",
    "side",
];

proptest::proptest! {
    /// Any query with any of its parameters parses without panicking on every market, and
    /// whatever is accepted answers valid JSON from an account with open and closed orders.
    #[test]
    fn arbitrary_queries_never_panic_and_answer_json(
        method in 0..METHODS.len(),
        fields in proptest::collection::vec((0..KEYS.len(), value(), proptest::bool::ANY), 0..4),
    ) {
        let mut params = serde_json::Map::new();
        for (k, v, as_number) in fields {
            params.insert(KEYS[k].to_owned(), match v.parse::<serde_json::Number>() {
                Ok(n) if as_number => Value::Number(n),
                _ => Value::String(v),
            });
        }
        let text = json!({"id": 1, "method": METHODS[method], "params": params}).to_string();
        let s = spec();
        for market in [Market::Spot, Market::UsdM, Market::CoinM] {
            let mut acct = SimAccount::new(market, FEES);
            let b = book();
            let _ = acct.place(&s, 0, &place(OrderSide::Buy, Kind::Limit, "1", Some("50"), "rest"), Some(&b), 1);
            let _ = acct.place(&s, 0, &place(OrderSide::Sell, Kind::Market, "1", None, "m"), Some(&b), 2);
            let answer = match parse(&text, market).call {
                Ok(Call::OrderStatus(q)) => acct.order_status(&s, 0, &q).ok(),
                Ok(Call::OpenOrders(_)) => Some(acct.open_orders(std::slice::from_ref(&s), None)),
                Ok(Call::AccountStatus(omit)) => Some(acct.account_status(&[&s], omit, 3)),
                Ok(Call::AccountPosition(_)) => Some(acct.account_position(&[(0, &s)])),
                Ok(Call::AccountBalance) => Some(acct.account_balance(&[(0, &s)], 3)),
                _ => None,
            };
            if let Some(a) = answer {
                serde_json::from_str::<Value>(&a).unwrap();
            }
        }
    }
}
