//! What the private-session tests share: a client WebSocket that reads JSON with deadlines,
//! channel updates, a node on a background thread that returns its digest.

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use super::send_json as send;

pub const WAIT: Duration = Duration::from_secs(30);

pub type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

pub fn connect(addr: SocketAddr, query: &str) -> Ws {
    let (ws, _) = tungstenite::connect(format!("ws://{addr}/ws{query}")).expect("connect");
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
    }
    ws
}

/// The next JSON message, or `Err(close code)` when the server closes.
pub fn next(ws: &mut Ws, deadline: Instant) -> Result<Value, Option<u16>> {
    loop {
        assert!(Instant::now() < deadline, "timed out waiting for a message");
        match ws.read() {
            Ok(Message::Text(t)) => return Ok(serde_json::from_str(t.as_str()).expect("JSON")),
            Ok(Message::Close(c)) => return Err(c.map(|c| u16::from(c.code))),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(tungstenite::Error::ConnectionClosed) => return Err(None),
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// Reads until `pred` matches; returns everything read, the match last.
pub fn until(ws: &mut Ws, deadline: Instant, mut pred: impl FnMut(&Value) -> bool) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let m = next(ws, deadline).unwrap_or_else(|c| panic!("closed ({c:?}) after {seen:?}"));
        let hit = pred(&m);
        seen.push(m);
        if hit {
            return seen;
        }
    }
}

/// Subscribes with `req`, again while the node does not know the symbol yet (4005: the
/// feed's first records, which define the instruments, may not be applied yet).
pub fn subscribe_when_known(ws: &mut Ws, deadline: Instant, req: &Value) {
    loop {
        send(ws, req.clone());
        let m = next(ws, deadline).unwrap();
        match m["type"].as_str() {
            Some("subscribed") => return,
            Some("error") if m["code"] == 4005 => std::thread::yield_now(),
            _ => panic!("{m}"),
        }
    }
}

pub fn update<'a>(m: &'a Value, channel: &str) -> Option<&'a Value> {
    (m["type"] == "update" && m["channel"] == channel).then(|| &m["data"])
}

pub fn http_get(addr: SocketAddr, path: &str, bearer: Option<&str>) -> (u16, Value) {
    let auth = bearer.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let (status, body) = super::get_at(addr, path, &auth);
    (status, serde_json::from_str(&body).expect("JSON body"))
}

/// Price string at scale 2 to cents.
pub fn cents(v: &Value) -> i64 {
    let s = v.as_str().expect("decimal string");
    let (i, f) = s.split_once('.').unwrap();
    i.parse::<i64>().unwrap() * 100 + f.parse::<i64>().unwrap()
}

/// A node on a background thread: its address, its stop flag, and its digest at the end.
pub fn spawn_node(
    ncfg: tape_node::node::NodeConfig,
) -> (
    SocketAddr,
    Arc<AtomicBool>,
    std::thread::JoinHandle<tape_core::output::Digest>,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let s2 = Arc::clone(&stop);
    let handle = std::thread::spawn(move || {
        let mut node = tape_node::node::Node::bind(ncfg).unwrap();
        tx.send(node.local_addr().expect("listening")).unwrap();
        node.run(&s2, 0, |_| {}).unwrap();
        node.engine().digest()
    });
    (rx.recv_timeout(WAIT).unwrap(), stop, handle)
}

/// Waits for a live USD-M BTCUSDT book; its mid in cents.
pub fn usdm_btc_mid(ws: &mut Ws, deadline: Instant) -> i64 {
    let bbo = bbo_when(ws, deadline, "usdm:BTCUSDT", |_| true);
    (cents(&bbo["bid"]) + cents(&bbo["ask"])) / 2
}

/// Subscribes to the `bbo` of `symbol` (`market:SYMBOL`), reads until a two-sided one for
/// which `pred` holds, unsubscribes and returns it.
pub fn bbo_when(
    ws: &mut Ws,
    deadline: Instant,
    symbol: &str,
    mut pred: impl FnMut(&Value) -> bool,
) -> Value {
    send(
        ws,
        json!({"type":"subscribe","channels":["bbo"],"symbols":[symbol]}),
    );
    let seen = until(ws, deadline, |m| {
        update(m, "bbo").is_some_and(|d| d["bid"].is_string() && d["ask"].is_string() && pred(d))
    });
    let bbo = update(seen.last().unwrap(), "bbo").unwrap().clone();
    send(
        ws,
        json!({"type":"unsubscribe","channels":["bbo"],"symbols":[symbol]}),
    );
    bbo
}

/// A node config for a live feed from the simulator on loopback, journaling into `rec`, with
/// JWT `secret`: port 0, no status lines, a blocking loop, the simulator's CA only, no stall
/// drops, quick snapshots. Callers add the desk and users.
pub fn sim_node_config(rec: &std::path::Path, secret: &str) -> tape_tools::config::Config {
    let mut cfg = tape_tools::config::Config::default();
    cfg.server.listen = "127.0.0.1:0".into();
    cfg.server.status_interval_secs = 0;
    cfg.engine.idle = tape_tools::config::Idle::Block;
    cfg.live.webpki_roots = false;
    cfg.live.stall_timeout_ms = 600_000;
    cfg.live.snapshot_min_interval_ms = 50;
    cfg.feed.record = rec.display().to_string();
    cfg.auth.secret = secret.into();
    cfg
}
