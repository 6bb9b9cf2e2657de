//! Balances per asset: free and locked amounts from the venue, plus a fee ledger.
//!
//! The venue's balance events are absolute (`outboundAccountPosition`, USD-M `wb`) or deltas
//! (`balanceUpdate`); they already include every fee the venue charged. The fee ledger
//! (`fees_paid`) only records what fills charged in each asset, so fees paid in an asset
//! other than an instrument's quote asset (BNB discounts, base-asset fees on spot buys) are
//! still accounted somewhere; it never changes `free`.

use std::collections::BTreeMap;

use super::event::{AccountPosition, BalanceDelta, FuturesBalance};
use super::ids::Asset;
use super::money::{MathError, Money};

/// Default cap on distinct assets per account (hostile input cannot grow the map forever).
pub const DEFAULT_MAX_ASSETS: usize = 1024;

/// One asset's balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balance {
    /// The asset.
    pub asset: Asset,
    /// Available (USD-M: wallet balance).
    pub free: Money,
    /// Held by open orders (always zero on USD-M).
    pub locked: Money,
    /// USD-M cross wallet balance, when reported.
    pub cross_wallet: Option<Money>,
    /// Fees charged in this asset by fills seen (ledger only, see the module docs).
    pub fees_paid: Money,
}

impl Balance {
    fn new(asset: Asset) -> Self {
        Balance {
            asset,
            free: Money::ZERO,
            locked: Money::ZERO,
            cross_wallet: None,
            fees_paid: Money::ZERO,
        }
    }

    /// free + locked.
    ///
    /// # Errors
    /// [`MathError::Overflow`].
    pub fn total(&self) -> Result<Money, MathError> {
        self.free.add(self.locked, "balance total")
    }
}

/// Why a balance event was refused; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BalanceError {
    /// Too many distinct assets.
    #[error("balance table full ({0} assets), refusing {1}")]
    Full(usize, Asset),
    /// Arithmetic overflow.
    #[error(transparent)]
    Math(#[from] MathError),
}

/// All balances of one account, ordered by asset.
#[derive(Debug, Clone)]
pub struct Balances {
    map: BTreeMap<Asset, Balance>,
    max: usize,
}

impl Default for Balances {
    fn default() -> Self {
        Balances::new(DEFAULT_MAX_ASSETS)
    }
}

impl Balances {
    /// Empty, holding at most `max` assets.
    pub fn new(max: usize) -> Self {
        Balances {
            map: BTreeMap::new(),
            max,
        }
    }

    /// The balance of `asset`.
    pub fn get(&self, asset: &Asset) -> Option<&Balance> {
        self.map.get(asset)
    }

    /// All balances in asset order.
    pub fn iter(&self) -> impl Iterator<Item = &Balance> {
        self.map.values()
    }

    fn entry(&mut self, asset: Asset) -> Result<&mut Balance, BalanceError> {
        if !self.map.contains_key(&asset) && self.map.len() >= self.max {
            return Err(BalanceError::Full(self.max, asset));
        }
        Ok(self.map.entry(asset).or_insert_with(|| Balance::new(asset)))
    }

    /// Checks every asset of an event fits before any is applied (all-or-nothing).
    fn room_for(&self, assets: impl Iterator<Item = Asset>) -> Result<(), BalanceError> {
        let mut new = 0usize;
        for a in assets {
            if !self.map.contains_key(&a) {
                new += 1;
                if self.map.len() + new > self.max {
                    return Err(BalanceError::Full(self.max, a));
                }
            }
        }
        Ok(())
    }

    /// Spot `outboundAccountPosition`: sets free and locked of each listed asset.
    ///
    /// # Errors
    /// [`BalanceError::Full`].
    pub fn apply_position(&mut self, p: &AccountPosition) -> Result<Vec<Balance>, BalanceError> {
        self.room_for(p.balances.iter().map(|b| b.asset))?;
        let mut out = Vec::with_capacity(p.balances.len());
        for b in &p.balances {
            let e = self.entry(b.asset)?;
            e.free = b.free;
            e.locked = b.locked;
            out.push(*e);
        }
        Ok(out)
    }

    /// Spot `balanceUpdate`: adds the delta to free.
    ///
    /// # Errors
    /// [`BalanceError`] on a full table or overflow.
    pub fn apply_delta(&mut self, d: &BalanceDelta) -> Result<Balance, BalanceError> {
        let e = self.entry(d.asset)?;
        e.free = e.free.add(d.delta, "balance delta")?;
        Ok(*e)
    }

    /// USD-M `ACCOUNT_UPDATE` balances: free = wallet balance.
    ///
    /// # Errors
    /// [`BalanceError::Full`].
    pub fn apply_futures(&mut self, bs: &[FuturesBalance]) -> Result<Vec<Balance>, BalanceError> {
        self.room_for(bs.iter().map(|b| b.asset))?;
        let mut out = Vec::with_capacity(bs.len());
        for b in bs {
            let e = self.entry(b.asset)?;
            e.free = b.wallet;
            e.locked = Money::ZERO;
            e.cross_wallet = Some(b.cross_wallet);
            out.push(*e);
        }
        Ok(out)
    }

    /// Sets free/locked directly (paper accounts, tests, a REST snapshot).
    ///
    /// # Errors
    /// [`BalanceError::Full`].
    pub fn set(
        &mut self,
        asset: Asset,
        free: Money,
        locked: Money,
    ) -> Result<Balance, BalanceError> {
        let e = self.entry(asset)?;
        e.free = free;
        e.locked = locked;
        Ok(*e)
    }

    /// Records a fee in the ledger of its asset.
    ///
    /// # Errors
    /// [`BalanceError`] on a full table or overflow.
    pub fn record_fee(&mut self, asset: Asset, fee: Money) -> Result<Balance, BalanceError> {
        let e = self.entry(asset)?;
        e.fees_paid = e.fees_paid.add(fee, "fee ledger")?;
        Ok(*e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::event::AssetBalance;

    fn a(s: &str) -> Asset {
        Asset::new(s).unwrap()
    }

    #[test]
    fn position_delta_futures_and_fees() {
        let mut b = Balances::new(2);
        let out = b
            .apply_position(&AccountPosition {
                event_time_ms: 1,
                last_update_ms: 1,
                balances: vec![AssetBalance {
                    asset: a("USDT"),
                    free: Money(100_00000000),
                    locked: Money(5_00000000),
                }],
            })
            .unwrap();
        assert_eq!(out[0].total(), Ok(Money(105_00000000)));
        let d = b
            .apply_delta(&BalanceDelta {
                event_time_ms: 2,
                asset: a("USDT"),
                delta: Money(-20_00000000),
                clear_time_ms: 2,
            })
            .unwrap();
        assert_eq!(d.free, Money(80_00000000));
        b.record_fee(a("BNB"), Money(1_000)).unwrap();
        assert_eq!(b.get(&a("BNB")).unwrap().fees_paid, Money(1_000));
        assert_eq!(b.get(&a("BNB")).unwrap().free, Money::ZERO, "ledger only");
        // a third asset does not fit; nothing is applied
        let before = b.get(&a("USDT")).copied();
        let err = b
            .apply_futures(&[
                FuturesBalance {
                    asset: a("USDT"),
                    wallet: Money(1),
                    cross_wallet: Money(1),
                    change: None,
                },
                FuturesBalance {
                    asset: a("ETH"),
                    wallet: Money(1),
                    cross_wallet: Money(1),
                    change: None,
                },
            ])
            .unwrap_err();
        assert_eq!(err, BalanceError::Full(2, a("ETH")));
        assert_eq!(b.get(&a("USDT")).copied(), before);
        let f = b
            .apply_futures(&[FuturesBalance {
                asset: a("USDT"),
                wallet: Money(7),
                cross_wallet: Money(6),
                change: Some(Money(1)),
            }])
            .unwrap();
        assert_eq!(
            (f[0].free, f[0].locked, f[0].cross_wallet),
            (Money(7), Money::ZERO, Some(Money(6)))
        );
        assert!(b
            .apply_delta(&BalanceDelta {
                event_time_ms: 3,
                asset: a("USDT"),
                delta: Money(i64::MAX),
                clear_time_ms: 3,
            })
            .is_err());
    }
}
