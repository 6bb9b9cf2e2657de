//! Replay throughput beside the raw read of the same journal, in one run.
//!
//! ```sh
//! cargo run --release -p tape-bench --bin replay_ratio -- [RUNS] [JOURNAL...]
//! ```
//!
//! For each journal (default: the bundled session, `fixtures/session`, and the synthetic
//! session `tape synth --secs 20 --rate 20000 --seed 3`, generated into a temp dir), it
//! alternates `RUNS` times (default 7) between `tape verify`'s work (`tape_journal::verify`:
//! every header, checksum and sequence number) and `tape replay`'s
//! (`tape_tools::replay::replay`: the same records read and checksummed, then through the
//! engine), and prints the medians, replay records/s and the ratio replay / verify. The
//! first run of each is a warm-up (page cache, allocator) and is not counted.
//!
//! Two more stages are timed in the same rounds, to show where a replay's time goes:
//! `read` (the replay's own `JournalReader` over every record, checksums included, nothing
//! done with them) and `read + decode` (that, plus every market frame and REST snapshot
//! decoded by the engine's `Decoder` into its fixed-point message, which is then dropped:
//! no book, no output, no digest).
//!
//! It also prints the minor page faults each stage took (medians): on the 2-vCPU hosts
//! measured, a page touched for the first time costs ~2 µs, so a few hundred of them are a
//! large part of a 3 ms replay. Before all that, the first journal's first two-thread replay
//! in the process is timed on its own (`first replay`; the whole call, so the journal's
//! opening and the engine's building too): the closest in-process figure to a new `tape
//! replay`. The line splits its time beyond the warm median into its extra page faults (at
//! the cost of a page measured right after it) and the rest. The allocator is tuned first,
//! as the `tape` binary tunes it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use tape_core::decode::{DecodeCtx, Decoder};
use tape_core::input::{RecordKind, SourceDef};
use tape_core::instrument::{InstrumentId, Market, Registry};
use tape_journal::JournalReader;
use tape_tools::synth::SynthOptions;

/// The process's minor page faults so far (`/proc/self/stat`), 0 where there is none.
fn minor_faults() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0;
    };
    // After the command's name in parentheses: state, ppid, pgrp, session, tty, tpgid,
    // flags, then minflt.
    stat.rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().nth(7)?.parse().ok())
        .unwrap_or(0)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Reads every record as a replay does; returns the payload bytes read.
fn read(dir: &Path) -> u64 {
    let mut reader = JournalReader::open(dir).expect("journal");
    let mut bytes = 0u64;
    while let Some(rec) = reader.next() {
        bytes += rec.expect("intact record").payload.len() as u64;
    }
    bytes
}

/// Reads every record and decodes every market frame and snapshot as the engine does
/// (sources defined the same way), keeping nothing; returns how many decoded.
fn read_and_decode(dir: &Path) -> u64 {
    let mut reader = JournalReader::open(dir).expect("journal");
    let mut registry = Registry::default();
    let mut decoder = Decoder::new();
    let mut sources: Vec<Option<(Market, Option<InstrumentId>)>> = Vec::new();
    let mut decoded = 0u64;
    while let Some(rec) = reader.next() {
        let rec = rec.expect("intact record");
        let source = rec.source as usize;
        match RecordKind::from_u16(rec.kind) {
            Some(RecordKind::SourceDef) => {
                let def = SourceDef::parse(rec.payload).expect("source definition");
                let id = match (&def.symbol, def.scales) {
                    (Some(sym), Some((ps, qs))) => Some(
                        registry
                            .register(def.market, sym, ps, qs)
                            .expect("register"),
                    ),
                    (Some(sym), None) => Some(
                        registry
                            .lookup_or_register(def.market, sym.as_bytes())
                            .expect("register"),
                    ),
                    (None, _) => None,
                };
                if sources.len() <= source {
                    sources.resize(source + 1, None);
                }
                sources[source] = Some((def.market, id));
            }
            Some(RecordKind::WsFrame) => {
                let Some(&Some((market, _))) = sources.get(source) else {
                    continue;
                };
                let ctx = DecodeCtx {
                    market,
                    auto_register: true,
                };
                decoded += u64::from(
                    decoder
                        .decode_frame(rec.payload, ctx, &mut registry)
                        .is_ok(),
                );
            }
            Some(RecordKind::RestSnapshot) => {
                let Some(&Some((_, Some(id)))) = sources.get(source) else {
                    continue;
                };
                decoded += u64::from(decoder.decode_snapshot(rec.payload, id, &registry).is_ok());
            }
            _ => {}
        }
    }
    decoded
}

/// The time and minor faults of one two-thread replay of `dir`.
fn replay_two_threads(dir: &Path) -> (f64, u64, String) {
    let f = minor_faults();
    let t = Instant::now();
    let (summary, engine) = tape_tools::replay::replay(dir).expect("replay");
    let secs = t.elapsed().as_secs_f64();
    let faults = minor_faults().saturating_sub(f);
    drop(engine);
    (secs, faults, summary.digest)
}

/// What a page touched for the first time costs here: one byte written to each page of a
/// fresh 4 MiB anonymous mapping. Returns seconds per fault and the faults. The mapping is
/// the kernel's, not the allocator's: a 4 MiB block freed through glibc would raise its
/// mmap and trim thresholds and so change what the replays measured after it fault.
fn first_touch_cost() -> (f64, u64) {
    const BYTES: usize = 4 << 20;
    let mut fresh = memmap2::MmapMut::map_anon(BYTES).expect("anonymous mapping");
    let f = minor_faults();
    let t = Instant::now();
    for page in fresh.chunks_mut(4096) {
        page[0] = 1;
    }
    let secs = t.elapsed().as_secs_f64();
    let faults = minor_faults().saturating_sub(f);
    std::hint::black_box(&fresh);
    (secs / faults.max(1) as f64, faults)
}

/// The process's first replay, before anything else has run: the closest in-process
/// figure to a new `tape replay` (the code, the caches and the heap's pages are all new to
/// it). Its time, faults and digest, and the cost of a page touched for the first time
/// measured right after it.
struct First {
    secs: f64,
    faults: u64,
    digest: String,
    touch: f64,
    touched: u64,
}

fn measure(dir: &Path, runs: usize, first: Option<First>) {
    let (mut verify, mut replay, mut replay2) = (Vec::new(), Vec::new(), Vec::new());
    let (mut reading, mut decoding) = (Vec::new(), Vec::new());
    // Minor page faults of verify, replay and replay on two threads.
    let mut faults: [Vec<f64>; 3] = Default::default();
    let mut decoded = 0;
    let mut records = 0;
    let mut digest = String::new();
    for run in 0..=runs {
        let f = minor_faults();
        let t = Instant::now();
        let report = tape_journal::verify(dir).expect("verify");
        let v = t.elapsed().as_secs_f64();
        let fv = minor_faults().saturating_sub(f);
        assert!(report.is_clean(), "{}: {report}", dir.display());
        let f = minor_faults();
        let t = Instant::now();
        let one = tape_tools::replay::ReplayOptions {
            pipeline: false,
            ..Default::default()
        };
        let (summary, engine) = tape_tools::replay::replay_with(dir, &one).expect("replay");
        let r = t.elapsed().as_secs_f64();
        let fr = minor_faults().saturating_sub(f);
        drop(engine);
        let (r2, fr2, piped) = replay_two_threads(dir);
        assert_eq!(piped, summary.digest, "both replays give one digest");
        assert_eq!(summary.records, report.records);
        let t = Instant::now();
        assert!(read(dir) > 0);
        let rd = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let n = read_and_decode(dir);
        let dc = t.elapsed().as_secs_f64();
        if run == 0 {
            if let Some(first) = &first {
                assert_eq!(first.digest, summary.digest, "the first replay's digest");
            }
            records = summary.records;
            digest = summary.digest;
            decoded = n;
            continue;
        }
        assert_eq!(summary.digest, digest, "the digest is stable");
        assert_eq!(n, decoded, "the decoded count is stable");
        verify.push(v);
        replay.push(r);
        replay2.push(r2);
        for (v, n) in faults.iter_mut().zip([fv, fr, fr2]) {
            v.push(n as f64);
        }
        reading.push(rd);
        decoding.push(dc);
    }
    let (v, r) = (median(&mut verify), median(&mut replay));
    let r2 = median(&mut replay2);
    let (rd, dc) = (median(&mut reading), median(&mut decoding));
    let line = |name: &str, secs: f64| {
        format!(
            "  {name:<13} {:>9.3} ms  ({:.2} M records/s, {:.2}x verify)",
            secs * 1e3,
            records as f64 / secs / 1e6,
            secs / v
        )
    };
    let [fv, fr, fr2] = faults.map(|mut v| median(&mut v));
    println!(
        "{}: {records} records ({decoded} decoded), digest {digest}\n{}\n{}\n{}\n{}\n{}\n  replay / verify = {:.2}x, 2 threads {:.2}x  (medians of {runs})\n  page faults: verify {fv}, replay {fr}, 2 threads {fr2}  (medians)",
        dir.display(),
        line("verify", v),
        line("read", rd),
        line("read + decode", dc),
        line("replay", r),
        line("replay, 2 thr", r2),
        r / v,
        r2 / v,
    );
    // The first replay's time beyond the warm ones': its faults at this host's cost a page
    // (measured just after it), and the rest (code and data new to the caches, the
    // allocator's first requests, the engine's thread started and its CPU woken).
    if let Some(f) = &first {
        let beyond = f.secs - r2;
        let more = f.faults.saturating_sub(fr2 as u64);
        let in_faults = more as f64 * f.touch;
        println!(
            "  first replay  {:>9.3} ms  ({:.2} M records/s, 2 threads, {} page faults): \
             {:.3} ms beyond the warm median, ~{:.3} ms of it the {more} faults more at {:.2} \
             µs a page ({} pages touched to measure it), ~{:.3} ms the rest",
            f.secs * 1e3,
            records as f64 / f.secs / 1e6,
            f.faults,
            beyond * 1e3,
            in_faults * 1e3,
            f.touch * 1e6,
            f.touched,
            (beyond - in_faults) * 1e3,
        );
    }
}

fn main() {
    // As the `tape` binary does first thing: freed memory stays in the process.
    let tuning = tape_tools::alloc::keep_freed_memory();
    println!("allocator: {tuning:?} (tape_tools::alloc)");
    let mut args = std::env::args().skip(1);
    let runs: usize = args
        .next()
        .map(|a| a.parse().expect("RUNS is a number"))
        .unwrap_or(7);
    let mut dirs: Vec<PathBuf> = args.map(PathBuf::from).collect();
    let tmp = tempfile::tempdir().expect("temp dir");
    if dirs.is_empty() {
        dirs.push(tape_bench::fixtures_dir().join("session"));
        let synth = tmp.path().join("synth3");
        let opts = SynthOptions {
            secs: 20,
            rate: 20_000,
            seed: 3,
            ..SynthOptions::default()
        };
        tape_tools::synth::write(&opts, &synth, tape_journal::JournalOptions::default())
            .expect("synth");
        dirs.push(synth);
    }
    let mut first = dirs.first().map(|d| {
        let (secs, faults, digest) = replay_two_threads(d);
        let (touch, touched) = first_touch_cost();
        First {
            secs,
            faults,
            digest,
            touch,
            touched,
        }
    });
    for d in &dirs {
        measure(d, runs, first.take());
    }
}
