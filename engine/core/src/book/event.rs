//! What a [`BookSync`](super::BookSync) reports, and its canonical byte encoding.

use crate::fixed::{Price, Qty};
use crate::instrument::InstrumentId;
use crate::msg::Side;

/// Why a [`BookSync`](super::BookSync) needs a new REST snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResyncReason {
    /// The first diff arrived and no snapshot has been seen yet.
    Initial,
    /// A diff did not continue the previous one.
    Gap,
    /// A diff left the book crossed.
    Crossed,
    /// The snapshot is older than the oldest diff still available.
    StaleSnapshot,
    /// The diff buffer overflowed, so a pending snapshot is probably too old.
    BufferOverflow,
    /// The connection feeding the book went down: the book was cleared and syncs again from
    /// scratch once the feed is back (no snapshot is needed before that).
    Disconnected,
}

/// What a [`BookSync`](super::BookSync) reports; every variant names its instrument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookEvent {
    /// The book is synced: the snapshot and any buffered diffs were applied silently, so read
    /// the whole book now. Later changes arrive as `LevelChanged` + `Applied`.
    Synced {
        /// Instrument.
        instrument: InstrumentId,
        /// The final update id the book now reflects.
        last_update_id: u64,
    },
    /// A level of a synced book changed; `qty` zero means the level was removed.
    LevelChanged {
        /// Instrument.
        instrument: InstrumentId,
        /// Side of the level.
        side: Side,
        /// Level price.
        price: Price,
        /// New quantity (zero: removed).
        qty: Qty,
    },
    /// A diff was applied to a synced book; it follows that diff's `LevelChanged` events.
    Applied {
        /// Instrument.
        instrument: InstrumentId,
        /// The diff's `U`.
        first_update_id: u64,
        /// The diff's `u`.
        final_update_id: u64,
        /// The diff's `E`, ms.
        event_time_ms: u64,
    },
    /// A diff did not continue the book (spot: `U`, futures: `pu`).
    Gap {
        /// Instrument.
        instrument: InstrumentId,
        /// Spot: the `U` required (`prev_u + 1`); futures: the `pu` required (`prev_u`).
        expected: u64,
        /// The `U` (spot) or `pu` (futures) received; `u` for a diff with `U > u`, `0` for a
        /// futures diff without `pu`.
        got: u64,
    },
    /// The io layer should fetch a new REST snapshot for this instrument.
    ResyncRequested {
        /// Instrument.
        instrument: InstrumentId,
        /// Why.
        reason: ResyncReason,
    },
    /// The book became crossed after a diff (followed by `ResyncRequested { Crossed }`).
    Crossed {
        /// Instrument.
        instrument: InstrumentId,
        /// Best bid price.
        bid: Price,
        /// Best ask price.
        ask: Price,
    },
    /// A snapshot cannot be bridged: the diffs right after it are gone.
    StaleSnapshot {
        /// Instrument.
        instrument: InstrumentId,
        /// The snapshot's `lastUpdateId`.
        last_update_id: u64,
        /// `U` of the oldest diff available after it.
        first_buffered: u64,
    },
    /// The diff buffer overflowed (once per episode; see [`SyncStats::overflow_dropped`](super::SyncStats::overflow_dropped)).
    BufferOverflow {
        /// Instrument.
        instrument: InstrumentId,
        /// Diffs dropped by the overflow that started the episode.
        dropped_events: u64,
    },
}

impl BookEvent {
    /// The instrument the event is about.
    pub fn instrument(&self) -> InstrumentId {
        match *self {
            BookEvent::Synced { instrument, .. }
            | BookEvent::LevelChanged { instrument, .. }
            | BookEvent::Applied { instrument, .. }
            | BookEvent::Gap { instrument, .. }
            | BookEvent::ResyncRequested { instrument, .. }
            | BookEvent::Crossed { instrument, .. }
            | BookEvent::StaleSnapshot { instrument, .. }
            | BookEvent::BufferOverflow { instrument, .. } => instrument,
        }
    }
}

impl ResyncReason {
    /// Stable lower-case name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ResyncReason::Initial => "initial",
            ResyncReason::Gap => "gap",
            ResyncReason::Crossed => "crossed",
            ResyncReason::StaleSnapshot => "stale_snapshot",
            ResyncReason::BufferOverflow => "buffer_overflow",
            ResyncReason::Disconnected => "disconnected",
        }
    }

    fn code(self) -> u8 {
        match self {
            ResyncReason::Initial => 0,
            ResyncReason::Gap => 1,
            ResyncReason::Crossed => 2,
            ResyncReason::StaleSnapshot => 3,
            ResyncReason::BufferOverflow => 4,
            ResyncReason::Disconnected => 5,
        }
    }
}

/// Writes the canonical encoding of `ev` to `out` (for output digests).
///
/// One tag byte per variant (1 `Synced`, 2 `LevelChanged`, 3 `Applied`, 4 `Gap`,
/// 5 `ResyncRequested`, 6 `Crossed`, 7 `StaleSnapshot`, 8 `BufferOverflow`), the instrument
/// id as `u32`, then the fields in declaration order: integers little-endian (`u64`/`i64`),
/// a side as one byte (0 bid, 1 ask), a reason as one byte (0 initial, 1 gap, 2 crossed,
/// 3 stale snapshot, 4 buffer overflow, 5 disconnected). At most 29 bytes, passed in pieces.
pub fn encode_book_event<F: FnMut(&[u8]) + ?Sized>(ev: &BookEvent, out: &mut F) {
    let mut head = |tag: u8, inst: InstrumentId| {
        out(&[tag]);
        out(&inst.0.to_le_bytes());
    };
    match *ev {
        BookEvent::Synced {
            instrument,
            last_update_id,
        } => {
            head(1, instrument);
            out(&last_update_id.to_le_bytes());
        }
        BookEvent::LevelChanged {
            instrument,
            side,
            price,
            qty,
        } => {
            head(2, instrument);
            out(&[match side {
                Side::Bid => 0,
                Side::Ask => 1,
            }]);
            out(&price.0.to_le_bytes());
            out(&qty.0.to_le_bytes());
        }
        BookEvent::Applied {
            instrument,
            first_update_id,
            final_update_id,
            event_time_ms,
        } => {
            head(3, instrument);
            out(&first_update_id.to_le_bytes());
            out(&final_update_id.to_le_bytes());
            out(&event_time_ms.to_le_bytes());
        }
        BookEvent::Gap {
            instrument,
            expected,
            got,
        } => {
            head(4, instrument);
            out(&expected.to_le_bytes());
            out(&got.to_le_bytes());
        }
        BookEvent::ResyncRequested { instrument, reason } => {
            head(5, instrument);
            out(&[reason.code()]);
        }
        BookEvent::Crossed {
            instrument,
            bid,
            ask,
        } => {
            head(6, instrument);
            out(&bid.0.to_le_bytes());
            out(&ask.0.to_le_bytes());
        }
        BookEvent::StaleSnapshot {
            instrument,
            last_update_id,
            first_buffered,
        } => {
            head(7, instrument);
            out(&last_update_id.to_le_bytes());
            out(&first_buffered.to_le_bytes());
        }
        BookEvent::BufferOverflow {
            instrument,
            dropped_events,
        } => {
            head(8, instrument);
            out(&dropped_events.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(ev: &BookEvent) -> Vec<u8> {
        let mut v = Vec::new();
        encode_book_event(ev, &mut |b: &[u8]| v.extend_from_slice(b));
        v
    }

    #[test]
    fn encoding_is_canonical_and_distinct() {
        let i = InstrumentId(0x0102_0304);
        let ev = BookEvent::LevelChanged {
            instrument: i,
            side: Side::Ask,
            price: Price(-2),
            qty: Qty(5),
        };
        let mut want = vec![2, 4, 3, 2, 1, 1];
        want.extend_from_slice(&(-2i64).to_le_bytes());
        want.extend_from_slice(&5i64.to_le_bytes());
        assert_eq!(bytes(&ev), want);
        assert_eq!(ev.instrument(), i);

        let all = [
            BookEvent::Synced {
                instrument: i,
                last_update_id: 1,
            },
            BookEvent::Applied {
                instrument: i,
                first_update_id: 1,
                final_update_id: 2,
                event_time_ms: 3,
            },
            BookEvent::Gap {
                instrument: i,
                expected: 1,
                got: 2,
            },
            BookEvent::ResyncRequested {
                instrument: i,
                reason: ResyncReason::Initial,
            },
            BookEvent::ResyncRequested {
                instrument: i,
                reason: ResyncReason::Gap,
            },
            BookEvent::Crossed {
                instrument: i,
                bid: Price(1),
                ask: Price(1),
            },
            BookEvent::StaleSnapshot {
                instrument: i,
                last_update_id: 1,
                first_buffered: 3,
            },
            BookEvent::BufferOverflow {
                instrument: i,
                dropped_events: 1,
            },
            ev,
        ];
        let enc: Vec<Vec<u8>> = all.iter().map(bytes).collect();
        for (a, ea) in all.iter().zip(&enc) {
            assert!(ea.len() <= 29);
            for (b, eb) in all.iter().zip(&enc) {
                assert_eq!(a == b, ea == eb, "{a:?} vs {b:?}");
            }
        }
        assert_eq!(ResyncReason::StaleSnapshot.as_str(), "stale_snapshot");
    }
}
