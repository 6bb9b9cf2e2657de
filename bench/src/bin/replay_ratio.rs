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

use std::path::{Path, PathBuf};
use std::time::Instant;

use tape_tools::synth::SynthOptions;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn measure(dir: &Path, runs: usize) {
    let (mut verify, mut replay) = (Vec::new(), Vec::new());
    let mut records = 0;
    let mut digest = String::new();
    for run in 0..=runs {
        let t = Instant::now();
        let report = tape_journal::verify(dir).expect("verify");
        let v = t.elapsed().as_secs_f64();
        assert!(report.is_clean(), "{}: {report}", dir.display());
        let t = Instant::now();
        let (summary, engine) = tape_tools::replay::replay(dir).expect("replay");
        let r = t.elapsed().as_secs_f64();
        drop(engine);
        assert_eq!(summary.records, report.records);
        if run == 0 {
            records = summary.records;
            digest = summary.digest;
            continue;
        }
        assert_eq!(summary.digest, digest, "the digest is stable");
        verify.push(v);
        replay.push(r);
    }
    let (v, r) = (median(&mut verify), median(&mut replay));
    println!(
        "{}: {records} records, digest {digest}\n  verify {:>9.3} ms  ({:.2} M records/s)\n  replay {:>9.3} ms  ({:.2} M records/s)\n  replay / verify = {:.2}x  (medians of {runs})",
        dir.display(),
        v * 1e3,
        records as f64 / v / 1e6,
        r * 1e3,
        records as f64 / r / 1e6,
        r / v,
    );
}

fn main() {
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
    for d in &dirs {
        measure(d, runs);
    }
}
