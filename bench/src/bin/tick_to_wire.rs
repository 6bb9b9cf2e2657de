//! Tick-to-wire with N subscribed loopback clients (default 100).
//!
//! Runs the engine (`tape run`'s node: replay of the bundled session, `--speed` times the
//! recorded pace, busy-polling) and N WebSocket clients subscribed to bbo, trades and book of
//! every instrument, read by one busy thread. Prints the engine's own tick-to-wire and
//! fan-out histograms (input read -> write to the last subscriber) and the client-side delay
//! (arrival - `recv_ns`, same host clock), then a JSON line for scripts.
//!
//!     cargo run --release -p tape-bench --bin tick_to_wire -- [clients] [seconds] [speed]

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tape_tools::config::{Config, Idle};
use tungstenite::{Message, WebSocket};

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// `"recv_ns":123` without parsing the whole message.
fn recv_ns(text: &str) -> Option<u64> {
    let at = text.find("\"recv_ns\":")? + 10;
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

fn main() {
    let clients = arg(1, 100) as usize;
    let seconds = arg(2, 10);
    let speed = arg(3, 4) as u32;
    let mut cfg = Config::default();
    cfg.server.listen = "127.0.0.1:0".into();
    cfg.server.status_interval_secs = 0;
    cfg.limits.max_connections = clients + 10;
    cfg.engine.idle = Idle::Spin;
    cfg.feed.journal = tape_bench::fixtures_dir()
        .join("session")
        .display()
        .to_string();
    cfg.feed.speed = speed;
    let ncfg = tape_tools::run::node_config(&cfg).expect("config");
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let stop_node = Arc::clone(&stop);
    let node = std::thread::spawn(move || {
        let mut node = tape_node::node::Node::bind(ncfg).expect("bind");
        tx.send(node.local_addr().expect("listening"))
            .expect("report address");
        node.run(&stop_node, 0, |_| {}).expect("node loop");
        node.status_json(0)
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("node starts");
    let mut socks: Vec<WebSocket<TcpStream>> = (0..clients)
        .map(|_| {
            let s = TcpStream::connect(addr).expect("connect");
            s.set_nodelay(true).ok();
            let (mut ws, _) = tungstenite::client(format!("ws://{addr}/ws"), s).expect("handshake");
            ws.send(Message::text(
                r#"{"type":"subscribe","channels":["bbo","trades","book"],"symbols":["BTCUSDT","ETHUSDT","BTCUSD_PERP"]}"#,
            ))
            .expect("subscribe");
            ws.get_ref().set_nonblocking(true).expect("nonblocking");
            ws
        })
        .collect();
    // The node's clock, so the client's reading is comparable with the node's `recv_ns`.
    let clock = tape_node::node::WallClock::default();
    let mut client_hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("hist");
    let mut messages = 0u64;
    let end = Instant::now() + Duration::from_secs(seconds);
    // Skip the first second: connection set-up and initial snapshots.
    let warm = Instant::now() + Duration::from_secs(1);
    while Instant::now() < end {
        for ws in &mut socks {
            while let Ok(m) = ws.read() {
                if let Message::Text(t) = m {
                    messages += 1;
                    if Instant::now() > warm {
                        if let Some(r) = recv_ns(t.as_str()) {
                            client_hist.saturating_record(clock.now().saturating_sub(r).max(1));
                        }
                    }
                }
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for ws in &mut socks {
        ws.get_ref().set_nonblocking(false).ok();
        let _ = ws.close(None);
    }
    let status: serde_json::Value =
        serde_json::from_str(&node.join().expect("node thread")).expect("status JSON");
    let lat = &status["latency_ns"];
    let us = |v: &serde_json::Value| v.as_u64().unwrap_or(0) as f64 / 1e3;
    println!(
        "tick_to_wire: {clients} clients, {seconds} s at {speed}x, {} messages received, engine spinning, clients on one busy thread",
        messages
    );
    for stage in ["decode", "apply", "fanout", "tick_to_wire"] {
        let s = &lat[stage];
        println!(
            "  engine {stage:<13} n={:<8} p50 {:>8.2} us  p90 {:>8.2} us  p99 {:>8.2} us  p99.9 {:>8.2} us  max {:>9.2} us",
            s["count"], us(&s["p50_ns"]), us(&s["p90_ns"]), us(&s["p99_ns"]), us(&s["p999_ns"]), us(&s["max_ns"])
        );
    }
    let p = |q: f64| client_hist.value_at_quantile(q) as f64 / 1e3;
    println!(
        "  client arrival - recv_ns  n={:<8} p50 {:>8.2} us  p90 {:>8.2} us  p99 {:>8.2} us  p99.9 {:>8.2} us  max {:>9.2} us",
        client_hist.len(), p(0.5), p(0.9), p(0.99), p(0.999), client_hist.max() as f64 / 1e3
    );
    println!(
        "{}",
        serde_json::json!({
            "clients": clients, "seconds": seconds, "speed": speed, "messages": messages,
            "engine": lat,
            "client_ns": {"p50": client_hist.value_at_quantile(0.5), "p99": client_hist.value_at_quantile(0.99), "max": client_hist.max()},
        })
    );
}
