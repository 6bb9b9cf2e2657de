//! [`History`]: the bounded record of what a stream published, for `resume`.
//!
//! A stream's history is a ring of `(seq, message)`: replaying it to a client that comes
//! back sends the very bytes an uninterrupted subscriber got. The ring is bounded by a
//! message count and a byte budget per stream ([`HistoryBudget`]); the oldest entries go
//! first.
//!
//! Each history copies its messages into an [`Arena`] of its own (a memcpy) rather than
//! holding the hub's frozen bytes: a message held pins its whole 32 KiB chunk, and the hub's
//! chunks interleave every stream's messages, so a slow stream's history (a ticker keeping
//! its last 256 messages, minutes) would pin every chunk published meanwhile: all the market
//! data of those minutes. In its own arena a stream's messages are consecutive and leave in
//! order, so a history holds at most its budget plus about two chunks. A market stream's
//! history allocates all of that when it starts recording ([`History::start`], on the
//! stream's first subscription): nothing is allocated per message afterwards, not even while
//! the ring fills (the `VecDeque` keeps its capacity, the arena reclaims its chunks in
//! place); `engine/core/tests/pipeline_alloc.rs` holds it to that. A private history grows
//! with its first messages instead (a user's budget is reserved only if used).
//!
//! Invariant: the ring holds consecutive `seq`s, ending at the stream's last published one
//! (`last`), whenever it is non-empty; a message too large for the budget, or a `seq` that
//! does not follow, empties it (the next resume over that range is `too_old`).
//!
//! A `book` snapshot broadcast on a resync is per depth, so it is kept as a marker (`None`):
//! a resume that would replay across it is answered `resynced` and gets a fresh snapshot.

use std::collections::VecDeque;

use tungstenite::Utf8Bytes;

use crate::wire::arena::{Arena, CHUNK_BYTES};

/// Bounds of one stream's history (the default, zero, keeps nothing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryBudget {
    /// Messages kept at most; 0 turns the history off.
    pub messages: usize,
    /// Bytes of message text kept at most.
    pub bytes: usize,
}

impl HistoryBudget {
    /// A budget of `messages` messages and `bytes` bytes.
    pub const fn new(messages: usize, bytes: usize) -> Self {
        HistoryBudget { messages, bytes }
    }

    fn off(self) -> bool {
        self.messages == 0 || self.bytes == 0
    }
}

/// History budgets per stream kind (per instrument for market channels, per user and
/// channel for private ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryConfig {
    /// `trades`, per instrument.
    pub trades: HistoryBudget,
    /// `bbo`, per instrument.
    pub bbo: HistoryBudget,
    /// `ticker`, per instrument.
    pub ticker: HistoryBudget,
    /// `book` (updates and statuses), per instrument.
    pub book: HistoryBudget,
    /// `orders`, `positions`, `portfolio`, `risk_alerts`: per user and channel; `signal`,
    /// `bot_status`: per publisher and channel.
    pub private: HistoryBudget,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            trades: HistoryBudget::new(4096, 1 << 20),
            bbo: HistoryBudget::new(4096, 1 << 20),
            ticker: HistoryBudget::new(256, 128 << 10),
            book: HistoryBudget::new(4096, 4 << 20),
            private: HistoryBudget::new(4096, 2 << 20),
        }
    }
}

/// What a history can replay after a given `seq`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Lookup<'a> {
    /// Every message after it, in order (possibly none).
    Replay(Vec<&'a Utf8Bytes>),
    /// The history does not reach back that far.
    TooOld,
    /// A book resync (a snapshot broadcast) lies in between.
    Resynced,
}

/// One stream's bounded history (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct History {
    ring: VecDeque<(u64, Option<Utf8Bytes>)>,
    bytes: usize,
    /// Where the ring's messages live (see the module docs).
    arena: Arena,
    /// Recording: set on the stream's first subscription (market) or message (private).
    pub on: bool,
}

impl History {
    /// Starts recording with `budget`'s memory allocated at once: the ring's slots and the
    /// arena's chunks (the budget's bytes, plus the two chunks a ring within budget can
    /// pin beyond them), so recording never allocates on the hot path, even while the
    /// history fills.
    pub(crate) fn start(&mut self, budget: HistoryBudget) {
        if self.on || budget.off() {
            return;
        }
        self.on = true;
        self.ring.reserve(budget.messages);
        self.arena.reserve(budget.bytes.div_ceil(CHUNK_BYTES) + 2);
    }

    /// Records the message published with `seq` (`None`: a resync marker).
    pub(crate) fn record(&mut self, budget: HistoryBudget, seq: u64, msg: Option<&Utf8Bytes>) {
        if budget.off() {
            return;
        }
        let len = msg.map_or(0, |m| m.len());
        let follows = self
            .ring
            .back()
            .is_none_or(|(s, _)| s.checked_add(1) == Some(seq));
        if !follows || len > budget.bytes {
            self.clear();
            if len > budget.bytes {
                return;
            }
        }
        while !self.ring.is_empty()
            && (self.ring.len() >= budget.messages || self.bytes + len > budget.bytes)
        {
            if let Some((_, m)) = self.ring.pop_front() {
                self.bytes -= m.map_or(0, |m| m.len());
            }
        }
        self.bytes += len;
        let copy = msg.map(|m| self.arena.freeze(m.as_str()));
        self.ring.push_back((seq, copy));
    }

    fn clear(&mut self) {
        self.ring.clear();
        self.bytes = 0;
    }

    /// What follows `after` up to `head` (the stream's last `seq`, `after <= head`).
    pub(crate) fn lookup(&self, after: u64, head: u64) -> Lookup<'_> {
        if after >= head {
            return Lookup::Replay(Vec::new());
        }
        let (Some((first, _)), Some((last, _))) = (self.ring.front(), self.ring.back()) else {
            return Lookup::TooOld;
        };
        if *last != head || *first > after + 1 {
            return Lookup::TooOld;
        }
        let skip = (after + 1 - first) as usize;
        let mut out = Vec::with_capacity(self.ring.len() - skip);
        for (_, m) in self.ring.iter().skip(skip) {
            match m {
                Some(m) => out.push(m),
                None => return Lookup::Resynced,
            }
        }
        Lookup::Replay(out)
    }

    /// Messages and bytes held.
    #[cfg(test)]
    pub(crate) fn size(&self) -> (usize, usize) {
        (self.ring.len(), self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Utf8Bytes {
        Utf8Bytes::from(s.to_owned())
    }

    fn strs(l: Lookup<'_>) -> Vec<String> {
        match l {
            Lookup::Replay(v) => v.iter().map(|m| m.as_str().to_owned()).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn keeps_the_newest_within_both_budgets() {
        let mut h = History::default();
        let b = HistoryBudget::new(3, 10);
        for (seq, s) in [(1, "aa"), (2, "bb"), (3, "cc"), (4, "dd")] {
            h.record(b, seq, Some(&m(s)));
        }
        assert_eq!(h.size(), (3, 6));
        assert_eq!(strs(h.lookup(1, 4)), ["bb", "cc", "dd"]);
        assert_eq!(strs(h.lookup(3, 4)), ["dd"]);
        assert_eq!(strs(h.lookup(4, 4)), Vec::<String>::new());
        assert_eq!(h.lookup(0, 4), Lookup::TooOld);
        // The byte budget evicts too.
        h.record(b, 5, Some(&m("eeeeeeee")));
        assert_eq!(h.size(), (2, 10));
        assert_eq!(h.lookup(2, 5), Lookup::TooOld);
        assert_eq!(strs(h.lookup(3, 5)), ["dd", "eeeeeeee"]);
        // Too large for the budget: nothing can be replayed across it.
        h.record(b, 6, Some(&m("x".repeat(11).as_str())));
        assert_eq!(h.size(), (0, 0));
        assert_eq!(h.lookup(5, 6), Lookup::TooOld);
        // A head the ring does not end at (something was not recorded): too old.
        h.record(b, 7, Some(&m("g")));
        assert_eq!(h.lookup(6, 8), Lookup::TooOld);
    }

    #[test]
    fn a_gap_in_seq_or_a_resync_marker_stops_the_replay() {
        let mut h = History::default();
        let b = HistoryBudget::new(10, 100);
        h.record(b, 1, Some(&m("a")));
        h.record(b, 3, Some(&m("c")));
        assert_eq!(
            h.size(),
            (1, 1),
            "a seq that does not follow restarts the ring"
        );
        assert_eq!(h.lookup(1, 3), Lookup::TooOld);
        h.record(b, 4, None);
        h.record(b, 5, Some(&m("e")));
        assert_eq!(h.lookup(2, 5), Lookup::Resynced);
        assert_eq!(strs(h.lookup(4, 5)), ["e"]);
    }

    proptest::proptest! {
        /// Against a model that keeps everything: the ring stays within both budgets, and
        /// whatever it answers is either the model's exact suffix, or `TooOld` only when
        /// the kept messages do not reach back, or `Resynced` only when a marker lies in
        /// the range.
        #[test]
        fn lookups_agree_with_a_model_that_keeps_everything(
            sizes in proptest::collection::vec((0usize..300, proptest::bool::weighted(0.05)), 1..400),
            messages in 1usize..64,
            bytes in 1usize..4096,
            after_frac in 0.0f64..=1.0,
        ) {
            let b = HistoryBudget::new(messages, bytes);
            let mut h = History::default();
            let mut model: Vec<Option<String>> = Vec::new();
            for (i, (len, marker)) in sizes.iter().enumerate() {
                let seq = i as u64 + 1;
                let msg = (!marker).then(|| format!("{seq:0>w$}", w = (*len).max(1)));
                h.record(b, seq, msg.as_ref().map(|m| Utf8Bytes::from(m.clone())).as_ref());
                model.push(msg);
                let (n, used) = h.size();
                proptest::prop_assert!(n <= messages && used <= bytes, "{} {}", n, used);
            }
            let head = model.len() as u64;
            let after = ((head as f64) * after_frac) as u64;
            let tail = &model[after as usize..];
            match h.lookup(after, head) {
                Lookup::Replay(v) => {
                    let got: Vec<&str> = v.iter().map(|m| m.as_str()).collect();
                    let want: Vec<&str> = tail.iter().map(|m| m.as_deref().unwrap()).collect();
                    proptest::prop_assert_eq!(got, want);
                }
                Lookup::Resynced => proptest::prop_assert!(tail.iter().any(Option::is_none)),
                Lookup::TooOld => {
                    // The newest messages that fit both budgets do not cover the range.
                    let mut used = 0;
                    let mut kept = 0;
                    for m in model.iter().rev() {
                        let len = m.as_ref().map_or(0, String::len);
                        if kept == messages || used + len > bytes {
                            break;
                        }
                        used += len;
                        kept += 1;
                    }
                    proptest::prop_assert!(kept < tail.len(), "kept {} of {}", kept, tail.len());
                }
            }
        }
    }

    #[test]
    fn an_off_budget_records_nothing() {
        let mut h = History::default();
        h.record(HistoryBudget::new(0, 100), 1, Some(&m("a")));
        h.record(HistoryBudget::new(10, 0), 1, Some(&m("a")));
        assert_eq!(h.size(), (0, 0));
        assert_eq!(h.lookup(0, 1), Lookup::TooOld);
    }
}
