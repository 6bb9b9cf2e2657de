//! Orders, fills and triggers at the edges of the fixed-point types: nothing may wrap, panic
//! or come out as a price at or below zero; every refusal is a typed error.

use super::instruments::InstrumentInfo;
use super::kinds::*;
use super::tests::*;
use super::{Account, AccountConfig, Gateway};
use super::{AccountEvent, TrailOffset, TrailingRequest};
use crate::fixed::{Price, Qty};
use crate::instrument::InstrumentId;

/// Price and quantity scale 8: raw scale 16, so `i64::MAX × 1` still fits `Money` and the
/// edges of `i64` get past the notional check.
const WIDE: InstrumentId = InstrumentId(2);

fn wide_account(cfg: AccountConfig) -> Account {
    let mut a = account(cfg);
    a.add_instrument(InstrumentInfo {
        id: WIDE,
        price_scale: 8,
        qty_scale: 8,
        ..info(FUT)
    })
    .unwrap();
    a
}

fn wide_req(side: OrderSide, ty: OrderType, qty: i64, price: i64) -> super::OrderRequest {
    super::OrderRequest {
        instrument: WIDE,
        ..req(side, ty, qty, price)
    }
}

fn trailing(side: OrderSide, offset: TrailOffset) -> TrailingRequest {
    trailing_on(FUT, side, offset)
}

fn trailing_on(instrument: InstrumentId, side: OrderSide, offset: TrailOffset) -> TrailingRequest {
    TrailingRequest {
        instrument,
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

/// The same report on a buy trailing stop: at the largest ask, ask + offset is beyond `i64`.
#[test]
fn buy_trailing_stop_beyond_the_price_range_is_refused() {
    let mut a = wide_account(AccountConfig::default());
    a.handle_market(
        t(1),
        WIDE,
        Some(lvl(1, 1)),
        Some(lvl(i64::MAX - 4, 1)),
        None,
    );
    drain(&mut a);
    let r = a.place_trailing(
        t(2),
        trailing_on(WIDE, OrderSide::Buy, TrailOffset::Absolute(Price(5))),
    );
    assert!(
        matches!(
            r,
            Err(super::Reject::Trigger(super::TriggerError::Invalid(m))) if m.contains("offset")
        ),
        "{r:?}"
    );
    // One tick less fits exactly: the stop is i64::MAX.
    a.place_trailing(
        t(3),
        trailing_on(WIDE, OrderSide::Buy, TrailOffset::Absolute(Price(4))),
    )
    .unwrap();
    let ev = drain(&mut a);
    assert_prices_positive(&ev);
    assert!(ev
        .iter()
        .any(|e| matches!(e, AccountEvent::Trailing(u) if u.stop == Price(i64::MAX))));
    // bps of 10 000 or more is refused whatever the price.
    for bps in [10_000, u32::MAX] {
        assert!(a
            .place_trailing(
                t(4),
                trailing_on(WIDE, OrderSide::Sell, TrailOffset::Bps(bps))
            )
            .is_err());
    }
}

/// A venue report whose fill would overflow the position is refused as a typed error,
/// counted, alerted, and leaves orders and positions as they were.
#[test]
fn overflowing_venue_fill_is_counted_and_changes_nothing() {
    let mut a = wide_account(AccountConfig {
        gateway: Gateway::External,
        ..AccountConfig::default()
    });
    let half = i64::MAX / 2;
    let venue = |id: &str, qty: i64, last: i64, cum: i64| {
        let mut f = if last == 0 {
            report(id, ExecType::New, OrderStatus::New)
        } else {
            fill(id, last, cum, 1)
        };
        f.instrument = WIDE;
        f.qty = Qty(qty);
        f.price = Price(1);
        super::UserEvent::Execution(f)
    };
    a.place(
        t(1),
        wide_req(OrderSide::Buy, OrderType::Limit, i64::MAX, 1),
    )
    .unwrap();
    a.handle_user_event(t(2), venue("tp-o1", i64::MAX, 0, 0))
        .unwrap();
    a.handle_user_event(t(3), venue("tp-o1", i64::MAX, half + 1, half + 1))
        .unwrap();
    // Position half + 1: a buy of `half` still fits (exactly i64::MAX), one more does not.
    let refused = a
        .place(
            t(4),
            wide_req(OrderSide::Buy, OrderType::Limit, half + 1, 1),
        )
        .expect_err("the resulting position does not fit");
    assert!(refused.to_string().contains("position"), "{refused}");
    a.place(t(4), wide_req(OrderSide::Buy, OrderType::Limit, half, 1))
        .unwrap();
    a.handle_user_event(t(5), venue("tp-o2", half, 0, 0))
        .unwrap();
    a.handle_user_event(t(6), venue("tp-o1", i64::MAX, half, i64::MAX))
        .unwrap();
    drain(&mut a);
    let before = (a.position(WIDE).copied(), a.order(&cid("tp-o2")).copied());
    assert_eq!(before.0.map(|p| p.qty), Some(Qty(i64::MAX)));
    assert_eq!(a.overflow_count(), 0);
    // The venue fills the second order anyway: the position would pass i64::MAX.
    let e = a.handle_user_event(t(7), venue("tp-o2", half, 1, 1));
    assert!(
        matches!(
            e,
            Err(super::AccountError::Math(super::MathError::Overflow {
                context: "position qty"
            }))
        ),
        "{e:?}"
    );
    assert_eq!(
        (a.position(WIDE).copied(), a.order(&cid("tp-o2")).copied()),
        before,
        "state unchanged"
    );
    assert_eq!(a.overflow_count(), 1);
    assert!(drain(&mut a).iter().any(|e| matches!(
        e,
        AccountEvent::Risk(r) if r.kind == super::RiskKind::Overflow
    )));
}

mod props {
    use super::*;
    use crate::account::{BracketRequest, Leg, OcoRequest, Reject, TriggerDir};
    use proptest::prelude::*;

    fn extreme() -> impl Strategy<Value = i64> {
        prop_oneof![
            Just(i64::MAX),
            Just(i64::MAX - 1),
            Just(i64::MAX / 2),
            Just(i64::MAX / 10_000),
            Just(i64::MIN),
            Just(i64::MIN + 1),
            Just(0i64),
            Just(-1i64),
            Just(1i64),
            1i64..1_000_000,
            any::<i64>(),
        ]
    }

    fn positive() -> impl Strategy<Value = i64> {
        prop_oneof![
            Just(i64::MAX),
            Just(i64::MAX - 1),
            Just(i64::MAX / 2),
            Just(1i64),
            1i64..1_000_000,
            1i64..=i64::MAX,
        ]
    }

    #[derive(Debug, Clone)]
    enum Step {
        Market(i64, i64, i64, i64),
        Trade(i64, i64),
        Place(bool, bool, i64, i64),
        Trailing(bool, i64, bool),
        Bracket(i64, i64, i64, i64),
        Oco(bool, i64, i64, i64),
        Cancel(u8),
        CancelAdvanced(u8),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (positive(), positive(), positive(), positive()).prop_map(|(a, b, c, d)| Step::Market(
                a.min(b),
                c,
                a.max(b),
                d
            )),
            (positive(), positive()).prop_map(|(p, q)| Step::Trade(p, q)),
            (any::<bool>(), any::<bool>(), extreme(), extreme())
                .prop_map(|(b, m, q, p)| Step::Place(b, m, q, p)),
            (any::<bool>(), extreme(), any::<bool>())
                .prop_map(|(b, o, bps)| Step::Trailing(b, o, bps)),
            (extreme(), extreme(), extreme(), extreme())
                .prop_map(|(q, p, tp, sl)| Step::Bracket(q, p, tp, sl)),
            (any::<bool>(), extreme(), extreme(), extreme())
                .prop_map(|(b, q, l, t)| Step::Oco(b, q, l, t)),
            any::<u8>().prop_map(Step::Cancel),
            any::<u8>().prop_map(Step::CancelAdvanced),
        ]
    }

    fn side(buy: bool) -> OrderSide {
        if buy {
            OrderSide::Buy
        } else {
            OrderSide::Sell
        }
    }

    /// A refusal is a typed error; an overflow refusal names what overflowed.
    fn check_refusal(e: &Reject) -> Result<(), TestCaseError> {
        if let Reject::Math(m) = e {
            let super::super::MathError::Overflow { context } = m;
            prop_assert!(!context.is_empty());
            prop_assert!(e.to_string().contains(context));
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Place, fill on the paper venue, trail, trigger brackets and cancel at the edges of
        /// `i64`: no panic, no price at or below zero in any output, every refusal typed, and
        /// the position always equals the sum of the fills the account reported.
        #[test]
        fn account_at_the_extremes(
            wide in any::<bool>(),
            steps in proptest::collection::vec(step(), 1..40),
        ) {
            let mut a = wide_account(AccountConfig::default());
            let inst = if wide { WIDE } else { FUT };
            let req = |s, ty, q, p| super::super::OrderRequest { instrument: inst, ..req(s, ty, q, p) };
            let mut position: i128 = 0;
            let mut ids = Vec::new();
            let mut adv = Vec::new();
            for (i, s) in steps.into_iter().enumerate() {
                let now = t(i as u64 + 1);
                let r: Result<(), Reject> = match s {
                    Step::Market(bid, bq, ask, aq) => {
                        a.handle_market(now, inst, Some(lvl(bid, bq)), Some(lvl(ask, aq)), None);
                        Ok(())
                    }
                    Step::Trade(p, q) => {
                        a.handle_market(now, inst, None, None, Some(lvl(p, q)));
                        Ok(())
                    }
                    Step::Place(buy, market, q, p) => {
                        let ty = if market { OrderType::Market } else { OrderType::Limit };
                        a.place(now, req(side(buy), ty, q, p)).map(|id| ids.push(id))
                    }
                    Step::Trailing(buy, off, bps) => {
                        let offset = if bps {
                            TrailOffset::Bps(u32::try_from(off.rem_euclid(20_000)).unwrap_or(0))
                        } else {
                            TrailOffset::Absolute(Price(off))
                        };
                        a.place_trailing(now, trailing_on(inst, side(buy), offset)).map(|id| adv.push(id))
                    }
                    Step::Bracket(q, p, tp, sl) => a
                        .place_bracket(
                            now,
                            req(OrderSide::Buy, OrderType::Limit, q, p),
                            BracketRequest { take_profit: Price(tp), stop_loss: Price(sl), reduce_only: false },
                        )
                        .map(|(id, x)| {
                            ids.push(id);
                            adv.push(x);
                        }),
                    Step::Oco(buy, q, l, trig) => a
                        .place_oco(
                            now,
                            OcoRequest {
                                instrument: inst,
                                side: side(buy),
                                qty: Qty(q),
                                legs: [
                                    Leg::Limit { price: Price(l) },
                                    Leg::Trigger {
                                        dir: if buy { TriggerDir::AtOrAbove } else { TriggerDir::AtOrBelow },
                                        trigger: Price(trig),
                                        limit: None,
                                    },
                                ],
                                reduce_only: false,
                            },
                        )
                        .map(|x| adv.push(x)),
                    Step::Cancel(k) if !ids.is_empty() => {
                        let id = ids[usize::from(k) % ids.len()];
                        a.cancel(now, &id)
                    }
                    Step::CancelAdvanced(k) if !adv.is_empty() => {
                        let id = adv[usize::from(k) % adv.len()];
                        a.cancel_advanced(now, id)
                    }
                    Step::Cancel(_) | Step::CancelAdvanced(_) => Ok(()),
                };
                if let Err(e) = &r {
                    check_refusal(e)?;
                }
                let events = drain(&mut a);
                assert_prices_positive(&events);
                for ev in &events {
                    if let AccountEvent::Order(u) = ev {
                        if let Some(f) = u.fill {
                            prop_assert!(f.qty.0 > 0);
                            let d = i128::from(f.qty.0);
                            position += if f.side == OrderSide::Buy { d } else { -d };
                        }
                    }
                    if let AccountEvent::Position(p) = ev {
                        prop_assert_eq!(i128::from(p.qty.0), position);
                    }
                }
                let held = a.position(inst).map_or(0, |p| i128::from(p.qty.0));
                prop_assert_eq!(held, position, "position = sum of reported fills");
                if let Some(p) = a.position(inst) {
                    if let Some(avg) = p.avg_entry_price() {
                        prop_assert!(avg.0 > 0);
                    }
                }
                for id in &adv {
                    if let Some(u) = a.triggers().trailing(*id) {
                        prop_assert!(u.stop.0 > 0 && u.peak.0 > 0, "{:?}", u);
                    }
                }
            }
        }
    }
}
