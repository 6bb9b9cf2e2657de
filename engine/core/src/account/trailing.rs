//! The trailing-stop index of one instrument and side.
//!
//! Prices are "oriented" so one structure serves both sides: a sell trailing stop (protecting
//! a long) works on prices as they are, a buy trailing stop (protecting a short) on negated
//! prices. In oriented space every stop trails a *peak* (the highest oriented price seen since
//! the order was armed) by its offset, and fires when the oriented low of an event reaches it.
//!
//! Orders are grouped into buckets by peak. When the price rises to `hi`, every order whose
//! peak is below `hi` now has peak `hi`: all buckets below `hi` merge into the bucket at `hi`
//! (the smaller member list is appended to the larger). A bucket's best (highest) stop is
//! `peak − min offset`, so a bucket only needs its minimum absolute offset and minimum bps
//! offset; an ordered set of bucket stops answers "does anything fire at `lo`?" by looking at
//! its last element.
//!
//! Complexity, `n` armed stops, `b` buckets: an event that moves no peak and fires nothing
//! costs two `O(log b)` boundary looks. An event that raises the peak touches only the orders
//! whose peak changes (`k` of them: each gets an update), plus `O(m log b)` for the `m`
//! buckets merged; buckets are created only by new orders, so merges are amortised against
//! placements. Firing costs `O(size of the bucket)`. Cancelling costs `O(size of its bucket)`.

use std::collections::{BTreeMap, BTreeSet};

use super::ids::AdvancedId;
use crate::fixed::Price;

/// How far a trailing stop trails its peak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrailOffset {
    /// A fixed price distance (positive, at the instrument's price scale).
    Absolute(Price),
    /// A fraction of the peak in basis points (1 to 9 999): offset = |peak| × bps / 10 000,
    /// truncated toward zero (the stop is never further away than asked).
    Bps(u32),
}

impl TrailOffset {
    /// The offset at `peak` (a price mantissa); `None` when it does not fit an `i64` (only
    /// possible for a bps value far above 10 000, which placement refuses).
    #[inline]
    pub fn at(self, peak: i64) -> Option<i64> {
        i64::try_from(self.exact(peak)).ok()
    }

    /// The offset at `peak`, exact.
    #[inline]
    fn exact(self, peak: i64) -> i128 {
        match self {
            TrailOffset::Absolute(p) => i128::from(p.0),
            TrailOffset::Bps(b) => bps_offset(peak, b),
        }
    }

    /// The oriented stop `peak − offset`, exact: stops are kept in `i128` so no peak and
    /// offset can wrap or saturate them; whether the stop is a valid price is decided where
    /// it leaves this module ([`stop_price`]).
    #[inline]
    pub(super) fn stop(self, peak: i64) -> i128 {
        i128::from(peak) - self.exact(peak)
    }
}

/// The real stop price of an oriented stop (`oriented` is the price for a sell stop, its
/// negation for a buy stop); `None` unless it is a price, in `1..=i64::MAX`.
pub(super) fn stop_price(sell: bool, oriented: i128) -> Option<Price> {
    let p = if sell {
        Some(oriented)
    } else {
        oriented.checked_neg()
    };
    p.and_then(|p| i64::try_from(p).ok())
        .filter(|&p| p > 0)
        .map(Price)
}

/// |peak| × bps / 10 000 truncated toward zero, exact (2^63 × 2^32 fits an `i128`).
#[inline]
fn bps_offset(peak: i64, bps: u32) -> i128 {
    i128::from(peak.unsigned_abs()) * i128::from(bps) / 10_000
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Member {
    id: AdvancedId,
    offset: TrailOffset,
}

#[derive(Debug, Clone, Default)]
struct Bucket {
    members: Vec<Member>,
    min_abs: Option<i64>,
    min_bps: Option<u32>,
}

impl Bucket {
    fn add_offset(&mut self, o: TrailOffset) {
        match o {
            TrailOffset::Absolute(p) => {
                self.min_abs = Some(self.min_abs.map_or(p.0, |m| m.min(p.0)))
            }
            TrailOffset::Bps(b) => self.min_bps = Some(self.min_bps.map_or(b, |m| m.min(b))),
        }
    }

    fn recompute(&mut self) {
        self.min_abs = None;
        self.min_bps = None;
        for i in 0..self.members.len() {
            let o = self.members[i].offset;
            self.add_offset(o);
        }
    }

    /// The highest stop of any member at `peak` (exact; `peak` itself for an empty bucket,
    /// which is never kept).
    fn stop(&self, peak: i64) -> i128 {
        let a = self.min_abs.map(i128::from);
        let b = self.min_bps.map(|b| bps_offset(peak, b));
        let off = match (a, b) {
            (Some(a), Some(b)) => a.min(b),
            (Some(x), None) | (None, Some(x)) => x,
            (None, None) => 0,
        };
        i128::from(peak) - off
    }
}

/// A stop whose peak moved or that fired: (order, oriented peak, oriented stop, exact).
pub(super) type Moved = (AdvancedId, i64, i128);

/// The trailing stops of one instrument and side, in oriented prices.
#[derive(Debug, Clone, Default)]
pub(super) struct TrailBook {
    buckets: BTreeMap<i64, Bucket>,
    /// (bucket stop, bucket peak) of every bucket.
    stops: BTreeSet<(i128, i64)>,
    len: usize,
}

impl TrailBook {
    /// Number of armed stops.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Arms a stop at `peak`; returns its stop.
    pub fn insert(&mut self, peak: i64, id: AdvancedId, offset: TrailOffset) -> i128 {
        let b = self.buckets.entry(peak).or_default();
        if !b.members.is_empty() {
            self.stops.remove(&(b.stop(peak), peak));
        }
        b.members.push(Member { id, offset });
        b.add_offset(offset);
        self.stops.insert((b.stop(peak), peak));
        self.len += 1;
        offset.stop(peak)
    }

    /// Disarms the stop `id` whose current peak is `peak`; false if it is not there.
    pub fn remove(&mut self, peak: i64, id: AdvancedId) -> bool {
        let Some(b) = self.buckets.get_mut(&peak) else {
            return false;
        };
        let Some(pos) = b.members.iter().position(|m| m.id == id) else {
            return false;
        };
        self.stops.remove(&(b.stop(peak), peak));
        b.members.swap_remove(pos);
        self.len -= 1;
        if b.members.is_empty() {
            self.buckets.remove(&peak);
        } else {
            b.recompute();
            self.stops.insert((b.stop(peak), peak));
        }
        true
    }

    /// The price rose to `hi`: every stop with a lower peak now trails `hi`. Appends each
    /// moved stop with its new peak and stop to `moved`.
    pub fn raise(&mut self, hi: i64, moved: &mut Vec<Moved>) {
        match self.buckets.first_key_value() {
            Some((&low, _)) if low < hi => {}
            _ => return,
        }
        let at_or_above = self.buckets.split_off(&hi);
        let below = std::mem::replace(&mut self.buckets, at_or_above);
        let mut target = match self.buckets.remove(&hi) {
            Some(b) => {
                self.stops.remove(&(b.stop(hi), hi));
                b
            }
            None => Bucket::default(),
        };
        for (peak, mut b) in below {
            self.stops.remove(&(b.stop(peak), peak));
            for m in &b.members {
                moved.push((m.id, hi, m.offset.stop(hi)));
            }
            if b.members.len() > target.members.len() {
                std::mem::swap(&mut b.members, &mut target.members);
            }
            target.members.append(&mut b.members);
            if let Some(a) = b.min_abs {
                target.add_offset(TrailOffset::Absolute(Price(a)));
            }
            if let Some(x) = b.min_bps {
                target.add_offset(TrailOffset::Bps(x));
            }
        }
        self.stops.insert((target.stop(hi), hi));
        self.buckets.insert(hi, target);
    }

    /// The price fell to `lo`: removes every stop at or above `lo` and appends it to `fired`.
    pub fn fire(&mut self, lo: i64, fired: &mut Vec<Moved>) {
        let lo = i128::from(lo);
        while let Some(&(stop, peak)) = self.stops.last() {
            if stop < lo {
                break;
            }
            self.stops.remove(&(stop, peak));
            let Some(mut b) = self.buckets.remove(&peak) else {
                continue;
            };
            let before = b.members.len();
            b.members.retain(|m| {
                let s = m.offset.stop(peak);
                if s >= lo {
                    fired.push((m.id, peak, s));
                    false
                } else {
                    true
                }
            });
            self.len -= before - b.members.len();
            if !b.members.is_empty() {
                b.recompute();
                self.stops.insert((b.stop(peak), peak));
                self.buckets.insert(peak, b);
            }
        }
    }

    /// True when the next event at (`lo`, `hi`) would neither move a peak nor fire.
    #[cfg(test)]
    pub fn quiet(&self, lo: i64, hi: i64) -> bool {
        self.buckets.first_key_value().is_none_or(|(&k, _)| k >= hi)
            && self.stops.last().is_none_or(|&(s, _)| s < i128::from(lo))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[Moved]) -> Vec<u64> {
        let mut x: Vec<u64> = v.iter().map(|m| m.0 .0).collect();
        x.sort();
        x
    }

    #[test]
    fn buckets_merge_on_new_peaks_and_fire_by_offset() {
        let mut t = TrailBook::default();
        // two stops armed at 100 (offsets 5 and 10), one at 90 (offset 2)
        assert_eq!(
            t.insert(100, AdvancedId(1), TrailOffset::Absolute(Price(5))),
            95
        );
        t.insert(100, AdvancedId(2), TrailOffset::Absolute(Price(10)));
        t.insert(90, AdvancedId(3), TrailOffset::Absolute(Price(2)));
        assert_eq!(t.len(), 3);
        let mut moved = Vec::new();
        t.raise(95, &mut moved);
        assert_eq!(
            moved,
            vec![(AdvancedId(3), 95, 93)],
            "only the stop whose peak changed"
        );
        assert!(!t.quiet(95, 95), "stop 95 of order 1 is reachable");
        assert!(t.quiet(96, 95), "no peak below 95, no stop above 95");
        moved.clear();
        t.raise(110, &mut moved);
        assert_eq!(ids(&moved), vec![1, 2, 3]);
        // stops now: 1 -> 105, 2 -> 100, 3 -> 108
        let mut fired = Vec::new();
        t.fire(106, &mut fired);
        assert_eq!(fired, vec![(AdvancedId(3), 110, 108)]);
        fired.clear();
        t.fire(104, &mut fired);
        assert_eq!(fired, vec![(AdvancedId(1), 110, 105)]);
        assert!(t.remove(110, AdvancedId(2)));
        assert!(!t.remove(110, AdvancedId(2)));
        assert_eq!(t.len(), 0);
        assert!(t.quiet(0, i64::MAX));
    }

    #[test]
    fn bps_offsets_truncate_and_mix_with_absolute() {
        let mut t = TrailBook::default();
        // 1% of 10_000 = 100 -> stop 9_900; absolute 50 -> 9_950
        assert_eq!(
            t.insert(10_000, AdvancedId(1), TrailOffset::Bps(100)),
            9_900
        );
        t.insert(10_000, AdvancedId(2), TrailOffset::Absolute(Price(50)));
        let mut fired = Vec::new();
        t.fire(9_951, &mut fired);
        assert!(fired.is_empty());
        t.fire(9_950, &mut fired);
        assert_eq!(fired, vec![(AdvancedId(2), 10_000, 9_950)]);
        // 0.33% of 10_001 = 33.0033 -> 33
        assert_eq!(TrailOffset::Bps(33).at(10_001), Some(33));
        assert_eq!(
            TrailOffset::Bps(33).at(-10_001),
            Some(33),
            "offset is on the magnitude"
        );
    }
}
