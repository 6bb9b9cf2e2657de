//! The tokio-tungstenite peer serves the bundled session on loopback: it reports its bound
//! address, a tungstenite client receives raw updates with a parseable `recv_ns`, and it
//! exits 0 by itself after its duration with a JSON report.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tungstenite::Message;

/// Kills the server if the test fails before it exits.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn peer_broadcasts_raw_frames_and_exits_by_itself() {
    let journal = tape_bench::fixtures_dir().join("session");
    let child = Command::new(env!("CARGO_BIN_EXE_peer_tokio_ws"))
        .args(["--listen", "127.0.0.1:0", "--journal"])
        .arg(&journal)
        .args(["--speed", "20", "--seconds", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("peer starts");
    let mut guard = Guard(child);
    let mut stdout = BufReader::new(guard.0.stdout.take().expect("piped stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("first line");
    let url = first
        .trim()
        .strip_prefix("peer serving ")
        .unwrap_or_else(|| panic!("address line, got {first:?}"))
        .to_owned();
    let addr = url
        .trim_start_matches("ws://")
        .trim_end_matches("/ws")
        .to_owned();

    let sock = TcpStream::connect(&addr).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let (mut ws, _) = tungstenite::client(url.as_str(), sock).expect("handshake");
    ws.send(Message::text(
        r#"{"type":"subscribe","channels":["bbo"],"symbols":["BTCUSDT"]}"#,
    ))
    .expect("subscribe is accepted (and ignored)");
    let mut seqs = Vec::new();
    while seqs.len() < 5 {
        let Message::Text(t) = ws.read().expect("an update within 10 s") else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(t.as_str()).expect("JSON envelope");
        assert_eq!(v["type"], "update", "{v}");
        assert_eq!(v["channel"], "raw", "{v}");
        assert!(v["data"].is_object(), "the venue frame verbatim: {v}");
        let recv_ns = v["recv_ns"].as_u64().expect("recv_ns is a u64");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        assert!(
            recv_ns <= now + 1_000_000_000 && now - recv_ns < 60_000_000_000,
            "recv_ns {recv_ns} is wall-clock time near {now}"
        );
        seqs.push(v["seq"].as_u64().expect("seq"));
    }
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "seq increases: {seqs:?}"
    );
    let _ = ws.close(None);
    drop(ws);

    // The rest of stdout is the report; EOF comes when the process exits.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let lines: Vec<String> = stdout.lines().map_while(Result::ok).collect();
        let _ = tx.send(lines);
    });
    let started = Instant::now();
    let lines = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the peer exits by itself");
    let status = guard.0.wait().expect("exit status");
    assert!(status.success(), "exit {status}");
    assert!(started.elapsed() < Duration::from_secs(30));
    let report: serde_json::Value =
        serde_json::from_str(lines.last().expect("a report line")).expect("JSON report");
    assert_eq!(report["clients"], 1, "{report}");
    assert!(report["broadcast"].as_u64().unwrap() >= 5, "{report}");
    assert!(report["delivered"].as_u64().unwrap() >= 5, "{report}");
    assert!(report["lagged"].is_u64(), "{report}");
    assert!(report["cpu_ns"].is_u64(), "{report}");
}
