//! A small per-decoder cache in front of the registry's symbol lookup.
//!
//! `Registry::lookup` builds a 32-byte key and hashes it with SipHash: ~45 ns, a third of the
//! budget of a whole bookTicker. A connection carries a handful of symbols, so a tiny
//! direct-mapped cache of ids, indexed by a few of the symbol's bytes (never a hash of the
//! whole string), answers nearly every frame.
//!
//! The cache is *validated*, never trusted: a hit is used only if that id exists in the
//! registry passed to this call and its instrument has exactly this market and
//! (case-insensitively) this symbol. A registry maps each (market, upper-case symbol) to one
//! id and never removes one, so a validated hit is exactly what `lookup` would return, even
//! if the decoder is used with several registries.

use crate::instrument::{InstrumentId, Market, Registry};

const WAYS: usize = 16;

/// Direct-mapped (market, symbol) -> id hints; 0 is empty, else `id + 1`.
#[derive(Debug, Clone, Default)]
pub(super) struct SymbolCache {
    slots: [u32; WAYS],
}

#[inline]
fn slot(market: Market, symbol: &[u8]) -> usize {
    // A few bytes at fixed places (the first three, the last two) and the length, with
    // `| 0x20` folding the two cases of a letter together: no per-byte loop. A collision only
    // costs a registry lookup, since hits are validated.
    let n = symbol.len();
    let fold = |c: u8| u32::from(c | 0x20);
    // Every real symbol has at least three bytes: one length check for all five reads.
    let (a, b, c, y, z) = match symbol {
        &[a, b, c, ..] => (
            fold(a),
            fold(b),
            fold(c),
            fold(symbol[n - 2]),
            fold(symbol[n - 1]),
        ),
        _ => {
            let at = |i: usize| symbol.get(i).map_or(0, |&c| fold(c));
            (
                at(0),
                at(1),
                at(2),
                at(n.wrapping_sub(2)),
                at(n.wrapping_sub(1)),
            )
        }
    };
    let h = a
        ^ (b << 7)
        ^ (c << 14)
        ^ (y << 21)
        ^ (z << 3)
        ^ ((n as u32) << 25)
        ^ ((market as u32) << 29);
    (h.wrapping_mul(0x9e37_79b1) >> 28) as usize % WAYS
}

impl SymbolCache {
    /// The id of `symbol` on `market` in `registry`, if cached. Always inlined: it is on
    /// every fast-path frame, and a call cost a tenth of the lookup.
    #[inline(always)]
    pub fn get(&self, market: Market, symbol: &[u8], registry: &Registry) -> Option<InstrumentId> {
        let hint = self.slots[slot(market, symbol)].checked_sub(1)?;
        if hint as usize >= registry.len() {
            return None;
        }
        let id = InstrumentId(hint);
        let inst = registry.get(id);
        let name = inst.symbol.as_bytes();
        // Frames carry the registered (upper) case: one compare, case folding only if not.
        (inst.market == market && (same(name, symbol) || name.eq_ignore_ascii_case(symbol)))
            .then_some(id)
    }

    /// Remembers `id` for `symbol` on `market`, evicting whatever shared its slot.
    #[inline]
    pub fn put(&mut self, market: Market, symbol: &[u8], id: InstrumentId) {
        self.slots[slot(market, symbol)] = id.0.saturating_add(1);
    }
}

/// `a == b`, for a symbol's 4 to 16 bytes by two overlapping word compares (the first and
/// last four or eight bytes) instead of a call to `memcmp`.
#[inline(always)]
fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let w4 = |s: &[u8], i: usize| s.get(i..i + 4).and_then(|w| <[u8; 4]>::try_from(w).ok());
    let w8 = |s: &[u8], i: usize| s.get(i..i + 8).and_then(|w| <[u8; 8]>::try_from(w).ok());
    match n {
        4..=8 => w4(a, 0) == w4(b, 0) && w4(a, n - 4) == w4(b, n - 4),
        9..=16 => w8(a, 0) == w8(b, 0) && w8(a, n - 8) == w8(b, n - 8),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`same`] is `==` on every pair of short strings, of equal or different lengths.
    #[test]
    fn same_is_equality() {
        let words: Vec<Vec<u8>> = (0..=20)
            .flat_map(|n| {
                let base: Vec<u8> = (0..n).map(|i| b'A' + i as u8).collect();
                // The string, and each one-byte change of it.
                let mut v = vec![base.clone()];
                for k in 0..n {
                    let mut c = base.clone();
                    c[k] ^= 0x01;
                    v.push(c);
                }
                v
            })
            .collect();
        for a in &words {
            for b in &words {
                assert_eq!(same(a, b), a == b, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn hits_are_validated_against_the_registry() {
        let mut a = Registry::default();
        let btc = a.register(Market::Spot, "BTCUSDT", 2, 5).unwrap();
        let mut c = SymbolCache::default();
        assert_eq!(c.get(Market::Spot, b"BTCUSDT", &a), None);
        c.put(Market::Spot, b"BTCUSDT", btc);
        assert_eq!(c.get(Market::Spot, b"BTCUSDT", &a), Some(btc));
        assert_eq!(c.get(Market::Spot, b"btcusdt", &a), Some(btc));
        assert_eq!(c.get(Market::UsdM, b"BTCUSDT", &a), None);
        // Another registry where id 0 is a different instrument, or absent.
        let mut b = Registry::default();
        b.register(Market::Spot, "ETHUSDT", 2, 4).unwrap();
        assert_eq!(c.get(Market::Spot, b"BTCUSDT", &b), None);
        assert_eq!(c.get(Market::Spot, b"BTCUSDT", &Registry::default()), None);
        // A wrong hint (as after a slot collision) is never returned.
        c.put(Market::Spot, b"ETHUSDT", btc);
        assert_eq!(c.get(Market::Spot, b"ETHUSDT", &a), None);
    }
}
