//! The C header and the Python reader describe the same layout as the Rust code: every
//! `#define` of `tape_shm.h` equals its Rust constant, and the C and Python example readers,
//! run against a file this crate wrote, print exactly the values written.
//!
//! The readers need `cc` and `python3`; CI has both (and runs them against a live `tape run`
//! in `.ci/shm.sh`). Where one is missing the test says so and checks the rest.

use std::path::{Path, PathBuf};
use std::process::Command;

use tape_shm::layout::{self, header, top};
use tape_shm::{BookState, InstrumentKey, Level, MarketCode, MarketOptions, ShmDir, Symbol, Top};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn defines() -> Vec<(String, u64)> {
    let text = std::fs::read_to_string(root().join("engine/shm/tape_shm.h")).unwrap();
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            (f.next()? == "#define").then_some(())?;
            let name = f.next()?.strip_prefix("TAPE_SHM_")?.to_owned();
            let v = f.next()?.trim_end_matches("ULL");
            let v = match v.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16).ok()?,
                None => v.parse().ok()?,
            };
            Some((name, v))
        })
        .collect()
}

#[test]
fn the_c_header_agrees_with_the_rust_layout() {
    let d = defines();
    let get = |n: &str| {
        d.iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("tape_shm.h has no TAPE_SHM_{n}"))
    };
    let us = |v: usize| v as u64;
    let want: &[(&str, u64)] = &[
        ("VERSION", layout::VERSION),
        ("MARKET_MAGIC", layout::MARKET_MAGIC),
        ("USER_MAGIC", layout::USER_MAGIC),
        ("HEADER_SIZE", layout::HEADER_SIZE),
        ("MONEY_SCALE", u64::from(layout::MONEY_SCALE)),
        ("STATUS_LIVE", layout::STATUS_LIVE),
        ("STATUS_CLOSED", layout::STATUS_CLOSED),
        ("H_MAGIC", us(header::MAGIC)),
        ("H_VERSION", us(header::VERSION)),
        ("H_HEADER_SIZE", us(header::HEADER_SIZE)),
        ("H_FILE_SIZE", us(header::FILE_SIZE)),
        ("H_LEVELS", us(header::LEVELS)),
        ("H_MAX_INSTRUMENTS", us(header::MAX_INSTRUMENTS)),
        ("H_DIR_OFFSET", us(header::DIR_OFFSET)),
        ("H_DIR_ENTRY_SIZE", us(header::DIR_ENTRY_SIZE)),
        ("H_SLOTS_OFFSET", us(header::SLOTS_OFFSET)),
        ("H_SLOT_SIZE", us(header::SLOT_SIZE)),
        ("H_TOP_OFFSET", us(header::TOP_OFFSET)),
        ("H_TOP_SIZE", us(header::TOP_SIZE)),
        ("H_TRADE_OFFSET", us(header::TRADE_OFFSET)),
        ("H_TRADE_SIZE", us(header::TRADE_SIZE)),
        ("H_TICKER_OFFSET", us(header::TICKER_OFFSET)),
        ("H_TICKER_SIZE", us(header::TICKER_SIZE)),
        ("H_DEPTH_OFFSET", us(header::DEPTH_OFFSET)),
        ("H_DEPTH_SIZE", us(header::DEPTH_SIZE)),
        ("H_WRITER_PID", us(header::WRITER_PID)),
        ("H_CREATED_NS", us(header::CREATED_NS)),
        ("H_INSTRUMENTS", us(header::INSTRUMENTS)),
        ("H_STATUS", us(header::STATUS)),
        ("H_GENERATION", us(header::GENERATION)),
        ("U_MONEY_SCALE", us(header::MONEY_SCALE)),
        ("U_PORTFOLIO_OFFSET", us(header::PORTFOLIO_OFFSET)),
        ("U_PORTFOLIO_SIZE", us(header::PORTFOLIO_SIZE)),
        ("U_POSITIONS_OFFSET", us(header::POSITIONS_OFFSET)),
        ("U_POSITIONS_SIZE", us(header::POSITIONS_SIZE)),
        ("U_POSITION_ENTRY_SIZE", us(header::POSITION_ENTRY_SIZE)),
        ("U_ORDERS_OFFSET", us(header::ORDERS_OFFSET)),
        ("U_ORDERS_SIZE", us(header::ORDERS_SIZE)),
        ("U_ORDER_ENTRY_SIZE", us(header::ORDER_ENTRY_SIZE)),
        ("U_WRITER_PID", us(header::USER_WRITER_PID)),
        ("U_CREATED_NS", us(header::USER_CREATED_NS)),
        ("U_USER_LEN", us(header::USER_LEN)),
        ("U_USER_NAME", us(header::USER_NAME)),
        ("DIR_ENTRY_SIZE", layout::DIR_ENTRY_SIZE),
        ("D_MARKET", us(layout::dir::MARKET)),
        ("D_PRICE_SCALE", us(layout::dir::PRICE_SCALE)),
        ("D_QTY_SCALE", us(layout::dir::QTY_SCALE)),
        ("D_SYMBOL_LEN", us(layout::dir::SYMBOL_LEN)),
        ("D_SYMBOL", us(layout::dir::SYMBOL)),
        ("MAX_SYMBOL", us(layout::MAX_SYMBOL)),
        ("SEQ", us(layout::SEQ)),
        ("TOP_SIZE", top::SIZE),
        ("TOP_UPDATE_ID", us(top::UPDATE_ID)),
        ("TOP_RECV_NS", us(top::RECV_NS)),
        ("TOP_BID_PRICE", us(top::BID_PRICE)),
        ("TOP_BID_QTY", us(top::BID_QTY)),
        ("TOP_ASK_PRICE", us(top::ASK_PRICE)),
        ("TOP_ASK_QTY", us(top::ASK_QTY)),
        ("TOP_STATE", us(top::STATE)),
        ("TOP_PRESENT", us(top::PRESENT)),
        ("TRADE_SIZE", layout::trade::SIZE),
        ("TRADE_TRADE_ID", us(layout::trade::TRADE_ID)),
        ("TRADE_RECV_NS", us(layout::trade::RECV_NS)),
        ("TRADE_PRICE", us(layout::trade::PRICE)),
        ("TRADE_QTY", us(layout::trade::QTY)),
        ("TRADE_TIME_MS", us(layout::trade::TRADE_TIME_MS)),
        ("TRADE_COUNT", us(layout::trade::COUNT)),
        ("TRADE_FLAGS", us(layout::trade::FLAGS)),
        ("TICKER_SIZE", layout::ticker::SIZE),
        ("TICKER_RECV_NS", us(layout::ticker::RECV_NS)),
        ("TICKER_EVENT_TIME_MS", us(layout::ticker::EVENT_TIME_MS)),
        ("TICKER_LAST", us(layout::ticker::LAST)),
        ("TICKER_OPEN", us(layout::ticker::OPEN)),
        ("TICKER_HIGH", us(layout::ticker::HIGH)),
        ("TICKER_LOW", us(layout::ticker::LOW)),
        ("TICKER_PRICE_CHANGE", us(layout::ticker::PRICE_CHANGE)),
        ("TICKER_CHANGE_PCT", us(layout::ticker::CHANGE_PCT)),
        ("TICKER_VOLUME", us(layout::ticker::VOLUME)),
        ("TICKER_QUOTE_VOLUME", us(layout::ticker::QUOTE_VOLUME)),
        ("TICKER_PCT_SCALE", us(layout::ticker::PCT_SCALE)),
        ("TICKER_VOLUME_SCALE", us(layout::ticker::VOLUME_SCALE)),
        (
            "TICKER_QUOTE_VOLUME_SCALE",
            us(layout::ticker::QUOTE_VOLUME_SCALE),
        ),
        ("TICKER_FLAGS", us(layout::ticker::FLAGS)),
        ("DEPTH_UPDATE_ID", us(layout::depth::UPDATE_ID)),
        ("DEPTH_RECV_NS", us(layout::depth::RECV_NS)),
        ("DEPTH_STATE", us(layout::depth::STATE)),
        ("DEPTH_BID_COUNT", us(layout::depth::BID_COUNT)),
        ("DEPTH_ASK_COUNT", us(layout::depth::ASK_COUNT)),
        ("DEPTH_LEVELS", us(layout::depth::LEVELS)),
        ("PORTFOLIO_SIZE", layout::portfolio::SIZE),
        ("TABLE_RECV_NS", us(layout::table::RECV_NS)),
        ("TABLE_COUNT", us(layout::table::COUNT)),
        ("TABLE_TOTAL", us(layout::table::TOTAL)),
        ("TABLE_ENTRIES", us(layout::table::ENTRIES)),
        ("POSITION_SIZE", layout::position::SIZE),
        ("ORDER_SIZE", layout::order::SIZE),
        ("BOOK_NONE", BookState::None as u64),
        ("BOOK_AWAITING_SNAPSHOT", BookState::AwaitingSnapshot as u64),
        ("BOOK_SNAPSHOT_LOADED", BookState::SnapshotLoaded as u64),
        ("BOOK_SYNCED", BookState::Synced as u64),
        ("BOOK_OUT_OF_SYNC", BookState::OutOfSync as u64),
        ("MAX_LEVELS", u64::from(layout::MAX_LEVELS)),
    ];
    for (name, v) in want {
        assert_eq!(get(name), *v, "TAPE_SHM_{name}");
    }
    // And nothing in the header that this test does not check.
    for (name, _) in &d {
        assert!(
            want.iter().any(|(n, _)| n == name),
            "TAPE_SHM_{name} is not checked against the Rust layout"
        );
    }
}

/// A market file with one known top of book, for the readers in other languages.
fn written(dir: &Path) -> (tape_shm::MarketWriter, Top) {
    let d = ShmDir::open(dir).unwrap();
    let mut w = d.create_market(&MarketOptions::default()).unwrap();
    std::mem::forget(d); // keep the directory locked for the test's life
    w.add_instrument(&InstrumentKey {
        market: MarketCode::Spot as u8,
        price_scale: 2,
        qty_scale: 8,
        symbol: Symbol::new("ETHUSDT"),
    });
    let slot = w
        .add_instrument(&InstrumentKey {
            market: MarketCode::CoinM as u8,
            price_scale: 1,
            qty_scale: 0,
            symbol: Symbol::new("BTCUSD_PERP"),
        })
        .unwrap();
    let t = Top {
        update_id: 1_007_198_692_020,
        recv_ns: 1_723_161_262_935_938_375,
        state: BookState::Synced,
        bid: Some(Level {
            price: 618_009,
            qty: 832,
        }),
        ask: Some(Level {
            price: -5,
            qty: 1975,
        }),
    };
    w.write_top(slot, &t);
    (w, t)
}

fn expected_line() -> serde_like::Obj {
    serde_like::Obj(vec![
        ("type", "\"top\"".into()),
        ("symbol", "\"coinm:BTCUSD_PERP\"".into()),
        ("state", "\"synced\"".into()),
        ("update_id", "1007198692020".into()),
        ("bid", "\"61800.9\"".into()),
        ("bid_qty", "\"832\"".into()),
        ("ask", "\"-0.5\"".into()),
        ("ask_qty", "\"1975\"".into()),
        ("recv_ns", "1723161262935938375".into()),
    ])
}

/// A tiny check of a flat JSON object's fields, so this crate needs no JSON dependency.
mod serde_like {
    pub struct Obj(pub Vec<(&'static str, String)>);

    impl Obj {
        /// Every field appears in `line` as `"key": value` or `"key":value`.
        pub fn check(&self, line: &str, who: &str) {
            for (k, v) in &self.0 {
                let a = format!("\"{k}\":{v}");
                let b = format!("\"{k}\": {v}");
                assert!(
                    line.contains(&a) || line.contains(&b),
                    "{who}: no {a} in {line}"
                );
            }
        }
    }
}

#[test]
fn the_c_reader_prints_what_was_written() {
    if Command::new("cc").arg("--version").output().is_err() {
        eprintln!("no cc here: the C reader is checked in CI (.ci/shm.sh)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shm");
    let (_w, _) = written(&dir);
    let bin = tmp.path().join("shm_reader");
    let out = Command::new("cc")
        .args(["-O2", "-std=c11", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(root().join("engine/shm"))
        .arg("-o")
        .arg(&bin)
        .arg(root().join("examples/shm_reader.c"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(&bin)
        .arg(&dir)
        .args(["coinm:BTCUSD_PERP", "--once", "--timeout", "5"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    expected_line().check(&String::from_utf8_lossy(&out.stdout), "C reader");
}

#[test]
fn the_python_reader_prints_what_was_written() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("no python3 here: the Python reader is checked in CI (.ci/shm.sh)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shm");
    let (_w, _) = written(&dir);
    let out = Command::new("python3")
        .arg(root().join("examples/shm_reader.py"))
        .arg(&dir)
        .args(["BTCUSD_PERP", "--once", "--timeout", "5"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    expected_line().check(&String::from_utf8_lossy(&out.stdout), "Python reader");
}
