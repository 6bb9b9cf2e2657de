//! Positions and PnL: signed quantity, exact cost basis, realized and unrealized PnL.
//!
//! A position keeps its open quantity's cost basis `C = Σ entry price × signed qty` and its
//! gross realized PnL exactly, in `i128` at the raw scale `price_scale + qty_scale`.
//! Applying a fill of signed quantity `d` at price `p` to a position `q`:
//!
//! * same direction (or flat): `q += d`, `C += p·d` (increase);
//! * opposite direction: the closed part `c = min(|d|, |q|)` realizes
//!   `sign(q)·p·c − C·c/|q|`, and `C` drops by the same `C·c/|q|` (reduce; close when
//!   `c = |q|`, in which case exactly `C` is removed);
//! * a remainder beyond `|q|` opens the other way at `p` (flip).
//!
//! `C·c/|q|` is rounded half away from zero; because the amount realized and the amount
//! removed from `C` are the same number, `realized + (mark·q − C)` always equals the
//! cash-flow PnL `Σ −p·d + mark·q` exactly (rounding only moves PnL between realized and
//! unrealized). The average entry price is `C / q` rounded half away from zero to the price
//! scale, for display; PnL never uses the rounded price.
//!
//! Fees: a fee charged in the instrument's quote asset is added to the position's `fees`,
//! and [`Position::realized_pnl`] is gross realized minus fees. A fee in any other asset (BNB,
//! or the base asset on a spot buy) cannot be subtracted from quote PnL without a price for
//! that asset, so it goes to the fee ledger of that asset's balance (see
//! [`super::balances`]) and not into PnL; the position quantity stays the gross filled
//! quantity.

use super::ids::Asset;
use super::kinds::OrderSide;
use super::money::{div_round, notional_raw, overflow, raw_to_money, MathError, Money};
use crate::fixed::{Price, Qty};
use crate::instrument::InstrumentId;

/// Which market price marks positions to market.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MarkSource {
    /// The mid of best bid and best ask, `(bid + ask) / 2` truncated toward zero.
    #[default]
    Mid,
    /// The last trade price.
    Last,
}

impl MarkSource {
    /// The mark this source gives for a market update, if it has the data.
    pub fn mark(
        self,
        bid: Option<Price>,
        ask: Option<Price>,
        last: Option<Price>,
    ) -> Option<Price> {
        match self {
            MarkSource::Mid => match (bid, ask) {
                // The mean of two i64 lies between them: exact in i128, always fits back.
                (Some(b), Some(a)) => i64::try_from((i128::from(b.0) + i128::from(a.0)) / 2)
                    .ok()
                    .map(Price),
                _ => None,
            },
            MarkSource::Last => last,
        }
    }
}

/// Direction of a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PositionSide {
    /// No position.
    Flat,
    /// Positive quantity.
    Long,
    /// Negative quantity.
    Short,
}

impl PositionSide {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            PositionSide::Flat => "flat",
            PositionSide::Long => "long",
            PositionSide::Short => "short",
        }
    }
}

/// What one fill did to a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FillEffect {
    /// Gross PnL realized by this fill, raw scale.
    pub realized_raw: i128,
    /// Quantity that closed existing exposure (unsigned).
    pub closed: Qty,
    /// Quantity that opened or increased exposure (unsigned).
    pub opened: Qty,
    /// The fill took the position through zero.
    pub flipped: bool,
}

/// One instrument's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Instrument.
    pub instrument: InstrumentId,
    /// Signed quantity: positive long, negative short.
    pub qty: Qty,
    cost_raw: i128,
    realized_raw: i128,
    /// Quote-asset fees charged on this instrument (subtracted from realized PnL).
    pub fees: Money,
    /// Quote asset, when known (fees in it reduce PnL).
    pub quote_asset: Option<Asset>,
    /// Price scale of the instrument.
    pub price_scale: u8,
    /// Quantity scale of the instrument.
    pub qty_scale: u8,
    /// Latest mark price.
    pub mark: Option<Price>,
    /// Leverage, when configured or supplied by the venue.
    pub leverage: Option<u32>,
    /// Liquidation price, when supplied.
    pub liquidation_price: Option<Price>,
    /// Entry price as the venue last reported it (USD-M `ep`).
    pub venue_entry_price: Option<Price>,
    /// Unrealized PnL as the venue last reported it (USD-M `up`).
    pub venue_unrealized: Option<Money>,
}

impl Position {
    /// A flat position.
    pub fn new(instrument: InstrumentId, price_scale: u8, qty_scale: u8) -> Self {
        Position {
            instrument,
            qty: Qty::ZERO,
            cost_raw: 0,
            realized_raw: 0,
            fees: Money::ZERO,
            quote_asset: None,
            price_scale,
            qty_scale,
            mark: None,
            leverage: None,
            liquidation_price: None,
            venue_entry_price: None,
            venue_unrealized: None,
        }
    }

    /// Scale of the raw accumulators (`price_scale + qty_scale`).
    #[inline]
    pub fn raw_scale(&self) -> u8 {
        // Each scale is at most 18 (checked when the instrument is added): no u8 wrap.
        self.price_scale.saturating_add(self.qty_scale)
    }

    /// Long, short or flat.
    pub fn side(&self) -> PositionSide {
        match self.qty.0 {
            0 => PositionSide::Flat,
            q if q > 0 => PositionSide::Long,
            _ => PositionSide::Short,
        }
    }

    /// Cost basis of the open quantity (Σ entry price × signed qty), raw scale.
    pub fn cost_raw(&self) -> i128 {
        self.cost_raw
    }

    /// Gross realized PnL (before fees), raw scale.
    pub fn realized_raw(&self) -> i128 {
        self.realized_raw
    }

    /// Average entry price, `C / q` rounded half away from zero; `None` when flat.
    pub fn avg_entry_price(&self) -> Option<Price> {
        if self.qty.0 == 0 {
            return None;
        }
        // C / q is a weighted mean of entry prices, so it fits; checked all the same.
        div_round(self.cost_raw, i128::from(self.qty.0))
            .and_then(|v| i64::try_from(v).ok())
            .map(Price)
    }

    /// Realized PnL net of quote-asset fees.
    ///
    /// # Errors
    /// [`MathError::Overflow`].
    pub fn realized_pnl(&self) -> Result<Money, MathError> {
        raw_to_money(self.realized_raw, self.raw_scale(), "realized pnl")?
            .sub(self.fees, "realized pnl")
    }

    /// Unrealized PnL at `mark`, raw scale: `mark·q − C`.
    ///
    /// # Errors
    /// [`MathError::Overflow`].
    pub fn unrealized_raw(&self, mark: Price) -> Result<i128, MathError> {
        notional_raw(mark, self.qty)
            .checked_sub(self.cost_raw)
            .ok_or(overflow("unrealized pnl"))
    }

    /// Unrealized PnL at the current mark (zero when flat or unmarked).
    ///
    /// # Errors
    /// [`MathError::Overflow`].
    pub fn unrealized_pnl(&self) -> Result<Money, MathError> {
        match self.mark {
            Some(m) if self.qty.0 != 0 => {
                raw_to_money(self.unrealized_raw(m)?, self.raw_scale(), "unrealized pnl")
            }
            _ => Ok(Money::ZERO),
        }
    }

    /// Applies one fill; `quote_fee` is the part of its fee charged in the quote asset (zero
    /// otherwise). All-or-nothing: on error the position is unchanged.
    ///
    /// # Errors
    /// [`MathError::Overflow`].
    pub fn apply_fill(
        &mut self,
        side: OrderSide,
        price: Price,
        qty: Qty,
        quote_fee: Money,
    ) -> Result<FillEffect, MathError> {
        let d = match side {
            OrderSide::Buy => qty.0,
            OrderSide::Sell => qty.0.checked_neg().ok_or(overflow("fill qty"))?,
        };
        let q = self.qty.0;
        let mut cost = self.cost_raw;
        let mut realized = self.realized_raw;
        let mut eff = FillEffect::default();
        let new_q = q.checked_add(d).ok_or(overflow("position qty"))?;
        // Magnitudes are taken unsigned (|i64::MIN| = 2^63 does not fit an i64) and every
        // narrowing back is checked: a fill of i64::MIN is an overflow error, not a wrap.
        let qty_of = |m: u64| i64::try_from(m).map_err(|_| overflow("fill qty"));
        if q == 0 || (q > 0) == (d > 0) {
            cost = cost
                .checked_add(notional_raw(price, Qty(d)))
                .ok_or(overflow("cost basis"))?;
            eff.opened = Qty(qty_of(d.unsigned_abs())?);
        } else {
            let abs_q = q.unsigned_abs();
            let closed = d.unsigned_abs().min(abs_q);
            let removed = if closed == abs_q {
                cost
            } else {
                let num = cost
                    .checked_mul(i128::from(closed))
                    .ok_or(overflow("cost basis"))?;
                div_round(num, i128::from(abs_q)).ok_or(overflow("cost basis"))?
            };
            // closed = min(|d|, |q|) <= 2^63; 2^63 itself is refused by the narrowing.
            let closed_i = qty_of(closed)?;
            // Closing a long sells at p (+p·c); closing a short buys at p (−p·c).
            let closed_signed = if q > 0 { closed_i } else { -closed_i };
            let proceeds = notional_raw(price, Qty(closed_signed));
            let pnl = proceeds
                .checked_sub(removed)
                .ok_or(overflow("realized pnl"))?;
            realized = realized.checked_add(pnl).ok_or(overflow("realized pnl"))?;
            cost = cost.checked_sub(removed).ok_or(overflow("cost basis"))?;
            eff.realized_raw = pnl;
            eff.closed = Qty(closed_i);
            // closed <= |d|: no underflow.
            let rest = d.unsigned_abs() - closed;
            if rest > 0 {
                let rest_i = qty_of(rest)?;
                let rest_signed = if d > 0 { rest_i } else { -rest_i };
                cost = notional_raw(price, Qty(rest_signed));
                eff.opened = Qty(rest_i);
                eff.flipped = true;
            }
        }
        let fees = self.fees.add(quote_fee, "position fees")?;
        // Check the presented values still fit before committing.
        raw_to_money(realized, self.raw_scale(), "realized pnl")?;
        self.qty = Qty(new_q);
        self.cost_raw = cost;
        self.realized_raw = realized;
        self.fees = fees;
        Ok(eff)
    }

    /// Replaces quantity and entry price with the venue's (USD-M one-way mode), keeping
    /// realized PnL and fees: the venue is the truth when the two disagree.
    pub fn adopt_venue(&mut self, qty: Qty, entry_price: Price) {
        self.qty = qty;
        self.cost_raw = notional_raw(entry_price, qty);
    }
}

/// A position snapshot for clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PositionUpdate {
    /// Instrument.
    pub instrument: InstrumentId,
    /// Long, short, flat.
    pub side: PositionSide,
    /// Signed quantity.
    pub qty: Qty,
    /// Average entry price.
    pub avg_entry_price: Option<Price>,
    /// Mark price used for `unrealized_pnl`.
    pub mark: Option<Price>,
    /// Realized PnL net of quote-asset fees.
    pub realized_pnl: Money,
    /// Unrealized PnL at `mark`.
    pub unrealized_pnl: Money,
    /// Quote-asset fees paid.
    pub fees: Money,
    /// Leverage, when known.
    pub leverage: Option<u32>,
    /// Liquidation price, when known.
    pub liquidation_price: Option<Price>,
}

impl Position {
    /// The client-facing snapshot.
    ///
    /// # Errors
    /// [`MathError::Overflow`].
    pub fn snapshot(&self) -> Result<PositionUpdate, MathError> {
        Ok(PositionUpdate {
            instrument: self.instrument,
            side: self.side(),
            qty: self.qty,
            avg_entry_price: self.avg_entry_price(),
            mark: self.mark,
            realized_pnl: self.realized_pnl()?,
            unrealized_pnl: self.unrealized_pnl()?,
            fees: self.fees,
            leverage: self.leverage,
            liquidation_price: self.liquidation_price,
        })
    }
}

/// Portfolio summary in the account's quote asset.
///
/// Equity here is PnL equity: realized (net of fees) + unrealized of the positions quoted in
/// the account's quote asset, starting from zero. Balances are reported beside it, not mixed
/// in, because a spot balance already moves with every fill (adding it would count the
/// position twice). Positions quoted in another asset are left out of the sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Portfolio {
    /// Free + locked balance of the quote asset (wallet balance on USD-M).
    pub total_balance: Money,
    /// Σ realized PnL net of fees.
    pub realized_pnl: Money,
    /// Σ unrealized PnL.
    pub unrealized_pnl: Money,
    /// realized + unrealized.
    pub total_pnl: Money,
    /// Positions that are not flat.
    pub open_positions: u32,
    /// Highest equity (total PnL) seen.
    pub equity_peak: Money,
    /// `equity_peak − total_pnl` (never negative).
    pub drawdown: Money,
}

/// Running equity peak, for drawdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EquityTracker {
    peak: Option<Money>,
}

impl EquityTracker {
    /// Sums `positions` (those quoted in `quote`, or all when `quote` is `None`) into a
    /// portfolio and moves the equity peak.
    ///
    /// # Errors
    /// [`MathError::Overflow`].
    pub fn summarise<'a>(
        &mut self,
        positions: impl Iterator<Item = &'a Position>,
        quote: Option<Asset>,
        total_balance: Money,
    ) -> Result<Portfolio, MathError> {
        let mut p = Portfolio {
            total_balance,
            ..Portfolio::default()
        };
        for pos in positions {
            if quote.is_some() && pos.quote_asset.is_some() && pos.quote_asset != quote {
                continue;
            }
            p.realized_pnl = p
                .realized_pnl
                .add(pos.realized_pnl()?, "portfolio realized")?;
            p.unrealized_pnl = p
                .unrealized_pnl
                .add(pos.unrealized_pnl()?, "portfolio unrealized")?;
            if pos.qty.0 != 0 {
                // A count of positions (one per instrument): cannot reach u32::MAX.
                p.open_positions = p.open_positions.saturating_add(1);
            }
        }
        p.total_pnl = p.realized_pnl.add(p.unrealized_pnl, "total pnl")?;
        let peak = self.peak.map_or(p.total_pnl, |pk| pk.max(p.total_pnl));
        self.peak = Some(peak);
        p.equity_peak = peak;
        p.drawdown = peak.sub(p.total_pnl, "drawdown")?;
        Ok(p)
    }
}
