//! Pre-trade and post-trade risk rules.

use std::collections::BTreeMap;

use super::kinds::OrderSide::{Buy, Sell};
use super::money::Money;
use super::risk::*;
use super::tests::*;
use crate::fixed::{Decimal, Price, Qty};
use crate::input::Nanos;

fn dec(mantissa: i64, scale: u8) -> Decimal {
    Decimal { mantissa, scale }
}

/// A USD-M order (price scale 1, qty scale 3) of `qty` at 100.0.
fn order(side: super::kinds::OrderSide, qty: i64) -> RiskOrder {
    RiskOrder {
        instrument: FUT,
        side,
        qty: Qty(qty),
        price: Some(Price(1_000)),
        reduce_only: false,
        price_scale: 1,
        qty_scale: 3,
    }
}

fn ctx() -> RiskContext {
    RiskContext {
        open_orders: 0,
        position: Qty::ZERO,
        drawdown: Money::ZERO,
    }
}

fn kind(r: Result<(), RiskReject>) -> Option<RiskKind> {
    r.err().map(|e| {
        assert_eq!(e.0.severity, Severity::Warning);
        e.0.kind
    })
}

#[test]
fn order_qty_with_per_instrument_override() {
    // Default 2 (scale 0), i.e. 2.000 at qty scale 3.
    let mut r = Risk::new(RiskLimits {
        max_order_qty: Some(dec(2, 0)),
        ..RiskLimits::default()
    });
    assert_eq!(kind(r.check(&order(Buy, 2_000), &ctx(), Nanos(0))), None);
    let e = r.check(&order(Buy, 2_001), &ctx(), Nanos(5)).unwrap_err();
    assert_eq!(
        (e.0.kind, e.0.limit, e.0.current, e.0.at),
        (RiskKind::OrderQty, dec(2, 0), dec(2_001, 3), Nanos(5))
    );
    assert_eq!(e.0.instrument, Some(FUT));
    assert_eq!(
        e.to_string(),
        "risk reject (order_qty): order qty 2.001 above limit 2"
    );
    r.set_limits(RiskLimits {
        max_order_qty: Some(dec(2, 0)),
        max_order_qty_per_instrument: BTreeMap::from([(FUT, dec(5, 1))]),
        ..RiskLimits::default()
    });
    assert_eq!(
        kind(r.check(&order(Buy, 501), &ctx(), Nanos(0))),
        Some(RiskKind::OrderQty)
    );
}

#[test]
fn order_notional() {
    let mut r = Risk::new(RiskLimits {
        max_order_notional: Some(Money(100_00000000)),
        ..RiskLimits::default()
    });
    // 1.000 × 100.0 = 100 is at the limit; 1.001 × 100.0 = 100.1 is above.
    assert_eq!(kind(r.check(&order(Buy, 1_000), &ctx(), Nanos(0))), None);
    let e = r.check(&order(Buy, 1_001), &ctx(), Nanos(0)).unwrap_err();
    assert_eq!(
        (e.0.kind, e.0.current),
        (RiskKind::OrderNotional, dec(100_10000000, 8))
    );
    let mut no_price = order(Buy, 1);
    no_price.price = None;
    assert_eq!(
        kind(r.check(&no_price, &ctx(), Nanos(0))),
        Some(RiskKind::OrderNotional)
    );
}

#[test]
fn position_limit_allows_reducing() {
    let mut r = Risk::new(RiskLimits {
        max_position: Some(dec(1, 0)),
        ..RiskLimits::default()
    });
    let long = RiskContext {
        position: Qty(800),
        ..ctx()
    };
    assert_eq!(kind(r.check(&order(Buy, 200), &long, Nanos(0))), None);
    assert_eq!(
        kind(r.check(&order(Buy, 201), &long, Nanos(0))),
        Some(RiskKind::PositionLimit)
    );
    // Selling 2.0 from +0.8 ends at −1.2: beyond the limit the other way.
    assert_eq!(
        kind(r.check(&order(Sell, 2_000), &long, Nanos(0))),
        Some(RiskKind::PositionLimit)
    );
    // Already beyond (+1.5): reducing is always allowed, increasing is not.
    let over = RiskContext {
        position: Qty(1_500),
        ..ctx()
    };
    assert_eq!(kind(r.check(&order(Sell, 100), &over, Nanos(0))), None);
    assert_eq!(
        kind(r.check(&order(Buy, 1), &over, Nanos(0))),
        Some(RiskKind::PositionLimit)
    );
}

#[test]
fn open_orders_and_drawdown() {
    let mut r = Risk::new(RiskLimits {
        max_open_orders: Some(2),
        max_drawdown: Some(Money(50_00000000)),
        ..RiskLimits::default()
    });
    let busy = RiskContext {
        open_orders: 2,
        ..ctx()
    };
    assert_eq!(
        kind(r.check(&order(Buy, 1), &busy, Nanos(0))),
        Some(RiskKind::OpenOrders)
    );
    let dd = RiskContext {
        drawdown: Money(50_00000000),
        position: Qty(1_000),
        ..ctx()
    };
    assert_eq!(
        kind(r.check(&order(Buy, 1), &dd, Nanos(0))),
        Some(RiskKind::Drawdown)
    );
    assert_eq!(
        kind(r.check(&order(Sell, 1_000), &dd, Nanos(0))),
        None,
        "closing is allowed"
    );
    let mut ro = order(Buy, 1);
    ro.reduce_only = true;
    assert_eq!(
        kind(r.check(&ro, &dd, Nanos(0))),
        None,
        "reduce-only is allowed"
    );
}

#[test]
fn order_rate_token_bucket_driven_by_now() {
    let mut r = Risk::new(RiskLimits {
        max_orders_per_sec: Some(2),
        max_order_qty: Some(dec(1, 0)),
        ..RiskLimits::default()
    });
    let s = NANOS_PER_SEC;
    assert_eq!(kind(r.check(&order(Buy, 1), &ctx(), Nanos(s))), None);
    // A refused order does not use a token.
    assert_eq!(
        kind(r.check(&order(Buy, 5_000), &ctx(), Nanos(s))),
        Some(RiskKind::OrderQty)
    );
    assert_eq!(kind(r.check(&order(Buy, 1), &ctx(), Nanos(s))), None);
    assert_eq!(
        kind(r.check(&order(Buy, 1), &ctx(), Nanos(s))),
        Some(RiskKind::OrderRate)
    );
    // Half a second refills one token (2 per second).
    assert_eq!(
        kind(r.check(&order(Buy, 1), &ctx(), Nanos(s + s / 2 - 1))),
        Some(RiskKind::OrderRate)
    );
    assert_eq!(
        kind(r.check(&order(Buy, 1), &ctx(), Nanos(s + s / 2))),
        None
    );
    // Time going backwards refills nothing and does not panic.
    assert_eq!(
        kind(r.check(&order(Buy, 1), &ctx(), Nanos(0))),
        Some(RiskKind::OrderRate)
    );
    // A long pause refills only up to the burst.
    for _ in 0..2 {
        assert_eq!(kind(r.check(&order(Buy, 1), &ctx(), Nanos(100 * s))), None);
    }
    assert_eq!(
        kind(r.check(&order(Buy, 1), &ctx(), Nanos(100 * s))),
        Some(RiskKind::OrderRate)
    );
}

#[test]
fn post_trade_alerts_fire_once_per_crossing() {
    let mut r = Risk::new(RiskLimits {
        max_position: Some(dec(1, 0)),
        max_drawdown: Some(Money(10_00000000)),
        ..RiskLimits::default()
    });
    assert!(r.after_fill(FUT, Qty(1_000), 3, Nanos(1)).is_none());
    let a = r.after_fill(FUT, Qty(-1_200), 3, Nanos(2)).unwrap();
    assert_eq!(
        (a.kind, a.severity, a.current, a.at),
        (
            RiskKind::PositionLimit,
            Severity::Critical,
            dec(-1_200, 3),
            Nanos(2)
        )
    );
    assert!(
        r.after_fill(FUT, Qty(-1_500), 3, Nanos(3)).is_none(),
        "still beyond: no repeat"
    );
    assert!(r.after_fill(FUT, Qty(0), 3, Nanos(4)).is_none());
    assert!(
        r.after_fill(FUT, Qty(2_000), 3, Nanos(5)).is_some(),
        "a new crossing alerts again"
    );
    assert!(r.after_equity(Money(9_99999999), Nanos(1)).is_none());
    let d = r.after_equity(Money(10_00000000), Nanos(2)).unwrap();
    assert_eq!(
        (d.kind, d.severity, d.instrument),
        (RiskKind::Drawdown, Severity::Critical, None)
    );
    assert_eq!(
        d.to_string(),
        "critical drawdown: drawdown 10.00000000 reached limit 10.00000000"
    );
    assert!(r.after_equity(Money(20_00000000), Nanos(3)).is_none());
    assert!(r.after_equity(Money(0), Nanos(4)).is_none());
    assert!(r.after_equity(Money(11_00000000), Nanos(5)).is_some());
    assert_eq!(cmp_scaled(15, 1, 1_500, 3), std::cmp::Ordering::Equal);
}
