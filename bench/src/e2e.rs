//! The end-to-end latency lab, as a library: one scenario (an input rate, a client count, a
//! recorded session) run against tape or against the tokio-tungstenite peer, with the same
//! load generator (`tape loadgen`, one blocking `mio` thread) measuring tick-to-client.
//!
//! - **tape**: the venue simulator serves the session over wss; the engine (`tape run`'s
//!   node) connects through its real venue client, syncs books from REST snapshots and serves
//!   the clients, which subscribe to `bbo`, `trades` and `book` of every symbol.
//! - **peer** ([`crate::fanout_peer`]): replays the same session at the same pace from the
//!   journal and broadcasts every frame to every client.
//!
//! Tick-to-client is the client's arrival time minus the server's `recv_ns` (when it took the
//! frame in), both on this host's clock. Server CPU per delivered message is tape's busy
//! time (loop iterations that had work; its spinning excluded) or the peer thread's CPU time,
//! over the messages each wrote to client sockets.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tape_journal::JournalReader;
use tape_tools::config::{Config, Idle};
use tape_tools::loadgen::{self, LatencySummary, LoadgenConfig, LoadgenReport};
use tape_tools::run::{live_config, node_config_with, sim_venues};
use tape_tools::sim::{SimConfig, VenueSim};

use crate::fanout_peer::{self, PeerOptions};

/// Seconds of each run excluded from the measurement once every client has connected.
pub const WARMUP_SECS: u64 = 3;

/// One scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The journal served.
    pub journal: PathBuf,
    /// Pace: 1 = recorded, N = N times faster.
    pub speed: u32,
    /// Client connections.
    pub clients: usize,
    /// Measured seconds, after [`WARMUP_SECS`].
    pub seconds: u64,
    /// Symbols the clients subscribe to; empty = every symbol the simulator lists.
    pub symbols: Vec<String>,
    /// Run tape's engine blocking in `poll` instead of spinning.
    pub block: bool,
    /// Serve the venue over TLS (tape only; the peer reads the journal).
    pub tls: bool,
    /// Pin tape's engine thread to CPU 1 and every other thread of the run to CPU 0.
    pub pin: bool,
}

impl Scenario {
    /// A scenario serving `journal` at the pace that gives `rate` WebSocket frames per second.
    ///
    /// # Panics
    /// An unreadable journal (this is a benchmark driver: it stops with the reason).
    pub fn at_rate(journal: PathBuf, rate: u64, clients: usize, seconds: u64) -> Scenario {
        let base = recorded_rate(&journal);
        let speed = ((rate as f64 / base).round() as u32).max(1);
        Scenario {
            journal,
            speed,
            clients,
            seconds,
            symbols: Vec::new(),
            block: false,
            tls: true,
            pin: false,
        }
    }
}

/// WebSocket frames per second of a journal at its own pace.
///
/// # Panics
/// An unreadable journal.
pub fn recorded_rate(dir: &std::path::Path) -> f64 {
    let mut reader = JournalReader::open(dir)
        .unwrap_or_else(|e| panic!("{}: cannot open journal: {e}", dir.display()));
    let (mut first, mut last, mut frames) = (None, 0u64, 0u64);
    while let Some(Ok(r)) = reader.next() {
        if r.kind == 2 {
            first.get_or_insert(r.recv_ns);
            last = r.recv_ns;
            frames += 1;
        }
    }
    let span = last.saturating_sub(first.unwrap_or(last)).max(1) as f64 / 1e9;
    frames as f64 / span
}

/// Which server a run measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Server {
    /// tape, fed by the simulator over wss.
    Tape,
    /// The tokio-tungstenite broadcast peer.
    TokioTungstenite,
}

impl Server {
    /// Short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Server::Tape => "tape",
            Server::TokioTungstenite => "tokio-tungstenite",
        }
    }
}

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The server.
    pub server: Server,
    /// Clients asked for.
    pub clients: usize,
    /// Frames the server took in per second of its run.
    pub input_per_sec: f64,
    /// Messages the clients got in the window.
    pub messages: u64,
    /// Per second.
    pub messages_per_sec: f64,
    /// Tick-to-client, ns.
    pub latency: LatencySummary,
    /// Sequence gaps the clients saw (tape: conflated or dropped updates).
    pub gaps: u64,
    /// Messages missed in those gaps.
    pub missed: u64,
    /// Messages the server shed for slow receivers: the peer's lagged count; tape's dropped
    /// trades, conflated `bbo`/`book` updates and refused sends.
    pub dropped: u64,
    /// Messages the server wrote to client sockets over its run.
    pub sent: u64,
    /// Server CPU: tape's busy time, the peer thread's CPU time, ns.
    pub server_cpu_ns: u64,
    /// `server_cpu_ns / sent`.
    pub cpu_ns_per_message: u64,
    /// `server_cpu_ns / frames taken in`.
    pub cpu_ns_per_input: u64,
    /// Share of the run the server had work, % (tape's busy time; the peer's CPU time).
    pub server_busy_pct: f64,
    /// The load generator's CPU, % of one core.
    pub client_cpu_pct: f64,
    /// tape: venue reconnects in the run. Peer: 0.
    pub venue_reconnects: u64,
    /// tape: its own tick-to-wire (frame read -> last subscriber's write) p50, p99, p99.9, ns.
    pub engine_tick_to_wire: Option<[u64; 3]>,
    /// Peer: how far behind its input schedule it was at the end, ns.
    pub ingest_lag_ns: Option<u64>,
    /// Client connections whose handshake completed.
    pub connections_ok: u64,
    /// Client connections that never completed their handshake (or timed out).
    pub connections_failed: u64,
    /// Open client connections that ended before the load generator closed them.
    pub connections_lost: u64,
    /// Close frames the server sent first, by code (4010: slow consumer).
    pub closes: std::collections::BTreeMap<u16, u64>,
    /// The first few distinct failure reasons the load generator saw.
    pub errors: Vec<String>,
}

fn loadgen_config(url: String, s: &Scenario, symbols: Vec<String>) -> LoadgenConfig {
    LoadgenConfig {
        url,
        clients: s.clients,
        channels: ["bbo", "trades", "book"].map(String::from).to_vec(),
        symbols,
        duration: Duration::from_secs(s.seconds),
        warmup: Duration::from_secs(WARMUP_SECS),
        ..LoadgenConfig::default()
    }
}

/// Runs the clients against `addr`, subscribed to the scenario's symbols or, when it names
/// none, to `all_symbols()`.
fn load(
    addr: SocketAddr,
    s: &Scenario,
    all_symbols: impl FnOnce() -> Vec<String>,
) -> LoadgenReport {
    let symbols = if s.symbols.is_empty() {
        all_symbols()
    } else {
        s.symbols.clone()
    };
    loadgen::run(
        &loadgen_config(format!("ws://{addr}/ws"), s, symbols),
        &AtomicBool::new(false),
    )
    .expect("loadgen")
}

fn pin_to(cpu: usize, on: bool) {
    if on {
        assert!(
            core_affinity::set_for_current(core_affinity::CoreId { id: cpu }),
            "cannot pin to CPU {cpu}"
        );
    }
}

/// Runs the scenario against tape: simulator -> engine over wss -> clients.
///
/// # Panics
/// Anything that stops the run from happening (bind, simulator, load generator failures).
pub fn run_tape(s: &Scenario) -> Outcome {
    pin_to(0, s.pin);
    let certs = tempfile::tempdir().expect("temp dir");
    let sim = VenueSim::start(SimConfig {
        journal: s.journal.clone(),
        speed: s.speed,
        repeat: true,
        cert_dir: certs.path().to_owned(),
        tls: s.tls,
        ..SimConfig::default()
    })
    .expect("simulator");

    let mut cfg = Config::default();
    cfg.server.listen = "127.0.0.1:0".into();
    cfg.server.status_interval_secs = 0;
    cfg.limits.max_connections = s.clients + 16;
    // Every client comes from this host and none authenticates: no per-address cap here.
    cfg.limits.max_anonymous_per_ip = 0;
    cfg.engine.idle = if s.block { Idle::Block } else { Idle::Spin };
    cfg.live.webpki_roots = false;
    cfg.live.reconnect_initial_ms = 50;
    cfg.live.reconnect_max_ms = 1_000;
    cfg.live.snapshot_min_interval_ms = 50;
    cfg.live.snapshot_retry_ms = 100;
    let live = live_config(&cfg, sim_venues(&sim), sim.ca_path()).expect("live config");
    let ncfg = node_config_with(&cfg, Some(live)).expect("node config");
    let stop = Arc::new(AtomicBool::new(false));
    let stop_node = Arc::clone(&stop);
    let (tx, rx) = std::sync::mpsc::channel();
    let pin = s.pin;
    let node = std::thread::spawn(move || {
        pin_to(1, pin);
        let mut node = tape_node::node::Node::bind(ncfg).expect("bind");
        tx.send(node.local_addr().expect("listening"))
            .expect("report");
        let t0 = std::time::Instant::now();
        node.run(&stop_node, 0, |_| {}).expect("node loop");
        (node.loop_stats(), node.status_json(0), t0.elapsed())
    });
    let addr = rx.recv_timeout(Duration::from_secs(30)).expect("node");
    let report = load(addr, s, || {
        let mut all: Vec<String> = sim
            .endpoints()
            .iter()
            .flat_map(|e| e.symbols.iter().cloned())
            .collect();
        all.sort();
        all.dedup();
        all
    });
    stop.store(true, Ordering::Relaxed);
    let (loop_stats, status, wall) = node.join().expect("node thread");
    sim.stop();

    let status: serde_json::Value = serde_json::from_str(&status).unwrap_or_default();
    let reconnects: u64 = status["venues"]
        .as_array()
        .map(|v| v.iter().filter_map(|v| v["disconnects"].as_u64()).sum())
        .unwrap_or(0);
    let slow = &status["slow_clients"];
    let shed = ["trades_dropped", "conflated"]
        .iter()
        .filter_map(|k| slow[*k].as_u64())
        .sum::<u64>();
    let t2w = &status["latency_ns"]["tick_to_wire"];
    let stage = |k: &str| t2w[k].as_u64().unwrap_or(0);
    let wall_ns = wall.as_nanos().max(1) as f64;
    outcome(
        Server::Tape,
        s,
        &report,
        Usage {
            input: loop_stats.records,
            sent: loop_stats.sent,
            dropped: loop_stats.send_refused + shed,
            cpu_ns: loop_stats.busy_ns,
            wall_ns,
        },
        |o| {
            o.venue_reconnects = reconnects;
            o.engine_tick_to_wire = Some([stage("p50_ns"), stage("p99_ns"), stage("p999_ns")]);
        },
    )
}

/// Runs the scenario against the tokio-tungstenite peer on its own thread.
///
/// # Panics
/// Anything that stops the run from happening (bind, journal, load generator failures).
pub fn run_peer(s: &Scenario) -> Outcome {
    pin_to(0, s.pin);
    let opts = PeerOptions {
        listen: "127.0.0.1:0".parse().expect("address"),
        journal: s.journal.clone(),
        speed: s.speed,
        capacity: 1024,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let stop_peer = Arc::clone(&stop);
    let (tx, rx) = std::sync::mpsc::channel();
    let pin = s.pin;
    let peer = std::thread::spawn(move || {
        pin_to(1, pin);
        fanout_peer::serve(&opts, &stop_peer, |addr| {
            let _ = tx.send(addr);
        })
    });
    let addr = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(addr) => addr,
        // It ended without serving: say why (a bad journal, a bind failure).
        Err(RecvTimeoutError::Disconnected) => match peer.join() {
            Ok(Err(e)) => panic!("peer: {e}"),
            _ => panic!("peer: ended before serving"),
        },
        Err(RecvTimeoutError::Timeout) => panic!("peer: not serving after 30 s"),
    };
    // The peer ignores subscriptions: any symbol will do.
    let report = load(addr, s, || vec!["BTCUSDT".to_owned()]);
    stop.store(true, Ordering::Relaxed);
    let r = peer.join().expect("peer thread").expect("peer");
    outcome(
        Server::TokioTungstenite,
        s,
        &report,
        Usage {
            input: r.broadcast,
            sent: r.delivered,
            dropped: r.lagged,
            cpu_ns: r.cpu_ns,
            wall_ns: r.wall_ns.max(1) as f64,
        },
        |o| o.ingest_lag_ns = Some(r.ingest_lag_ns),
    )
}

/// What a server did over its whole run.
struct Usage {
    input: u64,
    sent: u64,
    dropped: u64,
    cpu_ns: u64,
    wall_ns: f64,
}

fn outcome(
    server: Server,
    s: &Scenario,
    r: &LoadgenReport,
    u: Usage,
    extra: impl FnOnce(&mut Outcome),
) -> Outcome {
    let mut o = Outcome {
        server,
        clients: s.clients,
        input_per_sec: u.input as f64 / (u.wall_ns / 1e9),
        messages: r.messages,
        messages_per_sec: r.messages_per_sec,
        latency: r.latency_ns,
        gaps: r.gaps,
        missed: r.missed,
        dropped: u.dropped,
        sent: u.sent,
        server_cpu_ns: u.cpu_ns,
        cpu_ns_per_message: u.cpu_ns / u.sent.max(1),
        cpu_ns_per_input: u.cpu_ns / u.input.max(1),
        server_busy_pct: u.cpu_ns as f64 * 100.0 / u.wall_ns,
        client_cpu_pct: r.cpu_pct,
        venue_reconnects: 0,
        engine_tick_to_wire: None,
        ingest_lag_ns: None,
        connections_ok: r.connections_ok,
        connections_failed: r.connections_failed,
        connections_lost: r.connections_lost,
        closes: r.closes.clone(),
        errors: r.errors.clone(),
    };
    extra(&mut o);
    o
}

/// The per-column median of several runs of one server (for an even count, the upper
/// middle value).
///
/// # Panics
/// No runs.
pub fn median(runs: &[Outcome]) -> Outcome {
    assert!(!runs.is_empty(), "median of no runs");
    fn mid<T: Copy + PartialOrd>(runs: &[Outcome], f: impl Fn(&Outcome) -> T) -> T {
        let mut v: Vec<T> = runs.iter().map(f).collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        v[v.len() / 2]
    }
    let mut m = runs[0].clone();
    m.input_per_sec = mid(runs, |o| o.input_per_sec);
    m.messages = mid(runs, |o| o.messages);
    m.messages_per_sec = mid(runs, |o| o.messages_per_sec);
    m.latency = LatencySummary {
        count: mid(runs, |o| o.latency.count),
        p50: mid(runs, |o| o.latency.p50),
        p90: mid(runs, |o| o.latency.p90),
        p99: mid(runs, |o| o.latency.p99),
        p999: mid(runs, |o| o.latency.p999),
        max: mid(runs, |o| o.latency.max),
    };
    m.gaps = mid(runs, |o| o.gaps);
    m.missed = mid(runs, |o| o.missed);
    m.dropped = mid(runs, |o| o.dropped);
    m.sent = mid(runs, |o| o.sent);
    m.server_cpu_ns = mid(runs, |o| o.server_cpu_ns);
    m.cpu_ns_per_message = mid(runs, |o| o.cpu_ns_per_message);
    m.cpu_ns_per_input = mid(runs, |o| o.cpu_ns_per_input);
    m.server_busy_pct = mid(runs, |o| o.server_busy_pct);
    m.client_cpu_pct = mid(runs, |o| o.client_cpu_pct);
    m.venue_reconnects = mid(runs, |o| o.venue_reconnects);
    m.engine_tick_to_wire = runs[0]
        .engine_tick_to_wire
        .map(|_| [0, 1, 2].map(|i| mid(runs, |o| o.engine_tick_to_wire.map_or(0, |t| t[i]))));
    m.connections_ok = mid(runs, |o| o.connections_ok);
    m.connections_failed = mid(runs, |o| o.connections_failed);
    m.connections_lost = mid(runs, |o| o.connections_lost);
    m.ingest_lag_ns = runs[0]
        .ingest_lag_ns
        .map(|_| mid(runs, |o| o.ingest_lag_ns.unwrap_or(0)));
    m
}

/// A latency in ns as a short human figure (µs below 1 ms, ms below 1 s, else s).
pub fn fmt_ns(ns: u64) -> String {
    let ns = ns as f64;
    if ns < 1e4 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns < 1e6 {
        format!("{:.0} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.1} s", ns / 1e9)
    }
}

/// A rate as a short human figure (`k/s` from 10,000 up).
pub fn fmt_rate(per_sec: f64) -> String {
    if per_sec >= 10_000.0 {
        format!("{:.0} k/s", per_sec / 1e3)
    } else {
        format!("{per_sec:.0}/s")
    }
}

/// One markdown table row for a run or a median.
pub fn table_row(label: &str, o: &Outcome) -> String {
    let l = o.latency;
    let clients = if o.connections_ok == o.clients as u64 && o.connections_lost == 0 {
        o.clients.to_string()
    } else {
        // Say what happened to the rest: the figures cover the connections that stayed.
        let closed: u64 = o.closes.values().sum();
        format!(
            "{} ({} connected, {} lost, {} closed by the server)",
            o.clients, o.connections_ok, o.connections_lost, closed
        )
    };
    format!(
        "| {label} | {} | {clients} | {} | {} | {} | {} | {} | {} | {} | {} / {} | {:.0} % | {:.0} % |",
        o.server.name(),
        fmt_rate(o.input_per_sec),
        fmt_rate(o.messages_per_sec),
        fmt_ns(l.p50),
        fmt_ns(l.p90),
        fmt_ns(l.p99),
        fmt_ns(l.p999),
        fmt_ns(o.cpu_ns_per_message),
        o.missed,
        o.dropped,
        o.server_busy_pct,
        o.client_cpu_pct,
    )
}

/// The header matching [`table_row`].
pub const TABLE_HEADER: &str = "| input | server | clients | taken in | delivered | p50 | p90 | p99 | p99.9 | server CPU per delivered msg | missed (gaps) / dropped | server busy | client CPU |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_figures() {
        assert_eq!(fmt_ns(746), "0.75 µs");
        assert_eq!(fmt_ns(35_400), "35 µs");
        assert_eq!(fmt_ns(1_069_055), "1.07 ms");
        assert_eq!(fmt_ns(3_210_739_711), "3.2 s");
        assert_eq!(fmt_rate(1106.4), "1106/s");
        assert_eq!(fmt_rate(716_143.0), "716 k/s");
    }
}
