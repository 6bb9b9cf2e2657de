//! The sim account without sockets: matching, order life cycles, and every event decoded by
//! the engine's own user-data decoder.

use tape_core::account::event::{ExecutionReport, UserEvent};
use tape_core::account::kinds::ExecType;
use tape_core::account::{Money, OrderStatus, UserDataDecoder};
use tape_core::book::OrderBook;
use tape_core::fixed::{Price, Qty};
use tape_core::instrument::{Market, Registry};
use tape_core::msg::Level;

use super::kinds::{Kind, OrderSide, Tif};
use super::{
    CancelParams, Fees, Outcome, PlaceParams, Position, SimAccount, SymbolSpec, START_BALANCE,
};

const FEES: Fees = Fees {
    taker_bps: 4,
    maker_bps: 2,
};

/// Prices at 2 decimals, quantities at 4 (spot and USD-M); COIN-M at 1 and 0.
fn spec(market: Market) -> SymbolSpec {
    match market {
        Market::CoinM => SymbolSpec::new("BTCUSD_PERP", Some((1, 0))),
        _ => SymbolSpec::new("BTCUSDT", Some((2, 4))),
    }
}

fn lv(p: i64, q: i64) -> Level {
    Level {
        price: Price(p),
        qty: Qty(q),
    }
}

/// Bids 99.00 × 2, 98.00 × 3; asks 101.00 × 0.5, 102.00 × 1.
fn book() -> OrderBook {
    let mut b = OrderBook::new();
    b.load_snapshot(
        &[lv(9900, 20_000), lv(9800, 30_000)],
        &[lv(10_100, 5_000), lv(10_200, 10_000)],
    );
    b
}

fn order(side: OrderSide, kind: Kind, tif: Tif, qty: &str, price: Option<&str>) -> PlaceParams {
    PlaceParams {
        symbol: "BTCUSDT".into(),
        side,
        kind,
        tif,
        quantity: qty.into(),
        price: price.map(str::to_owned),
        client_id: None,
        reduce_only: false,
    }
}

fn market(side: OrderSide, qty: &str) -> PlaceParams {
    order(side, Kind::Market, Tif::Gtc, qty, None)
}

fn limit(side: OrderSide, tif: Tif, qty: &str, price: &str) -> PlaceParams {
    order(side, Kind::Limit, tif, qty, Some(price))
}

/// Decodes every event with the engine's decoder, as a tape node would.
fn decode(market: Market, events: &[String]) -> Vec<UserEvent> {
    let mut reg = Registry::default();
    let s = spec(market);
    reg.register(market, &s.name, s.price_scale, s.qty_scale)
        .unwrap();
    let mut dec = UserDataDecoder::new();
    events
        .iter()
        .map(|e| {
            let wrapped = super::envelope(3, e);
            dec.decode(wrapped.as_bytes(), market, &reg)
                .unwrap_or_else(|err| panic!("{err}: {e}"))
        })
        .collect()
}

fn exec(ev: &UserEvent) -> &ExecutionReport {
    match ev {
        UserEvent::Execution(r) => r,
        other => panic!("not an execution report: {other:?}"),
    }
}

/// `(x, X, l, L, z, maker)` of each execution report.
fn summary(events: &[UserEvent]) -> Vec<(ExecType, OrderStatus, i64, i64, i64, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            UserEvent::Execution(r) => Some((
                r.exec_type,
                r.status,
                r.last_qty.0,
                r.last_price.0,
                r.cum_qty.0,
                r.is_maker,
            )),
            _ => None,
        })
        .collect()
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

#[test]
fn market_orders_walk_the_book_and_every_event_decodes() {
    let mut acc = SimAccount::new(Market::Spot, FEES);
    let (s, b) = (spec(Market::Spot), book());
    let Outcome { result, events } = acc
        .place(&s, 0, &market(OrderSide::Buy, "1"), Some(&b), 1_700)
        .unwrap();
    let ev = decode(Market::Spot, &events);
    use ExecType::{New, Trade};
    use OrderStatus::{Filled, PartiallyFilled};
    assert_eq!(
        summary(&ev),
        [
            (New, OrderStatus::New, 0, 0, 0, false),
            (Trade, PartiallyFilled, 5_000, 10_100, 5_000, false),
            (Trade, Filled, 5_000, 10_200, 10_000, false),
        ]
    );
    let fill = exec(&ev[1]);
    // 4 bps of 50.50 USDT, in the quote asset.
    assert_eq!(fill.fee, Money(2_020_000));
    assert_eq!(fill.fee_asset.unwrap().as_str(), "USDT");
    assert_eq!(
        (
            fill.event_time_ms,
            fill.order_id,
            fill.client_order_id.as_str()
        ),
        (1_700, 1, "sim-1")
    );
    assert_eq!(exec(&ev[2]).cum_quote, Some(Money(10_150_000_000)));
    let UserEvent::AccountPosition(pos) = &ev[3] else {
        panic!("{:?}", ev[3])
    };
    let fees = 2_020_000 + 2_040_000;
    let bal: Vec<_> = pos
        .balances
        .iter()
        .map(|b| (b.asset.as_str().to_owned(), b.free.0))
        .collect();
    assert_eq!(
        bal,
        [
            ("BTC".to_owned(), START_BALANCE.0 + 100_000_000),
            ("USDT".to_owned(), START_BALANCE.0 - 10_150_000_000 - fees),
        ]
    );
    let r = json(&result);
    assert_eq!(
        (&r["status"], &r["executedQty"], &r["cummulativeQuoteQty"]),
        (&"FILLED".into(), &"1.0000".into(), &"101.50000000".into())
    );
    assert_eq!(r["fills"][1]["price"], "102.00");
    assert_eq!(r["fills"][1]["commission"], "0.02040000");
    // The book is not changed by the fills.
    assert_eq!(b.best_ask(), Some(lv(10_100, 5_000)));
}

#[test]
fn ioc_expires_the_rest_and_fok_is_all_or_nothing() {
    let mut acc = SimAccount::new(Market::Spot, FEES);
    let (s, b) = (spec(Market::Spot), book());
    use ExecType::{Expired, New, Trade};
    use OrderStatus as X;
    let mut run = |p: PlaceParams, book: Option<&OrderBook>| {
        let out = acc.place(&s, 0, &p, book, 5).unwrap();
        summary(&decode(Market::Spot, &out.events))
    };
    assert_eq!(
        run(limit(OrderSide::Buy, Tif::Ioc, "2", "102"), Some(&b)),
        [
            (New, X::New, 0, 0, 0, false),
            (Trade, X::PartiallyFilled, 5_000, 10_100, 5_000, false),
            (Trade, X::PartiallyFilled, 10_000, 10_200, 15_000, false),
            (Expired, X::Expired, 0, 0, 15_000, false),
        ]
    );
    assert_eq!(
        run(limit(OrderSide::Buy, Tif::Fok, "2", "102"), Some(&b)),
        [
            (New, X::New, 0, 0, 0, false),
            (Expired, X::Expired, 0, 0, 0, false)
        ]
    );
    assert_eq!(
        run(limit(OrderSide::Sell, Tif::Fok, "2.5", "98"), Some(&b)),
        [
            (New, X::New, 0, 0, 0, false),
            (Trade, X::PartiallyFilled, 20_000, 9_900, 20_000, false),
            (Trade, X::Filled, 5_000, 9_800, 25_000, false),
        ]
    );
    // A market order larger than the book takes all of it and expires the rest.
    let all = run(market(OrderSide::Sell, "9"), Some(&b));
    assert_eq!(
        all.last(),
        Some(&(Expired, X::Expired, 0, 0, 50_000, false))
    );
    // Without a synced book there is no liquidity.
    assert_eq!(
        run(market(OrderSide::Buy, "1"), None),
        [
            (New, X::New, 0, 0, 0, false),
            (Expired, X::Expired, 0, 0, 0, false)
        ]
    );
    // A marketable GTC order takes what its price allows and rests the rest.
    let gtc = run(limit(OrderSide::Buy, Tif::Gtc, "1", "101"), Some(&b));
    assert_eq!(
        gtc.last(),
        Some(&(Trade, X::PartiallyFilled, 5_000, 10_100, 5_000, false))
    );
    assert!(acc.has_resting(0));
}

#[test]
fn resting_orders_fill_as_maker_when_the_book_crosses_them() {
    let mut acc = SimAccount::new(Market::UsdM, FEES);
    let s = spec(Market::UsdM);
    let out = acc
        .place(
            &s,
            0,
            &limit(OrderSide::Buy, Tif::Gtc, "1", "100.5"),
            Some(&book()),
            10,
        )
        .unwrap();
    assert_eq!(out.events.len(), 1, "NEW only: {:?}", out.events);
    assert_eq!(json(&out.result)["status"], "NEW");
    assert!(acc.has_resting(0));
    // The ask stays above the order: nothing happens.
    assert!(acc.on_book(&s, 0, &book(), 11).is_empty());
    // Another symbol's book is not this order's.
    let mut low = OrderBook::new();
    low.load_snapshot(&[lv(9_000, 1)], &[lv(10_000, 1)]);
    assert!(acc.on_book(&s, 1, &low, 12).is_empty());
    // The ask moves through it: a full maker fill at the order's own price, whatever the
    // quantity at the level.
    let events = acc.on_book(&s, 0, &low, 13);
    let ev = decode(Market::UsdM, &events);
    assert_eq!(
        summary(&ev),
        [(
            ExecType::Trade,
            OrderStatus::Filled,
            10_000,
            10_050,
            10_000,
            true
        )]
    );
    let r = exec(&ev[0]);
    assert_eq!((r.event_time_ms, r.fee), (13, Money(2_010_000)));
    assert_eq!(r.venue_avg_price, Some(Price(10_050)));
    let UserEvent::AccountUpdate(au) = &ev[1] else {
        panic!("{:?}", ev[1])
    };
    assert_eq!(au.positions[0].amount, Qty(10_000));
    assert_eq!(au.positions[0].entry_price, Price(10_050));
    assert_eq!(au.balances[0].wallet, Money(START_BALANCE.0 - 2_010_000));
    assert!(!acc.has_resting(0));
    assert!(acc.on_book(&s, 0, &low, 14).is_empty(), "filled once");
    // Closing at 99.00 realizes -1.50.
    let out = acc
        .place(&s, 0, &market(OrderSide::Sell, "1"), Some(&book()), 15)
        .unwrap();
    let ev = decode(Market::UsdM, &out.events);
    assert_eq!(exec(&ev[1]).venue_realized_pnl, Some(Money(-150_000_000)));
    let UserEvent::AccountUpdate(au) = &ev[2] else {
        panic!("{:?}", ev[2])
    };
    let p = &au.positions[0];
    assert_eq!(
        (p.amount, p.accumulated_realized),
        (Qty(0), Money(-150_000_000))
    );
    let fees = 2_010_000 + 3_960_000;
    assert_eq!(
        au.balances[0].wallet,
        Money(START_BALANCE.0 - 150_000_000 - fees)
    );
}

#[test]
fn cancels_find_orders_by_either_id_and_refuse_unknown_ones() {
    let mut acc = SimAccount::new(Market::Spot, FEES);
    let s = spec(Market::Spot);
    let mut p = limit(OrderSide::Sell, Tif::Gtc, "0.1", "500");
    p.client_id = Some("mine-1".into());
    acc.place(&s, 0, &p, Some(&book()), 1).unwrap();
    assert_eq!(
        acc.place(&s, 0, &p, Some(&book()), 1).unwrap_err().code,
        -2010,
        "duplicate client id"
    );
    acc.place(&s, 0, &limit(OrderSide::Buy, Tif::Gtc, "0.1", "1"), None, 1)
        .unwrap();
    let by = |order_id: Option<u64>, orig: Option<&str>| CancelParams {
        symbol: "BTCUSDT".into(),
        order_id,
        orig_client_id: orig.map(str::to_owned),
        new_client_id: None,
    };
    assert_eq!(
        acc.cancel(&s, 0, &by(Some(1), Some("sim-2")), 2)
            .unwrap_err()
            .code,
        -2011
    );
    assert_eq!(
        acc.cancel(&s, 1, &by(Some(1), None), 2).unwrap_err().code,
        -2011
    );
    let out = acc.cancel(&s, 0, &by(None, Some("mine-1")), 3).unwrap();
    let ev = decode(Market::Spot, &out.events);
    let r = exec(&ev[0]);
    assert_eq!(
        (
            r.exec_type,
            r.status,
            r.order_id,
            r.client_order_id.as_str()
        ),
        (ExecType::Canceled, OrderStatus::Canceled, 1, "sim-cxl-1")
    );
    assert_eq!(r.orig_client_order_id.unwrap().as_str(), "mine-1");
    let res = json(&out.result);
    assert_eq!(
        (&res["status"], &res["origClientOrderId"]),
        (&"CANCELED".into(), &"mine-1".into())
    );
    assert_eq!(
        acc.cancel(&s, 0, &by(Some(1), None), 4).unwrap_err().code,
        -2011
    );
    acc.cancel(&s, 0, &by(Some(2), None), 5).unwrap();
    assert!(!acc.has_resting(0));
}

#[test]
fn orders_are_validated_at_the_symbol_scales() {
    let mut acc = SimAccount::new(Market::Spot, FEES);
    let s = spec(Market::Spot);
    let code =
        |acc: &mut SimAccount, p: PlaceParams| acc.place(&s, 0, &p, None, 0).unwrap_err().code;
    assert_eq!(code(&mut acc, market(OrderSide::Buy, "0.00001")), -1111);
    assert_eq!(
        code(&mut acc, limit(OrderSide::Buy, Tif::Gtc, "1", "1.001")),
        -1111
    );
    assert_eq!(code(&mut acc, market(OrderSide::Buy, "0")), -1013);
    assert_eq!(code(&mut acc, market(OrderSide::Buy, "1,5")), -1100);
    // Price × quantity beyond what an amount can hold.
    assert_eq!(
        code(
            &mut acc,
            limit(OrderSide::Buy, Tif::Gtc, "90000000000", "90000000000")
        ),
        -1013
    );
    assert_eq!((acc.placed, acc.fills), (0, 0));
}

#[test]
fn coinm_reports_decode_and_send_no_account_update() {
    let mut acc = SimAccount::new(Market::CoinM, FEES);
    let s = spec(Market::CoinM);
    let mut b = OrderBook::new();
    b.load_snapshot(&[lv(599_990, 10)], &[lv(600_000, 3), lv(600_010, 50)]);
    let out = acc
        .place(&s, 0, &market(OrderSide::Buy, "5"), Some(&b), 9)
        .unwrap();
    let ev = decode(Market::CoinM, &out.events);
    assert_eq!(ev.len(), 3, "NEW and two fills, no ACCOUNT_UPDATE");
    assert_eq!(exec(&ev[2]).venue_avg_price, Some(Price(600_004)));
    assert!(json(&out.result).get("cumQuote").is_none());
}

#[test]
fn positions_realize_on_reduce_and_flip() {
    let mut p = Position::default();
    assert_eq!(p.apply(2, Price(100)), 0);
    assert_eq!(p.apply(1, Price(130)), 0);
    assert_eq!((p.qty, p.cost, p.entry_price()), (3, 330, 110));
    // Sell 4 at 120: close 3 (+30), open 1 short at 120.
    assert_eq!(p.apply(-4, Price(120)), 30);
    assert_eq!((p.qty, p.cost, p.entry_price()), (-1, -120, 120));
    assert_eq!(p.apply(1, Price(100)), 20);
    assert_eq!((p.qty, p.cost), (0, 0));
}
