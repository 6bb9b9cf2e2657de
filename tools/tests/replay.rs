//! Replay on demand over real sockets on 127.0.0.1: a node records the bundled session while a
//! live client reads it; a second node replays that journal over `/replay` (WebSocket) and
//! `/replay.ndjson` (chunked HTTP), and every update and status message of the range is the
//! one the live client got, `recv_ns` and all. Then the bounds: unknown journals, paths,
//! missing or weak tokens, wrong methods, too many sessions. Every wait is bounded.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::private::{next, subscribe_when_known, until, WAIT};
use support::{get_at, send_json as send};
use tape_core::auth::token_for;
use tape_tools::config::{ReplayJournal, UserSection};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::WebSocket;

const SECRET: &str = "an-integration-test-secret-of-at-least-32-bytes";
const EXP: u64 = 4_000_000_000;
const SYMBOL: &str = "usdm:BTCUSDT";
const CHANNELS: [&str; 4] = ["trades", "bbo", "ticker", "book"];

type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

/// (channel, market, symbol, seq) of a stream message.
type Key = (String, String, String, u64);

/// Stream messages (updates and statuses) by stream and seq; other messages (replies,
/// snapshots and the `seq` 0 status of a book not synced yet, which describe the state when
/// a client subscribed) are left out.
fn stream_messages<'a>(msgs: impl IntoIterator<Item = &'a Value>) -> BTreeMap<Key, Value> {
    msgs.into_iter()
        .filter(|m| (m["type"] == "update" || m["type"] == "status") && m["seq"] != 0)
        .map(|m| {
            let s = |k: &str| m[k].as_str().unwrap_or_default().to_owned();
            let key = (
                s("channel"),
                s("market"),
                s("symbol"),
                m["seq"].as_u64().unwrap(),
            );
            (key, m.clone())
        })
        .collect()
}

fn recv_ns(m: &Value) -> u64 {
    m["recv_ns"].as_u64().expect("recv_ns")
}

fn ws_connect(addr: SocketAddr, path_query: &str) -> Ws {
    let (ws, _) = tungstenite::connect(format!("ws://{addr}{path_query}")).expect("connect");
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
    }
    ws
}

/// Everything a WebSocket replay sends, up to its close (whose code is returned).
fn read_to_close(ws: &mut Ws, deadline: Instant) -> (Vec<Value>, Option<u16>) {
    let mut got = Vec::new();
    loop {
        match next(ws, deadline) {
            Ok(m) => got.push(m),
            Err(code) => return (got, code),
        }
    }
}

/// `GET target` and the whole response: status, head, body (chunked encoding undone).
fn get_raw(addr: SocketAddr, target: &str, headers: &str) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(s, "GET {target} HTTP/1.1\r\nHost: x\r\n{headers}\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("the response ends in time");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut body = raw[split + 4..].to_vec();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    if head.contains("Transfer-Encoding: chunked") {
        body = dechunk(&body);
    }
    (status, head, body)
}

/// Undoes HTTP/1.1 chunked encoding; panics on anything malformed (or a missing last chunk).
fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap(), 16).unwrap();
        b = &b[eol + 2..];
        if size == 0 {
            assert_eq!(b, b"\r\n", "the last chunk ends the body");
            return out;
        }
        out.extend_from_slice(&b[..size]);
        assert_eq!(&b[size..size + 2], b"\r\n");
        b = &b[size + 2..];
    }
}

/// Subscribes, again while the node does not know the symbol yet (4005).
fn subscribe(ws: &mut Ws, deadline: Instant) {
    let req = json!({"type":"subscribe","id":1,"channels":CHANNELS,"symbols":[SYMBOL],"depth":5});
    subscribe_when_known(ws, deadline, &req);
}

/// Records the bundled session with a live client attached; returns the journal's temp dir
/// and the stream messages the client got, with the range `[from, to)` they span.
fn record_live() -> (tempfile::TempDir, BTreeMap<Key, Value>, u64, u64) {
    let tmp = tempfile::tempdir().unwrap();
    let rec = tmp.path().join("rec");
    let rec_s = rec.display().to_string();
    let srv = support::start(|c| {
        c.feed.speed = 10;
        c.feed.repeat = false;
        c.feed.record = rec_s;
        c.server.outbound_queue = 100_000;
    });
    let deadline = Instant::now() + WAIT;
    let mut ws = ws_connect(srv.addr, "/ws");
    subscribe(&mut ws, deadline);
    let mut trades = 0;
    let got = until(&mut ws, deadline, |m| {
        trades += usize::from(m["type"] == "update" && m["channel"] == "trades");
        trades == 150
    });
    drop(ws);
    drop(srv); // stops the node: the journal is flushed and closed
    let live = stream_messages(&got);
    let from = live.values().map(recv_ns).min().unwrap();
    let to = live.values().map(recv_ns).max().unwrap();
    // The last record's messages may not all have been read: compare strictly before it.
    let live = live.into_iter().filter(|(_, m)| recv_ns(m) < to).collect();
    (tmp, live, from, to)
}

fn replay_node(
    dir: &std::path::Path,
    edit: impl FnOnce(&mut tape_tools::config::Config),
) -> support::Server {
    let dir = dir.display().to_string();
    support::start(|c| {
        c.replay.journals = vec![ReplayJournal {
            name: "day-1".into(),
            dir,
        }];
        edit(c);
    })
}

#[test]
fn replayed_range_equals_what_a_live_client_received() {
    let (tmp, live, from, to) = record_live();
    assert!(live.len() > 200, "a range worth comparing: {}", live.len());

    let srv = replay_node(&tmp.path().join("rec"), |c| c.replay.public = true);
    let deadline = Instant::now() + WAIT;

    // WebSocket: the client subscribes by message, as live.
    let mut ws = ws_connect(
        srv.addr,
        &format!("/replay?journal=day-1&from={from}&to={to}&speed=0"),
    );
    let sub = json!({"type":"subscribe","id":1,"channels":CHANNELS,"symbols":[SYMBOL],"depth":5});
    send(&mut ws, sub);
    let (got, code) = read_to_close(&mut ws, deadline);
    assert_eq!(code, Some(1000), "a replay ends with a normal close");
    assert_eq!(got[0]["type"], "subscribed", "{}", got[0]);
    assert_synced(&got);
    let replayed: BTreeMap<Key, Value> = stream_messages(&got)
        .into_iter()
        .filter(|(_, m)| recv_ns(m) < to)
        .collect();
    let only_live: Vec<_> = live.keys().filter(|k| !replayed.contains_key(*k)).collect();
    let only_replay: Vec<_> = replayed.keys().filter(|k| !live.contains_key(*k)).collect();
    assert!(
        only_live.is_empty() && only_replay.is_empty(),
        "live only: {only_live:?}, replay only: {only_replay:?}"
    );
    for ((k, l), (rk, r)) in live.iter().zip(&replayed) {
        assert_eq!(k, rk);
        assert_eq!(l, r, "message {k:?}");
    }

    // NDJSON: the same messages, one JSON object per line.
    let target = format!(
        "/replay.ndjson?journal=day-1&from={from}&to={to}&speed=0&channels={}&symbols={SYMBOL}&depth=5",
        CHANNELS.join(",")
    );
    let (status, head, body) = get_raw(srv.addr, &target, "");
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains("Content-Type: application/x-ndjson"),
        "{head}"
    );
    let text = String::from_utf8(body).unwrap();
    assert!(text.ends_with('\n'));
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines[0]["type"], "subscribed");
    assert_synced(&lines);
    let nd: BTreeMap<Key, Value> = stream_messages(&lines)
        .into_iter()
        .filter(|(_, m)| recv_ns(m) < to)
        .collect();
    assert_eq!(nd, live);

    // Paced: speed=1000 plays the same range in order (and still ends).
    let mut ws = ws_connect(
        srv.addr,
        &format!(
            "/replay?journal=day-1&from={from}&to={to}&speed=1000&channels=trades&symbols={SYMBOL}"
        ),
    );
    let (got, code) = read_to_close(&mut ws, deadline);
    assert_eq!(code, Some(1000));
    let trades: Vec<&Value> = live.values().filter(|m| m["channel"] == "trades").collect();
    let got: Vec<&Value> = got
        .iter()
        .filter(|m| m["channel"] == "trades" && recv_ns(m) < to)
        .collect();
    assert_eq!(got, trades);
}

/// A book snapshot came first and its updates continue its `seq` with no gap.
fn assert_synced(msgs: &[Value]) {
    let snap = msgs
        .iter()
        .position(|m| m["type"] == "snapshot" && m["channel"] == "book")
        .expect("a book snapshot");
    let mut seq = msgs[snap]["seq"].as_u64().unwrap();
    for m in &msgs[snap + 1..] {
        if m["channel"] == "book" && (m["type"] == "update" || m["type"] == "status") {
            seq += 1;
            assert_eq!(m["seq"].as_u64(), Some(seq), "{m}");
        }
    }
}

#[test]
fn replay_bounds_are_enforced() {
    let tmp = tempfile::tempdir().unwrap();
    // The bundled session is a journal like any other.
    let fixture = support::root().join("fixtures/session");
    let srv = replay_node(&fixture, |c| {
        c.replay.max_sessions = 1;
        c.auth.secret = SECRET.into();
        for (name, role) in [("alice", "viewer"), ("pub", "publisher"), ("rp", "replay")] {
            c.users.push(UserSection {
                name: name.into(),
                roles: vec![role.into()],
                max_connections: 0,
                shm_group: String::new(),
            });
        }
        c.replay.journals.push(ReplayJournal {
            name: "gone".into(),
            dir: tmp.path().join("nothing-here").display().to_string(),
        });
    });
    let addr = srv.addr;
    let alice = token_for(SECRET.as_bytes(), "alice", EXP);
    let publisher = token_for(SECRET.as_bytes(), "pub", EXP);
    let q = |rest: &str| format!("/replay.ndjson?channels=trades&symbols={SYMBOL}&{rest}");
    let status = |target: &str, headers: &str| get_at(addr, target, headers).0;

    assert_eq!(status(&q("journal=day-1"), ""), 401, "no token, not public");
    assert_eq!(
        status(&q(&format!("journal=day-1&token={publisher}")), ""),
        403
    );
    assert_eq!(status(&q("journal=day-1&token=forged.token.x"), ""), 401);
    let bearer = format!("Authorization: Bearer {alice}\r\n");
    for bad in [
        "journal=..",
        "journal=../rec",
        "journal=%2e%2e%2fetc%2fpasswd",
        "journal=%2Fetc",
        "journal=day-1%00",
        "journal=day-1&from=yesterday",
        "journal=day-1&speed=-1",
        "journal=day-1&journal=gone",
    ] {
        assert_eq!(status(&q(bad), &bearer), 400, "{bad}");
    }
    assert_eq!(status(&q("journal=day-2"), &bearer), 404, "unknown journal");
    assert_eq!(
        status("/replay.ndjson?journal=day-1", &bearer),
        400,
        "nothing to subscribe"
    );
    assert_eq!(
        status("/replay?journal=day-1", &bearer),
        426,
        "not a WebSocket"
    );
    let (st, _, _) = {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            s,
            "POST {} HTTP/1.1\r\nHost: x\r\n{bearer}\r\n",
            q("journal=day-1")
        )
        .unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        (
            out.split_whitespace()
                .nth(1)
                .unwrap()
                .parse::<u16>()
                .unwrap(),
            0,
            0,
        )
    };
    assert_eq!(st, 405);

    // One session at a time: a slow one (recorded pace) holds the only slot.
    let deadline = Instant::now() + WAIT;
    let mut first = ws_connect(
        addr,
        &format!("/replay?journal=day-1&speed=1&channels=trades&symbols={SYMBOL}&token={alice}"),
    );
    let m = next(&mut first, deadline).unwrap();
    assert_eq!(m["type"], "authenticated", "{m}");
    assert_eq!(m["user"], "alice", "{m}");
    let m = next(&mut first, deadline).unwrap();
    assert_eq!(m["type"], "subscribed", "{m}");
    let (st, head, _) = get_raw(addr, &q("journal=day-1"), &bearer);
    assert_eq!(st, 503, "{head}");
    assert!(head.contains("Retry-After:"), "{head}");
    // Orders are refused in a replay, the session stays.
    send(
        &mut first,
        json!({"type":"place_order","id":9,"symbol":SYMBOL}),
    );
    let m = until(&mut first, deadline, |m| m["type"] == "error");
    let err = m.last().unwrap();
    assert_eq!(
        (err["code"].as_u64(), err["id"].as_u64()),
        (Some(4004), Some(9)),
        "{err}"
    );
    drop(first);
    // The slot comes back once the session sees its client gone.
    loop {
        let (st, _, body) = get_raw(
            addr,
            &q("journal=day-1&speed=0&to=1723161254937085768"),
            &bearer,
        );
        if st == 200 {
            let text = String::from_utf8(body).unwrap();
            assert!(text.lines().count() >= 1);
            break;
        }
        assert_eq!(st, 503);
        assert!(Instant::now() < deadline, "the slot was never released");
        std::thread::yield_now();
    }
    // The `replay` role may replay, and reads nothing live.
    let rp = format!(
        "Authorization: Bearer {}\r\n",
        token_for(SECRET.as_bytes(), "rp", EXP)
    );
    assert_eq!(get_at(addr, "/api/orders", &rp).0, 403);
    loop {
        match get_raw(
            addr,
            &q("journal=day-1&speed=0&to=1723161254937085768"),
            &rp,
        )
        .0
        {
            200 => break,
            503 if Instant::now() < deadline => std::thread::yield_now(),
            st => panic!("{st}"),
        }
    }
    // A listed journal whose directory cannot be read: the replay thread says so (the slot
    // may still be held by the session above for a moment).
    loop {
        match status(&q("journal=gone"), &bearer) {
            500 => break,
            503 if Instant::now() < deadline => std::thread::yield_now(),
            st => panic!("{st}"),
        }
    }
    let (_, metrics) = get_at(addr, "/metrics", "");
    let value = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in {metrics}"))
    };
    // At least the one above (retries while the slot was still held count too).
    assert!(value("tape_replay_sessions_total{outcome=\"refused_busy\"}") >= 1);
    assert!(value("tape_replay_sessions_total{outcome=\"started\"}") >= 3);
    assert_eq!(value("tape_replay_journal_errors_total"), 1);
}

/// Places a market buy as `user` (client order id `coid`) on a live node and reads until it
/// filled.
fn buy_filled(addr: SocketAddr, user: &str, coid: &str, deadline: Instant) {
    let token = token_for(SECRET.as_bytes(), user, EXP);
    let mut ws = ws_connect(addr, &format!("/ws?token={token}"));
    assert_eq!(next(&mut ws, deadline).unwrap()["type"], "authenticated");
    send(
        &mut ws,
        json!({"type":"subscribe","id":"p","channels":["orders"]}),
    );
    until(&mut ws, deadline, |m| m["type"] == "subscribed");
    // A book with both sides first, or a market order has nothing to fill against.
    subscribe(&mut ws, deadline);
    until(&mut ws, deadline, |m| {
        m["type"] == "update"
            && m["channel"] == "bbo"
            && m["data"]["ask"].is_string()
            && m["data"]["bid"].is_string()
    });
    send(
        &mut ws,
        json!({"type":"place_order","id":1,"symbol":SYMBOL,"side":"buy","order_type":"market",
               "qty":"0.010","client_order_id":coid}),
    );
    let seen = until(&mut ws, deadline, |m| {
        m["type"] == "error"
            || (m["channel"] == "orders"
                && !matches!(m["data"]["status"].as_str(), Some("pending_new" | "new")))
    });
    let last = seen.last().unwrap();
    assert_eq!(last["data"]["status"], "filled", "{last}");
}

/// The client order ids in `orders` updates of an NDJSON replay body.
fn order_ids(body: &[u8]) -> Vec<String> {
    let text = std::str::from_utf8(body).unwrap();
    let mut ids: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|m| m["type"] == "update" && m["channel"] == "orders")
        .filter_map(|m| m["data"]["client_order_id"].as_str().map(str::to_owned))
        .collect();
    ids.dedup();
    ids
}

#[test]
fn private_channels_replay_only_the_token_users_own() {
    let users = |c: &mut tape_tools::config::Config, bob: &str| {
        c.auth.secret = SECRET.into();
        for (name, role) in [("alice", "trader"), ("bob", bob)] {
            c.users.push(UserSection {
                name: name.into(),
                roles: vec![role.into()],
                max_connections: 0,
                shm_group: String::new(),
            });
        }
    };
    let tmp = tempfile::tempdir().unwrap();
    let rec = tmp.path().join("rec");
    let rec_s = rec.display().to_string();
    let live = support::start(|c| {
        c.feed.speed = 5;
        c.feed.repeat = false;
        c.feed.record = rec_s;
        users(c, "trader");
    });
    let deadline = Instant::now() + WAIT;
    buy_filled(live.addr, "alice", "alice-1", deadline);
    buy_filled(live.addr, "bob", "bob-1", deadline);
    drop(live);

    // Bob may only replay now: the `replay` role reads his own private channels there.
    let srv = replay_node(&rec, |c| {
        users(c, "replay");
        c.replay.public = true;
    });
    let q = "/replay.ndjson?journal=day-1&speed=0&channels=orders";
    for (user, own, other) in [("alice", "alice-1", "bob-1"), ("bob", "bob-1", "alice-1")] {
        let token = token_for(SECRET.as_bytes(), user, EXP);
        let (status, head, body) = get_raw(srv.addr, &format!("{q}&token={token}"), "");
        assert_eq!(status, 200, "{head}");
        let ids = order_ids(&body);
        assert!(
            ids.iter().any(|i| i == own),
            "{user} sees its own order: {ids:?}"
        );
        assert!(
            !ids.iter().any(|i| i == other),
            "{user} never sees {other}: {ids:?}"
        );
    }
    // Public replay is market data only: private channels need a token.
    let (status, _, body) = get_raw(srv.addr, q, "");
    assert_eq!(status, 200);
    let first: Value = serde_json::from_slice(body.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(first["type"], "error", "{first}");
    assert_eq!(first["code"], 4001, "{first}");
    assert!(order_ids(&body).is_empty());
}
