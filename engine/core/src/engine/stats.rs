//! Counters for the replay summary and `/status`.

use std::collections::BTreeMap;

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
        MESSAGE_KINDS
            .iter()
            .zip(self.0.iter())
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| (*k, *n))
    }

    /// The count for one kind name.
    pub fn get(&self, kind: &str) -> u64 {
        MESSAGE_KINDS
            .iter()
            .position(|k| *k == kind)
            .map_or(0, |i| self.0[i])
    }
}
