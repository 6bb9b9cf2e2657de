//! `tape replay` on two threads (the intake reads and decodes, the engine applies) computes
//! exactly what one thread does: the same digest, counts, errors, books and registry, on
//! the bundled session, on a session salted with every kind of bad record and with symbols
//! first seen in frames (registered by the intake thread, adopted by the engine), on random
//! interleavings of those, and on a damaged journal.

mod support;

use std::path::Path;

use proptest::prelude::*;
use support::{root, session_records as session, write_journal as write, Rec};
use tape_core::engine::{Engine, EngineConfig, Intake, Intaken};
use tape_core::input::{Nanos, SourceDef, SourceId, CLIENT_SOURCE};
use tape_core::instrument::Market;
use tape_tools::replay::{replay_with, ReplayOptions, Summary};

const SOURCE_DEF: u16 = 1;
const WS_FRAME: u16 = 2;
const REST_SNAPSHOT: u16 = 3;
const DESK_SETUP: u16 = 5;
const CLIENT: u16 = 6;

fn def(market: Market, symbol: Option<&str>, name: &str) -> Vec<u8> {
    SourceDef {
        market,
        symbol: symbol.map(str::to_owned),
        scales: None,
        name: name.to_owned(),
    }
    .to_text()
    .into_bytes()
}

/// A spot bookTicker for `symbol` (not configured: the engine registers it on sight).
fn book_ticker(symbol: &str, u: u64) -> Vec<u8> {
    format!(
        "{{\"u\":{u},\"s\":\"{symbol}\",\"b\":\"1.50\",\"B\":\"2.0\",\"a\":\"1.60\",\"A\":\"3.0\"}}"
    )
    .into_bytes()
}

/// Sources the salt uses, apart from the session's (which are below 100).
const SPOT: u32 = 100;
const NO_SYMBOL_REST: u32 = 101;
const UNDEFINED: u32 = 102;

/// Records of every kind a replay must get through, good and bad: a spot source, bookTickers
/// for symbols nobody configured (each one registered by the frame that names it first), a
/// frame on an undefined source, undecodable frames, a snapshot on a source that names no
/// symbol, a bad and a conflicting source definition, a kind this build does not know, and
/// a desk with a client placing an order.
fn salt(t: u64) -> Vec<Rec> {
    let mut out: Vec<Rec> = vec![
        (t, SPOT, SOURCE_DEF, def(Market::Spot, None, "spot salt")),
        (
            t,
            NO_SYMBOL_REST,
            SOURCE_DEF,
            def(Market::Spot, None, "rest without symbol"),
        ),
        (t, UNDEFINED, WS_FRAME, book_ticker("BTCUSDT", 1)),
        (t, SPOT, WS_FRAME, b"{\"u\":1,\"s\":".to_vec()),
        (t, SPOT, WS_FRAME, b"[1,2,3]".to_vec()),
        (t, SPOT, WS_FRAME, b"{\"e\":\"kline\",\"s\":\"BTCUSDT\"}".to_vec()),
        (
            t,
            NO_SYMBOL_REST,
            REST_SNAPSHOT,
            b"{\"lastUpdateId\":1,\"bids\":[],\"asks\":[]}".to_vec(),
        ),
        (t, SPOT, SOURCE_DEF, def(Market::UsdM, None, "redefined")),
        (t, SPOT + 5, SOURCE_DEF, b"not a source definition".to_vec()),
        (t, SPOT, 999, b"from a newer build".to_vec()),
        (
            t,
            CLIENT_SOURCE,
            DESK_SETUP,
            b"tape-desk/1\nuser=alice\nquote_asset=USDT\nmark=mid\nmaker_fee_bps=2\n\
              taker_fee_bps=4\ngateway=paper\nmax_open_orders=5\nmax_order_qty=1.5\n"
                .to_vec(),
        ),
        (
            t,
            CLIENT_SOURCE,
            CLIENT,
            b"tape-client/1 op=login conn=1 user=alice\n".to_vec(),
        ),
        (
            t,
            CLIENT_SOURCE,
            CLIENT,
            b"tape-client/1 op=command conn=1 user=alice\n{\"type\":\"place_order\",\"id\":1,\
              \"symbol\":\"usdm:BTCUSDT\",\"side\":\"buy\",\"order_type\":\"market\",\"qty\":\"0.010\"}"
                .to_vec(),
        ),
    ];
    for i in 0..40 {
        out.push((t, SPOT, WS_FRAME, book_ticker(&format!("NEW{i}USDT"), i)));
    }
    out
}

/// The bundled session with the salt spread through it: the source definitions first, then
/// a salt record every `every` records, so registrations land anywhere in a batch.
fn salted(every: usize) -> Vec<Rec> {
    let recs = session();
    let t0 = recs[0].0;
    let mut salt = salt(t0).into_iter();
    let mut out = Vec::new();
    for (i, r) in recs.into_iter().enumerate() {
        if i > 10 && i % every == 0 {
            if let Some((_, s, k, p)) = salt.next() {
                out.push((r.0, s, k, p));
            }
        }
        out.push(r);
    }
    out.extend(salt);
    out
}

fn replay(dir: &Path, pipeline: bool, allow_damaged: bool) -> anyhow::Result<(Summary, Engine)> {
    let opts = ReplayOptions {
        pipeline,
        allow_damaged,
        ..ReplayOptions::default()
    };
    replay_with(dir, &opts)
}

/// Everything a replay reports but its timing, as JSON.
fn outcome(s: &Summary) -> serde_json::Value {
    let mut v = serde_json::to_value(s).unwrap();
    let m = v.as_object_mut().unwrap();
    for timing in [
        "elapsed_secs",
        "records_per_sec",
        "events_per_sec",
        "threads",
    ] {
        assert!(m.remove(timing).is_some(), "{timing}");
    }
    v
}

/// Both replays of `dir` agree on everything; returns the summary.
fn same_both_ways(dir: &Path) -> Summary {
    let (one, e1) = replay(dir, false, false).unwrap();
    let (two, e2) = replay(dir, true, false).unwrap();
    assert_eq!(one.threads, 1);
    assert_eq!(two.threads, 2);
    assert_eq!(outcome(&one), outcome(&two));
    assert_eq!(e1.digest(), e2.digest());
    assert_eq!(e1.stats(), e2.stats());
    let reg = |e: &Engine| e.registry().iter().cloned().collect::<Vec<_>>();
    assert_eq!(reg(&e1), reg(&e2));
    two
}

#[test]
fn the_bundled_session_replays_alike_on_one_thread_and_two() {
    let s = same_both_ways(&root().join("fixtures/session"));
    assert_eq!(s.digest, "58624847cad61891");
}

#[test]
fn bad_records_and_new_symbols_replay_alike_on_one_thread_and_two() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("salted");
    write(&dir, &salted(97));
    let s = same_both_ways(&dir);
    // The salt did what it is for: every kind of failure was met, and the new symbols
    // were registered (by the intake thread, then adopted by the engine).
    for code in [
        "unknown_source",
        "json",
        "not_object",
        "snapshot_without_symbol",
        "bad_source_def",
        "unknown_kind",
    ] {
        assert!(s.errors.contains_key(code), "{code}: {:?}", s.errors);
    }
    let (_, e) = replay(&dir, true, false).unwrap();
    let news = e
        .registry()
        .iter()
        .filter(|i| i.symbol.starts_with("NEW"))
        .count();
    assert_eq!(news, 40);
    assert_eq!(s.messages["book_ticker"], 6495 + 40);
    // The desk's records (taken whole) reached it: the order was answered and filled.
    assert_eq!(s.outputs["private_reply"], 1, "{:?}", s.outputs);
    assert!(s.outputs["private_orders"] > 0, "{:?}", s.outputs);
}

/// The halves used by hand on one thread: an intake's result applied straight away is
/// `handle_stored`.
#[test]
fn intake_then_apply_is_handle_stored() {
    let recs = salted(13);
    let cfg = EngineConfig::default();
    let mut whole = Engine::new(cfg.clone()).unwrap();
    let mut halves = Engine::new(cfg.clone()).unwrap();
    let mut intake = Intake::new(&cfg).unwrap();
    let mut adopted = 0;
    for (t, s, k, p) in &recs {
        let r1 = whole.handle_stored(Nanos(*t), SourceId(*s), *k, p);
        let (taken, registered) = intake.intake(SourceId(*s), *k, p);
        for inst in registered {
            halves.adopt_instrument(inst).unwrap();
            adopted += 1;
        }
        let r2 = halves.apply_intaken(Nanos(*t), SourceId(*s), *k, p, taken);
        assert_eq!(r1, r2);
        halves.clear_outputs();
        whole.clear_outputs();
    }
    assert_eq!(whole.digest(), halves.digest());
    assert_eq!(whole.stats(), halves.stats());
    assert!(adopted >= 40);
}

#[test]
fn an_instrument_out_of_turn_is_refused() {
    let cfg = EngineConfig::default();
    let mut intake = Intake::new(&cfg).unwrap();
    let mut engine = Engine::new(cfg).unwrap();
    let p = def(Market::Spot, None, "spot");
    let (taken, registered) = intake.intake(SourceId(1), SOURCE_DEF, &p);
    assert!(matches!(taken, Intaken::Whole) && registered.is_empty());
    engine
        .handle_stored(Nanos(1), SourceId(1), SOURCE_DEF, &p)
        .unwrap();
    for (i, sym) in ["AAAUSDT", "BBBUSDT"].iter().enumerate() {
        let (taken, registered) = intake.intake(SourceId(1), WS_FRAME, &book_ticker(sym, i as u64));
        assert!(
            matches!(taken, Intaken::Frame(Market::Spot, _)),
            "{taken:?}"
        );
        assert_eq!(registered.len(), 1);
        assert_eq!(registered[0].symbol, *sym);
    }
    let reg: Vec<_> = intake.registry().iter().cloned().collect();
    assert_eq!(reg.len(), 2);
    // The second before the first: refused, and nothing registered.
    let err = engine.adopt_instrument(&reg[1]).unwrap_err();
    assert_eq!((err.expected, err.got), (1, 0));
    assert_eq!(engine.registry().len(), 0);
    assert_eq!(engine.adopt_instrument(&reg[0]).unwrap(), reg[0].id);
    // The same one twice: refused.
    assert!(engine.adopt_instrument(&reg[0]).is_err());
    assert_eq!(engine.adopt_instrument(&reg[1]).unwrap(), reg[1].id);
    assert_eq!(engine.registry().len(), 2);
}

#[test]
fn a_damaged_journal_stops_at_the_same_record_on_one_thread_and_two() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("damaged");
    write(&dir, &salted(97));
    // Flip a byte two thirds of the way into the segment: inside some record's payload or
    // header, either way damage the reader reports.
    let seg = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "seg"))
        .unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let used = bytes.iter().rposition(|&b| b != 0).unwrap();
    bytes[used * 2 / 3] ^= 0x55;
    std::fs::write(&seg, &bytes).unwrap();

    let (one, _) = replay(&dir, false, true).unwrap();
    let (two, _) = replay(&dir, true, true).unwrap();
    assert!(one.stopped_at_damage.is_some());
    assert!(one.records > 1000 && one.records < 9000, "{}", one.records);
    assert_eq!(outcome(&one), outcome(&two));

    let e1 = replay(&dir, false, false).err().unwrap();
    let e2 = replay(&dir, true, false).err().unwrap();
    assert_eq!(format!("{e1:#}"), format!("{e2:#}"));
    assert!(format!("{e2:#}").contains("damaged journal"), "{e2:#}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Any interleaving of the salt with a stretch of the session: the two-thread replay
    /// agrees with the one-thread one, wherever the registrations and failures fall among
    /// the batches.
    #[test]
    fn any_interleaving_replays_alike(
        start in 10usize..8000,
        len in 1usize..900,
        picks in proptest::collection::vec((0usize..53, 0usize..900), 0..80),
    ) {
        let recs = session();
        let t0 = recs[0].0;
        let salt = salt(t0);
        let mut out: Vec<Rec> = recs[..10].to_vec();
        out.extend_from_slice(&recs[start..(start + len).min(recs.len())]);
        for (which, at) in picks {
            let at = 10 + at.min(out.len() - 10);
            out.insert(at, salt[which % salt.len()].clone());
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("j");
        write(&dir, &out);
        same_both_ways(&dir);
    }
}
