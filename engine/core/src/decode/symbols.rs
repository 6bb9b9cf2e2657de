//! A small per-decoder cache in front of the registry's symbol lookup.
//!
//! `Registry::lookup` builds a 32-byte key and hashes it with SipHash: ~45 ns, a third of the
//! budget of a whole bookTicker. A connection carries a handful of symbols, so a tiny
//! direct-mapped cache of ids answers nearly every frame.
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
    // FNV-1a over the upper-cased bytes, so both cases of a symbol share a slot.
    let mut h: u32 = 0x811c_9dc5 ^ market as u32;
    for &c in symbol {
        h = (h ^ u32::from(c.to_ascii_uppercase())).wrapping_mul(0x0100_0193);
    }
    (h ^ (h >> 16)) as usize % WAYS
}

impl SymbolCache {
    /// The id of `symbol` on `market` in `registry`, if cached.
    #[inline]
    pub fn get(&self, market: Market, symbol: &[u8], registry: &Registry) -> Option<InstrumentId> {
        let hint = self.slots[slot(market, symbol)].checked_sub(1)?;
        if hint as usize >= registry.len() {
            return None;
        }
        let id = InstrumentId(hint);
        let inst = registry.get(id);
        (inst.market == market && inst.symbol.as_bytes().eq_ignore_ascii_case(symbol)).then_some(id)
    }

    /// Remembers `id` for `symbol` on `market`, evicting whatever shared its slot.
    #[inline]
    pub fn put(&mut self, market: Market, symbol: &[u8], id: InstrumentId) {
        self.slots[slot(market, symbol)] = id.0.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
