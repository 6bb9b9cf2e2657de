//! Crafted scenarios: resync episodes, channel payloads, ticker change detection,
//! subscription changes; and a quick fan-out timing (ignored by default).

use serde_json::Value;

use super::tests_util::*;
use super::{ConnId, HubConfig};
use crate::input::{Nanos, RecordKind, SourceDef};
use crate::instrument::{InstrumentId, Market};

const WS: u32 = 1;
const REST: u32 = 2;

/// A harness with a spot `TESTUSDT` (price scale 2, qty scale 3) defined.
fn test_harness(cfg: HubConfig) -> (Harness, InstrumentId) {
    let mut h = Harness::new(cfg);
    for (source, symbol, scales) in [(REST, Some("TESTUSDT"), Some((2, 3))), (WS, None, None)] {
        let def = SourceDef {
            market: Market::Spot,
            symbol: symbol.map(str::to_owned),
            scales,
            name: String::new(),
        };
        h.record(&rec(source, RecordKind::SourceDef, def.to_text()));
    }
    let id = h.lookup("spot", "TESTUSDT");
    (h, id)
}

fn rec(source: u32, kind: RecordKind, payload: String) -> Rec {
    Rec {
        now: 0,
        source,
        kind,
        payload: payload.into_bytes(),
    }
}

fn levels(l: &[(&str, &str)]) -> String {
    let v: Vec<String> = l
        .iter()
        .map(|(p, q)| format!("[\"{p}\",\"{q}\"]"))
        .collect();
    format!("[{}]", v.join(","))
}

fn depth(first: u64, last: u64, bids: &[(&str, &str)], asks: &[(&str, &str)]) -> Rec {
    rec(
        WS,
        RecordKind::WsFrame,
        format!(
            r#"{{"stream":"testusdt@depth@100ms","data":{{"e":"depthUpdate","E":{},"s":"TESTUSDT","U":{first},"u":{last},"b":{},"a":{}}}}}"#,
            1_000 + last,
            levels(bids),
            levels(asks)
        ),
    )
}

fn snapshot(last: u64, bids: &[(&str, &str)], asks: &[(&str, &str)]) -> Rec {
    rec(
        REST,
        RecordKind::RestSnapshot,
        format!(
            r#"{{"lastUpdateId":{last},"bids":{},"asks":{}}}"#,
            levels(bids),
            levels(asks)
        ),
    )
}

/// Exchange time of the crafted trades.
const TRADE_MS: u64 = 1_723_161_255_612;

fn trade(id: u64, price: &str, qty: &str, buyer_is_maker: bool) -> Rec {
    rec(
        WS,
        RecordKind::WsFrame,
        format!(
            r#"{{"stream":"testusdt@trade","data":{{"e":"trade","E":{TRADE_MS},"s":"TESTUSDT","t":{id},"p":"{price}","q":"{qty}","T":{},"m":{buyer_is_maker},"M":true}}}}"#,
            TRADE_MS - 1
        ),
    )
}

fn ticker(event_ms: u64, last: &str) -> Rec {
    rec(
        WS,
        RecordKind::WsFrame,
        format!(
            r#"{{"stream":"testusdt@ticker","data":{{"e":"24hrTicker","E":{event_ms},"s":"TESTUSDT","p":"0.50","P":"5.000","w":"10.20","x":"10.00","c":"{last}","Q":"0.100","b":"10.49","B":"1.000","a":"10.51","A":"1.000","o":"10.00","h":"11.00","l":"9.50","v":"1234.567","q":"12345.67","O":0,"C":1,"F":1,"L":2,"n":2}}}}"#
        ),
    )
}

fn scales(_: &str) -> (u8, u8) {
    (2, 3)
}

fn pump(h: &mut Harness, conn: usize, c: &mut Client) -> Vec<Value> {
    let msgs = h.drain(conn);
    for m in &msgs {
        c.apply(m.clone(), &scales);
    }
    msgs
}

fn kinds(msgs: &[Value]) -> Vec<String> {
    msgs.iter()
        .map(|m| {
            format!(
                "{}:{}:{}",
                m["type"].as_str().unwrap(),
                m["channel"].as_str().unwrap_or("-"),
                m["seq"].as_u64().map_or("-".to_string(), |s| s.to_string())
            )
        })
        .collect()
}

#[test]
fn gap_goes_stale_then_fresh_snapshot_continues() {
    let (mut h, id) = test_harness(HubConfig::default());
    h.open(1);
    h.send(1, r#"{"type":"subscribe","id":1,"channels":["book","bbo"],"symbols":["testusdt"],"depth":10}"#);
    let mut c = Client::new(10);
    let m = pump(&mut h, 1, &mut c);
    // The reply, then the book's state: not synced yet. No bbo was ever published.
    assert_eq!(kinds(&m), ["subscribed:-:-", "status:book:0"]);
    assert_eq!(m[1]["data"]["reason"], "initial");
    assert_eq!(m[0]["subscriptions"][0]["symbol"], "TESTUSDT");

    h.record(&depth(101, 101, &[("10.00", "1.500")], &[]));
    assert!(h.drain(1).is_empty(), "initial resync is not announced");
    h.record(&snapshot(
        100,
        &[("10.00", "1.000"), ("9.90", "2.000")],
        &[("11.00", "1.000")],
    ));
    let m = pump(&mut h, 1, &mut c);
    assert_eq!(kinds(&m), ["snapshot:book:1", "update:bbo:1"]);
    assert_eq!(m[0]["data"]["update_id"], 101);
    assert_eq!(
        m[0]["data"]["bids"][0],
        serde_json::json!(["10.00", "1.500"])
    );
    assert_eq!(m[1]["data"]["spread"], "1.00");

    h.record(&depth(
        102,
        102,
        &[("10.00", "2.000")],
        &[("11.00", "0.000"), ("11.50", "3.000")],
    ));
    let m = pump(&mut h, 1, &mut c);
    assert_eq!(kinds(&m), ["update:book:2", "update:bbo:2"]);
    assert_eq!(
        m[0]["data"]["asks"],
        serde_json::json!([["11.00", "0.000"], ["11.50", "3.000"]])
    );
    // A diff that changes nothing publishes nothing and keeps seq.
    h.record(&depth(103, 103, &[("10.00", "2.000")], &[]));
    assert!(h.drain(1).is_empty());

    // Skip 104: a gap. Both streams go stale, once.
    h.record(&depth(105, 105, &[("10.00", "3.000")], &[]));
    let m = pump(&mut h, 1, &mut c);
    assert_eq!(kinds(&m), ["status:book:3", "status:bbo:3"]);
    assert!(m.iter().all(|m| m["data"]["reason"] == "gap"));
    h.record(&depth(106, 106, &[("10.00", "4.000")], &[]));
    h.record(&depth(108, 108, &[("10.00", "4.000")], &[]));
    assert!(h.drain(1).is_empty(), "one status per episode");
    // get_book while stale answers with a status carrying the id.
    h.send(1, r#"{"type":"get_book","id":"g","symbol":"TESTUSDT"}"#);
    let m = h.drain(1);
    assert_eq!(kinds(&m), ["status:book:3"]);
    assert_eq!(m[0]["id"], "g");

    // A new snapshot covering everything buffered, then the bridging diff: live again.
    h.record(&snapshot(108, &[("10.00", "5.000")], &[("11.50", "3.000")]));
    assert!(h.drain(1).is_empty(), "not live until bridged");
    h.record(&depth(109, 109, &[("9.00", "1.000")], &[]));
    let m = pump(&mut h, 1, &mut c);
    assert_eq!(kinds(&m), ["snapshot:book:4", "update:bbo:4"]);
    assert_eq!(m[1]["ts"], 0, "no exchange time for a resynced top");
    h.record(&depth(110, 110, &[("9.00", "0.000")], &[]));
    let m = pump(&mut h, 1, &mut c);
    assert_eq!(kinds(&m), ["update:book:5"]);
    assert_eq!(m[0]["ts"], 1110);
    assert_book_matches(&h.engine, &c.books["spot:TESTUSDT"], id);
    assert_eq!(c.statuses.len(), 3);
}

#[test]
fn stale_snapshot_and_crossed_book_are_announced() {
    let (mut h, id) = test_harness(HubConfig::default());
    h.open(1);
    h.send(
        1,
        r#"{"type":"subscribe","channels":["book"],"symbols":["spot:TESTUSDT"]}"#,
    );
    let mut c = Client::new(20);
    pump(&mut h, 1, &mut c);
    h.record(&depth(101, 101, &[("10.00", "1.000")], &[]));
    h.record(&snapshot(50, &[("10.00", "1.000")], &[("11.00", "1.000")]));
    let m = pump(&mut h, 1, &mut c);
    assert_eq!(kinds(&m), ["status:book:1"]);
    assert_eq!(m[0]["data"]["reason"], "stale_snapshot");
    h.record(&snapshot(100, &[("10.00", "1.000")], &[("11.00", "1.000")]));
    let m = pump(&mut h, 1, &mut c);
    assert_eq!(kinds(&m), ["snapshot:book:2"]);
    // A diff that crosses the book: stale with reason "crossed", nothing of it published.
    h.record(&depth(102, 102, &[("12.00", "1.000")], &[]));
    let m = pump(&mut h, 1, &mut c);
    assert_eq!(kinds(&m), ["status:book:3"]);
    assert_eq!(m[0]["data"]["reason"], "crossed");
    assert!(!h.engine.book(id).unwrap().is_synced());
}

#[test]
fn trade_payloads() {
    let (mut h, _) = test_harness(HubConfig::default());
    h.open(1);
    h.send(
        1,
        r#"{"type":"subscribe","channels":["trades"],"symbols":["TESTUSDT"]}"#,
    );
    let mut c = Client::new(20);
    pump(&mut h, 1, &mut c);
    h.record(&trade(7, "10.50", "0.250", true));
    h.record(&trade(8, "10.51", "1", false));
    let m = pump(&mut h, 1, &mut c);
    assert_eq!(kinds(&m), ["update:trades:1", "update:trades:2"]);
    assert_eq!(
        m[0]["data"],
        serde_json::json!({"price":"10.50","qty":"0.250","side":"sell","trade_id":7,"trade_ts":TRADE_MS - 1})
    );
    assert_eq!(m[1]["data"]["side"], "buy");
    assert_eq!(m[1]["data"]["qty"], "1.000");
    assert_eq!(
        (m[0]["ts"].as_u64(), m[0]["recv_ns"].as_u64()),
        (Some(TRADE_MS), Some(1))
    );
    assert_eq!(c.gaps, 0);
}

#[test]
fn ticker_change_detection_and_bbo_payload() {
    let (mut h, _) = test_harness(HubConfig::default());
    h.open(1);
    h.send(
        1,
        r#"{"type":"subscribe","channels":["ticker","bbo"],"symbols":["TESTUSDT"]}"#,
    );
    let mut c = Client::new(20);
    pump(&mut h, 1, &mut c);
    // Ticker: published when a value changed, not when only the event time did.
    h.record(&ticker(1, "10.50"));
    h.record(&ticker(2, "10.50"));
    h.record(&ticker(3, "10.60"));
    let m = pump(&mut h, 1, &mut c);
    assert_eq!(kinds(&m), ["update:ticker:1", "update:ticker:2"]);
    assert_eq!(
        m[0]["data"],
        serde_json::json!({"last":"10.50","open":"10.00","high":"11.00","low":"9.50","change":"0.50","change_pct":"5.000","volume":"1234.567","quote_volume":"12345.67"})
    );
    assert_eq!(m[1]["ts"], 3);

    // A book with no asks: the bbo has null ask and spread.
    h.record(&depth(101, 101, &[("10.00", "1.000")], &[]));
    h.record(&snapshot(100, &[("10.00", "1.000")], &[]));
    let m = pump(&mut h, 1, &mut c);
    assert_eq!(kinds(&m), ["update:bbo:1"]);
    assert_eq!(
        m[0]["data"],
        serde_json::json!({"bid":"10.00","bid_qty":"1.000","ask":null,"ask_qty":null,"spread":null,"update_id":101})
    );

    // A later subscriber gets the last bbo and ticker (same seq) after its reply.
    h.open(2);
    h.send(2, r#"{"type":"subscribe","id":9,"channels":["ticker","bbo","trades"],"symbols":["TESTUSDT"]}"#);
    let m = h.drain(2);
    assert_eq!(
        kinds(&m),
        ["subscribed:-:-", "update:ticker:2", "update:bbo:1"]
    );
    assert_eq!(m[0]["id"], 9);
    assert_eq!(c.gaps, 0);
}

#[test]
fn resubscribe_unsubscribe_and_get_book() {
    let (mut h, _) = test_harness(HubConfig::default());
    h.record(&depth(101, 101, &[("10.00", "1.000")], &[]));
    h.record(&snapshot(
        100,
        &[("10.00", "1.000"), ("9.00", "1.000"), ("8.00", "1.000")],
        &[("11.00", "1.000")],
    ));
    h.open(1);
    h.send(
        1,
        r#"{"type":"subscribe","channels":["book"],"symbols":["TESTUSDT"],"depth":1}"#,
    );
    let m = h.drain(1);
    assert_eq!(kinds(&m), ["subscribed:-:-", "snapshot:book:1"]);
    assert_eq!(m[1]["data"]["bids"].as_array().unwrap().len(), 1);
    // Same depth: listed, no new state. New depth: a new snapshot at that depth.
    h.send(
        1,
        r#"{"type":"subscribe","channels":["book"],"symbols":["TESTUSDT"],"depth":1}"#,
    );
    assert_eq!(kinds(&h.drain(1)), ["subscribed:-:-"]);
    h.send(
        1,
        r#"{"type":"subscribe","channels":["book"],"symbols":["TESTUSDT"],"depth":2}"#,
    );
    let m = h.drain(1);
    assert_eq!(kinds(&m), ["subscribed:-:-", "snapshot:book:1"]);
    assert_eq!(m[1]["data"]["bids"].as_array().unwrap().len(), 2);
    assert_eq!(h.hub.stats().subscriptions["book"], 1);

    h.send(
        1,
        r#"{"type":"get_book","id":3,"symbol":"spot:TESTUSDT","depth":3}"#,
    );
    let m = h.drain(1);
    assert_eq!(kinds(&m), ["snapshot:book:1"]);
    assert_eq!(m[0]["id"], 3);
    assert_eq!(
        m[0]["data"]["bids"],
        serde_json::json!([["10.00", "1.000"], ["9.00", "1.000"], ["8.00", "1.000"]])
    );

    h.send(
        1,
        r#"{"type":"unsubscribe","id":4,"channels":["book","trades"],"symbols":["TESTUSDT"]}"#,
    );
    let m = h.drain(1);
    assert_eq!(m[0]["type"], "unsubscribed");
    assert_eq!(m[0]["subscriptions"].as_array().unwrap().len(), 2);
    assert_eq!(h.hub.stats().subscriptions["book"], 0);
    h.record(&depth(102, 102, &[("10.00", "2.000")], &[]));
    assert!(h.drain(1).is_empty());
}

#[test]
fn poll_ready_reports_once_until_drained() {
    let (mut h, _) = test_harness(HubConfig::default());
    h.open(2);
    h.open(1);
    for conn in [2, 1] {
        h.send(
            conn,
            r#"{"type":"subscribe","channels":["trades"],"symbols":["TESTUSDT"]}"#,
        );
    }
    assert_eq!(h.hub.poll_ready(), Some(ConnId(2)));
    assert_eq!(h.hub.poll_ready(), Some(ConnId(1)));
    assert_eq!(h.hub.poll_ready(), None);
    h.record(&trade(1, "10.00", "1.000", false));
    assert_eq!(
        h.hub.poll_ready(),
        None,
        "still undrained: not reported again"
    );
    assert_eq!(h.drain(1).len(), 2);
    h.record(&trade(2, "10.00", "1.000", false));
    assert_eq!(h.hub.poll_ready(), Some(ConnId(1)));
    h.hub.handle_closed(ConnId(2));
    assert_eq!(h.hub.poll_ready(), None);
    assert_eq!(h.hub.stats().subscriptions["trades"], 1);
}

/// Fan-out cost per delivered message. Run with
/// `cargo test --release -p tape-core server::tests::fanout_timing -- --ignored --nocapture`.
#[test]
#[ignore]
fn fanout_timing() {
    use crate::msg::Trade;
    use crate::output::{Event, Output};
    for subscribers in [1usize, 100, 1000] {
        let (mut h, id) = test_harness(HubConfig {
            max_connections: 2000,
            ..HubConfig::default()
        });
        for conn in 0..subscribers {
            h.open(conn);
            h.send(
                conn,
                r#"{"type":"subscribe","channels":["trades","bbo"],"symbols":["TESTUSDT"]}"#,
            );
            let _ = h.drain(conn);
        }
        while h.hub.poll_ready().is_some() {}
        let mut t = Trade {
            instrument: id,
            event_time_ms: 1,
            trade_time_ms: 1,
            trade_id: 0,
            price: crate::fixed::Price(1_050),
            qty: crate::fixed::Qty(250),
            buyer_is_maker: false,
            buyer_order_id: None,
            seller_order_id: None,
            is_market: true,
        };
        let batch = 50;
        let rounds = (4_000_000 / (subscribers * batch)).max(1);
        let mut timed = std::time::Duration::ZERO;
        for _ in 0..rounds {
            let start = std::time::Instant::now();
            for _ in 0..batch {
                t.trade_id += 1;
                let out = Output {
                    recv: Nanos(t.trade_id),
                    event: Event::Trade(t),
                };
                h.hub.handle_output(&out, &h.engine);
            }
            timed += start.elapsed();
            while let Some(conn) = h.hub.poll_ready() {
                while h.hub.poll_transmit(Nanos(0), conn, &h.engine).is_some() {}
            }
        }
        let delivered = (rounds * batch * subscribers) as f64;
        let per_event = timed.as_nanos() as f64 / (rounds * batch) as f64;
        println!(
            "fan-out to {subscribers:>4}: {:.1} ns per delivered message, {per_event:.0} ns per event (serialize once + fan-out)",
            timed.as_nanos() as f64 / delivered
        );
        assert_eq!(h.hub.stats().trades_dropped, 0);
    }
}

fn link(ev: crate::venue::LinkEvent) -> Rec {
    rec(WS, RecordKind::Link, ev.to_text())
}

#[test]
fn a_lost_connection_marks_its_books_stale_and_the_status_channel_follows_the_venue() {
    use crate::venue::LinkEvent;
    let (mut h, id) = test_harness(HubConfig::default());
    h.open(1);
    h.send(
        1,
        r#"{"type":"subscribe","id":1,"channels":["book","status"],"symbols":["testusdt"]}"#,
    );
    let m = h.drain(1);
    assert_eq!(kinds(&m), ["subscribed:-:-", "status:book:0"]);
    assert_eq!(
        m[0]["subscriptions"][1],
        serde_json::json!({"channel":"status"})
    );
    // Status alone needs no symbols.
    h.open(2);
    h.send(2, r#"{"type":"subscribe","id":2,"channels":["status"]}"#);
    assert_eq!(kinds(&h.drain(2)), ["subscribed:-:-"]);
    // One that leaves before any venue exists leaves nothing behind for its slot's next user.
    h.open(4);
    h.send(4, r#"{"type":"subscribe","channels":["status"]}"#);
    h.hub.handle_closed(ConnId(4));
    h.open(5);

    h.record(&link(LinkEvent::Connecting {
        url: "wss://x/stream".into(),
    }));
    h.record(&link(LinkEvent::Up));
    h.record(&depth(
        101,
        101,
        &[("10.00", "1.500")],
        &[("11.00", "1.000")],
    ));
    h.record(&snapshot(100, &[("10.00", "1.000")], &[("11.00", "1.000")]));
    let m = h.drain(1);
    let states: Vec<&str> = m
        .iter()
        .filter(|m| m["channel"] == "status")
        .map(|m| m["data"]["state"].as_str().unwrap())
        .collect();
    // The second `syncing` reports the book the first diff brought (books 1, synced 0).
    assert_eq!(states, ["connecting", "syncing", "syncing", "live"]);
    assert!(m.iter().any(|m| m["type"] == "snapshot"));
    let last = m.iter().rev().find(|m| m["channel"] == "status").unwrap();
    assert_eq!(last["seq"], 4);
    assert_eq!(last["data"]["books"], 1);
    assert_eq!(last["data"]["books_synced"], 1);
    assert_eq!(
        h.drain(2).len(),
        4,
        "status-only subscriber sees the same updates"
    );
    assert!(h.drain(5).is_empty(), "conn 5 never subscribed");

    // The connection drops: the book is cleared and announced stale, the venue goes down.
    h.record(&link(LinkEvent::Down {
        reason: "io: reset".into(),
    }));
    assert!(h
        .engine
        .book(id)
        .is_some_and(|b| !b.is_synced() && b.book().best_bid().is_none()));
    let m = h.drain(1);
    assert_eq!(kinds(&m), ["status:book:2", "update:status:5"]);
    assert_eq!(m[0]["data"]["reason"], "disconnected");
    assert_eq!(m[1]["data"]["state"], "down");
    assert_eq!(m[1]["data"]["reason"], "io: reset");
    assert_eq!(m[1]["data"]["disconnects"], 1);
    h.record(&link(LinkEvent::Backoff {
        attempt: 1,
        delay_ms: 250,
    }));
    h.record(&link(LinkEvent::Connecting {
        url: "wss://x/stream".into(),
    }));
    h.record(&link(LinkEvent::Up));
    // A late subscriber gets the current status at once.
    h.open(3);
    h.send(3, r#"{"type":"subscribe","channels":["status"]}"#);
    let m = h.drain(3);
    assert_eq!(kinds(&m), ["subscribed:-:-", "update:status:8"]);
    assert_eq!(m[1]["data"]["state"], "syncing");
    assert_eq!(m[1]["data"]["connects"], 2);

    // After the reconnect the book syncs from scratch.
    h.record(&depth(200, 200, &[("10.00", "2.000")], &[]));
    h.record(&snapshot(199, &[("10.00", "1.000")], &[("11.00", "1.000")]));
    let m = h.drain(1);
    assert!(m.iter().any(|m| m["type"] == "snapshot"), "{m:?}");
    assert_eq!(m.last().unwrap()["data"]["state"], "live");
    // Unsubscribing status stops the updates.
    assert!(!h.drain(3).is_empty(), "conn 3 followed the resync");
    h.send(3, r#"{"type":"unsubscribe","id":9,"channels":["status"]}"#);
    assert_eq!(kinds(&h.drain(3))[0], "unsubscribed:-:-");
    h.record(&link(LinkEvent::Down {
        reason: "closed".into(),
    }));
    assert!(h.drain(3).is_empty());
    assert_eq!(h.engine.venues().next().unwrap().disconnects, 2);
    // A malformed link record is a counted error, nothing more.
    h.record(&rec(
        WS,
        RecordKind::Link,
        "tape-link/1 event=sideways".into(),
    ));
    assert_eq!(h.engine.stats().errors.get("bad_link"), Some(&1));
}
