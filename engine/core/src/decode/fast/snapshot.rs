//! REST depth snapshot bodies in Binance's exact shapes, without simd-json.
//!
//! A 1,000-level snapshot body is tens of kilobytes of `["price","qty"]` pairs; building
//! simd-json's tape for it and walking the tape level by level cost about as much as the rest
//! of a whole session's replay. Binance writes the body in one of three fixed shapes:
//!
//! - spot: `{"lastUpdateId":N,"bids":[..],"asks":[..]}`
//! - USD-M: `{"lastUpdateId":N,"E":N,"T":N,"bids":[..],"asks":[..]}`
//! - COIN-M: `{"lastUpdateId":N,"E":N,"T":N,"symbol":"..","pair":"..","bids":[..],"asks":[..]}`
//!
//! [`snapshot`] reads exactly these bytes (no whitespace, no escapes, nothing after the closing
//! `}`), the levels through the depth frames' readers ([`Cur::direct_levels`]), and answers
//! what [`events::snapshot`](super::super::events::snapshot) answers for them. Anything else
//! is "not mine": any other byte or member order, a decimal the fast tiers do not take, and
//! every body the tape path would reject (so the tape path's error, and its wording, stay its
//! own).

use super::Cur;
use crate::decode::MAX_FRAME_BYTES;
use crate::instrument::Instrument;
use crate::msg::{DepthSnapshot, Level};

/// The snapshot in `body` for `inst`, levels in `bids`/`asks` (the returned slices are empty,
/// for the caller to point at them), when `body` is one of the shapes and the tape path would
/// decode it; then the result is exactly the tape path's. `None` otherwise, with `bids`/`asks`
/// in no particular state (the tape path clears them).
///
/// The shapes' members map onto the tape path's checks as follows: `lastUpdateId`, `E` and
/// `T` are read as [`Cur::uint`] reads them (what simd-json reads as the same unsigned
/// integer); a futures instrument needs `E` and `T` (`events::market_u64`), a spot one takes
/// them if present; `symbol` must name `inst` up to ASCII case (else the tape path's
/// `SymbolMismatch`); `pair` is not read by the tape path, so any plain string goes.
pub(in crate::decode) fn snapshot(
    body: &[u8],
    inst: &Instrument,
    bids: &mut Vec<Level>,
    asks: &mut Vec<Level>,
) -> Option<DepthSnapshot<'static>> {
    // The tape path's size limit, so an oversize body gets its error.
    if body.len() > MAX_FRAME_BYTES {
        return None;
    }
    let mut c = Cur { b: body, i: 0 };
    c.lit_n(b"{\"lastUpdateId\":")?;
    let last_update_id = c.uint()?;
    let (event_time_ms, transact_time_ms) = if c.lit_n(b",\"E\":").is_some() {
        let e = c.uint()?;
        c.lit_n(b",\"T\":")?;
        (Some(e), Some(c.uint()?))
    } else if inst.market.is_futures() {
        // The tape path's `MissingField`.
        return None;
    } else {
        (None, None)
    };
    if c.lit_n(b",\"symbol\":\"").is_some() {
        let (s, e) = c.str_body()?;
        if !body.get(s..e)?.eq_ignore_ascii_case(inst.symbol.as_bytes()) {
            return None;
        }
        c.lit_n(b",\"pair\":\"")?;
        c.str_body()?;
    }
    c.lit_n(b",\"bids\":")?;
    c.direct_levels(bids, inst.price_scale, inst.qty_scale)?;
    c.lit_n(b",\"asks\":")?;
    c.direct_levels(asks, inst.price_scale, inst.qty_scale)?;
    c.lit_n(b"}")?;
    (c.i == body.len()).then_some(DepthSnapshot {
        instrument: inst.id,
        last_update_id,
        event_time_ms,
        transact_time_ms,
        bids: &[],
        asks: &[],
    })
}
