//! Unit tests with literal frames. Lines marked "real" are copied byte for byte from
//! /work/shared/fixtures-real (hftbacktest 2024-08-08, cryptofeed 2021); the others are
//! written from Binance's documented shapes with realistic values.

use super::*;
use crate::fixed::{Decimal, Price, Qty};
use crate::msg::{AggTrade, BookTicker, DepthSnapshot, DepthUpdate, Ticker, Trade};

// real: hftbacktest spot_ethusdt
pub(super) const SPOT_DEPTH: &str = r#"{"stream":"ethusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161260811,"s":"ETHUSDT","U":35346516324,"u":35346516324,"b":[["2681.51000000","0.00000000"]],"a":[]}}"#;
// real: cryptofeed BINANCE.ws.1.0
pub(super) const SPOT_DEPTH_NKN: &str = r#"{"stream":"nknusdt@depth@100ms","data":{"e":"depthUpdate","E":1633998512068,"s":"NKNUSDT","U":499869750,"u":499869752,"b":[["0.35130000","6195.00000000"],["0.34750000","5548.00000000"],["0.34640000","6222.00000000"]],"a":[]}}"#;
// real: hftbacktest usdm_ethusdt
pub(super) const USDM_DEPTH: &str = r#"{"stream":"ethusdt@depth@0ms","data":{"e":"depthUpdate","E":1723161257860,"T":1723161257857,"s":"ETHUSDT","U":5123107956258,"u":5123107958069,"pu":5123107956167,"b":[["707.81","0.000"],["804.49","0.165"],["2673.85","0.209"],["2675.50","2.745"],["2678.87","0.714"],["2679.06","135.207"],["2679.08","1.029"],["2679.63","0.085"],["2681.32","0.215"],["2681.34","0.204"],["2681.35","3.742"]],"a":[["2682.08","4.028"],["2682.16","4.485"],["2682.18","0.942"],["2682.53","0.500"]]}}"#;
// real: hftbacktest cm_btcusd_perp
pub(super) const CM_DEPTH: &str = r#"{"stream":"btcusd_perp@depth@0ms","data":{"e":"depthUpdate","E":1723161257592,"T":1723161257584,"s":"BTCUSD_PERP","ps":"BTCUSD","U":1007198633112,"u":1007198633201,"pu":1007198633084,"b":[],"a":[["61802.0","0"]]}}"#;
// real: hftbacktest spot_btcusdt (no e/E/T)
pub(super) const SPOT_BOOK_TICKER: &str = r#"{"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}"#;
// real: hftbacktest usdm_ethusdt
pub(super) const USDM_BOOK_TICKER: &str = r#"{"stream":"ethusdt@bookTicker","data":{"e":"bookTicker","u":5123107838717,"s":"ETHUSDT","b":"2681.62","B":"1.165","a":"2681.63","A":"73.077","T":1723161256310,"E":1723161256311}}"#;
// real: hftbacktest cm_btcusd_perp (u first, ps)
pub(super) const CM_BOOK_TICKER: &str = r#"{"stream":"btcusd_perp@bookTicker","data":{"u":1007198632021,"e":"bookTicker","s":"BTCUSD_PERP","ps":"BTCUSD","b":"61804.7","B":"35","a":"61804.8","A":"1645","T":1723161257465,"E":1723161257476}}"#;
// real: hftbacktest spot_ethusdt
pub(super) const SPOT_TRADE: &str = r#"{"stream":"ethusdt@trade","data":{"e":"trade","E":1723161255612,"s":"ETHUSDT","t":1520538925,"p":"2683.80000000","q":"0.00200000","T":1723161255611,"m":true,"M":true}}"#;
// real values, nautilus ws_spot_trade.json with its pretty-printing removed (legacy b/a)
pub(super) const SPOT_TRADE_LEGACY: &str = r#"{"stream":"ethusdt@trade","data":{"e":"trade","E":1639351062244,"s":"ETHUSDT","t":705291099,"p":"4149.74000000","q":"0.43870000","b":7038593583,"a":7038593613,"T":1639351062243,"m":true,"M":true}}"#;
// real: hftbacktest usdm_btcusdt
pub(super) const USDM_TRADE: &str = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161256322,"T":1723161256322,"s":"BTCUSDT","t":5266583935,"p":"61800.30","q":"0.006","X":"MARKET","m":false}}"#;
// real: hftbacktest cm_btcusd_perp
pub(super) const CM_TRADE: &str = r#"{"stream":"btcusd_perp@trade","data":{"e":"trade","E":1723161257687,"T":1723161257679,"s":"BTCUSD_PERP","t":849714402,"p":"61804.8","q":"4","X":"MARKET","m":false}}"#;
// real: cryptofeed BINANCE.ws.1.0 (spot, with M)
pub(super) const SPOT_AGG_TRADE: &str = r#"{"stream":"nknusdt@aggTrade","data":{"e":"aggTrade","E":1633998523963,"s":"NKNUSDT","a":15683430,"p":"0.35280000","q":"58.00000000","f":19862790,"l":19862790,"T":1633998523963,"m":false,"M":true}}"#;
// real: cryptofeed BINANCE_FUTURES.ws.1.0 (no M)
pub(super) const USDM_AGG_TRADE: &str = r#"{"stream":"ctkusdt@aggTrade","data":{"e":"aggTrade","E":1626992741575,"a":16599292,"s":"CTKUSDT","p":"1.01100","q":"10","f":23961322,"l":23961322,"T":1626992741421,"m":false}}"#;
// written: spot full ticker (c - o == p)
pub(super) const SPOT_TICKER: &str = r#"{"stream":"ethusdt@ticker","data":{"e":"24hrTicker","E":1723161260000,"s":"ETHUSDT","p":"-45.12000000","P":"-1.654","w":"2701.33710214","x":"2726.91000000","c":"2681.79000000","Q":"0.04110000","b":"2681.78000000","B":"22.45680000","a":"2681.79000000","A":"3.91540000","o":"2726.91000000","h":"2760.00000000","l":"2651.00000000","v":"412398.60550000","q":"1114009857.57893810","O":1723074860000,"C":1723161259999,"F":1520001234,"L":1520540123,"n":538890}}"#;
// written: USD-M full ticker (no x/b/B/a/A), bare event
pub(super) const USDM_TICKER: &str = r#"{"e":"24hrTicker","E":1723161261000,"s":"BTCUSDT","p":"-1133.20","P":"-1.800","w":"61994.04","c":"61800.30","Q":"0.006","o":"62933.50","h":"63080.00","l":"60700.00","v":"290813.432","q":"18028626713.83","O":1723074840000,"C":1723161260999,"F":5245381130,"L":5266583935,"n":4173812}"#;
// written: spot mini ticker
pub(super) const SPOT_MINI_TICKER: &str = r#"{"stream":"btcusdt@miniTicker","data":{"e":"24hrMiniTicker","E":1723161262000,"s":"BTCUSDT","c":"61837.63000000","o":"61000.00000000","h":"62745.00000000","l":"60500.00000000","v":"38051.90000000","q":"2349961423.87000000"}}"#;
// real: cryptofeed BINANCE_FUTURES.ws.1.0
pub(super) const USDM_KLINE: &str = r#"{"stream":"ctkusdt@kline_1m","data":{"e":"kline","E":1626992741424,"s":"CTKUSDT","k":{"t":1626992700000,"T":1626992759999,"s":"CTKUSDT","i":"1m","f":23961275,"L":23961322,"o":"1.01000","c":"1.01100","h":"1.01100","l":"1.01000","v":"3917","n":48,"x":false,"q":"3957.89900","V":"1729","Q":"1748.01900","B":"0"}}}"#;
// real snapshots cut to their first three levels per side (keys exactly as received)
pub(super) const SPOT_SNAPSHOT: &str = r#"{"lastUpdateId":50093239218,"bids":[["61837.63000000","3.78826000"],["61837.62000000","0.61700000"],["61837.24000000","0.10610000"]],"asks":[["61837.64000000","1.54698000"],["61837.65000000","0.00843000"],["61837.68000000","0.00016000"]]}"#;
pub(super) const USDM_SNAPSHOT: &str = r#"{"lastUpdateId":5123107852948,"E":1723161256501,"T":1723161256493,"bids":[["61800.20","2.909"],["61800.10","0.696"],["61800.00","20.004"]],"asks":[["61800.30","1.072"],["61800.70","0.002"],["61801.00","0.003"]]}"#;
pub(super) const CM_SNAPSHOT: &str = r#"{"lastUpdateId":1007198635033,"E":1723161257835,"T":1723161257823,"symbol":"BTCUSD_PERP","pair":"BTCUSD","bids":[["61804.7","35"],["61802.0","8"],["61800.8","53"]],"asks":[["61804.8","1645"],["61805.1","1"],["61805.2","45"]]}"#;

/// Every literal WebSocket frame above, with the market it arrived on.
pub(super) const FRAMES: &[(Market, &str)] = &[
    (Market::Spot, SPOT_DEPTH),
    (Market::Spot, SPOT_DEPTH_NKN),
    (Market::UsdM, USDM_DEPTH),
    (Market::CoinM, CM_DEPTH),
    (Market::Spot, SPOT_BOOK_TICKER),
    (Market::UsdM, USDM_BOOK_TICKER),
    (Market::CoinM, CM_BOOK_TICKER),
    (Market::Spot, SPOT_TRADE),
    (Market::Spot, SPOT_TRADE_LEGACY),
    (Market::UsdM, USDM_TRADE),
    (Market::CoinM, CM_TRADE),
    (Market::Spot, SPOT_AGG_TRADE),
    (Market::UsdM, USDM_AGG_TRADE),
    (Market::Spot, SPOT_TICKER),
    (Market::UsdM, USDM_TICKER),
    (Market::Spot, SPOT_MINI_TICKER),
    (Market::UsdM, USDM_KLINE),
];

/// Registers the literal frames' instruments at their real exchange precisions.
pub(super) fn registry() -> Registry {
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
    r
}

pub(super) fn ctx(market: Market) -> DecodeCtx {
    DecodeCtx {
        market,
        auto_register: false,
    }
}

pub(super) fn id(r: &Registry, m: Market, s: &str) -> InstrumentId {
    r.lookup(m, s.as_bytes()).unwrap()
}

fn lv(price: i64, qty: i64) -> Level {
    Level {
        price: Price(price),
        qty: Qty(qty),
    }
}

fn dec(mantissa: i64, scale: u8) -> Decimal {
    Decimal { mantissa, scale }
}

/// Decodes one frame with a fresh decoder and an owned copy of the result's levels.
pub(super) fn frame(
    r: &mut Registry,
    m: Market,
    s: &str,
) -> Result<MarketMsg<'static>, DecodeError> {
    let mut d = Decoder::new();
    let msg = d.decode_frame(s.as_bytes(), ctx(m), r)?;
    Ok(match msg {
        MarketMsg::Depth(u) => MarketMsg::Depth(DepthUpdate {
            bids: u.bids.to_vec().leak(),
            asks: u.asks.to_vec().leak(),
            ..u
        }),
        MarketMsg::Snapshot(_) => unreachable!("frames never decode to snapshots"),
        MarketMsg::Trade(t) => MarketMsg::Trade(t),
        MarketMsg::AggTrade(t) => MarketMsg::AggTrade(t),
        MarketMsg::BookTicker(t) => MarketMsg::BookTicker(t),
        MarketMsg::Ticker(t) => MarketMsg::Ticker(t),
        MarketMsg::Unknown => MarketMsg::Unknown,
    })
}

#[test]
fn spot_depth_update() {
    let mut r = registry();
    let eth = id(&r, Market::Spot, "ETHUSDT");
    assert_eq!(
        frame(&mut r, Market::Spot, SPOT_DEPTH).unwrap(),
        MarketMsg::Depth(DepthUpdate {
            instrument: eth,
            event_time_ms: 1723161260811,
            transact_time_ms: None,
            first_update_id: 35346516324,
            final_update_id: 35346516324,
            prev_final_update_id: None,
            bids: &[lv(268151, 0)],
            asks: &[],
        })
    );
    let nkn = id(&r, Market::Spot, "NKNUSDT");
    assert_eq!(
        frame(&mut r, Market::Spot, SPOT_DEPTH_NKN).unwrap(),
        MarketMsg::Depth(DepthUpdate {
            instrument: nkn,
            event_time_ms: 1633998512068,
            transact_time_ms: None,
            first_update_id: 499869750,
            final_update_id: 499869752,
            prev_final_update_id: None,
            bids: &[lv(3513, 61950), lv(3475, 55480), lv(3464, 62220)],
            asks: &[],
        })
    );
}

#[test]
fn usdm_depth_update() {
    let mut r = registry();
    let eth = id(&r, Market::UsdM, "ETHUSDT");
    assert_eq!(
        frame(&mut r, Market::UsdM, USDM_DEPTH).unwrap(),
        MarketMsg::Depth(DepthUpdate {
            instrument: eth,
            event_time_ms: 1723161257860,
            transact_time_ms: Some(1723161257857),
            first_update_id: 5123107956258,
            final_update_id: 5123107958069,
            prev_final_update_id: Some(5123107956167),
            bids: &[
                lv(70781, 0),
                lv(80449, 165),
                lv(267385, 209),
                lv(267550, 2745),
                lv(267887, 714),
                lv(267906, 135207),
                lv(267908, 1029),
                lv(267963, 85),
                lv(268132, 215),
                lv(268134, 204),
                lv(268135, 3742),
            ],
            asks: &[
                lv(268208, 4028),
                lv(268216, 4485),
                lv(268218, 942),
                lv(268253, 500)
            ],
        })
    );
}

#[test]
fn coinm_depth_update() {
    let mut r = registry();
    let btc = id(&r, Market::CoinM, "BTCUSD_PERP");
    assert_eq!(
        frame(&mut r, Market::CoinM, CM_DEPTH).unwrap(),
        MarketMsg::Depth(DepthUpdate {
            instrument: btc,
            event_time_ms: 1723161257592,
            transact_time_ms: Some(1723161257584),
            first_update_id: 1007198633112,
            final_update_id: 1007198633201,
            prev_final_update_id: Some(1007198633084),
            bids: &[],
            asks: &[lv(618020, 0)],
        })
    );
}

#[test]
fn book_tickers_all_markets() {
    let mut r = registry();
    let spot = id(&r, Market::Spot, "BTCUSDT");
    assert_eq!(
        frame(&mut r, Market::Spot, SPOT_BOOK_TICKER).unwrap(),
        MarketMsg::BookTicker(BookTicker {
            instrument: spot,
            update_id: 50093239212,
            event_time_ms: None,
            transact_time_ms: None,
            bid_price: Price(6183763),
            bid_qty: Qty(378826),
            ask_price: Price(6183764),
            ask_qty: Qty(154698),
        })
    );
    let usdm = id(&r, Market::UsdM, "ETHUSDT");
    assert_eq!(
        frame(&mut r, Market::UsdM, USDM_BOOK_TICKER).unwrap(),
        MarketMsg::BookTicker(BookTicker {
            instrument: usdm,
            update_id: 5123107838717,
            event_time_ms: Some(1723161256311),
            transact_time_ms: Some(1723161256310),
            bid_price: Price(268162),
            bid_qty: Qty(1165),
            ask_price: Price(268163),
            ask_qty: Qty(73077),
        })
    );
    let cm = id(&r, Market::CoinM, "BTCUSD_PERP");
    assert_eq!(
        frame(&mut r, Market::CoinM, CM_BOOK_TICKER).unwrap(),
        MarketMsg::BookTicker(BookTicker {
            instrument: cm,
            update_id: 1007198632021,
            event_time_ms: Some(1723161257476),
            transact_time_ms: Some(1723161257465),
            bid_price: Price(618047),
            bid_qty: Qty(35),
            ask_price: Price(618048),
            ask_qty: Qty(1645),
        })
    );
}

#[test]
fn key_order_does_not_matter() {
    let mut r = registry();
    let reversed = r#"{"A":"1.54698000","a":"61837.64000000","B":"3.78826000","b":"61837.63000000","s":"BTCUSDT","u":50093239212}"#;
    let wrapped = frame(&mut r, Market::Spot, SPOT_BOOK_TICKER).unwrap();
    assert_eq!(frame(&mut r, Market::Spot, reversed).unwrap(), wrapped);
    // Unused keys holding nested values before and after the wanted ones are skipped.
    let nested = r#"{"x":{"k":[1,{"s":"NOPE"}],"u":[]},"u":50093239212,"s":"BTCUSDT","y":[[["a"]]],"b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54698000","z":{}}"#;
    assert_eq!(frame(&mut r, Market::Spot, nested).unwrap(), wrapped);
}

#[test]
fn trades_all_markets() {
    let mut r = registry();
    let spot = id(&r, Market::Spot, "ETHUSDT");
    assert_eq!(
        frame(&mut r, Market::Spot, SPOT_TRADE).unwrap(),
        MarketMsg::Trade(Trade {
            instrument: spot,
            event_time_ms: 1723161255612,
            trade_time_ms: 1723161255611,
            trade_id: 1520538925,
            price: Price(268380),
            qty: Qty(20),
            buyer_is_maker: true,
            buyer_order_id: None,
            seller_order_id: None,
            is_market: true,
        })
    );
    let legacy = Trade {
        instrument: spot,
        event_time_ms: 1639351062244,
        trade_time_ms: 1639351062243,
        trade_id: 705291099,
        price: Price(414974),
        qty: Qty(4387),
        buyer_is_maker: true,
        buyer_order_id: Some(7038593583),
        seller_order_id: Some(7038593613),
        is_market: true,
    };
    assert_eq!(
        frame(&mut r, Market::Spot, SPOT_TRADE_LEGACY).unwrap(),
        MarketMsg::Trade(legacy)
    );
    // The nautilus file as stored, pretty-printed.
    let pretty = "{\n  \"stream\":\"ethusdt@trade\",\n  \"data\":{\n    \"e\":\"trade\",\n    \"E\":1639351062244,\n    \"s\":\"ETHUSDT\",\n    \"t\":705291099,\n    \"p\":\"4149.74000000\",\n    \"q\":\"0.43870000\",\n    \"b\":7038593583,\n    \"a\":7038593613,\n    \"T\":1639351062243,\n    \"m\":true,\n    \"M\":true\n  }\n}\n";
    assert_eq!(
        frame(&mut r, Market::Spot, pretty).unwrap(),
        MarketMsg::Trade(legacy)
    );
    let usdm = id(&r, Market::UsdM, "BTCUSDT");
    let usdm_trade = Trade {
        instrument: usdm,
        event_time_ms: 1723161256322,
        trade_time_ms: 1723161256322,
        trade_id: 5266583935,
        price: Price(6180030),
        qty: Qty(6),
        buyer_is_maker: false,
        buyer_order_id: None,
        seller_order_id: None,
        is_market: true,
    };
    assert_eq!(
        frame(&mut r, Market::UsdM, USDM_TRADE).unwrap(),
        MarketMsg::Trade(usdm_trade)
    );
    let insurance = USDM_TRADE.replace("\"MARKET\"", "\"INSURANCE_FUND\"");
    assert_eq!(
        frame(&mut r, Market::UsdM, &insurance).unwrap(),
        MarketMsg::Trade(Trade {
            is_market: false,
            ..usdm_trade
        })
    );
    let cm = id(&r, Market::CoinM, "BTCUSD_PERP");
    assert_eq!(
        frame(&mut r, Market::CoinM, CM_TRADE).unwrap(),
        MarketMsg::Trade(Trade {
            instrument: cm,
            event_time_ms: 1723161257687,
            trade_time_ms: 1723161257679,
            trade_id: 849714402,
            price: Price(618048),
            qty: Qty(4),
            buyer_is_maker: false,
            buyer_order_id: None,
            seller_order_id: None,
            is_market: true,
        })
    );
}

#[test]
fn agg_trades_spot_and_futures() {
    let mut r = registry();
    let nkn = id(&r, Market::Spot, "NKNUSDT");
    assert_eq!(
        frame(&mut r, Market::Spot, SPOT_AGG_TRADE).unwrap(),
        MarketMsg::AggTrade(AggTrade {
            instrument: nkn,
            event_time_ms: 1633998523963,
            trade_time_ms: 1633998523963,
            agg_id: 15683430,
            first_trade_id: 19862790,
            last_trade_id: 19862790,
            price: Price(3528),
            qty: Qty(580),
            buyer_is_maker: false,
        })
    );
    let ctk = id(&r, Market::UsdM, "CTKUSDT");
    assert_eq!(
        frame(&mut r, Market::UsdM, USDM_AGG_TRADE).unwrap(),
        MarketMsg::AggTrade(AggTrade {
            instrument: ctk,
            event_time_ms: 1626992741575,
            trade_time_ms: 1626992741421,
            agg_id: 16599292,
            first_trade_id: 23961322,
            last_trade_id: 23961322,
            price: Price(101100),
            qty: Qty(10),
            buyer_is_maker: false,
        })
    );
}

#[test]
fn tickers_full_and_mini() {
    let mut r = registry();
    let eth = id(&r, Market::Spot, "ETHUSDT");
    assert_eq!(
        frame(&mut r, Market::Spot, SPOT_TICKER).unwrap(),
        MarketMsg::Ticker(Ticker {
            instrument: eth,
            mini: false,
            event_time_ms: 1723161260000,
            last: Price(268179),
            open: Price(272691),
            high: Price(276000),
            low: Price(265100),
            price_change: Price(-4512),
            price_change_pct: Some(dec(-1654, 3)),
            volume: dec(41239860550000, 8),
            quote_volume: dec(111400985757893810, 8),
        })
    );
    let btc = id(&r, Market::UsdM, "BTCUSDT");
    assert_eq!(
        frame(&mut r, Market::UsdM, USDM_TICKER).unwrap(),
        MarketMsg::Ticker(Ticker {
            instrument: btc,
            mini: false,
            event_time_ms: 1723161261000,
            last: Price(6180030),
            open: Price(6293350),
            high: Price(6308000),
            low: Price(6070000),
            price_change: Price(-113320),
            price_change_pct: Some(dec(-1800, 3)),
            volume: dec(290813432, 3),
            quote_volume: dec(1802862671383, 2),
        })
    );
    let btc = id(&r, Market::Spot, "BTCUSDT");
    assert_eq!(
        frame(&mut r, Market::Spot, SPOT_MINI_TICKER).unwrap(),
        MarketMsg::Ticker(Ticker {
            instrument: btc,
            mini: true,
            event_time_ms: 1723161262000,
            last: Price(6183763),
            open: Price(6100000),
            high: Price(6274500),
            low: Price(6050000),
            price_change: Price(83763),
            price_change_pct: None,
            volume: dec(3805190000000, 8),
            quote_volume: dec(234996142387000000, 8),
        })
    );
}

#[test]
fn snapshots_all_markets() {
    let r = registry();
    let mut d = Decoder::new();
    let spot = id(&r, Market::Spot, "BTCUSDT");
    assert_eq!(
        d.decode_snapshot(SPOT_SNAPSHOT.as_bytes(), spot, &r),
        Ok(DepthSnapshot {
            instrument: spot,
            last_update_id: 50093239218,
            event_time_ms: None,
            transact_time_ms: None,
            bids: &[lv(6183763, 378826), lv(6183762, 61700), lv(6183724, 10610)],
            asks: &[lv(6183764, 154698), lv(6183765, 843), lv(6183768, 16)],
        })
    );
    let usdm = id(&r, Market::UsdM, "BTCUSDT");
    assert_eq!(
        d.decode_snapshot(USDM_SNAPSHOT.as_bytes(), usdm, &r),
        Ok(DepthSnapshot {
            instrument: usdm,
            last_update_id: 5123107852948,
            event_time_ms: Some(1723161256501),
            transact_time_ms: Some(1723161256493),
            bids: &[lv(6180020, 2909), lv(6180010, 696), lv(6180000, 20004)],
            asks: &[lv(6180030, 1072), lv(6180070, 2), lv(6180100, 3)],
        })
    );
    let cm = id(&r, Market::CoinM, "BTCUSD_PERP");
    assert_eq!(
        d.decode_snapshot(CM_SNAPSHOT.as_bytes(), cm, &r),
        Ok(DepthSnapshot {
            instrument: cm,
            last_update_id: 1007198635033,
            event_time_ms: Some(1723161257835),
            transact_time_ms: Some(1723161257823),
            bids: &[lv(618047, 35), lv(618020, 8), lv(618008, 53)],
            asks: &[lv(618048, 1645), lv(618051, 1), lv(618052, 45)],
        })
    );
}

#[test]
fn unknown_and_control_frames() {
    let mut r = registry();
    let before = r.len();
    let spot_kline = r#"{"stream":"nknusdt@kline_1m","data":{"e":"kline","E":1633998523963,"s":"NKNUSDT","k":{"t":1633998480000,"T":1633998539999,"s":"NKNUSDT","i":"1m","f":19862761,"L":19862790,"o":"0.35270000","c":"0.35280000","h":"0.35280000","l":"0.35220000","v":"25877.00000000","n":30,"x":false,"q":"9116.04600000","V":"58.00000000","Q":"20.46240000","B":"0"}}}"#;
    let mark = r#"{"stream":"btcusdt@markPrice","data":{"e":"markPriceUpdate","E":1723161257000,"s":"BTCUSDT","p":"61801.10000000","i":"61834.02553191","P":"61790.44771739","r":"0.00010000","T":1723190400000}}"#;
    for (m, f) in [
        (Market::Spot, spot_kline),
        (Market::UsdM, USDM_KLINE),
        (Market::UsdM, mark),
        (Market::Spot, r#"{"result":null,"id":1}"#),
        (Market::Spot, r#"{"id":2,"result":["btcusdt@trade"]}"#),
        (
            Market::Spot,
            r#"{"error":{"code":2,"msg":"Invalid request"},"id":3}"#,
        ),
        (Market::Spot, r#"{}"#),
        // All-market array streams.
        (Market::Spot, r#"{"stream":"!miniTicker@arr","data":[]}"#),
        // A REST snapshot is only decoded by decode_snapshot.
        (Market::Spot, SPOT_SNAPSHOT),
        // An unknown type with fields tape would reject is still just unknown.
        (Market::Spot, r#"{"e":"somethingNew","s":null,"E":-1}"#),
    ] {
        assert_eq!(frame(&mut r, m, f), Ok(MarketMsg::Unknown), "{f}");
    }
    assert_eq!(r.len(), before);
}

#[test]
fn escaped_strings_are_unescaped() {
    let mut r = registry();
    let escaped = SPOT_TRADE.replace("\"ETHUSDT\"", r#""ETH\u0055SDT""#);
    assert_eq!(
        frame(&mut r, Market::Spot, &escaped),
        frame(&mut r, Market::Spot, SPOT_TRADE)
    );
}

#[test]
fn auto_register_uses_default_scale() {
    let mut r = Registry::default();
    let mut d = Decoder::new();
    let c = DecodeCtx {
        market: Market::UsdM,
        auto_register: true,
    };
    let MarketMsg::Trade(t) = d.decode_frame(USDM_TRADE.as_bytes(), c, &mut r).unwrap() else {
        panic!("not a trade");
    };
    assert_eq!(r.len(), 1);
    assert_eq!(r.get(t.instrument).symbol, "BTCUSDT");
    assert_eq!(t.price, Price(6_180_030_000_000));
    assert_eq!(t.qty, Qty(600_000));
    // Same symbol again: no new registration.
    d.decode_frame(USDM_TRADE.as_bytes(), c, &mut r).unwrap();
    assert_eq!(r.len(), 1);
}

#[test]
fn levels_are_reused_between_frames() {
    let mut r = registry();
    let mut d = Decoder::new();
    let n = match d.decode_frame(USDM_DEPTH.as_bytes(), ctx(Market::UsdM), &mut r) {
        Ok(MarketMsg::Depth(u)) => u.bids.len(),
        other => panic!("{other:?}"),
    };
    assert_eq!(n, 11);
    // A shorter frame replaces, never appends to, the previous levels.
    match d.decode_frame(CM_DEPTH.as_bytes(), ctx(Market::CoinM), &mut r) {
        Ok(MarketMsg::Depth(u)) => {
            assert!(u.bids.is_empty());
            assert_eq!(u.asks, &[lv(618020, 0)]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn decoder_moves_between_threads() {
    fn send<T: Send>() {}
    send::<Decoder>();
    send::<DecodeError>();
}
