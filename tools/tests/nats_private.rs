//! Private sessions on edges, against a real `nats-server`: a trader on one edge places a
//! bracket order on the paper venue; the edge forwards it to the origin, which journals and
//! applies it; the fill reaches the trader on its edge through the log, the account is the
//! same on the origin and every edge, and a second user on the other edge sees none of it.
//! Ignored by default; `.ci/nats.sh` runs it.

mod support;

use std::time::Instant;

use serde_json::{json, Value};
use support::nats::{digest, edge_with, origin_with, session_records, status, wait_status, Nats};
use support::private::{connect, http_get, next, until, update, usdm_btc_mid, WAIT};
use support::send_json as send;
use tape_core::auth::token_for;
use tape_tools::config::{Config, UserSection};

const SECRET: &str = "an-integration-test-secret-of-at-least-32-bytes";
const EXP: u64 = 4_000_000_000;

/// The same `[auth]` and users on every node.
fn users(c: &mut Config) {
    c.auth.secret = SECRET.into();
    for name in ["alice", "bob"] {
        c.users.push(UserSection {
            name: name.into(),
            roles: vec!["trader".into()],
            max_connections: 0,
            shm_group: String::new(),
        });
    }
}

#[test]
#[ignore = "needs nats-server: run by .ci/nats.sh"]
fn a_bracket_on_an_edge_fills_and_every_node_agrees() {
    let nats = Nats::start();
    let tmp = tempfile::tempdir().unwrap();
    let o = origin_with(&nats.url(), 2, &tmp.path().join("origin"), users);
    let a = edge_with(&nats.url(), |c| {
        users(c);
        c.nats.edge_id = 1;
    });
    let b = edge_with(&nats.url(), |c| {
        users(c);
        c.nats.edge_id = 2;
    });
    for e in [a.addr, b.addr] {
        wait_status(e, "the edge is live", |s| s["nats"]["state"] == "live");
    }
    let deadline = Instant::now() + WAIT;
    let mut alice = connect(
        a.addr,
        &format!("?token={}", token_for(SECRET.as_bytes(), "alice", EXP)),
    );
    assert_eq!(next(&mut alice, deadline).unwrap()["type"], "authenticated");
    let mut bob = connect(
        b.addr,
        &format!("?token={}", token_for(SECRET.as_bytes(), "bob", EXP)),
    );
    assert_eq!(next(&mut bob, deadline).unwrap()["type"], "authenticated");
    for ws in [&mut alice, &mut bob] {
        send(
            ws,
            json!({"type":"subscribe","id":"p","channels":["orders","positions","portfolio","risk_alerts"]}),
        );
        until(ws, deadline, |m| m["type"] == "subscribed");
    }

    let mid = usdm_btc_mid(&mut alice, deadline);
    let px = |c: i64| format!("{}.{:02}", c / 100, c % 100);
    send(
        &mut alice,
        json!({"type":"place_order","id":7,"symbol":"usdm:BTCUSDT","side":"buy",
               "order_type":"market","qty":"0.010","take_profit":px(mid + 100),"stop_loss":px(mid - 100)}),
    );
    // The answer and the fill come back to Alice on her edge, through the origin's log.
    let log = until(&mut alice, deadline, |m| {
        update(m, "positions").is_some_and(|d| d["side"] == "long")
    });
    let ack = log
        .iter()
        .find(|m| m["type"] == "ack")
        .expect("an ack on the edge");
    assert_eq!(ack["id"], 7);
    let entry = ack["client_order_id"].as_str().unwrap().to_owned();
    assert!(log.iter().any(|m| update(m, "orders")
        .is_some_and(|d| d["client_order_id"] == entry.as_str() && d["status"] == "filled")));

    // The session ends; every node has applied the origin's whole log.
    let n = session_records();
    let fin = wait_status(o.addr, "the origin finishes and NATS has it all", |s| {
        s["feed"]["records"].as_u64().unwrap() > n && s["nats"]["acked"] == s["nats"]["published"]
    });
    let _ = fin;
    wait_status(o.addr, "every edge applied the origin's whole log", |s| {
        let last = &s["nats"]["published"];
        s["nats"]["acked"] == *last
            && [a.addr, b.addr].iter().all(|&e| {
                let es = status(e);
                es["nats"]["applied"] == *last && es["nats"]["state"] == "live"
            })
    });
    let d = digest(o.addr);
    assert_eq!(digest(a.addr), d);
    assert_eq!(digest(b.addr), d);

    // Alice's account is the same everywhere; Bob's is empty everywhere.
    let alice_t = token_for(SECRET.as_bytes(), "alice", EXP);
    let bob_t = token_for(SECRET.as_bytes(), "bob", EXP);
    for path in ["/api/positions", "/api/orders"] {
        let at = |addr| {
            let (code, v) = http_get(addr, path, Some(&alice_t));
            assert_eq!(code, 200, "{v}");
            v["data"].clone()
        };
        let here = at(o.addr);
        assert_eq!(at(a.addr), here, "{path} on edge a");
        assert_eq!(at(b.addr), here, "{path} on edge b");
        let (_, bobs) = http_get(b.addr, path, Some(&bob_t));
        assert_eq!(bobs["data"], json!([]), "bob's {path}");
    }
    let portfolio = |addr| http_get(addr, "/api/portfolio", Some(&alice_t)).1["data"].clone();
    let p = portfolio(o.addr);
    assert_eq!(portfolio(a.addr), p);
    assert_eq!(portfolio(b.addr), p);
    eprintln!("alice's portfolio everywhere: {p}");
    let fees = p["balances"][0]["fees_paid"].as_str().expect("a balance");
    assert_ne!(fees, "0.00000000", "the bracket traded: {p}");
    assert!(p["summary"]["realized_pnl"].is_string(), "{p}");

    // Bob, on the other edge: nothing of Alice's before the answer to his own request.
    send(&mut bob, json!({"type":"get_orders","id":"b"}));
    let bob_saw: Vec<Value> = until(&mut bob, deadline, |m| m["type"] == "orders");
    assert_eq!(bob_saw.len(), 1, "bob saw {bob_saw:?}");
    assert_eq!(bob_saw[0]["data"], json!([]));

    let (sa, so) = (
        status(a.addr)["nats"].clone(),
        status(o.addr)["nats"].clone(),
    );
    assert!(sa["forwarded"].as_u64().unwrap() >= 3, "{sa}");
    assert_eq!(sa["forward_failed"], 0, "{sa}");
    assert_eq!(so["commands_refused"], 0, "{so}");
}

/// An edge answers every order even when its origin cannot take it: an order sent as the
/// origin goes away is answered 4031 (the forward got no answer, or the edge already knew),
/// and once the edge sees the origin silent it takes no order (4031 naming the state)
/// without forwarding anything.
#[test]
#[ignore = "needs nats-server: run by .ci/nats.sh"]
fn an_order_on_an_edge_whose_origin_is_gone_is_answered() {
    let nats = Nats::start();
    let tmp = tempfile::tempdir().unwrap();
    let o = origin_with(&nats.url(), 1, &tmp.path().join("origin"), users);
    let a = edge_with(&nats.url(), |c| {
        users(c);
        c.nats.edge_id = 1;
        c.nats.origin_timeout_ms = 1000;
    });
    wait_status(a.addr, "the edge is live", |s| s["nats"]["state"] == "live");
    let deadline = Instant::now() + WAIT;
    let mut alice = connect(
        a.addr,
        &format!("?token={}", token_for(SECRET.as_bytes(), "alice", EXP)),
    );
    assert_eq!(next(&mut alice, deadline).unwrap()["type"], "authenticated");
    wait_status(a.addr, "the login reached the origin", |s| {
        s["nats"]["forwarded"].as_u64().unwrap() >= 1
    });

    drop(o);
    let order = |id: u64| {
        json!({"type":"place_order","id":id,"symbol":"usdm:BTCUSDT","side":"buy",
               "order_type":"market","qty":"0.010"})
    };
    send(&mut alice, order(9));
    let got = until(&mut alice, deadline, |m| {
        m["type"] == "error" || m["type"] == "ack"
    });
    let answer = got.last().unwrap();
    assert_eq!(answer["type"], "error", "{got:?}");
    assert_eq!(answer["code"], 4031, "{answer}");
    assert_eq!(answer["id"], 9, "{answer}");

    let st = wait_status(a.addr, "the edge sees the origin silent", |s| {
        s["nats"]["state"] == "origin_silent"
    });
    let forwarded =
        st["nats"]["forwarded"].as_u64().unwrap() + st["nats"]["forward_failed"].as_u64().unwrap();
    send(&mut alice, order(10));
    let got = until(&mut alice, deadline, |m| m["type"] == "error");
    let answer = got.last().unwrap();
    assert_eq!(answer["code"], 4031, "{answer}");
    assert_eq!(answer["id"], 10, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("origin_silent"),
        "{answer}"
    );
    let st = status(a.addr);
    assert_eq!(
        st["nats"]["forwarded"].as_u64().unwrap() + st["nats"]["forward_failed"].as_u64().unwrap(),
        forwarded,
        "nothing forwarded while the origin is silent: {st}"
    );
}
