//! `tape synth`: generated sessions replay clean through the engine (synced books, no gaps,
//! no crossings, the bookTicker oracle agreeing), are deterministic, keep the requested rate,
//! and can be served by the venue simulator.

mod support;

use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tape_core::instrument::Market;
use tape_journal::JournalOptions;
use tape_tools::replay::{replay, Summary};
use tape_tools::sim::{SimConfig, VenueSim};
use tape_tools::synth::{self, SynthOptions, EPOCH_NS};

const WAIT: Duration = Duration::from_secs(15);

/// Small segments: a few seconds of frames fit in a handful of files, sparse either way.
fn jopts() -> JournalOptions {
    JournalOptions {
        segment_size: 4 << 20,
        ..JournalOptions::default()
    }
}

fn generate(dir: &Path, opts: &SynthOptions) -> Summary {
    let report = synth::write(opts, dir, jopts()).expect("synth writes");
    assert_eq!(report.records, opts.records());
    assert_eq!(
        report.depth + report.book_tickers + report.trades,
        opts.frames()
    );
    let (summary, _) = replay(dir).expect("replay");
    summary
}

/// Every segment file's bytes, in name order.
fn journal_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    assert!(!files.is_empty());
    files
}

#[test]
fn synth_session_replays_clean_at_the_requested_rate() {
    let dir = tempfile::tempdir().unwrap();
    let opts = SynthOptions {
        secs: 3,
        rate: 2_000,
        seed: 1,
        symbols: 3,
    };
    let s = generate(dir.path(), &opts);
    assert_eq!(s.records, opts.records());
    assert_eq!(s.records, 1 + 2 * 3 + 6_000);
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    let symbols: Vec<_> = s.books.iter().map(|b| b.symbol.as_str()).collect();
    assert_eq!(symbols, ["BTCUSDT", "ETHUSDT", "SYNTH3USDT"]);
    for b in &s.books {
        assert_eq!(b.market, "usdm");
        assert!(b.synced, "{} not synced: {}", b.symbol, b.state);
        assert_eq!((b.gaps, b.resyncs), (0, 0), "{}", b.symbol);
        assert!(b.levels[0] >= 150 && b.levels[1] >= 150, "{:?}", b.levels);
    }
    for bad in ["book_gap", "book_crossed", "book_resync_requested", "error"] {
        assert_eq!(s.outputs.get(bad), None, "{bad}: {:?}", s.outputs);
    }
    assert_eq!(s.outputs.get("book_synced"), Some(&3), "{:?}", s.outputs);
    assert!(s.oracle.checks > 500, "{:?}", s.oracle);
    assert_eq!(s.oracle.mismatches, 0);
    // ~70/20/10 of the frames, as decoded messages.
    let msg = |k: &str| *s.messages.get(k).unwrap_or(&0);
    let (depth, bt, trades) = (msg("depth"), msg("book_ticker"), msg("trade"));
    assert_eq!(depth + bt + trades, 6_000, "{:?}", s.messages);
    assert!((3_900..=4_500).contains(&depth), "{:?}", s.messages);
    assert!((950..=1_450).contains(&bt), "{:?}", s.messages);
    assert!((400..=800).contains(&trades), "{:?}", s.messages);
    // The rate: 6000 frames spread evenly over 3 s from the fixed epoch.
    assert_eq!(s.first_recv_ns, Some(EPOCH_NS));
    let span = s.last_recv_ns.unwrap() - EPOCH_NS;
    assert!(
        (2_999_000_000..=3_000_200_000).contains(&span),
        "span {span} ns"
    );
}

#[test]
fn synth_is_deterministic_per_seed() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let opts = SynthOptions {
        secs: 2,
        rate: 1_000,
        seed: 42,
        symbols: 2,
    };
    let a = generate(dirs[0].path(), &opts);
    let b = generate(dirs[1].path(), &opts);
    assert_eq!(a.digest, b.digest);
    assert_eq!(journal_bytes(dirs[0].path()), journal_bytes(dirs[1].path()));
    let c = generate(dirs[2].path(), &SynthOptions { seed: 43, ..opts });
    assert_ne!(a.digest, c.digest);
    assert_eq!(c.oracle.mismatches, 0);
    assert!(c.books.iter().all(|b| b.synced && b.gaps == 0));
}

#[test]
fn synth_cli_writes_a_journal_that_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("j");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tape"))
            .args(args)
            .output()
            .unwrap()
    };
    let o = out.to_str().unwrap();
    let r = run(&[
        "synth",
        "--out",
        o,
        "--secs",
        "1",
        "--rate",
        "500",
        "--seed",
        "3",
        "--symbols",
        "1",
        "--segment-mib",
        "1",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(text.starts_with("wrote 503 records"), "{text}");
    assert!(run(&["verify", o]).status.success());
    // A second run into the same directory is refused, not appended.
    let again = run(&["synth", "--out", o, "--secs", "1", "--rate", "500"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));
}

/// `GET target` over plain HTTP: status and body.
fn get(addr: std::net::SocketAddr, target: &str) -> (u16, String) {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    support::http_get(s, target)
}

#[test]
fn synth_session_is_served_by_the_venue_sim() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("j");
    let opts = SynthOptions {
        secs: 5,
        rate: 500,
        seed: 9,
        symbols: 2,
    };
    synth::write(&opts, &journal, jopts()).unwrap();
    let sim = VenueSim::start(SimConfig {
        journal,
        speed: 1,
        repeat: false,
        start_on_connect: false,
        tls: false,
        cert_dir: dir.path().join("certs"),
        ..SimConfig::default()
    })
    .expect("sim starts");
    assert_eq!(sim.endpoints().len(), 1);
    let ep = sim.endpoint(Market::UsdM).expect("usdm served");
    assert_eq!(ep.symbols, ["BTCUSDT", "ETHUSDT"]);
    assert_eq!(ep.scales.get("BTCUSDT"), Some(&(2, 3)));
    let deadline = Instant::now() + WAIT;
    let body = loop {
        let (status, body) = get(ep.addr, "/fapi/v1/depth?symbol=BTCUSDT&limit=5");
        if status == 200 {
            break body;
        }
        assert_eq!(status, 503, "{body}");
        assert!(Instant::now() < deadline, "no snapshot within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let (bids, asks) = (v["bids"].as_array().unwrap(), v["asks"].as_array().unwrap());
    assert_eq!((bids.len(), asks.len()), (5, 5), "{body}");
    let int = |l: &serde_json::Value| l[0].as_str().unwrap().replace('.', "").parse::<i64>();
    assert!(int(&bids[0]).unwrap() < int(&asks[0]).unwrap(), "{body}");
    assert!(v["lastUpdateId"].as_u64().unwrap() >= 5_000_000_000_000);
    // The counters are published at the end of a loop turn, so wait for this one.
    while sim.stats().snapshots_served == 0 {
        assert!(Instant::now() < deadline, "{:?}", sim.stats());
        std::thread::yield_now();
    }
    assert_eq!(sim.stats().engine_errors, 0, "{:?}", sim.stats());
    sim.stop();
}
