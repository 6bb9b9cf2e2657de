//! The order state machine: valid and invalid transitions, history, average price, and a
//! proptest that the filled quantity never exceeds the original quantity.

use proptest::prelude::*;

use super::kinds::{ExecType, OrderStatus};
use super::orders::{OrderError, Orders, OrdersConfig};
use super::tests::*;
use crate::fixed::{Price, Qty};
use crate::input::Nanos;

const PS: u8 = 1;
const QS: u8 = 3;

fn pending(o: &mut Orders, id: &str) {
    o.insert_pending(Nanos(1), &new_order(id), PS, QS).unwrap();
}

#[test]
fn pending_new_ack_partial_fill_filled() {
    let mut o = Orders::default();
    pending(&mut o, "a");
    assert_eq!(o.get(&cid("a")).unwrap().status, OrderStatus::PendingNew);
    let ack = o
        .apply(
            Nanos(2),
            &report("a", ExecType::New, OrderStatus::New),
            PS,
            QS,
        )
        .unwrap()
        .unwrap();
    assert_eq!(
        (ack.order.status, ack.order.venue_order_id),
        (OrderStatus::New, Some(42))
    );
    // A repeated ack changes nothing.
    assert_eq!(
        o.apply(
            Nanos(3),
            &report("a", ExecType::New, OrderStatus::New),
            PS,
            QS
        ),
        Ok(None)
    );
    // 0.400 @ 100.0 then 0.600 @ 101.0: avg = (400·1000 + 600·1010) / 1000 = 1006 -> 100.6
    let f1 = o
        .apply(Nanos(4), &fill("a", 400, 400, 1_000), PS, QS)
        .unwrap()
        .unwrap();
    assert_eq!(f1.order.status, OrderStatus::PartiallyFilled);
    assert_eq!(f1.fill.unwrap().qty, Qty(400));
    assert_eq!(f1.order.avg_price(), Some(Price(1_000)));
    let f2 = o
        .apply(Nanos(5), &fill("a", 600, 1_000, 1_010), PS, QS)
        .unwrap()
        .unwrap();
    assert_eq!(f2.order.status, OrderStatus::Filled);
    assert_eq!(f2.order.avg_price(), Some(Price(1_006)));
    assert_eq!(f2.order.remaining(), Qty::ZERO);
    assert_eq!((o.open_count(), o.history_len()), (0, 1));
    assert_eq!(o.by_venue_id(42).unwrap().status, OrderStatus::Filled);
}

#[test]
fn average_price_rounds_half_away_from_zero() {
    let mut o = Orders::default();
    pending(&mut o, "a");
    // 0.001 @ 100.1 + 0.002 @ 100.0 = 3001 / 3 = 1000.33 -> 1000
    o.apply(Nanos(1), &fill("a", 1, 1, 1_001), PS, QS).unwrap();
    o.apply(Nanos(1), &fill("a", 2, 3, 1_000), PS, QS).unwrap();
    assert_eq!(o.get(&cid("a")).unwrap().avg_price(), Some(Price(1_000)));
    pending(&mut o, "b");
    // 0.001 @ 100.1 + 0.001 @ 100.0 = 1000.5 -> 1001
    let b = |r: super::event::ExecutionReport| super::event::ExecutionReport {
        client_order_id: cid("b"),
        order_id: 43,
        ..r
    };
    o.apply(Nanos(1), &b(fill("b", 1, 1, 1_001)), PS, QS)
        .unwrap();
    o.apply(Nanos(1), &b(fill("b", 1, 2, 1_000)), PS, QS)
        .unwrap();
    assert_eq!(o.get(&cid("b")).unwrap().avg_price(), Some(Price(1_001)));
}

#[test]
fn invalid_transitions_are_errors_and_change_nothing() {
    let mut o = Orders::default();
    pending(&mut o, "a");
    o.apply(
        Nanos(1),
        &report("a", ExecType::New, OrderStatus::New),
        PS,
        QS,
    )
    .unwrap();
    // Reject after the venue accepted the order.
    assert_eq!(
        o.apply(
            Nanos(1),
            &report("a", ExecType::Rejected, OrderStatus::Rejected),
            PS,
            QS
        ),
        Err(OrderError::InvalidTransition {
            client_order_id: cid("a"),
            from: OrderStatus::New,
            event: "rejected"
        })
    );
    // Overfill: 1.001 on a 1.000 order.
    assert_eq!(
        o.apply(Nanos(1), &fill("a", 1_001, 1_001, 1_000), PS, QS),
        Err(OrderError::Overfill {
            client_order_id: cid("a"),
            filled: Qty(0),
            last: Qty(1_001),
            qty: Qty(1_000)
        })
    );
    o.apply(Nanos(1), &fill("a", 300, 300, 1_000), PS, QS)
        .unwrap();
    // The same fill again.
    assert_eq!(
        o.apply(Nanos(1), &fill("a", 300, 300, 1_000), PS, QS),
        Err(OrderError::DuplicateFill {
            client_order_id: cid("a"),
            cum_qty: Qty(300)
        })
    );
    // A missed fill: cum says 0.900 but 0.300 + 0.100 is 0.400.
    assert_eq!(
        o.apply(Nanos(1), &fill("a", 100, 900, 1_000), PS, QS),
        Err(OrderError::CumQtyMismatch {
            client_order_id: cid("a"),
            expected: Qty(400),
            got: Qty(900)
        })
    );
    assert!(matches!(
        o.apply(Nanos(1), &fill("a", 0, 300, 1_000), PS, QS),
        Err(OrderError::BadFill { .. })
    ));
    let before = *o.get(&cid("a")).unwrap();
    assert_eq!(
        (before.filled, before.status),
        (Qty(300), OrderStatus::PartiallyFilled)
    );
    // Cancel, then a late fill and a late ack: the terminal order is recognised.
    o.apply(
        Nanos(2),
        &report("a", ExecType::Canceled, OrderStatus::Canceled),
        PS,
        QS,
    )
    .unwrap();
    assert_eq!(
        o.apply(Nanos(3), &fill("a", 100, 400, 1_000), PS, QS),
        Err(OrderError::InvalidTransition {
            client_order_id: cid("a"),
            from: OrderStatus::Canceled,
            event: "trade"
        })
    );
    assert_eq!(
        o.apply(
            Nanos(3),
            &report("a", ExecType::New, OrderStatus::New),
            PS,
            QS
        ),
        Err(OrderError::InvalidTransition {
            client_order_id: cid("a"),
            from: OrderStatus::Canceled,
            event: "new"
        })
    );
    assert_eq!(
        o.request_cancel(Nanos(3), &cid("a")),
        Err(OrderError::InvalidTransition {
            client_order_id: cid("a"),
            from: OrderStatus::Canceled,
            event: "cancel_request"
        })
    );
    assert_eq!(o.get(&cid("a")).unwrap().filled, Qty(300));
    // Filled -> New is refused too.
    pending(&mut o, "f");
    let f = |r: super::event::ExecutionReport| super::event::ExecutionReport {
        client_order_id: cid("f"),
        order_id: 7,
        ..r
    };
    o.apply(Nanos(1), &f(fill("f", 1_000, 1_000, 1_000)), PS, QS)
        .unwrap();
    assert_eq!(
        o.apply(
            Nanos(1),
            &f(report("f", ExecType::New, OrderStatus::New)),
            PS,
            QS
        ),
        Err(OrderError::InvalidTransition {
            client_order_id: cid("f"),
            from: OrderStatus::Filled,
            event: "new"
        })
    );
    // Unknown order cancel.
    assert_eq!(
        o.apply(
            Nanos(1),
            &super::event::ExecutionReport {
                order_id: 99,
                ..report("zz", ExecType::Canceled, OrderStatus::Canceled)
            },
            PS,
            QS
        ),
        Err(OrderError::UnknownOrder {
            client_order_id: cid("zz"),
            order_id: Some(99)
        })
    );
    assert_eq!(
        o.insert_pending(Nanos(1), &new_order("a"), PS, QS),
        Err(OrderError::DuplicateClientId(cid("a")))
    );
    let mut bad = new_order("q");
    bad.qty = Qty(0);
    assert!(matches!(
        o.insert_pending(Nanos(1), &bad, PS, QS),
        Err(OrderError::BadOrder { .. })
    ));
}

#[test]
fn cancel_request_reject_and_pending_cancel_fills() {
    let mut o = Orders::default();
    pending(&mut o, "a");
    o.apply(
        Nanos(1),
        &report("a", ExecType::New, OrderStatus::New),
        PS,
        QS,
    )
    .unwrap();
    assert_eq!(
        o.request_cancel(Nanos(2), &cid("a")).unwrap().status,
        OrderStatus::PendingCancel
    );
    assert!(matches!(
        o.request_cancel(Nanos(2), &cid("a")),
        Err(OrderError::InvalidTransition { .. })
    ));
    // A fill while the cancel is in flight keeps it pending cancel.
    let f = o
        .apply(Nanos(3), &fill("a", 200, 200, 1_000), PS, QS)
        .unwrap()
        .unwrap();
    assert_eq!(f.order.status, OrderStatus::PendingCancel);
    // The venue refuses the cancel: back to PartiallyFilled (it was New, but has filled since).
    assert_eq!(
        o.cancel_rejected(Nanos(4), &cid("a")).unwrap().status,
        OrderStatus::PartiallyFilled
    );
    assert!(o.cancel_rejected(Nanos(4), &cid("a")).is_err());
    // Spot-style cancel: `c` is the cancel request's id, `C` the original; venue id resolves.
    o.request_cancel(Nanos(5), &cid("a")).unwrap();
    let mut x = report("cxl-1", ExecType::Canceled, OrderStatus::Canceled);
    x.orig_client_order_id = Some(cid("a"));
    x.order_id = 1_000_000;
    let done = o.apply(Nanos(6), &x, PS, QS).unwrap().unwrap();
    assert_eq!(
        (done.order.client_order_id, done.order.status),
        (cid("a"), OrderStatus::Canceled)
    );
    // Reject of a pending order; and of a pending-cancel order that was never acknowledged.
    pending(&mut o, "r");
    let r = |x: super::event::ExecutionReport| super::event::ExecutionReport {
        client_order_id: cid("r"),
        order_id: 8,
        ..x
    };
    assert_eq!(
        o.apply(
            Nanos(1),
            &r(report("r", ExecType::Rejected, OrderStatus::Rejected)),
            PS,
            QS
        )
        .unwrap()
        .unwrap()
        .order
        .status,
        OrderStatus::Rejected
    );
    pending(&mut o, "s");
    o.request_cancel(Nanos(1), &cid("s")).unwrap();
    let s = |x: super::event::ExecutionReport| super::event::ExecutionReport {
        client_order_id: cid("s"),
        order_id: 9,
        ..x
    };
    assert_eq!(
        o.apply(
            Nanos(1),
            &s(report("s", ExecType::Rejected, OrderStatus::Rejected)),
            PS,
            QS
        )
        .unwrap()
        .unwrap()
        .order
        .status,
        OrderStatus::Rejected
    );
    pending(&mut o, "g");
    assert_eq!(
        o.reject_pending(Nanos(1), &cid("g")).unwrap().status,
        OrderStatus::Rejected
    );
}

#[test]
fn orders_from_elsewhere_are_adopted_and_history_is_bounded() {
    let mut o = Orders::new(OrdersConfig {
        max_live: 2,
        history: 2,
    });
    // NEW of an order tape never placed (entered on the website).
    let adopted = o
        .apply(
            Nanos(1),
            &report("web_1", ExecType::New, OrderStatus::New),
            PS,
            QS,
        )
        .unwrap()
        .unwrap();
    assert_eq!(adopted.order.status, OrderStatus::New);
    pending(&mut o, "b");
    assert_eq!(
        o.insert_pending(Nanos(1), &new_order("c"), PS, QS),
        Err(OrderError::Full(2))
    );
    let mut x = report("web_2", ExecType::New, OrderStatus::New);
    x.order_id = 77;
    assert_eq!(o.apply(Nanos(1), &x, PS, QS), Err(OrderError::Full(2)));
    // Expire three orders; only the last two stay in the history.
    for (i, id) in ["web_1", "b"].into_iter().enumerate() {
        let mut x = report(id, ExecType::Expired, OrderStatus::Expired);
        x.order_id = 42 + i as u64 * 1000;
        o.apply(Nanos(2), &x, PS, QS).unwrap();
    }
    pending(&mut o, "c");
    let mut x = report("c", ExecType::Expired, OrderStatus::Expired);
    x.order_id = 5;
    o.apply(Nanos(3), &x, PS, QS).unwrap();
    assert_eq!(o.history_len(), 2);
    assert!(o.get(&cid("web_1")).is_none(), "oldest forgotten");
    assert!(o.by_venue_id(42).is_none());
    let mut late = report("web_1", ExecType::Canceled, OrderStatus::Canceled);
    late.order_id = 4242;
    assert!(matches!(
        o.apply(Nanos(4), &late, PS, QS),
        Err(OrderError::UnknownOrder { .. })
    ));
}

#[derive(Debug, Clone)]
enum Op {
    Fill {
        last: i64,
        cum_delta: i64,
        price: i64,
    },
    Cancel,
    Ack,
    CancelRequest,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (-5i64..700, -300i64..300, 1i64..5_000).prop_map(|(last, cum_delta, price)| Op::Fill { last, cum_delta, price }),
        1 => Just(Op::Cancel),
        1 => Just(Op::Ack),
        1 => Just(Op::CancelRequest),
    ]
}

proptest! {
    /// Whatever the venue sends, the filled quantity never exceeds the original quantity,
    /// cumulative quote stays Σ price × qty of accepted fills, and refused events change
    /// nothing.
    #[test]
    fn filled_never_exceeds_orig_qty(ops in prop::collection::vec(op(), 1..60), qty in 1i64..3_000) {
        let mut o = Orders::default();
        let mut n = new_order("p");
        n.qty = Qty(qty);
        o.insert_pending(Nanos(0), &n, PS, QS).unwrap();
        let mut quote: i128 = 0;
        for op in ops {
            let before = *o.get(&cid("p")).unwrap();
            let mut r = match op {
                Op::Fill { last, cum_delta, price } => {
                    // Usually consistent, sometimes a duplicate or a gap.
                    let cum = before.filled.0 + last + if cum_delta.abs() < 200 { 0 } else { cum_delta };
                    fill("p", last, cum, price)
                }
                Op::Cancel => report("p", ExecType::Canceled, OrderStatus::Canceled),
                Op::Ack => report("p", ExecType::New, OrderStatus::New),
                Op::CancelRequest => {
                    let _ = o.request_cancel(Nanos(1), &cid("p"));
                    continue;
                }
            };
            r.qty = Qty(qty);
            match o.apply(Nanos(1), &r, PS, QS) {
                Ok(Some(a)) => {
                    if let Some(f) = a.fill {
                        quote += i128::from(f.price.0) * i128::from(f.qty.0);
                    }
                }
                Ok(None) => prop_assert_eq!(*o.get(&cid("p")).unwrap(), before),
                Err(_) => prop_assert_eq!(*o.get(&cid("p")).unwrap(), before),
            }
            let now = *o.get(&cid("p")).unwrap();
            prop_assert!(now.filled.0 <= now.qty.0);
            prop_assert!(now.filled.0 >= 0);
            prop_assert_eq!(now.cum_quote_raw, quote);
            prop_assert_eq!(now.status == OrderStatus::Filled, now.filled == now.qty);
        }
    }
}
