//! The latency lab in one command: every end-to-end scenario against tape and against the
//! tokio-tungstenite peer, alternating, several runs each, with the per-column medians and
//! the peer ratios as a markdown table.
//!
//!     cargo run --release -p tape-bench --bin lab -- [--runs N] [--seconds S]
//!         [--server both|tape|peer] [--journal DIR] [--pin] [--block] [RATExCLIENTS ...]
//!
//! Scenarios default to `1000x100 10000x100 50000x100 1000x1000 10000x1000 50000x1000`
//! (input frames per second × clients). Each rate gets a synthetic USD-M session from
//! `tape synth` (seed 1, two symbols), long enough for the warm-up and the window, served at
//! its recorded pace, so no run sees a simulator restart; `--journal DIR` serves that journal
//! instead, at the pace that gives the rate. Runs default to 3 and the window to 8 s; each
//! run adds ~3 s of warm-up and a few seconds of start-up.
//!
//! tape runs behind the venue simulator over wss (decoding, books, change detection,
//! per-stream sequencing); the peer reads the same journal and forwards every frame to every
//! client (see `tape_bench::fanout_peer`). The clients are one blocking `mio` thread
//! (`tape loadgen`) subscribing to bbo, trades and book of every symbol. On a 2-core host
//! they compete with the server and, for tape, with the simulator: read the client CPU
//! column before the latency ones. tape's engine spins on its core unless `--block` (then it
//! sleeps in `epoll_wait` like the peer's runtime); `--pin` puts it on CPU 1 and every other
//! thread on CPU 0.

use std::path::PathBuf;

use tape_bench::e2e::{median, run_peer, run_tape, table_row, Outcome, Scenario, TABLE_HEADER};
use tape_bench::e2e::{Server, WARMUP_SECS};
use tape_journal::JournalOptions;
use tape_tools::synth::{self, SynthOptions};

const USAGE: &str = "usage: lab [--runs N] [--seconds S] [--server both|tape|peer] [--journal DIR] [--pin] [--block] [RATExCLIENTS ...]";

/// Seconds of session beyond warm-up and window: connecting 1000 clients, the books' first
/// snapshots, and margin.
const SESSION_MARGIN_SECS: u64 = 15;

struct Args {
    runs: usize,
    seconds: u64,
    tape: bool,
    peer: bool,
    journal: Option<PathBuf>,
    pin: bool,
    block: bool,
    scenarios: Vec<(u64, usize)>,
}

fn parse_scenario(s: &str) -> Option<(u64, usize)> {
    let (rate, clients) = s.split_once('x')?;
    let (rate, clients) = (rate.parse().ok()?, clients.parse().ok()?);
    (rate > 0 && clients > 0).then_some((rate, clients))
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args {
        runs: 3,
        seconds: 8,
        tape: true,
        peer: true,
        journal: None,
        pin: false,
        block: false,
        scenarios: Vec::new(),
    };
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--runs" => {
                let v = value()?;
                a.runs = v.parse().ok().filter(|n| *n > 0).ok_or("--runs: a count")?;
            }
            "--seconds" => {
                let v = value()?;
                a.seconds = v
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or("--seconds: a count")?;
            }
            "--server" => match value()?.as_str() {
                "both" => (a.tape, a.peer) = (true, true),
                "tape" => (a.tape, a.peer) = (true, false),
                "peer" => (a.tape, a.peer) = (false, true),
                other => return Err(format!("--server: both, tape or peer, not {other:?}")),
            },
            "--journal" => a.journal = Some(PathBuf::from(value()?)),
            "--pin" => a.pin = true,
            "--block" => a.block = true,
            s => a
                .scenarios
                .push(parse_scenario(s).ok_or_else(|| format!("not a RATExCLIENTS: {s:?}"))?),
        }
    }
    if a.scenarios.is_empty() {
        a.scenarios = vec![
            (1_000, 100),
            (10_000, 100),
            (50_000, 100),
            (1_000, 1000),
            (10_000, 1000),
            (50_000, 1000),
        ];
    }
    Ok(a)
}

/// The journal for `rate`: the given one, or a synthetic session written into `dir`.
fn journal_for(args: &Args, rate: u64, dir: &std::path::Path) -> PathBuf {
    if let Some(j) = &args.journal {
        return j.clone();
    }
    let out = dir.join(format!("synth{rate}"));
    if !out.exists() {
        let opts = SynthOptions {
            secs: WARMUP_SECS + args.seconds + SESSION_MARGIN_SECS,
            rate,
            seed: 1,
            symbols: 2,
        };
        eprintln!(
            "lab: writing a {rate} frames/s synthetic session ({} s)",
            opts.secs
        );
        synth::write(&opts, &out, JournalOptions::default())
            .unwrap_or_else(|e| panic!("synth {rate}: {e:#}"));
    }
    out
}

fn main() -> std::process::ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("lab: {e}\n{USAGE}");
            return std::process::ExitCode::from(2);
        }
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let mut tables = Vec::new();
    let mut medians = Vec::new();
    for &(rate, clients) in &args.scenarios {
        let journal = journal_for(&args, rate, dir.path());
        let mut s = Scenario::at_rate(journal, rate, clients, args.seconds);
        s.pin = args.pin;
        s.block = args.block;
        let label = format!("{}k", rate as f64 / 1e3);
        let (mut tape, mut peer): (Vec<Outcome>, Vec<Outcome>) = (Vec::new(), Vec::new());
        for run in 1..=args.runs {
            for server in [Server::Tape, Server::TokioTungstenite] {
                let o = match server {
                    Server::Tape if args.tape => run_tape(&s),
                    Server::TokioTungstenite if args.peer => run_peer(&s),
                    _ => continue,
                };
                println!("{}", table_row(&format!("{label} run {run}"), &o));
                if o.messages == 0 {
                    println!("  (no message in the measured window: see the errors)");
                }
                for e in &o.errors {
                    println!("  load generator: {e}");
                }
                match server {
                    Server::Tape => tape.push(o),
                    Server::TokioTungstenite => peer.push(o),
                }
            }
        }
        let mut rows = Vec::new();
        let (mt, mp) = (
            (!tape.is_empty()).then(|| median(&tape)),
            (!peer.is_empty()).then(|| median(&peer)),
        );
        for m in [&mt, &mp].into_iter().flatten() {
            rows.push(table_row(&label, m));
            medians.push(m.clone());
        }
        if let (Some(t), Some(p)) = (&mt, &mp) {
            let r = |a: f64, b: f64| {
                if b > 0.0 {
                    format!("{:.2}x", a / b)
                } else {
                    "-".into()
                }
            };
            rows.push(format!(
                "| {label} | peer / tape | {clients} | {} | {} | {} | {} | {} | {} | {} | | | |",
                r(p.input_per_sec, t.input_per_sec),
                r(p.messages_per_sec, t.messages_per_sec),
                r(p.latency.p50 as f64, t.latency.p50 as f64),
                r(p.latency.p90 as f64, t.latency.p90 as f64),
                r(p.latency.p99 as f64, t.latency.p99 as f64),
                r(p.latency.p999 as f64, t.latency.p999 as f64),
                r(p.cpu_ns_per_message as f64, t.cpu_ns_per_message as f64),
            ));
        }
        tables.push(rows);
    }
    println!(
        "\nMedians of {} runs, {} s measured after {WARMUP_SECS} s of warm-up:\n",
        args.runs, args.seconds
    );
    println!("{TABLE_HEADER}");
    for rows in tables {
        for row in rows {
            println!("{row}");
        }
    }
    println!(
        "\n{}",
        serde_json::to_string(&medians).expect("outcomes serialize")
    );
    std::process::ExitCode::SUCCESS
}
