//! [`Sessions`]: the hub's connections, apart from what they subscribe to.
//!
//! It owns every [`Conn`] (outbox, request budget, heartbeat clock), the connection ids, the
//! readiness queue the transport polls, the pending [`Action`]s and the timer deadline.
//!
//! Invariants:
//! * A known connection has exactly one slot; slots are reused, so subscriber lists (in
//!   [`Streams`](super::streams::Streams)) refer to a slot and fan-out never searches.
//! * `open` counts the known connections that are neither refused nor closing: a close
//!   [detaches](Sessions::close) a connection once, returning its subscriptions so the
//!   caller removes it from the streams' lists.
//! * A connection is in the readiness queue at most once while it has something queued.
//! * No timer of any connection is due before `next_check`.

use std::collections::{BTreeMap, VecDeque};

use tungstenite::Utf8Bytes;

use super::conn::{Conn, Popped, Shared, Sub};
use super::stats::{ConnStats, Counters};
use super::streams::Subscriber;
use super::{
    Action, ConnId, HubConfig, StreamKey, CLOSE_HEARTBEAT_TIMEOUT, CLOSE_SLOW_CONSUMER,
    CLOSE_TOO_MANY_ERRORS,
};
use crate::input::Nanos;

/// A connection the hub stopped feeding: what it subscribed to, for the streams to forget.
pub(super) struct Detached {
    pub conn: ConnId,
    pub subs: BTreeMap<StreamKey, Sub>,
}

/// The limits of [`HubConfig`] that apply to one connection's queues and timers.
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_connections: usize,
    outbound_queue: usize,
    max_queued_replies: usize,
    slow_client_timeout_ns: u64,
    heartbeat_interval_ns: u64,
    requests_per_sec: u32,
    request_burst: u32,
}

/// Every connection, by id and by slot.
pub(super) struct Sessions {
    limits: Limits,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    ids: BTreeMap<ConnId, usize>,
    /// Connections counted against `max_connections`.
    open: usize,
    ready: VecDeque<ConnId>,
    actions: VecDeque<Action>,
    /// No timer is due before this.
    next_check: Nanos,
    /// Reused by `sweep`.
    scratch: Vec<(ConnId, usize)>,
    counters: Counters,
}

impl Sessions {
    pub(super) fn new(cfg: &HubConfig) -> Self {
        Sessions {
            limits: Limits {
                max_connections: cfg.max_connections,
                outbound_queue: cfg.outbound_queue,
                max_queued_replies: cfg.max_queued_replies,
                slow_client_timeout_ns: cfg.slow_client_timeout_ns,
                heartbeat_interval_ns: cfg.heartbeat_interval_ns,
                requests_per_sec: cfg.requests_per_sec,
                request_burst: cfg.request_burst,
            },
            conns: Vec::new(),
            free: Vec::new(),
            ids: BTreeMap::new(),
            open: 0,
            ready: VecDeque::new(),
            actions: VecDeque::new(),
            next_check: Nanos(u64::MAX),
            scratch: Vec::new(),
            counters: Counters::default(),
        }
    }

    /// Adds a connection: its slot, or `None` if `conn` is already known. It does not count
    /// as open until [`Sessions::admit`].
    pub(super) fn insert(&mut self, now: Nanos, conn: ConnId) -> Option<usize> {
        if self.ids.contains_key(&conn) {
            return None;
        }
        let c = Conn::new(conn, now, self.limits.request_burst, self.first_ping(now));
        let idx = match self.free.pop() {
            Some(i) => {
                self.conns[i] = Some(c);
                i
            }
            None => {
                self.conns.push(Some(c));
                self.conns.len() - 1
            }
        };
        self.ids.insert(conn, idx);
        Some(idx)
    }

    fn first_ping(&self, now: Nanos) -> Nanos {
        match self.limits.heartbeat_interval_ns {
            0 => Nanos(u64::MAX),
            interval => Nanos(now.0.saturating_add(interval)),
        }
    }

    /// Counts an inserted connection as open; false (and nothing counted) when that would
    /// exceed `max_connections`.
    pub(super) fn admit(&mut self, idx: usize) -> bool {
        if self.open >= self.limits.max_connections {
            return false;
        }
        self.open += 1;
        let ping = self.conn(idx).next_ping;
        self.next_check = self.next_check.min(ping);
        true
    }

    /// Open connections (refused and closing ones excluded).
    pub(super) fn open_count(&self) -> usize {
        self.open
    }

    /// The slot of a known connection.
    pub(super) fn slot_of(&self, conn: ConnId) -> Option<usize> {
        self.ids.get(&conn).copied()
    }

    /// The slot of a connection that is known and not closing.
    pub(super) fn live(&self, conn: ConnId) -> Option<usize> {
        let idx = *self.ids.get(&conn)?;
        (!self.conns[idx].as_ref()?.closing).then_some(idx)
    }

    pub(super) fn conn(&self, idx: usize) -> &Conn {
        self.conns[idx]
            .as_ref()
            .expect("slot of a known connection")
    }

    pub(super) fn conn_mut(&mut self, idx: usize) -> &mut Conn {
        self.conns[idx]
            .as_mut()
            .expect("slot of a known connection")
    }

    /// Every known connection, in id order.
    pub(super) fn ids(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.ids.keys().copied()
    }

    /// Hub-wide counters (requests, deliveries, errors, disconnects).
    pub(super) fn counters(&self) -> &Counters {
        &self.counters
    }

    /// A frame arrived from the connection in `idx`: it is alive. `request` when it counts
    /// as a request (text or binary).
    pub(super) fn heard(&mut self, idx: usize, now: Nanos, request: bool) {
        let c = self.conn_mut(idx);
        c.last_heard = c.last_heard.max(now);
        if request {
            c.counters.requests += 1;
            self.counters.requests += 1;
        }
    }

    /// Takes one request token of the connection in `idx`; false when over its budget.
    pub(super) fn take_token(&mut self, idx: usize, now: Nanos) -> bool {
        let (rate, burst) = (self.limits.requests_per_sec, self.limits.request_burst);
        self.conn_mut(idx).take_token(now, rate, burst)
    }

    /// A good request: the run of bad ones ends.
    pub(super) fn clear_errors(&mut self, idx: usize) {
        self.conn_mut(idx).consecutive_errors = 0;
    }

    /// Counts an error reply with `code` to the connection in `idx` (if any); returns its
    /// bad requests in a row.
    pub(super) fn count_error(&mut self, idx: Option<usize>, code: u16) -> u32 {
        *self.counters.errors.entry(code).or_default() += 1;
        let Some(idx) = idx else { return 0 };
        let c = self.conn_mut(idx);
        c.counters.errors += 1;
        c.consecutive_errors += 1;
        c.consecutive_errors
    }

    /// Counts a private message queued to a connection.
    pub(super) fn count_delivered(&mut self) {
        self.counters.delivered += 1;
    }

    /// Queues a reply; false when the reply budget is exhausted (the caller closes).
    pub(super) fn push_reply(&mut self, idx: usize, msg: Utf8Bytes) -> bool {
        let max = self.limits.max_queued_replies;
        let c = self.conns[idx].as_mut().expect("known connection");
        c.push_reply(msg, max, &mut self.ready)
    }

    /// Counts one stream of a `resume`: replayed (`Some(messages)`) or given fresh state.
    pub(super) fn count_resume(&mut self, replayed: Option<usize>) {
        let r = &mut self.counters.resumes;
        match replayed {
            Some(n) => {
                r.resumed += 1;
                r.replayed += n as u64;
            }
            None => r.fresh += 1,
        }
    }

    /// Queues a message replayed from a history (outside both budgets; see `resume`).
    pub(super) fn push_replay(&mut self, idx: usize, msg: Utf8Bytes) {
        let c = self.conns[idx].as_mut().expect("known connection");
        c.push_replay(msg, &mut self.ready);
        self.counters.delivered += 1;
        c.counters.delivered += 1;
    }

    /// Queues a reply whatever the budget (the error that explains a refusal at open).
    pub(super) fn push_final_reply(&mut self, idx: usize, msg: Utf8Bytes) {
        let c = self.conns[idx].as_mut().expect("known connection");
        c.push_reply(msg, usize::MAX, &mut self.ready);
    }

    /// Splits the borrow: the connections, and the hub state a push touches.
    fn split(&mut self) -> (&mut [Option<Conn>], Shared<'_>) {
        (
            &mut self.conns,
            Shared {
                ready: &mut self.ready,
                next_check: &mut self.next_check,
                cap: self.limits.outbound_queue,
                slow_timeout_ns: self.limits.slow_client_timeout_ns,
                delivered: &mut self.counters.delivered,
                conflated: &mut self.counters.conflated,
                trades_dropped: &mut self.counters.trades_dropped,
            },
        )
    }

    /// Queues `msg` of stream `key` to the connection in `idx`, which subscribes to it
    /// (`register`: add the subscription entry first, for `status` streams that have none
    /// until a venue publishes).
    pub(super) fn push(
        &mut self,
        idx: usize,
        key: StreamKey,
        msg: &Utf8Bytes,
        now: Nanos,
        register: bool,
    ) {
        let (conns, mut sh) = self.split();
        let Some(c) = conns[idx].as_mut() else { return };
        if register {
            c.subs.entry(key).or_insert_with(status_sub);
        }
        c.push(key, msg, now, &mut sh);
    }

    /// Queues one serialized message to every subscriber in `subs` (only those at `depth`,
    /// if given): a reference-count increment and a push each.
    #[inline]
    pub(super) fn fan_out(
        &mut self,
        subs: &[Subscriber],
        key: StreamKey,
        msg: &Utf8Bytes,
        now: Nanos,
        depth: Option<usize>,
    ) {
        let (conns, mut sh) = self.split();
        for s in subs {
            if depth.is_some_and(|d| d != s.depth) {
                continue;
            }
            if let Some(c) = conns[s.slot].as_mut() {
                c.push(key, msg, now, &mut sh);
            }
        }
    }

    /// Adds a `status` stream entry to each subscriber in `subs` that lacks one (the first
    /// message of a venue).
    pub(super) fn register_status(&mut self, subs: &[Subscriber], key: StreamKey) {
        for s in subs {
            if let Some(c) = self.conns[s.slot].as_mut() {
                c.subs.entry(key).or_insert_with(status_sub);
            }
        }
    }

    /// Asks for a fresh book snapshot of `key` for the connection in `idx`.
    pub(super) fn want_snapshot(&mut self, idx: usize, key: StreamKey) {
        let cap = self.limits.outbound_queue;
        let c = self.conns[idx].as_mut().expect("known connection");
        c.want_snapshot(key, cap, &mut self.ready);
    }

    /// The next item to transmit to `conn`, counted as transmitted unless it is a snapshot
    /// to generate (count that one with [`Sessions::count_transmitted`]).
    pub(super) fn pop(&mut self, conn: ConnId) -> Option<Popped> {
        let idx = *self.ids.get(&conn)?;
        let cap = self.limits.outbound_queue;
        let popped = self.conn_mut(idx).pop(cap)?;
        if let Popped::Msg(_) = popped {
            self.count_transmitted(idx);
        }
        Some(popped)
    }

    pub(super) fn count_transmitted(&mut self, idx: usize) {
        self.counters.transmitted += 1;
        self.conn_mut(idx).counters.transmitted += 1;
    }

    /// The next connection with something to transmit, each reported once.
    pub(super) fn poll_ready(&mut self) -> Option<ConnId> {
        while let Some(id) = self.ready.pop_front() {
            if self.ids.contains_key(&id) {
                return Some(id);
            }
        }
        None
    }

    /// When timers or actions are next due.
    pub(super) fn poll_timeout(&self) -> Option<Nanos> {
        if !self.actions.is_empty() {
            return Some(Nanos(0));
        }
        (self.next_check.0 != u64::MAX).then_some(self.next_check)
    }

    /// Runs the timers if due (appending the closes' detached subscriptions to `detached`),
    /// then moves every pending action to `out`.
    pub(super) fn handle_timeout(
        &mut self,
        now: Nanos,
        out: &mut Vec<Action>,
        detached: &mut Vec<Detached>,
    ) {
        if now >= self.next_check {
            self.sweep(now, detached);
        }
        out.extend(self.actions.drain(..));
    }

    /// Pings due, heartbeat and slow-consumer closes, in connection id order.
    fn sweep(&mut self, now: Nanos, detached: &mut Vec<Detached>) {
        let interval = self.limits.heartbeat_interval_ns;
        let silent_limit = interval.saturating_mul(2);
        let slow = self.limits.slow_client_timeout_ns;
        let mut next = u64::MAX;
        let mut ids = std::mem::take(&mut self.scratch);
        ids.clear();
        ids.extend(self.ids.iter().map(|(c, i)| (*c, *i)));
        for &(id, idx) in &ids {
            let c = self.conn_mut(idx);
            if c.closing {
                continue;
            }
            if interval > 0 && now.0.saturating_sub(c.last_heard.0) >= silent_limit {
                let reason = format!(
                    "heartbeat timeout: nothing received for {} ms",
                    silent_limit / 1_000_000
                );
                detached.extend(self.close(idx, CLOSE_HEARTBEAT_TIMEOUT, reason, false));
                continue;
            }
            if c.behind_since
                .is_some_and(|t| now.0.saturating_sub(t.0) >= slow)
            {
                let reason = format!("slow consumer: behind for over {} ms", slow / 1_000_000);
                detached.extend(self.close(idx, CLOSE_SLOW_CONSUMER, reason, false));
                continue;
            }
            if interval > 0 {
                if now >= c.next_ping {
                    c.next_ping = Nanos(now.0.saturating_add(interval));
                    self.actions.push_back(Action::Ping(id));
                }
                let c = self.conn(idx);
                next = next
                    .min(c.next_ping.0)
                    .min(c.last_heard.0.saturating_add(silent_limit));
            }
            if let Some(t) = self.conn(idx).behind_since {
                next = next.min(t.0.saturating_add(slow));
            }
        }
        self.scratch = ids;
        self.next_check = Nanos(next);
    }

    /// Stops feeding a connection (it no longer counts as open) and hands back its
    /// subscriptions; `None` if it was already closing.
    fn detach(&mut self, idx: usize) -> Option<Detached> {
        let c = self.conns[idx].as_mut()?;
        if c.closing {
            return None;
        }
        let subs = std::mem::take(&mut c.subs);
        self.open -= 1;
        Some(Detached { conn: c.id, subs })
    }

    /// Decides to close the connection in `idx` with `code`: it stops receiving channel data
    /// at once, keeps its queued replies if `keep_replies`, and a `Close` action is queued.
    /// Returns what it subscribed to (`None` if a close was already decided).
    pub(super) fn close(
        &mut self,
        idx: usize,
        code: u16,
        reason: String,
        keep_replies: bool,
    ) -> Option<Detached> {
        if self.conn(idx).closing {
            return None;
        }
        let detached = self.detach(idx);
        let c = self.conn_mut(idx);
        c.clear_for_close(keep_replies);
        let conn = c.id;
        let d = &mut self.counters.disconnects;
        match code {
            CLOSE_SLOW_CONSUMER => d.slow += 1,
            CLOSE_HEARTBEAT_TIMEOUT => d.heartbeat += 1,
            CLOSE_TOO_MANY_ERRORS => d.too_many_errors += 1,
            _ => {}
        }
        self.actions.push_back(Action::Close { conn, code, reason });
        detached
    }

    /// Refuses a connection at open (over `max_connections`): `msg` is its only reply, then
    /// it closes with `code`.
    pub(super) fn refuse(&mut self, idx: usize, code: u16, msg: Utf8Bytes, reason: String) {
        let c = self.conn_mut(idx);
        c.closing = true;
        let conn = c.id;
        self.push_final_reply(idx, msg);
        self.counters.disconnects.too_many_connections += 1;
        self.actions.push_back(Action::Close { conn, code, reason });
    }

    /// The transport closed `conn`: its slot is freed. Returns its subscriptions if it was
    /// still fed.
    pub(super) fn remove(&mut self, conn: ConnId) -> Option<Option<Detached>> {
        let idx = self.ids.remove(&conn)?;
        let detached = self.detach(idx);
        self.conns[idx] = None;
        self.free.push(idx);
        self.ready.retain(|c| *c != conn);
        Some(detached)
    }

    /// Every known connection's figures, in id order.
    pub(super) fn conn_stats(&self) -> Vec<ConnStats> {
        self.ids
            .values()
            .filter_map(|&i| self.conns[i].as_ref())
            .map(|c| ConnStats {
                conn: c.id,
                subscriptions: c.subs.len(),
                queued: c.queued(),
                queued_replies: c.queued_replies(),
                slots: c.slots(),
                behind: c.behind_since.is_some(),
                closing: c.closing,
                counters: c.counters,
            })
            .collect()
    }
}

/// A connection's entry for a `status` stream.
pub(super) fn status_sub() -> Sub {
    Sub {
        depth: 0,
        slot: None,
        snap: super::conn::Snap::None,
    }
}
