//! Authenticated sessions end to end inside one process: tokens, private channels, a bracket
//! order on the paper venue against the bundled fixtures, a risk rejection, user isolation,
//! and a replay of every record (client records included) to the same digest.

use serde_json::Value;

use super::tests_util::*;
use super::{Action, ConnId, HubConfig, CLOSE_TOO_MANY_CONNECTIONS};
use crate::auth::{token_for, AuthConfig, Authenticator, Roles, UserDef};
use crate::desk::DeskSetup;
use crate::engine::{Engine, EngineConfig};
use crate::fixed::parse_decimal;
use crate::input::{Nanos, RecordKind, SourceId, CLIENT_SOURCE};
use crate::wire::CLOSE_UNAUTHORIZED;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test-secret";
const EXP: u64 = 4_000_000_000; // 2096

fn auth() -> Authenticator {
    let user = |name: &str, roles: &[&str]| UserDef {
        name: name.into(),
        roles: Roles::from_names(roles.iter().copied()).unwrap(),
        max_connections: None,
    };
    let mut cfg = AuthConfig::new(
        SECRET.to_vec(),
        vec![
            user("alice", &["trader"]),
            user("bob", &["trader"]),
            user("feed", &["publisher"]),
            user("watcher", &["viewer"]),
        ],
    );
    cfg.max_connections_per_user = 2;
    Authenticator::new(cfg).unwrap()
}

fn setup() -> DeskSetup {
    DeskSetup {
        users: ["alice", "bob", "feed", "watcher"]
            .map(String::from)
            .to_vec(),
        max_order_qty: Some(parse_decimal(b"1").unwrap()),
        ..DeskSetup::default()
    }
}

pub(super) struct World {
    pub(super) h: Harness,
    /// Every record the engine saw, client records included, as the journal would hold them.
    journal: Vec<(u64, u32, u16, Vec<u8>)>,
}

impl World {
    pub(super) fn new() -> World {
        World::with(HubConfig::default())
    }

    pub(super) fn with(cfg: HubConfig) -> World {
        let mut h = Harness::new(cfg);
        h.hub.set_authenticator(auth());
        let mut w = World {
            h,
            journal: Vec::new(),
        };
        w.apply(
            CLIENT_SOURCE,
            RecordKind::DeskSetup as u16,
            setup().to_payload().into_bytes(),
        );
        w
    }

    fn apply(&mut self, source: u32, kind: u16, payload: Vec<u8>) {
        let now = self.h.now;
        let _ = self
            .h
            .engine
            .handle_stored(now, SourceId(source), kind, &payload);
        while let Some(o) = self.h.engine.poll_output() {
            self.h.hub.handle_output(&o, &self.h.engine);
        }
        self.journal.push((now.0, source, kind, payload));
    }

    /// What the io layer does after every hub call: journal and apply its client records.
    fn pump(&mut self) {
        while let Some((kind, payload)) = self.h.hub.poll_record() {
            self.apply(CLIENT_SOURCE, kind, payload);
        }
    }

    pub(super) fn feed(&mut self, r: &Rec) {
        self.h.now = self.h.now.max(Nanos(r.now));
        self.apply(r.source, r.kind as u16, r.payload.clone());
    }

    pub(super) fn open(&mut self, conn: usize, query: &str) -> bool {
        let ok = self.h.hub.handle_open(self.h.now, ConnId(conn), query);
        self.pump();
        ok
    }

    pub(super) fn send(&mut self, conn: usize, text: &str) {
        self.h.send(conn, text);
        self.pump();
    }
}

pub(super) fn token(user: &str) -> String {
    format!("token={}", token_for(SECRET, user, EXP))
}

pub(super) fn of_type<'a>(msgs: &'a [Value], t: &str) -> Vec<&'a Value> {
    msgs.iter().filter(|m| m["type"] == t).collect()
}

pub(super) fn on_channel<'a>(msgs: &'a [Value], ch: &str) -> Vec<&'a Value> {
    msgs.iter()
        .filter(|m| m["type"] == "update" && m["channel"] == ch)
        .collect()
}

fn price_of(v: &Value) -> f64 {
    // Test-side arithmetic on decimal strings only to pick trigger prices; the engine never
    // sees a float.
    v.as_str().unwrap().parse().unwrap()
}

#[test]
fn bracket_risk_isolation_and_replay() {
    let records = fixture_records();
    let mut w = World::new();
    let mut next = 0;
    // Feed until the USD-M BTCUSDT book is synced.
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
    // Tokens: in the URL, in an `auth` request; bad ones refused.
    assert!(w.open(1, &token("alice")));
    assert!(w.open(2, ""));
    w.send(
        2,
        &format!(
            r#"{{"type":"auth","id":1,"token":"{}"}}"#,
            token_for(SECRET, "bob", EXP)
        ),
    );
    assert!(!w.open(3, "token=not.a.token"));
    assert!(w.h.tick().iter().any(
        |a| matches!(a, Action::Close { conn: ConnId(3), code, .. } if *code == CLOSE_UNAUTHORIZED)
    ));
    // Per-user limit (2 here): alice's third connection gets 4003.
    assert!(w.open(4, &token("alice")));
    assert!(!w.open(5, &token("alice")));
    assert!(w.h.tick().iter().any(|a| matches!(a, Action::Close { conn: ConnId(5), code, .. } if *code == CLOSE_TOO_MANY_CONNECTIONS)));
    // An unauthenticated client cannot subscribe to private channels or trade.
    assert!(w.open(6, ""));
    w.send(6, r#"{"type":"subscribe","id":2,"channels":["orders"]}"#);
    w.send(6, r#"{"type":"place_order","id":3,"symbol":"usdm:BTCUSDT","side":"buy","order_type":"market","qty":"0.01"}"#);
    let anon = w.h.drain(6);
    assert_eq!(of_type(&anon, "error").len(), 2, "{anon:?}");
    assert!(anon.iter().all(|m| m["code"] == 4001), "{anon:?}");
    // A viewer may not trade.
    assert!(w.open(7, &token("watcher")));
    w.send(7, r#"{"type":"place_order","id":4,"symbol":"usdm:BTCUSDT","side":"buy","order_type":"market","qty":"0.01"}"#);
    assert_eq!(of_type(&w.h.drain(7), "error")[0]["code"], 4002);

    let subscribe = r#"{"type":"subscribe","id":"s","channels":["orders","positions","portfolio","risk_alerts"]}"#;
    w.send(1, subscribe);
    w.send(2, subscribe);
    let a0 = w.h.drain(1);
    assert_eq!(a0[0]["type"], "authenticated");
    assert_eq!(a0[0]["user"], "alice");
    assert_eq!(of_type(&a0, "subscribed").len(), 1);
    w.h.drain(2);
    w.h.drain(4);
    // Nor cancel everything; a trader may cancel their own, only an admin everyone's.
    w.send(7, r#"{"type":"cancel_all","id":5}"#);
    assert_eq!(of_type(&w.h.drain(7), "error")[0]["code"], 4002);
    w.send(4, r#"{"type":"cancel_all","id":6,"all_users":true}"#);
    let refused = w.h.drain(4);
    assert_eq!(of_type(&refused, "error")[0]["code"], 4002, "{refused:?}");
    w.send(4, r#"{"type":"cancel_all","id":7,"all_users":1}"#);
    assert_eq!(of_type(&w.h.drain(4), "error")[0]["code"], 4004);
    w.send(4, r#"{"type":"cancel_all","id":8}"#);
    let own = w.h.drain(4);
    assert!(
        own.iter().any(|m| m["type"] == "ack" && m["canceled"] == 0),
        "{own:?}"
    );

    // A bracket around a market buy: triggers a few ticks either side of the book's mid.
    let book = w.h.engine.book(btc).unwrap().book();
    let (bid, ask) = (
        book.best_bid().unwrap().price.0,
        book.best_ask().unwrap().price.0,
    );
    let mid = (bid + ask) / 2;
    let (tp, sl) = (mid + 150, mid - 150); // +-1.50 USDT at scale 2
    let dec = |m: i64| format!("{}.{:02}", m / 100, m % 100);
    w.send(
        1,
        &format!(
            r#"{{"type":"place_order","id":10,"symbol":"usdm:BTCUSDT","side":"buy","order_type":"market","qty":"0.010","take_profit":"{}","stop_loss":"{}"}}"#,
            dec(tp),
            dec(sl)
        ),
    );
    let a1 = w.h.drain(1);
    let ack = of_type(&a1, "ack");
    assert_eq!(ack.len(), 1, "{a1:?}");
    assert_eq!(ack[0]["id"], 10);
    let adv = ack[0]["advanced_id"].as_str().unwrap().to_owned();
    let entry = ack[0]["client_order_id"].as_str().unwrap().to_owned();
    let orders = on_channel(&a1, "orders");
    assert!(
        orders
            .iter()
            .any(|m| m["data"]["client_order_id"] == entry.as_str()
                && m["data"]["status"] == "filled"),
        "{a1:?}"
    );
    let pos = on_channel(&a1, "positions");
    assert_eq!(pos.last().unwrap()["data"]["qty"], "0.010", "{a1:?}");
    assert_eq!(pos.last().unwrap()["data"]["side"], "long");
    assert!(!on_channel(&a1, "portfolio").is_empty());
    // The second connection of alice subscribed nothing: it gets nothing.
    assert!(w.h.drain(4).is_empty());

    // A risk violation: 5 BTC over max_order_qty 1.
    w.send(1, r#"{"type":"place_order","id":11,"symbol":"usdm:BTCUSDT","side":"buy","order_type":"limit","price":"1000.00","qty":"5.000"}"#);
    let a2 = w.h.drain(1);
    let err = of_type(&a2, "error");
    assert_eq!(err.len(), 1, "{a2:?}");
    assert_eq!(err[0]["code"], 4021);
    assert_eq!(err[0]["id"], 11);
    let alert = on_channel(&a2, "risk_alerts");
    assert_eq!(alert.len(), 1, "{a2:?}");
    assert_eq!(alert[0]["data"]["alert_type"], "order_qty");
    assert_eq!(alert[0]["data"]["limit"], "1");

    // The market moves on until the take-profit or the stop-loss closes the position.
    let mut all = Vec::new();
    let mut closed = false;
    while next < records.len() && !closed {
        w.feed(&records[next]);
        next += 1;
        let msgs = w.h.drain(1);
        closed = on_channel(&msgs, "positions")
            .iter()
            .any(|m| m["data"]["side"] == "flat");
        all.extend(msgs);
    }
    assert!(
        closed,
        "neither leg fired within the fixtures (tp {tp}, sl {sl})"
    );
    let done = on_channel(&all, "orders")
        .into_iter()
        .find(|m| {
            m["data"]["event"] == "advanced"
                && m["data"]["advanced_id"] == adv.as_str()
                && m["data"]["state"] == "done"
        })
        .unwrap_or_else(|| panic!("bracket never done: {all:?}"));
    assert!(
        done["data"]["reason"].as_str().unwrap().contains("leg"),
        "{done}"
    );
    let exit = on_channel(&all, "orders")
        .into_iter()
        .rfind(|m| m["data"]["event"] == "order" && m["data"]["status"] == "filled")
        .unwrap();
    assert_eq!(exit["data"]["side"], "sell");
    let px = price_of(&exit["data"]["avg_price"]);
    assert!(
        px >= tp as f64 / 100.0 - 0.001 || px <= sl as f64 / 100.0 + 0.001,
        "{exit}"
    );
    let pf = on_channel(&all, "portfolio").last().cloned().unwrap();
    assert_eq!(pf["data"]["open_positions"], 0);

    // Bob subscribed the same channels and saw none of it.
    let b = w.h.drain(2);
    assert!(on_channel(&b, "orders").is_empty(), "{b:?}");
    assert!(on_channel(&b, "positions").is_empty(), "{b:?}");
    assert!(on_channel(&b, "risk_alerts").is_empty(), "{b:?}");

    // get_* snapshots.
    w.send(1, r#"{"type":"get_positions","id":20}"#);
    w.send(1, r#"{"type":"get_portfolio","id":21}"#);
    let snaps = w.h.drain(1);
    assert_eq!(snaps[0]["type"], "positions");
    assert_eq!(snaps[0]["data"][0]["side"], "flat");
    assert_eq!(snaps[1]["type"], "portfolio");

    // Publisher: stamped and broadcast to subscribers of `signal`.
    assert!(w.open(8, &token("feed")));
    w.send(2, r#"{"type":"subscribe","channels":["signal"]}"#);
    w.h.drain(2);
    w.send(
        8,
        r#"{"type":"publish","id":1,"channel":"signal","data":{"side":"buy","strength":"0.7"}}"#,
    );
    assert_eq!(of_type(&w.h.drain(8), "ack").len(), 1);
    let sig = w.h.drain(2);
    assert_eq!(sig.len(), 1, "{sig:?}");
    assert_eq!(sig[0]["data"]["publisher"], "feed");
    assert_eq!(sig[0]["data"]["payload"]["strength"], "0.7");
    // Alice may not publish.
    w.send(1, r#"{"type":"publish","channel":"signal","data":{}}"#);
    assert_eq!(of_type(&w.h.drain(1), "error")[0]["code"], 4002);

    // Replaying every record, client records included, gives the same outputs.
    let live = w.h.engine.digest();
    let mut replay = Engine::new(EngineConfig::default()).unwrap();
    for (now, source, kind, payload) in &w.journal {
        let _ = replay.handle_stored(Nanos(*now), SourceId(*source), *kind, payload);
        while replay.poll_output().is_some() {}
    }
    assert_eq!(replay.digest(), live);
    assert!(live.count() > 0);
}

#[test]
fn client_records_never_panic_on_garbage() {
    let mut e = Engine::new(EngineConfig::default()).unwrap();
    let bad: [&[u8]; 6] = [
        b"",
        b"tape-client/1",
        b"tape-client/1 op=command conn=1 user=alice\n{",
        b"tape-client/1 op=nope conn=1 user=alice\n",
        b"\xff\xfe",
        b"tape-desk/1\nuser=\n",
    ];
    for p in bad {
        assert!(e
            .handle_record(Nanos(1), SourceId(CLIENT_SOURCE), RecordKind::Client, p)
            .is_err());
        let _ = e.handle_record(Nanos(1), SourceId(CLIENT_SOURCE), RecordKind::DeskSetup, p);
    }
    e.handle_record(
        Nanos(1),
        SourceId(CLIENT_SOURCE),
        RecordKind::DeskSetup,
        setup().to_payload().as_bytes(),
    )
    .unwrap();
    while e.poll_output().is_some() {}
    // Bad commands are answered (an error reply), not failed.
    e.handle_record(
        Nanos(2),
        SourceId(CLIENT_SOURCE),
        RecordKind::Client,
        b"tape-client/1 op=command conn=1 user=alice\n{\"type\":\"place_order\",\"symbol\":\"NOPE\"}",
    )
    .unwrap();
    let out = e.poll_output().unwrap();
    let crate::output::Event::Private(m) = out.event else {
        panic!("{out:?}")
    };
    assert!(m.json.contains("\"code\":4005"), "{}", m.json);
    // An unknown user is a record error.
    assert!(e
        .handle_record(
            Nanos(3),
            SourceId(CLIENT_SOURCE),
            RecordKind::Client,
            b"tape-client/1 op=login conn=1 user=mallory\n",
        )
        .is_err());
}

/// While the node cannot journal, the hub takes no order (4030, nothing queued for the
/// journal), tells `status` subscribers, and takes orders again once the journal is back.
#[test]
fn orders_wait_for_the_journal_and_the_status_channel_says_so() {
    let mut w = World::new();
    assert!(w.open(1, &token("alice")));
    w.send(1, r#"{"type":"subscribe","id":1,"channels":["status"]}"#);
    w.h.drain(1);
    let order = r#"{"type":"place_order","id":7,"market":"usdm","symbol":"BTCUSDT","side":"buy","order_type":"market","qty":"0.001","client_order_id":"j1"}"#;

    let degraded = super::JournalStatus {
        degraded: true,
        reason: "no space left on device".into(),
        skipped_inputs: 3,
        since_ns: 5,
    };
    w.h.hub.set_journal_status(w.h.now, &degraded);
    w.h.hub.handle_text(w.h.now, ConnId(1), order, &w.h.engine);
    assert!(
        w.h.hub.poll_record().is_none(),
        "an order nobody can journal is not queued"
    );
    let msgs = w.h.drain(1);
    let status = on_channel(&msgs, "status");
    assert_eq!(status.len(), 1, "{msgs:?}");
    assert_eq!(status[0]["venue"], "journal");
    assert_eq!(status[0]["data"]["state"], "degraded");
    assert_eq!(status[0]["data"]["skipped_inputs"], 3);
    let errors = of_type(&msgs, "error");
    assert_eq!(errors.len(), 1, "{msgs:?}");
    assert_eq!(errors[0]["code"], 4030);
    assert_eq!(errors[0]["id"], 7);
    assert!(errors[0]["message"]
        .as_str()
        .unwrap()
        .contains("no space left on device"));

    // A late `status` subscriber gets the journal's state as initial state too.
    assert!(w.open(2, &token("bob")));
    w.send(2, r#"{"type":"subscribe","id":1,"channels":["status"]}"#);
    let late = w.h.drain(2);
    assert!(on_channel(&late, "status")
        .iter()
        .any(|m| m["venue"] == "journal" && m["data"]["state"] == "degraded"));

    let ok = super::JournalStatus {
        reason: "recovered".into(),
        ..Default::default()
    };
    w.h.hub.set_journal_status(w.h.now, &ok);
    let before = w.journal.len();
    w.send(1, order);
    assert_eq!(w.journal.len(), before + 1, "the order is journaled again");
    let msgs = w.h.drain(1);
    assert!(on_channel(&msgs, "status")
        .iter()
        .any(|m| m["data"]["state"] == "ok"));
    assert!(of_type(&msgs, "error").iter().all(|e| e["code"] != 4030));
}
