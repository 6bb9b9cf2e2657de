//! Tests of [`BookSync`]: every rule with literal diffs, then model-based proptests.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::fixed::{Price, Qty};
use crate::instrument::{InstrumentId, Market};
use crate::msg::{DepthSnapshot, DepthUpdate, Level, Side};

const INST: InstrumentId = InstrumentId(7);

fn lv(price: i64, qty: i64) -> Level {
    Level {
        price: Price(price),
        qty: Qty(qty),
    }
}

fn lvs(v: &[(i64, i64)]) -> Vec<Level> {
    v.iter().map(|&(p, q)| lv(p, q)).collect()
}

/// An owned diff, lent out as a [`DepthUpdate`].
#[derive(Debug, Clone)]
struct Diff {
    first: u64,
    last: u64,
    prev: Option<u64>,
    time: u64,
    bids: Vec<Level>,
    asks: Vec<Level>,
}

impl Diff {
    fn msg(&self) -> DepthUpdate<'_> {
        DepthUpdate {
            instrument: INST,
            event_time_ms: self.time,
            transact_time_ms: self.prev.map(|_| self.time),
            first_update_id: self.first,
            final_update_id: self.last,
            prev_final_update_id: self.prev,
            bids: &self.bids,
            asks: &self.asks,
        }
    }
}

/// A spot diff `U..=u`.
fn sd(first: u64, last: u64, bids: &[(i64, i64)], asks: &[(i64, i64)]) -> Diff {
    Diff {
        first,
        last,
        prev: None,
        time: last.wrapping_mul(10),
        bids: lvs(bids),
        asks: lvs(asks),
    }
}

/// A futures diff `U..=u` with `pu`.
fn fd(first: u64, last: u64, pu: u64, bids: &[(i64, i64)], asks: &[(i64, i64)]) -> Diff {
    Diff {
        prev: Some(pu),
        ..sd(first, last, bids, asks)
    }
}

fn snap<'a>(id: u64, bids: &'a [Level], asks: &'a [Level]) -> DepthSnapshot<'a> {
    DepthSnapshot {
        instrument: INST,
        last_update_id: id,
        event_time_ms: None,
        transact_time_ms: None,
        bids,
        asks,
    }
}

fn spot() -> BookSync {
    BookSync::new(INST, Market::Spot, SyncLimits::default())
}

fn futures() -> BookSync {
    BookSync::new(INST, Market::UsdM, SyncLimits::default())
}

fn feed(s: &mut BookSync, d: &Diff) -> Vec<BookEvent> {
    let mut out = Vec::new();
    s.on_diff(&d.msg(), &mut out);
    out
}

fn feed_snap(
    s: &mut BookSync,
    id: u64,
    bids: &[(i64, i64)],
    asks: &[(i64, i64)],
) -> Vec<BookEvent> {
    let (b, a) = (lvs(bids), lvs(asks));
    let mut out = Vec::new();
    s.on_snapshot(&snap(id, &b, &a), &mut out);
    out
}

fn resync(reason: ResyncReason) -> BookEvent {
    BookEvent::ResyncRequested {
        instrument: INST,
        reason,
    }
}

fn synced(id: u64) -> BookEvent {
    BookEvent::Synced {
        instrument: INST,
        last_update_id: id,
    }
}

fn changed(side: Side, price: i64, qty: i64) -> BookEvent {
    BookEvent::LevelChanged {
        instrument: INST,
        side,
        price: Price(price),
        qty: Qty(qty),
    }
}

fn applied(d: &Diff) -> BookEvent {
    BookEvent::Applied {
        instrument: INST,
        first_update_id: d.first,
        final_update_id: d.last,
        event_time_ms: d.time,
    }
}

fn gap(expected: u64, got: u64) -> BookEvent {
    BookEvent::Gap {
        instrument: INST,
        expected,
        got,
    }
}

fn side_vec(it: LevelIter<'_>) -> Vec<(i64, i64)> {
    it.map(|l| (l.price.0, l.qty.0)).collect()
}

const SNAP_BIDS: &[(i64, i64)] = &[(100, 5), (99, 3), (98, 1)];
const SNAP_ASKS: &[(i64, i64)] = &[(101, 2), (102, 4)];

/// A spot book synced at `u = 105` from a snapshot at 102 and one bridging diff.
fn synced_spot() -> BookSync {
    let mut s = spot();
    feed(&mut s, &sd(101, 105, &[(97, 1)], &[]));
    assert_eq!(
        feed_snap(&mut s, 102, SNAP_BIDS, SNAP_ASKS),
        vec![synced(105)]
    );
    s
}

/// A futures book synced at `u = 1060`.
fn synced_futures() -> BookSync {
    let mut s = futures();
    assert!(feed_snap(&mut s, 1060, SNAP_BIDS, SNAP_ASKS).is_empty());
    assert_eq!(
        feed(&mut s, &fd(1050, 1060, 1010, &[(97, 1)], &[])),
        vec![synced(1060)]
    );
    s
}

#[test]
fn spot_bridging_diff_before_snapshot() {
    let mut s = spot();
    let old = sd(95, 100, &[(50, 1)], &[]);
    let bridge = sd(101, 105, &[(97, 1)], &[(101, 0)]);
    let next = sd(106, 110, &[(100, 6)], &[]);
    assert_eq!(feed(&mut s, &old), vec![resync(ResyncReason::Initial)]);
    assert!(feed(&mut s, &bridge).is_empty());
    assert!(feed(&mut s, &next).is_empty());
    assert_eq!(s.state(), SyncState::AwaitingSnapshot);
    assert_eq!(s.buffered_events(), 3);
    assert_eq!(s.buffered_levels(), 4);

    // 95..=100 is covered by snapshot 102 and dropped; 101..=105 bridges 103.
    assert_eq!(
        feed_snap(&mut s, 102, SNAP_BIDS, SNAP_ASKS),
        vec![synced(110)]
    );
    assert!(s.is_synced());
    assert_eq!(s.last_update_id(), Some(110));
    assert_eq!(s.buffered_events(), 0);
    assert_eq!(
        side_vec(s.book().bids()),
        vec![(100, 6), (99, 3), (98, 1), (97, 1)]
    );
    assert_eq!(side_vec(s.book().asks()), vec![(102, 4)]);
    let st = s.stats();
    assert_eq!(
        (st.diffs_stale, st.diffs_applied, st.diffs_buffered),
        (1, 2, 3)
    );
    assert_eq!((st.snapshots_loaded, st.resyncs), (1, 1));

    let live = sd(111, 111, &[(97, 2)], &[(103, 1)]);
    assert_eq!(
        feed(&mut s, &live),
        vec![
            changed(Side::Bid, 97, 2),
            changed(Side::Ask, 103, 1),
            applied(&live)
        ]
    );
    assert_eq!(s.last_update_id(), Some(111));
}

#[test]
fn futures_bridging_diff_before_snapshot() {
    let mut s = futures();
    let old = fd(1000, 1010, 990, &[(50, 1)], &[]);
    // Futures ids are global: U is not prev_u + 1, continuity is pu.
    let bridge = fd(1050, 1060, 1010, &[(97, 1)], &[]);
    let next = fd(1100, 1120, 1060, &[(100, 6)], &[]);
    assert_eq!(feed(&mut s, &old), vec![resync(ResyncReason::Initial)]);
    assert!(feed(&mut s, &bridge).is_empty());
    assert!(feed(&mut s, &next).is_empty());
    // u == lastUpdateId is kept by the futures rule (spot would drop it).
    assert_eq!(
        feed_snap(&mut s, 1060, SNAP_BIDS, SNAP_ASKS),
        vec![synced(1120)]
    );
    let st = s.stats();
    assert_eq!((st.diffs_stale, st.diffs_applied), (1, 2));
    assert_eq!(s.book().qty_at(Side::Bid, Price(97)), Some(Qty(1)));
    assert_eq!(s.book().qty_at(Side::Bid, Price(50)), None);

    let live = fd(1200, 1201, 1120, &[], &[(101, 7)]);
    assert_eq!(
        feed(&mut s, &live),
        vec![changed(Side::Ask, 101, 7), applied(&live)]
    );
}

#[test]
fn spot_bridging_diff_after_snapshot() {
    let mut s = spot();
    assert!(feed_snap(&mut s, 102, SNAP_BIDS, SNAP_ASKS).is_empty());
    assert_eq!(s.state(), SyncState::SnapshotLoaded);
    assert_eq!(s.last_update_id(), Some(102));
    assert_eq!(s.book().len(Side::Bid), 3);
    // Snapshot came first, so no Initial request; 90..=102 is covered.
    assert!(feed(&mut s, &sd(90, 100, &[(1, 1)], &[])).is_empty());
    assert!(feed(&mut s, &sd(101, 102, &[(2, 1)], &[])).is_empty());
    assert_eq!(s.state(), SyncState::SnapshotLoaded);
    assert_eq!(
        feed(&mut s, &sd(103, 104, &[(97, 1)], &[])),
        vec![synced(104)]
    );
    assert_eq!(s.book().qty_at(Side::Bid, Price(97)), Some(Qty(1)));
    assert_eq!(s.book().qty_at(Side::Bid, Price(1)), None);
    assert_eq!(s.stats().diffs_stale, 2);
    let live = sd(105, 105, &[(99, 0)], &[]);
    assert_eq!(
        feed(&mut s, &live),
        vec![changed(Side::Bid, 99, 0), applied(&live)]
    );
}

#[test]
fn futures_bridging_diff_after_snapshot() {
    let mut s = futures();
    assert!(feed_snap(&mut s, 1060, SNAP_BIDS, SNAP_ASKS).is_empty());
    assert!(feed(&mut s, &fd(1000, 1059, 990, &[(1, 1)], &[])).is_empty());
    assert_eq!(s.stats().diffs_stale, 1);
    // U <= L <= u.
    assert_eq!(
        feed(&mut s, &fd(1055, 1070, 1059, &[], &[])),
        vec![synced(1070)]
    );
    let live = fd(1080, 1090, 1070, &[(100, 0), (42, 0)], &[]);
    assert_eq!(
        feed(&mut s, &live),
        vec![changed(Side::Bid, 100, 0), applied(&live)]
    );
}

#[test]
fn futures_diff_continuing_the_snapshot_bridges_it() {
    // The snapshot ends exactly where the next diff's predecessor ended (`pu == L`), with
    // `U > L` because futures ids are not contiguous: nothing is missing, so it syncs.
    // Buffered before the snapshot:
    let mut s = futures();
    let d = fd(1065, 1070, 1060, &[(100, 0)], &[]);
    feed(&mut s, &d);
    assert_eq!(
        feed_snap(&mut s, 1060, SNAP_BIDS, SNAP_ASKS),
        vec![synced(1070)]
    );
    assert_eq!(s.book().qty_at(Side::Bid, Price(100)), None);
    // Arriving after it:
    let mut s = futures();
    assert!(feed_snap(&mut s, 1060, SNAP_BIDS, SNAP_ASKS).is_empty());
    assert_eq!(feed(&mut s, &d), vec![synced(1070)]);
    assert_eq!(s.stats().stale_snapshots, 0);
    // A `pu` one short of the snapshot is still a hole.
    let mut s = futures();
    assert!(feed_snap(&mut s, 1061, SNAP_BIDS, SNAP_ASKS).is_empty());
    let ev = feed(&mut s, &d);
    assert_eq!(
        ev[0],
        BookEvent::StaleSnapshot {
            instrument: INST,
            last_update_id: 1061,
            first_buffered: 1065,
        }
    );
    // Spot has no `pu`: its rule is unchanged (`U <= L + 1`).
    let mut s = spot();
    assert!(feed_snap(&mut s, 99, SNAP_BIDS, SNAP_ASKS).is_empty());
    assert_eq!(s.stats().stale_snapshots, 0);
    feed(&mut s, &sd(101, 105, &[], &[]));
    assert_eq!(s.stats().stale_snapshots, 1);
}

#[test]
fn stale_snapshot_with_buffered_diffs() {
    for (mut s, d, stale_id, good_id) in [
        (spot(), sd(101, 105, &[], &[]), 99, 103),
        (futures(), fd(1001, 1005, 990, &[], &[]), 1000, 1003),
    ] {
        feed(&mut s, &d);
        assert_eq!(
            feed_snap(&mut s, stale_id, SNAP_BIDS, SNAP_ASKS),
            vec![
                BookEvent::StaleSnapshot {
                    instrument: INST,
                    last_update_id: stale_id,
                    first_buffered: d.first,
                },
                resync(ResyncReason::StaleSnapshot),
            ]
        );
        assert_eq!(s.state(), SyncState::AwaitingSnapshot);
        assert!(s.book().is_empty());
        assert_eq!(s.buffered_events(), 1);
        // No second Initial request while waiting.
        let more = Diff {
            first: d.last + 1,
            last: d.last + 2,
            prev: d.prev.map(|_| d.last),
            ..d.clone()
        };
        assert!(feed(&mut s, &more).is_empty());
        assert_eq!(
            feed_snap(&mut s, good_id, SNAP_BIDS, SNAP_ASKS),
            vec![synced(more.last)]
        );
        assert_eq!(s.stats().stale_snapshots, 1);
    }
}

#[test]
fn stale_snapshot_found_by_a_later_diff() {
    for (mut s, stale_id, d) in [
        (spot(), 99, sd(101, 105, &[], &[])),
        (futures(), 1000, fd(1001, 1005, 990, &[], &[])),
    ] {
        assert!(feed_snap(&mut s, stale_id, SNAP_BIDS, SNAP_ASKS).is_empty());
        assert_eq!(
            feed(&mut s, &d),
            vec![
                BookEvent::StaleSnapshot {
                    instrument: INST,
                    last_update_id: stale_id,
                    first_buffered: d.first,
                },
                resync(ResyncReason::StaleSnapshot),
            ]
        );
        assert_eq!(s.state(), SyncState::AwaitingSnapshot);
        assert_eq!(s.buffered_events(), 1);
        assert!(s.book().is_empty());
    }
}

#[test]
fn spot_gap_resync_and_synced_again() {
    let mut s = synced_spot();
    let skip = sd(107, 108, &[(90, 1)], &[]);
    assert_eq!(
        feed(&mut s, &skip),
        vec![gap(106, 107), resync(ResyncReason::Gap)]
    );
    assert_eq!(s.state(), SyncState::OutOfSync);
    assert!(!s.is_synced());
    assert!(s.book().is_empty());
    assert_eq!(s.last_update_id(), None);
    assert_eq!(s.buffered_events(), 1);
    assert!(feed(&mut s, &sd(109, 110, &[(91, 1)], &[])).is_empty());
    // 107..=108 is covered by 108; 109..=110 bridges.
    assert_eq!(
        feed_snap(&mut s, 108, SNAP_BIDS, SNAP_ASKS),
        vec![synced(110)]
    );
    assert_eq!(s.book().qty_at(Side::Bid, Price(91)), Some(Qty(1)));
    assert_eq!(s.book().qty_at(Side::Bid, Price(90)), None);
    let st = s.stats();
    assert_eq!((st.gaps, st.resyncs, st.snapshots_loaded), (1, 2, 2));
}

#[test]
fn futures_gap_resync_and_synced_again() {
    let mut s = synced_futures();
    let skip = fd(1100, 1110, 1080, &[(90, 1)], &[]);
    assert_eq!(
        feed(&mut s, &skip),
        vec![gap(1060, 1080), resync(ResyncReason::Gap)]
    );
    assert_eq!(s.state(), SyncState::OutOfSync);
    assert!(feed(&mut s, &fd(1120, 1130, 1110, &[(91, 1)], &[])).is_empty());
    assert_eq!(
        feed_snap(&mut s, 1110, SNAP_BIDS, SNAP_ASKS),
        vec![synced(1130)]
    );
    // A futures diff with U == prev_u + 1 but the wrong pu is still a gap.
    assert_eq!(
        feed(&mut s, &fd(1131, 1140, 1129, &[], &[])),
        vec![gap(1130, 1129), resync(ResyncReason::Gap)]
    );
}

#[test]
fn gap_inside_the_buffer_is_found_on_replay() {
    let mut s = spot();
    feed(&mut s, &sd(101, 105, &[], &[]));
    feed(&mut s, &sd(107, 108, &[(90, 1)], &[]));
    feed(&mut s, &sd(109, 109, &[(91, 1)], &[]));
    assert_eq!(
        feed_snap(&mut s, 102, SNAP_BIDS, SNAP_ASKS),
        vec![gap(106, 107), resync(ResyncReason::Gap)]
    );
    assert_eq!(s.state(), SyncState::AwaitingSnapshot);
    assert!(s.book().is_empty());
    // The offending diff and what follows stay buffered.
    assert_eq!(s.buffered_events(), 2);
    assert_eq!(
        feed_snap(&mut s, 107, SNAP_BIDS, SNAP_ASKS),
        vec![synced(109)]
    );
    assert_eq!(s.book().qty_at(Side::Bid, Price(90)), Some(Qty(1)));
}

#[test]
fn crossed_live_diff_loses_sync() {
    let mut s = synced_spot();
    let cross = sd(106, 106, &[(101, 1)], &[]);
    assert_eq!(
        feed(&mut s, &cross),
        vec![
            changed(Side::Bid, 101, 1),
            BookEvent::Crossed {
                instrument: INST,
                bid: Price(101),
                ask: Price(101),
            },
            resync(ResyncReason::Crossed),
        ]
    );
    assert_eq!(s.state(), SyncState::OutOfSync);
    assert!(s.book().is_empty());
    assert_eq!(s.buffered_events(), 1);
    assert_eq!(s.stats().crossed, 1);
    // Recovers with a fresh snapshot that covers the crossed diff.
    assert!(feed(&mut s, &sd(107, 107, &[], &[])).is_empty());
    assert_eq!(
        feed_snap(&mut s, 106, SNAP_BIDS, SNAP_ASKS),
        vec![synced(107)]
    );
}

#[test]
fn crossed_on_bridge_and_on_replay() {
    // Bridging diff after the snapshot.
    let mut s = futures();
    feed_snap(&mut s, 1060, SNAP_BIDS, SNAP_ASKS);
    let out = feed(&mut s, &fd(1050, 1060, 1010, &[], &[(99, 1)]));
    assert_eq!(
        out,
        vec![
            BookEvent::Crossed {
                instrument: INST,
                bid: Price(100),
                ask: Price(99),
            },
            resync(ResyncReason::Crossed),
        ]
    );
    assert_eq!(s.state(), SyncState::AwaitingSnapshot);
    assert_eq!(s.buffered_events(), 1);

    // Second buffered diff crosses during replay.
    let mut s = spot();
    feed(&mut s, &sd(101, 105, &[], &[]));
    feed(&mut s, &sd(106, 106, &[(102, 1)], &[]));
    feed(&mut s, &sd(107, 107, &[], &[]));
    let out = feed_snap(&mut s, 102, SNAP_BIDS, SNAP_ASKS);
    assert_eq!(
        out,
        vec![
            BookEvent::Crossed {
                instrument: INST,
                bid: Price(102),
                ask: Price(101),
            },
            resync(ResyncReason::Crossed),
        ]
    );
    assert_eq!(s.buffered_events(), 2);
    assert!(s.book().is_empty());
}

#[test]
fn buffer_overflow_drops_oldest_once_per_episode() {
    let limits = SyncLimits {
        max_buffered_events: 3,
        max_buffered_levels: 100,
    };
    let mut s = BookSync::new(INST, Market::Spot, limits);
    let mut out = Vec::new();
    for i in 0..5u64 {
        s.on_diff(&sd(100 + i, 100 + i, &[(1, 1)], &[]).msg(), &mut out);
    }
    assert_eq!(
        out,
        vec![
            resync(ResyncReason::Initial),
            BookEvent::BufferOverflow {
                instrument: INST,
                dropped_events: 1,
            },
            resync(ResyncReason::BufferOverflow),
        ]
    );
    assert_eq!(s.buffered_events(), 3);
    assert_eq!(s.stats().overflow_dropped, 2);
    // The oldest were dropped: a snapshot at 101 is now stale (first buffered is 102).
    let out = feed_snap(&mut s, 100, &[], &[]);
    assert_eq!(
        out[0],
        BookEvent::StaleSnapshot {
            instrument: INST,
            last_update_id: 100,
            first_buffered: 102,
        }
    );
    // The snapshot ended the episode: the next overflow is reported again.
    let out = feed(&mut s, &sd(105, 105, &[], &[]));
    assert_eq!(
        out,
        vec![
            BookEvent::BufferOverflow {
                instrument: INST,
                dropped_events: 1,
            },
            resync(ResyncReason::BufferOverflow),
        ]
    );
    assert_eq!(feed_snap(&mut s, 103, &[(1, 1)], &[]), vec![synced(105)]);
}

#[test]
fn buffer_overflow_by_levels() {
    let limits = SyncLimits {
        max_buffered_events: 100,
        max_buffered_levels: 4,
    };
    let mut s = BookSync::new(INST, Market::Spot, limits);
    let mut out = Vec::new();
    s.on_diff(&sd(1, 1, &[(1, 1)], &[(5, 1)]).msg(), &mut out);
    s.on_diff(&sd(2, 2, &[(1, 2)], &[(5, 2)]).msg(), &mut out);
    assert_eq!(s.buffered_levels(), 4);
    s.on_diff(&sd(3, 3, &[(1, 3)], &[]).msg(), &mut out);
    assert_eq!((s.buffered_events(), s.buffered_levels()), (2, 3));
    assert_eq!(s.stats().overflow_dropped, 1);
    // A diff bigger than the whole budget drops everything, itself included.
    let big = sd(4, 4, &[(1, 1), (2, 1), (3, 1)], &[(6, 1), (7, 1)]);
    s.on_diff(&big.msg(), &mut out);
    assert_eq!((s.buffered_events(), s.buffered_levels()), (0, 0));
    assert_eq!(s.stats().overflow_dropped, 4);
    let overflows = out
        .iter()
        .filter(|e| matches!(e, BookEvent::BufferOverflow { .. }))
        .count();
    assert_eq!(overflows, 1);
}

#[test]
fn snapshot_while_synced_is_ignored() {
    let mut s = synced_spot();
    let before = s.book().clone();
    assert!(feed_snap(&mut s, 200, &[(1, 1)], &[(2, 1)]).is_empty());
    assert!(s.is_synced());
    assert_eq!(s.book(), &before);
    assert_eq!(s.stats().snapshots_ignored, 1);
    let live = sd(106, 106, &[], &[]);
    assert_eq!(feed(&mut s, &live), vec![applied(&live)]);
}

#[test]
fn older_snapshot_while_waiting_is_ignored_newer_replaces() {
    let mut s = spot();
    feed_snap(&mut s, 102, SNAP_BIDS, SNAP_ASKS);
    feed_snap(&mut s, 90, &[(1, 1)], &[]);
    assert_eq!(s.last_update_id(), Some(102));
    assert_eq!(s.stats().snapshots_ignored, 1);
    feed_snap(&mut s, 104, &[(3, 1)], &[(4, 1)]);
    assert_eq!(s.last_update_id(), Some(104));
    assert_eq!(side_vec(s.book().bids()), vec![(3, 1)]);
    assert_eq!(feed(&mut s, &sd(103, 105, &[], &[])), vec![synced(105)]);
}

#[test]
fn zero_qty_delete_and_noop_levels() {
    let mut s = synced_spot();
    // Delete an existing level, delete an absent one, re-set an equal quantity, reject a
    // negative one: only the first is a change.
    let d = sd(
        106,
        106,
        &[(100, 0), (50, 0), (99, 3), (98, -4)],
        &[(101, 0)],
    );
    assert_eq!(
        feed(&mut s, &d),
        vec![
            changed(Side::Bid, 100, 0),
            changed(Side::Ask, 101, 0),
            applied(&d)
        ]
    );
    assert_eq!(s.book().best_bid(), Some(lv(99, 3)));
    assert_eq!(s.book().best_ask(), Some(lv(102, 4)));
    assert_eq!(s.stats().levels_rejected, 1);
}

#[test]
fn initial_request_exactly_once() {
    let mut s = spot();
    let mut out = Vec::new();
    for i in 0..10u64 {
        s.on_diff(&sd(i * 2, i * 2 + 1, &[], &[]).msg(), &mut out);
    }
    assert_eq!(out, vec![resync(ResyncReason::Initial)]);
    assert_eq!(s.stats().resyncs, 1);
}

#[test]
fn output_is_appended_never_cleared() {
    let mut s = synced_spot();
    let sentinel = synced(1);
    let mut out = vec![sentinel];
    let d = sd(106, 106, &[(90, 1)], &[]);
    s.on_diff(&d.msg(), &mut out);
    assert_eq!(out, vec![sentinel, changed(Side::Bid, 90, 1), applied(&d)]);
}

#[test]
fn other_instruments_are_ignored() {
    let mut s = synced_spot();
    let d = sd(106, 106, &[(90, 1)], &[]);
    let mut m = d.msg();
    m.instrument = InstrumentId(8);
    let mut out = Vec::new();
    s.on_diff(&m, &mut out);
    let mut sn = snap(300, &[], &[]);
    sn.instrument = InstrumentId(8);
    s.on_snapshot(&sn, &mut out);
    assert!(out.is_empty());
    assert_eq!(s.stats().foreign_ignored, 2);
    assert_eq!(s.last_update_id(), Some(105));
}

#[test]
fn hostile_ids_never_panic() {
    // U > u while synced is a gap.
    let mut s = synced_spot();
    assert_eq!(
        feed(&mut s, &sd(106, 100, &[], &[])),
        vec![gap(106, 100), resync(ResyncReason::Gap)]
    );

    // Ids at u64::MAX.
    let max = u64::MAX;
    let mut s = spot();
    feed(&mut s, &sd(max - 1, max, &[], &[]));
    assert_eq!(
        feed_snap(&mut s, max - 2, SNAP_BIDS, SNAP_ASKS),
        vec![synced(max)]
    );
    // Nothing can follow u64::MAX.
    assert_eq!(
        feed(&mut s, &sd(0, 0, &[], &[])),
        vec![gap(max, 0), resync(ResyncReason::Gap)]
    );
    // A snapshot at u64::MAX covers every spot diff.
    feed_snap(&mut s, max, SNAP_BIDS, SNAP_ASKS);
    assert_eq!(s.state(), SyncState::SnapshotLoaded);
    assert!(feed(&mut s, &sd(max, max, &[], &[])).is_empty());
    assert!(feed(&mut s, &sd(0, 0, &[], &[])).is_empty());

    // Futures at u64::MAX, and a futures diff without pu.
    let mut s = futures();
    feed_snap(&mut s, max, SNAP_BIDS, SNAP_ASKS);
    assert_eq!(feed(&mut s, &fd(max, max, 0, &[], &[])), vec![synced(max)]);
    assert_eq!(
        feed(&mut s, &sd(max, max, &[], &[])),
        vec![gap(max, 0), resync(ResyncReason::Gap)]
    );

    // Snapshot id 0 and diff ids 0.
    let mut s = spot();
    feed(&mut s, &sd(0, 0, &[], &[]));
    feed(&mut s, &sd(5, 1, &[], &[]));
    let out = feed_snap(&mut s, 0, &[], &[]);
    assert_eq!(
        out[0],
        BookEvent::StaleSnapshot {
            instrument: INST,
            last_update_id: 0,
            first_buffered: 5,
        }
    );
}

#[test]
fn reset_starts_over() {
    let mut s = synced_spot();
    s.reset();
    assert_eq!(s.state(), SyncState::AwaitingSnapshot);
    assert!(s.book().is_empty());
    assert_eq!(
        feed(&mut s, &sd(500, 501, &[], &[])),
        vec![resync(ResyncReason::Initial)]
    );
}

// ---------------------------------------------------------------------------------------
// Model-based: a hidden true book evolves by single-level changes, each with its own update
// id; diffs group consecutive changes; a snapshot is the true book at some id.

#[derive(Debug, Clone, Copy)]
struct Change {
    side: Side,
    price: i64,
    qty: i64,
}

fn change() -> impl Strategy<Value = Change> {
    // Bids at 1..=20, asks at 21..=40: the true book never crosses.
    (any::<bool>(), 1i64..=20, 0i64..4).prop_map(|(bid, p, qty)| Change {
        side: if bid { Side::Bid } else { Side::Ask },
        price: if bid { p } else { p + 20 },
        qty,
    })
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct TrueBook {
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
}

impl TrueBook {
    fn apply(&mut self, c: Change) {
        let m = match c.side {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
        };
        if c.qty == 0 {
            m.remove(&c.price);
        } else {
            m.insert(c.price, c.qty);
        }
    }
    fn bids(&self) -> Vec<(i64, i64)> {
        self.bids.iter().rev().map(|(&p, &q)| (p, q)).collect()
    }
    fn asks(&self) -> Vec<(i64, i64)> {
        self.asks.iter().map(|(&p, &q)| (p, q)).collect()
    }
}

fn assert_book(book: &OrderBook, t: &TrueBook) -> Result<(), TestCaseError> {
    prop_assert_eq!(side_vec(book.bids()), t.bids());
    prop_assert_eq!(side_vec(book.asks()), t.asks());
    Ok(())
}

/// Consumes a [`BookSync`]'s events like a downstream client would: copies the book on
/// `Synced`, then follows `LevelChanged`; checks it against the book at every `Applied`.
#[derive(Default)]
struct Observer {
    mirror: OrderBook,
    seen_synced: bool,
    resyncs: Vec<ResyncReason>,
    gaps: Vec<(u64, u64)>,
}

impl Observer {
    fn take(
        &mut self,
        s: &BookSync,
        out: &mut Vec<BookEvent>,
        diff: Option<&Diff>,
        ids: &[u64],
        states: &[TrueBook],
    ) -> Result<(), TestCaseError> {
        for ev in out.drain(..) {
            prop_assert_eq!(ev.instrument(), INST);
            match ev {
                BookEvent::Synced { last_update_id, .. } => {
                    prop_assert!(!self.seen_synced);
                    self.seen_synced = true;
                    self.mirror = s.book().clone();
                    let at = ids.iter().position(|&id| id == last_update_id).unwrap();
                    assert_book(s.book(), &states[at])?;
                }
                BookEvent::LevelChanged {
                    side, price, qty, ..
                } => {
                    prop_assert!(self.seen_synced);
                    prop_assert!(self.mirror.apply(side, price, qty).is_change());
                }
                BookEvent::Applied {
                    final_update_id, ..
                } => {
                    prop_assert_eq!(Some(final_update_id), diff.map(|d| d.last));
                    prop_assert_eq!(&self.mirror, s.book());
                }
                BookEvent::ResyncRequested { reason, .. } => self.resyncs.push(reason),
                BookEvent::Gap { expected, got, .. } => self.gaps.push((expected, got)),
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct Scenario {
    futures: bool,
    base: u64,
    changes: Vec<Change>,
    sizes: Vec<usize>,
    skips: Vec<u64>,
    start: prop::sample::Index,
    snap_at: prop::sample::Index,
    deliver: prop::sample::Index,
    drop: Option<prop::sample::Index>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        any::<bool>(),
        prop_oneof![Just(1u64), 1_000u64..1_000_000, Just(u64::MAX - 1_000)],
        proptest::collection::vec(change(), 1..50),
        proptest::collection::vec(1usize..5, 50),
        proptest::collection::vec(0u64..4, 50),
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        proptest::option::of(any::<prop::sample::Index>()),
    )
        .prop_map(
            |(futures, base, changes, sizes, skips, start, snap_at, deliver, drop)| Scenario {
                futures,
                base,
                changes,
                sizes,
                skips,
                start,
                snap_at,
                deliver,
                drop,
            },
        )
}

fn run_scenario(sc: &Scenario) -> Result<(), TestCaseError> {
    let n = sc.changes.len();
    // Update id of every change: contiguous on spot, with other symbols' ids between on futures.
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let id = match i {
            0 => sc.base,
            _ if sc.futures => ids[i - 1] + 1 + sc.skips[i],
            _ => ids[i - 1] + 1,
        };
        ids.push(id);
    }
    // True book after each change.
    let mut states = Vec::with_capacity(n);
    let mut t = TrueBook::default();
    for &c in &sc.changes {
        t.apply(c);
        states.push(t.clone());
    }
    // Diffs: consecutive groups of changes.
    let mut diffs: Vec<(Diff, usize)> = Vec::new(); // (diff, index of its last change)
    let mut i = 0;
    for &size in &sc.sizes {
        if i >= n {
            break;
        }
        let end = (i + size).min(n);
        let group = &sc.changes[i..end];
        let pick = |s: Side| -> Vec<Level> {
            group
                .iter()
                .filter(|c| c.side == s)
                .map(|c| lv(c.price, c.qty))
                .collect()
        };
        let pu = diffs
            .last()
            .map(|(d, _)| d.last)
            .unwrap_or(ids[i].saturating_sub(3));
        diffs.push((
            Diff {
                first: ids[i],
                last: ids[end - 1],
                prev: sc.futures.then_some(pu),
                time: end as u64,
                bids: pick(Side::Bid),
                asks: pick(Side::Ask),
            },
            end - 1,
        ));
        i = end;
    }
    let nd = diffs.len();
    // The connection sees diffs from `c` on; the snapshot is the true book after change `j`
    // (j = None: the empty book before the first change), no older than what `c` can bridge.
    let c = sc.start.index(nd);
    let first_change = if c == 0 { 0 } else { diffs[c - 1].1 + 1 };
    let lowest: isize = if sc.futures {
        first_change as isize
    } else {
        first_change as isize - 1
    };
    let j = lowest + sc.snap_at.index((n as isize - lowest) as usize) as isize;
    let (snap_id, snap_book) = if j < 0 {
        (ids[0] - 1, TrueBook::default())
    } else {
        (ids[j as usize], states[j as usize].clone())
    };
    // Index of the first diff that is not covered by the snapshot: it must bridge it.
    let bridge = (c..nd).find(|&k| {
        let u = diffs[k].0.last;
        if sc.futures {
            u >= snap_id
        } else {
            u > snap_id
        }
    });
    // The snapshot is delivered just before diff `p` (p == nd: after all of them).
    let p = c + sc.deliver.index(nd - c + 1);
    // Optionally lose one diff delivered after the book is synced, with one after it.
    let dropped = match (bridge, sc.drop) {
        (Some(k), Some(ix)) => {
            // The first diff applied live is max(k + 1, p).
            let lo = (k + 1).max(p);
            (lo + 1 < nd).then(|| lo + ix.index(nd - 1 - lo))
        }
        _ => None,
    };

    let market = if sc.futures {
        Market::UsdM
    } else {
        Market::Spot
    };
    let mut s = BookSync::new(INST, market, SyncLimits::default());
    let mut out = Vec::new();
    let mut obs = Observer::default();
    let b = lvs(&snap_book.bids());
    let a = lvs(&snap_book.asks());
    let snapshot = snap(snap_id, &b, &a);

    for (k, (d, last_change)) in diffs.iter().enumerate().skip(c) {
        if k == p {
            s.on_snapshot(&snapshot, &mut out);
            obs.take(&s, &mut out, None, &ids, &states)?;
        }
        if Some(k) == dropped {
            continue;
        }
        s.on_diff(&d.msg(), &mut out);
        obs.take(&s, &mut out, Some(d), &ids, &states)?;
        if s.is_synced() {
            prop_assert!(Some(k) >= bridge);
            prop_assert!(dropped.is_none_or(|dr| k < dr));
            assert_book(s.book(), &states[*last_change])?;
            prop_assert_eq!(s.last_update_id(), Some(d.last));
        }
    }
    if p == nd {
        s.on_snapshot(&snapshot, &mut out);
        obs.take(&s, &mut out, None, &ids, &states)?;
    }
    if let Some(dr) = dropped {
        let (before, lost, after) = (&diffs[dr - 1].0, &diffs[dr].0, &diffs[dr + 1].0);
        let want = if sc.futures {
            (before.last, lost.last)
        } else {
            (before.last + 1, after.first)
        };
        prop_assert_eq!(&obs.gaps, &vec![want]);
    } else {
        prop_assert!(obs.gaps.is_empty());
    }

    let mut expected_resyncs = Vec::new();
    if p > c {
        expected_resyncs.push(ResyncReason::Initial);
    }
    match (bridge, dropped) {
        (None, _) => {
            prop_assert_eq!(s.state(), SyncState::SnapshotLoaded);
            assert_book(s.book(), &snap_book)?;
        }
        (Some(_), None) => {
            prop_assert!(obs.seen_synced);
            prop_assert!(s.is_synced());
            assert_book(s.book(), &states[n - 1])?;
        }
        (Some(_), Some(_)) => {
            expected_resyncs.push(ResyncReason::Gap);
            prop_assert_eq!(s.state(), SyncState::OutOfSync);
            prop_assert_eq!(s.stats().gaps, 1);
        }
    }
    prop_assert_eq!(obs.resyncs, expected_resyncs);
    prop_assert_eq!(s.stats().stale_snapshots, 0);
    Ok(())
}

#[derive(Debug, Clone)]
enum Input {
    Diff(u64, u64, Option<u64>, Vec<(bool, i64, i64)>),
    Snapshot(u64, Vec<(i64, i64)>, Vec<(i64, i64)>),
}

fn input() -> impl Strategy<Value = Input> {
    let id = || prop_oneof![0u64..20, Just(u64::MAX), Just(u64::MAX - 1)];
    let lvls = || proptest::collection::vec((0i64..10, -1i64..3), 0..5);
    prop_oneof![
        6 => (id(), id(), proptest::option::of(id()),
              proptest::collection::vec((any::<bool>(), 0i64..10, -1i64..3), 0..5))
            .prop_map(|(a, b, pu, l)| Input::Diff(a, b, pu, l)),
        1 => (id(), lvls(), lvls()).prop_map(|(i, b, a)| Input::Snapshot(i, b, a)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn synced_book_tracks_true_book(sc in scenario()) {
        run_scenario(&sc)?;
    }

    #[test]
    fn arbitrary_input_never_panics_or_syncs_crossed(
        futures in any::<bool>(),
        inputs in proptest::collection::vec(input(), 0..40),
    ) {
        let market = if futures { Market::CoinM } else { Market::Spot };
        let limits = SyncLimits { max_buffered_events: 8, max_buffered_levels: 16 };
        let mut s = BookSync::new(INST, market, limits);
        let mut out = Vec::new();
        for inp in inputs {
            match inp {
                Input::Diff(first, last, pu, levels) => {
                    let bids: Vec<Level> =
                        levels.iter().filter(|l| l.0).map(|l| lv(l.1, l.2)).collect();
                    let asks: Vec<Level> =
                        levels.iter().filter(|l| !l.0).map(|l| lv(l.1 + 5, l.2)).collect();
                    let d = Diff { first, last, prev: pu, time: 0, bids, asks };
                    s.on_diff(&d.msg(), &mut out);
                }
                Input::Snapshot(id, b, a) => {
                    let (b, a) = (lvs(&b), lvs(&a));
                    s.on_snapshot(&snap(id, &b, &a), &mut out);
                }
            }
            if s.is_synced() {
                prop_assert!(!s.book().is_crossed());
            }
            if matches!(s.state(), SyncState::AwaitingSnapshot | SyncState::OutOfSync) {
                prop_assert!(s.book().is_empty());
            }
            prop_assert!(s.buffered_events() <= 8 && s.buffered_levels() <= 16);
        }
        let initial = out
            .iter()
            .filter(|e| matches!(e, BookEvent::ResyncRequested { reason: ResyncReason::Initial, .. }))
            .count();
        prop_assert!(initial <= 1);
    }
}
