//! A REST depth snapshot body through `Decoder::decode_snapshot` for every instrument of the
//! test registry (spot, USD-M and COIN-M shapes).
//!
//! Properties: no panic; the fast path gives the same result as simd-json (it may only change
//! speed); errors render with a code; a decoded snapshot is for the requested instrument and
//! its levels re-render to the same fixed-point strings.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tape_core::decode::Decoder;
use tape_core::instrument::InstrumentId;
use tape_fuzz::{check_levels, registry};

fuzz_target!(|body: &[u8]| {
    let r = registry();
    let mut d = Decoder::new();
    let mut slow = Decoder::new().with_fast_path(false);
    for id in 0..=r.len() as u32 {
        // One past the end: the caller-mistake error, never a panic.
        let inst = InstrumentId(id);
        let got = d.decode_snapshot(body, inst, &r);
        assert_eq!(
            got,
            slow.decode_snapshot(body, inst, &r),
            "fast path and simd-json disagree ({inst:?})"
        );
        match got {
            Ok(s) => {
                assert_eq!(s.instrument, inst);
                let i = r.get(inst);
                check_levels(s.bids, i.price_scale, i.qty_scale);
                check_levels(s.asks, i.price_scale, i.qty_scale);
            }
            Err(e) => assert!(!e.to_string().is_empty() && !e.code().is_empty()),
        }
    }
});
