//! `tape run` over real sockets on 127.0.0.1: WebSocket clients (tungstenite) subscribe and
//! get well-formed messages consistent with the book; HTTP status and metrics answer; bad
//! requests get their documented errors; slow clients are conflated and closed; the binary
//! stops cleanly on SIGTERM. Every wait is bounded.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;

use serde_json::{json, Value};
use support::{recv_json as recv, root, send_json as send, start};
use tape_tools::config::Config;
use tape_tools::run::node_config;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

const WAIT: Duration = Duration::from_secs(20);

type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

fn connect(addr: SocketAddr) -> Ws {
    let (ws, _) = tungstenite::connect(format!("ws://{addr}/ws")).expect("connect");
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    }
    ws
}

fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    support::get_at(addr, path, "")
}

fn dec(v: &Value) -> i128 {
    // Decimal strings compared exactly, as integers at a common scale of 8.
    let s = v.as_str().expect("decimal string");
    let (i, f) = s.split_once('.').unwrap_or((s, ""));
    let f = format!("{f:0<8}");
    format!("{i}{}", &f[..8]).parse().unwrap()
}

#[test]
fn subscriber_sees_every_channel_consistent_with_the_book() {
    let srv = start(|_| {});
    let mut ws = connect(srv.addr);
    send(
        &mut ws,
        json!({"type":"subscribe","id":1,"channels":["bbo","trades","ticker","book"],"symbols":["usdm:BTCUSDT"],"depth":1000}),
    );
    let deadline = Instant::now() + WAIT;
    let ack = recv(&mut ws, deadline);
    assert_eq!(ack["type"], "subscribed", "{ack}");
    assert_eq!(ack["id"], 1);

    let mut book: [BTreeMap<i128, i128>; 2] = [BTreeMap::new(), BTreeMap::new()];
    let mut book_seq: Option<u64> = None;
    let mut book_update_id = 0u64;
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    let mut bbo_checked = 0;
    while seen.get("book_update").copied().unwrap_or(0) < 30
        || !["bbo", "trades", "ticker", "book_snapshot"]
            .iter()
            .all(|k| seen.contains_key(*k))
        || bbo_checked < 3
    {
        let m = recv(&mut ws, deadline);
        for k in [
            "type", "channel", "market", "symbol", "seq", "ts", "recv_ns", "data",
        ] {
            assert!(m.get(k).is_some(), "envelope has {k}: {m}");
        }
        assert_eq!(m["symbol"], "BTCUSDT");
        assert_eq!(m["market"], "usdm");
        let ch = m["channel"].as_str().unwrap().to_owned();
        let seq = m["seq"].as_u64().unwrap();
        match (ch.as_str(), m["type"].as_str().unwrap()) {
            ("book", "snapshot") => {
                *seen.entry("book_snapshot".into()).or_default() += 1;
                for (i, side) in ["bids", "asks"].iter().enumerate() {
                    book[i].clear();
                    for l in m["data"][side].as_array().unwrap() {
                        book[i].insert(dec(&l[0]), dec(&l[1]));
                    }
                }
                book_seq = Some(seq);
                book_update_id = m["data"]["update_id"].as_u64().unwrap();
            }
            ("book", "update") => {
                *seen.entry("book_update".into()).or_default() += 1;
                if let Some(prev) = book_seq {
                    assert_eq!(seq, prev + 1, "book seq continuity");
                    book_seq = Some(seq);
                    for (i, side) in ["bids", "asks"].iter().enumerate() {
                        for l in m["data"][side].as_array().unwrap() {
                            let (p, q) = (dec(&l[0]), dec(&l[1]));
                            if q == 0 {
                                book[i].remove(&p);
                            } else {
                                book[i].insert(p, q);
                            }
                        }
                    }
                    book_update_id = m["data"]["update_id"].as_u64().unwrap();
                }
            }
            ("bbo", "update") => {
                *seen.entry("bbo".into()).or_default() += 1;
                let d = &m["data"];
                if book_seq.is_some() && d["update_id"].as_u64() == Some(book_update_id) {
                    let best_bid = book[0].iter().next_back().map(|(p, q)| (*p, *q));
                    let best_ask = book[1].iter().next().map(|(p, q)| (*p, *q));
                    assert_eq!(best_bid, Some((dec(&d["bid"]), dec(&d["bid_qty"]))), "{m}");
                    assert_eq!(best_ask, Some((dec(&d["ask"]), dec(&d["ask_qty"]))), "{m}");
                    bbo_checked += 1;
                }
            }
            ("trades", "update") => {
                *seen.entry("trades".into()).or_default() += 1;
                let side = m["data"]["side"].as_str().unwrap();
                assert!(side == "buy" || side == "sell");
                assert!(dec(&m["data"]["qty"]) > 0);
            }
            ("ticker", "update") => {
                *seen.entry("ticker".into()).or_default() += 1;
                assert!(dec(&m["data"]["high"]) >= dec(&m["data"]["low"]));
            }
            (_, "status") => {
                *seen.entry("status".into()).or_default() += 1;
            }
            other => panic!("unexpected message {other:?}: {m}"),
        }
    }
    // get_book answers with the current top levels.
    send(
        &mut ws,
        json!({"type":"get_book","id":"b","symbol":"usdm:BTCUSDT","depth":3}),
    );
    loop {
        let m = recv(&mut ws, deadline);
        if m["id"] == "b" {
            assert_eq!(m["type"], "snapshot", "{m}");
            assert!(m["data"]["bids"].as_array().unwrap().len() <= 3);
            break;
        }
    }
}

#[test]
fn two_hundred_concurrent_clients_each_get_data() {
    let srv = start(|c| c.limits.max_connections = 250);
    let mut clients: Vec<Ws> = (0..200).map(|_| connect(srv.addr)).collect();
    for (i, ws) in clients.iter_mut().enumerate() {
        send(
            ws,
            json!({"type":"subscribe","id":i,"channels":["bbo","trades"],"symbols":["spot:BTCUSDT"]}),
        );
    }
    let deadline = Instant::now() + WAIT;
    for ws in &mut clients {
        let ack = recv(ws, deadline);
        assert_eq!(ack["type"], "subscribed", "{ack}");
        // Then market data: the current bbo, or live updates.
        let m = recv(ws, deadline);
        assert!(m["channel"] == "bbo" || m["channel"] == "trades", "{m}");
    }
    let (code, body) = http_get(srv.addr, "/status");
    assert_eq!(code, 200);
    let st: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(st["connections"], 200, "{st}");
}

#[test]
fn status_and_metrics_answer_and_unknown_paths_are_404() {
    let srv = start(|_| {});
    let mut ws = connect(srv.addr);
    send(
        &mut ws,
        json!({"type":"subscribe","channels":["bbo"],"symbols":["BTCUSDT"]}),
    );
    let deadline = Instant::now() + WAIT;
    // Wait until data flows so latency histograms have samples.
    let _ack = recv(&mut ws, deadline);
    let _ = recv(&mut ws, deadline);
    let _ = recv(&mut ws, deadline);
    let (code, body) = http_get(srv.addr, "/status");
    assert_eq!(code, 200);
    let st: Value = serde_json::from_str(&body).expect("status is JSON");
    for stage in ["decode", "apply", "fanout", "tick_to_wire"] {
        assert!(
            st["latency_ns"][stage]["count"].as_u64().unwrap() > 0,
            "{stage}: {st}"
        );
        assert!(
            st["latency_ns"][stage]["p99_ns"].as_u64().unwrap() > 0,
            "{stage}"
        );
    }
    assert_eq!(st["connections"], 1);
    assert!(st["subscriptions"]["bbo"].as_u64().unwrap() >= 1, "{st}");
    let (code, text) = http_get(srv.addr, "/metrics");
    assert_eq!(code, 200);
    assert!(
        text.contains("tape_latency_ns{stage=\"tick_to_wire\",quantile=\"0.99\"}"),
        "{text}"
    );
    assert!(text.contains("tape_connections 1"), "{text}");
    assert_eq!(http_get(srv.addr, "/nope").0, 404);
}

#[test]
fn bad_requests_get_documented_errors_and_the_connection_stays() {
    let srv = start(|c| c.limits.max_message_bytes = 1024);
    let mut ws = connect(srv.addr);
    let deadline = Instant::now() + WAIT;
    let cases = [
        ("not json".to_owned(), 4004),
        (json!({"type":"launch","id":2}).to_string(), 4004),
        (
            json!({"type":"subscribe","id":3,"channels":["bbo"],"symbols":["NOPEUSDT"]})
                .to_string(),
            4005,
        ),
        (
            json!({"type":"subscribe","id":4,"channels":["candles"],"symbols":["BTCUSDT"]})
                .to_string(),
            4006,
        ),
        (
            format!(
                "{{\"type\":\"ping\",\"id\":5,\"pad\":\"{}\"}}",
                "x".repeat(2000)
            ),
            4008,
        ),
    ];
    for (text, code) in cases {
        ws.send(Message::text(text.clone())).unwrap();
        let m = recv(&mut ws, deadline);
        assert_eq!(m["type"], "error", "{text}: {m}");
        assert_eq!(m["code"], code, "{text}: {m}");
    }
    send(&mut ws, json!({"type":"ping","id":"still-open"}));
    let m = recv(&mut ws, deadline);
    assert_eq!(m["type"], "pong");
    assert_eq!(m["id"], "still-open");
}

#[test]
fn a_client_that_never_reads_is_conflated_then_closed_and_others_are_served() {
    let srv = start(|c| {
        c.feed.speed = 0; // as fast as possible, looping: far more than a stalled client takes
        c.server.outbound_queue = 16;
        c.server.slow_client_timeout_ms = 300;
    });
    let mut slow = connect(srv.addr);
    send(
        &mut slow,
        json!({"type":"subscribe","channels":["bbo","trades","book"],"symbols":["BTCUSDT","ETHUSDT"]}),
    );
    let mut fast = connect(srv.addr);
    send(
        &mut fast,
        json!({"type":"subscribe","channels":["trades"],"symbols":["usdm:BTCUSDT"]}),
    );
    let deadline = Instant::now() + WAIT;
    // The slow client is closed with 4010 while the fast one keeps receiving.
    let mut fast_msgs = 0;
    loop {
        let _ = recv(&mut fast, deadline);
        fast_msgs += 1;
        let (_, body) = http_get(srv.addr, "/status");
        let st: Value = serde_json::from_str(&body).unwrap();
        if st["slow_clients"]["disconnected_slow"].as_u64().unwrap() >= 1 {
            assert!(
                st["slow_clients"]["conflated"].as_u64().unwrap() > 0
                    || st["slow_clients"]["trades_dropped"].as_u64().unwrap() > 0,
                "{st}"
            );
            break;
        }
    }
    assert!(fast_msgs > 0);
    // What the stalled client finally reads ends with the 4010 close.
    if let MaybeTlsStream::Plain(s) = slow.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    }
    let close_code = loop {
        assert!(
            Instant::now() < deadline,
            "no close frame for the slow client"
        );
        match slow.read() {
            Ok(Message::Close(Some(f))) => break u16::from(f.code),
            Ok(_) => continue,
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                panic!("closed without a close frame")
            }
            Err(e) => panic!("read: {e}"),
        }
    };
    assert_eq!(close_code, 4010);
}

#[test]
fn the_binary_prints_its_url_and_stops_cleanly_on_sigterm() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tape"))
        .args([
            "run",
            "--listen",
            "127.0.0.1:0",
            "--status-interval",
            "1",
            "--exit-after",
            "60",
        ])
        .current_dir(root())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("tape run starts");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("ws://"))
        .unwrap_or_else(|| panic!("first line names the URL: {first}"))
        .to_owned();
    let (mut ws, _) = tungstenite::connect(&url).expect("connect to printed URL");
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    }
    send(&mut ws, json!({"type":"ping","id":1}));
    let deadline = Instant::now() + WAIT;
    assert_eq!(recv(&mut ws, deadline)["type"], "pong");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // The client sees "going away", and the process exits 0.
    let code = loop {
        assert!(Instant::now() < deadline, "no close frame on shutdown");
        match ws.read() {
            Ok(Message::Close(Some(f))) => break u16::from(f.code),
            Ok(_) => continue,
            Err(e) => panic!("read: {e}"),
        }
    };
    assert_eq!(code, 1001);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait()).ok());
    let exit = rx
        .recv_timeout(WAIT)
        .expect("tape run exits after SIGTERM")
        .unwrap();
    assert!(exit.success(), "{exit}");
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("tape stopped"), "{rest}");
}

#[test]
fn a_recorded_run_replays_to_the_same_digest_and_logs_latency() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = tmp.path().join("rec");
    let hlog = tmp.path().join("latency.hlog");
    let mut cfg = Config::default();
    cfg.server.listen = "127.0.0.1:0".into();
    cfg.server.status_interval_secs = 0;
    cfg.feed.journal = root().join("fixtures/session").display().to_string();
    cfg.feed.speed = 0;
    cfg.feed.repeat = false;
    cfg.feed.record = rec.display().to_string();
    cfg.engine.latency_log = hlog.display().to_string();
    cfg.engine.latency_log_interval_secs = 1;
    let ncfg = node_config(&cfg).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let s2 = Arc::clone(&stop);
    let handle = std::thread::spawn(move || {
        let mut node = tape_node::node::Node::bind(ncfg).unwrap();
        tx.send(node.local_addr().expect("listening")).unwrap();
        node.run(&s2, 0, |_| {}).unwrap();
        (node.engine().digest(), node.loop_stats().records)
    });
    let addr = rx.recv_timeout(WAIT).unwrap();
    // A client watches while the whole session plays once.
    let mut ws = connect(addr);
    send(
        &mut ws,
        json!({"type":"subscribe","channels":["bbo"],"symbols":["BTCUSDT"]}),
    );
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, body) = http_get(addr, "/status");
        let st: Value = serde_json::from_str(&body).unwrap();
        if st["feed"]["records"] == 8910 {
            assert!(
                st["latency_ns"]["journal"]["count"].as_u64().unwrap() >= 8910,
                "{st}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "feed did not finish: {st}");
        // Paced by the client's own traffic; once the session has played out nothing more
        // comes, so a read that times out (5 s, see `connect`) just loops back to /status.
        let _ = ws.read();
    }
    stop.store(true, Ordering::Relaxed);
    drop(ws);
    let (live_digest, records) = handle.join().unwrap();
    assert_eq!(records, 8910);
    // The recording has the live receive times, so replaying it reproduces the live outputs.
    let (summary, _) = tape_tools::replay::replay(&rec).unwrap();
    assert_eq!(summary.records, 8910);
    assert_eq!(summary.digest, format!("{:016x}", live_digest.value()));
    assert_eq!(summary.output_events, live_digest.count());
    // The latency log is a standard HdrHistogram interval log with one tag per stage.
    let log = std::fs::read_to_string(&hlog).unwrap();
    assert!(
        log.contains("Tag=tick_to_wire,") && log.contains("Tag=journal,"),
        "{log}"
    );
}

/// Sends `request` raw and returns the whole response (the server closes after it).
fn raw_http(addr: SocketAddr, request: &str) -> String {
    use std::io::Write;
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn read_only_endpoints_refuse_other_methods_answer_head_and_refuse_two_credentials() {
    let srv = start(|_| {});
    for (method, path) in [
        ("POST", "/status"),
        ("DELETE", "/api/orders"),
        ("PUT", "/metrics"),
    ] {
        let r = raw_http(
            srv.addr,
            &format!("{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n"),
        );
        assert!(r.starts_with("HTTP/1.1 405 "), "{method} {path}: {r}");
        assert!(r.contains("\r\nAllow: GET, HEAD\r\n"), "{r}");
    }
    let get = raw_http(srv.addr, "GET /status HTTP/1.1\r\nHost: x\r\n\r\n");
    let head = raw_http(srv.addr, "HEAD /status HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(head.ends_with("\r\n\r\n"), "HEAD has no body: {head}");
    assert!(get.starts_with("HTTP/1.1 200 ") && !get.ends_with("\r\n\r\n"));
    let two = raw_http(
        srv.addr,
        "GET /api/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\n\r\n",
    );
    assert!(two.starts_with("HTTP/1.1 400 "), "{two}");
    // Unknown paths stay 404 whatever the method.
    let r = raw_http(srv.addr, "POST /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 404 "), "{r}");
}

/// One host cannot take every anonymous slot: beyond `limits.max_anonymous_per_ip` a new
/// unauthenticated session is closed with 4003, a session that authenticates stops counting,
/// and a token at connect time is never counted.
#[test]
fn anonymous_sessions_are_limited_per_address() {
    const SECRET: &str = "0123456789abcdef0123456789abcdef-anon-test";
    let srv = start(|c| {
        c.limits.max_anonymous_per_ip = 2;
        c.auth.secret = SECRET.into();
        c.users.push(tape_tools::config::UserSection {
            name: "viewer".into(),
            roles: vec!["viewer".into()],
            max_connections: 0,
            shm_group: String::new(),
        });
    });
    let ping = |ws: &mut Ws| {
        send(ws, json!({"type":"ping","id":1}));
        recv(ws, Instant::now() + WAIT)
    };
    let mut a = connect(srv.addr);
    let mut b = connect(srv.addr);
    assert_eq!(ping(&mut a)["type"], "pong");
    assert_eq!(ping(&mut b)["type"], "pong");
    // The third anonymous session from 127.0.0.1 is closed with 4003.
    let mut c = connect(srv.addr);
    let closed = loop {
        match c.read() {
            Ok(Message::Close(f)) => break f,
            Ok(_) => {}
            Err(e) => panic!("expected a 4003 close, got {e}"),
        }
    };
    assert_eq!(closed.map(|f| u16::from(f.code)), Some(4003));
    // `a` authenticates: it no longer counts, so a new anonymous session fits.
    let token = tape_core::auth::token_for(SECRET.as_bytes(), "viewer", 4_000_000_000);
    send(&mut a, json!({"type":"auth","id":2,"token":token}));
    let authed = recv(&mut a, Instant::now() + WAIT);
    assert_eq!(authed["type"], "authenticated", "{authed}");
    let mut d = connect(srv.addr);
    assert_eq!(ping(&mut d)["type"], "pong");
    // A token at connect time is not anonymous: never counted.
    let (mut e, _) =
        tungstenite::connect(format!("ws://{}/ws?token={token}", srv.addr)).expect("connect");
    if let MaybeTlsStream::Plain(s) = e.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    }
    assert_eq!(recv(&mut e, Instant::now() + WAIT)["type"], "authenticated");
    assert_eq!(ping(&mut e)["type"], "pong");
}
