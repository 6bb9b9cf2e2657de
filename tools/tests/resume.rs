//! `resume` over real sockets on 127.0.0.1: a client whose connection is cut (the socket
//! dropped, no close frame) comes back on a new connection, names the last `seq` it had on
//! each stream, and gets exactly the messages a client that never left got after it, then
//! live ones: public channels while the bundled session plays, and a trader's private
//! channels while a bracket order's leg fills with its owner away (whose recording then
//! replays to the live digest). Every wait is bounded.

mod support;

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{json, Value};
use support::private::{
    cents, connect, next, spawn_node, subscribe_when_known as subscribe, until, update, Ws, WAIT,
};
use support::{root, send_json as send};
use tape_core::auth::token_for;
use tape_tools::config::{Config, UserSection};
use tape_tools::run::node_config;

const SECRET: &str = "an-integration-test-secret-of-at-least-32-bytes";
const EXP: u64 = 4_000_000_000;

/// (channel, market, symbol) of a market stream; (channel, "", "") of a private one.
type Key = (String, String, String);

fn key_of(m: &Value) -> Option<(Key, u64)> {
    if m["type"] != "update" && m["type"] != "snapshot" && m["type"] != "status" {
        return None;
    }
    let s = |k: &str| m[k].as_str().unwrap_or_default().to_owned();
    Some(((s("channel"), s("market"), s("symbol")), m["seq"].as_u64()?))
}

fn last_seqs(msgs: &[Value]) -> BTreeMap<Key, u64> {
    msgs.iter().filter_map(key_of).collect()
}

/// The messages of stream `k` with `seq` in `(after, upto]`, in arrival order.
fn range<'a>(msgs: &'a [Value], k: &Key, after: u64, upto: u64) -> Vec<&'a Value> {
    msgs.iter()
        .filter(|m| key_of(m).is_some_and(|(mk, s)| &mk == k && s > after && s <= upto))
        .collect()
}

fn config() -> Config {
    let mut cfg = Config::default();
    cfg.server.listen = "127.0.0.1:0".into();
    cfg.server.status_interval_secs = 0;
    // Room enough that the clients that never leave are never conflated.
    cfg.server.outbound_queue = 100_000;
    cfg.feed.journal = root().join("fixtures/session").display().to_string();
    cfg.feed.speed = 2;
    cfg.feed.repeat = false;
    cfg
}

/// Checks the resumed reply and that `back`, from the cut client's last `seq` on, is
/// exactly what `always` got, for every stream resumed; returns the resumed streams.
fn assert_gapless(
    had: &BTreeMap<Key, u64>,
    always: &[Value],
    back: &[Value],
    reply: &Value,
) -> Vec<Key> {
    let mut resumed = Vec::new();
    for s in reply["streams"].as_array().unwrap() {
        let k: Key = (
            s["channel"].as_str().unwrap().to_owned(),
            s["market"].as_str().unwrap_or_default().to_owned(),
            s["symbol"].as_str().unwrap_or_default().to_owned(),
        );
        if s["resumed"] != true {
            continue;
        }
        let after = had.get(&k).copied().unwrap_or(0);
        let upto = last_seqs(back).get(&k).copied().unwrap_or(after);
        let want = range(always, &k, after, upto);
        let got = range(back, &k, after, upto);
        assert_eq!(got, want, "{k:?} after {after} up to {upto}");
        let seqs: Vec<u64> = got.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
        assert_eq!(
            seqs,
            ((after + 1)..=upto).collect::<Vec<u64>>(),
            "{k:?}: every seq once"
        );
        resumed.push(k);
    }
    resumed
}

#[test]
fn public_streams_resume_with_no_gap_and_no_duplicate() {
    let (addr, stop, handle) = spawn_node(node_config(&config()).unwrap());
    let deadline = Instant::now() + WAIT;
    let sub = json!({"type":"subscribe","channels":["trades","bbo","ticker","book"],"symbols":["usdm:BTCUSDT"]});
    let mut always = connect(addr, "");
    let mut cut = connect(addr, "");
    for ws in [&mut always, &mut cut] {
        subscribe(ws, deadline, &sub);
    }
    let trades = |m: &Value| update(m, "trades").is_some();
    // The cut client reads 5 trades, then its socket is dropped.
    let mut n = 0;
    let had_msgs = until(&mut cut, deadline, |m| {
        n += usize::from(trades(m));
        n == 5
    });
    drop(cut);
    let had = last_seqs(&had_msgs);
    let had_trades = had[&("trades".into(), "usdm".into(), "BTCUSDT".into())];
    // The market moves on: 10 more trades while it is away.
    let mut seen = until(&mut always, deadline, |m| {
        update(m, "trades").is_some() && m["seq"].as_u64().unwrap() >= had_trades + 10
    });
    let streams: Vec<Value> = ["trades", "bbo", "ticker", "book"]
        .iter()
        .map(|ch| {
            let k: Key = ((*ch).into(), "usdm".into(), "BTCUSDT".into());
            json!({"channel":ch,"symbol":"usdm:BTCUSDT","seq":had.get(&k).copied().unwrap_or(0)})
        })
        .collect();
    let mut back = connect(addr, "");
    send(&mut back, json!({"type":"resume","id":5,"streams":streams}));
    let reply = next(&mut back, deadline).unwrap();
    assert_eq!(reply["type"], "resumed", "{reply}");
    assert_eq!(reply["id"], 5);
    // Read on until the resumed client is 10 live trades past the resume.
    let target = had_trades + 20;
    let got = until(&mut back, deadline, |m| {
        trades(m) && m["seq"].as_u64().unwrap() >= target
    });
    seen.extend(until(&mut always, deadline, |m| {
        trades(m) && m["seq"].as_u64().unwrap() >= target
    }));
    let resumed = assert_gapless(&had, &seen, &got, &reply);
    assert!(
        resumed.iter().any(|k| k.0 == "trades") && resumed.iter().any(|k| k.0 == "bbo"),
        "{reply}"
    );
    let replayed = &reply["streams"][0]["replayed"];
    assert!(replayed.as_u64().unwrap() >= 10, "{reply}");
    // Counted in /status and /metrics.
    let (_, body) = support::get_at(addr, "/status", "");
    let st: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        st["resume"]["resumed"].as_u64().unwrap() as usize,
        resumed.len(),
        "{}",
        st["resume"]
    );
    assert!(st["resume"]["replayed"].as_u64().unwrap() >= 10);
    let (_, metrics) = support::get_at(addr, "/metrics", "");
    assert!(
        metrics.contains(&format!(
            "tape_resume_streams_total{{outcome=\"resumed\"}} {}",
            resumed.len()
        )),
        "{metrics}"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    handle.join().unwrap();
}

/// A market buy of 0.010 with take-profit and stop-loss 1.00 either side of the mid; read
/// until the position is long.
fn buy_bracket(ws: &mut Ws, deadline: Instant, mid: i64) -> Vec<Value> {
    let px = |c: i64| format!("{}.{:02}", c / 100, c % 100);
    send(
        ws,
        json!({"type":"place_order","id":7,"symbol":"usdm:BTCUSDT","side":"buy",
               "order_type":"market","qty":"0.010","take_profit":px(mid + 100),"stop_loss":px(mid - 100)}),
    );
    until(ws, deadline, |m| {
        update(m, "positions").is_some_and(|d| d["side"] == "long")
    })
}

#[test]
fn orders_filled_while_the_owner_is_away_are_replayed_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = tmp.path().join("rec");
    let mut cfg = config();
    cfg.feed.speed = 1; // the bundled session is 12 s of market data
    cfg.feed.record = rec.display().to_string();
    cfg.auth.secret = SECRET.into();
    for (name, role) in [("alice", "trader"), ("bob", "trader")] {
        cfg.users.push(UserSection {
            name: name.into(),
            roles: vec![role.into()],
            max_connections: 0,
            shm_group: String::new(),
        });
    }
    cfg.validate().unwrap();
    let (addr, stop, handle) = spawn_node(node_config(&cfg).unwrap());
    let deadline = Instant::now() + WAIT;
    let alice = format!("?token={}", token_for(SECRET.as_bytes(), "alice", EXP));
    let channels = ["orders", "positions", "portfolio", "risk_alerts"];
    let mut stays = connect(addr, &alice);
    let mut away = connect(addr, &alice);
    for ws in [&mut stays, &mut away] {
        assert_eq!(next(ws, deadline).unwrap()["type"], "authenticated");
        send(ws, json!({"type":"subscribe","id":"p","channels":channels}));
        until(ws, deadline, |m| m["type"] == "subscribed");
    }
    subscribe(
        &mut away,
        deadline,
        &json!({"type":"subscribe","channels":["bbo"],"symbols":["usdm:BTCUSDT"]}),
    );
    let bbo = until(&mut away, deadline, |m| {
        update(m, "bbo").is_some_and(|d| d["bid"].is_string() && d["ask"].is_string())
    });
    let d = update(bbo.last().unwrap(), "bbo").unwrap();
    let mid = (cents(&d["bid"]) + cents(&d["ask"])) / 2;
    let had_msgs = buy_bracket(&mut away, deadline, mid);
    drop(away);
    let had = last_seqs(&had_msgs);
    // A leg closes the position while alice's second connection is gone.
    let mut seen = until(&mut stays, deadline, |m| {
        update(m, "positions").is_some_and(|d| d["side"] == "flat")
    });
    // Bob cannot resume alice's orders: his stream has no such seq.
    let mut bob = connect(
        addr,
        &format!("?token={}", token_for(SECRET.as_bytes(), "bob", EXP)),
    );
    next(&mut bob, deadline).unwrap();
    let orders: Key = ("orders".into(), String::new(), String::new());
    send(
        &mut bob,
        json!({"type":"resume","id":1,"streams":[{"channel":"orders","seq":had[&orders]}]}),
    );
    let refused = next(&mut bob, deadline).unwrap();
    assert_eq!(refused["code"], 4012, "{refused}");

    let streams: Vec<Value> = channels
        .iter()
        .map(|ch| {
            let k: Key = ((*ch).into(), String::new(), String::new());
            json!({"channel":ch,"seq":had.get(&k).copied().unwrap_or(0)})
        })
        .collect();
    let mut back = connect(addr, &alice);
    assert_eq!(next(&mut back, deadline).unwrap()["type"], "authenticated");
    send(
        &mut back,
        json!({"type":"resume","id":"r","streams":streams}),
    );
    let reply = next(&mut back, deadline).unwrap();
    assert_eq!(reply["type"], "resumed", "{reply}");
    let got = until(&mut back, deadline, |m| {
        update(m, "positions").is_some_and(|d| d["side"] == "flat")
    });
    // `stays` reads on to the same point (the replay ran to the stream's head).
    let upto = last_seqs(&got);
    while upto
        .iter()
        .any(|(k, u)| last_seqs(&seen).get(k).is_none_or(|s| s < u))
    {
        seen.push(next(&mut stays, deadline).unwrap());
    }
    let resumed = assert_gapless(&had, &seen, &got, &reply);
    assert_eq!(resumed.len(), 4, "{reply}");
    let filled_away: Vec<&Value> = range(&got, &orders, had[&orders], u64::MAX)
        .into_iter()
        .filter(|m| update(m, "orders").is_some_and(|d| d["status"] == "filled"))
        .collect();
    assert!(
        filled_away
            .iter()
            .any(|m| update(m, "orders").unwrap()["side"] == "sell"),
        "the leg that filled while alice was away was replayed: {got:?}"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let live = handle.join().unwrap();
    // The resume (journaled as the session's subscription) leaves the digest as it was:
    // the recording replays to the live digest.
    let (summary, _) = tape_tools::replay::replay(&rec).unwrap();
    assert_eq!(summary.digest, format!("{:016x}", live.value()));
}
