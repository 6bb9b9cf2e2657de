//! Positions and PnL: increase, reduce, close, flip, fees, marks, the portfolio, and a
//! model-based proptest that realized + unrealized equals the naive cash-flow PnL.

use proptest::prelude::*;

use super::kinds::OrderSide::{self, Buy, Sell};
use super::money::{raw_to_money, Money};
use super::positions::{EquityTracker, MarkSource, Position, PositionSide};
use super::tests::*;
use crate::fixed::{Price, Qty};

/// USD-M BTCUSDT-like: price scale 1, qty scale 3, so raw amounts are at scale 4 and
/// Money (scale 8) = raw × 10^4.
fn pos() -> Position {
    let mut p = Position::new(FUT, 1, 3);
    p.quote_asset = Some(usdt());
    p
}

fn m(units_e4: i64) -> Money {
    Money(units_e4 * 10_000)
}

#[test]
fn increase_reduce_flip_close_worked_by_hand() {
    let mut p = pos();
    // Buy 2.000 @ 100.0: q = 2000, C = 1000 × 2000 = 2,000,000 (200.0000).
    let e = p
        .apply_fill(Buy, Price(1_000), Qty(2_000), Money::ZERO)
        .unwrap();
    assert_eq!((e.opened, e.closed, e.flipped), (Qty(2_000), Qty(0), false));
    assert_eq!(
        (p.qty, p.cost_raw(), p.side()),
        (Qty(2_000), 2_000_000, PositionSide::Long)
    );
    // Buy 1.000 @ 103.0: C = 2,000,000 + 1,030,000 = 3,030,000; avg = 3,030,000 / 3000 = 101.0.
    p.apply_fill(Buy, Price(1_030), Qty(1_000), Money::ZERO)
        .unwrap();
    assert_eq!(p.avg_entry_price(), Some(Price(1_010)));
    // Sell 1.500 @ 105.0: removes 3,030,000 × 1500 / 3000 = 1,515,000 of cost; proceeds
    // 1050 × 1500 = 1,575,000; realized 60,000 = 6.0.
    let e = p
        .apply_fill(Sell, Price(1_050), Qty(1_500), Money::ZERO)
        .unwrap();
    assert_eq!((e.closed, e.realized_raw), (Qty(1_500), 60_000));
    assert_eq!(p.realized_pnl(), Ok(m(60_000)));
    assert_eq!(
        p.avg_entry_price(),
        Some(Price(1_010)),
        "reducing keeps the average"
    );
    // Mark 104.0: unrealized = 1040 × 1500 − 1,515,000 = 45,000 = 4.5.
    p.mark = Some(Price(1_040));
    assert_eq!(p.unrealized_pnl(), Ok(m(45_000)));
    // Sell 2.500 @ 102.0 flips: closes 1.500 for 1020 × 1500 − 1,515,000 = 15,000 (1.5), then
    // opens 1.000 short at 102.0 (C = −1,020,000).
    let e = p
        .apply_fill(Sell, Price(1_020), Qty(2_500), Money::ZERO)
        .unwrap();
    assert_eq!(
        (e.closed, e.opened, e.flipped, e.realized_raw),
        (Qty(1_500), Qty(1_000), true, 15_000)
    );
    assert_eq!(
        (p.qty, p.side(), p.avg_entry_price()),
        (Qty(-1_000), PositionSide::Short, Some(Price(1_020)))
    );
    assert_eq!(p.realized_pnl(), Ok(m(75_000)));
    // Short marked at 104.0 loses 2.0: 1040 × −1000 − (−1,020,000) = −20,000.
    assert_eq!(p.unrealized_pnl(), Ok(m(-20_000)));
    // Buy 1.000 @ 99.0 closes the short: −990,000 − (−1,020,000) = 30,000 (3.0).
    p.apply_fill(Buy, Price(990), Qty(1_000), Money::ZERO)
        .unwrap();
    assert_eq!(
        (p.qty, p.side(), p.avg_entry_price(), p.cost_raw()),
        (Qty(0), PositionSide::Flat, None, 0)
    );
    // Total 6.0 + 1.5 + 3.0 = 10.5; cash flow: −200 − 103 + 157.5 + 255 − 99 = 10.5.
    assert_eq!(p.realized_pnl(), Ok(m(105_000)));
    assert_eq!(
        p.unrealized_pnl(),
        Ok(Money::ZERO),
        "flat has no unrealized PnL"
    );
}

#[test]
fn quote_fees_reduce_realized_pnl() {
    let mut p = pos();
    // Buy 1.000 @ 100.0 paying 0.04 USDT; sell 1.000 @ 101.0 paying 0.0404.
    p.apply_fill(Buy, Price(1_000), Qty(1_000), Money(4_000_000))
        .unwrap();
    assert_eq!(
        p.realized_pnl(),
        Ok(Money(-4_000_000)),
        "fees are realized at once"
    );
    p.apply_fill(Sell, Price(1_010), Qty(1_000), Money(4_040_000))
        .unwrap();
    // gross 1.0 − fees 0.0804 = 0.9196
    assert_eq!(p.fees, Money(8_040_000));
    assert_eq!(p.realized_pnl(), Ok(Money(91_960_000)));
    let u = p.snapshot().unwrap();
    assert_eq!(
        (u.realized_pnl, u.fees, u.side),
        (Money(91_960_000), Money(8_040_000), PositionSide::Flat)
    );
}

#[test]
fn partial_close_rounding_moves_pnl_between_realized_and_unrealized_only() {
    let mut p = pos();
    // Three buys of 0.001 @ 100.0, 100.1, 100.1: C = 1000 + 1001 + 1001 = 3002.
    for px in [1_000, 1_001, 1_001] {
        p.apply_fill(Buy, Price(px), Qty(1), Money::ZERO).unwrap();
    }
    assert_eq!(
        p.avg_entry_price(),
        Some(Price(1_001)),
        "3002 / 3 = 1000.67 -> 1001"
    );
    // Sell 0.001 @ 100.0: removed = 3002 / 3 = 1000.67 -> 1001; realized = 1000 − 1001 = −1.
    p.apply_fill(Sell, Price(1_000), Qty(1), Money::ZERO)
        .unwrap();
    assert_eq!((p.realized_raw(), p.cost_raw()), (-1, 2_001));
    // At mark 100.0 the total is −2 raw either way: −1 realized + (2000 − 2001) unrealized.
    assert_eq!(
        p.realized_raw() + p.unrealized_raw(Price(1_000)).unwrap(),
        -2
    );
}

#[test]
fn mark_sources_and_overflow() {
    assert_eq!(
        MarkSource::Mid.mark(Some(Price(1_000)), Some(Price(1_003)), None),
        Some(Price(1_001))
    );
    assert_eq!(
        MarkSource::Mid.mark(Some(Price(1_000)), None, Some(Price(5))),
        None
    );
    assert_eq!(
        MarkSource::Last.mark(Some(Price(1)), Some(Price(2)), Some(Price(7))),
        Some(Price(7))
    );
    let mut p = pos();
    p.apply_fill(Buy, Price(i64::MAX), Qty(i64::MAX), Money::ZERO)
        .unwrap();
    let before = p;
    // Realized PnL beyond i64 Money fails and leaves the position as it was.
    assert!(p
        .apply_fill(Sell, Price(1), Qty(i64::MAX), Money::ZERO)
        .is_err());
    assert_eq!(p, before);
    assert!(
        p.apply_fill(Buy, Price(1), Qty(1), Money::ZERO).is_err(),
        "qty overflow"
    );
}

#[test]
fn portfolio_and_drawdown() {
    let mut e = EquityTracker::default();
    let mut a = pos();
    a.apply_fill(Buy, Price(1_000), Qty(1_000), Money::ZERO)
        .unwrap();
    a.mark = Some(Price(1_020));
    let mut other = Position::new(SPOT, 2, 5);
    other.quote_asset = super::ids::Asset::new("BTC").ok();
    other
        .apply_fill(Buy, Price(100), Qty(100), Money::ZERO)
        .unwrap();
    let s = e
        .summarise([a, other].iter(), Some(usdt()), Money(5))
        .unwrap();
    // +2.0 unrealized; the BTC-quoted position is left out.
    assert_eq!(
        (
            s.unrealized_pnl,
            s.total_pnl,
            s.open_positions,
            s.total_balance
        ),
        (m(20_000), m(20_000), 1, Money(5))
    );
    assert_eq!((s.equity_peak, s.drawdown), (m(20_000), Money::ZERO));
    a.mark = Some(Price(990));
    let s = e.summarise([a].iter(), Some(usdt()), Money::ZERO).unwrap();
    // −1.0 now, peak +2.0: drawdown 3.0
    assert_eq!(
        (s.total_pnl, s.equity_peak, s.drawdown),
        (m(-10_000), m(20_000), m(30_000))
    );
}

fn side() -> impl Strategy<Value = OrderSide> {
    prop_oneof![Just(Buy), Just(Sell)]
}

proptest! {
    /// Model-based: for any fills, realized + unrealized at mark M equals the cash-flow PnL
    /// Σ −p·d + M·q computed naively in i128, exactly, at the raw scale; and in Money too when
    /// the raw scale is at most 8 (no rounding on the way).
    #[test]
    fn realized_plus_unrealized_is_cash_flow(
        fills in prop::collection::vec((side(), 1i64..100_000, 1i64..5_000), 1..40),
        mark in 1i64..100_000,
        ps in 0u8..=8,
        qs in 0u8..=8,
    ) {
        let mut p = Position::new(FUT, ps, qs);
        let (mut cash, mut q): (i128, i128) = (0, 0);
        for (s, price, qty) in fills {
            p.apply_fill(s, Price(price), Qty(qty), Money::ZERO).unwrap();
            let d = i128::from(qty) * i128::from(s.sign());
            cash -= i128::from(price) * d;
            q += d;
            prop_assert_eq!(i128::from(p.qty.0), q);
            let expect = cash + i128::from(mark) * q;
            let got = p.realized_raw() + p.unrealized_raw(Price(mark)).unwrap();
            prop_assert_eq!(got, expect);
        }
        p.mark = Some(Price(mark));
        let expect = cash + i128::from(mark) * q;
        if ps + qs <= 8 {
            let total = p.realized_pnl().unwrap().0 + p.unrealized_pnl().unwrap().0;
            prop_assert_eq!(Money(total), raw_to_money(expect, ps + qs, "t").unwrap());
        }
        // The average entry price is the cost basis over the quantity, rounded.
        if q != 0 {
            let avg = i128::from(p.avg_entry_price().unwrap().0);
            prop_assert!(2 * (avg * q - p.cost_raw()).abs() <= q.abs());
        }
    }
}
