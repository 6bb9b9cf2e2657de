//! One client connection: its subscriptions, its bounded outbox with conflation, its request
//! budget and heartbeat clock.
//!
//! The outbox is one FIFO (so a reply, the initial state it announces and the updates that
//! follow keep their order) with two budgets: channel messages (`outbound_queue`) and replies
//! (`max_queued_replies`). When the channel budget is exhausted, a message is conflated by
//! channel instead of queued:
//!
//! * `bbo`/`ticker`: it replaces the newest queued message of the same stream, or else waits
//!   in the subscription's one-message `slot`;
//! * `book`: every queued update of the stream is dropped and the subscription is marked to
//!   get a fresh snapshot, generated from the engine's book when its turn comes;
//! * `trades`: dropped and counted.
//!
//! Slots and pending snapshots move into the FIFO (in the order they were created) as soon as
//! there is room, before any newer message is queued, so a stream never overtakes itself.

use std::collections::{BTreeMap, VecDeque};

use tungstenite::Utf8Bytes;

use super::{Channel, ConnId, StreamKey};
use crate::input::Nanos;
use crate::instrument::InstrumentId;

/// Where a pending fresh book snapshot stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Snap {
    /// None needed.
    None,
    /// Needed, waiting for room in the outbox.
    Pending,
    /// Its placeholder is in the outbox; generated when popped.
    Queued,
}

/// A connection's state for one subscribed stream.
#[derive(Debug, Clone)]
pub(crate) struct Sub {
    /// Levels per side of the snapshots (book only).
    pub depth: usize,
    /// The latest conflated `bbo`/`ticker` message that did not fit.
    pub slot: Option<Utf8Bytes>,
    /// A fresh snapshot owed (book only).
    pub snap: Snap,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Reply,
    /// A message replayed from a stream's history by `resume`: outside both budgets (the
    /// history bounds it), ahead of anything live of its stream.
    Replay,
    Msg(StreamKey),
    /// Generate a book snapshot for this instrument when popped.
    Snapshot(InstrumentId),
}

#[derive(Debug, Clone)]
struct Item {
    kind: Kind,
    msg: Utf8Bytes,
}

/// What [`Conn::pop`] produced.
pub(crate) enum Popped {
    /// A ready message.
    Msg(Utf8Bytes),
    /// Generate a book snapshot of `depth` levels for this instrument now.
    Snapshot(InstrumentId, usize),
}

/// Hub-wide state a connection touches while queueing.
pub(crate) struct Shared<'a> {
    pub ready: &'a mut VecDeque<ConnId>,
    pub next_check: &'a mut Nanos,
    pub cap: usize,
    pub slow_timeout_ns: u64,
    pub delivered: &'a mut u64,
    pub conflated: &'a mut u64,
    pub trades_dropped: &'a mut u64,
}

/// Per-connection counters (for `/status`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnCounters {
    /// Requests received (text and binary frames).
    pub requests: u64,
    /// Channel messages queued for it.
    pub delivered: u64,
    /// Messages handed to the transport.
    pub transmitted: u64,
    /// Trades dropped because its outbox was full.
    pub trades_dropped: u64,
    /// Messages conflated (replaced, or folded into a fresh snapshot) for it.
    pub conflated: u64,
    /// Error replies sent to it.
    pub errors: u64,
}

/// One connection.
pub(crate) struct Conn {
    pub id: ConnId,
    queue: VecDeque<Item>,
    chan_len: usize,
    reply_len: usize,
    pub subs: BTreeMap<StreamKey, Sub>,
    /// Streams with a slot or a `Pending` snapshot, oldest first (may hold stale keys).
    deferred: VecDeque<StreamKey>,
    /// Subscriptions with a slot or a snapshot not yet generated; zero means the fast path.
    conflated_keys: usize,
    pub behind_since: Option<Nanos>,
    reported: bool,
    /// Request budget in 1e-9 tokens.
    tokens: u128,
    refilled: Nanos,
    pub consecutive_errors: u32,
    pub last_heard: Nanos,
    pub next_ping: Nanos,
    /// A close was decided; only already-queued replies are still transmitted.
    pub closing: bool,
    pub counters: ConnCounters,
}

const TOKEN: u128 = 1_000_000_000;

impl Conn {
    pub(crate) fn new(id: ConnId, now: Nanos, burst: u32, ping_at: Nanos) -> Self {
        Conn {
            id,
            queue: VecDeque::with_capacity(16),
            chan_len: 0,
            reply_len: 0,
            subs: BTreeMap::new(),
            deferred: VecDeque::new(),
            conflated_keys: 0,
            behind_since: None,
            reported: false,
            tokens: u128::from(burst) * TOKEN,
            refilled: now,
            consecutive_errors: 0,
            last_heard: now,
            next_ping: ping_at,
            closing: false,
            counters: ConnCounters::default(),
        }
    }

    /// Takes one request token, refilling at `rate` per second up to `burst`.
    pub(crate) fn take_token(&mut self, now: Nanos, rate: u32, burst: u32) -> bool {
        let elapsed = now.0.saturating_sub(self.refilled.0);
        self.refilled = self.refilled.max(now);
        let cap = u128::from(burst) * TOKEN;
        self.tokens = (self.tokens + u128::from(elapsed) * u128::from(rate)).min(cap);
        if self.tokens >= TOKEN {
            self.tokens -= TOKEN;
            true
        } else {
            false
        }
    }

    /// Channel messages and snapshot placeholders queued.
    pub(crate) fn queued(&self) -> usize {
        self.chan_len
    }

    /// Replies queued.
    pub(crate) fn queued_replies(&self) -> usize {
        self.reply_len
    }

    /// Slots holding a conflated message.
    pub(crate) fn slots(&self) -> usize {
        self.subs.values().filter(|s| s.slot.is_some()).count()
    }

    fn mark_ready(&mut self, ready: &mut VecDeque<ConnId>) {
        if !self.reported {
            self.reported = true;
            ready.push_back(self.id);
        }
    }

    fn mark_behind(&mut self, now: Nanos, sh: &mut Shared<'_>) {
        if self.behind_since.is_none() {
            self.behind_since = Some(now);
            let due = Nanos(now.0.saturating_add(sh.slow_timeout_ns));
            *sh.next_check = (*sh.next_check).min(due);
        }
    }

    /// Queues a reply; false when the reply budget is exhausted (the caller closes).
    pub(crate) fn push_reply(
        &mut self,
        msg: Utf8Bytes,
        max: usize,
        ready: &mut VecDeque<ConnId>,
    ) -> bool {
        if self.reply_len >= max {
            return false;
        }
        self.reply_len += 1;
        self.queue.push_back(Item {
            kind: Kind::Reply,
            msg,
        });
        self.mark_ready(ready);
        true
    }

    /// Queues a message replayed from a history (see [`Kind::Replay`]).
    pub(crate) fn push_replay(&mut self, msg: Utf8Bytes, ready: &mut VecDeque<ConnId>) {
        self.queue.push_back(Item {
            kind: Kind::Replay,
            msg,
        });
        self.mark_ready(ready);
    }

    /// Queues a channel message of stream `key` (which this connection subscribes to).
    #[inline]
    pub(crate) fn push(
        &mut self,
        key: StreamKey,
        msg: &Utf8Bytes,
        now: Nanos,
        sh: &mut Shared<'_>,
    ) {
        if self.conflated_keys == 0 && self.chan_len < sh.cap {
            self.enqueue(Kind::Msg(key), msg.clone());
            *sh.delivered += 1;
            self.counters.delivered += 1;
            self.mark_ready(sh.ready);
        } else {
            self.push_slow(key, msg, now, sh);
        }
    }

    #[inline]
    fn enqueue(&mut self, kind: Kind, msg: Utf8Bytes) {
        self.chan_len += 1;
        self.queue.push_back(Item { kind, msg });
    }

    #[cold]
    fn push_slow(&mut self, key: StreamKey, msg: &Utf8Bytes, now: Nanos, sh: &mut Shared<'_>) {
        self.flush_deferred(sh.cap);
        let room = self.chan_len < sh.cap;
        let Some(sub) = self.subs.get_mut(&key) else {
            return;
        };
        // False when the message is folded into a snapshot owed instead of queued.
        let mut queued = true;
        match key.channel {
            Channel::Trades if room => self.enqueue(Kind::Msg(key), msg.clone()),
            Channel::Trades => {
                *sh.trades_dropped += 1;
                self.counters.trades_dropped += 1;
                self.mark_behind(now, sh);
                return;
            }
            Channel::Bbo | Channel::Ticker | Channel::Status => {
                if let Some(slot) = &mut sub.slot {
                    *slot = msg.clone();
                } else if room {
                    self.enqueue(Kind::Msg(key), msg.clone());
                } else if let Some(it) = self
                    .queue
                    .iter_mut()
                    .rev()
                    .find(|it| it.kind == Kind::Msg(key))
                {
                    it.msg = msg.clone();
                } else {
                    sub.slot = Some(msg.clone());
                    self.conflated_keys += 1;
                    self.deferred.push_back(key);
                }
                if !room {
                    *sh.conflated += 1;
                    self.counters.conflated += 1;
                    self.mark_behind(now, sh);
                }
            }
            Channel::Book => {
                if sub.snap != Snap::None {
                    // The snapshot it is owed will include this message's effect.
                    queued = false;
                } else if room {
                    self.enqueue(Kind::Msg(key), msg.clone());
                } else {
                    sub.snap = Snap::Pending;
                    self.conflated_keys += 1;
                    self.deferred.push_back(key);
                    let before = self.queue.len();
                    self.queue.retain(|it| it.kind != Kind::Msg(key));
                    self.chan_len -= before - self.queue.len();
                    *sh.conflated += 1;
                    self.counters.conflated += 1;
                    self.mark_behind(now, sh);
                    self.flush_deferred(sh.cap);
                    queued = false;
                }
            }
        }
        if queued {
            *sh.delivered += 1;
            self.counters.delivered += 1;
        }
        if !self.queue.is_empty() {
            self.mark_ready(sh.ready);
        }
    }

    /// Asks for a fresh book snapshot for `key` (on subscribe or a depth change).
    pub(crate) fn want_snapshot(
        &mut self,
        key: StreamKey,
        cap: usize,
        ready: &mut VecDeque<ConnId>,
    ) {
        if let Some(sub) = self.subs.get_mut(&key) {
            if sub.snap == Snap::None {
                sub.snap = Snap::Pending;
                self.conflated_keys += 1;
                self.deferred.push_back(key);
            }
        }
        self.flush_deferred(cap);
        if !self.queue.is_empty() {
            self.mark_ready(ready);
        }
    }

    /// Moves slots and pending snapshots into the FIFO while there is room.
    fn flush_deferred(&mut self, cap: usize) {
        while self.chan_len < cap {
            let Some(key) = self.deferred.pop_front() else {
                break;
            };
            let Some(sub) = self.subs.get_mut(&key) else {
                continue;
            };
            if let Some(msg) = sub.slot.take() {
                self.conflated_keys -= 1;
                self.enqueue(Kind::Msg(key), msg);
            } else if sub.snap == Snap::Pending {
                sub.snap = Snap::Queued;
                self.enqueue(Kind::Snapshot(key.instrument), Utf8Bytes::default());
            }
        }
    }

    /// Forgets a subscription (its queued messages stay; slots and owed snapshots go).
    pub(crate) fn unsubscribe(&mut self, key: StreamKey) -> bool {
        let Some(sub) = self.subs.remove(&key) else {
            return false;
        };
        if sub.slot.is_some() || sub.snap != Snap::None {
            self.conflated_keys -= 1;
        }
        true
    }

    /// The next item to transmit; `None` (and unreported) when drained.
    pub(crate) fn pop(&mut self, cap: usize) -> Option<Popped> {
        loop {
            let Some(item) = self.queue.pop_front() else {
                self.flush_deferred(cap);
                if self.queue.is_empty() {
                    self.reported = false;
                    self.update_behind(cap);
                    return None;
                }
                continue;
            };
            let out = match item.kind {
                Kind::Reply => {
                    self.reply_len -= 1;
                    return Some(Popped::Msg(item.msg));
                }
                Kind::Replay => return Some(Popped::Msg(item.msg)),
                Kind::Msg(_) => {
                    self.chan_len -= 1;
                    Some(Popped::Msg(item.msg))
                }
                Kind::Snapshot(inst) => {
                    self.chan_len -= 1;
                    let key = StreamKey::new(Channel::Book, inst);
                    match self.subs.get_mut(&key) {
                        Some(sub) if sub.snap == Snap::Queued => {
                            sub.snap = Snap::None;
                            self.conflated_keys -= 1;
                            Some(Popped::Snapshot(inst, sub.depth))
                        }
                        // Unsubscribed, or already served by an earlier placeholder.
                        _ => None,
                    }
                }
            };
            self.flush_deferred(cap);
            self.update_behind(cap);
            if out.is_some() {
                return out;
            }
        }
    }

    /// Caught up: at most half the channel budget queued and nothing conflated.
    fn update_behind(&mut self, cap: usize) {
        if self.behind_since.is_some() && self.conflated_keys == 0 && self.chan_len <= cap / 2 {
            self.behind_since = None;
        }
    }

    /// Drops everything but replies (when `keep_replies`) and all subscription state.
    pub(crate) fn clear_for_close(&mut self, keep_replies: bool) {
        if keep_replies {
            self.queue.retain(|it| it.kind == Kind::Reply);
        } else {
            self.queue.clear();
            self.reply_len = 0;
        }
        self.chan_len = 0;
        self.subs.clear();
        self.deferred.clear();
        self.conflated_keys = 0;
        self.behind_since = None;
        self.closing = true;
    }
}
