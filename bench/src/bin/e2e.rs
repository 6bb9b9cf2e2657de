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
//! `tape_bench::e2e` holds the driver; `lab` runs it for tape and the tokio-tungstenite peer
//! in one go. `TAPE_IDLE=block` runs the engine blocking instead of spinning; `TAPE_E2E_PLAIN=1` serves
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

use tape_bench::e2e::{run_tape, Scenario};

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let rate = arg(1, 1_000);
    let clients = arg(2, 100) as usize;
    let seconds = arg(3, 10);
    let custom = std::env::var_os("TAPE_E2E_JOURNAL").map(std::path::PathBuf::from);
    let journal = custom
        .clone()
        .unwrap_or_else(|| tape_bench::fixtures_dir().join("session"));
    let base = tape_bench::e2e::recorded_rate(&journal);
    let mut s = Scenario::at_rate(journal, rate, clients, seconds);
    s.block = std::env::var("TAPE_IDLE").as_deref() == Ok("block");
    s.tls = std::env::var_os("TAPE_E2E_PLAIN").is_none();
    s.pin = std::env::var_os("TAPE_E2E_PIN").is_some();
    if custom.is_none() {
        // The bundled session's instruments by name (BTCUSDT and ETHUSDT are on two markets).
        s.symbols = ["BTCUSDT", "ETHUSDT", "BTCUSD_PERP"]
            .map(String::from)
            .to_vec();
    }
    let o = run_tape(&s);
    let l = o.latency;
    let us = |ns: u64| ns as f64 / 1e3;
    println!(
        "e2e: target {rate} frames/s (sim speed {}x of {base:.0}/s), {clients} clients, {seconds} s measured",
        s.speed
    );
    println!(
        "  input       {:.0} records/s ({} venue reconnects)",
        o.input_per_sec, o.venue_reconnects
    );
    println!(
        "  delivered   {} messages in the window ({:.0}/s), {} gaps ({} missed), {} refused sends",
        o.messages, o.messages_per_sec, o.gaps, o.missed, o.dropped
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
        "  engine      {:.2} s in iterations with work ({:.0} % of the run): {} ns per input record, {} ns per delivered message",
        o.server_cpu_ns as f64 / 1e9,
        o.server_busy_pct,
        o.cpu_ns_per_input,
        o.cpu_ns_per_message
    );
    let t2w = o.engine_tick_to_wire.unwrap_or_default();
    println!(
        "  engine tick-to-wire us  p50 {:.1}  p99 {:.1}  p99.9 {:.1}  (input read -> last subscriber's write)",
        us(t2w[0]),
        us(t2w[1]),
        us(t2w[2])
    );
    println!("  client cpu  {:.0}% of a core", o.client_cpu_pct);
    println!("{}", serde_json::to_string(&o).expect("outcome serializes"));
}
