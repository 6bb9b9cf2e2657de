//! Whole-account determinism and robustness: the same inputs give the same events, and
//! random inputs never panic nor overfill an order.

use super::kinds::OrderSide::*;
use super::kinds::{OrderType, TimeInForce};
use super::money::Money;
use super::tests::*;
use super::*;
use crate::book::OrderBook;
use crate::fixed::{Price, Qty};
use crate::msg::Side;

fn book() -> OrderBook {
    let mut b = OrderBook::new();
    b.apply(Side::Ask, Price(1_000), Qty(500));
    b.apply(Side::Ask, Price(1_001), Qty(1_000));
    b.apply(Side::Bid, Price(999), Qty(800));
    b.apply(Side::Bid, Price(998), Qty(2_000));
    b
}

/// One scripted session: book, bracket, trailing stop, market moves, a cancel.
fn scripted_session() -> Vec<AccountEvent> {
    let mut a = paper_account();
    a.set_balance(usdt(), Money(100_000_000_000), Money::ZERO)
        .unwrap();
    a.handle_book(t(1), FUT, &book(), None);
    let entry = req(Buy, OrderType::Limit, 800, 1_000);
    let br = BracketRequest {
        take_profit: Price(1_020),
        stop_loss: Price(980),
        reduce_only: false,
    };
    let (eid, _) = a.place_bracket(t(2), entry, br).unwrap();
    a.place_trailing(
        t(3),
        TrailingRequest {
            instrument: FUT,
            side: Sell,
            qty: Qty(200),
            offset: TrailOffset::Bps(10),
            reduce_only: true,
        },
    )
    .unwrap();
    for (i, (bid, ask, trade)) in [
        (999, 1_000, None),
        (1_005, 1_006, Some(1_006)),
        (1_012, 1_013, None),
        (1_003, 1_004, Some(1_003)),
        (1_021, 1_022, None),
    ]
    .into_iter()
    .enumerate()
    {
        a.handle_market(
            t(10 + i as u64),
            FUT,
            Some(lvl(bid, 3_000)),
            Some(lvl(ask, 3_000)),
            trade.map(|p| lvl(p, 100)),
        );
    }
    let _ = a.cancel(t(20), &eid);
    drain(&mut a)
}

#[test]
fn same_inputs_give_the_same_events() {
    let first = scripted_session();
    assert_eq!(first, scripted_session());
    let kinds: std::collections::BTreeSet<&str> = first.iter().map(|e| e.kind()).collect();
    for k in [
        "order",
        "position",
        "portfolio",
        "balance",
        "advanced",
        "trailing",
    ] {
        assert!(kinds.contains(k), "{k} missing from {kinds:?}");
    }
}

#[derive(Debug, Clone)]
enum Op {
    Market(i64, i64, i64, Option<(i64, i64)>),
    Place(bool, u8, i64, i64),
    Cancel(usize),
    Trailing(bool, i64),
    Bracket(i64, i64, i64),
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        (
            -5i64..2_000,
            1i64..50,
            -5i64..5_000,
            proptest::option::of((-5i64..2_000, -5i64..3_000))
        )
            .prop_map(|(b, spread, q, t)| Op::Market(b, b + spread, q, t)),
        (any::<bool>(), 0u8..6, -5i64..3_000, -5i64..2_000)
            .prop_map(|(s, ty, q, p)| Op::Place(s, ty, q, p)),
        (0usize..20).prop_map(Op::Cancel),
        (any::<bool>(), -5i64..100).prop_map(|(s, o)| Op::Trailing(s, o)),
        (-5i64..2_000, -5i64..2_000, -5i64..2_000).prop_map(|(e, tp, sl)| Op::Bracket(e, tp, sl)),
    ]
}

proptest::proptest! {
    /// Random market data, orders, cancels and advanced orders against the paper venue never
    /// panic, and no order is ever filled beyond its quantity.
    #[test]
    fn paper_account_never_panics(ops in proptest::collection::vec(op(), 1..60)) {
        let mut a = paper_account();
        let mut ids = Vec::new();
        for (n, op) in ops.into_iter().enumerate() {
            let now = t(n as u64);
            match op {
                Op::Market(b, k, q, tr) => a.handle_market(now, FUT, Some(lvl(b, q)), Some(lvl(k, q)), tr.map(|(p, q)| lvl(p, q))),
                Op::Place(buy, ty, q, p) => {
                    let ty = [OrderType::Market, OrderType::Limit, OrderType::LimitMaker, OrderType::StopMarket, OrderType::Limit, OrderType::Limit][usize::from(ty)];
                    let mut r = req(if buy { Buy } else { Sell }, ty, q, p);
                    r.time_in_force = [TimeInForce::Gtc, TimeInForce::Ioc, TimeInForce::Fok, TimeInForce::Gtx][n % 4];
                    r.stop_price = Price(p);
                    if let Ok(id) = a.place(now, r) {
                        ids.push(id);
                    }
                }
                Op::Cancel(i) => {
                    if let Some(id) = ids.get(i) {
                        let _ = a.cancel(now, id);
                    }
                }
                Op::Trailing(buy, off) => {
                    let _ = a.place_trailing(now, TrailingRequest { instrument: FUT, side: if buy { Buy } else { Sell }, qty: Qty(100), offset: TrailOffset::Absolute(Price(off)), reduce_only: false });
                }
                Op::Bracket(e, tp, sl) => {
                    let _ = a.place_bracket(now, req(Buy, OrderType::Limit, 300, e), BracketRequest { take_profit: Price(tp), stop_loss: Price(sl), reduce_only: false });
                }
            }
            while let Some(ev) = a.poll_event() {
                if let AccountEvent::Order(u) = ev {
                    proptest::prop_assert!(u.order.filled.0 <= u.order.qty.0);
                }
            }
        }
    }
}
