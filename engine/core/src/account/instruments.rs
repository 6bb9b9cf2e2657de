//! What the account needs to know about an instrument: market, scales and assets.

use super::ids::Asset;
use crate::instrument::{InstrumentId, Market, Registry};

/// Quote assets recognised at the end of a symbol, longest first so `FDUSD` wins over `USD`.
const QUOTE_SUFFIXES: [&str; 16] = [
    "FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USDP", "DAI", "EUR", "TRY", "BRL", "BTC", "ETH",
    "BNB", "JPY", "GBP", "USD",
];

/// An instrument as the account sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstrumentInfo {
    /// Id in the registry.
    pub id: InstrumentId,
    /// Market.
    pub market: Market,
    /// Price scale.
    pub price_scale: u8,
    /// Quantity scale.
    pub qty_scale: u8,
    /// Base asset, when known.
    pub base_asset: Option<Asset>,
    /// Quote asset, when known: fees in it reduce PnL, and PnL is in it.
    pub quote_asset: Option<Asset>,
}

impl InstrumentInfo {
    /// From the registry, guessing base and quote from the symbol (see [`split_symbol`]);
    /// `None` when `id` is not in `registry`.
    pub fn from_registry(registry: &Registry, id: InstrumentId) -> Option<InstrumentInfo> {
        if id.0 as usize >= registry.len() {
            return None;
        }
        let i = registry.get(id);
        let (base, quote) = match split_symbol(&i.symbol) {
            Some((b, q)) => (Some(b), Some(q)),
            None => (None, None),
        };
        Some(InstrumentInfo {
            id,
            market: i.market,
            price_scale: i.price_scale,
            qty_scale: i.qty_scale,
            base_asset: base,
            quote_asset: quote,
        })
    }

    /// Overrides the guessed assets.
    pub fn with_assets(mut self, base: Asset, quote: Asset) -> Self {
        self.base_asset = Some(base);
        self.quote_asset = Some(quote);
        self
    }
}

/// Splits `BTCUSDT` into (`BTC`, `USDT`) by a known quote suffix; futures suffixes such as
/// `_PERP` or `_240927` are dropped first. `None` when no known quote asset ends the symbol.
/// (COIN-M contracts are inverse: their PnL is in the base coin, which this account model
/// does not cover; their "quote" here is `USD`.)
pub fn split_symbol(symbol: &str) -> Option<(Asset, Asset)> {
    let s = symbol.split('_').next().unwrap_or(symbol);
    QUOTE_SUFFIXES.iter().find_map(|q| {
        let base = s.strip_suffix(q)?;
        Some((Asset::new(base).ok()?, Asset::new(q).ok()?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_common_symbols() {
        let pair = |s: &str| split_symbol(s).map(|(b, q)| (b.to_string(), q.to_string()));
        assert_eq!(pair("BTCUSDT"), Some(("BTC".into(), "USDT".into())));
        assert_eq!(pair("ETHBTC"), Some(("ETH".into(), "BTC".into())));
        assert_eq!(pair("BTCFDUSD"), Some(("BTC".into(), "FDUSD".into())));
        assert_eq!(pair("BTCUSD_PERP"), Some(("BTC".into(), "USD".into())));
        assert_eq!(pair("USDT"), None);
        assert_eq!(pair("XYZABC"), None);
        let mut r = Registry::default();
        let id = r.register(Market::UsdM, "ETHUSDT", 2, 3).unwrap();
        let info = InstrumentInfo::from_registry(&r, id).unwrap();
        assert_eq!(info.quote_asset, Asset::new("USDT").ok());
        assert_eq!((info.price_scale, info.qty_scale), (2, 3));
        assert!(InstrumentInfo::from_registry(&r, InstrumentId(9)).is_none());
    }
}
