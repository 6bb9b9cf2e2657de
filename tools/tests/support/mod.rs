//! Shared by the integration tests: the repository root and a node on a background thread.
#![allow(dead_code)] // each test binary uses a different part

pub mod nats;
pub mod private;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tape_tools::config::Config;
use tape_tools::run::node_config;

const WAIT: Duration = Duration::from_secs(20);

/// A journal record: `(recv_ns, source, kind, payload)`.
pub type Rec = (u64, u32, u16, Vec<u8>);

/// The bundled session's records, in order.
pub fn session_records() -> Vec<Rec> {
    let mut reader = tape_journal::JournalReader::open(root().join("fixtures/session")).unwrap();
    let mut recs = Vec::new();
    while let Some(rec) = reader.next() {
        let rec = rec.unwrap();
        recs.push((rec.recv_ns, rec.source, rec.kind, rec.payload.to_vec()));
    }
    recs
}

/// `recs` as a new journal in `dir`.
pub fn write_journal(dir: &std::path::Path, recs: &[Rec]) {
    let opts = tape_journal::JournalOptions::default();
    let (mut w, _) = tape_journal::JournalWriter::open(dir, opts).unwrap();
    for (t, s, k, p) in recs {
        w.append(*t, *s, *k, p).unwrap();
    }
    w.close().unwrap();
}

/// Waits out the end of a UTC day when fewer than `margin` remain of it. Binance's rate-limit
/// windows are fixed and aligned (a `1 DAY` window starts at 00:00 UTC), and both the venue
/// simulator and the node read the wall clock: a test that needs two orders in one window
/// must not straddle a boundary. Waits at most `margin`, and only that close to midnight.
pub fn clear_of_day_boundary(margin: Duration) {
    const DAY: Duration = Duration::from_secs(86_400);
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970");
    let into_day = Duration::from_secs(since_epoch.as_secs() % DAY.as_secs())
        + Duration::from_nanos(u64::from(since_epoch.subsec_nanos()));
    let left = DAY - into_day;
    if left < margin {
        // Not a synchronisation: the wall clock itself is the condition.
        std::thread::sleep(left + Duration::from_millis(10));
    }
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A node on a background thread; stopped and joined on drop.
pub struct Server {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<std::io::Result<()>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.join()
                .expect("node thread")
                .expect("node loop ends cleanly");
        }
    }
}

/// A node on a background thread, returned as soon as it listens (before it knows any
/// instrument).
pub fn start_unready(edit: impl FnOnce(&mut Config)) -> Server {
    let mut cfg = Config::default();
    cfg.server.listen = "127.0.0.1:0".into();
    cfg.server.status_interval_secs = 0;
    cfg.feed.journal = root().join("fixtures/session").display().to_string();
    cfg.feed.speed = 20;
    edit(&mut cfg);
    cfg.validate().unwrap();
    let ncfg = node_config(&cfg).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let s2 = Arc::clone(&stop);
    let handle = std::thread::spawn(move || {
        let mut node = tape_node::node::Node::bind(ncfg)?;
        tx.send(node.local_addr().expect("listening")).unwrap();
        node.run(&s2, 0, |_| {})
    });
    let addr = rx.recv_timeout(WAIT).expect("node binds");
    Server {
        addr,
        stop,
        handle: Some(handle),
    }
}

pub fn start(edit: impl FnOnce(&mut Config)) -> Server {
    let srv = start_unready(edit);
    let addr = srv.addr;
    // The instruments exist once the journal's first records (its source definitions) are
    // applied; a client that subscribes before that gets "unknown symbol". Wait for them, so
    // no test depends on how fast its first connection is.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (_, body) = get_at(addr, "/status", "");
        let books = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["books"].as_array().map(Vec::len))
            .unwrap_or(0);
        if books > 0 {
            break srv;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no instrument known after {WAIT:?}: {body}"
        );
        std::thread::yield_now();
    }
}

/// `GET target` with `Connection: close` over an open stream (plain or TLS): the status and
/// the body. The stream's read timeout bounds the wait.
pub fn http_get(mut s: impl std::io::Read + std::io::Write, target: &str) -> (u16, String) {
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response");
    (head[9..12].parse().unwrap(), body.to_owned())
}

/// Runs the `tape` binary built for this test run.
pub fn tape(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tape"))
        .args(args)
        .output()
        .expect("tape runs")
}

/// `GET path` on a new plain connection to `addr`, with `headers` (each ending in `\r\n`):
/// the status and the body (empty without one). A 5 s read timeout bounds the wait.
pub fn get_at(addr: SocketAddr, path: &str, headers: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Sends `v` as one text message.
pub fn send_json<S: std::io::Read + std::io::Write>(
    ws: &mut tungstenite::WebSocket<S>,
    v: serde_json::Value,
) {
    ws.send(tungstenite::Message::text(v.to_string()))
        .expect("send");
}

/// The next JSON text message, within the deadline (the stream has a read timeout, so a
/// silent server is noticed).
pub fn recv_json<S: std::io::Read + std::io::Write>(
    ws: &mut tungstenite::WebSocket<S>,
    deadline: std::time::Instant,
) -> serde_json::Value {
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for a message"
        );
        match ws.read() {
            Ok(tungstenite::Message::Text(t)) => {
                return serde_json::from_str(t.as_str()).expect("server sends JSON")
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// The next text message (pings are answered by tungstenite on the way).
pub fn next_text<S: std::io::Read + std::io::Write>(ws: &mut tungstenite::WebSocket<S>) -> String {
    loop {
        match ws.read().expect("reading a frame") {
            tungstenite::Message::Text(t) => return t.as_str().to_owned(),
            tungstenite::Message::Close(c) => panic!("closed: {c:?}"),
            _ => {}
        }
    }
}
