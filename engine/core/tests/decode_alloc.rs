//! Proves the Binance decoders allocate nothing per frame in steady state: every kind of frame
//! is decoded once to grow the buffers, then again under an allocation counter.

use tape_core::decode::{DecodeCtx, DecodeError, Decoder};
use tape_core::instrument::{Market, Registry};
use tape_core::msg::MarketMsg;

mod support;

use support::alloc::{allocs, Counting};

#[global_allocator]
static GLOBAL: Counting = Counting;

// Real frames (hftbacktest 2024-08-08, cryptofeed 2021) and, for tickers, realistic ones.
const FRAMES: &[(Market, &str, &str)] = &[
    (
        Market::UsdM,
        "depth",
        r#"{"stream":"ethusdt@depth@0ms","data":{"e":"depthUpdate","E":1723161257860,"T":1723161257857,"s":"ETHUSDT","U":5123107956258,"u":5123107958069,"pu":5123107956167,"b":[["707.81","0.000"],["804.49","0.165"],["2673.85","0.209"],["2675.50","2.745"],["2678.87","0.714"],["2679.06","135.207"],["2679.08","1.029"],["2679.63","0.085"],["2681.32","0.215"],["2681.34","0.204"],["2681.35","3.742"]],"a":[["2682.08","4.028"],["2682.16","4.485"],["2682.18","0.942"],["2682.53","0.500"]]}}"#,
    ),
    (
        Market::Spot,
        "depth",
        r#"{"stream":"ethusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161260811,"s":"ETHUSDT","U":35346516324,"u":35346516324,"b":[["2681.51000000","0.00000000"]],"a":[]}}"#,
    ),
    (
        Market::CoinM,
        "depth",
        r#"{"stream":"btcusd_perp@depth@0ms","data":{"e":"depthUpdate","E":1723161257592,"T":1723161257584,"s":"BTCUSD_PERP","ps":"BTCUSD","U":1007198633112,"u":1007198633201,"pu":1007198633084,"b":[],"a":[["61802.0","0"]]}}"#,
    ),
    (
        Market::Spot,
        "bookTicker",
        r#"{"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}"#,
    ),
    (
        Market::UsdM,
        "bookTicker",
        r#"{"stream":"ethusdt@bookTicker","data":{"e":"bookTicker","u":5123107838717,"s":"ETHUSDT","b":"2681.62","B":"1.165","a":"2681.63","A":"73.077","T":1723161256310,"E":1723161256311}}"#,
    ),
    (
        Market::CoinM,
        "bookTicker",
        r#"{"stream":"btcusd_perp@bookTicker","data":{"u":1007198632021,"e":"bookTicker","s":"BTCUSD_PERP","ps":"BTCUSD","b":"61804.7","B":"35","a":"61804.8","A":"1645","T":1723161257465,"E":1723161257476}}"#,
    ),
    (
        Market::Spot,
        "trade",
        r#"{"stream":"ethusdt@trade","data":{"e":"trade","E":1723161255612,"s":"ETHUSDT","t":1520538925,"p":"2683.80000000","q":"0.00200000","T":1723161255611,"m":true,"M":true}}"#,
    ),
    (
        Market::Spot,
        "trade",
        r#"{"stream":"ethusdt@trade","data":{"e":"trade","E":1639351062244,"s":"ETHUSDT","t":705291099,"p":"4149.74000000","q":"0.43870000","b":7038593583,"a":7038593613,"T":1639351062243,"m":true,"M":true}}"#,
    ),
    (
        Market::UsdM,
        "trade",
        r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161256322,"T":1723161256322,"s":"BTCUSDT","t":5266583935,"p":"61800.30","q":"0.006","X":"MARKET","m":false}}"#,
    ),
    (
        Market::Spot,
        "aggTrade",
        r#"{"stream":"nknusdt@aggTrade","data":{"e":"aggTrade","E":1633998523963,"s":"NKNUSDT","a":15683430,"p":"0.35280000","q":"58.00000000","f":19862790,"l":19862790,"T":1633998523963,"m":false,"M":true}}"#,
    ),
    (
        Market::UsdM,
        "aggTrade",
        r#"{"stream":"ctkusdt@aggTrade","data":{"e":"aggTrade","E":1626992741575,"a":16599292,"s":"CTKUSDT","p":"1.01100","q":"10","f":23961322,"l":23961322,"T":1626992741421,"m":false}}"#,
    ),
    (
        Market::Spot,
        "ticker",
        r#"{"stream":"ethusdt@ticker","data":{"e":"24hrTicker","E":1723161260000,"s":"ETHUSDT","p":"-45.12000000","P":"-1.654","w":"2701.33710214","x":"2726.91000000","c":"2681.79000000","Q":"0.04110000","b":"2681.78000000","B":"22.45680000","a":"2681.79000000","A":"3.91540000","o":"2726.91000000","h":"2760.00000000","l":"2651.00000000","v":"412398.60550000","q":"1114009857.57893810","O":1723074860000,"C":1723161259999,"F":1520001234,"L":1520540123,"n":538890}}"#,
    ),
    (
        Market::Spot,
        "ticker",
        r#"{"stream":"btcusdt@miniTicker","data":{"e":"24hrMiniTicker","E":1723161262000,"s":"BTCUSDT","c":"61837.63000000","o":"61000.00000000","h":"62745.00000000","l":"60500.00000000","v":"38051.90000000","q":"2349961423.87000000"}}"#,
    ),
    (
        Market::UsdM,
        "unknown",
        r#"{"stream":"ctkusdt@kline_1m","data":{"e":"kline","E":1626992741424,"s":"CTKUSDT","k":{"t":1626992700000,"T":1626992759999,"s":"CTKUSDT","i":"1m","f":23961275,"L":23961322,"o":"1.01000","c":"1.01100","h":"1.01100","l":"1.01000","v":"3917","n":48,"x":false,"q":"3957.89900","V":"1729","Q":"1748.01900","B":"0"}}}"#,
    ),
    (Market::Spot, "unknown", r#"{"result":null,"id":1}"#),
];

const SNAPSHOTS: &[(Market, &str, &str)] = &[
    (
        Market::Spot,
        "BTCUSDT",
        r#"{"lastUpdateId":50093239218,"bids":[["61837.63000000","3.78826000"],["61837.62000000","0.61700000"],["61837.24000000","0.10610000"]],"asks":[["61837.64000000","1.54698000"],["61837.65000000","0.00843000"],["61837.68000000","0.00016000"]]}"#,
    ),
    (
        Market::UsdM,
        "BTCUSDT",
        r#"{"lastUpdateId":5123107852948,"E":1723161256501,"T":1723161256493,"bids":[["61800.20","2.909"],["61800.10","0.696"],["61800.00","20.004"]],"asks":[["61800.30","1.072"],["61800.70","0.002"],["61801.00","0.003"]]}"#,
    ),
    (
        Market::CoinM,
        "BTCUSD_PERP",
        r#"{"lastUpdateId":1007198635033,"E":1723161257835,"T":1723161257823,"symbol":"BTCUSD_PERP","pair":"BTCUSD","bids":[["61804.7","35"],["61802.0","8"],["61800.8","53"]],"asks":[["61804.8","1645"],["61805.1","1"],["61805.2","45"]]}"#,
    ),
];

/// Peer faults whose errors carry only static context, so rejecting them allocates nothing
/// either (malformed JSON and symbol errors carry strings and do allocate).
const REJECTED: &[(&str, &str)] = &[
    ("not_object", "null"),
    ("not_object", "[]"),
    ("missing_field", r#"{"e":"trade","E":1,"s":"ETHUSDT"}"#),
    ("wrong_type", r#"{"e":"trade","E":"1","s":"ETHUSDT"}"#),
    (
        "bad_number",
        r#"{"u":1,"s":"BTCUSDT","b":"x","B":"1","a":"1","A":"1"}"#,
    ),
];

fn kind(m: &MarketMsg<'_>) -> &'static str {
    match m {
        MarketMsg::Depth(_) => "depth",
        MarketMsg::Snapshot(_) => "snapshot",
        MarketMsg::Trade(_) => "trade",
        MarketMsg::AggTrade(_) => "aggTrade",
        MarketMsg::BookTicker(_) => "bookTicker",
        MarketMsg::Ticker(_) => "ticker",
        MarketMsg::Unknown => "unknown",
    }
}

/// Decodes everything once; returns how many allocations that took.
fn pass(d: &mut Decoder, r: &mut Registry, auto_register: bool) -> u64 {
    let before = allocs();
    for &(market, want, frame) in FRAMES {
        let ctx = DecodeCtx {
            market,
            auto_register,
        };
        let msg = d.decode_frame(frame.as_bytes(), ctx, r);
        assert_eq!(msg.map(|m| kind(&m)), Ok(want), "{frame}");
    }
    for &(market, symbol, body) in SNAPSHOTS {
        let id = r.lookup(market, symbol.as_bytes()).unwrap();
        assert_eq!(
            d.decode_snapshot(body.as_bytes(), id, r)
                .unwrap()
                .bids
                .len(),
            3
        );
    }
    for &(code, frame) in REJECTED {
        let ctx = DecodeCtx {
            market: Market::Spot,
            auto_register,
        };
        let err = d.decode_frame(frame.as_bytes(), ctx, r).map(|_| ());
        assert_eq!(err.map_err(|e: DecodeError| e.code()), Err(code), "{frame}");
    }
    allocs() - before
}

#[test]
fn steady_state_decoding_allocates_nothing() {
    let mut r = Registry::default();
    for (m, s, p, q) in [
        (Market::Spot, "ETHUSDT", 2, 4),
        (Market::Spot, "BTCUSDT", 2, 5),
        (Market::Spot, "NKNUSDT", 4, 1),
        (Market::UsdM, "ETHUSDT", 2, 3),
        (Market::UsdM, "BTCUSDT", 2, 3),
        (Market::UsdM, "CTKUSDT", 5, 0),
        (Market::CoinM, "BTCUSD_PERP", 1, 0),
    ] {
        r.register(m, s, p, q).unwrap();
    }
    let mut d = Decoder::new();
    // Sanity check that the counter works at all.
    let before = allocs();
    drop(std::hint::black_box(vec![0u8; 64]));
    assert_eq!(allocs() - before, 1);

    pass(&mut d, &mut r, false);
    assert_eq!(pass(&mut d, &mut r, false), 0, "second pass allocated");
    // Known symbols with auto-registration on take the same allocation-free lookup.
    assert_eq!(
        pass(&mut d, &mut r, true),
        0,
        "auto-register pass allocated"
    );
}

#[test]
fn buffers_grow_once_then_stay() {
    // A frame larger than the initial capacities (300 levels per side).
    let level = r#"["61800.20","2.909"],"#.repeat(300);
    let level = level.trim_end_matches(',');
    let big = format!(
        r#"{{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":1,"u":2,"pu":0,"b":[{level}],"a":[{level}]}}"#
    );
    let mut r = Registry::default();
    let mut d = Decoder::new();
    let ctx = DecodeCtx {
        market: Market::UsdM,
        auto_register: true,
    };
    for round in 0..3 {
        let before = allocs();
        match d.decode_frame(big.as_bytes(), ctx, &mut r) {
            Ok(MarketMsg::Depth(u)) => assert_eq!((u.bids.len(), u.asks.len()), (300, 300)),
            other => panic!("{other:?}"),
        }
        if round > 0 {
            assert_eq!(allocs() - before, 0, "round {round}");
        }
    }
}
