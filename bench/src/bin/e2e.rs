//! End to end: venue simulator -> engine over wss -> loadgen clients, all on this host.
//!
//! The simulator serves the bundled session (three markets, five instruments) over TLS at the
//! pace that gives the requested input rate; the engine (`tape run`'s node, busy-polling)
//! connects to it through its real venue client, books sync from REST snapshots, and N
//! WebSocket clients (one blocking `mio` thread, `tape loadgen`) subscribe to bbo, trades
//! and book of every instrument. Printed: the input rate reached, tick-to-client percentiles
//! (client arrival - the engine's `recv_ns`, same host clock), the engine's busy time (loop
//! iterations that had work; spinning excluded) per input record and per delivered message,
//! drops (sequence gaps, slow-consumer closes), and venue reconnects.
//!
//! On a 2-core host the simulator, the engine and the clients share the cores: the engine
//! spins on one, the clients and the simulator block on the other, and every figure says so.
//! The bundled session lasts ~28 s of recorded time, so at N times its pace the simulator
//! restarts (closing its streams with 1001) every 28/N s; those reconnects are counted.
//!
//!     cargo run --release -p tape-bench --bin e2e -- [rate_per_sec] [clients] [seconds]
//!
//! `TAPE_IDLE=block` runs the engine blocking instead of spinning; `TAPE_E2E_PLAIN=1` serves
//! the venue over plain ws/http instead of TLS; `TAPE_E2E_PIN=1` pins the engine thread to
//! CPU 1 and everything else (simulator, clients) to CPU 0.
//!
//! `TAPE_E2E_JOURNAL=DIR` serves that journal instead of the bundled session, paced the same
//! way (speed 1 when its own rate is already the requested one), and the clients subscribe
//! to its symbols. A synthetic session (`tape synth`) long enough for the run at the target
//! rate avoids the restarts:
//!
//!     cargo run --release -p tape-tools -- synth --out /tmp/synth10k --secs 40 --rate 10000
//!     TAPE_E2E_JOURNAL=/tmp/synth10k cargo run --release -p tape-bench --bin e2e -- 10000 100 10

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tape_journal::JournalReader;
use tape_tools::config::{Config, Idle};
use tape_tools::loadgen::{self, LoadgenConfig};
use tape_tools::run::{live_config, node_config_with, sim_venues};
use tape_tools::sim::{SimConfig, VenueSim};

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// WebSocket frames per second of a journal at its own pace.
fn recorded_rate(dir: &std::path::Path) -> f64 {
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

fn main() {
    let rate = arg(1, 1_000);
    let clients = arg(2, 100) as usize;
    let seconds = arg(3, 10);
    let pin = std::env::var_os("TAPE_E2E_PIN").is_some();
    if pin {
        // Everything but the engine on core 0 (threads inherit this); the engine on core 1.
        assert!(core_affinity::set_for_current(core_affinity::CoreId {
            id: 0
        }));
    }
    let custom = std::env::var_os("TAPE_E2E_JOURNAL").map(std::path::PathBuf::from);
    let session = custom
        .clone()
        .unwrap_or_else(|| tape_bench::fixtures_dir().join("session"));
    let base = recorded_rate(&session);
    let speed = ((rate as f64 / base).round() as u32).max(1);
    let certs = tempfile::tempdir().expect("temp dir");
    let sim = VenueSim::start(SimConfig {
        journal: session,
        speed,
        repeat: true,
        cert_dir: certs.path().to_owned(),
        tls: std::env::var("TAPE_E2E_PLAIN").is_err(),
        ..SimConfig::default()
    })
    .expect("simulator");

    let mut cfg = Config::default();
    cfg.server.listen = "127.0.0.1:0".into();
    cfg.server.status_interval_secs = 0;
    cfg.limits.max_connections = clients + 16;
    cfg.engine.idle = match std::env::var("TAPE_IDLE").as_deref() {
        Ok("block") => Idle::Block,
        _ => Idle::Spin,
    };
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
    let node = std::thread::spawn(move || {
        if pin {
            assert!(core_affinity::set_for_current(core_affinity::CoreId {
                id: 1
            }));
        }
        let mut node = tape_engine::node::Node::bind(ncfg).expect("bind");
        tx.send(node.local_addr().expect("listening"))
            .expect("report");
        let cpu0 = loadgen::thread_cpu_ns().unwrap_or(0);
        let t0 = std::time::Instant::now();
        node.run(&stop_node, 0, |_| {}).expect("node loop");
        let cpu = loadgen::thread_cpu_ns().unwrap_or(0).saturating_sub(cpu0);
        (node.loop_stats(), node.status_json(0), cpu, t0.elapsed())
    });
    let addr = rx.recv_timeout(Duration::from_secs(30)).expect("node");

    // The bundled session's instruments by name (BTCUSDT and ETHUSDT are on two markets);
    // a custom journal's symbols as the simulator lists them.
    let symbols: Vec<String> = match custom {
        None => ["BTCUSDT", "ETHUSDT", "BTCUSD_PERP"]
            .map(String::from)
            .to_vec(),
        Some(_) => {
            let mut all: Vec<String> = sim
                .endpoints()
                .iter()
                .flat_map(|e| e.symbols.iter().cloned())
                .collect();
            all.sort();
            all.dedup();
            all
        }
    };
    let lg = LoadgenConfig {
        url: format!("ws://{addr}/ws"),
        clients,
        channels: ["bbo", "trades", "book"].map(String::from).to_vec(),
        symbols,
        duration: Duration::from_secs(seconds),
        warmup: Duration::from_secs(3),
        ..LoadgenConfig::default()
    };
    let report = loadgen::run(&lg, &AtomicBool::new(false)).expect("loadgen");
    stop.store(true, Ordering::Relaxed);
    let (loop_stats, status, engine_cpu_ns, wall) = node.join().expect("node thread");
    let sim_stats = sim.stats();
    sim.stop();

    let status: serde_json::Value = serde_json::from_str(&status).unwrap_or_default();
    let reconnects: u64 = status["venues"]
        .as_array()
        .map(|v| v.iter().filter_map(|v| v["disconnects"].as_u64()).sum())
        .unwrap_or(0);
    let in_rate = loop_stats.records as f64 / wall.as_secs_f64().max(1e-9);
    let per_input = loop_stats.busy_ns / loop_stats.records.max(1);
    let per_msg = loop_stats.busy_ns / loop_stats.sent.max(1);
    let l = report.latency_ns;
    let us = |ns: u64| ns as f64 / 1e3;
    println!(
        "e2e: target {rate} frames/s (sim speed {speed}x of {base:.0}/s), {clients} clients, {seconds} s measured"
    );
    println!(
        "  input       {in_rate:.0} records/s over {:.1} s ({} records, {} venue reconnects, {} sim passes)",
        wall.as_secs_f64(),
        loop_stats.records, reconnects, sim_stats.passes
    );
    println!(
        "  delivered   {} messages in the window ({:.0}/s), {} gaps ({} missed), closes {:?}",
        report.messages, report.messages_per_sec, report.gaps, report.missed, report.closes
    );
    println!(
        "  tick-to-client us  p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}",
        us(l.p50),
        us(l.p90),
        us(l.p99),
        us(l.p999),
        us(l.max)
    );
    println!(
        "  engine      {:.2} s CPU, of which {:.2} s in iterations with work: {per_input} ns per input record, {per_msg} ns per delivered message",
        engine_cpu_ns as f64 / 1e9,
        loop_stats.busy_ns as f64 / 1e9
    );
    let t2w = &status["latency_ns"]["tick_to_wire"];
    let stage_us = |k: &str| t2w[k].as_u64().unwrap_or(0) as f64 / 1e3;
    println!(
        "  engine tick-to-wire us  p50 {:.1}  p99 {:.1}  p99.9 {:.1}  (input read -> last subscriber's write)",
        stage_us("p50_ns"),
        stage_us("p99_ns"),
        stage_us("p999_ns")
    );
    println!(
        "  client cpu  {:.2} s ({:.0}% of a core)",
        report.cpu_secs, report.cpu_pct
    );
    println!(
        "{}",
        serde_json::json!({
            "rate_target": rate, "sim_speed": speed, "clients": clients,
            "input_records_per_sec": in_rate, "messages": report.messages,
            "messages_per_sec": report.messages_per_sec, "gaps": report.gaps,
            "missed": report.missed, "p50_ns": l.p50, "p90_ns": l.p90, "p99_ns": l.p99,
            "p999_ns": l.p999, "max_ns": l.max, "engine_cpu_ns": engine_cpu_ns, "engine_busy_ns": loop_stats.busy_ns,
            "engine_ns_per_record": per_input, "engine_ns_per_message": per_msg,
            "venue_reconnects": reconnects, "client_cpu_pct": report.cpu_pct,
        })
    );
}
