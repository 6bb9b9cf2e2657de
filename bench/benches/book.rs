//! One level update applied to an L2 book that holds a real 1000-level snapshot: tape's
//! sorted-vector ladder against a plain `BTreeMap` book, on the same real diff stream.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tape_bench::levels;
use tape_core::book::OrderBook;
use tape_core::fixed::{Price, Qty};
use tape_core::msg::Side;

/// The peer: the textbook BTreeMap book.
#[derive(Default)]
struct BTreeBook {
    bids: BTreeMap<Price, Qty>,
    asks: BTreeMap<Price, Qty>,
}

impl BTreeBook {
    fn apply(&mut self, side: Side, price: Price, qty: Qty) {
        let map = match side {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
        };
        if qty.is_zero() {
            map.remove(&price);
        } else {
            map.insert(price, qty);
        }
    }
}

fn book(c: &mut Criterion) {
    let path = tape_bench::fixtures_dir()
        .join("hftbacktest")
        .join("usdm_btcusdt_20240808.first3300lines.txt");
    let fx = levels::load(&path, 8);
    assert!(fx.updates.len() > 1000, "enough updates to cycle through");
    let mut g = c.benchmark_group("book/level_update");
    g.throughput(Throughput::Elements(1));

    let mut ob = OrderBook::new();
    ob.load_snapshot(&fx.snapshot_bids, &fx.snapshot_asks);
    let mut i = 0usize;
    g.bench_function("tape", |b| {
        b.iter(|| {
            let (side, p, q) = fx.updates[i];
            i = if i + 1 == fx.updates.len() { 0 } else { i + 1 };
            black_box(ob.apply(side, black_box(p), black_box(q)));
        })
    });

    let mut bt = BTreeBook::default();
    for l in &fx.snapshot_bids {
        bt.apply(Side::Bid, l.price, l.qty);
    }
    for l in &fx.snapshot_asks {
        bt.apply(Side::Ask, l.price, l.qty);
    }
    let mut i = 0usize;
    g.bench_function("btreemap", |b| {
        b.iter(|| {
            let (side, p, q) = fx.updates[i];
            i = if i + 1 == fx.updates.len() { 0 } else { i + 1 };
            bt.apply(side, black_box(p), black_box(q));
        })
    });
    g.finish();
}

criterion_group!(benches, book);
criterion_main!(benches);
