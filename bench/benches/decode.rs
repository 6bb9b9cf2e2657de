//! Decode one frame of each hot kind: tape's simd-json decoder (into fixed-point events)
//! against serde_json and sonic-rs into typed structs with borrowed `&str` fields.

use std::hint::black_box;

use criterion::{criterion_group, Criterion, Throughput};
use tape_bench::{peer, SPOT_BOOK_TICKER, SPOT_TRADE, USDM_DEPTH20};
use tape_core::decode::{DecodeCtx, Decoder};
use tape_core::instrument::{Market, Registry};

/// One group per frame kind: tape, then the peers on the same bytes.
macro_rules! frame_group {
    ($c:expr, $name:expr, $frame:expr, $market:expr, $peer:ty) => {{
        let frame: &str = $frame;
        let mut g = $c.benchmark_group(concat!("decode/", $name));
        g.throughput(Throughput::Elements(1));
        let mut registry = Registry::default();
        registry
            .register($market, "BTCUSDT", 8, 8)
            .expect("register BTCUSDT");
        let mut dec = Decoder::new();
        let ctx = DecodeCtx {
            market: $market,
            auto_register: false,
        };
        dec.decode_frame(frame.as_bytes(), ctx, &mut registry)
            .expect("fixture frame decodes");
        g.bench_function("tape", |b| {
            b.iter(|| {
                let m = dec
                    .decode_frame(black_box(frame.as_bytes()), ctx, &mut registry)
                    .expect("decodes");
                black_box(&m);
            })
        });
        g.bench_function("serde_json", |b| {
            b.iter(|| {
                let m: peer::Combined<'_, $peer> =
                    serde_json::from_str(black_box(frame)).expect("serde_json decodes");
                black_box(&m.data);
            })
        });
        g.bench_function("sonic_rs", |b| {
            b.iter(|| {
                let m: peer::Combined<'_, $peer> =
                    sonic_rs::from_str(black_box(frame)).expect("sonic-rs decodes");
                black_box(&m.data);
            })
        });
        g.finish();
    }};
}

fn decode(c: &mut Criterion) {
    frame_group!(
        c,
        "book_ticker",
        SPOT_BOOK_TICKER,
        Market::Spot,
        peer::BookTicker<'_>
    );
    frame_group!(c, "trade", SPOT_TRADE, Market::Spot, peer::Trade<'_>);
    frame_group!(c, "depth20", USDM_DEPTH20, Market::UsdM, peer::Depth<'_>);
}

criterion_group!(benches, decode);

/// `DECODE_PROFILE=<frame>:<iterations>` (frame `book_ticker`, `trade` or `depth20`) decodes
/// that frame with tape's decoder in a plain loop and exits, without criterion: for
/// `valgrind --tool=callgrind --toggle-collect='*Decoder::decode_frame*'`, whose inclusive
/// count divided by the iterations is the instructions per frame.
fn profile(spec: &str) {
    let (name, iters) = spec.split_once(':').unwrap_or((spec, "10000"));
    let iters: u64 = iters.parse().expect("DECODE_PROFILE=<frame>:<iterations>");
    let (frame, market) = match name {
        "book_ticker" => (SPOT_BOOK_TICKER, Market::Spot),
        "trade" => (SPOT_TRADE, Market::Spot),
        "depth20" => (USDM_DEPTH20, Market::UsdM),
        other => panic!("unknown frame {other}"),
    };
    let mut registry = Registry::default();
    registry
        .register(market, "BTCUSDT", 8, 8)
        .expect("register BTCUSDT");
    let mut dec = Decoder::new();
    let ctx = DecodeCtx {
        market,
        auto_register: false,
    };
    for _ in 0..iters {
        let m = dec
            .decode_frame(black_box(frame.as_bytes()), ctx, &mut registry)
            .expect("decodes");
        black_box(&m);
    }
}

/// `DECODE_MIN=1`: the fastest of 3,000 batches of 200 decodes per decoder and frame, tape
/// and both peers in one run. On a shared, loaded machine the minimum is the figure least
/// disturbed by other work (criterion's median is not); the ratio is the one to compare.
fn min_time() {
    use std::time::Instant;
    fn best<F: FnMut()>(mut f: F) -> f64 {
        let mut best = f64::MAX;
        for _ in 0..3000 {
            let t = Instant::now();
            for _ in 0..200 {
                f();
            }
            best = best.min(t.elapsed().as_nanos() as f64 / 200.0);
        }
        best
    }
    for (name, frame, market) in [
        ("book_ticker", SPOT_BOOK_TICKER, Market::Spot),
        ("trade", SPOT_TRADE, Market::Spot),
        ("depth20", USDM_DEPTH20, Market::UsdM),
    ] {
        let mut registry = Registry::default();
        registry.register(market, "BTCUSDT", 8, 8).unwrap();
        let mut dec = Decoder::new();
        let ctx = DecodeCtx {
            market,
            auto_register: false,
        };
        let t = best(|| {
            let m = dec
                .decode_frame(black_box(frame.as_bytes()), ctx, &mut registry)
                .unwrap();
            black_box(&m);
        });
        let s = match name {
            "book_ticker" => best(|| {
                let m: peer::Combined<'_, peer::BookTicker<'_>> =
                    serde_json::from_str(black_box(frame)).unwrap();
                black_box(&m.data);
            }),
            "trade" => best(|| {
                let m: peer::Combined<'_, peer::Trade<'_>> =
                    serde_json::from_str(black_box(frame)).unwrap();
                black_box(&m.data);
            }),
            _ => best(|| {
                let m: peer::Combined<'_, peer::Depth<'_>> =
                    serde_json::from_str(black_box(frame)).unwrap();
                black_box(&m.data);
            }),
        };
        let r = match name {
            "book_ticker" => best(|| {
                let m: peer::Combined<'_, peer::BookTicker<'_>> =
                    sonic_rs::from_str(black_box(frame)).unwrap();
                black_box(&m.data);
            }),
            "trade" => best(|| {
                let m: peer::Combined<'_, peer::Trade<'_>> =
                    sonic_rs::from_str(black_box(frame)).unwrap();
                black_box(&m.data);
            }),
            _ => best(|| {
                let m: peer::Combined<'_, peer::Depth<'_>> =
                    sonic_rs::from_str(black_box(frame)).unwrap();
                black_box(&m.data);
            }),
        };
        println!(
            "{name:12} tape {t:7.1}  serde {s:7.1}  sonic {r:7.1}  ratio {:.2}",
            s.min(r) / t
        );
    }
}

fn main() {
    if std::env::var("DECODE_MIN").is_ok() {
        min_time();
        return;
    }
    if let Ok(spec) = std::env::var("DECODE_PROFILE") {
        profile(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
