//! Tick-to-reader: from the engine's receive time of an input to the moment a reader
//! process, spinning on the other core, sees the top of book it produced in shared memory;
//! and, in the same run, the same inputs' tick-to-client over WebSocket (`bbo`) to N
//! clients.
//!
//!     cargo run --release -p tape-bench --bin tick_to_reader -- [seconds] [speed] [clients,...]
//!
//! Defaults: 20 measured seconds (after 3 of warm-up), the bundled session replayed at 3x
//! its recorded pace (no simulator: the journal is read by the engine thread itself, so the
//! two cores are the engine's and the reader's), client counts `0,1,100` (one run each; 0 is
//! the reader alone). `TAPE_T2R_JOURNAL=DIR` replays another journal.
//!
//! Per run: the engine (`tape run`'s node: replay feed, `engine.idle = spin`, `--shm` in a
//! fresh directory under `/dev/shm`) on a thread pinned to CPU 1; a reader process (this
//! binary with `--reader`) pinned to CPU 0, spinning over every instrument's top-of-book
//! sequence and recording `now - recv_ns` of each new synced top; the WebSocket clients
//! (`tape loadgen`'s, one `mio` thread, subscribed to `bbo` of every instrument) on CPU 0
//! as well, recording `arrival - recv_ns`. Both sides read the same kind of clock
//! (`WallClock`: the realtime clock at start plus the monotonic clock since), so their
//! figures compare; the reader reports how far realtime and monotonic drifted apart during
//! its run, which bounds the error between two such clocks.
//!
//! Prints a Markdown table (BENCHMARKS.md's) and one JSON line per run.
//!
//!     cargo run --release -p tape-bench --bin tick_to_reader -- --transport [seconds] [period_us]
//!
//! measures the shared-memory transport alone: a writer thread stamps and stores a top of
//! book every `period_us` (default 100), the same reader process reads it.
//!
//! On a shared host, other sessions' processes take the cores from a spinning engine and
//! reader whatever their `nice` (the scheduler shares the CPU between sessions first): run
//! it in a session of its own with that session's priority raised, as BENCHMARKS.md does:
//! `setsid sh -c 'echo -20 > /proc/self/autogroup; exec nice -n -20 <command>'` (root).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use serde_json::{json, Value};
use tape_bench::e2e::fmt_ns;
use tape_node::node::WallClock;
use tape_shm::{BookState, Reader};
use tape_tools::config::{Config, Idle};
use tape_tools::loadgen::{self, LoadgenConfig};

const WARM_SECS: u64 = 3;

fn pin(cpu: usize) {
    if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
        eprintln!("tick_to_reader: cannot pin to CPU {cpu}; running unpinned");
    }
}

fn percentiles(h: &Histogram<u64>) -> Value {
    json!({
        "count": h.len(),
        "p50": h.value_at_quantile(0.5),
        "p90": h.value_at_quantile(0.9),
        "p99": h.value_at_quantile(0.99),
        "p999": h.value_at_quantile(0.999),
        "max": h.max(),
    })
}

fn realtime_minus(clock: &WallClock) -> i128 {
    let real = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    real - i128::from(clock.now())
}

/// The reader process: spins over every instrument's top of book for `warm + secs` seconds.
fn reader_main(dir: &str, secs: u64) {
    pin(0);
    let clock = WallClock::default();
    let drift0 = realtime_minus(&clock);
    let deadline = Instant::now() + Duration::from_secs(10);
    let r = loop {
        match Reader::open(dir) {
            Ok(r) => break r,
            Err(e) if Instant::now() > deadline => panic!("reader: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(1)), // waiting for the writer to start, bounded
        }
    };
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("histogram");
    let mut insts = Vec::new();
    let mut seqs: Vec<u64> = Vec::new();
    let start = Instant::now();
    let (warm, end) = (
        Duration::from_secs(WARM_SECS),
        Duration::from_secs(WARM_SECS + secs),
    );
    let mut measuring = false;
    let mut changes = 0u64;
    let mut spins = 0u64;
    loop {
        spins += 1;
        if spins.is_multiple_of(4096) {
            let e = start.elapsed();
            if e >= end {
                break;
            }
            measuring = e >= warm;
            if r.instrument_count() as usize > insts.len() {
                insts = r.instruments();
                seqs.resize(insts.len(), u64::MAX);
            }
        }
        for (i, inst) in insts.iter().enumerate() {
            let Ok(s) = r.top_seq(inst) else { continue };
            if s == seqs[i] {
                continue;
            }
            let Ok((top, s)) = r.bbo_seq(inst) else {
                continue;
            };
            let now = clock.now();
            seqs[i] = s;
            changes += 1;
            if measuring && top.state == BookState::Synced && top.recv_ns > 0 {
                hist.saturating_record(now.saturating_sub(top.recv_ns).max(1));
            }
        }
    }
    let drift = realtime_minus(&clock) - drift0;
    println!(
        "{}",
        json!({"reader": percentiles(&hist), "changes": changes, "clock_drift_ns": drift as i64})
    );
}

struct Run {
    clients: usize,
    reader: Value,
    clock_drift_ns: i64,
    ws: Option<loadgen::LatencySummary>,
    ws_messages: u64,
    tick_to_wire: Value,
    /// The engine's own decode and apply of each input (most of tick-to-reader).
    decode: Value,
    apply: Value,
    records: u64,
}

fn run(clients: usize, seconds: u64, speed: u32) -> Run {
    let shm_root = tempfile::Builder::new()
        .prefix("tape-t2r-")
        .tempdir_in(if std::path::Path::new("/dev/shm").is_dir() {
            "/dev/shm"
        } else {
            "/tmp"
        })
        .expect("shm dir");
    let dir = shm_root.path().join("tape");
    let mut cfg = Config::default();
    cfg.server.listen = "127.0.0.1:0".into();
    cfg.server.status_interval_secs = 0;
    cfg.limits.max_connections = clients + 16;
    cfg.limits.max_anonymous_per_ip = 0;
    cfg.engine.idle = Idle::Spin;
    cfg.feed.journal = std::env::var("TAPE_T2R_JOURNAL").unwrap_or_else(|_| {
        tape_bench::fixtures_dir()
            .join("session")
            .display()
            .to_string()
    });
    cfg.feed.speed = speed;
    cfg.shm.enabled = true;
    cfg.shm.dir = dir.display().to_string();
    let ncfg = tape_tools::run::node_config(&cfg).expect("config");
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let stop_node = Arc::clone(&stop);
    let node = std::thread::spawn(move || {
        pin(1);
        let mut node = tape_node::node::Node::bind(ncfg).expect("bind");
        tx.send(node.local_addr().expect("listening"))
            .expect("report");
        node.run(&stop_node, 0, |_| {}).expect("node loop");
        (node.status_json(0), node.loop_stats())
    });
    let addr = rx.recv_timeout(Duration::from_secs(30)).expect("node");
    pin(0);
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .args(["--reader", &dir.display().to_string(), &seconds.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("reader process");
    let (ws, ws_messages) = if clients > 0 {
        let report = loadgen::run(
            &LoadgenConfig {
                url: format!("ws://{addr}/ws"),
                clients,
                channels: vec!["bbo".into()],
                duration: Duration::from_secs(seconds),
                warmup: Duration::from_secs(WARM_SECS),
                ..LoadgenConfig::default()
            },
            &AtomicBool::new(false),
        )
        .expect("loadgen");
        (Some(report.latency_ns), report.messages)
    } else {
        (None, 0)
    };
    let out = child.stdout.take().expect("reader stdout");
    let line = BufReader::new(out)
        .lines()
        .next()
        .expect("reader reports")
        .expect("reader output");
    let status = child.wait().expect("reader exits");
    assert!(status.success(), "reader: {status}");
    let v: Value = serde_json::from_str(&line).expect("reader JSON");
    stop.store(true, Ordering::Relaxed);
    let (status, stats) = node.join().expect("node thread");
    let status: Value = serde_json::from_str(&status).unwrap_or_default();
    Run {
        clients,
        reader: v["reader"].clone(),
        clock_drift_ns: v["clock_drift_ns"].as_i64().unwrap_or(0),
        ws,
        ws_messages,
        tick_to_wire: status["latency_ns"]["tick_to_wire"].clone(),
        decode: status["latency_ns"]["decode"].clone(),
        apply: status["latency_ns"]["apply"].clone(),
        records: stats.records,
    }
}

/// The transport alone: a writer thread on CPU 1 stores a top of book stamped with the
/// clock every `period_us`, no engine; the reader process is the same. What the engine's
/// decode and apply add is the difference to the runs above.
fn transport(seconds: u64, period_us: u64) -> Value {
    let shm_root = tempfile::Builder::new()
        .prefix("tape-t2r-")
        .tempdir_in(if std::path::Path::new("/dev/shm").is_dir() {
            "/dev/shm"
        } else {
            "/tmp"
        })
        .expect("shm dir");
    let dir = shm_root.path().join("tape");
    let d = tape_shm::ShmDir::open(&dir).expect("shm dir");
    let mut w = d
        .create_market(&tape_shm::MarketOptions::default())
        .expect("market file");
    let slot = w
        .add_instrument(&tape_shm::InstrumentKey {
            market: tape_shm::MarketCode::UsdM as u8,
            price_scale: 2,
            qty_scale: 3,
            symbol: tape_shm::Symbol::new("BTCUSDT"),
        })
        .expect("slot");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            pin(1);
            let clock = WallClock::default();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let next = clock.now() + period_us * 1000;
                while clock.now() < next {
                    std::hint::spin_loop();
                }
                n += 1;
                w.write_top(
                    slot,
                    &tape_shm::Top {
                        update_id: n,
                        recv_ns: clock.now(),
                        state: BookState::Synced,
                        bid: Some(tape_shm::Level { price: 1, qty: 1 }),
                        ask: Some(tape_shm::Level { price: 2, qty: 1 }),
                    },
                );
            }
        })
    };
    pin(0);
    let out = Command::new(std::env::current_exe().expect("own path"))
        .args(["--reader", &dir.display().to_string(), &seconds.to_string()])
        .output()
        .expect("reader process");
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    assert!(out.status.success(), "reader: {:?}", out.status);
    let line = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(line.lines().next().unwrap_or("{}")).expect("reader JSON")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--reader") {
        let secs = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(20);
        reader_main(&args[2], secs);
        return;
    }
    if args.get(1).map(String::as_str) == Some("--transport") {
        let secs = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10);
        let period = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(100);
        let v = transport(secs, period);
        let r = &v["reader"];
        let ns = |k: &str| fmt_ns(r[k].as_u64().unwrap_or(0));
        println!(
            "transport only (a top written every {period} us, no engine): {} tops seen, p50 {} p90 {} p99 {} p99.9 {} max {}",
            r["count"], ns("p50"), ns("p90"), ns("p99"), ns("p999"), ns("max")
        );
        println!(
            "{}",
            json!({"transport": v, "seconds": secs, "period_us": period})
        );
        return;
    }
    let seconds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(20);
    let speed: u32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    let counts: Vec<usize> = args
        .get(3)
        .map_or("0,1,100", String::as_str)
        .split(',')
        .filter_map(|c| c.parse().ok())
        .collect();
    let runs: Vec<Run> = counts
        .iter()
        .map(|&c| {
            eprintln!("tick_to_reader: {c} WebSocket client(s), {seconds} s at {speed}x ...");
            run(c, seconds, speed)
        })
        .collect();
    println!("| WebSocket clients in the run | reader: tops seen | reader p50 | p90 | p99 | p99.9 | max | WebSocket `bbo`: messages | p50 | p90 | p99 | p99.9 | median client / reader (p50) | engine tick-to-wire p50 / p99 |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let ns = |v: &Value, k: &str| v[k].as_u64().unwrap_or(0);
    for r in &runs {
        let rd = &r.reader;
        let (ws_cols, ratio) = match r.ws {
            Some(l) => (
                format!(
                    "{} | {} | {} | {} | {}",
                    r.ws_messages,
                    fmt_ns(l.p50),
                    fmt_ns(l.p90),
                    fmt_ns(l.p99),
                    fmt_ns(l.p999)
                ),
                format!("{:.0}x", l.p50 as f64 / ns(rd, "p50").max(1) as f64),
            ),
            None => ("- | - | - | - | -".to_owned(), "-".to_owned()),
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {ws_cols} | {ratio} | {} / {} |",
            r.clients,
            ns(rd, "count"),
            fmt_ns(ns(rd, "p50")),
            fmt_ns(ns(rd, "p90")),
            fmt_ns(ns(rd, "p99")),
            fmt_ns(ns(rd, "p999")),
            fmt_ns(ns(rd, "max")),
            fmt_ns(ns(&r.tick_to_wire, "p50_ns")),
            fmt_ns(ns(&r.tick_to_wire, "p99_ns")),
        );
    }
    for r in &runs {
        println!(
            "{}",
            json!({
                "clients": r.clients, "seconds": seconds, "speed": speed, "records": r.records,
                "reader_ns": r.reader, "reader_clock_drift_ns": r.clock_drift_ns,
                "websocket_ns": r.ws.map(|l| json!({"count": l.count, "p50": l.p50, "p90": l.p90, "p99": l.p99, "p999": l.p999, "max": l.max})),
                "websocket_messages": r.ws_messages,
                "engine_tick_to_wire_ns": r.tick_to_wire,
                "engine_decode_ns": r.decode, "engine_apply_ns": r.apply,
            })
        );
    }
}
