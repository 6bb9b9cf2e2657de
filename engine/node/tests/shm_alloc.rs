//! Proves the shared-memory publisher costs no allocation per input in steady state: after
//! every record, [`Publisher::publish`] takes the record's queued outputs (each through
//! `handle_output`, then the flush), exactly as the pipeline does, and only the allocations
//! made inside that call are counted (the engine's own are another test's business).
//!
//! The bundled session is fed three times, the engine replaced between passes as a looping
//! replay does ([`Publisher::restart`]); a desk with two users trades along the way, so the
//! account records are rewritten too. The first pass publishes the instruments and users
//! (their one-time set-up allocates); the third pass must not allocate at all.

#[path = "../../core/tests/support/alloc.rs"]
mod alloc;

use alloc::{allocs, Counting};
use tape_core::desk::{ClientOp, ClientRecord, DeskSetup};
use tape_core::engine::{Engine, EngineConfig};
use tape_core::input::{Nanos, RecordKind, SourceId, CLIENT_SOURCE};
use tape_journal::JournalReader;
use tape_node::shm::{Publisher, ShmConfig};

#[global_allocator]
static GLOBAL: Counting = Counting;

struct Rec {
    recv: u64,
    source: u32,
    kind: u16,
    payload: Vec<u8>,
}

fn records() -> Vec<Rec> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/session");
    let mut reader = JournalReader::open(dir).unwrap();
    let mut v = Vec::new();
    let setup = DeskSetup {
        users: vec!["alice".into(), "bob".into()],
        ..DeskSetup::default()
    };
    let commands = [
        (
            2500,
            "alice",
            r#"{"type":"place_order","id":1,"symbol":"usdm:BTCUSDT","side":"buy","order_type":"market","qty":"0.010"}"#,
        ),
        (
            2600,
            "alice",
            r#"{"type":"place_order","id":2,"symbol":"usdm:BTCUSDT","side":"buy","order_type":"limit","price":"50000.00","qty":"0.005"}"#,
        ),
        (
            3000,
            "bob",
            r#"{"type":"place_order","id":3,"symbol":"spot:ETHUSDT","side":"sell","order_type":"market","qty":"0.1000"}"#,
        ),
        (
            6000,
            "alice",
            r#"{"type":"place_order","id":4,"symbol":"usdm:BTCUSDT","side":"sell","order_type":"market","qty":"0.004"}"#,
        ),
    ];
    while let Some(r) = reader.next() {
        let r = r.unwrap();
        v.push(Rec {
            recv: r.recv_ns,
            source: r.source,
            kind: r.kind,
            payload: r.payload.to_vec(),
        });
        if v.len() == 1 {
            v.push(Rec {
                recv: r.recv_ns,
                source: CLIENT_SOURCE,
                kind: RecordKind::DeskSetup as u16,
                payload: setup.to_payload().into_bytes(),
            });
        }
        for (at, user, body) in commands {
            if v.len() == at {
                v.push(Rec {
                    recv: r.recv_ns,
                    source: CLIENT_SOURCE,
                    kind: RecordKind::Client as u16,
                    payload: ClientRecord::encode(ClientOp::Command, 1, user, body.as_bytes()),
                });
            }
        }
    }
    v
}

#[test]
fn publishing_an_input_allocates_nothing_in_steady_state() {
    let recs = records();
    let tmp = tempfile::tempdir().unwrap();
    let mut p = Publisher::open(&ShmConfig::new(tmp.path().join("shm")), &[]).unwrap();
    let mut published = 0u64;
    for pass in 0..3 {
        let mut engine = Engine::new(EngineConfig::default()).unwrap();
        if pass > 0 {
            p.restart();
        }
        let mut allocating = 0u64;
        for r in &recs {
            let _ = engine.handle_stored(Nanos(r.recv), SourceId(r.source), r.kind, &r.payload);
            published += engine.queued_outputs().count() as u64;
            let before = allocs();
            p.publish(&engine);
            allocating += u64::from(allocs() > before);
            while engine.poll_output().is_some() {}
            while engine.poll_venue_command().is_some() {}
        }
        let accepted = engine.desk().map_or(0, |d| d.stats().accepted);
        assert_eq!(accepted, 4, "pass {pass}: the orders went through");
        if pass == 0 {
            // Publishing the instruments and users does allocate: the counter works.
            assert!(allocating > 0, "the first pass's set-up was counted");
        }
        if pass == 2 {
            assert_eq!(
                allocating,
                0,
                "{allocating} of {} records allocated in the publisher",
                recs.len()
            );
        }
    }
    assert!(published > 100_000, "{published} outputs published");
}
