//! Proves a market frame costs no allocation on the whole engine path in steady state: the
//! record is decoded and applied ([`Engine::handle_record`]), its outputs are published by
//! the hub to 100 subscribed clients ([`Hub::handle_output`]) and every client's messages are
//! taken for the wire ([`Hub::poll_ready`], [`Hub::poll_transmit`]), as the node does after
//! each record.
//!
//! The bundled session's real captures (five instruments, three markets) are fed in order.
//! The first part warms the buffers up (books, queues, the hub's message arena); after it,
//! every websocket frame of a synced book is counted, and one allocation anywhere on that
//! path fails the test.

use tape_core::book::BookEvent;
use tape_core::engine::{Engine, EngineConfig};
use tape_core::input::{Nanos, RecordKind, SourceDef, SourceId};
use tape_core::instrument::Market;
use tape_core::output::Event;
use tape_core::server::{ConnId, Hub, HubConfig};

mod support;

use support::alloc::{allocs, Counting};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The bundled hftbacktest captures: (file, market, symbol, price scale, qty scale).
const FIXTURES: &[(&str, Market, &str, u8, u8)] = &[
    (
        "cm_btcusd_perp_20240808.first900lines.txt",
        Market::CoinM,
        "BTCUSD_PERP",
        1,
        0,
    ),
    (
        "spot_btcusdt_20240808.first2900lines.txt",
        Market::Spot,
        "BTCUSDT",
        2,
        8,
    ),
    (
        "spot_ethusdt_20240808.first1000lines.txt",
        Market::Spot,
        "ETHUSDT",
        2,
        4,
    ),
    (
        "usdm_btcusdt_20240808.first3300lines.txt",
        Market::UsdM,
        "BTCUSDT",
        2,
        3,
    ),
    (
        "usdm_ethusdt_20240808.first800lines.txt",
        Market::UsdM,
        "ETHUSDT",
        2,
        3,
    ),
];

const CLIENTS: usize = 100;

struct Rec {
    now: u64,
    source: u32,
    kind: RecordKind,
    payload: Vec<u8>,
}

/// Source definitions, then every capture line merged by receive time (file `i`: source
/// `2i+1` for frames, `2i+2` naming the symbol for its REST snapshot).
fn records() -> Vec<Rec> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/hftbacktest");
    let mut defs = Vec::new();
    let mut lines = Vec::new();
    for (i, (file, market, symbol, ps, qs)) in FIXTURES.iter().enumerate() {
        let (ws, rest) = (2 * i as u32 + 1, 2 * i as u32 + 2);
        for (source, symbol, scales, name) in [
            (rest, Some((*symbol).to_owned()), Some((*ps, *qs)), "rest"),
            (ws, None, None, "ws"),
        ] {
            let def = SourceDef {
                market: *market,
                symbol,
                scales,
                name: name.into(),
            };
            defs.push(Rec {
                now: 0,
                source,
                kind: RecordKind::SourceDef,
                payload: def.to_text().into_bytes(),
            });
        }
        let text = std::fs::read_to_string(format!("{dir}/{file}")).expect("fixture");
        for line in text.lines() {
            let (ts, json) = line.split_once(' ').expect("<ns> <json>");
            let snapshot = json.starts_with("{\"lastUpdateId\"");
            lines.push(Rec {
                now: ts.parse().expect("ns"),
                source: if snapshot { rest } else { ws },
                kind: if snapshot {
                    RecordKind::RestSnapshot
                } else {
                    RecordKind::WsFrame
                },
                payload: json.as_bytes().to_vec(),
            });
        }
    }
    lines.sort_by_key(|r| r.now);
    defs.extend(lines);
    defs
}

/// What one record did on the whole path.
struct Step {
    /// A book (re)synced or lost sync: snapshots are broadcast, not steady state.
    sync_change: bool,
    /// Messages handed to the wire.
    transmitted: u64,
}

struct Pipeline {
    engine: Engine,
    hub: Hub,
    now: Nanos,
}

impl Pipeline {
    /// One record through the engine, its outputs through the hub, and every ready client's
    /// messages taken for the wire (and dropped, as the node does once they are framed).
    fn step(&mut self, r: &Rec) -> Step {
        self.now = self.now.max(Nanos(r.now));
        let _ = self
            .engine
            .handle_record(self.now, SourceId(r.source), r.kind, &r.payload);
        let mut sync_change = false;
        while let Some(out) = self.engine.poll_output() {
            sync_change |= matches!(
                out.event,
                Event::Book(
                    BookEvent::Synced { .. }
                        | BookEvent::Gap { .. }
                        | BookEvent::Crossed { .. }
                        | BookEvent::StaleSnapshot { .. }
                        | BookEvent::ResyncRequested { .. }
                        | BookEvent::BufferOverflow { .. }
                )
            );
            self.hub.handle_output(&out, &self.engine);
        }
        while self.engine.poll_venue_command().is_some() {}
        let mut transmitted = 0;
        while let Some(conn) = self.hub.poll_ready() {
            while let Some(msg) = self.hub.poll_transmit(self.now, conn, &self.engine) {
                transmitted += 1;
                drop(msg);
            }
        }
        Step {
            sync_change,
            transmitted,
        }
    }
}

#[test]
fn a_market_frame_allocates_nothing_from_decode_to_the_wire_for_100_clients() {
    let records = records();
    let mut p = Pipeline {
        engine: Engine::new(EngineConfig::default()).expect("engine"),
        hub: Hub::new(HubConfig::default()),
        now: Nanos(1),
    };
    let defs = records
        .iter()
        .take_while(|r| r.kind == RecordKind::SourceDef)
        .count();
    for r in &records[..defs] {
        p.step(r);
    }
    let symbols: Vec<String> = FIXTURES
        .iter()
        .map(|(_, m, s, _, _)| format!("\"{m}:{s}\""))
        .collect();
    let subscribe = format!(
        r#"{{"type":"subscribe","id":1,"channels":["book","bbo","trades","ticker"],"symbols":[{}],"depth":20}}"#,
        symbols.join(",")
    );
    for c in 0..CLIENTS {
        assert!(p.hub.handle_open(p.now, ConnId(c), ""));
        p.hub.handle_text(p.now, ConnId(c), &subscribe, &p.engine);
    }
    // Warm-up: the whole session twice (shifted in time), so every buffer has grown to the
    // largest frame, book and burst it holds, and the hub's message arena to the chunks its
    // cached messages pin. Then the session a third time: its first frames break each
    // book's sequence (a gap), the book resyncs from the session's snapshot, and from there
    // on every frame is steady state.
    let rest = &records[defs..];
    let span = rest.last().map_or(0, |r| r.now) + 1_000_000_000;
    let shifted = |pass: u64, r: &Rec| Rec {
        now: r.now + pass * span,
        source: r.source,
        kind: r.kind,
        payload: r.payload.clone(),
    };
    for pass in 0..2 {
        for r in rest {
            p.step(&shifted(pass, r));
        }
    }
    assert_eq!(
        p.engine.books().filter(|b| b.is_synced()).count(),
        FIXTURES.len(),
        "every book is synced after the warm-up"
    );

    let (mut frames, mut delivered) = (0u64, 0u64);
    let mut allocating = Vec::new();
    for (i, r) in rest.iter().enumerate() {
        let r = shifted(2, r);
        let before = allocs();
        let step = p.step(&r);
        let n = allocs() - before;
        let synced = p.engine.books().all(|b| b.is_synced());
        if r.kind != RecordKind::WsFrame || step.sync_change || !synced {
            continue;
        }
        frames += 1;
        delivered += step.transmitted;
        if n > 0 {
            if std::env::var_os("ALLOC_DEBUG").is_some() {
                eprintln!(
                    "{i} allocs={n} sent={} {}",
                    step.transmitted,
                    String::from_utf8_lossy(&r.payload[..r.payload.len().min(150)])
                );
            }
            allocating.push((i, n));
        }
    }
    assert!(frames > 7_000, "{frames} steady-state frames measured");
    assert!(
        delivered > CLIENTS as u64 * 1_000,
        "{delivered} messages delivered for {frames} frames: the clients are served"
    );
    assert!(
        allocating.is_empty(),
        "{} of {frames} frames allocated (record index, allocations), first: {:?}",
        allocating.len(),
        &allocating[..allocating.len().min(10)]
    );
}
