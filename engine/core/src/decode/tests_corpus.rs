//! Decodes every Binance frame of the real captures, and fuzzes the decoder with proptest.
//!
//! The captures are the workspace's `fixtures/` (`hftbacktest/`, `cryptofeed/`); set
//! `TAPE_FIXTURES_REAL` to read them from elsewhere (e.g. the shared `fixtures-real`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use proptest::prelude::*;

use super::tests::{registry, FRAMES, USDM_DEPTH};
use super::*;
use crate::fixed::{Price, Qty};

pub(super) fn fixtures_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TAPE_FIXTURES_REAL") {
        return PathBuf::from(dir);
    }
    let manifest = env!("CARGO_MANIFEST_DIR");
    [
        format!("{manifest}/../../fixtures"),
        format!("{manifest}/../../../shared/fixtures-real"),
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.join("hftbacktest").is_dir())
    .expect("real captures not found: set TAPE_FIXTURES_REAL to a directory with hftbacktest/")
}

fn kind(msg: &MarketMsg<'_>) -> &'static str {
    match msg {
        MarketMsg::Depth(_) => "depth",
        MarketMsg::Snapshot(_) => "snapshot",
        MarketMsg::Trade(_) => "trade",
        MarketMsg::AggTrade(_) => "aggTrade",
        MarketMsg::BookTicker(_) => "bookTicker",
        MarketMsg::Ticker(_) => "ticker",
        MarketMsg::Unknown => "unknown",
    }
}

/// Per-symbol depth continuity, checked as a sanity test of the decoded ids.
#[derive(Default)]
struct Continuity {
    last_u: BTreeMap<InstrumentId, u64>,
}

impl Continuity {
    fn check(&mut self, market: Market, d: &crate::msg::DepthUpdate<'_>, at: &str) {
        if let Some(&prev) = self.last_u.get(&d.instrument) {
            if market.is_futures() {
                assert_eq!(d.prev_final_update_id, Some(prev), "pu gap at {at}");
            } else {
                assert_eq!(d.first_update_id, prev + 1, "U gap at {at}");
            }
        }
        assert!(d.first_update_id <= d.final_update_id, "U > u at {at}");
        self.last_u.insert(d.instrument, d.final_update_id);
    }
}

/// Checks a decoded message field by field against serde_json's reading of the same text.
fn oracle(json: &str, msg: &MarketMsg<'_>, r: &Registry, at: &str) {
    use crate::fixed::parse_fixed;
    use serde_json::Value;
    let v: Value = serde_json::from_str(json).unwrap();
    let data = if v.get("stream").is_some() {
        &v["data"]
    } else {
        &v
    };
    let n = |k: &str| data[k].as_u64().unwrap_or_else(|| panic!("{at}: {k}"));
    let on = |k: &str| data.get(k).map(|x| x.as_u64().unwrap());
    let fx = |x: &Value, scale| parse_fixed(x.as_str().unwrap().as_bytes(), scale).unwrap();
    let levels = |k: &str, ps, qs| -> Vec<Level> {
        data[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| Level {
                price: Price(fx(&l[0], ps)),
                qty: Qty(fx(&l[1], qs)),
            })
            .collect()
    };
    let scales = |id: InstrumentId| {
        let i = r.get(id);
        if let Some(s) = data.get("s") {
            assert!(s.as_str().unwrap().eq_ignore_ascii_case(&i.symbol), "{at}");
        }
        (i.price_scale, i.qty_scale)
    };
    match msg {
        MarketMsg::Depth(u) => {
            let (ps, qs) = scales(u.instrument);
            assert_eq!(
                (
                    u.event_time_ms,
                    u.transact_time_ms,
                    u.first_update_id,
                    u.final_update_id
                ),
                (n("E"), on("T"), n("U"), n("u")),
                "{at}"
            );
            assert_eq!(u.prev_final_update_id, on("pu"), "{at}");
            assert_eq!(u.bids, levels("b", ps, qs), "{at}");
            assert_eq!(u.asks, levels("a", ps, qs), "{at}");
        }
        MarketMsg::BookTicker(b) => {
            let (ps, qs) = scales(b.instrument);
            assert_eq!(
                (b.update_id, b.event_time_ms, b.transact_time_ms),
                (n("u"), on("E"), on("T")),
                "{at}"
            );
            assert_eq!(
                (b.bid_price.0, b.bid_qty.0, b.ask_price.0, b.ask_qty.0),
                (
                    fx(&data["b"], ps),
                    fx(&data["B"], qs),
                    fx(&data["a"], ps),
                    fx(&data["A"], qs)
                ),
                "{at}"
            );
        }
        MarketMsg::Trade(t) => {
            let (ps, qs) = scales(t.instrument);
            assert_eq!(
                (
                    t.event_time_ms,
                    t.trade_time_ms,
                    t.trade_id,
                    t.buyer_is_maker
                ),
                (n("E"), n("T"), n("t"), data["m"].as_bool().unwrap()),
                "{at}"
            );
            assert_eq!(
                (t.price.0, t.qty.0),
                (fx(&data["p"], ps), fx(&data["q"], qs)),
                "{at}"
            );
        }
        MarketMsg::AggTrade(t) => {
            let (ps, qs) = scales(t.instrument);
            assert_eq!(
                (
                    t.event_time_ms,
                    t.trade_time_ms,
                    t.agg_id,
                    t.first_trade_id,
                    t.last_trade_id
                ),
                (n("E"), n("T"), n("a"), n("f"), n("l")),
                "{at}"
            );
            assert_eq!(t.buyer_is_maker, data["m"].as_bool().unwrap(), "{at}");
            assert_eq!(
                (t.price.0, t.qty.0),
                (fx(&data["p"], ps), fx(&data["q"], qs)),
                "{at}"
            );
        }
        MarketMsg::Snapshot(s) => {
            let (ps, qs) = scales(s.instrument);
            assert_eq!(s.last_update_id, n("lastUpdateId"), "{at}");
            assert_eq!(
                (s.event_time_ms, s.transact_time_ms),
                (on("E"), on("T")),
                "{at}"
            );
            assert_eq!(s.bids, levels("bids", ps, qs), "{at}");
            assert_eq!(s.asks, levels("asks", ps, qs), "{at}");
        }
        MarketMsg::Ticker(_) => panic!("{at}: no tickers in the captures"),
        MarketMsg::Unknown => assert_eq!(data["e"], "kline", "{at}"),
    }
}

/// One hftbacktest capture file of a Binance market.
pub(super) struct Capture {
    /// The file's name.
    pub name: String,
    pub market: Market,
    /// The symbol its name carries: `cm_btcusd_perp_20240808...` -> `BTCUSD_PERP`.
    pub symbol: String,
    pub text: String,
}

impl Capture {
    /// The JSON of each line, its receive time stripped.
    pub fn jsons(&self) -> impl Iterator<Item = &str> {
        self.text.lines().map(|l| l.split_once(' ').unwrap().1)
    }
}

/// The hftbacktest capture files of the three markets, sorted by name.
pub(super) fn hftbacktest_captures() -> Vec<Capture> {
    let mut files: Vec<_> = std::fs::read_dir(fixtures_dir().join("hftbacktest"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let Some((prefix, rest)) = name.split_once('_') else {
            continue;
        };
        let market = match prefix {
            "spot" => Market::Spot,
            "usdm" => Market::UsdM,
            "cm" => Market::CoinM,
            _ => continue,
        };
        let symbol = rest.rsplit_once('_').unwrap().0.to_ascii_uppercase();
        let text = std::fs::read_to_string(&path).unwrap();
        out.push(Capture {
            name,
            market,
            symbol,
            text,
        });
    }
    out
}

#[test]
fn decodes_every_hftbacktest_binance_line() {
    // Counts from SOURCES.md: depth, bookTicker, trade, snapshot.
    let expected: [(&str, [usize; 4]); 5] = [
        (
            "spot_btcusdt_20240808.first2900lines.txt",
            [280, 2136, 483, 1],
        ),
        (
            "spot_ethusdt_20240808.first1000lines.txt",
            [98, 769, 132, 1],
        ),
        (
            "usdm_btcusdt_20240808.first3300lines.txt",
            [240, 2567, 492, 1],
        ),
        ("usdm_ethusdt_20240808.first800lines.txt", [96, 642, 61, 1]),
        (
            "cm_btcusd_perp_20240808.first900lines.txt",
            [502, 381, 16, 1],
        ),
    ];
    let mut seen = 0;
    for Capture {
        name,
        market,
        symbol,
        text,
    } in hftbacktest_captures()
    {
        let mut r = Registry::default();
        let mut d = Decoder::new();
        let c = DecodeCtx {
            market,
            auto_register: true,
        };
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        let mut cont = Continuity::default();
        for (n, line) in text.lines().enumerate() {
            let at = format!("{name}:{}", n + 1);
            let (_ts, json) = line.split_once(' ').unwrap();
            let top: serde_json::Map<String, serde_json::Value> = if json.starts_with("{\"stream\"")
            {
                serde_json::Map::new()
            } else {
                serde_json::from_str(json).unwrap()
            };
            let k = if top.contains_key("lastUpdateId") {
                let inst = r.lookup_or_register(market, symbol.as_bytes()).unwrap();
                let s = d
                    .decode_snapshot(json.as_bytes(), inst, &r)
                    .unwrap_or_else(|e| panic!("{at}: {e}"));
                assert_eq!(s.bids.len(), 1000, "{at}");
                assert_eq!(s.asks.len(), 1000, "{at}");
                assert!(s.bids[0].price < s.asks[0].price, "{at}");
                assert_eq!(s.event_time_ms.is_some(), market.is_futures(), "{at}");
                oracle(json, &MarketMsg::Snapshot(s), &r, &at);
                "snapshot"
            } else {
                let msg = d
                    .decode_frame(json.as_bytes(), c, &mut r)
                    .unwrap_or_else(|e| panic!("{at}: {e}"));
                match &msg {
                    MarketMsg::Depth(u) => cont.check(market, u, &at),
                    MarketMsg::BookTicker(b) => {
                        assert!(b.bid_price < b.ask_price, "{at}");
                        assert_eq!(b.event_time_ms.is_some(), market.is_futures(), "{at}");
                    }
                    MarketMsg::Trade(t) => assert!(t.is_market && t.qty.0 > 0, "{at}"),
                    _ => {}
                }
                oracle(json, &msg, &r, &at);
                kind(&msg)
            };
            *counts.entry(k).or_default() += 1;
        }
        assert_eq!(r.len(), 1, "{name}: one symbol per file");
        assert_eq!(r.iter().next().unwrap().symbol, symbol);
        let (_, want) = expected
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("unexpected fixture {name}"));
        let got = ["depth", "bookTicker", "trade", "snapshot"].map(|k| counts.get(k).copied());
        assert_eq!(got, want.map(Some), "{name}: {counts:?}");
        assert_eq!(counts.len(), 4, "{name}: {counts:?}");
        seen += 1;
    }
    assert_eq!(seen, expected.len());
}

#[test]
fn decodes_every_cryptofeed_binance_frame() {
    let dir = fixtures_dir().join("cryptofeed");
    for (file, market, want) in [
        ("BINANCE.ws.1.0", Market::Spot, [177, 84, 2, 2]),
        ("BINANCE_FUTURES.ws.1.0", Market::UsdM, [764, 613, 91, 67]),
    ] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let mut r = Registry::default();
        let mut d = Decoder::new();
        let c = DecodeCtx {
            market,
            auto_register: true,
        };
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        let mut cont = Continuity::default();
        for (n, line) in text.lines().enumerate().skip(1) {
            if line.is_empty() || line.contains(" <- ") {
                continue;
            }
            let at = format!("{file}:{}", n + 1);
            let (_ts, json) = line.split_once(": ").unwrap();
            let msg = d
                .decode_frame(json.as_bytes(), c, &mut r)
                .unwrap_or_else(|e| panic!("{at}: {e}"));
            if let MarketMsg::Depth(u) = &msg {
                cont.check(market, u, &at);
            }
            oracle(json, &msg, &r, &at);
            *counts.entry(kind(&msg)).or_default() += 1;
        }
        let got = ["depth", "bookTicker", "aggTrade", "unknown"].map(|k| counts.get(k).copied());
        assert_eq!(got, want.map(Some), "{file}: {counts:?}");
        assert_eq!(counts.len(), 4, "{file}: {counts:?}");
        assert_eq!(r.len(), 4, "{file}: four symbols");
    }
}

/// A real frame with some bytes overwritten and maybe cut short.
fn mutated_frame() -> impl Strategy<Value = (Market, Vec<u8>)> {
    (
        0..FRAMES.len(),
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        proptest::option::of(any::<prop::sample::Index>()),
    )
        .prop_map(|(i, flips, cut)| {
            let (m, f) = FRAMES[i];
            let mut b = f.as_bytes().to_vec();
            for (at, byte) in flips {
                let at = at.index(b.len());
                b[at] = byte;
            }
            if let Some(cut) = cut {
                b.truncate(cut.index(b.len() + 1));
            }
            (m, b)
        })
}

/// JSON-ish bytes: structural characters and fragments that steer simd-json and the walker
/// into deeper states than uniform random bytes do.
fn jsonish() -> impl Strategy<Value = Vec<u8>> {
    let atoms = prop::sample::select(vec![
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"",
        "\"e\"",
        "\"s\"",
        "\"b\"",
        "\"a\"",
        "\"u\"",
        "\"data\"",
        "\"stream\"",
        "\"depthUpdate\"",
        "\"bookTicker\"",
        "\"trade\"",
        "\"ETHUSDT\"",
        "\"1.5\"",
        "1",
        "-1",
        "1.5",
        "null",
        "true",
        "\\",
        "\"\\u0041\"",
        "[\"1\",\"2\"]",
    ]);
    proptest::collection::vec(atoms, 0..40).prop_map(|v| v.concat().into_bytes())
}

fn check_survives(d: &mut Decoder, r: &mut Registry, market: Market, bytes: &[u8]) {
    for auto_register in [false, true] {
        let c = DecodeCtx {
            market,
            auto_register,
        };
        if let Err(e) = d.decode_frame(bytes, c, r) {
            // Every error renders and has a code.
            assert!(!e.to_string().is_empty() && !e.code().is_empty());
        }
    }
    let inst = InstrumentId(0);
    let _ = d.decode_snapshot(bytes, inst, r);
    // The decoder is still usable afterwards.
    let ok = d.decode_frame(
        USDM_DEPTH.as_bytes(),
        DecodeCtx {
            market: Market::UsdM,
            auto_register: false,
        },
        r,
    );
    assert!(matches!(ok, Ok(MarketMsg::Depth(u)) if u.bids.len() == 11));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut r = registry();
        let mut d = Decoder::new();
        check_survives(&mut d, &mut r, Market::Spot, &bytes);
    }

    #[test]
    fn jsonish_bytes_never_panic(bytes in jsonish()) {
        let mut r = registry();
        let mut d = Decoder::new();
        check_survives(&mut d, &mut r, Market::UsdM, &bytes);
    }

    #[test]
    fn mutated_real_frames_never_panic((market, bytes) in mutated_frame()) {
        let mut r = registry();
        let mut d = Decoder::new();
        check_survives(&mut d, &mut r, market, &bytes);
    }
}
