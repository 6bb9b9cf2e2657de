//! Advanced orders: OCO, bracket and trailing-stop sequences on the trigger engine alone.

use super::ids::AdvancedId;
use super::kinds::{OrderSide, OrderStatus, OrderType};
use super::orders::{Fill, Order, OrderCommand};
use super::tests::*;
use super::trailing::TrailOffset;
use super::triggers::*;
use crate::fixed::{Price, Qty};
use crate::input::Nanos;

fn commands(out: &[TriggerOutput]) -> Vec<OrderCommand> {
    out.iter()
        .filter_map(|o| match o {
            TriggerOutput::Command(c) => Some(*c),
            _ => None,
        })
        .collect()
}

fn states(out: &[TriggerOutput]) -> Vec<(AdvancedState, &'static str)> {
    out.iter()
        .filter_map(|o| match o {
            TriggerOutput::Advanced(u) => Some((u.state, u.reason)),
            _ => None,
        })
        .collect()
}

fn placed(c: &OrderCommand) -> super::orders::NewOrder {
    match c {
        OrderCommand::Place(o) => *o,
        other => panic!("not a place: {other:?}"),
    }
}

fn px(p: i64) -> Option<Price> {
    Some(Price(p))
}

/// An order snapshot for `on_order`, as the order table would report it.
fn order(id: &str, side: OrderSide, qty: i64, filled: i64, status: OrderStatus) -> Order {
    let n = new_order(id);
    Order {
        client_order_id: cid(id),
        venue_order_id: Some(1),
        instrument: FUT,
        side,
        order_type: OrderType::Limit,
        time_in_force: n.time_in_force,
        reduce_only: false,
        price: n.price,
        stop_price: Price(0),
        qty: Qty(qty),
        filled: Qty(filled),
        cum_quote_raw: 0,
        fees: super::money::Money::ZERO,
        fee_asset: None,
        status,
        status_before_cancel: None,
        price_scale: 1,
        qty_scale: 3,
        created: Nanos(0),
        updated: Nanos(0),
    }
}

fn a_fill(id: &str, qty: i64) -> Fill {
    Fill {
        instrument: FUT,
        client_order_id: cid(id),
        side: OrderSide::Buy,
        price: Price(1_000),
        qty: Qty(qty),
        fee: super::money::Money::ZERO,
        fee_asset: None,
        is_maker: false,
        trade_id: None,
    }
}

#[test]
fn oco_of_two_triggers_fires_one_and_drops_the_other() {
    let mut t = Triggers::default();
    let mut out = Vec::new();
    // Protect a long: sell take-profit at >= 110.0, stop at <= 95.0.
    let id = t
        .add_oco(
            &OcoRequest {
                instrument: FUT,
                side: OrderSide::Sell,
                qty: Qty(500),
                legs: [
                    Leg::Trigger {
                        dir: TriggerDir::AtOrAbove,
                        trigger: Price(1_100),
                        limit: Some(Price(1_100)),
                    },
                    Leg::Trigger {
                        dir: TriggerDir::AtOrBelow,
                        trigger: Price(950),
                        limit: None,
                    },
                ],
                reduce_only: true,
            },
            &mut out,
        )
        .unwrap();
    assert_eq!(states(&out), vec![(AdvancedState::Armed, "armed")]);
    assert!(commands(&out).is_empty(), "trigger legs are held by tape");
    out.clear();
    // Sell triggers watch the bid: bid 96.0, ask 109.9 -> nothing.
    t.on_market(FUT, px(960), px(1_099), None, &mut out);
    assert!(out.is_empty());
    // A trade print at 94.9 fires the stop: a reduce-only market sell of 0.500.
    t.on_market(FUT, None, None, px(949), &mut out);
    let cmds = commands(&out);
    assert_eq!(cmds.len(), 1);
    let child = placed(&cmds[0]);
    assert_eq!(
        (child.side, child.order_type, child.qty, child.reduce_only),
        (OrderSide::Sell, OrderType::Market, Qty(500), true)
    );
    assert_eq!(child.client_order_id.as_str(), "tp-a1-1");
    assert_eq!(
        states(&out),
        vec![(AdvancedState::Triggered, "leg_triggered")]
    );
    out.clear();
    // The take-profit leg is gone: a rally does nothing.
    t.on_market(FUT, px(1_200), px(1_201), None, &mut out);
    assert!(out.is_empty());
    // The child fills: the OCO is done and forgotten.
    t.on_order(
        &order("tp-a1-1", OrderSide::Sell, 500, 500, OrderStatus::Filled),
        None,
        &mut out,
    );
    assert_eq!(states(&out), vec![(AdvancedState::Done, "leg_done")]);
    assert_eq!(t.state(id), None);
    assert!(t.is_empty());
}

#[test]
fn oco_limit_leg_fill_cancels_the_trigger_leg_and_venue_cancel_ends_it() {
    let mut t = Triggers::default();
    let mut out = Vec::new();
    let req = OcoRequest {
        instrument: FUT,
        side: OrderSide::Sell,
        qty: Qty(500),
        legs: [
            Leg::Limit {
                price: Price(1_100),
            },
            Leg::Trigger {
                dir: TriggerDir::AtOrBelow,
                trigger: Price(950),
                limit: None,
            },
        ],
        reduce_only: false,
    };
    t.add_oco(&req, &mut out).unwrap();
    let cmds = commands(&out);
    let leg = placed(&cmds[0]);
    assert_eq!(
        (leg.order_type, leg.price, leg.qty),
        (OrderType::Limit, Price(1_100), Qty(500))
    );
    assert!(t.owns(&leg.client_order_id));
    out.clear();
    // A partial fill of the limit leg drops the stop leg.
    let id = leg.client_order_id.to_string();
    t.on_order(
        &order(&id, OrderSide::Sell, 500, 100, OrderStatus::PartiallyFilled),
        Some(&a_fill(&id, 100)),
        &mut out,
    );
    assert_eq!(states(&out), vec![(AdvancedState::Triggered, "leg_filled")]);
    out.clear();
    t.on_market(FUT, px(900), px(901), None, &mut out);
    assert!(out.is_empty(), "stop leg was cancelled");
    // Second OCO: its limit leg is cancelled at the venue -> the whole OCO is cancelled.
    t.add_oco(&req, &mut out).unwrap();
    let leg2 = placed(&commands(&out)[0]).client_order_id.to_string();
    out.clear();
    t.on_order(
        &order(&leg2, OrderSide::Sell, 500, 0, OrderStatus::Canceled),
        None,
        &mut out,
    );
    assert_eq!(
        states(&out),
        vec![(AdvancedState::Canceled, "leg_canceled")]
    );
    out.clear();
    t.on_market(FUT, px(900), px(901), None, &mut out);
    assert!(out.is_empty());
    // Cancelling an OCO with a resting leg cancels that leg at the venue.
    let id3 = t.add_oco(&req, &mut out).unwrap();
    let leg3 = placed(&commands(&out)[0]).client_order_id;
    out.clear();
    t.cancel(id3, &mut out).unwrap();
    assert_eq!(
        commands(&out),
        vec![OrderCommand::Cancel {
            instrument: FUT,
            client_order_id: leg3,
            venue_order_id: None
        }]
    );
    assert_eq!(t.cancel(id3, &mut out), Err(TriggerError::Unknown(id3)));
    assert!(matches!(
        t.add_oco(&OcoRequest { qty: Qty(0), ..req }, &mut out),
        Err(TriggerError::Invalid(_))
    ));
}

#[test]
fn bracket_children_follow_partial_fills_then_cancel_the_entry_rest() {
    let mut t = Triggers::default();
    let mut out = Vec::new();
    let entry = new_order("entry-1"); // buy 1.000 @ 100.0
    let br = BracketRequest {
        take_profit: Price(1_100),
        stop_loss: Price(950),
        reduce_only: false,
    };
    assert!(
        matches!(
            t.add_bracket(
                &entry,
                &BracketRequest {
                    take_profit: Price(990),
                    ..br
                },
                &mut out
            ),
            Err(TriggerError::Invalid(_))
        ),
        "take-profit below a buy entry"
    );
    let id = t.add_bracket(&entry, &br, &mut out).unwrap();
    assert_eq!(
        states(&out),
        vec![(AdvancedState::WaitingEntry, "waiting_entry")]
    );
    assert_eq!(
        t.add_bracket(&entry, &br, &mut out),
        Err(TriggerError::Duplicate(cid("entry-1")))
    );
    out.clear();
    // Nothing is armed before the entry fills.
    t.on_market(FUT, px(900), px(901), None, &mut out);
    assert!(out.is_empty());
    // Entry fills 0.300: children armed for 0.300.
    t.on_order(
        &order(
            "entry-1",
            OrderSide::Buy,
            1_000,
            300,
            OrderStatus::PartiallyFilled,
        ),
        Some(&a_fill("entry-1", 300)),
        &mut out,
    );
    assert_eq!(
        states(&out),
        vec![(AdvancedState::Armed, "entry_fill_armed")]
    );
    out.clear();
    // Then 0.700 total: children resized.
    t.on_order(
        &order(
            "entry-1",
            OrderSide::Buy,
            1_000,
            700,
            OrderStatus::PartiallyFilled,
        ),
        Some(&a_fill("entry-1", 400)),
        &mut out,
    );
    assert_eq!(out.len(), 1);
    let TriggerOutput::Advanced(u) = out[0] else {
        panic!()
    };
    assert_eq!((u.qty, u.reason), (Qty(700), "entry_fill_resized"));
    out.clear();
    // Bid reaches 110.0: the take-profit sends a limit sell of 0.700 at 110.0 and tape
    // cancels the rest of the entry.
    t.on_market(FUT, px(1_100), px(1_101), None, &mut out);
    let cmds = commands(&out);
    assert_eq!(cmds.len(), 2);
    let tp = placed(&cmds[0]);
    assert_eq!(
        (tp.side, tp.order_type, tp.price, tp.qty),
        (OrderSide::Sell, OrderType::Limit, Price(1_100), Qty(700))
    );
    assert_eq!(
        cmds[1],
        OrderCommand::Cancel {
            instrument: FUT,
            client_order_id: cid("entry-1"),
            venue_order_id: None
        }
    );
    out.clear();
    // The stop-loss is gone.
    t.on_market(FUT, px(900), px(901), None, &mut out);
    assert!(out.is_empty());
    t.on_order(
        &order(
            tp.client_order_id.as_str(),
            OrderSide::Sell,
            700,
            700,
            OrderStatus::Filled,
        ),
        None,
        &mut out,
    );
    assert_eq!(t.state(id), None);
    // A bracket whose entry never fills is cancelled with it.
    let e2 = new_order("entry-2");
    let id2 = t.add_bracket(&e2, &br, &mut out).unwrap();
    out.clear();
    t.on_order(
        &order("entry-2", OrderSide::Buy, 1_000, 0, OrderStatus::Canceled),
        None,
        &mut out,
    );
    assert_eq!(
        states(&out),
        vec![(AdvancedState::Canceled, "entry_unfilled")]
    );
    assert_eq!(t.state(id2), None);
}

#[test]
fn trailing_stop_follows_the_peak_and_fires() {
    let mut t = Triggers::default();
    let mut out = Vec::new();
    let req = TrailingRequest {
        instrument: FUT,
        side: OrderSide::Sell,
        qty: Qty(200),
        offset: TrailOffset::Absolute(Price(20)),
        reduce_only: true,
    };
    assert_eq!(
        t.add_trailing(&req, &mut out),
        Err(TriggerError::NoMarketData(FUT))
    );
    t.on_market(FUT, px(1_000), px(1_001), None, &mut out);
    let id = t.add_trailing(&req, &mut out).unwrap();
    let trail = |out: &[TriggerOutput]| -> Vec<(i64, i64)> {
        out.iter()
            .filter_map(|o| match o {
                TriggerOutput::Trailing(u) => Some((u.peak.0, u.stop.0)),
                _ => None,
            })
            .collect()
    };
    // Starts at the bid 100.0 with the stop 2.0 below.
    assert_eq!(trail(&out), vec![(1_000, 980)]);
    out.clear();
    // Up to 101.5: peak and stop move; back down to 100.0: nothing moves.
    t.on_market(FUT, px(1_015), px(1_016), None, &mut out);
    assert_eq!(trail(&out), vec![(1_015, 995)]);
    out.clear();
    t.on_market(FUT, px(1_000), px(1_001), None, &mut out);
    assert!(out.is_empty());
    assert_eq!(
        t.trailing(id).map(|u| (u.peak, u.stop)),
        Some((Price(1_015), Price(995)))
    );
    // A print at 99.5 fires it: a market sell of 0.200.
    t.on_market(FUT, None, None, px(995), &mut out);
    let cmds = commands(&out);
    let child = placed(&cmds[0]);
    assert_eq!(
        (child.side, child.order_type, child.qty, child.reduce_only),
        (OrderSide::Sell, OrderType::Market, Qty(200), true)
    );
    assert_eq!(
        states(&out),
        vec![(AdvancedState::Triggered, "stop_triggered")]
    );
    out.clear();
    t.on_market(FUT, px(900), px(901), None, &mut out);
    assert!(out.is_empty());

    // A buy trailing stop in basis points (protecting a short) trails the ask's trough.
    let buy = TrailingRequest {
        side: OrderSide::Buy,
        offset: TrailOffset::Bps(100),
        ..req
    };
    t.on_market(FUT, px(999), px(1_000), None, &mut out);
    let id2 = t.add_trailing(&buy, &mut out).unwrap();
    assert_eq!(trail(&out), vec![(1_000, 1_010)], "1% above 100.0");
    out.clear();
    t.on_market(FUT, px(949), px(950), None, &mut out);
    // 1% of 95.0 = 0.95 -> 0.9 (9 ticks, truncated): stop 95.9
    assert_eq!(trail(&out), vec![(950, 959)]);
    out.clear();
    t.on_market(FUT, px(958), px(959), None, &mut out);
    assert_eq!(placed(&commands(&out)[0]).side, OrderSide::Buy);
    assert_eq!(t.state(id2), Some(AdvancedState::Triggered));
    let id3 = t.add_trailing(&buy, &mut out).unwrap();
    out.clear();
    t.cancel(id3, &mut out).unwrap();
    t.on_market(FUT, px(2_000), px(2_000), None, &mut out);
    assert!(
        commands(&out).is_empty(),
        "a cancelled trailing stop never fires"
    );
    assert_eq!(
        t.add_trailing(
            &TrailingRequest {
                offset: TrailOffset::Bps(10_000),
                ..req
            },
            &mut out
        ),
        Err(TriggerError::Invalid(
            "quantity and offset must be positive (bps below 10 000)"
        ))
    );
}

#[test]
fn ten_thousand_quiet_orders_produce_nothing_and_cap_applies() {
    let mut t = Triggers::new(10_001);
    let mut out = Vec::new();
    t.on_market(FUT, px(10_000), px(10_001), None, &mut out);
    for i in 0..5_000i64 {
        t.add_oco(
            &OcoRequest {
                instrument: FUT,
                side: OrderSide::Sell,
                qty: Qty(1),
                legs: [
                    Leg::Trigger {
                        dir: TriggerDir::AtOrAbove,
                        trigger: Price(20_000 + i),
                        limit: None,
                    },
                    Leg::Trigger {
                        dir: TriggerDir::AtOrBelow,
                        trigger: Price(5_000 - i),
                        limit: None,
                    },
                ],
                reduce_only: false,
            },
            &mut out,
        )
        .unwrap();
        t.add_trailing(
            &TrailingRequest {
                instrument: FUT,
                side: OrderSide::Sell,
                qty: Qty(1),
                offset: TrailOffset::Absolute(Price(3_000 + i)),
                reduce_only: false,
            },
            &mut out,
        )
        .unwrap();
    }
    assert_eq!(t.len(), 10_000);
    out.clear();
    for p in [9_990, 9_995, 10_000, 9_500] {
        t.on_market(FUT, px(p), px(p + 1), px(p), &mut out);
    }
    assert!(out.is_empty());
    t.add_trailing(
        &TrailingRequest {
            instrument: FUT,
            side: OrderSide::Sell,
            qty: Qty(1),
            offset: TrailOffset::Absolute(Price(1)),
            reduce_only: false,
        },
        &mut out,
    )
    .unwrap();
    assert_eq!(
        t.add_trailing(
            &TrailingRequest {
                instrument: FUT,
                side: OrderSide::Sell,
                qty: Qty(1),
                offset: TrailOffset::Absolute(Price(1)),
                reduce_only: false
            },
            &mut out
        ),
        Err(TriggerError::Full(10_001))
    );
    // A new high moves all 5 001 trailing peaks: one update each.
    out.clear();
    t.on_market(FUT, px(10_100), px(10_101), None, &mut out);
    assert_eq!(out.len(), 5_001);
    let _ = AdvancedId(0);
}
