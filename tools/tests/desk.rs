//! Private sessions over real WebSockets on loopback: a trader authenticates, places a
//! bracket order on the paper venue while the bundled session plays, watches it fill, sees
//! positions and portfolio move and a leg close the position; a risk violation is refused
//! with a `risk_alert`; another user sees none of it; the per-user connection limit holds;
//! `/api/*` answers with a Bearer token; and the recorded journal replays to the same digest.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use support::private::{
    cents, connect, http_get, next, spawn_node, until, update, usdm_btc_mid, Ws, WAIT,
};
use support::{root, send_json as send};
use tape_core::auth::token_for;
use tape_tools::config::{Config, UserSection};
use tape_tools::run::node_config;

const SECRET: &str = "an-integration-test-secret-of-at-least-32-bytes";
const HMAC_KEY: &str = "deskHmacKey";
const HMAC_SECRET: &[u8] = b"the-desk-tests-hmac-secret";
const EXP: u64 = 4_000_000_000;

/// A market buy of 0.010 with take-profit and stop-loss 1.00 either side of `mid`, read
/// until the position is long: (take-profit, stop-loss, entry id, what was read).
fn buy_bracket(
    ws: &mut Ws,
    deadline: Instant,
    id: u64,
    mid: i64,
) -> (i64, i64, String, Vec<Value>) {
    let (tp, sl) = (mid + 100, mid - 100);
    let px = |c: i64| format!("{}.{:02}", c / 100, c % 100);
    send(
        ws,
        json!({"type":"place_order","id":id,"symbol":"usdm:BTCUSDT","side":"buy",
               "order_type":"market","qty":"0.010","take_profit":px(tp),"stop_loss":px(sl)}),
    );
    let log = until(ws, deadline, |m| {
        update(m, "positions").is_some_and(|d| d["side"] == "long")
    });
    let ack = log.iter().find(|m| m["type"] == "ack").expect("an ack");
    assert_eq!(ack["id"], id);
    let entry = ack["client_order_id"].as_str().unwrap().to_owned();
    (tp, sl, entry, log)
}

/// The last filled order of `log` is a sell at or beyond one of the bracket's legs.
fn assert_leg_closed(log: &[Value], tp: i64, sl: i64) -> Value {
    let exit = log
        .iter()
        .filter_map(|m| update(m, "orders"))
        .rfind(|d| d["event"] == "order" && d["status"] == "filled")
        .unwrap()
        .clone();
    assert_eq!(exit["side"], "sell");
    let exit_px = cents(&exit["avg_price"]);
    assert!(exit_px >= tp || exit_px <= sl, "{exit}");
    exit
}

#[test]
fn bracket_order_risk_alert_isolation_limits_and_replay() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = tmp.path().join("rec");
    let mut cfg = Config::default();
    cfg.server.listen = "127.0.0.1:0".into();
    cfg.server.status_interval_secs = 0;
    cfg.feed.journal = root().join("fixtures/session").display().to_string();
    cfg.feed.speed = 1; // the bundled session is 12 s of market data
    cfg.feed.repeat = false;
    cfg.feed.record = rec.display().to_string();
    cfg.auth.secret = SECRET.into();
    cfg.auth.max_connections_per_user = 2;
    cfg.desk.max_order_qty = "1".into();
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
    let alice_token = token_for(SECRET.as_bytes(), "alice", EXP);
    let bob_token = token_for(SECRET.as_bytes(), "bob", EXP);

    // Alice by URL token, Bob by an `auth` request; a forged token is closed with 4001.
    let mut alice = connect(addr, &format!("?token={alice_token}"));
    assert_eq!(next(&mut alice, deadline).unwrap()["type"], "authenticated");
    let mut bob = connect(addr, "");
    send(&mut bob, json!({"type":"auth","id":1,"token":bob_token}));
    assert_eq!(next(&mut bob, deadline).unwrap()["user"], "bob");
    let mut forged = connect(addr, &format!("?token={}x", &alice_token));
    assert_eq!(next(&mut forged, deadline).unwrap()["code"], 4001);
    assert_eq!(next(&mut forged, deadline).unwrap_err(), Some(4001));

    for ws in [&mut alice, &mut bob] {
        send(
            ws,
            json!({"type":"subscribe","id":"p","channels":["orders","positions","portfolio","risk_alerts"]}),
        );
        until(ws, deadline, |m| m["type"] == "subscribed");
    }
    let mid = usdm_btc_mid(&mut alice, deadline);
    let (tp, sl, entry, mut log) = buy_bracket(&mut alice, deadline, 7, mid);
    assert!(log.iter().any(|m| update(m, "orders")
        .is_some_and(|d| d["client_order_id"] == entry.as_str() && d["status"] == "filled")));

    // Over the quantity limit: refused, with an alert on risk_alerts.
    send(
        &mut alice,
        json!({"type":"place_order","id":8,"symbol":"usdm:BTCUSDT","side":"buy",
               "order_type":"limit","price":"1000.00","qty":"5.000"}),
    );
    let got = until(&mut alice, deadline, |m| update(m, "risk_alerts").is_some());
    let err = got
        .iter()
        .find(|m| m["type"] == "error")
        .expect("an error reply");
    assert_eq!(
        (err["code"].clone(), err["id"].clone()),
        (json!(4021), json!(8))
    );
    let alert = update(got.last().unwrap(), "risk_alerts").unwrap();
    assert_eq!(alert["alert_type"], "order_qty");
    assert_eq!(alert["severity"], "warning");
    log.extend(got);

    // The market moves until a leg closes the position.
    log.extend(until(&mut alice, deadline, |m| {
        update(m, "positions").is_some_and(|d| d["side"] == "flat")
    }));
    assert_leg_closed(&log, tp, sl);
    assert!(log.iter().any(|m| update(m, "portfolio").is_some()));

    // HTTP snapshots with the same token.
    let (status, orders) = http_get(addr, "/api/portfolio", Some(&alice_token));
    assert_eq!(status, 200, "{orders}");
    assert_eq!(orders["data"]["summary"]["open_positions"], 0);
    assert_eq!(http_get(addr, "/api/orders", None).0, 401);
    assert_eq!(http_get(addr, "/api/orders", Some("garbage")).0, 401);
    let (status, bobs) = http_get(addr, "/api/positions", Some(&bob_token));
    assert_eq!((status, bobs["data"].clone()), (200, json!([])));

    // Bob: nothing of Alice's arrived before the answer to his own request.
    send(&mut bob, json!({"type":"get_orders","id":"b"}));
    let bob_saw = until(&mut bob, deadline, |m| m["type"] == "orders");
    assert_eq!(bob_saw.len(), 1, "bob saw {bob_saw:?}");
    assert_eq!(bob_saw[0]["data"], json!([]));

    // Per-user limit of 2: Alice's third connection is refused with 4003.
    let mut second = connect(addr, &format!("?token={alice_token}"));
    assert_eq!(
        next(&mut second, deadline).unwrap()["type"],
        "authenticated"
    );
    let mut third = connect(addr, &format!("?token={alice_token}"));
    assert_eq!(next(&mut third, deadline).unwrap()["code"], 4003);
    assert_eq!(next(&mut third, deadline).unwrap_err(), Some(4003));

    stop.store(true, Ordering::Relaxed);
    for ws in [alice, bob, second] {
        drop(ws);
    }
    let live = handle.join().unwrap();
    // The journal holds the client records too: replay gives the live digest.
    let (summary, _) = tape_tools::replay::replay(&rec).unwrap();
    assert_eq!(summary.digest, format!("{:016x}", live.value()));
    assert_eq!(summary.output_events, live.count());
}

struct GatewayNode {
    sim: tape_tools::sim::SimHandle,
    _certs: tempfile::TempDir,
    _tmp: tempfile::TempDir,
    rec: std::path::PathBuf,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<tape_core::output::Digest>,
}

/// The in-process simulator as the feed and (unless `url` names another) the order venue.
fn gateway_node(url: Option<&str>) -> GatewayNode {
    use tape_tools::run::{live_config, node_config_with, sim_venues};
    use tape_tools::sim::{SimAuth, SimConfig, VenueSim};
    let certs = tempfile::tempdir().unwrap();
    let sim = VenueSim::start(SimConfig {
        journal: root().join("fixtures/session"),
        speed: 1,
        repeat: false,
        cert_dir: certs.path().to_owned(),
        // Strict, as Binance: tape signs every request with its HMAC key.
        auth: SimAuth::Strict(
            tape_tools::sim::ApiKeys::new()
                .with_hmac(HMAC_KEY, HMAC_SECRET)
                .unwrap(),
        ),
        ..SimConfig::default()
    })
    .expect("sim starts");
    let tmp = tempfile::tempdir().unwrap();
    let rec = tmp.path().join("rec");
    let mut cfg = support::private::sim_node_config(&rec, SECRET);
    cfg.live.reconnect_initial_ms = 200;
    cfg.desk.gateway = "usdm".into();
    cfg.desk.max_order_qty = "1".into();
    for name in ["alice", "bob"] {
        cfg.users.push(UserSection {
            name: name.into(),
            roles: vec!["trader".into()],
            max_connections: 0,
            shm_group: String::new(),
        });
    }
    cfg.validate().unwrap();
    let mut live = live_config(&cfg, sim_venues(&sim), sim.ca_path()).unwrap();
    tape_tools::run::use_sim_gateway(&mut live, &sim, tape_core::instrument::Market::UsdM);
    live.gateway.credentials = Some(Arc::new(
        tape_node::live::Credentials::new(
            HMAC_KEY,
            tape_core::sign::Signer::Hmac(tape_core::sign::HmacKey::new(HMAC_SECRET)),
        )
        .unwrap(),
    ));
    if let Some(u) = url {
        live.gateway_url = Some(u.to_owned());
    }
    let (addr, stop, handle) = spawn_node(node_config_with(&cfg, Some(live)).unwrap());
    GatewayNode {
        sim,
        _certs: certs,
        _tmp: tmp,
        rec,
        addr,
        stop,
        handle,
    }
}

/// The same bracket, but orders go to the venue simulator's order API through the gateway:
/// the fills are the simulator's, reported over its user-data stream, journaled, and the
/// recording replays to the live digest.
#[test]
fn bracket_order_against_the_simulator_through_the_order_gateway() {
    let GatewayNode {
        sim,
        _certs,
        _tmp,
        rec,
        addr,
        stop,
        handle,
    } = gateway_node(None);
    let deadline = Instant::now() + WAIT;
    let token = token_for(SECRET.as_bytes(), "alice", EXP);
    let mut alice = connect(addr, &format!("?token={token}"));
    assert_eq!(next(&mut alice, deadline).unwrap()["type"], "authenticated");
    let bob_token = token_for(SECRET.as_bytes(), "bob", EXP);
    let mut bob = connect(addr, &format!("?token={bob_token}"));
    assert_eq!(next(&mut bob, deadline).unwrap()["user"], "bob");
    for ws in [&mut alice, &mut bob] {
        send(
            ws,
            json!({"type":"subscribe","channels":["orders","positions","portfolio","risk_alerts"]}),
        );
        until(ws, deadline, |m| m["type"] == "subscribed");
    }
    let mid = usdm_btc_mid(&mut alice, deadline);
    let (tp, sl, entry, mut log) = buy_bracket(&mut alice, deadline, 1, mid);
    // The simulator's reports: acknowledged (it assigned an order id), then filled.
    let fill = log
        .iter()
        .filter_map(|m| update(m, "orders"))
        .find(|d| d["client_order_id"] == entry.as_str() && d["status"] == "filled")
        .expect("the entry filled");
    assert!(fill["venue_order_id"].is_u64(), "{fill}");
    assert!(fill["fill"]["trade_id"].is_u64(), "{fill}");
    // A risk violation never reaches the venue: refused with an alert.
    send(
        &mut alice,
        json!({"type":"place_order","id":2,"symbol":"usdm:BTCUSDT","side":"buy",
               "order_type":"market","qty":"5.000"}),
    );
    let got = until(&mut alice, deadline, |m| update(m, "risk_alerts").is_some());
    let err = got
        .iter()
        .find(|m| m["type"] == "error")
        .expect("an error reply");
    assert_eq!(
        (err["code"].clone(), err["id"].clone()),
        (json!(4021), json!(2))
    );
    assert_eq!(
        update(got.last().unwrap(), "risk_alerts").unwrap()["alert_type"],
        "order_qty"
    );
    log.extend(got);
    log.extend(until(&mut alice, deadline, |m| {
        update(m, "positions").is_some_and(|d| d["side"] == "flat")
    }));
    let portfolios: Vec<&Value> = log.iter().filter_map(|m| update(m, "portfolio")).collect();
    assert!(
        portfolios.iter().any(|p| p["open_positions"] == 1),
        "{portfolios:?}"
    );
    // A trailing stop: armed at the venue-fed book, its peak and stop are streamed.
    send(
        &mut alice,
        json!({"type":"place_trailing","id":3,"symbol":"usdm:BTCUSDT","side":"sell",
               "qty":"0.010","offset":"0.50"}),
    );
    let trail = until(&mut alice, deadline, |m| {
        update(m, "orders").is_some_and(|d| d["event"] == "trailing")
    });
    let adv = trail.iter().find(|m| m["type"] == "ack").expect("an ack")["advanced_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let t = update(trail.last().unwrap(), "orders").unwrap();
    assert_eq!(t["advanced_id"], adv.as_str());
    assert_eq!(cents(&t["peak"]) - cents(&t["stop"]), 50, "{t}");
    send(
        &mut alice,
        json!({"type":"cancel_order","id":4,"advanced_id":adv}),
    );
    // (An error if the stop already fired in between: either way the advanced order is over.)
    until(&mut alice, deadline, |m| m["id"] == 4);
    // Bob subscribed the same channels: nothing of Alice's came before his own answer.
    send(&mut bob, json!({"type":"get_orders","id":"b"}));
    let bob_saw = until(&mut bob, deadline, |m| m["type"] == "orders");
    assert_eq!(bob_saw.len(), 1, "bob saw {bob_saw:?}");
    let exit = assert_leg_closed(&log, tp, sl);
    assert!(exit["venue_order_id"].is_u64(), "{exit}");
    let (status, st) = http_get(addr, "/api/orders", Some(&token));
    assert_eq!(
        (status, st["data"].clone()),
        (200, json!([])),
        "no order left live"
    );
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status: Value = serde_json::from_str(out.split_once("\r\n\r\n").unwrap().1).unwrap();
    let gw = &status["desk"]["gateway"];
    assert_eq!(gw["connected"], true, "{status}");
    // Alice and Bob are authenticated: counted by name, not as anonymous (this request's own
    // connection is plain HTTP, not a WebSocket session).
    let per_user = &status["connections_per_user"];
    assert_eq!(
        (&per_user["alice"], &per_user["bob"], &per_user["anonymous"]),
        (&json!(1), &json!(1), &json!(0)),
        "{per_user}"
    );
    assert!(
        gw["requests"].as_u64() >= Some(2) && gw["reports"].as_u64() >= Some(2),
        "{gw}"
    );
    assert_eq!(gw["failed"], 0, "{gw}");
    // Signed with HMAC, user data on /private with a listenKey, the venue's clock measured.
    assert_eq!(
        (&gw["signing"], &gw["ready"], &gw["listen_keys"]),
        (&json!("HMAC_SHA256"), &json!(true), &json!(1)),
        "{gw}"
    );
    assert!(gw["clock_offset_ms"].is_i64(), "{gw}");
    assert_eq!(sim.stats().auth_refused, 0, "{:?}", sim.stats());
    stop.store(true, Ordering::Relaxed);
    drop(alice);
    drop(bob);
    let live_digest = handle.join().unwrap();
    assert!(sim.stats().orders_placed >= 2, "{:?}", sim.stats());
    let (summary, _) = tape_tools::replay::replay(&rec).unwrap();
    assert_eq!(summary.digest, format!("{:016x}", live_digest.value()));
}

/// An unreachable order venue: the order is rejected (a journaled failure response), the
/// engine keeps serving, and the recording replays to the same digest.
#[test]
fn an_unreachable_order_venue_rejects_orders_and_replays() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let n = gateway_node(Some(&format!("wss://127.0.0.1:{port}/ws-fapi/v1")));
    let deadline = Instant::now() + WAIT;
    let token = token_for(SECRET.as_bytes(), "alice", EXP);
    let mut alice = connect(n.addr, &format!("?token={token}"));
    assert_eq!(next(&mut alice, deadline).unwrap()["type"], "authenticated");
    send(
        &mut alice,
        json!({"type":"subscribe","channels":["orders"]}),
    );
    send(
        &mut alice,
        json!({"type":"place_order","id":1,"symbol":"usdm:BTCUSDT","side":"buy",
               "order_type":"limit","price":"60000.00","qty":"0.010"}),
    );
    let log = until(&mut alice, deadline, |m| {
        update(m, "orders").is_some_and(|d| d["status"] == "rejected")
    });
    assert!(log.iter().any(|m| m["type"] == "ack"), "{log:?}");
    // Still serving.
    send(&mut alice, json!({"type":"get_orders","id":2}));
    assert_eq!(
        until(&mut alice, deadline, |m| m["type"] == "orders")
            .last()
            .unwrap()["data"],
        json!([])
    );
    n.stop.store(true, Ordering::Relaxed);
    drop(alice);
    let live_digest = n.handle.join().unwrap();
    assert_eq!(n.sim.stats().orders_placed, 0);
    let (summary, _) = tape_tools::replay::replay(&n.rec).unwrap();
    assert_eq!(summary.digest, format!("{:016x}", live_digest.value()));
}
