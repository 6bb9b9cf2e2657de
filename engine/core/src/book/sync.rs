//! Binance depth synchronisation: a REST snapshot bridged to the `depthUpdate` diff stream.
//!
//! [`BookSync`] is a sans-IO state machine per instrument. Diffs and snapshots go in through
//! [`BookSync::on_diff`] and [`BookSync::on_snapshot`]; [`BookEvent`]s are pushed into the
//! caller's reused `Vec`. The rules follow Binance's "how to manage a local order book":
//!
//! | rule | spot | USD-M / COIN-M |
//! |---|---|---|
//! | diff covered by the snapshot (dropped) | `u <= L` | `u < L` |
//! | first applied diff bridges the snapshot | `U <= L+1 <= u` | `U <= L <= u`, or `pu == L` |
//! | continuity once synced | `U == prev_u + 1` | `pu == prev_u` |
//!
//! Decisions beyond Binance's text:
//!
//! * **A futures diff whose `pu` equals the snapshot's `L`** bridges it even though `U > L`:
//!   the snapshot ends exactly where that diff's predecessor ended, so nothing is missing.
//!   Binance's text alone would call such a snapshot stale and fetch another one; a snapshot
//!   taken while the stream is quiet (a stalled or freshly reconnected venue) lands on that
//!   boundary every time, and refetching would never converge.
//!
//! * **Snapshot while synced** is ignored and counted ([`SyncStats::snapshots_ignored`]): a
//!   live book whose continuity has been checked on every diff is authoritative, and such a
//!   snapshot is a late answer to an earlier request. A snapshot older than one already loaded
//!   (and still waiting for its bridging diff) is ignored the same way.
//! * **Crossed book** (best bid >= best ask after a whole diff) means the book is corrupt:
//!   `Crossed` is emitted *instead of* `Applied`, then `ResyncRequested { Crossed }`, and the
//!   diff is kept as the first buffered one. The crossing check runs after each whole diff,
//!   never between its levels, and also while replaying buffered diffs.
//! * **Lost sync** (gap, crossed, stale snapshot) clears the book, so [`BookSync::book`] never
//!   shows stale levels; the capacity is kept.
//! * **Buffer overflow** drops the oldest buffered diffs. One `BufferOverflow` and one
//!   `ResyncRequested { BufferOverflow }` are emitted per episode (an episode ends when a
//!   snapshot is taken in); every dropped diff is counted in [`SyncStats::overflow_dropped`].
//!   A diff larger than the whole level budget cannot be kept: it and everything buffered
//!   before it are dropped.
//! * **Malformed ids** never panic. A synced diff with `U > u`, or a futures diff without
//!   `pu`, is reported as a `Gap` (with `got` = `u`, respectively `0`).
//! * **No-op levels** (deleting an absent level, re-setting the same quantity) emit no
//!   `LevelChanged`. Negative quantities are skipped and counted
//!   ([`SyncStats::levels_rejected`]).

use std::collections::VecDeque;

use crate::book::event::{BookEvent, ResyncReason};
use crate::book::ladder::{LevelChange, OrderBook};
use crate::instrument::{InstrumentId, Market};
use crate::msg::{DepthSnapshot, DepthUpdate, Level, Side};

/// Default cap on buffered diffs per instrument.
pub const DEFAULT_MAX_BUFFERED_EVENTS: usize = 10_000;
/// Default cap on buffered levels per instrument (16 bytes each, so 32 MB).
pub const DEFAULT_MAX_BUFFERED_LEVELS: usize = 2_000_000;

/// Bounds on what a [`BookSync`] buffers while it waits for a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncLimits {
    /// Most diffs kept; the oldest are dropped beyond this.
    pub max_buffered_events: usize,
    /// Most levels (bids + asks over all buffered diffs) kept.
    pub max_buffered_levels: usize,
}

impl Default for SyncLimits {
    fn default() -> Self {
        SyncLimits {
            max_buffered_events: DEFAULT_MAX_BUFFERED_EVENTS,
            max_buffered_levels: DEFAULT_MAX_BUFFERED_LEVELS,
        }
    }
}

/// The phase of a [`BookSync`], as seen from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncState {
    /// Never synced: buffering diffs until a snapshot arrives.
    AwaitingSnapshot,
    /// A snapshot is loaded; waiting for the diff that bridges it.
    SnapshotLoaded,
    /// Live: every diff is checked for continuity and applied.
    Synced,
    /// Sync was lost: buffering diffs until a new snapshot arrives.
    OutOfSync,
}

/// Counters of a [`BookSync`], for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncStats {
    /// Diffs passed to `on_diff` for this instrument.
    pub diffs_received: u64,
    /// Diffs applied to the book, live or replayed from the buffer.
    pub diffs_applied: u64,
    /// Diffs dropped because a snapshot already covered them.
    pub diffs_stale: u64,
    /// Diffs put in the buffer.
    pub diffs_buffered: u64,
    /// Gaps detected.
    pub gaps: u64,
    /// `ResyncRequested` events emitted (all reasons).
    pub resyncs: u64,
    /// Crossed books detected.
    pub crossed: u64,
    /// Snapshots loaded into the book.
    pub snapshots_loaded: u64,
    /// Snapshots ignored (arrived while synced, or older than the loaded one).
    pub snapshots_ignored: u64,
    /// Snapshots found stale.
    pub stale_snapshots: u64,
    /// Buffered diffs dropped by overflow.
    pub overflow_dropped: u64,
    /// Levels with a negative quantity that were skipped.
    pub levels_rejected: u64,
    /// Snapshot levels skipped (zero quantity, duplicates).
    pub snapshot_levels_skipped: u64,
    /// Diffs or snapshots for another instrument, ignored.
    pub foreign_ignored: u64,
}

/// Internal phase, with the data that only that phase has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Buffering diffs for a snapshot; `requested` once a `ResyncRequested` went out.
    Buffering { requested: bool },
    /// Snapshot loaded (buffer empty), waiting for the diff that bridges `snapshot_id`.
    SnapshotLoaded { snapshot_id: u64 },
    /// Live; `last_u` is the final update id of the last applied diff.
    Synced { last_u: u64 },
}

/// Header of one buffered diff; its levels (bids, then asks) are in the flat level buffer.
///
/// Both buffers are `VecDeque`s: one allocation each, reused, and dropping the oldest diff
/// on overflow is O(its levels) instead of shifting everything buffered after it.
#[derive(Debug, Clone, Copy)]
struct Pending {
    first: u64,
    last: u64,
    prev: Option<u64>,
    bids: usize,
    asks: usize,
}

impl Pending {
    fn levels(&self) -> usize {
        self.bids + self.asks
    }
}

/// True when a snapshot at `snap` already contains every update of a diff ending at `u`.
#[inline]
fn covered(futures: bool, snap: u64, u: u64) -> bool {
    if futures {
        u < snap
    } else {
        u <= snap
    }
}

/// True when a diff starting at `first` after `prev` (and not covered) bridges a snapshot at
/// `snap`.
#[inline]
fn bridges(futures: bool, snap: u64, first: u64, prev: Option<u64>) -> bool {
    if futures {
        first <= snap || prev == Some(snap)
    } else {
        // U <= L + 1 without overflowing at u64::MAX.
        first.saturating_sub(1) <= snap
    }
}

/// `Err((expected, got))` unless a diff (`first`, `last`, `prev`) continues `prev_u`.
#[inline]
fn continues(
    futures: bool,
    prev_u: u64,
    first: u64,
    last: u64,
    prev: Option<u64>,
) -> Result<(), (u64, u64)> {
    let expected = if futures {
        prev_u
    } else {
        prev_u.saturating_add(1)
    };
    if first > last {
        return Err((expected, last));
    }
    if futures {
        match prev {
            Some(pu) if pu == prev_u => Ok(()),
            Some(pu) => Err((expected, pu)),
            None => Err((expected, 0)),
        }
    } else if prev_u.checked_add(1) == Some(first) {
        Ok(())
    } else {
        Err((expected, first))
    }
}

/// One instrument's book kept in sync with Binance's depth stream.
#[derive(Debug, Clone)]
pub struct BookSync {
    instrument: InstrumentId,
    market: Market,
    futures: bool,
    limits: SyncLimits,
    phase: Phase,
    ever_synced: bool,
    overflowing: bool,
    book: OrderBook,
    pending: VecDeque<Pending>,
    pending_levels: VecDeque<Level>,
    stats: SyncStats,
}

impl BookSync {
    /// A book for `instrument` on `market`, waiting for its first diff.
    pub fn new(instrument: InstrumentId, market: Market, limits: SyncLimits) -> Self {
        BookSync {
            instrument,
            market,
            futures: market.is_futures(),
            limits,
            phase: Phase::Buffering { requested: false },
            ever_synced: false,
            overflowing: false,
            book: OrderBook::new(),
            pending: VecDeque::new(),
            pending_levels: VecDeque::new(),
            stats: SyncStats::default(),
        }
    }

    /// The book. Empty unless [`SyncState::Synced`] or [`SyncState::SnapshotLoaded`] (then it
    /// holds the snapshot, not yet bridged).
    pub fn book(&self) -> &OrderBook {
        &self.book
    }

    /// The current phase.
    pub fn state(&self) -> SyncState {
        match self.phase {
            Phase::Buffering { .. } if self.ever_synced => SyncState::OutOfSync,
            Phase::Buffering { .. } => SyncState::AwaitingSnapshot,
            Phase::SnapshotLoaded { .. } => SyncState::SnapshotLoaded,
            Phase::Synced { .. } => SyncState::Synced,
        }
    }

    /// True when the book is live and continuity-checked.
    pub fn is_synced(&self) -> bool {
        matches!(self.phase, Phase::Synced { .. })
    }

    /// The update id the book reflects: the last applied `u` when synced, the snapshot's
    /// `lastUpdateId` while waiting for its bridge, otherwise `None`.
    pub fn last_update_id(&self) -> Option<u64> {
        match self.phase {
            Phase::Synced { last_u } => Some(last_u),
            Phase::SnapshotLoaded { snapshot_id } => Some(snapshot_id),
            Phase::Buffering { .. } => None,
        }
    }

    /// Counters.
    pub fn stats(&self) -> &SyncStats {
        &self.stats
    }

    /// The instrument this book is for.
    pub fn instrument(&self) -> InstrumentId {
        self.instrument
    }

    /// The market, which decides the sync rules.
    pub fn market(&self) -> Market {
        self.market
    }

    /// The buffer limits.
    pub fn limits(&self) -> SyncLimits {
        self.limits
    }

    /// Diffs currently buffered.
    pub fn buffered_events(&self) -> usize {
        self.pending.len()
    }

    /// Levels currently buffered.
    pub fn buffered_levels(&self) -> usize {
        self.pending_levels.len()
    }

    /// Forgets the book and the buffer (e.g. after a reconnect), keeping capacity and stats.
    /// The next diff requests a snapshot again with [`ResyncReason::Initial`].
    pub fn reset(&mut self) {
        self.book.clear();
        self.clear_pending();
        self.phase = Phase::Buffering { requested: false };
        self.ever_synced = false;
        self.overflowing = false;
    }

    /// Takes in one diff; events go to `out` (appended, never cleared).
    pub fn on_diff(&mut self, d: &DepthUpdate<'_>, out: &mut Vec<BookEvent>) {
        if d.instrument != self.instrument {
            self.stats.foreign_ignored += 1;
            return;
        }
        self.stats.diffs_received += 1;
        match self.phase {
            Phase::Buffering { requested } => {
                if !requested {
                    self.request(ResyncReason::Initial, out);
                }
                self.buffer(d, out);
            }
            Phase::SnapshotLoaded { snapshot_id } => {
                if covered(self.futures, snapshot_id, d.final_update_id) {
                    self.stats.diffs_stale += 1;
                } else if bridges(
                    self.futures,
                    snapshot_id,
                    d.first_update_id,
                    d.prev_final_update_id,
                ) {
                    self.apply_silent(d.bids, d.asks);
                    self.stats.diffs_applied += 1;
                    if self.check_crossed(out) {
                        self.buffer(d, out);
                    } else {
                        self.enter_synced(d.final_update_id, out);
                    }
                } else {
                    self.stale_snapshot(snapshot_id, d.first_update_id, out);
                    self.buffer(d, out);
                }
            }
            Phase::Synced { last_u } => {
                let (first, last) = (d.first_update_id, d.final_update_id);
                if let Err((expected, got)) =
                    continues(self.futures, last_u, first, last, d.prev_final_update_id)
                {
                    self.gap(expected, got, out);
                    self.buffer(d, out);
                    return;
                }
                self.apply_live(Side::Bid, d.bids, out);
                self.apply_live(Side::Ask, d.asks, out);
                self.stats.diffs_applied += 1;
                if self.check_crossed(out) {
                    self.buffer(d, out);
                    return;
                }
                self.phase = Phase::Synced { last_u: last };
                out.push(BookEvent::Applied {
                    instrument: self.instrument,
                    first_update_id: first,
                    final_update_id: last,
                    event_time_ms: d.event_time_ms,
                });
            }
        }
    }

    /// Takes in one REST snapshot; events go to `out` (appended, never cleared).
    ///
    /// Ignored while synced, or while an equal-or-newer snapshot waits for its bridge.
    pub fn on_snapshot(&mut self, s: &DepthSnapshot<'_>, out: &mut Vec<BookEvent>) {
        if s.instrument != self.instrument {
            self.stats.foreign_ignored += 1;
            return;
        }
        let snap = s.last_update_id;
        match self.phase {
            Phase::Synced { .. } => {
                self.stats.snapshots_ignored += 1;
                return;
            }
            Phase::SnapshotLoaded { snapshot_id } if snap < snapshot_id => {
                self.stats.snapshots_ignored += 1;
                return;
            }
            Phase::SnapshotLoaded { .. } | Phase::Buffering { .. } => {}
        }
        let skipped = self.book.load_snapshot(s.bids, s.asks);
        self.stats.snapshot_levels_skipped += skipped as u64;
        self.stats.snapshots_loaded += 1;
        self.overflowing = false;
        while let Some(p) = self.pending.front() {
            if !covered(self.futures, snap, p.last) {
                break;
            }
            self.pop_pending();
            self.stats.diffs_stale += 1;
        }
        match self.pending.front() {
            None => self.phase = Phase::SnapshotLoaded { snapshot_id: snap },
            Some(p) if !bridges(self.futures, snap, p.first, p.prev) => {
                let first = p.first;
                self.stale_snapshot(snap, first, out);
            }
            Some(_) => self.replay(out),
        }
    }

    /// Applies the buffered diffs (the first one bridges the loaded snapshot) silently.
    fn replay(&mut self, out: &mut Vec<BookEvent>) {
        let mut prev_u: Option<u64> = None;
        let mut offset = 0;
        for i in 0..self.pending.len() {
            let p = self.pending[i];
            if let Some(prev_u) = prev_u {
                if let Err((expected, got)) =
                    continues(self.futures, prev_u, p.first, p.last, p.prev)
                {
                    self.keep_pending_from(i, offset);
                    self.gap(expected, got, out);
                    return;
                }
            }
            let end = offset + p.levels();
            for (k, l) in self.pending_levels.range(offset..end).enumerate() {
                let side = if k < p.bids { Side::Bid } else { Side::Ask };
                if self.book.apply(side, l.price, l.qty) == LevelChange::Rejected {
                    self.stats.levels_rejected += 1;
                }
            }
            self.stats.diffs_applied += 1;
            if self.check_crossed(out) {
                // Keep the offending diff and what follows for the next snapshot.
                self.keep_pending_from(i, offset);
                return;
            }
            prev_u = Some(p.last);
            offset = end;
        }
        self.clear_pending();
        if let Some(last) = prev_u {
            self.enter_synced(last, out);
        }
    }

    fn enter_synced(&mut self, last_u: u64, out: &mut Vec<BookEvent>) {
        self.phase = Phase::Synced { last_u };
        self.ever_synced = true;
        out.push(BookEvent::Synced {
            instrument: self.instrument,
            last_update_id: last_u,
        });
    }

    /// If the book is crossed: emits `Crossed`, loses sync and returns true.
    #[inline]
    fn check_crossed(&mut self, out: &mut Vec<BookEvent>) -> bool {
        if !self.book.is_crossed() {
            return false;
        }
        let (bid, ask) = match (self.book.best_bid(), self.book.best_ask()) {
            (Some(b), Some(a)) => (b.price, a.price),
            _ => return false,
        };
        self.stats.crossed += 1;
        out.push(BookEvent::Crossed {
            instrument: self.instrument,
            bid,
            ask,
        });
        self.lose_sync(ResyncReason::Crossed, out);
        true
    }

    fn gap(&mut self, expected: u64, got: u64, out: &mut Vec<BookEvent>) {
        self.stats.gaps += 1;
        out.push(BookEvent::Gap {
            instrument: self.instrument,
            expected,
            got,
        });
        self.lose_sync(ResyncReason::Gap, out);
    }

    fn stale_snapshot(&mut self, snap: u64, first_buffered: u64, out: &mut Vec<BookEvent>) {
        self.stats.stale_snapshots += 1;
        out.push(BookEvent::StaleSnapshot {
            instrument: self.instrument,
            last_update_id: snap,
            first_buffered,
        });
        self.book.clear();
        self.phase = Phase::Buffering { requested: false };
        self.request(ResyncReason::StaleSnapshot, out);
    }

    /// Clears the book, requests a snapshot and goes back to buffering. The buffer is kept
    /// as it is (callers drop what is no longer useful).
    fn lose_sync(&mut self, reason: ResyncReason, out: &mut Vec<BookEvent>) {
        self.book.clear();
        self.phase = Phase::Buffering { requested: false };
        self.request(reason, out);
    }

    fn request(&mut self, reason: ResyncReason, out: &mut Vec<BookEvent>) {
        self.stats.resyncs += 1;
        if let Phase::Buffering { requested } = &mut self.phase {
            *requested = true;
        }
        out.push(BookEvent::ResyncRequested {
            instrument: self.instrument,
            reason,
        });
    }

    #[inline]
    fn apply_silent(&mut self, bids: &[Level], asks: &[Level]) {
        for (side, levels) in [(Side::Bid, bids), (Side::Ask, asks)] {
            for l in levels {
                if self.book.apply(side, l.price, l.qty) == LevelChange::Rejected {
                    self.stats.levels_rejected += 1;
                }
            }
        }
    }

    #[inline]
    fn apply_live(&mut self, side: Side, levels: &[Level], out: &mut Vec<BookEvent>) {
        for l in levels {
            let change = self.book.apply(side, l.price, l.qty);
            if change.is_change() {
                out.push(BookEvent::LevelChanged {
                    instrument: self.instrument,
                    side,
                    price: l.price,
                    qty: l.qty,
                });
            } else if change == LevelChange::Rejected {
                self.stats.levels_rejected += 1;
            }
        }
    }

    /// Appends a diff to the buffer, dropping the oldest diffs if the limits demand it.
    fn buffer(&mut self, d: &DepthUpdate<'_>, out: &mut Vec<BookEvent>) {
        let n = d.bids.len().saturating_add(d.asks.len());
        let mut dropped = 0u64;
        if n > self.limits.max_buffered_levels || self.limits.max_buffered_events == 0 {
            // It can never fit; without it nothing older can be bridged past it either.
            dropped = self.pending.len() as u64 + 1;
            self.clear_pending();
        } else {
            while self.pending.len() >= self.limits.max_buffered_events
                || self.pending_levels.len() + n > self.limits.max_buffered_levels
            {
                if !self.pop_pending() {
                    break;
                }
                dropped += 1;
            }
            self.pending.push_back(Pending {
                first: d.first_update_id,
                last: d.final_update_id,
                prev: d.prev_final_update_id,
                bids: d.bids.len(),
                asks: d.asks.len(),
            });
            self.pending_levels.extend(d.bids.iter().chain(d.asks));
            self.stats.diffs_buffered += 1;
        }
        if dropped > 0 {
            self.stats.overflow_dropped += dropped;
            if !self.overflowing {
                self.overflowing = true;
                out.push(BookEvent::BufferOverflow {
                    instrument: self.instrument,
                    dropped_events: dropped,
                });
                self.request(ResyncReason::BufferOverflow, out);
            }
        }
    }

    /// Drops the oldest buffered diff; false when the buffer was empty.
    fn pop_pending(&mut self) -> bool {
        match self.pending.pop_front() {
            Some(p) => {
                self.pending_levels.drain(..p.levels());
                true
            }
            None => false,
        }
    }

    /// Drops the first `events` buffered diffs, which hold the first `levels` levels.
    fn keep_pending_from(&mut self, events: usize, levels: usize) {
        self.pending.drain(..events);
        self.pending_levels.drain(..levels);
    }

    fn clear_pending(&mut self) {
        self.pending.clear();
        self.pending_levels.clear();
    }
}
