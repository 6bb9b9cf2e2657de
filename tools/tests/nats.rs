//! Scale-out against a real `nats-server` (JetStream): an origin fed by the bundled session,
//! edges following its log, clients on each. Ignored by default; `.ci/nats.sh` installs
//! nats-server and runs them (`NATS_SERVER` names the binary, else `nats-server` on PATH).

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::nats::{
    digest, edge, edge_done, origin, origin_done, session_records, status, wait_status, Nats, WAIT,
};
use support::private::{connect, Ws};
use support::send_json;

/// A TCP proxy to `to` that the test can cut: while cut, every connection through it is
/// closed and new ones are closed at once.
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    fn start(to: u16) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (Arc::clone(&cut), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((a, _)) => {
                        if c.load(Ordering::Relaxed) {
                            continue; // dropped: closed at once
                        }
                        let Ok(b) = TcpStream::connect(("127.0.0.1", to)) else {
                            continue;
                        };
                        a.set_nonblocking(false).unwrap();
                        pipe(
                            a.try_clone().unwrap(),
                            b.try_clone().unwrap(),
                            Arc::clone(&c),
                        );
                        pipe(b, a, Arc::clone(&c));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Proxy { port, cut, stop }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Copies `from` to `to` until either closes or the proxy is cut (then both are shut).
fn pipe(mut from: TcpStream, mut to: TcpStream, cut: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        from.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let mut buf = [0u8; 16384];
        loop {
            if cut.load(Ordering::Relaxed) {
                let _ = from.shutdown(std::net::Shutdown::Both);
                let _ = to.shutdown(std::net::Shutdown::Both);
                return;
            }
            match from.read(&mut buf) {
                Ok(0) => {
                    let _ = to.shutdown(std::net::Shutdown::Both);
                    return;
                }
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => {
                    let _ = to.shutdown(std::net::Shutdown::Both);
                    return;
                }
            }
        }
    });
}

/// Every instrument the node knows, as `market:SYMBOL`.
fn symbols(addr: SocketAddr) -> Vec<String> {
    status(addr)["books"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            format!(
                "{}:{}",
                b["market"].as_str().unwrap(),
                b["symbol"].as_str().unwrap()
            )
        })
        .collect()
}

fn subscribe(addr: SocketAddr, channels: &[&str], symbols: &[String]) -> Ws {
    let mut ws = connect(addr, "");
    send_json(
        &mut ws,
        json!({"type":"subscribe","id":1,"channels":channels,"symbols":symbols}),
    );
    ws
}

/// Reads every message until none came for `quiet` (bounded by the deadline).
fn drain(ws: &mut Ws, quiet: Duration) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    let mut out = Vec::new();
    let mut last = Instant::now();
    while last.elapsed() < quiet {
        assert!(Instant::now() < deadline, "a client that never goes quiet");
        match ws.read() {
            Ok(tungstenite::Message::Text(t)) => {
                out.push(t.as_str().to_owned());
                last = Instant::now();
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
    out
}

/// The published messages of a client by (channel, market, symbol, seq): updates and
/// broadcast snapshots/statuses are the stream's, the same on every node.
fn by_stream_seq(msgs: &[String]) -> BTreeMap<(String, String, String, u64), String> {
    let mut m = BTreeMap::new();
    for t in msgs {
        let v: Value = serde_json::from_str(t).unwrap();
        if v["type"] != "update" || v["seq"].as_u64().is_none() || v["symbol"].is_null() {
            continue;
        }
        let key = (
            v["channel"].as_str().unwrap().to_owned(),
            v["market"].as_str().unwrap_or("").to_owned(),
            v["symbol"].as_str().unwrap().to_owned(),
            v["seq"].as_u64().unwrap(),
        );
        m.insert(key, t.clone());
    }
    m
}

fn tmp() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let j = d.path().join("journal");
    (d, j)
}

#[test]
#[ignore = "needs nats-server: run by .ci/nats.sh"]
fn origin_and_two_edges_serve_the_same_messages_seqs_and_digest() {
    let nats = Nats::start();
    let n = session_records();
    let (_d, journal) = tmp();
    // Slow enough that the clients subscribe while most of the session is still to come.
    let o = origin(&nats.url(), 4, &journal);
    let a = edge(&nats.url());
    let b = edge(&nats.url());
    let syms = symbols(o.addr);
    assert!(!syms.is_empty());
    let mut clients: Vec<Ws> = [o.addr, a.addr, b.addr]
        .iter()
        .map(|&addr| subscribe(addr, &["bbo", "trades", "book", "ticker"], &syms))
        .collect();
    origin_done(o.addr, n);
    let sa = edge_done(a.addr, n);
    let sb = edge_done(b.addr, n);
    let got: Vec<_> = clients
        .iter_mut()
        .map(|ws| by_stream_seq(&drain(ws, Duration::from_millis(700))))
        .collect();
    // Each saw most of the session, and the same thing under the same seq.
    for (i, g) in got.iter().enumerate() {
        assert!(g.len() > 500, "client {i} saw only {} messages", g.len());
    }
    let mut common = 0;
    for (k, v) in &got[0] {
        for (i, g) in got.iter().enumerate().skip(1) {
            if let Some(w) = g.get(k) {
                assert_eq!(v, w, "client {i} differs at {k:?}");
                common += 1;
            }
        }
    }
    assert!(common > 1000, "only {common} messages in common");
    // Every stream ends at the same seq everywhere.
    let last = |g: &BTreeMap<(String, String, String, u64), String>| {
        let mut m = BTreeMap::new();
        for (c, mk, s, seq) in g.keys() {
            m.insert((c.clone(), mk.clone(), s.clone()), *seq);
        }
        m
    };
    assert_eq!(last(&got[0]), last(&got[1]));
    assert_eq!(last(&got[0]), last(&got[2]));
    let d = digest(o.addr);
    assert_eq!(digest(a.addr), d);
    assert_eq!(digest(b.addr), d);
    assert_eq!(sa["nats"]["gaps"], 0);
    assert_eq!(sb["nats"]["run"], status(o.addr)["nats"]["run"]);
    // The origin's log is its journal: a replay of it gives the same digest.
    let out = support::tape(&["replay", journal.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&d), "replay of the origin's journal: {text}");
}

#[test]
#[ignore = "needs nats-server: run by .ci/nats.sh"]
fn a_late_edge_catches_up_and_a_cut_edge_recovers_exactly() {
    let nats = Nats::start();
    let n = session_records();
    let (_d, journal) = tmp();
    let proxy = Proxy::start(nats.port);
    // 28 s of session at 2x: 14 s, so the late edge starts more than 10 s after the origin.
    let o = origin(&nats.url(), 2, &journal);
    let cut = edge(&proxy.url());
    let syms = symbols(cut.addr);
    let mut ws = subscribe(cut.addr, &["book", "bbo"], &syms[..1]);
    send_json(
        &mut ws,
        json!({"type":"subscribe","id":2,"channels":["status"]}),
    );
    wait_status(cut.addr, "the edge follows live", |s| {
        s["nats"]["state"] == "live" && s["nats"]["applied"].as_u64().unwrap_or(0) > 500
    });
    // Live: the subscriber has had a snapshot (never served while the log is not live).
    support::private::until(&mut ws, Instant::now() + WAIT, |m| {
        m["type"] == "snapshot" && m["channel"] == "book"
    });
    proxy.cut.store(true, Ordering::Relaxed);
    let during = wait_status(cut.addr, "the cut edge is not live", |s| {
        s["nats"]["state"] != "live"
    });
    std::thread::sleep(Duration::from_secs(2)); // the cut itself: 2 s without NATS
    proxy.cut.store(false, Ordering::Relaxed);
    origin_done(o.addr, n);
    let late = edge(&nats.url());
    edge_done(cut.addr, n);
    let after = edge_done(late.addr, n);
    let d = digest(o.addr);
    assert_eq!(digest(cut.addr), d, "the cut edge recovered exactly");
    assert_eq!(digest(late.addr), d, "the late edge caught up exactly");
    assert_eq!(after["nats"]["gaps"], 0);
    let s = status(cut.addr)["nats"].clone();
    assert!(s["disconnects"].as_u64().unwrap() >= 1, "{s}");
    eprintln!("the cut edge: {s}");
    // The book subscriber was told: a stale status (no seq advanced), then a fresh snapshot.
    let msgs: Vec<Value> = drain(&mut ws, Duration::from_millis(500))
        .into_iter()
        .map(|t| serde_json::from_str(&t).unwrap())
        .collect();
    let stale = msgs
        .iter()
        .position(|m| m["type"] == "status" && m["channel"] == "book")
        .unwrap_or_else(|| panic!("no stale book status; the edge was {during}"));
    let reason = msgs[stale]["data"]["reason"].as_str().unwrap();
    assert!(
        ["nats_down", "origin_silent", "catching_up"].contains(&reason),
        "{reason}"
    );
    assert!(
        msgs[stale..].iter().any(|m| m["type"] == "snapshot"),
        "no fresh snapshot after the log came back"
    );
    // The bbo subscriber too: a stale status at the stream's seq, then the bbo again.
    let bbo_stale = msgs
        .iter()
        .position(|m| m["type"] == "status" && m["channel"] == "bbo")
        .expect("a stale bbo status");
    assert!(msgs[bbo_stale..]
        .iter()
        .any(|m| m["type"] == "update" && m["channel"] == "bbo"));
    let log_states: Vec<&str> = msgs
        .iter()
        .filter(|m| m["channel"] == "status" && m["venue"] == "log")
        .filter_map(|m| m["data"]["state"].as_str())
        .collect();
    assert!(log_states.iter().any(|s| *s != "live"), "{log_states:?}");
    assert_eq!(log_states.last(), Some(&"live"), "{log_states:?}");
}

#[test]
#[ignore = "needs nats-server: run by .ci/nats.sh"]
fn nats_server_restart_stales_edges_and_never_stops_the_origin() {
    let mut nats = Nats::start();
    let n = session_records();
    let (_d, journal) = tmp();
    let o = origin(&nats.url(), 3, &journal);
    let e = edge(&nats.url());
    let syms = symbols(o.addr);
    let mut on_origin = subscribe(o.addr, &["trades", "bbo", "status"], &syms);
    wait_status(e.addr, "the edge follows live", |s| {
        s["nats"]["state"] == "live" && s["nats"]["applied"].as_u64().unwrap_or(0) > 300
    });
    nats.kill();
    let down = wait_status(e.addr, "the edge notices", |s| s["nats"]["state"] != "live");
    // The origin keeps journaling and serving its own clients meanwhile.
    let journaled = |s: &Value| s["feed"]["records"].as_u64().unwrap();
    let r0 = journaled(&status(o.addr));
    let served = drain(&mut on_origin, Duration::from_millis(300)).len();
    wait_status(o.addr, "the origin goes on", |s| journaled(s) > r0 + 100);
    let served = served + drain(&mut on_origin, Duration::from_millis(300)).len();
    assert!(
        served > 0,
        "the origin's client got nothing while NATS was down"
    );
    nats.spawn();
    origin_done(o.addr, n);
    edge_done(e.addr, n);
    assert_eq!(digest(e.addr), digest(o.addr));
    assert!(
        ["nats_down", "origin_silent", "catching_up"]
            .contains(&down["nats"]["state"].as_str().unwrap()),
        "{down}"
    );
}

#[test]
#[ignore = "needs nats-server: run by .ci/nats.sh"]
fn an_origin_restart_is_a_new_run_the_edges_follow() {
    let nats = Nats::start();
    let n = session_records();
    let (_d, journal) = tmp();
    let first = origin(&nats.url(), 10, &journal);
    let e = edge(&nats.url());
    origin_done(first.addr, n);
    let s1 = edge_done(e.addr, n);
    assert_eq!(digest(e.addr), digest(first.addr));
    let mut client = subscribe(e.addr, &["trades"], &symbols(e.addr));
    drop(first);
    // The origin is gone: the edge says so and serves nothing as live.
    wait_status(e.addr, "the edge notices the origin is gone", |s| {
        s["nats"]["state"] == "origin_silent"
    });
    // A new origin is a new run (journaling into the same journal, which continues): the
    // edge's clients are closed with 1012 and the edge follows the new run from its start.
    let second = origin(&nats.url(), 10, &journal);
    let deadline = Instant::now() + WAIT;
    let code = loop {
        match support::private::next(&mut client, deadline) {
            Ok(_) => {}
            Err(code) => break code,
        }
    };
    assert_eq!(code, Some(1012));
    origin_done(second.addr, n);
    let s2 = edge_done(e.addr, n);
    assert_ne!(s1["nats"]["run"], s2["nats"]["run"]);
    assert_eq!(s2["nats"]["run"], status(second.addr)["nats"]["run"]);
    assert_eq!(digest(e.addr), digest(second.addr));
}

#[test]
#[ignore = "needs nats-server: run by .ci/nats.sh"]
fn an_edge_that_needs_records_the_stream_dropped_says_so_and_serves_nothing() {
    let nats = Nats::start();
    let n = session_records();
    let (_d, journal) = tmp();
    // A 1 MiB stream: the session's 2.5 MB push its first records out.
    let o = support::nats::origin_with(&nats.url(), 20, &journal, |c| c.nats.max_mib = 1);
    origin_done(o.addr, n);
    let url = nats.url();
    let e = support::start_unready(move |c| {
        c.feed.source = tape_tools::config::FeedKind::Nats;
        c.nats.url = url;
    });
    let s = wait_status(e.addr, "the late edge finds the run's start gone", |s| {
        s["nats"]["state"] == "truncated"
    });
    assert_eq!(s["nats"]["applied"], 0, "{s}");
    assert_eq!(s["books"], json!([]), "nothing served");
    assert!(
        s["nats"]["reason"]
            .as_str()
            .unwrap()
            .contains("older than the stream keeps"),
        "{s}"
    );
}

#[test]
#[ignore = "needs nats-server: run by .ci/nats.sh"]
fn an_origin_whose_stream_jetstream_refuses_says_why_holds_the_records_and_publishes_them_later() {
    // JetStream may keep 16 MiB on file; the origin asks for a 64 MiB stream.
    let mut nats = Nats::start_with(Some(16 << 20));
    let n = session_records();
    let (_d, journal) = tmp();
    let o = support::nats::origin_with(&nats.url(), 20, &journal, |c| c.nats.max_mib = 64);
    let s = wait_status(
        o.addr,
        "the origin says JetStream refuses its stream",
        |s| s["nats"]["state"] == "no_stream",
    );
    let reason = s["nats"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("insufficient storage") && reason.contains("nats.max_mib = 64 MiB"),
        "{s}"
    );
    assert_eq!(s["nats"]["acked"], 0, "{s}");
    assert_eq!(s["nats"]["broken"], false, "{s}");
    // It serves and journals all the same: the whole session.
    wait_status(o.addr, "the origin journals the whole session", |s| {
        s["nats"]["published"] == n
    });
    // The operator gives JetStream room: the stream is created and every held record,
    // from the run's first, is published in order.
    nats.kill();
    nats.max_file_store = Some(256 << 20);
    nats.spawn();
    origin_done(o.addr, n);
    let s = status(o.addr);
    assert_eq!(s["nats"]["state"], "live", "{s}");
    let e = edge(&nats.url());
    edge_done(e.addr, n);
    assert_eq!(digest(e.addr), digest(o.addr));
}

#[test]
#[ignore = "needs nats-server: run by .ci/nats.sh"]
fn records_held_for_a_refused_stream_are_bounded_by_max_backlog() {
    let nats = Nats::start_with(Some(16 << 20));
    let (_d, journal) = tmp();
    let o = support::nats::origin_with(&nats.url(), 20, &journal, |c| {
        c.nats.max_mib = 64;
        c.nats.max_backlog = 1000;
    });
    let s = wait_status(o.addr, "the origin gives the run's log up", |s| {
        s["nats"]["state"] == "given_up"
    });
    assert_eq!(s["nats"]["broken"], true, "{s}");
    let reason = s["nats"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("nats.max_backlog = 1000") && reason.contains("could not be created"),
        "{s}"
    );
    // The node journals and offers the whole session all the same.
    let n = session_records();
    let s = wait_status(o.addr, "the origin journals the whole session", |s| {
        s["nats"]["published"] == n
    });
    assert_eq!(s["journal"]["state"], "ok", "{s}");
    assert_eq!(s["nats"]["state"], "given_up", "{s}");
}

#[test]
#[ignore = "needs nats-server: run by .ci/nats.sh"]
fn records_held_while_nats_is_down_are_bounded_by_max_backlog() {
    let mut nats = Nats::start();
    let n = session_records();
    let (_d, journal) = tmp();
    // At the recorded pace (~1,000 records/s) the bound is crossed after the first
    // acknowledgements time out (5 s), while the publisher waits to find where the stream
    // stands, not while it publishes.
    let o = support::nats::origin_with(&nats.url(), 1, &journal, |c| c.nats.max_backlog = 7000);
    wait_status(o.addr, "the origin publishes", |s| {
        s["nats"]["acked"].as_u64().unwrap_or(0) > 0
    });
    nats.kill();
    let s = wait_status(o.addr, "the origin gives the run's log up", |s| {
        s["nats"]["state"] == "given_up"
    });
    let reason = s["nats"]["reason"].as_str().unwrap();
    assert!(reason.contains("nats.max_backlog = 7000"), "{s}");
    assert!(s["nats"]["backlog"].as_u64().unwrap() > 7000, "{s}");
    // It journals the whole session all the same.
    let s = wait_status(o.addr, "the origin journals the whole session", |s| {
        s["nats"]["published"] == n
    });
    assert_eq!(s["journal"]["state"], "ok", "{s}");
}
