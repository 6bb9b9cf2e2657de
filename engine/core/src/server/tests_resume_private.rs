//! `resume` of private channels: a trader's bracket that closes while the connection is
//! cut, a client closed 4010 for unread replies, `signal` per publisher. Driven in one
//! process with virtual time, no sockets.

use serde_json::Value;

use super::tests_private::{of_type, on_channel, token, World};
use super::tests_util::*;
use super::{Action, ConnId, HubConfig};

/// The `seq` of the last message of each private channel in `msgs`.
fn last_seqs(msgs: &[Value]) -> std::collections::BTreeMap<String, u64> {
    msgs.iter()
        .filter(|m| m["type"] == "update")
        .map(|m| {
            (
                m["channel"].as_str().unwrap().to_owned(),
                m["seq"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_bracket_that_closes_while_its_owner_is_away_is_resumed_in_full() {
    let records = fixture_records();
    let mut w = World::new();
    let mut next = 0;
    let btc = loop {
        w.feed(&records[next]);
        next += 1;
        let Some(id) =
            w.h.engine
                .registry()
                .lookup(crate::instrument::Market::UsdM, b"BTCUSDT")
        else {
            continue;
        };
        if w.h.engine.book(id).is_some_and(|b| b.is_synced()) {
            break id;
        }
    };
    let channels = ["orders", "positions", "portfolio", "risk_alerts"];
    let subscribe =
        r#"{"type":"subscribe","channels":["orders","positions","portfolio","risk_alerts"]}"#;
    // Alice twice: AWAY will be cut, STAYS never leaves.
    const AWAY: usize = 1;
    const STAYS: usize = 2;
    const BACK: usize = 3;
    for c in [AWAY, STAYS] {
        assert!(w.open(c, &token("alice")));
        w.send(c, subscribe);
    }
    let book = w.h.engine.book(btc).unwrap().book();
    let mid = (book.best_bid().unwrap().price.0 + book.best_ask().unwrap().price.0) / 2;
    let dec = |m: i64| format!("{}.{:02}", m / 100, m % 100);
    w.send(
        AWAY,
        &format!(
            r#"{{"type":"place_order","id":10,"symbol":"usdm:BTCUSDT","side":"buy","order_type":"market","qty":"0.010","take_profit":"{}","stop_loss":"{}"}}"#,
            dec(mid + 150),
            dec(mid - 150)
        ),
    );
    let mut away = w.h.drain(AWAY);
    let mut stays = w.h.drain(STAYS);
    // The last two messages were on the wire when the network cut it.
    away.truncate(away.len() - 2);
    w.h.hub.handle_closed(ConnId(AWAY));
    // The market moves on until a leg closes the position; STAYS sees it all.
    let mut closed = false;
    while next < records.len() && !closed {
        w.feed(&records[next]);
        next += 1;
        let msgs = w.h.drain(STAYS);
        closed = on_channel(&msgs, "positions")
            .iter()
            .any(|m| m["data"]["side"] == "flat");
        stays.extend(msgs);
    }
    assert!(closed, "no leg fired within the fixtures");
    // Someone else cannot resume alice's streams; an anonymous client cannot resume at all.
    assert!(w.open(4, &token("bob")));
    let seqs = last_seqs(&stays);
    w.send(
        4,
        &format!(
            r#"{{"type":"resume","id":1,"streams":[{{"channel":"orders","seq":{}}}]}}"#,
            seqs["orders"]
        ),
    );
    let bob = w.h.drain(4);
    assert_eq!(of_type(&bob, "error")[0]["code"], 4012, "{bob:?}");
    assert!(w.open(5, ""));
    w.send(
        5,
        r#"{"type":"resume","streams":[{"channel":"orders","seq":0}]}"#,
    );
    assert_eq!(of_type(&w.h.drain(5), "error")[0]["code"], 4001);

    // Alice comes back with what she had.
    let had = last_seqs(&away);
    let streams: Vec<String> = channels
        .iter()
        .map(|ch| {
            format!(
                r#"{{"channel":"{ch}","seq":{}}}"#,
                had.get(*ch).copied().unwrap_or(0)
            )
        })
        .collect();
    assert!(w.open(BACK, &token("alice")));
    w.send(
        BACK,
        &format!(
            r#"{{"type":"resume","id":"r","streams":[{}]}}"#,
            streams.join(",")
        ),
    );
    // And the market keeps moving: live messages follow the replay.
    for r in &records[next..(next + 400).min(records.len())] {
        w.feed(r);
    }
    stays.extend(w.h.drain(STAYS));
    let back = w.h.drain(BACK);
    let reply = of_type(&back, "resumed");
    assert_eq!(reply.len(), 1, "{back:?}");
    assert_eq!(reply[0]["id"], "r");
    for s in reply[0]["streams"].as_array().unwrap() {
        assert_eq!(s["resumed"], true, "{s}");
    }
    for ch in channels {
        let seen: Vec<&Value> = on_channel(&away, ch)
            .into_iter()
            .chain(on_channel(&back, ch))
            .collect();
        assert_eq!(seen, on_channel(&stays, ch), "{ch}");
    }
    let orders = on_channel(&back, "orders");
    assert!(
        orders
            .iter()
            .any(|m| m["data"]["event"] == "advanced" && m["data"]["state"] == "done"),
        "the bracket's end was replayed: {orders:?}"
    );
}

#[test]
fn a_client_closed_for_slowness_gets_every_order_event_on_resume() {
    let records = fixture_records();
    let mut w = World::with(HubConfig {
        max_queued_replies: 5,
        ..HubConfig::default()
    });
    let mut next = 0;
    while w
        .h
        .engine
        .registry()
        .lookup(crate::instrument::Market::UsdM, b"BTCUSDT")
        .is_none_or(|id| !w.h.engine.book(id).is_some_and(|b| b.is_synced()))
    {
        w.feed(&records[next]);
        next += 1;
    }
    assert!(w.open(1, &token("alice")));
    assert!(w.open(2, &token("alice")));
    // Connection 1 gets more (the ack, positions, portfolio) than connection 2 (orders only).
    w.send(
        1,
        r#"{"type":"subscribe","channels":["orders","positions","portfolio"]}"#,
    );
    w.send(2, r#"{"type":"subscribe","channels":["orders"]}"#);
    w.h.drain(1);
    w.h.drain(2);
    // Connection 1 reads nothing: its replies pile up past the budget and it is closed 4010.
    w.send(1, r#"{"type":"place_order","id":1,"symbol":"usdm:BTCUSDT","side":"buy","order_type":"market","qty":"0.010"}"#);
    let mut all = w.h.drain(2);
    assert!(w.h.tick().iter().any(
        |a| matches!(a, Action::Close { conn: ConnId(1), code, .. } if *code == super::CLOSE_SLOW_CONSUMER)
    ));
    w.h.drain(1);
    w.h.hub.handle_closed(ConnId(1));
    // Its owner comes back and resumes from nothing received.
    assert!(w.open(3, &token("alice")));
    w.send(
        3,
        r#"{"type":"resume","streams":[{"channel":"orders","seq":0}]}"#,
    );
    for r in &records[next..next + 200] {
        w.feed(r);
    }
    all.extend(w.h.drain(2));
    let back = w.h.drain(3);
    assert_eq!(
        of_type(&back, "resumed")[0]["streams"][0]["resumed"],
        true,
        "{back:?}"
    );
    let want = on_channel(&all, "orders");
    assert!(want.len() >= 3, "{all:?}");
    assert_eq!(on_channel(&back, "orders"), want);
}

#[test]
fn signals_resume_per_publisher() {
    let mut w = World::new();
    const CUT: usize = 1;
    const STAYS: usize = 2;
    const BACK: usize = 3;
    const FEED: usize = 4;
    assert!(w.open(CUT, &token("watcher")));
    assert!(w.open(STAYS, &token("alice")));
    assert!(w.open(FEED, &token("feed")));
    for c in [CUT, STAYS] {
        w.send(c, r#"{"type":"subscribe","channels":["signal"]}"#);
        w.h.drain(c);
    }
    let publish = |w: &mut World, n: u32| {
        w.send(
            FEED,
            &format!(r#"{{"type":"publish","channel":"signal","data":{{"n":{n}}}}}"#),
        );
        w.h.drain(FEED);
    };
    publish(&mut w, 1);
    let had = w.h.drain(CUT);
    assert_eq!(had.len(), 1, "{had:?}");
    w.h.hub.handle_closed(ConnId(CUT));
    publish(&mut w, 2);
    publish(&mut w, 3);
    // No publisher named: refused; the publisher's own stream, resumed.
    assert!(w.open(BACK, &token("watcher")));
    w.send(
        BACK,
        r#"{"type":"resume","streams":[{"channel":"signal","seq":1}]}"#,
    );
    assert_eq!(of_type(&w.h.drain(BACK), "error")[0]["code"], 4004);
    w.send(
        BACK,
        r#"{"type":"resume","id":1,"streams":[{"channel":"signal","publisher":"feed","seq":1},{"channel":"signal","publisher":"nobody","seq":0}]}"#,
    );
    publish(&mut w, 4);
    let back = w.h.drain(BACK);
    let reply = of_type(&back, "resumed");
    assert_eq!(reply[0]["streams"][0]["publisher"], "feed", "{back:?}");
    assert_eq!(reply[0]["streams"][0]["replayed"], 2, "{back:?}");
    assert_eq!(reply[0]["streams"][1]["resumed"], true, "{back:?}");
    let stays = w.h.drain(STAYS);
    let seen: Vec<&Value> = on_channel(&had, "signal")
        .into_iter()
        .chain(on_channel(&back, "signal"))
        .collect();
    assert_eq!(seen, on_channel(&stays, "signal"));
    assert_eq!(seen.len(), 4);
}
