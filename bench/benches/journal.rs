//! Appending a 300-byte record: tape's pre-touched mmap journal against a `BufWriter<File>`
//! writing the same framing (header + crc32 + payload). Old segments are deleted between
//! samples so the run's disk use stays bounded; both write under the same temp directory.

use std::fs::File;
use std::hint::black_box;
use std::io::{BufWriter, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tape_journal::{JournalOptions, JournalWriter};

const RECORD: usize = 300;

fn scratch_dir() -> tempfile::TempDir {
    // tmpfs when there is one: the benchmark measures the append path, not the disk.
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::tempdir_in(shm) {
            return d;
        }
    }
    tempfile::tempdir().expect("temp dir")
}

/// Removes every sealed segment (`*.seg`) but the newest: the bench's stand-in for an
/// archiver.
fn prune(dir: &Path) {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("journal dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segs.sort();
    segs.pop();
    for s in segs {
        let _ = std::fs::remove_file(s);
    }
}

fn journal(c: &mut Criterion) {
    let payload = vec![b'x'; RECORD];
    let mut g = c.benchmark_group("journal/append_300B");
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(3));

    let dir = scratch_dir();
    let jdir = dir.path().join("tape");
    let opts = JournalOptions {
        segment_size: 64 << 20,
        pretouch_bytes: 4 << 20,
        ..JournalOptions::default()
    };
    let (mut w, _) = JournalWriter::open(&jdir, opts).expect("journal opens");
    let mut ts = 0u64;
    // Pre-touched: the writer's idle-time `pretouch()` runs outside the timed region, and each
    // timed run appends no more than the window it faulted in. This is the steady state of a
    // live engine, whose idle loop keeps the window full.
    let per_window = (opts.pretouch_bytes as usize / (RECORD + 40)).max(1) as u64 / 2;
    g.bench_function("tape_mmap_pretouched", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                w.pretouch().expect("pretouch");
                let n = left.min(per_window);
                let start = Instant::now();
                for _ in 0..n {
                    ts += 1;
                    black_box(w.append(ts, 1, 2, black_box(&payload)).expect("append"));
                }
                total += start.elapsed();
                left -= n;
            }
            prune(&jdir);
            total
        })
    });
    // Cold: nothing touched ahead by an idle loop; the page faults of a fresh file land on the
    // appends (amortised by the writer's own small automatic pre-touch step).
    g.bench_function("tape_mmap_cold", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                ts += 1;
                black_box(w.append(ts, 1, 2, black_box(&payload)).expect("append"));
            }
            let t = start.elapsed();
            prune(&jdir);
            t
        })
    });
    drop(w);

    let path = dir.path().join("bufwriter.log");
    let mut f = BufWriter::with_capacity(1 << 20, File::create(&path).expect("create"));
    let mut seq = 0u64;
    g.bench_function("bufwriter_file", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                seq += 1;
                let p = black_box(&payload);
                let mut h = crc32fast::Hasher::new();
                h.update(&seq.to_le_bytes());
                h.update(p);
                f.write_all(&(p.len() as u32).to_le_bytes()).expect("write");
                f.write_all(&h.finalize().to_le_bytes()).expect("write");
                f.write_all(&seq.to_le_bytes()).expect("write");
                f.write_all(&seq.to_le_bytes()).expect("write");
                f.write_all(p).expect("write");
            }
            f.flush().expect("flush");
            let t = start.elapsed();
            f.get_mut().set_len(0).expect("truncate");
            f.get_mut().rewind().expect("rewind");
            t
        })
    });
    g.finish();
}

criterion_group!(benches, journal);
criterion_main!(benches);
