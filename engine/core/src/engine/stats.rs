//! Counters for the replay summary and `/status`.

use std::collections::BTreeMap;

use crate::book::BookEvent;
use crate::desk::PrivateChannel;
use crate::output::Event;

/// Counters for the replay summary and `/status`. Maps are ordered so output is deterministic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Records handled, all kinds.
    pub records: u64,
    /// Decoded messages by kind (`depth`, `snapshot`, `trade`, ...).
    pub messages: MessageCounts,
    /// Errors by code.
    pub errors: BTreeMap<&'static str, u64>,
    /// Outputs produced: client outputs and venue orders (the digest counts both, as venue
    /// orders were client outputs once), not snapshot requests.
    pub outputs: u64,
    /// Outputs produced, by kind (the same outputs as [`EngineStats::outputs`]).
    pub outputs_by_kind: OutputCounts,
    /// Outputs dropped because the caller did not drain the queue.
    pub outputs_dropped: u64,
    /// Venue commands dropped because the caller did not drain their queue.
    pub venue_commands_dropped: u64,
    /// bookTicker oracle checks: a bookTicker whose `u` equals the book's last applied id.
    pub bbo_checks: u64,
    /// Of those, how many disagreed with the book's top.
    pub bbo_mismatches: u64,
}

/// Names of the message kinds counted in [`MessageCounts`], in index order.
pub const MESSAGE_KINDS: [&str; 8] = [
    "depth",
    "snapshot",
    "trade",
    "agg_trade",
    "book_ticker",
    "ticker",
    "mini_ticker",
    "unknown",
];

/// Decoded messages by kind: a fixed array, so counting costs an increment on the hot path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageCounts(
    /// Indexed like [`MESSAGE_KINDS`]; the market path increments it directly.
    pub(super) [u64; MESSAGE_KINDS.len()],
);

impl MessageCounts {
    /// `(kind, count)` for every kind seen at least once, in [`MESSAGE_KINDS`] order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        counted(&MESSAGE_KINDS, &self.0)
    }

    /// The count for one kind name.
    pub fn get(&self, kind: &str) -> u64 {
        count_of(&MESSAGE_KINDS, &self.0, kind)
    }
}

/// Names of the output kinds counted in [`OutputCounts`], in index order: one per book
/// event, market event and private channel, then `gateway_request` for a venue order (the
/// name venue orders had when they were outputs). Snapshot requests to a venue are not
/// outputs (the `book_resync_requested` behind each is).
pub const OUTPUT_KINDS: [&str; 23] = [
    "book_synced",
    "book_level",
    "book_applied",
    "book_gap",
    "book_resync_requested",
    "book_crossed",
    "book_stale_snapshot",
    "book_buffer_overflow",
    "bbo",
    "trade",
    "agg_trade",
    "book_ticker",
    "ticker",
    "error",
    "venue",
    "private_reply",
    "private_orders",
    "private_positions",
    "private_portfolio",
    "private_risk_alerts",
    "private_signal",
    "private_bot_status",
    "gateway_request",
];

/// [`OUTPUT_KINDS`]' index of a book's level change.
pub(super) const KIND_BOOK_LEVEL: usize = 1;
/// [`OUTPUT_KINDS`]' index of a venue order.
pub(super) const KIND_GATEWAY_REQUEST: usize = 22;

/// The index of an output's kind in [`OUTPUT_KINDS`].
#[inline]
pub(super) fn output_kind(e: &Event) -> usize {
    match e {
        Event::Book(b) => match b {
            BookEvent::Synced { .. } => 0,
            BookEvent::LevelChanged { .. } => KIND_BOOK_LEVEL,
            BookEvent::Applied { .. } => 2,
            BookEvent::Gap { .. } => 3,
            BookEvent::ResyncRequested { .. } => 4,
            BookEvent::Crossed { .. } => 5,
            BookEvent::StaleSnapshot { .. } => 6,
            BookEvent::BufferOverflow { .. } => 7,
        },
        Event::Bbo(_) => 8,
        Event::Trade(_) => 9,
        Event::AggTrade(_) => 10,
        Event::BookTicker(_) => 11,
        Event::Ticker(_) => 12,
        Event::Error(_) => 13,
        Event::Venue(_) => 14,
        Event::Private(m) => match m.channel {
            PrivateChannel::Reply => 15,
            PrivateChannel::Orders => 16,
            PrivateChannel::Positions => 17,
            PrivateChannel::Portfolio => 18,
            PrivateChannel::RiskAlerts => 19,
            PrivateChannel::Signal => 20,
            PrivateChannel::BotStatus => 21,
        },
    }
}

/// Outputs by kind: a fixed array, so counting costs an increment per output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputCounts(
    /// Indexed like [`OUTPUT_KINDS`].
    pub(super) [u64; OUTPUT_KINDS.len()],
);

impl OutputCounts {
    /// `(kind, count)` for every kind produced at least once, in [`OUTPUT_KINDS`] order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        counted(&OUTPUT_KINDS, &self.0)
    }

    /// The count for one kind name.
    pub fn get(&self, kind: &str) -> u64 {
        count_of(&OUTPUT_KINDS, &self.0, kind)
    }
}

/// `(name, count)` for every nonzero count, `counts` indexed like `names`.
fn counted<'a>(
    names: &'a [&'static str],
    counts: &'a [u64],
) -> impl Iterator<Item = (&'static str, u64)> + 'a {
    names
        .iter()
        .zip(counts)
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| (*k, *n))
}

/// The count named `kind`, `counts` indexed like `names`; 0 for a name not there.
fn count_of(names: &[&str], counts: &[u64], kind: &str) -> u64 {
    names
        .iter()
        .position(|k| *k == kind)
        .and_then(|i| counts.get(i))
        .copied()
        .unwrap_or(0)
}
