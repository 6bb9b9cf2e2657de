//! `tape loadgen` on loopback: against a node replaying the bundled session (library and CLI),
//! and against a scripted hostile server (gaps, garbage, binary frames, a 4010 close). Every
//! run is bounded by its own duration.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::AtomicBool;
use std::thread::JoinHandle;
use std::time::Duration;

mod support;

use support::start;
use tape_tools::loadgen::{run, LoadgenConfig};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::Message;

#[test]
fn twenty_clients_get_data_without_gaps() {
    let srv = start(|_| {});
    let cfg = LoadgenConfig {
        url: format!("ws://{}/ws", srv.addr),
        clients: 20,
        duration: Duration::from_secs(2),
        warmup: Duration::from_millis(500),
        ..LoadgenConfig::default()
    };
    let r = run(&cfg, &AtomicBool::new(false)).unwrap();
    let text = format!("{r}\n{}", serde_json::to_string(&r).unwrap());
    assert_eq!(r.connections_ok, 20, "{text}");
    assert_eq!(r.connections_failed + r.connections_lost, 0, "{text}");
    assert_eq!(r.subscribed, 20, "{text}");
    assert!(
        r.conn_messages_min > 0,
        "every connection gets data: {text}"
    );
    assert_eq!((r.gaps, r.missed, r.seq_regressions), (0, 0, 0), "{text}");
    assert_eq!(
        (r.bad_messages, r.error_replies, r.io_errors),
        (0, 0, 0),
        "{text}"
    );
    assert!(r.closes.is_empty(), "{text}");
    assert!(
        r.latency_ns.count > 0 && r.latency_ns.count == r.histogram.len(),
        "{text}"
    );
    assert!(r.latency_ns.p50 < 1_000_000_000, "{text}");
    assert!(r.measured_secs >= 1.9 && r.measured_secs < 3.0, "{text}");
    assert!(r.cpu_secs > 0.0, "{text}");
}

#[test]
fn the_cli_prints_json_and_writes_an_interval_log() {
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    let srv = start(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("client.hlog");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tape"))
        .args(["loadgen", "--url", &format!("ws://{}/ws", srv.addr)])
        .args(["--clients", "5", "--duration", "1", "--warmup", "0.3"])
        .args([
            "--interval",
            "0.5",
            "--json",
            "--log",
            log.to_str().unwrap(),
        ])
        .output()
        .expect("tape runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.trim_end().lines().count(),
        1,
        "one JSON object: {stdout}"
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("valid JSON");
    assert_eq!(v["connections_ok"], 5, "{v}");
    assert!(v["messages"].as_u64().unwrap() > 0, "{v}");
    assert!(v["latency_ns"]["p50"].as_u64().unwrap() > 0, "{v}");
    assert!(v.get("histogram").is_none(), "{v}");
    let text = std::fs::read(&log).unwrap();
    let intervals = IntervalLogIterator::new(&text)
        .filter(|e| matches!(e, Ok(LogEntry::Interval(_))))
        .count();
    assert!((2..=3).contains(&intervals), "{intervals} intervals");
}

/// A server that answers each client's subscribe with seq 1, 2, 5 (a gap of 2) on one stream,
/// garbage, a binary frame, then closes with 4010.
fn hostile_server(clients: usize) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        for _ in 0..clients {
            let (sock, _) = listener.accept().unwrap();
            let mut ws = tungstenite::accept(sock).unwrap();
            let _subscribe = ws.read().unwrap();
            let upd = |seq: u64| {
                Message::text(format!(
                    r#"{{"type":"update","channel":"trades","market":"spot","symbol":"BTCUSDT","seq":{seq},"ts":1,"recv_ns":1,"data":{{}}}}"#
                ))
            };
            for m in [
                Message::text(r#"{"type":"subscribed","id":1,"subscriptions":[]}"#),
                upd(1),
                upd(2),
                upd(5),
                Message::text("{{{\"seq\":"),
                Message::text(r#"{"type":"update","channel":"trades","seq":"#),
                Message::binary(vec![0xff, 0, 1]),
            ] {
                ws.send(m).unwrap();
            }
            ws.close(Some(CloseFrame {
                code: CloseCode::from(4010),
                reason: "slow consumer".into(),
            }))
            .unwrap();
            // Read until the client's close reply, bounded by the client's own close.
            while ws.read().is_ok() {}
        }
    });
    (addr, handle)
}

#[test]
fn hostile_bytes_are_counted_not_fatal() {
    let (addr, server) = hostile_server(3);
    let cfg = LoadgenConfig {
        url: format!("ws://{addr}/ws"),
        clients: 3,
        connect_batch: 1,
        duration: Duration::from_millis(300),
        warmup: Duration::ZERO,
        ..LoadgenConfig::default()
    };
    let r = run(&cfg, &AtomicBool::new(false)).unwrap();
    server.join().unwrap();
    let text = r.to_string();
    assert_eq!(r.connections_ok, 3, "{text}");
    assert_eq!(r.subscribed, 3, "{text}");
    assert_eq!((r.gap_streams, r.gaps, r.missed), (3, 3, 6), "{text}");
    assert_eq!(r.bad_messages, 9, "{text}");
    assert_eq!(r.closes.get(&4010), Some(&3), "{text}");
    assert_eq!(r.connections_lost, 3, "{text}");
}

#[test]
fn refused_connections_are_counted() {
    // A port nobody listens on: bind, note the port, close.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let cfg = LoadgenConfig {
        url: format!("ws://{addr}/ws"),
        clients: 4,
        duration: Duration::from_millis(100),
        warmup: Duration::ZERO,
        connect_timeout: Duration::from_secs(2),
        ..LoadgenConfig::default()
    };
    let r = run(&cfg, &AtomicBool::new(false)).unwrap();
    assert_eq!((r.connections_ok, r.connections_failed), (0, 4), "{r}");
    assert!(!r.errors.is_empty(), "{r}");
}
