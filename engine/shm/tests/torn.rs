//! Concurrent torn-read test: a writer thread rewrites records at full speed while reader
//! threads, each with its own mapping of the file (as another process would have), copy
//! them and check an invariant that any torn copy breaks: every field of a write is derived
//! from one counter. Millions of reads overlap the writes; not one may be torn.
//!
//! `TAPE_SHM_TORN_READS` sets the reads per reader (default 1,000,000 for the top of book,
//! a tenth of it for the 20-level depth); raise it for a longer soak.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tape_shm::{
    BookState, DepthHead, InstrumentKey, Level, MarketCode, MarketOptions, Reader, ShmDir, Symbol,
    Top,
};

const READERS: usize = 2;

/// Different writes each reader must have seen: proof that its reads overlapped the writes.
const MIN_DISTINCT: u64 = 1000;

/// The two tests take every core of a small machine: one at a time, or they would mostly
/// measure the scheduler.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn reads() -> u64 {
    std::env::var("TAPE_SHM_TORN_READS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// The top of book of write `c`: every field a different function of `c`.
fn top_of(c: u64) -> Top {
    Top {
        update_id: c,
        recv_ns: c.wrapping_mul(3).wrapping_add(1),
        state: if c.is_multiple_of(2) {
            BookState::Synced
        } else {
            BookState::OutOfSync
        },
        bid: Some(Level {
            price: c as i64,
            qty: !(c as i64),
        }),
        ask: (!c.is_multiple_of(3)).then_some(Level {
            price: (c as i64).wrapping_add(7),
            qty: (c as i64).wrapping_mul(5),
        }),
    }
}

fn levels_of(c: u64, side: i64) -> impl Iterator<Item = Level> {
    // 1 to 20 levels, each derived from c, its side and its index.
    let n = (c % 20) as i64 + 1;
    (0..n).map(move |i| Level {
        price: (c as i64) * 1000 + side * 100 + i,
        qty: (c as i64) ^ (i << 40) ^ side,
    })
}

struct Run {
    reads: u64,
    distinct: u64,
    writes: u64,
}

/// Runs a writer over `write` (spinning `pause` times between writes) and `READERS` readers
/// over `check` (which returns the counter of the write it saw) until every reader has done
/// `n` reads.
fn run(
    n: u64,
    pause: u32,
    write: impl Fn(&mut tape_shm::MarketWriter, tape_shm::Slot, u64) + Send + 'static,
    check: impl Fn(&Reader, &tape_shm::Instrument) -> u64 + Send + Sync + 'static,
) -> Run {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ShmDir::open(&tmp.path().join("shm")).unwrap();
    let mut w = dir
        .create_market(&MarketOptions {
            levels: 20,
            max_instruments: 1,
            ..MarketOptions::default()
        })
        .unwrap();
    let slot = w
        .add_instrument(&InstrumentKey {
            market: MarketCode::UsdM as u8,
            price_scale: 2,
            qty_scale: 3,
            symbol: Symbol::new("BTCUSDT"),
        })
        .unwrap();
    write(&mut w, slot, 1);
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, writes) = (Arc::clone(&stop), Arc::clone(&writes));
        std::thread::spawn(move || {
            let mut c = 1u64;
            while !stop.load(Ordering::Relaxed) {
                c += 1;
                write(&mut w, slot, c);
                for _ in 0..pause {
                    std::hint::spin_loop();
                }
            }
            writes.store(c, Ordering::Relaxed);
        })
    };
    let check = Arc::new(check);
    let reads_done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(120);
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let path = dir.path().to_owned();
            let check = Arc::clone(&check);
            let reads_done = Arc::clone(&reads_done);
            std::thread::spawn(move || {
                // Its own mapping of the file, as a reader process has.
                let r = Reader::open(&path).unwrap();
                let inst = r.find("usdm:BTCUSDT").unwrap();
                let (mut last, mut distinct, mut i) = (0u64, 0u64, 0u64);
                // At least `n` reads, and on until the reads have overlapped the writes
                // (seen MIN_DISTINCT different writes): on a busy machine the scheduler may
                // keep the writer off the CPU for a while.
                while i < n || distinct < MIN_DISTINCT {
                    let c = check(&r, &inst);
                    assert!(c >= last, "went back from write {last} to {c}");
                    distinct += u64::from(c != last);
                    last = c;
                    if i.is_multiple_of(65_536) {
                        assert!(
                            Instant::now() < deadline,
                            "after {i} reads in 120 s only {distinct} distinct writes seen"
                        );
                    }
                    i += 1;
                }
                reads_done.fetch_add(i, Ordering::Relaxed);
                distinct
            })
        })
        .collect();
    let distinct = readers.into_iter().map(|h| h.join().expect("reader")).sum();
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    Run {
        reads: reads_done.load(Ordering::Relaxed),
        distinct,
        writes: writes.load(Ordering::Relaxed),
    }
}

#[test]
fn no_top_of_book_read_is_torn_while_the_writer_runs_flat_out() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let n = reads();
    let r = run(
        n,
        0,
        |w, slot, c| w.write_top(slot, &top_of(c)),
        |r, inst| {
            let t = r.bbo(inst).expect("read");
            assert_eq!(t, top_of(t.update_id), "torn top of book");
            t.update_id
        },
    );
    eprintln!(
        "top of book: {} reads, {} writes, {} distinct writes seen",
        r.reads, r.writes, r.distinct
    );
    assert!(r.reads >= 2 * n && r.distinct >= 2 * MIN_DISTINCT);
}

#[test]
fn no_depth_read_is_torn_while_the_writer_runs_flat_out() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let n = (reads() / 10).max(1);
    // A depth copy is ~84 words: a writer rewriting it back to back leaves a reader almost
    // no window to copy it whole (it then succeeds only while the writer is descheduled). A
    // short pause between writes (still ~10x the fastest book update rate) lets reads and
    // writes overlap all the time instead.
    let r = run(
        n,
        200,
        |w, slot, c| {
            let head = DepthHead {
                update_id: c,
                recv_ns: c * 7,
                state: BookState::Synced,
            };
            w.write_depth(slot, &head, levels_of(c, 0), levels_of(c, 1));
        },
        |r, inst| {
            let d = r.levels(inst).expect("read");
            let c = d.head.update_id;
            assert_eq!(d.head.recv_ns, c * 7, "torn depth head");
            assert!(
                d.bids.iter().copied().eq(levels_of(c, 0)),
                "torn bids at {c}: {:?}",
                d.bids
            );
            assert!(
                d.asks.iter().copied().eq(levels_of(c, 1)),
                "torn asks at {c}: {:?}",
                d.asks
            );
            c
        },
    );
    eprintln!(
        "depth: {} reads, {} writes, {} distinct writes seen",
        r.reads, r.writes, r.distinct
    );
    assert!(r.reads >= 2 * n && r.distinct >= 2 * MIN_DISTINCT);
}
