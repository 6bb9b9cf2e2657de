//! The instrument registry: symbol -> id, market, and the fixed-point scales of each instrument.

use std::collections::HashMap;
use std::fmt;

use crate::fixed::MAX_SCALE;

/// Which Binance market an instrument trades on; it decides the depth-sync rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Market {
    /// Spot (`stream.binance.com`, `/api/v3/depth`).
    Spot,
    /// USDⓈ-M futures (`fstream.binance.com`, `/fapi/v1/depth`).
    UsdM,
    /// COIN-M futures (`dstream.binance.com`, `/dapi/v1/depth`).
    CoinM,
}

impl Market {
    /// Stable lower-case name used in journals, configs and output.
    pub fn as_str(self) -> &'static str {
        match self {
            Market::Spot => "spot",
            Market::UsdM => "usdm",
            Market::CoinM => "coinm",
        }
    }

    /// Parses [`Market::as_str`] names (also `usd-m`, `coin-m`, `futures`, `cm`, `um`).
    pub fn parse(s: &str) -> Option<Market> {
        match s.to_ascii_lowercase().as_str() {
            "spot" => Some(Market::Spot),
            "usdm" | "usd-m" | "um" | "futures" => Some(Market::UsdM),
            "coinm" | "coin-m" | "cm" => Some(Market::CoinM),
            _ => None,
        }
    }

    /// True for USD-M and COIN-M, which sequence depth with `pu`.
    pub fn is_futures(self) -> bool {
        !matches!(self, Market::Spot)
    }
}

impl fmt::Display for Market {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Dense index of an instrument in its [`Registry`]; registration order, so deterministic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstrumentId(pub u32);

/// Longest symbol accepted (Binance's are at most ~20 bytes).
pub const MAX_SYMBOL_LEN: usize = 32;

/// Default scale for prices and quantities of instruments that were not configured.
/// 8 decimal places holds every Binance spot and futures price and quantity string.
pub const DEFAULT_SCALE: u8 = 8;

/// Default cap on the number of instruments, so hostile input cannot grow the registry forever.
pub const DEFAULT_MAX_INSTRUMENTS: usize = 4096;

/// One tradable instrument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instrument {
    /// Its id in the registry.
    pub id: InstrumentId,
    /// Upper-case exchange symbol (`BTCUSDT`, `BTCUSD_PERP`).
    pub symbol: String,
    /// The market it trades on.
    pub market: Market,
    /// Decimal places of a [`crate::fixed::Price`] mantissa.
    pub price_scale: u8,
    /// Decimal places of a [`crate::fixed::Qty`] mantissa.
    pub qty_scale: u8,
}

/// Why an instrument could not be registered or found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The symbol is empty, too long, or has bytes other than `[A-Za-z0-9_-]`.
    #[error("invalid symbol {0:?}")]
    InvalidSymbol(String),
    /// A scale above [`MAX_SCALE`].
    #[error("invalid scale {0} for {1} (max 18)")]
    InvalidScale(u8, String),
    /// The registry is full.
    #[error("instrument registry full ({0} instruments)")]
    Full(usize),
    /// The symbol is already registered with different market or scales.
    #[error("instrument {market}:{symbol} already registered with other scales")]
    Conflict {
        /// Market of the conflicting registration.
        market: Market,
        /// Its symbol.
        symbol: String,
    },
}

/// Symbol -> instrument map. Iteration (`iter`) is in registration order.
#[derive(Debug, Clone)]
pub struct Registry {
    instruments: Vec<Instrument>,
    by_key: HashMap<(Market, [u8; MAX_SYMBOL_LEN]), InstrumentId>,
    max: usize,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::with_capacity(DEFAULT_MAX_INSTRUMENTS)
    }
}

fn key(market: Market, symbol: &[u8]) -> Option<(Market, [u8; MAX_SYMBOL_LEN])> {
    if symbol.is_empty() || symbol.len() > MAX_SYMBOL_LEN {
        return None;
    }
    let mut k = [0u8; MAX_SYMBOL_LEN];
    for (dst, &c) in k.iter_mut().zip(symbol) {
        if !(c.is_ascii_alphanumeric() || c == b'_' || c == b'-') {
            return None;
        }
        *dst = c.to_ascii_uppercase();
    }
    Some((market, k))
}

impl Registry {
    /// An empty registry that holds at most `max` instruments.
    pub fn with_capacity(max: usize) -> Self {
        Registry {
            instruments: Vec::new(),
            by_key: HashMap::new(),
            max,
        }
    }

    /// Registers `symbol` on `market` with explicit scales, or returns the existing id if the
    /// same registration exists.
    ///
    /// # Errors
    /// Invalid symbol or scale, a full registry, or a conflicting earlier registration.
    pub fn register(
        &mut self,
        market: Market,
        symbol: &str,
        price_scale: u8,
        qty_scale: u8,
    ) -> Result<InstrumentId, RegistryError> {
        let k = key(market, symbol.as_bytes())
            .ok_or_else(|| RegistryError::InvalidSymbol(symbol.chars().take(64).collect()))?;
        for s in [price_scale, qty_scale] {
            if s > MAX_SCALE {
                return Err(RegistryError::InvalidScale(s, symbol.to_owned()));
            }
        }
        if let Some(&id) = self.by_key.get(&k) {
            let i = &self.instruments[id.0 as usize];
            if i.price_scale == price_scale && i.qty_scale == qty_scale {
                return Ok(id);
            }
            return Err(RegistryError::Conflict {
                market,
                symbol: i.symbol.clone(),
            });
        }
        if self.instruments.len() >= self.max {
            return Err(RegistryError::Full(self.max));
        }
        let id = InstrumentId(self.instruments.len() as u32);
        self.instruments.push(Instrument {
            id,
            symbol: symbol.to_ascii_uppercase(),
            market,
            price_scale,
            qty_scale,
        });
        self.by_key.insert(k, id);
        Ok(id)
    }

    /// Looks up `symbol` (case-insensitive) on `market`.
    #[inline]
    pub fn lookup(&self, market: Market, symbol: &[u8]) -> Option<InstrumentId> {
        self.by_key.get(&key(market, symbol)?).copied()
    }

    /// Looks up `symbol`, registering it with [`DEFAULT_SCALE`] if it is new.
    ///
    /// # Errors
    /// Invalid symbol or a full registry.
    pub fn lookup_or_register(
        &mut self,
        market: Market,
        symbol: &[u8],
    ) -> Result<InstrumentId, RegistryError> {
        if let Some(id) = self.lookup(market, symbol) {
            return Ok(id);
        }
        let s = std::str::from_utf8(symbol)
            .map_err(|_| RegistryError::InvalidSymbol(String::from_utf8_lossy(symbol).into()))?;
        self.register(market, s, DEFAULT_SCALE, DEFAULT_SCALE)
    }

    /// The instrument with this id.
    ///
    /// # Panics
    /// If `id` did not come from this registry.
    #[inline]
    pub fn get(&self, id: InstrumentId) -> &Instrument {
        &self.instruments[id.0 as usize]
    }

    /// All instruments in registration order.
    pub fn iter(&self) -> impl Iterator<Item = &Instrument> {
        self.instruments.iter()
    }

    /// Number of registered instruments.
    pub fn len(&self) -> usize {
        self.instruments.len()
    }

    /// True when nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.instruments.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_and_lookup_case_insensitive() {
        let mut r = Registry::default();
        let a = r.register(Market::Spot, "BTCUSDT", 8, 8).unwrap();
        let b = r.register(Market::UsdM, "BTCUSDT", 2, 3).unwrap();
        assert_ne!(a, b);
        assert_eq!(r.lookup(Market::Spot, b"btcusdt"), Some(a));
        assert_eq!(r.lookup(Market::UsdM, b"BTCUSDT"), Some(b));
        assert_eq!(r.register(Market::Spot, "btcusdt", 8, 8), Ok(a));
        assert!(matches!(
            r.register(Market::Spot, "BTCUSDT", 2, 8),
            Err(RegistryError::Conflict { .. })
        ));
        assert_eq!(r.get(b).price_scale, 2);
    }

    #[test]
    fn rejects_hostile_symbols_and_caps_size() {
        let mut r = Registry::with_capacity(2);
        assert!(r.lookup_or_register(Market::Spot, b"").is_err());
        assert!(r.lookup_or_register(Market::Spot, b"BTC\"USDT").is_err());
        assert!(r.lookup_or_register(Market::Spot, &[b'A'; 33]).is_err());
        assert!(r.lookup_or_register(Market::Spot, b"A").is_ok());
        assert!(r.lookup_or_register(Market::Spot, b"B").is_ok());
        assert_eq!(
            r.lookup_or_register(Market::Spot, b"C"),
            Err(RegistryError::Full(2))
        );
        assert!(r.register(Market::Spot, "D", 19, 2).is_err());
    }
}
