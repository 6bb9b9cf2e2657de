//! The bundled hftbacktest captures replayed through the engine into the hub, with fast,
//! late and never-drained clients side by side.

use std::collections::HashMap;

use super::tests_util::*;
use super::{Action, ConnId, HubConfig, CLOSE_SLOW_CONSUMER};
use crate::input::{Nanos, RecordKind};
use crate::instrument::InstrumentId;
use crate::output::Event;

const FULL: usize = 1; // book depth 1000, every instrument
const SHALLOW: usize = 2; // book depth 5 + bbo + trades + ticker
const LATE: usize = 3; // everything, not drained for the first 3 s, then fast
const NEVER: usize = 4; // everything, never drained

#[test]
fn replay_fast_slow_and_late_clients() {
    let records = fixture_records();
    let mut h = Harness::new(HubConfig::default());
    let defs = records
        .iter()
        .take_while(|r| r.kind == RecordKind::SourceDef)
        .count();
    for r in &records[..defs] {
        h.record(r);
    }
    h.now = Nanos(records[defs].now);
    let cap = h.hub.config().outbound_queue;
    let mut clients: HashMap<usize, Client> = HashMap::new();
    for (conn, sub) in [
        (
            FULL,
            format!(
                r#"{{"type":"subscribe","id":1,"channels":["book"],"symbols":{ALL_SYMBOLS},"depth":1000}}"#
            ),
        ),
        (
            SHALLOW,
            format!(
                r#"{{"type":"subscribe","id":"s","channels":["book","bbo","trades","ticker"],"symbols":{ALL_SYMBOLS},"depth":5}}"#
            ),
        ),
        (
            LATE,
            format!(
                r#"{{"type":"subscribe","channels":["book","bbo","trades"],"symbols":{ALL_SYMBOLS},"depth":1000}}"#
            ),
        ),
        (
            NEVER,
            format!(
                r#"{{"type":"subscribe","channels":["book","bbo","trades"],"symbols":{ALL_SYMBOLS}}}"#
            ),
        ),
    ] {
        h.open(conn);
        h.send(conn, &sub);
        clients.insert(
            conn,
            Client::new(if conn == SHALLOW {
                5
            } else if conn == NEVER {
                20
            } else {
                1000
            }),
        );
    }
    // Each connection is reported ready once, in id order.
    let ready: Vec<_> = std::iter::from_fn(|| h.hub.poll_ready()).collect();
    assert_eq!(ready, [ConnId(1), ConnId(2), ConnId(3), ConnId(4)]);

    let start = records[defs].now;
    let late_until = start + 3_000_000_000;
    let mut trades: HashMap<InstrumentId, u64> = HashMap::new();
    let mut bbo_outputs = 0u64;
    let mut never_closed_at = None;
    let mut late_drained = false;
    let mut max_never_queued = 0;
    for r in &records[defs..] {
        let outs = h.record(r);
        count_trades(&outs, &mut trades);
        bbo_outputs += outs
            .iter()
            .filter(|o| matches!(o.event, Event::Bbo(_)))
            .count() as u64;
        let mut fast = vec![FULL, SHALLOW];
        if r.now >= late_until {
            fast.push(LATE);
            late_drained = true;
        }
        for conn in fast {
            let msgs = h.drain(conn);
            let scales = scales_of(&h.engine);
            let c = clients.get_mut(&conn).unwrap();
            for m in msgs {
                c.apply(m, &scales);
            }
        }
        // The shallow client's last bbo always shows the engine's top of book.
        for o in &outs {
            if let Event::Bbo(b) = &o.event {
                let inst = h.engine.registry().get(b.instrument);
                let name = format!("{}:{}", inst.market, inst.symbol);
                let last = &clients[&SHALLOW].last[&("bbo".to_string(), name)];
                let book = h.engine.book(b.instrument).unwrap().book();
                let top = book.best_bid().unwrap();
                assert_eq!(last["data"]["bid"], dec(top.price.0, inst.price_scale));
                assert_eq!(last["data"]["bid_qty"], dec(top.qty.0, inst.qty_scale));
                let top = book.best_ask().unwrap();
                assert_eq!(last["data"]["ask"], dec(top.price.0, inst.price_scale));
                assert_eq!(last["data"]["update_id"], b.update_id);
            }
        }
        if never_closed_at.is_none() {
            let st = h.hub.stats();
            let never = st
                .per_connection
                .iter()
                .find(|c| c.conn == ConnId(NEVER))
                .unwrap();
            // Memory stays bounded: the queue budget, plus one slot per subscription.
            assert!(never.queued <= cap, "{never:?}");
            assert!(never.slots <= never.subscriptions);
            assert!(never.queued_replies <= 1);
            max_never_queued = max_never_queued.max(never.queued);
        }
        for a in h.tick() {
            match a {
                Action::Close { conn, code, .. } => {
                    assert_eq!((conn, code), (ConnId(NEVER), CLOSE_SLOW_CONSUMER));
                    never_closed_at = Some(r.now);
                }
                Action::Ping(_) => panic!("no ping due within 30 s"),
            }
        }
    }
    assert!(late_drained);
    assert_eq!(max_never_queued, cap);
    assert!(
        h.engine.stats().errors.is_empty(),
        "{:?}",
        h.engine.stats().errors
    );

    // The never-drained client was closed 4010 once it had been behind for 5 s.
    let closed = never_closed_at.expect("closed");
    assert!(closed >= start + 5_000_000_000, "closed too early");
    let st = h.hub.stats();
    assert_eq!(st.disconnects.slow, 1);
    let never = st
        .per_connection
        .iter()
        .find(|c| c.conn == ConnId(NEVER))
        .unwrap();
    assert!(never.closing && never.queued == 0 && never.subscriptions == 0);
    assert!(never.counters.trades_dropped > 0);
    assert!(h.drain(NEVER).is_empty());
    h.hub.handle_closed(ConnId(NEVER));
    assert_eq!(h.hub.stats().connections, 3);

    // Trades: the fast client got every one; the late one got or lost (and counted) each.
    let total: u64 = trades.values().sum();
    assert!(total > 1000);
    let shallow = &clients[&SHALLOW];
    assert_eq!(shallow.trades.values().sum::<u64>(), total);
    let late_stats = st
        .per_connection
        .iter()
        .find(|c| c.conn == ConnId(LATE))
        .unwrap();
    assert!(late_stats.counters.trades_dropped > 0);
    assert!(late_stats.counters.conflated > 0);
    assert!(!late_stats.behind);
    assert_eq!(
        clients[&LATE].trades.values().sum::<u64>() + late_stats.counters.trades_dropped,
        total
    );
    assert_eq!(
        st.trades_dropped,
        late_stats.counters.trades_dropped + never.counters.trades_dropped
    );
    // The fast clients never missed a bbo or trade seq; the late one did (conflation).
    assert_eq!(shallow.gaps, 0);
    assert!(clients[&LATE].gaps > 0);
    assert!(bbo_outputs > 100);

    // Every book, as each client rebuilt it, equals the engine's.
    for (market, symbol) in [
        ("coinm", "BTCUSD_PERP"),
        ("spot", "BTCUSDT"),
        ("spot", "ETHUSDT"),
        ("usdm", "BTCUSDT"),
        ("usdm", "ETHUSDT"),
    ] {
        let id = h.lookup(market, symbol);
        let name = format!("{market}:{symbol}");
        assert!(h.engine.book(id).unwrap().is_synced(), "{name}");
        for conn in [FULL, SHALLOW, LATE] {
            let b = &clients[&conn].books[&name];
            assert!(b.live && b.updates > 10, "{conn} {name} {b:?}");
            assert_book_matches(&h.engine, b, id);
        }
        // The depth-1000 client knows (exactly, as checked above) hundreds of levels a side.
        let full = &clients[&FULL].books[&name];
        assert_eq!(full.snapshots, 1);
        let known_bids = full
            .bids
            .keys()
            .filter(|p| full.bid_floor.is_none_or(|f| **p >= f))
            .count();
        let known_asks = full
            .asks
            .keys()
            .filter(|p| full.ask_ceiling.is_none_or(|c| **p <= c))
            .count();
        assert!(
            known_bids > 500 && known_asks > 500,
            "{name}: {known_bids} {known_asks}"
        );
        // The late client got a fresh snapshot after catching up.
        assert_eq!(clients[&LATE].books[&name].snapshots, 1, "{name}");
    }
    // Nothing is left behind for the fast clients; replies were the `subscribed` ones.
    for conn in [FULL, SHALLOW, LATE] {
        assert!(h.drain(conn).is_empty());
        let replies = &clients[&conn].replies;
        assert_eq!(replies.len(), 1);
        assert_eq!(replies[0]["type"], "subscribed");
    }
    assert_eq!(clients[&SHALLOW].replies[0]["id"], "s");
    assert_eq!(
        clients[&SHALLOW].replies[0]["subscriptions"]
            .as_array()
            .unwrap()
            .len(),
        20
    );
}

/// The fresh snapshot a conflated client gets carries the current `seq`, and the next
/// update continues from it.
#[test]
fn conflated_book_snapshot_continues_with_next_update() {
    let records = fixture_records();
    let mut h = Harness::new(HubConfig {
        outbound_queue: 4,
        ..HubConfig::default()
    });
    let mut i = 0;
    while records[i].kind == RecordKind::SourceDef {
        h.record(&records[i]);
        i += 1;
    }
    h.now = Nanos(records[i].now);
    h.open(1);
    h.send(
        1,
        r#"{"type":"subscribe","channels":["book"],"symbols":["usdm:BTCUSDT"],"depth":1000}"#,
    );
    let id = h.lookup("usdm", "BTCUSDT");
    let scales = |_: &str| (2u8, 3u8);
    let mut client = Client::new(1000);
    // Subscribed before the book synced: the reply, then a stale status.
    for m in h.drain(1) {
        client.apply(m, &scales);
    }
    assert_eq!(client.statuses.len(), 1);
    assert_eq!(client.statuses[0]["data"]["reason"], "initial");
    // Replay until the book has synced and moved on well past the queue's size.
    let mut applied = 0;
    while applied < 50 {
        let outs = h.record(&records[i]);
        i += 1;
        if h.engine.book(id).is_some_and(|b| b.is_synced()) {
            applied += outs
                .iter()
                .filter(|o| matches!(o.event, Event::Book(crate::book::BookEvent::Applied { instrument, .. }) if instrument == id))
                .count();
        }
    }
    let st = h.hub.stats();
    assert!(st.conflated > 0);
    for m in h.drain(1) {
        client.apply(m, &scales);
    }
    let b = &client.books["usdm:BTCUSDT"];
    assert!(b.live);
    assert_eq!(b.updates, 0, "updates folded into the snapshot");
    assert_eq!(b.seq, h.hub.streams.book_head(id).seq);
    assert_book_matches(&h.engine, b, id);
    // From here on, updates continue the snapshot's seq (Client::apply checks it).
    for r in &records[i..] {
        h.record(r);
        for m in h.drain(1) {
            client.apply(m, &scales);
        }
    }
    let b = &client.books["usdm:BTCUSDT"];
    assert!(b.updates > 10);
    assert_book_matches(&h.engine, b, id);
}
