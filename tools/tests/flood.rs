//! A hostile client on one address floods `tape run` with idle sockets and handshakes that never
//! finish, reopening each one as it is closed, while a legitimate client connects every 100 ms
//! and a subscriber that was there first keeps reading. Real sockets on loopback; bounded.
//!
//! Two shapes of the same flood: with the per-address limit (the default) the legitimate client
//! comes from another loopback address (127.0.0.2, as a real user would come from another
//! address than the attacker's); with the limit off the legitimate client shares the attacker's
//! address, and only the bounded handshake pool (evicting its oldest) and the short first-byte
//! deadline keep it in.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;

use serde_json::{json, Value};
use support::{recv_json as recv, start};
use tungstenite::WebSocket;

/// The numbers; scaled down (same ratio) if the fd limit cannot hold them.
const IDLE: usize = 5000;
const SLOW: usize = 1000;
/// How long the legitimate client keeps connecting under the flood.
const FLOOD_FOR: Duration = Duration::from_secs(8);

/// Soft `RLIMIT_NOFILE` of this process, from /proc (no libc: the crate forbids unsafe).
fn fd_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        })
        .unwrap_or(1024)
}

fn connect_from(src: IpAddr, addr: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    s.bind(&SocketAddr::new(src, 0).into())?;
    s.connect_timeout(&addr.into(), timeout)?;
    Ok(s.into())
}

/// One flood socket: idle ones never send, slow ones send one byte of a request head that
/// never ends every few hundred ms.
struct Sock {
    stream: Option<TcpStream>,
    slow: bool,
    sent: usize,
}

const SLOW_HEAD: &[u8] = b"GET /status HTTP/1.1\r\nHost: x\r\nX-Pad: ";

fn open(addr: SocketAddr) -> Option<TcpStream> {
    let s = connect_from(Ipv4Addr::LOCALHOST.into(), addr, Duration::from_millis(200)).ok()?;
    s.set_nonblocking(true).ok()?;
    Some(s)
}

/// Keeps `idle + slow` sockets open from 127.0.0.1 until `stop`, reopening every one the server
/// closes. Returns how many sockets it opened in all.
fn attacker(addr: SocketAddr, idle: usize, slow: usize, stop: Arc<AtomicBool>) -> u64 {
    let mut socks: Vec<Sock> = (0..idle + slow)
        .map(|i| Sock {
            stream: None,
            slow: i >= idle,
            sent: 0,
        })
        .collect();
    let mut opened = 0u64;
    let mut last_drip = Instant::now();
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        let drip = last_drip.elapsed() >= Duration::from_millis(300);
        if drip {
            last_drip = Instant::now();
        }
        for s in &mut socks {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let alive = match &mut s.stream {
                None => false,
                Some(t) => {
                    let mut alive = match t.read(&mut buf) {
                        Ok(0) => false,
                        Ok(_) => true,
                        Err(e) => e.kind() == ErrorKind::WouldBlock,
                    };
                    if alive && s.slow && drip {
                        let b = SLOW_HEAD.get(s.sent).copied().unwrap_or(b'a');
                        alive = t.write(&[b]).is_ok();
                        s.sent += 1;
                    }
                    alive
                }
            };
            if !alive {
                s.stream = open(addr);
                s.sent = 0;
                opened += u64::from(s.stream.is_some());
            }
        }
    }
    opened
}

type Ws = WebSocket<TcpStream>;

/// A WebSocket client from `src` that has subscribed to `channels` and seen `subscribed`.
fn subscribed_client(
    src: IpAddr,
    addr: SocketAddr,
    channels: &[&str],
    within: Duration,
) -> Result<Ws, String> {
    let deadline = Instant::now() + within;
    let s = connect_from(src, addr, Duration::from_secs(1)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let (mut ws, _) =
        tungstenite::client(format!("ws://{addr}/ws"), s).map_err(|e| format!("upgrade: {e}"))?;
    ws.send(tungstenite::Message::text(
        json!({"type":"subscribe","id":1,"channels":channels,"symbols":["usdm:BTCUSDT"]})
            .to_string(),
    ))
    .map_err(|e| format!("send: {e}"))?;
    while Instant::now() < deadline {
        match ws.read() {
            Ok(tungstenite::Message::Text(t)) => {
                let v: Value = serde_json::from_str(t.as_str()).map_err(|e| e.to_string())?;
                if v["type"] == "subscribed" {
                    return Ok(ws);
                }
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    Err("no subscribed reply".into())
}

/// Before the flood nothing competes; this only bounds a broken server.
const WAIT_EARLY: Duration = Duration::from_secs(20);

/// The two floods take turns: two attackers at once on a small box would measure the box.
static ONE_FLOOD_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn flood(per_ip_limit: bool) {
    let _turn = ONE_FLOOD_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Each flood socket costs one fd here; the server's side is bounded by its socket cap.
    let room = fd_limit().saturating_sub(2500);
    let scale = (room as f64 / (IDLE + SLOW) as f64).min(1.0);
    let (idle, slow) = (
        (IDLE as f64 * scale) as usize,
        (SLOW as f64 * scale) as usize,
    );
    if scale < 1.0 {
        eprintln!(
            "fd limit {}: flood scaled to {idle} idle + {slow} slow",
            fd_limit()
        );
    }
    let srv = start(|c| {
        if !per_ip_limit {
            c.server.max_handshaking_per_ip = 0;
        }
    });
    let addr = srv.addr;
    let legit_ip: IpAddr = if per_ip_limit {
        Ipv4Addr::new(127, 0, 0, 2).into()
    } else {
        Ipv4Addr::LOCALHOST.into()
    };

    // Subscribed before the flood: must see every message of its streams during it.
    let mut early =
        subscribed_client(legit_ip, addr, &["book", "trades"], WAIT_EARLY).expect("early client");
    let stop = Arc::new(AtomicBool::new(false));
    let stop_r = Arc::clone(&stop);
    let reader = std::thread::spawn(move || {
        let mut last: std::collections::HashMap<String, u64> = Default::default();
        let (mut n, mut gaps) = (0u64, Vec::new());
        while !stop_r.load(Ordering::Relaxed) {
            let m = recv(&mut early, Instant::now() + Duration::from_secs(5));
            let t = m["type"].as_str().unwrap_or("");
            if t != "update" && t != "snapshot" {
                continue;
            }
            let key = m["channel"].as_str().unwrap_or("").to_owned();
            let seq = m["seq"].as_u64().expect("seq");
            if let Some(prev) = last.insert(key.clone(), seq) {
                if seq != prev + 1 {
                    gaps.push(format!("{key}: {prev} -> {seq}"));
                }
            }
            n += 1;
        }
        (n, gaps)
    });

    let stop_a = Arc::clone(&stop);
    let attack = std::thread::spawn(move || attacker(addr, idle, slow, stop_a));
    // Let the flood build up before measuring.
    std::thread::sleep(Duration::from_millis(500));

    let (mut ok, mut failures) = (0usize, Vec::new());
    let until = Instant::now() + FLOOD_FOR;
    let mut next = Instant::now();
    while Instant::now() < until {
        match subscribed_client(legit_ip, addr, &["trades"], Duration::from_secs(3)) {
            Ok(mut ws) => {
                ok += 1;
                let _ = ws.close(None);
            }
            Err(e) => failures.push(e),
        }
        next += Duration::from_millis(100);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    stop.store(true, Ordering::Relaxed);
    let opened = attack.join().expect("attacker");
    let (msgs, gaps) = reader.join().expect("early reader");

    let (code, body) = support::get_at(addr, "/status", "");
    assert_eq!(code, 200);
    let st: Value = serde_json::from_str(&body).unwrap();
    let net = &st["net"];
    let tries = ok + failures.len();
    eprintln!(
        "per_ip_limit={per_ip_limit}: {ok}/{tries} legitimate connects succeeded; attacker opened \
         {opened} sockets; early subscriber got {msgs} messages, {} gaps; net={net}",
        gaps.len()
    );
    assert!(
        ok * 100 >= tries * 95,
        "only {ok}/{tries} connects succeeded: {failures:?}"
    );
    assert!(gaps.is_empty(), "seq gaps: {gaps:?}");
    assert!(
        msgs > 0,
        "the early subscriber got nothing during the flood"
    );
    // The flood really hit the limits this shape is about.
    if per_ip_limit {
        assert!(net["rejected_per_ip"].as_u64().unwrap() > 0, "{net}");
    } else {
        assert!(net["handshakes_evicted"].as_u64().unwrap() > 0, "{net}");
    }
}

#[test]
fn a_flood_from_one_address_does_not_lock_out_other_addresses() {
    flood(true);
}

#[test]
fn a_flood_cannot_starve_handshakes_even_from_the_same_address() {
    flood(false);
}
