//! [`Hub`]: sessions, requests, transmit and timers. Publishing engine outputs is in
//! `publish.rs`.

use std::collections::{BTreeMap, VecDeque};

use tungstenite::Utf8Bytes;

use super::conn::{Conn, Popped, Shared};
use super::messages;
use super::private::PrivateState;
use super::publish::{inst_of, InstState, Subscriber};
use super::request::{Parser, Request};
use super::stats::{ConnStats, Counters, HubStats};
use super::view::MarketView;
use super::{
    Action, Channel, ConnId, HubConfig, StreamKey, CLOSE_HEARTBEAT_TIMEOUT, CLOSE_SLOW_CONSUMER,
    CLOSE_TOO_MANY_CONNECTIONS, CLOSE_TOO_MANY_ERRORS, MAX_BOOK_DEPTH,
};
use crate::input::Nanos;
use crate::wire::JsonBuf;

use crate::wire::{E_INVALID, E_RATE_LIMITED, E_TOO_LARGE};

/// The client protocol state machine: every session, its subscriptions and outbox.
///
/// See the [module docs](super) for how a transport drives it.
pub struct Hub {
    pub(super) cfg: HubConfig,
    /// Connections by slot; subscriber lists refer to slots so fan-out never searches.
    pub(super) conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    ids: BTreeMap<ConnId, usize>,
    /// Connections counted against `max_connections`.
    open: usize,
    /// Per-instrument streams, indexed by instrument id.
    pub(super) insts: Vec<InstState>,
    pub(super) ready: VecDeque<ConnId>,
    actions: VecDeque<Action>,
    /// No timer is due before this.
    pub(super) next_check: Nanos,
    pub(super) json: JsonBuf,
    parser: Parser,
    pub(super) counters: Counters,
    pub(super) sub_counts: [usize; 4],
    /// Subscribers of the `status` channel, sorted by connection id.
    pub(super) status_subs: Vec<Subscriber>,
    /// Per venue source: the last `status` message and its `seq`.
    pub(super) venues: Vec<Option<(u64, Utf8Bytes)>>,
    sweep: Vec<(ConnId, usize)>,
    pub(super) depths: Vec<usize>,
    /// Sessions, private subscriptions, client records (see `private.rs`).
    pub(super) private: PrivateState,
}

impl Hub {
    /// A hub with no connections.
    ///
    /// `default_book_depth` is clamped to 1..=[`MAX_BOOK_DEPTH`].
    pub fn new(mut cfg: HubConfig) -> Hub {
        cfg.default_book_depth = cfg.default_book_depth.clamp(1, MAX_BOOK_DEPTH);
        Hub {
            cfg,
            conns: Vec::new(),
            free: Vec::new(),
            ids: BTreeMap::new(),
            open: 0,
            insts: Vec::new(),
            ready: VecDeque::new(),
            actions: VecDeque::new(),
            next_check: Nanos(u64::MAX),
            json: JsonBuf::new(),
            parser: Parser::default(),
            counters: Counters::default(),
            sub_counts: [0; 4],
            status_subs: Vec::new(),
            venues: Vec::new(),
            sweep: Vec::new(),
            depths: Vec::new(),
            private: PrivateState::default(),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &HubConfig {
        &self.cfg
    }

    /// A new connection. `query` is the upgrade request's query string: a `token=` in it
    /// authenticates the session at once (see [`Hub::set_authenticator`]).
    ///
    /// Returns false when it is refused: over `max_connections` (error 4003 queued, then a
    /// `Close` action), a bad token (4001) or over its user's connection limit (4003), or
    /// `conn` is already open (a transport bug; nothing is queued).
    pub fn handle_open(&mut self, now: Nanos, conn: ConnId, query: &str) -> bool {
        if self.ids.contains_key(&conn) {
            return false;
        }
        let interval = self.cfg.heartbeat_interval_ns;
        let ping_at = if interval == 0 {
            Nanos(u64::MAX)
        } else {
            Nanos(now.0.saturating_add(interval))
        };
        let c = Conn::new(conn, now, self.cfg.request_burst, ping_at);
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
        if self.open >= self.cfg.max_connections {
            let msg = format!("too many connections (max {})", self.cfg.max_connections);
            *self
                .counters
                .errors
                .entry(CLOSE_TOO_MANY_CONNECTIONS)
                .or_default() += 1;
            let err = messages::error(&mut self.json, CLOSE_TOO_MANY_CONNECTIONS, &msg, None);
            let c = self.conns[idx].as_mut().expect("just inserted");
            c.counters.errors += 1;
            c.closing = true;
            c.push_reply(err, usize::MAX, &mut self.ready);
            self.counters.disconnects.too_many_connections += 1;
            self.actions.push_back(Action::Close {
                conn,
                code: CLOSE_TOO_MANY_CONNECTIONS,
                reason: msg,
            });
            return false;
        }
        self.open += 1;
        self.next_check = self.next_check.min(ping_at);
        self.auth_at_open(now, idx, query)
    }

    /// A text frame (a request) from `conn`. Replies and errors are queued to it.
    pub fn handle_text(
        &mut self,
        now: Nanos,
        conn: ConnId,
        text: &str,
        view: &(impl MarketView + ?Sized),
    ) {
        let Some(idx) = self.live(conn) else { return };
        self.counters.requests += 1;
        let (rate, burst) = (self.cfg.requests_per_sec, self.cfg.request_burst);
        let c = slot(&mut self.conns, idx);
        c.last_heard = c.last_heard.max(now);
        c.counters.requests += 1;
        if text.len() > self.cfg.max_message_bytes {
            let msg = format!(
                "message too large: {} bytes (max {})",
                text.len(),
                self.cfg.max_message_bytes
            );
            return self.fail(idx, None, E_TOO_LARGE, &msg);
        }
        let limited = !c.take_token(now, rate, burst);
        let parsed = self.parser.parse(text, view.registry());
        let id = parsed.id.as_deref();
        if limited {
            let msg = format!("rate limited: over {rate} requests per second (burst {burst})");
            return self.fail(idx, id, E_RATE_LIMITED, &msg);
        }
        let request = match parsed.request {
            Ok(r) => r,
            Err(e) => return self.fail(idx, id, e.code, &e.message),
        };
        match request {
            Request::Subscribe {
                channels,
                instruments,
                depth,
                status,
                private,
            } => {
                if private.is_empty() {
                    self.record_market_subscribe(idx, text);
                } else {
                    self.private_subscribe(idx, id, &private, true, text);
                }
                if !channels.is_empty() || status || private.is_empty() {
                    self.subscribe(now, idx, id, &channels, &instruments, depth, status, view);
                }
            }
            Request::Unsubscribe {
                channels,
                instruments,
                status,
                private,
            } => {
                if private.is_empty() {
                    self.record_market_subscribe(idx, text);
                } else {
                    self.private_subscribe(idx, id, &private, false, text);
                }
                if !channels.is_empty() || status || private.is_empty() {
                    self.unsubscribe(idx, id, &channels, &instruments, status, view);
                }
            }
            Request::Auth { token } => {
                self.authenticate(now, idx, id, &token, false);
            }
            Request::Private(kind) => self.private_request(now, idx, id, kind, text, view),
            Request::GetBook { instrument, depth } => {
                let depth = depth.unwrap_or(self.cfg.default_book_depth);
                let msg = self.book_now(now, instrument, depth, id, view);
                self.succeed(idx, msg);
            }
            Request::Ping => {
                let msg = messages::pong(&mut self.json, id, now);
                self.succeed(idx, msg);
            }
        }
    }

    /// A binary frame from `conn`: the protocol has none, so it is refused (4004).
    pub fn handle_binary(&mut self, now: Nanos, conn: ConnId, len: usize) {
        let Some(idx) = self.live(conn) else { return };
        self.counters.requests += 1;
        let c = self.conn_mut(idx);
        c.last_heard = c.last_heard.max(now);
        c.counters.requests += 1;
        let msg = format!("invalid message: binary frame ({len} bytes); requests are JSON text");
        self.fail(idx, None, E_INVALID, &msg);
    }

    /// Any frame (pongs included) was received from `conn`: it is alive.
    pub fn handle_heard(&mut self, now: Nanos, conn: ConnId) {
        if let Some(&idx) = self.ids.get(&conn) {
            let c = self.conn_mut(idx);
            c.last_heard = c.last_heard.max(now);
        }
    }

    /// The transport closed `conn` (for any reason); its state is dropped.
    pub fn handle_closed(&mut self, conn: ConnId) {
        let Some(idx) = self.ids.remove(&conn) else {
            return;
        };
        self.end_session(conn);
        self.detach(idx);
        self.conns[idx] = None;
        self.free.push(idx);
        self.ready.retain(|c| *c != conn);
    }

    /// The next message to send to `conn`, or `None` when it has nothing (then it is reported
    /// by [`Hub::poll_ready`] again once something is queued). A book snapshot owed after
    /// subscribe or conflation is generated here, from `view`'s book as it is now.
    #[must_use]
    pub fn poll_transmit(
        &mut self,
        now: Nanos,
        conn: ConnId,
        view: &(impl MarketView + ?Sized),
    ) -> Option<Utf8Bytes> {
        let idx = *self.ids.get(&conn)?;
        let cap = self.cfg.outbound_queue;
        let msg = loop {
            match self.conn_mut(idx).pop(cap)? {
                Popped::Msg(m) => break m,
                // Only an engine swapped for one with fewer instruments could lack it.
                Popped::Snapshot(inst, _) if inst.0 as usize >= view.registry().len() => {}
                Popped::Snapshot(inst, depth) => {
                    break self.book_now(now, inst, depth, None, view);
                }
            }
        };
        self.counters.transmitted += 1;
        self.conn_mut(idx).counters.transmitted += 1;
        Some(msg)
    }

    /// A connection that has messages to transmit, in the order they became ready. Each is
    /// reported once; keep calling [`Hub::poll_transmit`] for it (now, or when its socket is
    /// writable again) until that returns `None`.
    #[must_use]
    pub fn poll_ready(&mut self) -> Option<ConnId> {
        while let Some(id) = self.ready.pop_front() {
            if self.ids.contains_key(&id) {
                return Some(id);
            }
        }
        None
    }

    /// When [`Hub::handle_timeout`] next has something to do (`Nanos(0)`: now), if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Nanos> {
        if !self.actions.is_empty() {
            return Some(Nanos(0));
        }
        (self.next_check.0 != u64::MAX).then_some(self.next_check)
    }

    /// Runs the timers (pings due, heartbeat and slow-consumer closes) and appends every
    /// pending [`Action`] to `out`, in connection id order within each pass.
    pub fn handle_timeout(&mut self, now: Nanos, out: &mut Vec<Action>) {
        if now >= self.next_check {
            self.sweep(now);
        }
        out.extend(self.actions.drain(..));
    }

    fn sweep(&mut self, now: Nanos) {
        let interval = self.cfg.heartbeat_interval_ns;
        let silent_limit = interval.saturating_mul(2);
        let slow = self.cfg.slow_client_timeout_ns;
        let mut next = u64::MAX;
        let mut ids = std::mem::take(&mut self.sweep);
        ids.clear();
        ids.extend(self.ids.iter().map(|(c, i)| (*c, *i)));
        for &(id, idx) in &ids {
            let c = slot(&mut self.conns, idx);
            if c.closing {
                continue;
            }
            if interval > 0 && now.0.saturating_sub(c.last_heard.0) >= silent_limit {
                let reason = format!(
                    "heartbeat timeout: nothing received for {} ms",
                    silent_limit / 1_000_000
                );
                self.close(idx, CLOSE_HEARTBEAT_TIMEOUT, reason, false);
                continue;
            }
            if c.behind_since
                .is_some_and(|t| now.0.saturating_sub(t.0) >= slow)
            {
                let reason = format!("slow consumer: behind for over {} ms", slow / 1_000_000);
                self.close(idx, CLOSE_SLOW_CONSUMER, reason, false);
                continue;
            }
            if interval > 0 {
                if now >= c.next_ping {
                    self.actions.push_back(Action::Ping(id));
                    c.next_ping = Nanos(now.0.saturating_add(interval));
                }
                next = next
                    .min(c.next_ping.0)
                    .min(c.last_heard.0.saturating_add(silent_limit));
            }
            if let Some(t) = c.behind_since {
                next = next.min(t.0.saturating_add(slow));
            }
        }
        self.sweep = ids;
        self.next_check = Nanos(next);
    }

    /// Channel messages queued to subscribers so far (the `delivered` figure of
    /// [`Hub::stats`], without building the rest).
    pub fn stats_delivered(&self) -> u64 {
        self.counters.delivered
    }

    /// Every connection the hub knows (open, refused or closing), in id order.
    pub fn connections(&self) -> Vec<ConnId> {
        self.ids.keys().copied().collect()
    }

    /// Current figures.
    pub fn stats(&self) -> HubStats {
        let c = &self.counters;
        HubStats {
            connections: self.open,
            subscriptions: Channel::ALL
                .iter()
                .map(|ch| (ch.as_str(), self.sub_counts[ch.index()]))
                .collect(),
            requests: c.requests,
            published: c.published,
            delivered: c.delivered,
            transmitted: c.transmitted,
            errors: c.errors.clone(),
            trades_dropped: c.trades_dropped,
            conflated: c.conflated,
            disconnects: c.disconnects,
            per_connection: self
                .ids
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
                .collect(),
        }
    }

    pub(super) fn live(&self, conn: ConnId) -> Option<usize> {
        let idx = *self.ids.get(&conn)?;
        (!self.conns[idx].as_ref()?.closing).then_some(idx)
    }

    pub(super) fn conn_mut(&mut self, idx: usize) -> &mut Conn {
        slot(&mut self.conns, idx)
    }

    /// Borrows the connections and the hub state a push needs, separately.
    pub(super) fn split(&mut self) -> (&mut [Option<Conn>], &mut Vec<InstState>, Shared<'_>) {
        (
            &mut self.conns,
            &mut self.insts,
            Shared {
                ready: &mut self.ready,
                next_check: &mut self.next_check,
                cap: self.cfg.outbound_queue,
                slow_timeout_ns: self.cfg.slow_client_timeout_ns,
                delivered: &mut self.counters.delivered,
                conflated: &mut self.counters.conflated,
                trades_dropped: &mut self.counters.trades_dropped,
            },
        )
    }

    /// Queues a reply to a good request.
    pub(super) fn succeed(&mut self, idx: usize, msg: Utf8Bytes) {
        self.conn_mut(idx).consecutive_errors = 0;
        self.reply(idx, msg);
    }

    pub(super) fn reply(&mut self, idx: usize, msg: Utf8Bytes) -> bool {
        let max = self.cfg.max_queued_replies;
        let c = self.conns[idx].as_mut().expect("known connection");
        if c.push_reply(msg, max, &mut self.ready) {
            return true;
        }
        let reason = format!("slow consumer: over {max} replies not read");
        self.close(idx, CLOSE_SLOW_CONSUMER, reason, false);
        false
    }

    /// Queues an error reply; closes the connection after `max_errors` in a row.
    pub(super) fn fail(&mut self, idx: usize, id: Option<&str>, code: u16, message: &str) {
        *self.counters.errors.entry(code).or_default() += 1;
        let msg = messages::error(&mut self.json, code, message, id);
        let c = self.conn_mut(idx);
        c.counters.errors += 1;
        c.consecutive_errors += 1;
        let errors = c.consecutive_errors;
        if self.reply(idx, msg) && errors >= self.cfg.max_errors {
            let reason = format!("too many errors: {errors} bad requests in a row");
            self.close(idx, CLOSE_TOO_MANY_ERRORS, reason, true);
        }
    }

    /// Decides to close a connection: it stops receiving channel data at once.
    pub(super) fn close(&mut self, idx: usize, code: u16, reason: String, keep_replies: bool) {
        if self.conn_mut(idx).closing {
            return;
        }
        self.detach(idx);
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
    }

    /// Removes a connection from every subscriber list; it no longer counts as open.
    fn detach(&mut self, idx: usize) {
        let Some(c) = self.conns[idx].as_mut() else {
            return;
        };
        if c.closing {
            return;
        }
        let subs = std::mem::take(&mut c.subs);
        let conn = c.id;
        for key in subs.keys() {
            self.remove_subscriber(*key, conn);
        }
        // A `status` subscriber holds no stream key until a venue publishes.
        if let Ok(pos) = self.status_subs.binary_search_by_key(&conn, |s| s.conn) {
            self.status_subs.remove(pos);
        }
        self.open -= 1;
        // Put them back for `clear_for_close`, which accounts for slots and snapshots.
        self.conn_mut(idx).subs = subs;
    }

    pub(super) fn remove_subscriber(&mut self, key: StreamKey, conn: ConnId) {
        if key.channel == Channel::Status {
            if let Ok(pos) = self.status_subs.binary_search_by_key(&conn, |s| s.conn) {
                self.status_subs.remove(pos);
            }
            return;
        }
        let list = &mut inst_of(&mut self.insts, key.instrument).subs[key.channel.index()];
        if let Ok(pos) = list.binary_search_by_key(&conn, |s| s.conn) {
            list.remove(pos);
            self.sub_counts[key.channel.index()] -= 1;
        }
    }
}

pub(super) fn slot(conns: &mut [Option<Conn>], idx: usize) -> &mut Conn {
    conns[idx].as_mut().expect("slot of a known connection")
}
