//! The account core's hot paths: a fill's position and PnL update (target <= 200 ns), and
//! one market event evaluated against 10 000 resting advanced orders of which none fires
//! (target <= 1 µs); and order entry (`desk`): client command bytes -> risk -> venue request
//! bytes (target <= 2 µs per command), then the ack and updates rendered (<= 1 µs more).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tape_core::account::event::{ExecutionReport, UserEvent};
use tape_core::account::kinds::{ExecType, VenuePositionSide};
use tape_core::account::triggers::{Leg, OcoRequest, TrailingRequest, TriggerDir, Triggers};
use tape_core::account::{
    Account, AccountConfig, Asset, ClientOrderId, Gateway, InstrumentInfo, Money, OrderSide,
    OrderStatus, OrderType, Position, TimeInForce, TrailOffset,
};
use tape_core::fixed::{Price, Qty};
use tape_core::input::Nanos;
use tape_core::instrument::{InstrumentId, Market};
use tape_core::msg::Level;

const INST: InstrumentId = InstrumentId(0);
/// 60 000.0 at price scale 1.
const MID: i64 = 600_000;

/// Deterministic pseudo-random numbers (no clock, no RNG state shared with criterion).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        (self.0 >> 33) % n
    }
}

/// 4 096 fills around 60 000.0 of 0.001 to 0.500, both sides, so the position increases,
/// reduces, closes and flips.
fn fills() -> Vec<(OrderSide, Price, Qty)> {
    let mut r = Lcg(7);
    (0..4_096)
        .map(|_| {
            let side = if r.next(2) == 0 {
                OrderSide::Buy
            } else {
                OrderSide::Sell
            };
            let price = Price(MID - 500 + r.next(1_000) as i64);
            (side, price, Qty(1 + r.next(500) as i64))
        })
        .collect()
}

fn info() -> InstrumentInfo {
    InstrumentInfo {
        id: INST,
        market: Market::UsdM,
        price_scale: 1,
        qty_scale: 3,
        base_asset: Asset::new("BTC").ok(),
        quote_asset: Asset::new("USDT").ok(),
    }
}

/// A report on one of two huge orders, a buy (venue id 1) and a sell (venue id 2): an ack
/// when `cum` is zero, else a fill of `qty` bringing the filled quantity to `cum`.
fn fill_report(cum: i64, side: OrderSide, price: Price, qty: Qty) -> ExecutionReport {
    let (id, order_id) = match side {
        OrderSide::Buy => ("bench-buy", 1),
        OrderSide::Sell => ("bench-sell", 2),
    };
    ExecutionReport {
        market: Market::UsdM,
        instrument: INST,
        event_time_ms: 1,
        transact_time_ms: 1,
        client_order_id: ClientOrderId::new(id).unwrap(),
        orig_client_order_id: None,
        order_id,
        side,
        order_type: OrderType::Limit,
        time_in_force: TimeInForce::Gtc,
        qty: Qty(i64::MAX / 4),
        price,
        stop_price: Price(0),
        exec_type: if cum == 0 {
            ExecType::New
        } else {
            ExecType::Trade
        },
        status: if cum == 0 {
            OrderStatus::New
        } else {
            OrderStatus::PartiallyFilled
        },
        reject_reason: None,
        last_qty: if cum == 0 { Qty::ZERO } else { qty },
        cum_qty: Qty(cum),
        last_price: price,
        fee: Money(1_000),
        fee_asset: Asset::new("USDT").ok(),
        trade_id: Some(cum as u64),
        is_maker: true,
        reduce_only: false,
        position_side: VenuePositionSide::Both,
        venue_realized_pnl: None,
        venue_avg_price: None,
        cum_quote: None,
        order_time_ms: None,
        order_list_id: None,
    }
}

fn fill(c: &mut Criterion) {
    let fx = fills();
    let mut g = c.benchmark_group("account/fill");
    g.throughput(Throughput::Elements(1));

    // The position and PnL arithmetic alone: apply the fill, then the realized and
    // unrealized PnL a client would be sent.
    let mut p = Position::new(INST, 1, 3);
    p.quote_asset = Asset::new("USDT").ok();
    p.mark = Some(Price(MID));
    let mut i = 0usize;
    g.bench_function("position_pnl", |b| {
        b.iter(|| {
            let (side, price, qty) = fx[i];
            i = (i + 1) & 4_095;
            let e = p
                .apply_fill(side, black_box(price), black_box(qty), Money(1_000))
                .unwrap();
            black_box((e, p.realized_pnl().unwrap(), p.unrealized_pnl().unwrap()));
        })
    });

    // The whole account path of a venue fill report: order state machine, position, fee
    // ledger, risk, portfolio, triggers lookup, and draining the events it produces.
    let mut a = Account::new(AccountConfig {
        gateway: Gateway::External,
        ..AccountConfig::default()
    });
    a.add_instrument(info()).unwrap();
    for side in [OrderSide::Buy, OrderSide::Sell] {
        let ack = fill_report(0, side, Price(MID), Qty::ZERO);
        a.handle_user_event(Nanos(0), UserEvent::Execution(ack))
            .unwrap();
    }
    while a.poll_event().is_some() {}
    let mut cum = [0i64; 2];
    let mut j = 0usize;
    g.bench_function("account_fill_report", |b| {
        b.iter(|| {
            let (side, price, qty) = fx[j];
            j = (j + 1) & 4_095;
            // Fills alternate at random between the buy and the sell order, so the position
            // increases, reduces and flips as in `position_pnl`.
            let c = &mut cum[usize::from(side == OrderSide::Sell)];
            *c += qty.0;
            let r = fill_report(*c, side, price, qty);
            a.handle_user_event(Nanos(*c as u64), UserEvent::Execution(r))
                .unwrap();
            while let Some(e) = a.poll_event() {
                black_box(e);
            }
        })
    });
    g.finish();
}

fn lvl(p: i64) -> Option<Level> {
    Some(Level {
        price: Price(p),
        qty: Qty(1_000),
    })
}

/// 5 000 OCOs (two armed trigger legs each, far from the market) and 5 000 trailing stops
/// (half sell, half buy; absolute and bps offsets): 10 000 advanced orders.
fn requests() -> Vec<(OcoRequest, TrailingRequest)> {
    (0..5_000i64)
        .map(|k| {
            let side = if k % 2 == 0 {
                OrderSide::Sell
            } else {
                OrderSide::Buy
            };
            let oco = OcoRequest {
                instrument: INST,
                side,
                qty: Qty(1),
                legs: [
                    Leg::Trigger {
                        dir: TriggerDir::AtOrAbove,
                        trigger: Price(MID + 10_000 + k),
                        limit: None,
                    },
                    Leg::Trigger {
                        dir: TriggerDir::AtOrBelow,
                        trigger: Price(MID - 10_000 - k),
                        limit: None,
                    },
                ],
                reduce_only: false,
            };
            let trail = TrailingRequest {
                instrument: INST,
                side,
                qty: Qty(1),
                offset: if k % 3 == 0 {
                    TrailOffset::Bps(50 + k as u32 % 100)
                } else {
                    TrailOffset::Absolute(Price(2_000 + k))
                },
                reduce_only: false,
            };
            (oco, trail)
        })
        .collect()
}

/// Bid/ask oscillating inside the band where nothing fires, with a trade print every
/// fourth event.
fn quiet_events() -> Vec<(Option<Level>, Option<Level>, Option<Level>)> {
    let mut r = Lcg(11);
    (0..4_096)
        .map(|n| {
            let bid = MID - 40 + r.next(20) as i64;
            let trade = (n % 4 == 0).then(|| bid + r.next(2) as i64);
            (lvl(bid), lvl(bid + 1), trade.and_then(lvl))
        })
        .collect()
}

fn triggers(c: &mut Criterion) {
    let events = quiet_events();
    let mut g = c.benchmark_group("account/triggers_10k_quiet");
    g.throughput(Throughput::Elements(1));

    // Trailing stops are armed with the bid at 60 000.0 (sell peaks) and the ask at 59 995.9
    // (buy troughs); the events then keep the bid between 59 996.0 and 59 997.9 and the ask
    // one tick above, so no sell peak rises, no buy trough falls, and nothing fires.
    let reqs = requests();
    let mut t = Triggers::new(20_000);
    let mut out = Vec::new();
    t.on_market(
        INST,
        Some(Price(MID)),
        Some(Price(MID - 41)),
        None,
        &mut out,
    );
    for (oco, trail) in &reqs {
        t.add_oco(oco, &mut out).unwrap();
        t.add_trailing(trail, &mut out).unwrap();
    }
    out.clear();
    assert_eq!(t.len(), 10_000);
    let mut i = 0usize;
    g.bench_function("triggers_on_market", |b| {
        b.iter(|| {
            let (bid, ask, trade) = events[i];
            i = (i + 1) & 4_095;
            t.on_market(
                INST,
                bid.map(|l| l.price),
                ask.map(|l| l.price),
                trade.map(|l| l.price),
                &mut out,
            );
            debug_assert!(out.is_empty());
            black_box(&out);
        })
    });
    assert!(out.is_empty(), "nothing may fire or move in this benchmark");

    // The same through Account::handle_market (external gateway, no position).
    let mut a = Account::new(AccountConfig {
        gateway: Gateway::External,
        max_advanced: 20_000,
        ..AccountConfig::default()
    });
    a.add_instrument(info()).unwrap();
    a.handle_market(Nanos(0), INST, lvl(MID), lvl(MID - 41), None);
    for (oco, trail) in &reqs {
        a.place_oco(Nanos(0), *oco).unwrap();
        a.place_trailing(Nanos(0), *trail).unwrap();
    }
    while a.poll_event().is_some() {}
    let mut i = 0usize;
    g.bench_function("account_handle_market", |b| {
        b.iter(|| {
            let (bid, ask, trade) = events[i];
            i = (i + 1) & 4_095;
            a.handle_market(Nanos(1), INST, bid, ask, trade);
            black_box(a.pending_events());
        })
    });
    assert_eq!(
        a.pending_events(),
        0,
        "nothing may fire or move in this benchmark"
    );
    g.finish();
}

/// A client's order entry through the engine: the journaled client record is parsed, risk
/// checked, sent to the paper venue, and its ack and order updates are rendered as the JSON
/// the client receives. One iteration = place a resting limit order + cancel it.
fn order_entry(c: &mut Criterion) {
    use tape_core::desk::{ClientOp, ClientRecord, DeskSetup};
    use tape_core::engine::{Engine, EngineConfig};
    use tape_core::input::{RecordKind, SourceId, CLIENT_SOURCE};
    let mut e = Engine::new(EngineConfig {
        instruments: vec![(Market::UsdM, "BTCUSDT".into(), 2, 3)],
        ..EngineConfig::default()
    })
    .unwrap();
    let setup = DeskSetup {
        users: vec!["alice".into()],
        max_open_orders: Some(100),
        ..DeskSetup::default()
    };
    e.handle_record(
        Nanos(1),
        SourceId(CLIENT_SOURCE),
        RecordKind::DeskSetup,
        setup.to_payload().as_bytes(),
    )
    .unwrap();
    // Distinct client ids so the order table never sees a duplicate.
    let records: Vec<(Vec<u8>, Vec<u8>)> = (0..1u32 << 16)
        .map(|n| {
            let place = format!(
                r#"{{"type":"place_order","id":{n},"symbol":"usdm:BTCUSDT","side":"buy","order_type":"limit","price":"60000.00","qty":"0.010","client_order_id":"b{n}"}}"#
            );
            let cancel = format!(r#"{{"type":"cancel_order","id":{n},"client_order_id":"b{n}"}}"#);
            (
                ClientRecord::encode(ClientOp::Command, 1, "alice", place.as_bytes()),
                ClientRecord::encode(ClientOp::Command, 1, "alice", cancel.as_bytes()),
            )
        })
        .collect();
    let mut g = c.benchmark_group("desk");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    let mut now = 2u64;
    g.bench_function("place_and_cancel_limit_order", |b| {
        b.iter(|| {
            let (place, cancel) = &records[i % records.len()];
            i += 1;
            now += 1_000_000;
            for p in [place, cancel] {
                e.handle_record(Nanos(now), SourceId(CLIENT_SOURCE), RecordKind::Client, p)
                    .unwrap();
                while let Some(o) = e.poll_output() {
                    black_box(o);
                }
            }
        })
    });
    g.finish();
}

/// Order entry split in two halves, per command, through the desk itself:
///
/// * `enter`: the journaled client record's bytes read (header and command), the gateway's
///   rate check, the account's risk checks and its decision (the paper venue matches the
///   order at once; an external venue's order is queued for rendering).
/// * `reply`: the ack and every update rendered as client JSON, and for an external venue
///   the `order.place` / `order.cancel` request JSON (it is rendered where it is queued, in
///   the digest's order, so it lands in this half; `gateway_place/venue_request` times that
///   rendering alone).
///
/// Each half is timed alone (`iter_custom`), the other half and any cleanup run untimed, so
/// `enter + reply` is one command. The peer (`serde_json`) reads the same command bytes into
/// a `Value` and renders the same venue request with `serde_json`, without any risk check.
fn order_entry_split(c: &mut Criterion) {
    use std::time::{Duration, Instant};
    use tape_core::desk::{ClientOp, ClientRecord, Desk, DeskOutput, DeskSetup};
    use tape_core::instrument::Registry;

    let mut registry = Registry::with_capacity(8);
    registry.register(Market::UsdM, "BTCUSDT", 2, 3).unwrap();
    let place_body = |n: u64| {
        format!(
            r#"{{"type":"place_order","id":{n},"symbol":"usdm:BTCUSDT","side":"buy","order_type":"limit","price":"60000.00","qty":"0.010","client_order_id":"b{n}"}}"#
        )
    };
    let place =
        |n: u64| ClientRecord::encode(ClientOp::Command, 1, "alice", place_body(n).as_bytes());
    let cancel = |n: u64| {
        let body = format!(r#"{{"type":"cancel_order","id":{n},"client_order_id":"b{n}"}}"#);
        ClientRecord::encode(ClientOp::Command, 1, "alice", body.as_bytes())
    };
    let desk = |gateway: Option<Market>| {
        Desk::new(DeskSetup {
            users: vec!["alice".into()],
            max_open_orders: Some(100),
            gateway,
            ..DeskSetup::default()
        })
        .unwrap()
    };
    // The replies of one command: (acks, venue requests); the venue request's `id`.
    fn drain(d: &mut Desk) -> (usize, usize, Option<u64>) {
        let (mut acks, mut reqs, mut id) = (0, 0, None);
        while let Some(o) = d.poll_output() {
            match o {
                DeskOutput::Private(m) => {
                    acks += usize::from(m.json.starts_with(r#"{"type":"ack""#))
                }
                DeskOutput::VenueOrder { json, .. } => {
                    reqs += 1;
                    let n = json
                        .strip_prefix(r#"{"id":"#)
                        .and_then(|r| r.split(',').next());
                    id = n.and_then(|n| n.parse().ok());
                }
            }
        }
        (acks, reqs, id)
    }
    const N: u64 = 1 << 16;
    let records: Vec<(Vec<u8>, Vec<u8>)> = (0..N).map(|n| (place(n), cancel(n))).collect();

    let mut g = c.benchmark_group("desk");
    g.throughput(Throughput::Elements(1));

    // Paper: one place then one cancel per step; `half` 0 times `enter`, 1 times `reply`.
    for (name, which, half) in [
        ("paper_place/enter", 0, 0),
        ("paper_place/reply", 0, 1),
        ("paper_cancel/enter", 1, 0),
        ("paper_cancel/reply", 1, 1),
    ] {
        let mut d = desk(None);
        let mut now = 2u64;
        let mut i = 0usize;
        let mut step = |d: &mut Desk, timed: Option<(usize, usize)>| -> Duration {
            let (place, cancel) = &records[i % records.len()];
            i += 1;
            now += 1_000_000;
            let mut spent = Duration::ZERO;
            for (k, rec) in [place, cancel].into_iter().enumerate() {
                let t = Instant::now();
                let e = d.enter(Nanos(now), rec, &registry).unwrap().unwrap();
                if timed == Some((k, 0)) {
                    spent += t.elapsed();
                }
                let t = Instant::now();
                d.reply(Nanos(now), e, &registry);
                if timed == Some((k, 1)) {
                    spent += t.elapsed();
                }
                assert_eq!(drain(d).0, 1, "every command is acked");
            }
            spent
        };
        step(&mut d, None);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| (0..iters).map(|_| step(&mut d, Some((which, half)))).sum())
        });
    }

    // Gateway (USD-M): a place, whose output is the `order.place` request; the venue then
    // refuses it (untimed), which closes the order.
    for (name, half) in [("gateway_place/enter", 0), ("gateway_place/reply", 1)] {
        let mut d = desk(Some(Market::UsdM));
        let mut now = 2u64;
        let mut i = 0u64;
        let mut step = |d: &mut Desk, timed: Option<usize>| -> Duration {
            let rec = &records[(i % N) as usize].0;
            i += 1;
            now += 1_000_000;
            let t = Instant::now();
            let e = d.enter(Nanos(now), rec, &registry).unwrap().unwrap();
            let mut spent = if timed == Some(0) {
                t.elapsed()
            } else {
                Duration::ZERO
            };
            let t = Instant::now();
            d.reply(Nanos(now), e, &registry);
            if timed == Some(1) {
                spent += t.elapsed();
            }
            let (acks, reqs, id) = drain(d);
            assert_eq!((acks, reqs), (1, 1), "acked and sent");
            let refuse = format!(
                r#"{{"id":{},"status":400,"error":{{"code":-2010,"msg":"no"}}}}"#,
                id.unwrap()
            );
            d.handle_gateway_frame(Nanos(now), refuse.as_bytes(), &registry);
            while d.poll_output().is_some() {}
            spent
        };
        step(&mut d, None);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| (0..iters).map(|_| step(&mut d, Some(half))).sum())
        });
    }

    // The peer: the place command's bytes into a serde_json `Value`, its fields read, and the
    // same `order.place` request rendered with serde_json (no risk, no account, no ack).
    let bodies: Vec<String> = (0..4_096).map(place_body).collect();
    let mut k = 0usize;
    g.bench_function("peer_serde_json_place/parse_and_render_request", |b| {
        b.iter(|| {
            let body = &bodies[k & 4_095];
            k += 1;
            let v: serde_json::Value = serde_json::from_str(black_box(body)).unwrap();
            let sym = v["symbol"].as_str().unwrap();
            let sym = sym.split_once(':').map_or(sym, |(_, s)| s);
            let req = serde_json::json!({
                "id": k,
                "method": "order.place",
                "params": {
                    "symbol": sym,
                    "side": v["side"].as_str().unwrap().to_ascii_uppercase(),
                    "type": v["order_type"].as_str().unwrap().to_ascii_uppercase(),
                    "quantity": v["qty"].as_str().unwrap(),
                    "price": v["price"].as_str().unwrap(),
                    "timeInForce": "GTC",
                    "newClientOrderId": v["client_order_id"].as_str().unwrap(),
                }
            });
            black_box(serde_json::to_string(&req).unwrap());
        })
    });
    g.finish();
}

criterion_group!(benches, fill, triggers, order_entry, order_entry_split);
criterion_main!(benches);
