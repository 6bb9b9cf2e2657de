//! Shared inputs for the benchmarks: real frames from the bundled fixtures.

use std::path::PathBuf;

pub mod e2e;
pub mod fanout_peer;

/// A spot `bookTicker` (no `e`/`E`), exactly as received.
pub const SPOT_BOOK_TICKER: &str = r#"{"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}"#;

/// A spot `trade`, exactly as received.
pub const SPOT_TRADE: &str = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}}"#;

/// A USD-M `depthUpdate` with 20 level changes (12 bids, 8 asks), exactly as received.
pub const USDM_DEPTH20: &str = r#"{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1723161262573,"T":1723161262572,"s":"BTCUSDT","U":5123108263585,"u":5123108265240,"pu":5123108263197,"b":[["1000.00","606.675"],["5000.00","2.321"],["33000.00","5.207"],["58710.00","0.133"],["58718.90","0.006"],["61780.70","0.088"],["61781.30","0.063"],["61783.70","0.459"],["61785.20","0.133"],["61789.30","0.000"],["61793.20","0.003"],["61794.00","0.002"]],"a":[["61809.50","4.010"],["61858.00","0.004"],["61860.20","0.204"],["61962.20","0.003"],["61973.50","0.000"],["62287.00","0.100"],["62743.20","0.016"],["67736.50","6.633"]]}}"#;

/// The repository's `fixtures/` directory.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ has a parent")
        .join("fixtures")
}

/// The five hftbacktest slices (spot, USD-M and COIN-M BTC and ETH).
pub fn hftbacktest_files() -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(fixtures_dir().join("hftbacktest"))
        .expect("fixtures/hftbacktest exists")
        .map(|e| e.expect("readable fixtures dir").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    files
}

/// serde_json / sonic-rs peers: the same frames into typed structs with borrowed `&str`
/// fields (the idiomatic zero-copy serde shape). They stop at strings: converting prices to
/// fixed point is extra work tape's decoder does and these do not.
pub mod peer {
    use serde::Deserialize;

    /// `{"stream":..,"data":..}`.
    #[derive(Deserialize)]
    pub struct Combined<'a, T> {
        /// Stream name.
        #[serde(borrow)]
        pub stream: &'a str,
        /// The event.
        pub data: T,
    }

    /// Spot bookTicker.
    #[allow(non_snake_case)]
    #[derive(Deserialize)]
    pub struct BookTicker<'a> {
        /// Update id.
        pub u: u64,
        /// Symbol.
        #[serde(borrow)]
        pub s: &'a str,
        /// Bid price.
        pub b: &'a str,
        /// Bid qty.
        pub B: &'a str,
        /// Ask price.
        pub a: &'a str,
        /// Ask qty.
        pub A: &'a str,
    }

    /// Spot trade.
    #[allow(non_snake_case)]
    #[derive(Deserialize)]
    pub struct Trade<'a> {
        /// Event type.
        #[serde(borrow)]
        pub e: &'a str,
        /// Event time.
        pub E: u64,
        /// Symbol.
        pub s: &'a str,
        /// Trade id.
        pub t: u64,
        /// Price.
        pub p: &'a str,
        /// Quantity.
        pub q: &'a str,
        /// Trade time.
        pub T: u64,
        /// Buyer is maker.
        pub m: bool,
    }

    /// USD-M depthUpdate.
    #[allow(non_snake_case)]
    #[derive(Deserialize)]
    pub struct Depth<'a> {
        /// Event type.
        #[serde(borrow)]
        pub e: &'a str,
        /// Event time.
        pub E: u64,
        /// Transaction time.
        pub T: u64,
        /// Symbol.
        pub s: &'a str,
        /// First update id.
        pub U: u64,
        /// Final update id.
        pub u: u64,
        /// Previous final update id.
        pub pu: u64,
        /// Bids.
        #[serde(borrow)]
        pub b: Vec<[&'a str; 2]>,
        /// Asks.
        #[serde(borrow)]
        pub a: Vec<[&'a str; 2]>,
    }
}

/// Level updates for book benchmarks, from a real capture.
pub mod levels {
    use tape_core::fixed::{parse_fixed, Price, Qty};
    use tape_core::msg::{Level, Side};

    /// A snapshot and then every level change of every diff, in order.
    pub struct BookFixture {
        /// Snapshot bids, best first.
        pub snapshot_bids: Vec<Level>,
        /// Snapshot asks, best first.
        pub snapshot_asks: Vec<Level>,
        /// Every level change of every diff, in arrival order.
        pub updates: Vec<(Side, Price, Qty)>,
    }

    fn level(pair: &serde_json::Value, scale: u8) -> Level {
        let p = pair[0].as_str().expect("price string");
        let q = pair[1].as_str().expect("qty string");
        Level {
            price: Price(parse_fixed(p.as_bytes(), scale).expect("price")),
            qty: Qty(parse_fixed(q.as_bytes(), scale).expect("qty")),
        }
    }

    /// Reads an hftbacktest slice (`<ns> <json>` lines) at `scale` for prices and quantities.
    pub fn load(path: &std::path::Path, scale: u8) -> BookFixture {
        let text = std::fs::read_to_string(path).expect("fixture readable");
        let mut fx = BookFixture {
            snapshot_bids: Vec::new(),
            snapshot_asks: Vec::new(),
            updates: Vec::new(),
        };
        for line in text.lines() {
            let (_, json) = line.split_once(' ').expect("hftbacktest line");
            let v: serde_json::Value = serde_json::from_str(json).expect("json line");
            if v.get("lastUpdateId").is_some() {
                let side = |k: &str| {
                    v[k].as_array()
                        .expect("levels")
                        .iter()
                        .map(|l| level(l, scale))
                        .collect()
                };
                fx.snapshot_bids = side("bids");
                fx.snapshot_asks = side("asks");
            } else if v["data"]["e"] == "depthUpdate" {
                for (key, side) in [("b", Side::Bid), ("a", Side::Ask)] {
                    for l in v["data"][key].as_array().expect("levels") {
                        let l = level(l, scale);
                        fx.updates.push((side, l.price, l.qty));
                    }
                }
            }
        }
        fx
    }
}
