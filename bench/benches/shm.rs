//! The shared-memory publication's costs, on the writer's side and the reader's.
//!
//! * `shm/write_top`: one top-of-book record written (seqlock: odd, fence, 7 words, even)
//!   into a mapped file, with `MarketWriter::write_top`. Target <= 50 ns.
//! * `shm/publish_bbo`: the engine thread's cost of one top-of-book update as the pipeline
//!   pays it: a `bbo` output through `Publisher::handle_output` (slot lookup, conversion,
//!   the write, the instrument marked for the input's flush).
//! * `shm/publish_bbo_and_flush`: the same plus the input's flush: the depth record, 20
//!   levels a side from the engine's 1000-level book.
//! * `shm/write_depth_20`: a 20-levels-a-side depth record from a book.
//! * `shm/read_bbo`, `shm/read_levels_20`: a reader's copy of each, uncontended.
//!
//! The files are in `/dev/shm` (tmpfs, as in production) when it exists.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use tape_core::engine::{Engine, EngineConfig};
use tape_core::fixed::{Price, Qty};
use tape_core::input::Nanos;
use tape_core::instrument::{InstrumentId, Market};
use tape_core::msg::Level as CoreLevel;
use tape_core::output::{Bbo, Event, Output};
use tape_node::shm::{Publisher, ShmConfig};
use tape_shm::{
    BookState, DepthHead, InstrumentKey, Level, MarketCode, MarketOptions, Reader, ShmDir, Symbol,
    Top,
};

fn tmp() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::tempdir_in(shm).expect("temp dir in /dev/shm")
    } else {
        tempfile::tempdir().expect("temp dir")
    }
}

fn top(i: u64) -> Top {
    Top {
        update_id: 5_123_108_265_240 + i,
        recv_ns: 1_723_161_262_601_234_567 + i,
        state: BookState::Synced,
        bid: Some(Level {
            price: 6_180_020 + (i % 5) as i64,
            qty: 2_507,
        }),
        ask: Some(Level {
            price: 6_180_030 + (i % 5) as i64,
            qty: 2_510,
        }),
    }
}

fn levels(side: i64) -> Vec<Level> {
    (0..40)
        .map(|i| Level {
            price: 6_180_000 + side * (i + 1),
            qty: 1_000 + i,
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let dir = tmp();
    let d = ShmDir::open(&dir.path().join("shm")).expect("shm dir");
    let mut w = d.create_market(&MarketOptions::default()).expect("market");
    let slot = w
        .add_instrument(&InstrumentKey {
            market: MarketCode::UsdM as u8,
            price_scale: 2,
            qty_scale: 3,
            symbol: Symbol::new("BTCUSDT"),
        })
        .expect("slot");
    let mut g = c.benchmark_group("shm");

    let mut i = 0u64;
    g.bench_function("write_top", |b| {
        b.iter(|| {
            i += 1;
            w.write_top(slot, black_box(&top(i)));
        })
    });

    let (bids, asks) = (levels(-1), levels(1));
    let head = DepthHead {
        update_id: 1,
        recv_ns: 2,
        state: BookState::Synced,
    };
    g.bench_function("write_depth_20", |b| {
        b.iter(|| {
            w.write_depth(
                slot,
                black_box(&head),
                bids.iter().copied(),
                asks.iter().copied(),
            )
        })
    });

    let r = Reader::open(d.path()).expect("reader");
    let inst = r.find("usdm:BTCUSDT").expect("instrument");
    g.bench_function("read_bbo", |b| {
        b.iter(|| black_box(r.bbo(&inst).expect("read")))
    });
    let mut depth = tape_shm::Depth::default();
    g.bench_function("read_levels_20", |b| {
        b.iter(|| {
            r.levels_into(&inst, &mut depth).expect("read");
            black_box(&depth);
        })
    });
    drop(w);
    drop(d);

    // The publisher on a real engine book: a 1000-level BTCUSDT book from the bundled
    // captures' first snapshot.
    let pdir = tmp();
    let mut p = Publisher::open(&ShmConfig::new(pdir.path().join("shm")), &[]).expect("publisher");
    let engine = engine_with_book();
    let id = InstrumentId(0);
    let bbo = |n: u64| Output {
        recv: Nanos(1_723_161_262_601_234_567 + n),
        event: Event::Bbo(Bbo {
            instrument: id,
            update_id: 5_123_108_265_240 + n,
            bid: Some(CoreLevel {
                price: Price(6_180_020 + (n % 3) as i64),
                qty: Qty(2_507),
            }),
            ask: Some(CoreLevel {
                price: Price(6_180_030),
                qty: Qty(2_510),
            }),
        }),
    };
    let mut n = 0u64;
    g.bench_function("publish_bbo", |b| {
        b.iter(|| {
            n += 1;
            p.handle_output(black_box(&bbo(n)), &engine);
        })
    });
    p.flush(&engine);
    g.bench_function("publish_bbo_and_flush", |b| {
        b.iter(|| {
            n += 1;
            p.handle_output(black_box(&bbo(n)), &engine);
            p.flush(&engine);
        })
    });
    g.finish();
}

/// An engine whose USD-M BTCUSDT book is synced from a real snapshot and diff.
fn engine_with_book() -> Engine {
    use tape_core::input::{RecordKind, SourceDef, SourceId};
    let mut e = Engine::new(EngineConfig {
        instruments: vec![(Market::UsdM, "BTCUSDT".into(), 2, 3)],
        ..EngineConfig::default()
    })
    .expect("engine");
    let text = std::fs::read_to_string(
        tape_bench::fixtures_dir().join("hftbacktest/usdm_btcusdt_20240808.first3300lines.txt"),
    )
    .expect("fixture");
    for (src, symbol, scales) in [(1u32, None, None), (2, Some("BTCUSDT"), Some((2, 3)))] {
        let def = SourceDef {
            market: Market::UsdM,
            symbol: symbol.map(str::to_owned),
            scales,
            name: format!("s{src}"),
        };
        let _ = e.handle_record(
            Nanos(0),
            SourceId(src),
            RecordKind::SourceDef,
            def.to_text().as_bytes(),
        );
    }
    for line in text.lines() {
        let Some((ns, json)) = line.split_once(' ') else {
            continue;
        };
        let now = Nanos(ns.parse().unwrap_or(0));
        let (src, kind) = if json.starts_with("{\"lastUpdateId\"") {
            (2, RecordKind::RestSnapshot)
        } else {
            (1, RecordKind::WsFrame)
        };
        let _ = e.handle_record(now, SourceId(src), kind, json.as_bytes());
        while e.poll_output().is_some() {}
        while e.poll_venue_command().is_some() {}
    }
    assert!(
        e.book(InstrumentId(0)).is_some_and(|b| b.is_synced()),
        "the fixture syncs the book"
    );
    e
}

criterion_group!(benches, bench);
criterion_main!(benches);
