//! What signing adds to an order: Binance's payload rule over a typical `order.place`
//! parameter set, then HMAC-SHA256 (hex) or Ed25519 (base64), as tape's gateway does for
//! every request; beside `ring`'s HMAC and Ed25519 over the same bytes (the peer).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use tape_core::sign::{payload, Ed25519Key, HmacKey};

const PARAMS: [(&str, &str); 10] = [
    ("symbol", "BTCUSDT"),
    ("side", "BUY"),
    ("type", "LIMIT"),
    ("timeInForce", "GTC"),
    ("quantity", "0.010"),
    ("price", "61805.00"),
    ("newClientOrderId", "tg123456"),
    (
        "apiKey",
        "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
    ),
    ("timestamp", "1733300000123"),
    ("recvWindow", "5000"),
];

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("sign");
    let hmac = HmacKey::new(b"NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j");
    let ed = Ed25519Key::from_seed(&[7; 32]);
    g.bench_function("payload", |b| b.iter(|| payload(black_box(PARAMS))));
    g.bench_function("tape_hmac_sha256_hex", |b| {
        b.iter(|| hmac.sign(&payload(black_box(PARAMS))))
    });
    g.bench_function("tape_ed25519_base64", |b| {
        b.iter(|| ed.sign(&payload(black_box(PARAMS))))
    });
    // The peer: ring over the same payload bytes (no hex/base64 encoding).
    let p = payload(PARAMS);
    let rk = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA256,
        b"NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j",
    );
    g.bench_function("ring_hmac_sha256", |b| {
        b.iter(|| ring::hmac::sign(&rk, black_box(p.as_bytes())))
    });
    let rp = ring::signature::Ed25519KeyPair::from_seed_unchecked(&[7; 32]).expect("seed");
    g.bench_function("ring_ed25519", |b| {
        b.iter(|| rp.sign(black_box(p.as_bytes())))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
