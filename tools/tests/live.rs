//! The live feed end to end on loopback: the engine's TLS WebSocket client and REST snapshot
//! thread against the venue simulator serving the bundled session over wss/https. Books sync
//! and agree with the exchange's bookTicker; every fault the simulator can inject (drop,
//! close, gap, stall, malformed and truncated frames, refused snapshots) is survived; a
//! recorded live session replays to the same digest; an unreachable venue backs off without
//! spinning. Every wait is bounded.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod support;

use serde_json::Value;
use support::{recv_json, root};
use tape_node::live::VenueSpec;
use tape_node::node::Node;
use tape_tools::config::{Config, Idle};
use tape_tools::run::{live_config, node_config_with, sim_venues};
use tape_tools::sim::{Fault, SimAuth, SimConfig, SimHandle, VenueSim};

const WAIT: Duration = Duration::from_secs(40);

/// A live node on a background thread; `finish` stops it and hands the node back.
struct Running {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Node>>,
}

impl Running {
    fn finish(mut self) -> Node {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().unwrap().join().expect("node thread")
    }

    fn get(&self, path: &str) -> String {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned()
    }

    fn status(&self) -> Value {
        let body = self.get("/status");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("status JSON: {e}: {body}"))
    }

    /// Polls `/status` until `cond` holds; panics with the last status after `WAIT`.
    fn wait_for(&self, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let st = self.status();
            if cond(&st) {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; status: {}",
                serde_json::to_string_pretty(&st["venues"]).unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn sim(edit: impl FnOnce(&mut SimConfig)) -> (SimHandle, tempfile::TempDir) {
    let certs = tempfile::tempdir().unwrap();
    let mut c = SimConfig {
        journal: root().join("fixtures/session"),
        speed: 10,
        repeat: false,
        cert_dir: certs.path().to_owned(),
        // tape's order gateway does not sign requests yet: the sim checks none.
        auth: SimAuth::Lenient,
        ..SimConfig::default()
    };
    edit(&mut c);
    (VenueSim::start(c).expect("sim starts"), certs)
}

/// Test-sized reconnect and stall settings.
fn config(record: Option<&Path>, edit: impl FnOnce(&mut Config)) -> Config {
    let mut cfg = Config::default();
    cfg.server.listen = "127.0.0.1:0".into();
    cfg.server.status_interval_secs = 0;
    cfg.engine.idle = Idle::Block;
    cfg.live.reconnect_initial_ms = 200;
    cfg.live.reconnect_max_ms = 1_000;
    cfg.live.snapshot_min_interval_ms = 50;
    cfg.live.snapshot_retry_ms = 100;
    cfg.live.stall_timeout_ms = 3_000;
    cfg.live.webpki_roots = false;
    if let Some(r) = record {
        cfg.feed.record = r.display().to_string();
    }
    edit(&mut cfg);
    cfg.validate().unwrap();
    cfg
}

fn start(cfg: &Config, venues: Vec<VenueSpec>, ca: Option<&Path>) -> Running {
    let live = live_config(cfg, venues, ca).unwrap();
    let ncfg = node_config_with(cfg, Some(live)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let s2 = Arc::clone(&stop);
    let handle = std::thread::spawn(move || {
        let mut node = Node::bind(ncfg).expect("node binds");
        tx.send(node.local_addr().expect("listening")).unwrap();
        node.run(&s2, 0, |_| {}).expect("node loop ends cleanly");
        node
    });
    let addr = rx.recv_timeout(WAIT).expect("node binds");
    Running {
        addr,
        stop,
        handle: Some(handle),
    }
}

fn start_on(sim: &SimHandle, cfg: &Config) -> Running {
    start(cfg, sim_venues(sim), sim.ca_path())
}

fn venues(st: &Value) -> &Vec<Value> {
    st["venues"].as_array().expect("venues")
}

fn all_live(st: &Value) -> bool {
    let v = venues(st);
    !v.is_empty() && v.iter().all(|v| v["state"] == "live")
}

fn sum(st: &Value, key: &str) -> u64 {
    venues(st).iter().map(|v| v[key].as_u64().unwrap()).sum()
}

fn sum_books(st: &Value, key: &str) -> u64 {
    st["books"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b[key].as_u64().unwrap())
        .sum()
}

#[test]
fn books_sync_over_tls_agree_with_the_oracle_and_the_recording_replays_bit_exactly() {
    let (sim, _certs) = sim(|c| c.speed = 4);
    let journal = tempfile::tempdir().unwrap();
    let rec = journal.path().join("live");
    // No stall detection: the recorded session ends and the streams fall silent.
    let node = start_on(
        &sim,
        &config(Some(&rec), |c| c.live.stall_timeout_ms = 600_000),
    );
    let st = node.wait_for("every venue live", all_live);
    assert_eq!(
        venues(&st).len(),
        4,
        "spot, usdm (public and market endpoints) and coinm connections"
    );
    // Run the session to its end, then stop.
    let deadline = Instant::now() + WAIT;
    while !sim.stats().finished {
        assert!(Instant::now() < deadline, "sim never finished");
        std::thread::sleep(Duration::from_millis(50));
    }
    let st = node.wait_for("the last frames", |s| {
        s["feed"]["records"].as_u64().unwrap() >= 8_000
    });
    assert!(all_live(&st));
    assert!(st["books"]
        .as_array()
        .unwrap()
        .iter()
        .all(|b| b["state"] == "Synced"));
    // Stopping closes the venues: the `down` records clear the books, journaled too.
    let node = node.finish();
    let stats = node.engine().stats().clone();
    assert!(
        stats.bbo_checks >= 50,
        "oracle checks: {}",
        stats.bbo_checks
    );
    assert_eq!(
        stats.bbo_mismatches, 0,
        "tape's book agrees with bookTicker"
    );
    assert!(
        stats.errors.is_empty(),
        "no engine errors: {:?}",
        stats.errors
    );
    assert!(node.engine().books().all(|b| !b.is_synced()));
    let live_digest = format!("{:016x}", node.engine().digest().value());
    drop(node);

    let (summary, _) = tape_tools::replay::replay(&rec).unwrap();
    assert_eq!(
        summary.digest, live_digest,
        "replay reproduces the live digest"
    );
    assert!(summary.records >= 8_000);
    sim.stop();
}

#[test]
fn drop_and_close_lead_to_reconnect_and_resync() {
    let (sim, _certs) = sim(|c| c.speed = 2);
    let node = start_on(&sim, &config(None, |_| {}));
    node.wait_for("every venue live", all_live);
    let metrics = node.get("/metrics");
    assert!(
        metrics.contains("tape_venue_live{venue=\"sim-usdm\"} 1"),
        "{metrics}"
    );

    sim.inject(Fault::Drop);
    let st = node.wait_for("reconnected after drop", |s| {
        sum(s, "disconnects") >= 4 && sum(s, "connects") >= 8 && all_live(s)
    });
    assert!(venues(&st)
        .iter()
        .all(|v| !v["reason"].as_str().unwrap().is_empty()));

    sim.inject(Fault::Close);
    let st = node.wait_for("reconnected after close", |s| {
        sum(s, "disconnects") >= 8 && sum(s, "connects") >= 12 && all_live(s)
    });
    assert!(
        venues(&st)
            .iter()
            .any(|v| v["reason"].as_str().unwrap().contains("1001")),
        "the venue's close code is the reason: {:?}",
        st["venues"]
    );
    let node = node.finish();
    assert_eq!(node.engine().stats().bbo_mismatches, 0);
    sim.stop();
}

#[test]
fn a_gap_is_detected_and_resynced_and_venue_pings_are_answered() {
    // The venue pings every 100 ms and drops clients silent for 3 intervals.
    let (sim, _certs) = sim(|c| {
        c.speed = 2;
        c.ping_interval = Duration::from_millis(100);
    });
    let node = start_on(&sim, &config(None, |_| {}));
    let st = node.wait_for("every venue live", all_live);
    let loaded = sum_books(&st, "snapshots_loaded");
    sim.inject(Fault::Gap(2));
    node.wait_for("gap, new snapshot, live again", |s| {
        sum_books(s, "gaps") >= 1 && sum_books(s, "snapshots_loaded") > loaded && all_live(s)
    });
    let st = node.status();
    assert_eq!(sum(&st, "connects"), 4, "no reconnect: {:?}", st["venues"]);
    assert_eq!(sim.stats().clients_silent, 0, "tape answered every ping");
    let node = node.finish();
    assert_eq!(node.engine().stats().bbo_mismatches, 0);
    sim.stop();
}

#[test]
fn malformed_and_truncated_frames_are_counted_and_nothing_crashes() {
    let (sim, _certs) = sim(|c| c.speed = 2);
    let node = start_on(&sim, &config(None, |_| {}));
    node.wait_for("every venue live", all_live);
    sim.inject(Fault::Malformed);
    sim.inject(Fault::Truncate);
    let st = node.wait_for("errors counted, live again", |s| {
        let errs: u64 = s["feed"]["engine_errors"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        errs >= 6 && all_live(s)
    });
    assert!(st["feed"]["record_errors"].as_u64().unwrap() >= 6);
    node.finish();
    sim.stop();
}

/// While the venue is stalled every snapshot lands exactly on a diff boundary (`pu == L`);
/// before `BookSync` accepted that as a bridge, the books asked for snapshots forever.
#[test]
fn a_stalled_venue_is_dropped_and_reconnected() {
    let (sim, _certs) = sim(|c| c.speed = 1);
    let node = start_on(
        &sim,
        &config(None, |c| {
            c.live.stall_timeout_ms = 600;
        }),
    );
    node.wait_for("every venue live", all_live);
    sim.inject(Fault::Stall(Duration::from_millis(2_000)));
    let st = node.wait_for("stall detected, live again", |s| {
        venues(s).iter().all(|v| {
            v["reason"].as_str().unwrap().starts_with("stalled")
                && v["connects"].as_u64() >= Some(2)
        }) && all_live(s)
    });
    assert!(sum(&st, "disconnects") >= 3);
    node.finish();
    sim.stop();
}

#[test]
fn refused_snapshots_are_retried_until_the_books_sync() {
    let (sim, _certs) = sim(|c| c.speed = 2);
    sim.inject(Fault::RefuseSnapshot(4));
    let node = start_on(&sim, &config(None, |_| {}));
    let st = node.wait_for("every venue live", all_live);
    assert!(sum(&st, "snapshots_failed") >= 4, "{:?}", st["venues"]);
    assert!(venues(&st)
        .iter()
        .any(|v| v["last_snapshot_error"].as_str().unwrap().contains("503")));
    node.finish();
    sim.stop();
}

/// CPU time of the calling thread, ms (utime + stime from /proc, 10 ms ticks).
fn thread_cpu_ms() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    let after = stat.rsplit_once(')').unwrap().1;
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields after the command: state is f[0]; utime and stime are fields 14 and 15 of the
    // whole line, so f[11] and f[12] here.
    (f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()) * 10
}

#[test]
fn an_unreachable_venue_backs_off_without_busy_looping() {
    // A port with nothing listening.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let venue = VenueSpec {
        name: "nowhere".into(),
        market: tape_core::instrument::Market::UsdM,
        ws_url: format!("wss://127.0.0.1:{port}/stream"),
        rest_url: format!("https://127.0.0.1:{port}"),
        symbols: vec!["BTCUSDT".into()],
        streams: vec!["depth@100ms".into()],
        snapshot_limit: 100,
        scales: vec![],
        routes: None,
    };
    let cfg = config(None, |c| {
        c.live.reconnect_initial_ms = 100;
        c.live.reconnect_max_ms = 400;
        c.live.webpki_roots = true;
    });
    let live = live_config(&cfg, vec![venue], None).unwrap();
    let ncfg = node_config_with(&cfg, Some(live)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = Arc::clone(&stop);
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let mut node = Node::bind(ncfg).expect("node binds");
        tx.send(node.local_addr().expect("listening")).unwrap();
        let t0 = Instant::now();
        let cpu0 = thread_cpu_ms();
        node.run(&s2, 0, |_| {}).expect("loop");
        let cpu = thread_cpu_ms() - cpu0;
        (node, cpu, t0.elapsed())
    });
    let probe = Running {
        addr: rx.recv_timeout(WAIT).expect("node binds"),
        stop: Arc::clone(&stop),
        handle: None,
    };
    // Let it fail for a while; the loop must sleep between attempts.
    std::thread::sleep(Duration::from_millis(3_000));
    // The last failure's reason, read before stopping (stopping ends the attempt under way
    // with "closed by tape").
    let st = probe.status();
    let reason = st["venues"][0]["reason"].as_str().unwrap().to_owned();
    assert!(
        reason.contains("connect") || reason.contains("refused") || reason.contains("timeout"),
        "reason: {reason}"
    );
    drop(probe);
    stop.store(true, Ordering::Relaxed);
    let (node, cpu_ms, wall) = handle.join().unwrap();
    let v = node.engine().venues().next().expect("venue status").clone();
    assert_eq!(v.connects, 0);
    // Ceilings 100, 200, 400, 400, ...: about 10 attempts in 3 s; a busy loop makes thousands.
    assert!(
        (3..=60).contains(&v.attempts),
        "attempts in {wall:?}: {}",
        v.attempts
    );
    // Blocking idle: far below one core (a spinning loop would use ~3000 ms).
    assert!(
        cpu_ms * 4 < wall.as_millis() as u64,
        "engine thread used {cpu_ms} ms CPU in {wall:?}"
    );
}

#[test]
fn tape_run_without_a_config_serves_books_fed_through_the_tls_client_from_the_simulator() {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tape"))
        .args([
            "run",
            "--listen",
            "127.0.0.1:0",
            "--speed",
            "4",
            "--status-interval",
            "0",
            "--exit-after",
            "120",
        ])
        .current_dir(root())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("tape run starts");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut head = String::new();
    for _ in 0..3 {
        out.read_line(&mut head).unwrap();
    }
    assert!(head.contains("venue simulator (in-process, TLS)"), "{head}");
    let url = head
        .split_whitespace()
        .find(|w| w.starts_with("ws://"))
        .unwrap()
        .to_owned();
    let (mut ws, _) = tungstenite::connect(&url).expect("connect");
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    }
    let deadline = Instant::now() + WAIT;
    let req =
        r#"{"type":"subscribe","id":1,"channels":["book","status"],"symbols":["usdm:BTCUSDT"]}"#;
    ws.send(tungstenite::Message::text(req)).unwrap();
    let reply = recv_json(&mut ws, deadline);
    assert_eq!(reply["type"], "subscribed", "{reply}");
    assert_eq!(reply["subscriptions"][1]["channel"], "status");
    let (mut snapshot, mut live_status) = (false, false);
    while !(snapshot && live_status) {
        let m = recv_json(&mut ws, deadline);
        match (m["channel"].as_str(), m["type"].as_str()) {
            (Some("book"), Some("snapshot")) => {
                assert!(!m["data"]["bids"].as_array().unwrap().is_empty());
                snapshot = true;
            }
            (Some("status"), Some("update")) => {
                assert!(m["venue"].as_str().unwrap().starts_with("sim-"));
                live_status |= m["venue"] == "sim-usdm" && m["data"]["state"] == "live";
            }
            _ => {}
        }
    }
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait()).ok());
    let exit = rx.recv_timeout(WAIT).expect("exits after SIGTERM").unwrap();
    assert!(exit.success(), "{exit}");
}

#[test]
fn tape_record_then_tape_replay_reproduce_the_digest() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("sim.toml");
    std::fs::write(
        &cfg,
        format!(
            "[sim]\nspeed = 8\nloop = false\ncert_dir = {:?}\n[live]\nreconnect_initial_ms = 200\n",
            dir.path().join("certs").display().to_string()
        ),
    )
    .unwrap();
    let journal = dir.path().join("rec");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tape"))
        .args(["record", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&journal)
        .args(["--status-interval", "0", "--exit-after", "5"])
        .current_dir(root())
        .output()
        .expect("tape record runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let digest = stdout
        .split("digest ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("digest printed: {stdout}"))
        .to_owned();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tape"))
        .args(["replay", "--json"])
        .arg(&journal)
        .output()
        .unwrap();
    assert!(out.status.success());
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["digest"], digest.as_str());
    assert!(summary["records"].as_u64().unwrap() > 1_000, "{summary}");
    assert_eq!(summary["oracle"]["mismatches"], 0, "{summary}");
}

/// The bundled session with what USD-M's `/market` endpoint carries besides `trade`: an
/// `aggTrade` for every USD-M trade and a `ticker` for every fourth, at the trade's receive
/// time, from the same source.
fn session_with_usdm_market_streams(dir: &Path) {
    use tape_core::input::{RecordKind, SourceDef};
    use tape_journal::{JournalOptions, JournalReader, JournalWriter};
    let mut reader = JournalReader::open(root().join("fixtures/session")).unwrap();
    let (mut w, _) = JournalWriter::open(dir, JournalOptions::default()).unwrap();
    let mut usdm = std::collections::BTreeSet::new();
    let mut n = 0u64;
    while let Some(rec) = reader.next() {
        let rec = rec.unwrap();
        w.append(rec.recv_ns, rec.source, rec.kind, rec.payload)
            .unwrap();
        if rec.kind == RecordKind::SourceDef as u16 {
            let def = SourceDef::parse(rec.payload).unwrap();
            if def.market == tape_core::instrument::Market::UsdM {
                usdm.insert(rec.source);
            }
            continue;
        }
        if rec.kind != RecordKind::WsFrame as u16 || !usdm.contains(&rec.source) {
            continue;
        }
        let v: Value = serde_json::from_slice(rec.payload).unwrap();
        let d = &v["data"];
        if d["e"] != "trade" {
            continue;
        }
        n += 1;
        let sym = d["s"].as_str().unwrap();
        let lower = sym.to_ascii_lowercase();
        let (e, t, p, q) = (&d["E"], &d["T"], &d["p"], &d["q"]);
        let agg = serde_json::json!({
            "stream": format!("{lower}@aggTrade"),
            "data": {"e": "aggTrade", "E": e, "a": n, "s": sym, "p": p, "q": q,
                     "f": d["t"], "l": d["t"], "T": t, "m": d["m"]},
        });
        w.append(
            rec.recv_ns,
            rec.source,
            rec.kind,
            agg.to_string().as_bytes(),
        )
        .unwrap();
        if n.is_multiple_of(4) {
            let ticker = serde_json::json!({
                "stream": format!("{lower}@ticker"),
                "data": {"e": "24hrTicker", "E": e, "s": sym, "p": "0.00", "P": "0.000",
                         "w": p, "c": p, "Q": q, "o": p, "h": p, "l": p, "v": "1.000",
                         "q": p, "O": 0, "C": t, "F": 1, "L": n, "n": n},
            });
            w.append(
                rec.recv_ns,
                rec.source,
                rec.kind,
                ticker.to_string().as_bytes(),
            )
            .unwrap();
        }
    }
    w.close().unwrap();
}

/// The status of the venue connection `name` (`null` until it has one).
fn named<'a>(st: &'a Value, name: &str) -> &'a Value {
    const NONE: Value = Value::Null;
    venues(st)
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or(&NONE)
}

#[test]
fn usdm_market_streams_come_over_market_books_over_public_and_a_market_drop_keeps_books_synced() {
    let tmp = tempfile::tempdir().unwrap();
    let session = tmp.path().join("session");
    session_with_usdm_market_streams(&session);
    let (sim, _certs) = sim(|c| {
        c.journal = session;
        c.speed = 1;
    });
    let usdm: Vec<VenueSpec> = sim_venues(&sim)
        .into_iter()
        .filter(|v| v.market == tape_core::instrument::Market::UsdM)
        .collect();
    let rec = tmp.path().join("live");
    let node = start(
        &config(Some(&rec), |c| c.live.stall_timeout_ms = 600_000),
        usdm,
        sim.ca_path(),
    );
    let synced = |s: &Value| {
        let p = named(s, "sim-usdm");
        all_live(s) && p["books"].as_u64() == Some(2) && p["books_synced"].as_u64() == Some(2)
    };
    let st = node.wait_for("both usdm connections live, books synced", |s| {
        synced(s) && named(s, "sim-usdm:market")["frames"].as_u64() > Some(0)
    });
    assert_eq!(venues(&st).len(), 2, "{:?}", st["venues"]);
    let (public, market) = (named(&st, "sim-usdm"), named(&st, "sim-usdm:market"));
    assert_eq!(public["endpoint"], "public");
    assert_eq!(market["endpoint"], "market");
    let (purl, murl) = (
        public["url"].as_str().unwrap(),
        market["url"].as_str().unwrap(),
    );
    assert!(
        purl.contains("/public/stream?streams=btcusdt@depth@100ms/btcusdt@bookTicker/"),
        "{purl}"
    );
    assert!(
        !purl.contains("aggTrade") && !purl.contains("@ticker") && !purl.contains("@trade"),
        "{purl}"
    );
    assert!(
        murl.contains("/market/stream?streams=btcusdt@trade/btcusdt@aggTrade/btcusdt@ticker/"),
        "{murl}"
    );
    assert!(
        !murl.contains("depth") && !murl.contains("bookTicker"),
        "{murl}"
    );
    // The books' snapshots belong to the public connection alone.
    assert!(public["snapshots_ok"].as_u64() >= Some(2));
    assert_eq!(market["snapshots_ok"], 0);
    let loaded = sum_books(&st, "snapshots_loaded");

    let resyncs = sum_books(&st, "resyncs");
    sim.inject_on(
        tape_core::instrument::Market::UsdM,
        Fault::DropEndpoint(tape_node::live::Endpoint::Market),
    );
    let st = node.wait_for("the market connection dropped and back", |s| {
        let m = named(s, "sim-usdm:market");
        m["disconnects"].as_u64() >= Some(1) && m["connects"].as_u64() >= Some(2) && synced(s)
    });
    let public = named(&st, "sim-usdm");
    assert_eq!(
        (public["connects"].as_u64(), public["disconnects"].as_u64()),
        (Some(1), Some(0)),
        "the public connection never dropped: {public}"
    );
    assert_eq!(
        (
            sum_books(&st, "snapshots_loaded"),
            sum_books(&st, "resyncs")
        ),
        (loaded, resyncs),
        "no book resynced: {}",
        st["books"]
    );
    assert!(st["books"]
        .as_array()
        .unwrap()
        .iter()
        .all(|b| b["state"] == "Synced"));
    // Frames keep coming over the new market connection.
    let frames = named(&st, "sim-usdm:market")["frames"].as_u64().unwrap();
    node.wait_for("market frames after the drop", |s| {
        named(s, "sim-usdm:market")["frames"].as_u64() > Some(frames)
    });

    let deadline = Instant::now() + WAIT;
    while !sim.stats().finished {
        assert!(Instant::now() < deadline, "sim never finished");
        std::thread::sleep(Duration::from_millis(50));
    }
    let node = node.finish();
    let stats = node.engine().stats().clone();
    let [trades, aggs, tickers] = ["trade", "agg_trade", "ticker"].map(|k| stats.messages.get(k));
    assert!(
        trades > 0 && aggs > 0 && tickers > 0,
        "trade {trades}, aggTrade {aggs}, ticker {tickers}"
    );
    assert_eq!(stats.bbo_mismatches, 0);
    assert!(stats.errors.is_empty(), "{:?}", stats.errors);
    let live_digest = format!("{:016x}", node.engine().digest().value());
    drop(node);
    let (summary, _) = tape_tools::replay::replay(&rec).unwrap();
    assert_eq!(
        summary.digest, live_digest,
        "replay reproduces the live digest"
    );
    sim.stop();
}
