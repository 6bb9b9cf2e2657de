//! Orders, fills and triggers at the edges of the fixed-point types: nothing may wrap, panic
//! or come out as a price at or below zero; every refusal is a typed error.

use super::kinds::*;
use super::tests::*;
use super::{AccountEvent, TrailOffset, TrailingRequest};
use crate::fixed::{Price, Qty};

fn trailing(side: OrderSide, offset: TrailOffset) -> TrailingRequest {
    TrailingRequest {
        instrument: FUT,
        side,
        qty: Qty(1_000),
        offset,
        reduce_only: false,
    }
}

/// Every price in an account event is positive (or absent).
fn assert_prices_positive(events: &[AccountEvent]) {
    for ev in events {
        match ev {
            AccountEvent::Trailing(u) => {
                assert!(u.peak.0 > 0 && u.stop.0 > 0, "trailing price <= 0: {u:?}")
            }
            AccountEvent::Order(u) => {
                if let Some(f) = u.fill {
                    assert!(f.price.0 > 0, "fill price <= 0: {f:?}");
                }
            }
            AccountEvent::Position(p) => {
                for x in [p.avg_entry_price, p.mark, p.liquidation_price]
                    .into_iter()
                    .flatten()
                {
                    assert!(x.0 > 0, "position price <= 0: {p:?}");
                }
            }
            _ => {}
        }
    }
}

/// The hostile-user report: no risk limits, an order at the largest quantity and price was
/// accepted and filled, and a trailing stop then reported a negative stop price.
#[test]
fn max_qty_at_max_price_then_a_trailing_stop_never_gives_a_negative_stop() {
    let mut a = paper_account();
    a.handle_market(
        t(1),
        FUT,
        Some(lvl(100, 1_000)),
        Some(lvl(i64::MAX, i64::MAX)),
        None,
    );
    drain(&mut a);
    let placed = a.place(
        t(2),
        req(OrderSide::Buy, OrderType::Limit, i64::MAX, i64::MAX),
    );
    let sell_stop = a.place_trailing(
        t(3),
        trailing(OrderSide::Sell, TrailOffset::Absolute(Price(1_000))),
    );
    let events = drain(&mut a);
    assert_prices_positive(&events);
    let placed = placed.expect_err("a notional beyond Money must be refused");
    assert!(
        placed.to_string().contains("notional"),
        "the refusal names what overflowed: {placed}"
    );
    assert!(
        a.position(FUT).is_none_or(|p| p.qty.0 == 0),
        "nothing filled"
    );
    let sell_stop = sell_stop.expect_err("an offset at or above the price is refused");
    assert!(sell_stop.to_string().contains("offset"), "{sell_stop}");
}
