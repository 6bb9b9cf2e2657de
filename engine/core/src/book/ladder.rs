//! One instrument's L2 book: two sorted ladders of price levels.
//!
//! Each side is sorted so that the **best price is at the end** (bids ascending, asks
//! descending): top-of-book inserts and deletes move only the few levels above them, the best
//! level is `last()`, and lookups are a binary search over a plain `Vec<Price>` (quantities
//! live in a parallel `Vec<Qty>`, so a search touches 8 bytes per level, not 16), among the
//! [`TOP`] slots nearest the best when the price is there, else among the rest.
//!
//! Real Binance diffs are less top-heavy than that layout assumes: in the hftbacktest USD-M
//! BTCUSDT capture the median level touched is ~180 levels from the top, over a third of the
//! updates insert or delete, and many inserts land below the snapshot's 1000 levels. So:
//!
//! * a delete below the top leaves a *tombstone* (quantity zero, price kept, order intact)
//!   instead of closing the gap; an insert at that price later just fills it in (half the
//!   inserts in that capture are at a price deleted earlier);
//! * an insert elsewhere shifts levels only as far as the nearest tombstone within 32 slots,
//!   or else toward the nearer end of the ladder: there is spare room below the worst level,
//!   so growing the book at its deep end is cheap too;
//! * tombstones are never the last slot, and are compacted away once they outnumber the live
//!   levels (and at least 64 of them exist).
//!
//! This cut a replay of that capture from ~63 to ~30 ns per level update. Capacity is kept
//! across [`OrderBook::clear`] and [`OrderBook::load_snapshot`], so a book that has reached
//! its working size does not allocate again.

use std::iter::FusedIterator;

use crate::fixed::{Price, Qty};
use crate::msg::{Level, Side};

/// How far (in slots) an insert looks for a tombstone to shift into before falling back to
/// shifting toward the nearer end of the ladder.
const HOLE_WINDOW: usize = 32;

/// Slots nearest the best that [`Ladder::search`] looks among first.
const TOP: usize = 16;

/// Tombstones tolerated on a side regardless of its size before compaction is considered.
const MIN_TOMBSTONES: usize = 64;

/// What [`OrderBook::apply`] did to a level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LevelChange {
    /// A new level was created.
    Inserted,
    /// An existing level got a new quantity.
    Updated {
        /// Its quantity before the update.
        old: Qty,
    },
    /// A level was removed by a zero quantity.
    Deleted {
        /// Its quantity before the delete.
        old: Qty,
    },
    /// The level already had exactly this quantity: nothing changed.
    Unchanged,
    /// A zero quantity for a price that is not in the book: nothing changed.
    AbsentDelete,
    /// A negative quantity, which no exchange sends: ignored, nothing changed.
    Rejected,
}

impl LevelChange {
    /// True when the book was modified (insert, update or delete).
    #[inline]
    pub fn is_change(self) -> bool {
        matches!(
            self,
            LevelChange::Inserted | LevelChange::Updated { .. } | LevelChange::Deleted { .. }
        )
    }
}

/// Best-first iterator over the levels of one side of an [`OrderBook`].
#[derive(Debug, Clone)]
pub struct LevelIter<'a> {
    /// Remaining slots, worst first (tombstones included); `next` takes from the end.
    prices: &'a [Price],
    qtys: &'a [Qty],
}

impl Iterator for LevelIter<'_> {
    type Item = Level;

    #[inline]
    fn next(&mut self) -> Option<Level> {
        while let (Some((&price, prices)), Some((&qty, qtys))) =
            (self.prices.split_last(), self.qtys.split_last())
        {
            self.prices = prices;
            self.qtys = qtys;
            if !qty.is_zero() {
                return Some(Level { price, qty });
            }
        }
        None
    }
}

impl DoubleEndedIterator for LevelIter<'_> {
    /// Worst level first.
    #[inline]
    fn next_back(&mut self) -> Option<Level> {
        while let (Some((&price, prices)), Some((&qty, qtys))) =
            (self.prices.split_first(), self.qtys.split_first())
        {
            self.prices = prices;
            self.qtys = qtys;
            if !qty.is_zero() {
                return Some(Level { price, qty });
            }
        }
        None
    }
}

impl FusedIterator for LevelIter<'_> {}

/// One side, best price last, as two parallel vectors (prices are searched on their own, so
/// a 1000-level side's search touches 8 KB instead of 16 KB). The ladder is
/// `prices[start..]`/`qtys[start..]`; it may hold tombstones (quantity zero) but never as the
/// last slot, and `live` counts the others. Slots below `start` are spare room (zeros) so an
/// insert near the worst end can shift the few levels below it down instead of every level
/// above it up.
#[derive(Debug, Clone, Default)]
struct Ladder<const ASC: bool> {
    prices: Vec<Price>,
    qtys: Vec<Qty>,
    start: usize,
    live: usize,
}

impl<const ASC: bool> Ladder<ASC> {
    fn with_capacity(n: usize) -> Self {
        Ladder {
            prices: Vec::with_capacity(n),
            qtys: Vec::with_capacity(n),
            start: 0,
            live: 0,
        }
    }

    fn clear(&mut self) {
        self.prices.clear();
        self.qtys.clear();
        self.start = 0;
        self.live = 0;
    }

    /// Number of slots (live levels and tombstones).
    #[inline(always)]
    fn slots(&self) -> usize {
        self.prices.len() - self.start
    }

    /// Slot of `price` (live or tombstone), or where it would go, counted from `start`.
    ///
    /// A price at or better than the [`TOP`]th slot from the best is searched for among
    /// those slots only (four halvings instead of ~eight on a 200-level side), anything
    /// else among the rest: one comparison more for a deep level, half the dependent loads
    /// for the levels near the top that most diffs change.
    #[inline(always)]
    fn search(&self, price: Price) -> Result<usize, usize> {
        let prices = &self.prices[self.start..];
        let n = prices.len();
        let (lo, part) = match n
            .checked_sub(TOP)
            .and_then(|edge| Some((edge, prices.get(edge)?)))
        {
            Some((edge, &p)) if Self::at_or_better(price, p) => (edge, &prices[edge..]),
            Some((edge, _)) => (0, &prices[..edge]),
            None => (0, prices),
        };
        let found = if ASC {
            part.binary_search(&price)
        } else {
            part.binary_search_by(|p| price.cmp(p))
        };
        match found {
            Ok(i) => Ok(lo + i),
            Err(i) => Err(lo + i),
        }
    }

    /// `price` is at `p` or better than it on this side.
    #[inline(always)]
    fn at_or_better(price: Price, p: Price) -> bool {
        if ASC {
            price >= p
        } else {
            price <= p
        }
    }

    #[inline(always)]
    fn apply(&mut self, price: Price, qty: Qty) -> LevelChange {
        if qty.0 < 0 {
            return LevelChange::Rejected;
        }
        match self.search(price) {
            Ok(i) => {
                let slot = &mut self.qtys[self.start + i];
                let old = *slot;
                if old.is_zero() {
                    if qty.is_zero() {
                        return LevelChange::AbsentDelete;
                    }
                    *slot = qty;
                    self.live += 1;
                    LevelChange::Inserted
                } else if qty.is_zero() {
                    self.delete(i);
                    LevelChange::Deleted { old }
                } else if old == qty {
                    LevelChange::Unchanged
                } else {
                    *slot = qty;
                    LevelChange::Updated { old }
                }
            }
            Err(_) if qty.is_zero() => LevelChange::AbsentDelete,
            Err(i) => {
                self.insert(i, price, qty);
                LevelChange::Inserted
            }
        }
    }

    /// Deletes the live level at slot `i`.
    #[inline(always)]
    fn delete(&mut self, i: usize) {
        self.live -= 1;
        let n = self.slots();
        if i + 1 == n {
            self.prices.pop();
            self.qtys.pop();
            while self.qtys.len() > self.start && self.qtys.last().is_some_and(|q| q.is_zero()) {
                self.prices.pop();
                self.qtys.pop();
            }
            if self.qtys.len() == self.start {
                self.clear();
            }
        } else {
            self.qtys[self.start + i] = Qty::ZERO;
            let dead = n - self.live;
            if dead > MIN_TOMBSTONES && dead > self.live {
                self.compact();
            }
        }
    }

    /// Drops every tombstone and the spare room.
    #[cold]
    fn compact(&mut self) {
        let mut w = 0;
        for r in self.start..self.qtys.len() {
            if !self.qtys[r].is_zero() {
                self.prices[w] = self.prices[r];
                self.qtys[w] = self.qtys[r];
                w += 1;
            }
        }
        self.prices.truncate(w);
        self.qtys.truncate(w);
        self.start = 0;
    }

    #[inline(always)]
    fn set(&mut self, slot: usize, price: Price, qty: Qty) {
        self.prices[self.start + slot] = price;
        self.qtys[self.start + slot] = qty;
    }

    /// Moves slots `from` one place up (`up`) or down, both vectors alike.
    #[inline(always)]
    fn shift(&mut self, from: std::ops::Range<usize>, up: bool) {
        let (a, b) = (self.start + from.start, self.start + from.end);
        let dest = if up { a + 1 } else { a - 1 };
        self.prices.copy_within(a..b, dest);
        self.qtys.copy_within(a..b, dest);
    }

    /// Inserts a new live level at insertion point `i`, reusing a nearby tombstone if any.
    #[inline(always)]
    fn insert(&mut self, i: usize, price: Price, qty: Qty) {
        let n = self.slots();
        let dead = n - self.live;
        self.live += 1;
        if i == n {
            self.prices.push(price);
            self.qtys.push(qty);
            return;
        }
        let q = &self.qtys[self.start..];
        // A tombstone right next to the insertion point can take the level as it is: its
        // price is between the neighbours of `i`, so the order holds.
        if q[i].is_zero() {
            return self.set(i, price, qty);
        }
        if i > 0 && q[i - 1].is_zero() {
            return self.set(i - 1, price, qty);
        }
        if dead > 0 {
            // Shift only up to the nearest tombstone above, else below.
            let hi = (i + HOLE_WINDOW).min(n);
            if let Some(k) = q[i + 1..hi].iter().position(|q| q.is_zero()) {
                self.shift(i..i + 1 + k, true);
                return self.set(i, price, qty);
            }
            if i >= 2 {
                let lo = i.saturating_sub(HOLE_WINDOW);
                if let Some(j) = q[lo..i - 1].iter().rposition(|q| q.is_zero()) {
                    self.shift(lo + j + 1..i, false);
                    return self.set(i - 1, price, qty);
                }
            }
        }
        // No tombstone close by: shift toward the nearer end.
        if i < n - i {
            if self.start == 0 {
                self.grow_room(n);
            }
            self.shift(0..i, false);
            self.start -= 1;
            self.set(i, price, qty);
        } else {
            self.prices.insert(self.start + i, price);
            self.qtys.insert(self.start + i, qty);
        }
    }

    /// Makes spare room below the worst level (amortised: a quarter of the ladder at a time).
    #[cold]
    fn grow_room(&mut self, n: usize) {
        let room = (n / 4).max(16);
        self.prices
            .splice(0..0, std::iter::repeat_n(Price::default(), room));
        self.qtys.splice(0..0, std::iter::repeat_n(Qty::ZERO, room));
        self.start = room;
    }

    /// Rebuilds the side from best-first `src`; returns how many levels were skipped.
    fn load(&mut self, src: &[Level]) -> usize {
        self.clear();
        self.prices.reserve(src.len());
        self.qtys.reserve(src.len());
        let mut skipped = 0;
        // Walking worst-first lets a well-ordered snapshot be pushed with no search at all.
        for &l in src.iter().rev() {
            if l.qty.0 <= 0 {
                skipped += 1;
                continue;
            }
            let in_order = match self.prices.last() {
                None => true,
                Some(&last) if ASC => l.price > last,
                Some(&last) => l.price < last,
            };
            if in_order {
                self.prices.push(l.price);
                self.qtys.push(l.qty);
                continue;
            }
            // Out of order or a duplicate: place it by search. On a duplicate the level met
            // first here (the later one in `src`) is kept, as a diff would leave it.
            match self.search(l.price) {
                Ok(_) => skipped += 1,
                Err(i) => {
                    self.prices.insert(i, l.price);
                    self.qtys.insert(i, l.qty);
                }
            }
        }
        self.live = self.prices.len();
        skipped
    }

    #[inline]
    fn best(&self) -> Option<Level> {
        match (self.prices.last(), self.qtys.last()) {
            (Some(&price), Some(&qty)) if self.slots() > 0 => Some(Level { price, qty }),
            _ => None,
        }
    }

    fn iter(&self) -> LevelIter<'_> {
        LevelIter {
            prices: &self.prices[self.start..],
            qtys: &self.qtys[self.start..],
        }
    }

    fn qty_at(&self, price: Price) -> Option<Qty> {
        let q = self.qtys[self.start + self.search(price).ok()?];
        (!q.is_zero()).then_some(q)
    }
}

/// One instrument's L2 book (price -> aggregate quantity per side).
#[derive(Debug, Clone, Default)]
pub struct OrderBook {
    bids: Ladder<true>,
    asks: Ladder<false>,
}

/// Books are equal when their live levels are (tombstones are an internal detail).
impl PartialEq for OrderBook {
    fn eq(&self, other: &Self) -> bool {
        self.bids.live == other.bids.live
            && self.asks.live == other.asks.live
            && self.bids().eq(other.bids())
            && self.asks().eq(other.asks())
    }
}

impl Eq for OrderBook {}

impl OrderBook {
    /// An empty book.
    pub fn new() -> Self {
        OrderBook::default()
    }

    /// An empty book with room for `levels_per_side` levels on each side.
    pub fn with_capacity(levels_per_side: usize) -> Self {
        OrderBook {
            bids: Ladder::with_capacity(levels_per_side),
            asks: Ladder::with_capacity(levels_per_side),
        }
    }

    /// Removes every level, keeping the allocated capacity.
    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
    }

    /// Sets the quantity at `price` on `side`; a zero quantity deletes the level.
    ///
    /// Deleting an absent level, re-setting the same quantity and negative quantities change
    /// nothing; the result says which case happened ([`LevelChange::is_change`]).
    #[inline]
    pub fn apply(&mut self, side: Side, price: Price, qty: Qty) -> LevelChange {
        match side {
            Side::Bid => self.bids.apply(price, qty),
            Side::Ask => self.asks.apply(price, qty),
        }
    }

    /// Replaces the whole book with a snapshot whose levels are best-first on each side.
    ///
    /// Levels with a zero (or negative) quantity are skipped; when a price appears twice on a
    /// side the later entry wins, as it would in a diff. Levels out of order are still placed
    /// correctly. Returns the number of levels skipped.
    pub fn load_snapshot(&mut self, bids: &[Level], asks: &[Level]) -> usize {
        self.bids.load(bids) + self.asks.load(asks)
    }

    /// The highest bid.
    #[inline]
    pub fn best_bid(&self) -> Option<Level> {
        self.bids.best()
    }

    /// The lowest ask.
    #[inline]
    pub fn best_ask(&self) -> Option<Level> {
        self.asks.best()
    }

    /// The best level of `side`.
    #[inline]
    pub fn best(&self, side: Side) -> Option<Level> {
        match side {
            Side::Bid => self.bids.best(),
            Side::Ask => self.asks.best(),
        }
    }

    /// Bids, best (highest) first.
    pub fn bids(&self) -> LevelIter<'_> {
        self.bids.iter()
    }

    /// Asks, best (lowest) first.
    pub fn asks(&self) -> LevelIter<'_> {
        self.asks.iter()
    }

    /// Levels of `side`, best first.
    pub fn levels(&self, side: Side) -> LevelIter<'_> {
        match side {
            Side::Bid => self.bids.iter(),
            Side::Ask => self.asks.iter(),
        }
    }

    /// Appends the best `n` levels of `side`, best first, to `out` (which is not cleared).
    pub fn top_n(&self, side: Side, n: usize, out: &mut Vec<Level>) {
        out.extend(self.levels(side).take(n));
    }

    /// The quantity resting at `price` on `side`, if that level exists.
    pub fn qty_at(&self, side: Side, price: Price) -> Option<Qty> {
        match side {
            Side::Bid => self.bids.qty_at(price),
            Side::Ask => self.asks.qty_at(price),
        }
    }

    /// Number of levels on `side`.
    #[inline]
    pub fn len(&self, side: Side) -> usize {
        match side {
            Side::Bid => self.bids.live,
            Side::Ask => self.asks.live,
        }
    }

    /// True when both sides are empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.bids.live == 0 && self.asks.live == 0
    }

    /// True when the best bid is at or above the best ask (never true with a side empty).
    #[inline]
    pub fn is_crossed(&self) -> bool {
        match (self.bids.best(), self.asks.best()) {
            (Some(b), Some(a)) => b.price >= a.price,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn lv(price: i64, qty: i64) -> Level {
        Level {
            price: Price(price),
            qty: Qty(qty),
        }
    }

    fn side_vec(it: LevelIter<'_>) -> Vec<(i64, i64)> {
        it.map(|l| (l.price.0, l.qty.0)).collect()
    }

    #[test]
    fn ladders_are_best_first_and_sides_are_ordered() {
        let mut b = OrderBook::new();
        for (p, q) in [(100, 1), (102, 2), (101, 3)] {
            assert_eq!(b.apply(Side::Bid, Price(p), Qty(q)), LevelChange::Inserted);
        }
        for (p, q) in [(105, 1), (103, 2), (104, 3)] {
            assert_eq!(b.apply(Side::Ask, Price(p), Qty(q)), LevelChange::Inserted);
        }
        assert_eq!(side_vec(b.bids()), vec![(102, 2), (101, 3), (100, 1)]);
        assert_eq!(side_vec(b.asks()), vec![(103, 2), (104, 3), (105, 1)]);
        assert_eq!(b.best_bid(), Some(lv(102, 2)));
        assert_eq!(b.best_ask(), Some(lv(103, 2)));
        assert_eq!(b.best(Side::Ask), Some(lv(103, 2)));
        assert_eq!(b.len(Side::Bid), 3);
        assert!(!b.is_crossed());
        let mut out = vec![lv(0, 0)];
        b.top_n(Side::Ask, 2, &mut out);
        assert_eq!(out, vec![lv(0, 0), lv(103, 2), lv(104, 3)]);
        assert_eq!(b.qty_at(Side::Bid, Price(101)), Some(Qty(3)));
        assert_eq!(b.qty_at(Side::Ask, Price(101)), None);
    }

    #[test]
    fn zero_qty_deletes_and_absent_delete_is_a_noop() {
        let mut b = OrderBook::new();
        b.apply(Side::Bid, Price(10), Qty(5));
        assert_eq!(
            b.apply(Side::Bid, Price(10), Qty(7)),
            LevelChange::Updated { old: Qty(5) }
        );
        assert_eq!(
            b.apply(Side::Bid, Price(10), Qty(7)),
            LevelChange::Unchanged
        );
        assert_eq!(
            b.apply(Side::Bid, Price(10), Qty::ZERO),
            LevelChange::Deleted { old: Qty(7) }
        );
        assert_eq!(
            b.apply(Side::Bid, Price(10), Qty::ZERO),
            LevelChange::AbsentDelete
        );
        assert_eq!(
            b.apply(Side::Ask, Price(10), Qty(-1)),
            LevelChange::Rejected
        );
        assert!(!LevelChange::AbsentDelete.is_change());
        assert!(!LevelChange::Unchanged.is_change());
        assert!(LevelChange::Deleted { old: Qty(1) }.is_change());
        assert!(b.is_empty());
    }

    #[test]
    fn crossed_and_extreme_prices() {
        let mut b = OrderBook::new();
        b.apply(Side::Bid, Price(i64::MAX), Qty(1));
        b.apply(Side::Bid, Price(i64::MIN), Qty(1));
        assert!(!b.is_crossed());
        b.apply(Side::Ask, Price(i64::MAX), Qty(1));
        assert!(b.is_crossed());
        b.apply(Side::Ask, Price(i64::MIN), Qty(1));
        assert_eq!(b.best_ask(), Some(lv(i64::MIN, 1)));
        assert_eq!(b.best_bid(), Some(lv(i64::MAX, 1)));
    }

    #[test]
    fn snapshot_skips_zero_and_duplicates_and_keeps_capacity() {
        let mut b = OrderBook::with_capacity(8);
        b.apply(Side::Bid, Price(1), Qty(1));
        let skipped = b.load_snapshot(
            &[
                lv(100, 1),
                lv(99, 0),
                lv(98, 2),
                lv(98, 3),
                lv(101, 4),
                lv(97, -1),
            ],
            &[lv(102, 1), lv(103, 2), lv(103, 5), lv(104, 0)],
        );
        assert_eq!(skipped, 5);
        assert_eq!(side_vec(b.bids()), vec![(101, 4), (100, 1), (98, 3)]);
        assert_eq!(side_vec(b.asks()), vec![(102, 1), (103, 5)]);
        let cap = b.bids.prices.capacity();
        b.clear();
        assert!(b.is_empty());
        assert_eq!(b.bids.prices.capacity(), cap);
        assert_eq!(b.best_bid(), None);
        assert!(!b.is_crossed());
    }

    #[test]
    fn tombstones_are_reused_and_compacted() {
        let mut b = OrderBook::new();
        let bids: Vec<Level> = (0..1000).rev().map(|p| lv(p * 10, 1)).collect();
        b.load_snapshot(&bids, &[]);
        // Deep deletes leave tombstones (0, 20, .., 180) instead of shifting the ladder.
        for p in 0..10 {
            b.apply(Side::Bid, Price(p * 20), Qty::ZERO);
        }
        assert_eq!((b.bids.slots(), b.len(Side::Bid)), (1000, 990));
        // Re-adding a deleted price fills its tombstone; new prices next to a tombstone take
        // its slot; others shift only up to the nearest tombstone.
        assert_eq!(b.apply(Side::Bid, Price(20), Qty(9)), LevelChange::Inserted);
        assert_eq!(b.apply(Side::Bid, Price(45), Qty(9)), LevelChange::Inserted);
        assert_eq!(b.apply(Side::Bid, Price(55), Qty(9)), LevelChange::Inserted);
        assert_eq!(b.apply(Side::Bid, Price(52), Qty(9)), LevelChange::Inserted);
        assert_eq!(b.apply(Side::Bid, Price(33), Qty(9)), LevelChange::Inserted);
        assert_eq!((b.bids.slots(), b.len(Side::Bid)), (1000, 995));
        let low: Vec<i64> = b.bids().map(|l| l.price.0).filter(|&p| p < 110).collect();
        assert_eq!(low, vec![90, 70, 55, 52, 50, 45, 33, 30, 20, 10]);
        // Deleting the top pops it and any tombstones right under it.
        for p in (900..999).rev() {
            b.apply(Side::Bid, Price(p * 10), Qty::ZERO);
        }
        assert_eq!(b.bids.slots(), 1000);
        b.apply(Side::Bid, Price(9990), Qty::ZERO);
        assert_eq!(b.best_bid(), Some(lv(8990, 1)));
        assert_eq!(b.bids.slots(), 900);
        // Once tombstones outnumber live levels they are compacted away.
        for p in 100..899 {
            b.apply(Side::Bid, Price(p * 10), Qty::ZERO);
        }
        assert_eq!(b.len(Side::Bid), 96);
        assert!(b.bids.slots() < 900 - 400);
        assert!(b.bids.slots() - b.len(Side::Bid) <= MIN_TOMBSTONES.max(96));
        assert_eq!(b.bids().count(), 96);
        assert_eq!(b.best_bid(), Some(lv(8990, 1)));
        let mut c = OrderBook::new();
        c.load_snapshot(&b.bids().collect::<Vec<_>>(), &[]);
        assert_eq!(b, c);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Apply(Side, i64, i64),
        Snapshot(Vec<(i64, i64)>, Vec<(i64, i64)>),
        Clear,
    }

    fn side() -> impl Strategy<Value = Side> {
        prop_oneof![Just(Side::Bid), Just(Side::Ask)]
    }

    /// Operations on prices `0..range`; a fifth to a third of the applies are deletes.
    fn op(range: i64) -> impl Strategy<Value = Op> {
        let lvls = move || proptest::collection::vec((0..range, 0i64..4), 0..(range as usize / 3));
        prop_oneof![
            60 => (side(), 0..range, 0i64..4).prop_map(|(s, p, q)| Op::Apply(s, p, q)),
            30 => (side(), 0..range).prop_map(|(s, p)| Op::Apply(s, p, 0)),
            2 => (lvls(), lvls()).prop_map(|(mut b, mut a)| {
                // Mostly best-first like Binance, sometimes left shuffled.
                if b.len() % 3 != 0 {
                    b.sort_by_key(|x| std::cmp::Reverse(x.0));
                    a.sort_by_key(|x| x.0);
                }
                Op::Snapshot(b, a)
            }),
            1 => Just(Op::Clear),
        ]
    }

    /// Reference book: one ordered map per side.
    #[derive(Default)]
    struct Model {
        bids: BTreeMap<i64, i64>,
        asks: BTreeMap<i64, i64>,
    }

    impl Model {
        fn map(&mut self, s: Side) -> &mut BTreeMap<i64, i64> {
            match s {
                Side::Bid => &mut self.bids,
                Side::Ask => &mut self.asks,
            }
        }
        fn apply(&mut self, s: Side, p: i64, q: i64) -> LevelChange {
            let m = self.map(s);
            match (m.get(&p).copied(), q) {
                (None, 0) => LevelChange::AbsentDelete,
                (None, _) => {
                    m.insert(p, q);
                    LevelChange::Inserted
                }
                (Some(old), 0) => {
                    m.remove(&p);
                    LevelChange::Deleted { old: Qty(old) }
                }
                (Some(old), q) if old == q => LevelChange::Unchanged,
                (Some(old), q) => {
                    m.insert(p, q);
                    LevelChange::Updated { old: Qty(old) }
                }
            }
        }
        fn bids(&self) -> Vec<(i64, i64)> {
            self.bids.iter().rev().map(|(&p, &q)| (p, q)).collect()
        }
        fn asks(&self) -> Vec<(i64, i64)> {
            self.asks.iter().map(|(&p, &q)| (p, q)).collect()
        }
    }

    fn to_levels(v: &[(i64, i64)]) -> Vec<Level> {
        v.iter().map(|&(p, q)| lv(p, q)).collect()
    }

    /// Internal invariants: strictly sorted, best last and live, `live` right, tombstones
    /// bounded.
    fn check_ladder<const ASC: bool>(l: &Ladder<ASC>) -> Result<(), TestCaseError> {
        prop_assert_eq!(l.prices.len(), l.qtys.len());
        let (prices, qtys) = (&l.prices[l.start..], &l.qtys[l.start..]);
        for w in prices.windows(2) {
            let sorted = if ASC { w[0] < w[1] } else { w[0] > w[1] };
            prop_assert!(sorted);
        }
        prop_assert!(qtys.last().is_none_or(|q| !q.is_zero()));
        let live = qtys.iter().filter(|q| !q.is_zero()).count();
        prop_assert_eq!(l.live, live);
        prop_assert!(qtys.iter().all(|q| q.0 >= 0));
        prop_assert!(l.qtys[..l.start].iter().all(|q| q.is_zero()));
        prop_assert!(qtys.len() - live <= MIN_TOMBSTONES.max(live));
        Ok(())
    }

    fn run_model(ops: Vec<Op>, probe: i64) -> Result<(), TestCaseError> {
        let mut book = OrderBook::with_capacity(4);
        let mut model = Model::default();
        let mut top = Vec::new();
        for op in ops {
            match op {
                Op::Apply(s, p, q) => {
                    let got = book.apply(s, Price(p), Qty(q));
                    prop_assert_eq!(got, model.apply(s, p, q));
                }
                Op::Snapshot(b, a) => {
                    book.load_snapshot(&to_levels(&b), &to_levels(&a));
                    model = Model::default();
                    for &(p, q) in &b {
                        if q > 0 {
                            model.bids.insert(p, q);
                        }
                    }
                    for &(p, q) in &a {
                        if q > 0 {
                            model.asks.insert(p, q);
                        }
                    }
                }
                Op::Clear => {
                    book.clear();
                    model = Model::default();
                }
            }
            check_ladder(&book.bids)?;
            check_ladder(&book.asks)?;
            let (mb, ma) = (model.bids(), model.asks());
            prop_assert_eq!(side_vec(book.bids()), mb.clone());
            prop_assert_eq!(side_vec(book.asks()), ma.clone());
            let worst_first: Vec<_> = book.asks().rev().map(|l| (l.price.0, l.qty.0)).collect();
            prop_assert_eq!(worst_first, ma.iter().rev().copied().collect::<Vec<_>>());
            prop_assert_eq!(
                book.best_bid().map(|l| (l.price.0, l.qty.0)),
                mb.first().copied()
            );
            prop_assert_eq!(
                book.best_ask().map(|l| (l.price.0, l.qty.0)),
                ma.first().copied()
            );
            prop_assert_eq!(book.len(Side::Bid), mb.len());
            prop_assert_eq!(book.len(Side::Ask), ma.len());
            prop_assert_eq!(book.is_empty(), mb.is_empty() && ma.is_empty());
            let crossed = matches!((mb.first(), ma.first()), (Some(b), Some(a)) if b.0 >= a.0);
            prop_assert_eq!(book.is_crossed(), crossed);
            prop_assert_eq!(
                book.qty_at(Side::Bid, Price(probe)).map(|q| q.0),
                model.bids.get(&probe).copied()
            );
            top.clear();
            book.top_n(Side::Bid, 3, &mut top);
            prop_assert_eq!(top.clone(), to_levels(&mb[..mb.len().min(3)]));
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn matches_btreemap_model(ops in proptest::collection::vec(op(40), 1..150), probe in 0i64..40) {
            run_model(ops, probe)?;
        }
    }

    proptest! {
        // Long runs over a wide range: tombstone reuse, shifting into holes, compaction.
        #![proptest_config(ProptestConfig::with_cases(12))]

        #[test]
        fn matches_btreemap_model_long(ops in proptest::collection::vec(op(600), 1000..2500), probe in 0i64..600) {
            run_model(ops, probe)?;
        }
    }
}
