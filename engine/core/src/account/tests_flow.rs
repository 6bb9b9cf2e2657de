//! Whole-account flows: the paper venue's fill model, external gateway commands, venue
//! user data through the same path, advanced orders end to end, and [`Accounts`] routing.

use super::kinds::{ExecType, OrderSide::*, OrderStatus, OrderType, TimeInForce};
use super::money::Money;
use super::paper::{PaperConfig, PaperVenue};
use super::tests::*;
use super::tests_userdata::{registry, SPOT_NEW, SPOT_POSITION, SPOT_TRADE, USDM_ACCOUNT};
use super::*;
use crate::book::OrderBook;
use crate::fixed::{Decimal, Price, Qty};
use crate::instrument::Market;
use crate::msg::Side;

fn statuses(ev: &[AccountEvent]) -> Vec<(String, OrderStatus, i64)> {
    ev.iter()
        .filter_map(|e| match e {
            AccountEvent::Order(u) => Some((
                u.order.client_order_id.to_string(),
                u.order.status,
                u.order.filled.0,
            )),
            _ => None,
        })
        .collect()
}

fn book() -> OrderBook {
    // Asks 100.0 x 0.500, 100.1 x 1.000; bids 99.9 x 0.800, 99.8 x 2.000.
    let mut b = OrderBook::new();
    b.apply(Side::Ask, Price(1_000), Qty(500));
    b.apply(Side::Ask, Price(1_001), Qty(1_000));
    b.apply(Side::Bid, Price(999), Qty(800));
    b.apply(Side::Bid, Price(998), Qty(2_000));
    b
}

#[test]
fn paper_market_order_walks_the_book_and_updates_position_and_fees() {
    let mut a = paper_account();
    a.handle_book(t(1), FUT, &book(), None);
    drain(&mut a);
    let id = a
        .place(t(2), req(Buy, OrderType::Market, 1_200, 0))
        .unwrap();
    assert_eq!(id.as_str(), "tp-o1");
    let ev = drain(&mut a);
    assert_eq!(
        statuses(&ev),
        vec![
            ("tp-o1".into(), OrderStatus::PendingNew, 0),
            ("tp-o1".into(), OrderStatus::New, 0),
            ("tp-o1".into(), OrderStatus::PartiallyFilled, 500),
            ("tp-o1".into(), OrderStatus::Filled, 1_200),
        ]
    );
    let o = a.order(&id).unwrap();
    // 0.5 @ 100.0 + 0.7 @ 100.1 = 120.07 / 1.2 = 100.058 -> 100.1
    assert_eq!(o.avg_price(), Some(Price(1_001)));
    // Taker 4 bps: 50.00 -> 0.02, 70.07 -> 0.028028; 0.048028 USDT in all.
    assert_eq!(o.fees, Money(4_802_800));
    let p = a.position(FUT).unwrap();
    assert_eq!((p.qty, p.fees), (Qty(1_200), Money(4_802_800)));
    assert_eq!(
        a.balances().get(&usdt()).unwrap().fees_paid,
        Money(4_802_800)
    );
    // Mid (99.9 + 100.0) / 2 = 99.95 -> 99.9 marks it: 1.2 × 99.9 − 120.07 = −0.19.
    assert_eq!(p.mark, Some(Price(999)));
    assert_eq!(p.unrealized_pnl(), Ok(Money(-19_000_000)));
    let pf = ev.iter().rev().find_map(|e| match e {
        AccountEvent::Portfolio(p) => Some(*p),
        _ => None,
    });
    let pf = pf.unwrap();
    assert_eq!((pf.open_positions, pf.realized_pnl), (1, Money(-4_802_800)));
    // The liquidity taken is gone until the next book: another 0.5 buy fills at 100.1.
    // Only 0.3 is left (at 100.1): the rest of a 0.5 market buy expires.
    let id2 = a.place(t(3), req(Buy, OrderType::Market, 500, 0)).unwrap();
    let o2 = a.order(&id2).unwrap();
    assert_eq!((o2.status, o2.filled), (OrderStatus::Expired, Qty(300)));
    assert_eq!(
        a.position(FUT).unwrap().cost_raw(),
        1_000 * 500 + 1_001 * 700 + 1_001 * 300
    );
}

#[test]
fn paper_limit_orders_rest_and_fill_on_trades_and_book_moves() {
    let mut a = paper_account();
    a.handle_book(t(1), FUT, &book(), None);
    // Buy 1.000 @ 99.5 rests (best ask 100.0).
    let id = a
        .place(t(2), req(Buy, OrderType::Limit, 1_000, 995))
        .unwrap();
    assert_eq!(a.order(&id).unwrap().status, OrderStatus::New);
    assert_eq!(a.paper().unwrap().resting_count(), 1);
    drain(&mut a);
    // A trade at exactly 99.5 does not fill it (no queue model); one through it does, up to
    // the trade's quantity, at the order's price, as maker (2 bps).
    a.handle_market(t(3), FUT, None, None, Some(lvl(995, 300)));
    assert_eq!(a.order(&id).unwrap().filled, Qty(0));
    a.handle_market(t(4), FUT, None, None, Some(lvl(994, 300)));
    let o = *a.order(&id).unwrap();
    assert_eq!(
        (o.filled, o.status, o.avg_price()),
        (Qty(300), OrderStatus::PartiallyFilled, Some(Price(995)))
    );
    // 0.3 × 99.5 = 29.85 × 2 bps = 0.00597
    assert_eq!(o.fees, Money(597_000));
    // The ask drops to 99.4 with 2.0: the rest fills.
    a.handle_market(t(5), FUT, Some(lvl(990, 100)), Some(lvl(994, 2_000)), None);
    assert_eq!(a.order(&id).unwrap().status, OrderStatus::Filled);
    assert_eq!(a.paper().unwrap().resting_count(), 0);
    // Cancel a resting order; cancelling again is refused by the order table.
    let id2 = a
        .place(t(6), req(Sell, OrderType::Limit, 100, 1_200))
        .unwrap();
    drain(&mut a);
    a.cancel(t(7), &id2).unwrap();
    assert_eq!(
        statuses(&drain(&mut a)),
        vec![
            (id2.to_string(), OrderStatus::PendingCancel, 0),
            (id2.to_string(), OrderStatus::Canceled, 0)
        ]
    );
    assert!(matches!(
        a.cancel(t(8), &id2),
        Err(Reject::Order(OrderError::InvalidTransition { .. }))
    ));
}

#[test]
fn paper_time_in_force_and_post_only_rules() {
    let info = info(FUT);
    let mut p = PaperVenue::new(PaperConfig::default());
    p.set_book(FUT, &book());
    let run = |p: &mut PaperVenue, o: NewOrder| -> Vec<(ExecType, i64)> {
        let mut out = Vec::new();
        p.submit(t(1), &OrderCommand::Place(o), &info, &mut out)
            .unwrap();
        out.iter()
            .map(|e| match e {
                UserEvent::Execution(r) => (r.exec_type, r.last_qty.0),
                _ => panic!(),
            })
            .collect()
    };
    let buy = |id: &str, ty, tif, qty, price| NewOrder {
        order_type: ty,
        time_in_force: tif,
        qty: Qty(qty),
        price: Price(price),
        ..new_order(id)
    };
    // IOC buy 1.0 @ 100.0: takes 0.5, the rest expires.
    assert_eq!(
        run(
            &mut p,
            buy("i", OrderType::Limit, TimeInForce::Ioc, 1_000, 1_000)
        ),
        vec![
            (ExecType::New, 0),
            (ExecType::Trade, 500),
            (ExecType::Expired, 0)
        ]
    );
    // FOK buy 2.0 @ 100.1: only 1.0 is available -> nothing fills.
    assert_eq!(
        run(
            &mut p,
            buy("f", OrderType::Limit, TimeInForce::Fok, 2_000, 1_001)
        ),
        vec![(ExecType::New, 0), (ExecType::Expired, 0)]
    );
    // Post-only crossing: LIMIT_MAKER rejected, GTX expired.
    assert_eq!(
        run(
            &mut p,
            buy("m", OrderType::LimitMaker, TimeInForce::Gtc, 100, 1_001)
        ),
        vec![(ExecType::Rejected, 0)]
    );
    assert_eq!(
        run(
            &mut p,
            buy("x", OrderType::Limit, TimeInForce::Gtx, 100, 1_001)
        ),
        vec![(ExecType::New, 0), (ExecType::Expired, 0)]
    );
    // Stops are tape-managed triggers, not paper orders.
    assert_eq!(
        run(
            &mut p,
            NewOrder {
                order_type: OrderType::StopMarket,
                stop_price: Price(900),
                ..new_order("s")
            }
        ),
        vec![(ExecType::Rejected, 0)]
    );
    // Market sell into an empty bid side expires.
    p.set_top(FUT, None, None);
    assert_eq!(
        run(
            &mut p,
            NewOrder {
                side: Sell,
                order_type: OrderType::Market,
                ..new_order("e")
            }
        ),
        vec![(ExecType::New, 0), (ExecType::Expired, 0)]
    );
    let mut out = Vec::new();
    assert!(p
        .submit(
            t(1),
            &OrderCommand::Cancel {
                instrument: FUT,
                client_order_id: cid("nope"),
                venue_order_id: None
            },
            &info,
            &mut out
        )
        .is_err());
}

#[test]
fn external_gateway_emits_commands_and_takes_venue_reports() {
    let mut a = external_account();
    a.handle_market(t(1), FUT, Some(lvl(999, 1)), Some(lvl(1_000, 1)), None);
    let n = OrderRequest {
        client_order_id: Some(cid("my-1")),
        ..req(Buy, OrderType::Limit, 1_000, 1_000)
    };
    a.place(t(2), n).unwrap();
    let ev = drain(&mut a);
    assert!(
        matches!(ev[1], AccountEvent::Command(OrderCommand::Place(o)) if o.client_order_id == cid("my-1"))
    );
    assert_eq!(
        a.place(
            t(2),
            OrderRequest {
                client_order_id: Some(cid("tp-o9")),
                ..n
            }
        ),
        Err(Reject::ReservedId(cid("tp-o9")))
    );
    assert!(matches!(
        a.place(t(2), n),
        Err(Reject::Order(OrderError::DuplicateClientId(_)))
    ));
    a.handle_user_event(
        t(3),
        UserEvent::Execution(report("my-1", ExecType::New, OrderStatus::New)),
    )
    .unwrap();
    // A report the state machine refuses is an error and changes nothing.
    let e = a
        .handle_user_event(
            t(4),
            UserEvent::Execution(fill("my-1", 5_000, 5_000, 1_000)),
        )
        .unwrap_err();
    assert!(matches!(
        e,
        AccountError::Order(OrderError::Overfill { .. })
    ));
    assert!(a.position(FUT).is_none());
    a.cancel(t(5), &cid("my-1")).unwrap();
    let ev = drain(&mut a);
    assert!(matches!(
        ev.last(),
        Some(AccountEvent::Command(OrderCommand::Cancel {
            venue_order_id: Some(42),
            ..
        }))
    ));
    a.cancel_rejected(t(6), &cid("my-1")).unwrap();
    assert_eq!(a.order(&cid("my-1")).unwrap().status, OrderStatus::New);
    let unknown = UserEvent::Execution(ExecutionReportExt::on(
        report("x", ExecType::New, OrderStatus::New),
        InstrumentId(9),
    ));
    assert_eq!(
        a.handle_user_event(t(7), unknown),
        Err(AccountError::UnknownInstrument(InstrumentId(9)))
    );
    a.place(
        t(8),
        OrderRequest {
            client_order_id: Some(cid("my-2")),
            ..n
        },
    )
    .unwrap();
    a.order_rejected(t(9), &cid("my-2")).unwrap();
    assert_eq!(a.order(&cid("my-2")).unwrap().status, OrderStatus::Rejected);
}

/// Builder shortcut for reports on another instrument.
struct ExecutionReportExt;
impl ExecutionReportExt {
    fn on(mut r: event::ExecutionReport, i: InstrumentId) -> event::ExecutionReport {
        r.instrument = i;
        r
    }
}

#[test]
fn venue_user_data_takes_the_same_path() {
    let reg = registry();
    let mut accts = Accounts::default();
    accts
        .add_instrument(InstrumentInfo::from_registry(&reg, SPOT).unwrap())
        .unwrap();
    accts
        .add_instrument(InstrumentInfo::from_registry(&reg, FUT).unwrap())
        .unwrap();
    let mut bad = info(FUT);
    bad.qty_scale = 19;
    assert_eq!(
        accts.add_instrument(bad),
        Err(Reject::InvalidInstrument(FUT))
    );
    accts
        .add_user(
            "alice",
            AccountConfig {
                gateway: Gateway::External,
                ..AccountConfig::default()
            },
        )
        .unwrap();
    accts.add_user("bob", AccountConfig::default()).unwrap();
    assert!(matches!(
        accts.add_user("alice", AccountConfig::default()),
        Err(AccountsError::DuplicateUser(_))
    ));
    assert!(matches!(
        accts.add_user("bad user", AccountConfig::default()),
        Err(AccountsError::InvalidUser(_))
    ));
    for f in [SPOT_NEW, SPOT_TRADE, SPOT_POSITION, USDM_ACCOUNT] {
        accts
            .handle_user_data(t(1), "alice", f.as_bytes(), Market::UsdM, &reg)
            .unwrap();
    }
    assert!(matches!(
        accts.handle_user_data(t(1), "alice", b"{}", Market::UsdM, &reg),
        Err(AccountsError::Decode(_, _))
    ));
    assert!(matches!(
        accts.handle_user_data(t(1), "carol", SPOT_NEW.as_bytes(), Market::UsdM, &reg),
        Err(AccountsError::UnknownUser(_))
    ));
    let alice = accts.user("alice").unwrap();
    // The spot order was adopted, acknowledged and partly filled: 0.01 BTC bought at 61800.10
    // with the fee in BTC (the base asset): recorded in the ledger, not in PnL.
    let o = alice.order(&cid("tape-demo-1")).unwrap();
    assert_eq!(
        (o.status, o.filled),
        (OrderStatus::PartiallyFilled, Qty(1_000))
    );
    let p = alice.position(SPOT).unwrap();
    assert_eq!(
        (p.qty, p.fees, p.realized_pnl()),
        (Qty(1_000), Money::ZERO, Ok(Money::ZERO))
    );
    let btc = Asset::new("BTC").unwrap();
    assert_eq!(alice.balances().get(&btc).unwrap().fees_paid, Money(1_000));
    assert_eq!(alice.balances().get(&btc).unwrap().free, Money(50_999_000));
    // ACCOUNT_UPDATE: USD-M wallet and the venue's one-way position are adopted.
    assert_eq!(
        alice.balances().get(&usdt()).unwrap().free,
        Money(1_001_250_000_000)
    );
    let fp = alice.position(FUT).unwrap();
    assert_eq!(
        (fp.qty, fp.avg_entry_price(), fp.venue_unrealized),
        (Qty(-250), Some(Price(618_500)), Some(Money(-125_000_000)))
    );
    assert_eq!(alice.portfolio().total_balance, Money(1_001_250_000_000));
    // Events come out per user, in user-id order, each user's oldest first.
    let mut users = Vec::new();
    while let Some((u, _)) = accts.poll_event() {
        users.push(u.to_string());
    }
    assert!(!users.is_empty() && users.iter().all(|u| u == "alice"));
    // Market data reaches every account; bob's paper order fills on it.
    accts.handle_market(
        t(2),
        FUT,
        Some(lvl(999, 1_000)),
        Some(lvl(1_000, 1_000)),
        None,
    );
    accts
        .place(t(3), "bob", req(Buy, OrderType::Market, 100, 0))
        .unwrap();
    assert_eq!(
        accts.user("bob").unwrap().position(FUT).unwrap().qty,
        Qty(100)
    );
    // alice's events (her position was re-marked) come before bob's.
    let (mut seen_bob, mut bob_orders) = (false, 0);
    while let Some((u, e)) = accts.poll_event() {
        if u.as_str() == "bob" {
            seen_bob = true;
            bob_orders += usize::from(matches!(e, AccountEvent::Order(_)));
        } else {
            assert!(!seen_bob, "user-id order");
        }
    }
    assert_eq!(bob_orders, 3, "pending, new, filled");
    assert!(accts.poll_event().is_none());
    assert!(matches!(
        accts.cancel(t(4), "bob", &cid("nope")),
        Err(AccountsError::Reject(_, _))
    ));
}

#[test]
fn bracket_through_the_paper_venue_end_to_end() {
    let mut a = paper_account();
    a.handle_book(t(1), FUT, &book(), None);
    // Buy 0.800 @ 100.0 (0.5 available there -> partial), TP 101.0, SL 99.0.
    let entry = req(Buy, OrderType::Limit, 800, 1_000);
    let (eid, bid) = a
        .place_bracket(
            t(2),
            entry,
            BracketRequest {
                take_profit: Price(1_010),
                stop_loss: Price(990),
                reduce_only: false,
            },
        )
        .unwrap();
    assert_eq!(a.order(&eid).unwrap().filled, Qty(500));
    assert_eq!(
        a.triggers().state(bid),
        Some(triggers::AdvancedState::Armed)
    );
    drain(&mut a);
    // The bid falls to 98.9: the stop-loss sends a market sell of 0.500 (the filled part),
    // which the paper venue fills against the bid; the entry's rest is cancelled.
    let mut b2 = OrderBook::new();
    b2.apply(Side::Bid, Price(989), Qty(5_000));
    b2.apply(Side::Ask, Price(1_005), Qty(5_000));
    a.handle_book(t(3), FUT, &b2, None);
    let ev = drain(&mut a);
    let st = statuses(&ev);
    assert!(
        st.contains(&("tp-a1-1".into(), OrderStatus::Filled, 500)),
        "{st:?}"
    );
    assert!(
        st.contains(&(eid.to_string(), OrderStatus::Canceled, 500)),
        "{st:?}"
    );
    let p = a.position(FUT).unwrap();
    // Realized: 0.5 × (98.9 − 100.0) = −0.55, minus taker fees 0.02 + 0.019780.
    assert_eq!(p.qty, Qty(0));
    assert_eq!(
        p.realized_pnl(),
        Ok(Money(-55_000_000 - 2_000_000 - 1_978_000))
    );
    assert_eq!(a.triggers().state(bid), None, "done");
    assert!(ev.iter().any(
        |e| matches!(e, AccountEvent::Advanced(u) if u.state == triggers::AdvancedState::Done)
    ));
}

#[test]
fn oco_and_trailing_through_the_account_with_risk() {
    let mut cfg = AccountConfig::default();
    cfg.risk.max_order_qty = Some(Decimal {
        mantissa: 1,
        scale: 0,
    });
    cfg.risk.max_drawdown = Some(Money(1_00000000));
    let mut a = account(cfg);
    a.handle_book(t(1), FUT, &book(), None);
    let big = a
        .place(t(2), req(Buy, OrderType::Market, 1_001, 0))
        .unwrap_err();
    assert!(matches!(big, Reject::Risk(ref r) if r.0.kind == RiskKind::OrderQty));
    assert!(matches!(drain(&mut a).as_slice(), [AccountEvent::Risk(_)]));
    a.place(t(2), req(Buy, OrderType::Market, 1_000, 0))
        .unwrap();
    // A trailing stop protecting the long (0.3 below the peak) and an OCO with a resting
    // take-profit.
    let tid = a
        .place_trailing(
            t(3),
            TrailingRequest {
                instrument: FUT,
                side: Sell,
                qty: Qty(400),
                offset: TrailOffset::Absolute(Price(3)),
                reduce_only: true,
            },
        )
        .unwrap();
    let oid = a
        .place_oco(
            t(3),
            OcoRequest {
                instrument: FUT,
                side: Sell,
                qty: Qty(600),
                legs: [
                    Leg::Limit {
                        price: Price(1_050),
                    },
                    Leg::Trigger {
                        dir: TriggerDir::AtOrBelow,
                        trigger: Price(950),
                        limit: None,
                    },
                ],
                reduce_only: true,
            },
        )
        .unwrap();
    assert_eq!(
        a.paper().unwrap().resting_count(),
        1,
        "the take-profit rests at the paper venue"
    );
    drain(&mut a);
    // The market rallies to 101.0 / 101.1: the trailing peak moves to 101.0.
    a.handle_market(
        t(4),
        FUT,
        Some(lvl(1_010, 5_000)),
        Some(lvl(1_011, 5_000)),
        None,
    );
    let ev = drain(&mut a);
    assert!(ev.iter().any(|e| matches!(e, AccountEvent::Trailing(u) if u.id == tid && u.peak == Price(1_010) && u.stop == Price(1_007))));
    // A trade print at 105.1 fills the OCO's take-profit (a trade through 105.0); the stop
    // leg is dropped. The same print raises the trailing peak to 105.1 (stop 104.8) while the
    // bid is still 101.0, so the trailing stop fires too and sells 0.4 at the 101.0 bid.
    a.handle_market(t(5), FUT, None, None, Some(lvl(1_051, 600)));
    let ev = drain(&mut a);
    assert!(ev.iter().any(|e| matches!(e, AccountEvent::Trailing(u) if u.peak == Price(1_051) && u.stop == Price(1_048))));
    assert_eq!(a.triggers().state(oid), None, "OCO done");
    assert_eq!(a.triggers().state(tid), None, "trailing stop done");
    assert_eq!(a.position(FUT).unwrap().qty, Qty(0));
    // PnL: bought 0.5 @ 100.0 + 0.5 @ 100.1; sold 0.6 @ 105.0 and 0.4 @ 101.0:
    // 63.0 + 40.4 − 100.05 = 3.35 gross.
    assert_eq!(a.position(FUT).unwrap().realized_raw(), 33_500);
    a.handle_market(
        t(6),
        FUT,
        Some(lvl(900, 5_000)),
        Some(lvl(901, 5_000)),
        None,
    );
    assert!(
        !drain(&mut a)
            .iter()
            .any(|e| matches!(e, AccountEvent::Order(_))),
        "nothing left to fire"
    );
    assert!(a.cancel_advanced(t(7), tid).is_err());
}
