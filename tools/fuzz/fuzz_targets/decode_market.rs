//! A WebSocket market frame through `Decoder::decode_frame` on every market, with symbols
//! known or auto-registered, fast path on and off.
//!
//! Properties: no panic; the fast path gives the same result and leaves the same registry as
//! simd-json (it may only change speed); every decoded price and quantity re-renders to a
//! string that parses back to it; the decoder stays usable after any input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tape_core::decode::{DecodeCtx, Decoder};
use tape_core::instrument::{Instrument, Market, Registry};
use tape_core::msg::MarketMsg;
use tape_fuzz::{check_market_msg, registry, MARKETS};

const USDM_DEPTH: &[u8] = br#"{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":1,"u":2,"pu":0,"b":[["1.00","2.000"]],"a":[]}"#;

fn state(r: &Registry) -> Vec<Instrument> {
    r.iter().cloned().collect()
}

fuzz_target!(|frame: &[u8]| {
    for market in MARKETS {
        for auto_register in [false, true] {
            let ctx = DecodeCtx {
                market,
                auto_register,
            };
            let start = if auto_register {
                Registry::default()
            } else {
                registry()
            };
            let (mut rf, mut rs) = (start.clone(), start);
            let mut fast = Decoder::new();
            let mut slow = Decoder::new().with_fast_path(false);
            let a = fast.decode_frame(frame, ctx, &mut rf);
            let b = slow.decode_frame(frame, ctx, &mut rs);
            assert_eq!(a, b, "fast path and simd-json disagree ({ctx:?})");
            match &a {
                Ok(msg) => check_market_msg(msg, &rf),
                Err(e) => assert!(!e.to_string().is_empty() && !e.code().is_empty()),
            }
            drop(a);
            assert_eq!(state(&rf), state(&rs), "registries diverge ({ctx:?})");
            // Still usable: a good frame decodes after whatever came before.
            let ok = fast.decode_frame(
                USDM_DEPTH,
                DecodeCtx {
                    market: Market::UsdM,
                    auto_register: true,
                },
                &mut rf,
            );
            assert!(
                matches!(ok, Ok(MarketMsg::Depth(ref d)) if d.bids.len() == 1),
                "{ok:?}"
            );
        }
    }
});
