//! Replay throughput: the whole bundled session (five real Binance slices) through the engine
//! core, as `tape replay` runs it (two threads, the journal read a window at a time, the
//! allocator tuned as the `tape` binary tunes it).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tape_tools::import::{Format, ImportOptions};

fn replay(c: &mut Criterion) {
    tape_tools::alloc::keep_freed_memory();
    let dir = tempfile::tempdir().expect("temp dir");
    let jdir = dir.path().join("session");
    let opts = ImportOptions {
        format: Format::Hftbacktest,
        files: tape_bench::hftbacktest_files(),
        http: Vec::new(),
        market: None,
        symbol: None,
    };
    tape_tools::dump::write_import(&opts, &jdir).expect("import fixtures");
    let (summary, _) = tape_tools::replay::replay(&jdir).expect("replay");
    let mut g = c.benchmark_group("replay/session");
    g.measurement_time(Duration::from_secs(5));
    g.sample_size(20);
    g.throughput(Throughput::Elements(summary.output_events));
    g.bench_function("events", |b| {
        b.iter(|| {
            let (s, _) = tape_tools::replay::replay(&jdir).expect("replay");
            assert_eq!(s.digest, summary.digest);
        })
    });
    g.finish();
}

criterion_group!(benches, replay);
criterion_main!(benches);
