//! A user-data frame (spot executionReport, outboundAccountPosition, balanceUpdate,
//! listStatus; USD-M ORDER_TRADE_UPDATE, ACCOUNT_UPDATE; bare or in either envelope) through
//! `UserDataDecoder::decode`, with every market as the futures hint.
//!
//! Properties: no panic; errors render with a code; a reused decoder gives the same answer
//! twice (no state leaks between frames).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tape_core::account::UserDataDecoder;
use tape_core::instrument::{Market, Registry};
use tape_fuzz::MARKETS;

/// The user-data tests' instruments: spot BTCUSDT (2, 5) and USD-M BTCUSDT (1, 3).
fn registry() -> Registry {
    let mut r = Registry::default();
    r.register(Market::Spot, "BTCUSDT", 2, 5).unwrap();
    r.register(Market::UsdM, "BTCUSDT", 1, 3).unwrap();
    r
}

fuzz_target!(|frame: &[u8]| {
    let r = registry();
    let mut d = UserDataDecoder::new();
    for market in MARKETS {
        let first = d.decode(frame, market, &r);
        if let Err(e) = &first {
            assert!(!e.to_string().is_empty() && !e.code().is_empty());
        }
        let _ = format!("{first:?}");
        assert_eq!(d.decode(frame, market, &r), first, "{market:?}");
    }
});
