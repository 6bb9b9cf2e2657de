//! The trigger index of one instrument: where tape-managed triggers wait for the market.
//!
//! Per side of the order a trigger sends (sells watch the best bid, buys the best ask, both
//! also watch trade prints), fixed triggers sit in two ordered sets keyed by trigger price:
//! "fire at or above X" is checked from its lowest element, "fire at or below X" from its
//! highest, and each check stops at the first element that does not fire. Trailing stops sit
//! in a [`TrailBook`] in oriented prices (sells as is, buys negated). An event that fires
//! nothing and moves no peak therefore costs a few `O(log n)` boundary looks per side,
//! whatever the number of armed triggers.

use std::collections::BTreeSet;

use super::advanced::TriggerDir;
use super::ids::AdvancedId;
use super::kinds::OrderSide;
use super::trailing::{Moved, TrailBook, TrailOffset};
use crate::fixed::Price;

/// (trigger price, advanced order, leg).
type Key = (Price, AdvancedId, u8);

#[derive(Debug, Clone, Default)]
struct SideIndex {
    above: BTreeSet<Key>,
    below: BTreeSet<Key>,
    trail: TrailBook,
}

/// Triggers and last prices of one instrument.
#[derive(Debug, Clone, Default)]
pub(super) struct InstrumentIndex {
    bid: Option<Price>,
    ask: Option<Price>,
    last: Option<Price>,
    /// [sell, buy]
    sides: [SideIndex; 2],
}

fn side_ix(s: OrderSide) -> usize {
    match s {
        OrderSide::Sell => 0,
        OrderSide::Buy => 1,
    }
}

/// Oriented price for a trailing book: sells as is, buys negated (`None` for `i64::MIN`,
/// which has no negation; trailing books only ever see positive prices).
pub(super) fn orient(s: OrderSide, p: i64) -> Option<i64> {
    match s {
        OrderSide::Sell => Some(p),
        OrderSide::Buy => p.checked_neg(),
    }
}

impl InstrumentIndex {
    /// The price a new trailing stop on `side` starts from: the touch it watches, else the
    /// last trade.
    pub fn reference(&self, side: OrderSide) -> Option<Price> {
        match side {
            OrderSide::Sell => self.bid.or(self.last),
            OrderSide::Buy => self.ask.or(self.last),
        }
    }

    /// Arms a fixed trigger.
    pub fn insert_fixed(
        &mut self,
        side: OrderSide,
        dir: TriggerDir,
        trigger: Price,
        id: AdvancedId,
        leg: u8,
    ) {
        let st = &mut self.sides[side_ix(side)];
        match dir {
            TriggerDir::AtOrAbove => st.above.insert((trigger, id, leg)),
            TriggerDir::AtOrBelow => st.below.insert((trigger, id, leg)),
        };
    }

    /// Disarms a fixed trigger.
    pub fn remove_fixed(
        &mut self,
        side: OrderSide,
        dir: TriggerDir,
        trigger: Price,
        id: AdvancedId,
        leg: u8,
    ) {
        let st = &mut self.sides[side_ix(side)];
        match dir {
            TriggerDir::AtOrAbove => st.above.remove(&(trigger, id, leg)),
            TriggerDir::AtOrBelow => st.below.remove(&(trigger, id, leg)),
        };
    }

    /// Arms a trailing stop at oriented `peak`.
    pub fn insert_trailing(
        &mut self,
        side: OrderSide,
        peak: i64,
        id: AdvancedId,
        offset: TrailOffset,
    ) {
        self.sides[side_ix(side)].trail.insert(peak, id, offset);
    }

    /// Disarms a trailing stop whose oriented peak is `peak`.
    pub fn remove_trailing(&mut self, side: OrderSide, peak: i64, id: AdvancedId) {
        self.sides[side_ix(side)].trail.remove(peak, id);
    }

    /// Records the event's prices (`None` bid/ask: unchanged; `last`: a print in this event)
    /// and removes everything that fires: fixed triggers into `fired`, trailing stops into
    /// `trail_fired`; trailing stops whose peak moved go to `moved`.
    pub fn evaluate(
        &mut self,
        bid: Option<Price>,
        ask: Option<Price>,
        last: Option<Price>,
        fired: &mut Vec<(AdvancedId, u8)>,
        moved: &mut Vec<Moved>,
        trail_fired: &mut Vec<Moved>,
    ) {
        self.bid = bid.or(self.bid);
        self.ask = ask.or(self.ask);
        if last.is_some() {
            self.last = last;
        }
        for side in [OrderSide::Sell, OrderSide::Buy] {
            let touch = match side {
                OrderSide::Sell => self.bid,
                OrderSide::Buy => self.ask,
            };
            let (lo, hi) = match (touch, last) {
                (Some(t), Some(l)) => (t.min(l), t.max(l)),
                (Some(p), None) | (None, Some(p)) => (p, p),
                (None, None) => continue,
            };
            let st = &mut self.sides[side_ix(side)];
            while let Some(&k) = st.below.last() {
                if lo > k.0 {
                    break;
                }
                st.below.remove(&k);
                fired.push((k.1, k.2));
            }
            while let Some(&k) = st.above.first() {
                if hi < k.0 {
                    break;
                }
                st.above.remove(&k);
                fired.push((k.1, k.2));
            }
            // Trailing stops trail prices, and a value at or below zero is not one: feeding it
            // would move a peak to a stop that is no price (and `-i64::MIN` does not exist).
            if st.trail.len() > 0 && lo.0 > 0 {
                // 0 < lo <= hi, so both negations are exact.
                let (olo, ohi) = match side {
                    OrderSide::Sell => (lo.0, hi.0),
                    OrderSide::Buy => (-hi.0, -lo.0),
                };
                st.trail.raise(ohi, moved);
                st.trail.fire(olo, trail_fired);
            }
        }
    }
}
