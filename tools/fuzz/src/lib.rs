//! Helpers shared by the fuzz targets: the instruments they decode against and the cheap
//! invariants they check on anything that decodes.

use tape_core::fixed::{parse_fixed, Scaled};
use tape_core::instrument::{Market, Registry};
use tape_core::msg::{Level, MarketMsg};

/// Every market, in the order the targets try them.
pub const MARKETS: [Market; 3] = [Market::Spot, Market::UsdM, Market::CoinM];

/// The decoder tests' instruments at their real exchange precisions, on all three markets.
pub fn registry() -> Registry {
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
        r.register(m, s, p, q).expect("fixed instruments register");
    }
    r
}

/// A fixed-point value re-renders to a string that parses back to the same mantissa.
pub fn check_fixed(mantissa: i64, scale: u8, what: &str) {
    let text = Scaled(mantissa, scale).to_string();
    assert_eq!(
        parse_fixed(text.as_bytes(), scale),
        Ok(mantissa),
        "{what}: {mantissa} at scale {scale} renders as {text:?}"
    );
}

/// Every price and quantity of `levels` round-trips at the instrument's scales.
pub fn check_levels(levels: &[Level], price_scale: u8, qty_scale: u8) {
    for l in levels {
        check_fixed(l.price.0, price_scale, "level price");
        check_fixed(l.qty.0, qty_scale, "level qty");
    }
}

/// Every fixed-point field of a decoded market message round-trips at its instrument's
/// scales, and the instrument it names exists.
pub fn check_market_msg(msg: &MarketMsg<'_>, r: &Registry) {
    let scales = |id: tape_core::instrument::InstrumentId| {
        assert!(
            (id.0 as usize) < r.len(),
            "decoded an unknown instrument {id:?}"
        );
        let i = r.get(id);
        (i.price_scale, i.qty_scale)
    };
    match msg {
        MarketMsg::Depth(d) => {
            let (ps, qs) = scales(d.instrument);
            check_levels(d.bids, ps, qs);
            check_levels(d.asks, ps, qs);
        }
        MarketMsg::Snapshot(s) => {
            let (ps, qs) = scales(s.instrument);
            check_levels(s.bids, ps, qs);
            check_levels(s.asks, ps, qs);
        }
        MarketMsg::Trade(t) => {
            let (ps, qs) = scales(t.instrument);
            check_fixed(t.price.0, ps, "trade price");
            check_fixed(t.qty.0, qs, "trade qty");
        }
        MarketMsg::AggTrade(t) => {
            let (ps, qs) = scales(t.instrument);
            check_fixed(t.price.0, ps, "aggTrade price");
            check_fixed(t.qty.0, qs, "aggTrade qty");
        }
        MarketMsg::BookTicker(b) => {
            let (ps, qs) = scales(b.instrument);
            for (v, s) in [
                (b.bid_price.0, ps),
                (b.bid_qty.0, qs),
                (b.ask_price.0, ps),
                (b.ask_qty.0, qs),
            ] {
                check_fixed(v, s, "bookTicker");
            }
        }
        MarketMsg::Ticker(t) => {
            let (ps, _) = scales(t.instrument);
            for p in [t.last, t.open, t.high, t.low, t.price_change] {
                check_fixed(p.0, ps, "ticker price");
            }
            for d in [Some(t.volume), Some(t.quote_volume), t.price_change_pct]
                .into_iter()
                .flatten()
            {
                check_fixed(d.mantissa, d.scale, "ticker decimal");
            }
        }
        MarketMsg::Unknown => {}
    }
}
