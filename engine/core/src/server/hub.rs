//! [`Hub`]: the composition of streams, sessions and private state; requests, transmit and
//! timers. Publishing engine outputs is in `publish.rs`, subscriptions in `subscribe.rs`,
//! authenticated requests in `private.rs`.

use tungstenite::Utf8Bytes;

use super::conn::Popped;
use super::messages;
use super::private::Private;
use super::request::{Parser, Request};
use super::sessions::{Detached, Sessions};
use super::stats::HubStats;
use super::streams::{status_key, Streams};
use super::view::MarketView;
use super::{
    Action, Channel, ConnId, HubConfig, JournalStatus, CLOSE_SLOW_CONSUMER,
    CLOSE_TOO_MANY_CONNECTIONS, CLOSE_TOO_MANY_ERRORS, MAX_BOOK_DEPTH,
};
use crate::input::Nanos;
use crate::wire::{JsonBuf, E_INVALID, E_RATE_LIMITED, E_TOO_LARGE};

/// The client protocol state machine: every session, its subscriptions and outbox.
///
/// It composes three parts, each with its own invariants: [`Streams`] (sequence numbers,
/// subscribers and last values per stream), [`Sessions`] (connections, outboxes, readiness,
/// budgets, timers) and [`Private`] (authenticated users, private channels, client records).
/// The `impl Hub` blocks are the protocol: they read requests and engine outputs and drive
/// the parts through their methods.
///
/// See the [module docs](super) for how a transport drives it.
pub struct Hub {
    cfg: HubConfig,
    pub(super) streams: Streams,
    pub(super) sessions: Sessions,
    pub(super) private: Private,
    /// The writer every message is serialized with (then frozen into shared bytes).
    pub(super) json: JsonBuf,
    parser: Parser,
    /// Reused for the distinct depths of a book snapshot broadcast.
    pub(super) depths: Vec<usize>,
    /// Reused for the connections a sweep closed.
    detached: Vec<Detached>,
    /// Why the node cannot journal right now; orders and publishes are refused meanwhile.
    pub(super) journal_fault: Option<String>,
    /// Why the whole feed is not live on this node (an edge catching up on, or cut off from,
    /// the origin's log): every book is served as a stale `status` meanwhile.
    pub(super) feed_stale: Option<&'static str>,
}

impl Hub {
    /// A hub with no connections.
    ///
    /// `default_book_depth` is clamped to 1..=[`MAX_BOOK_DEPTH`].
    pub fn new(mut cfg: HubConfig) -> Hub {
        cfg.default_book_depth = cfg.default_book_depth.clamp(1, MAX_BOOK_DEPTH);
        Hub {
            sessions: Sessions::new(&cfg),
            streams: Streams::new(cfg.history),
            private: Private::with_budget(cfg.history.private),
            cfg,
            json: JsonBuf::new(),
            parser: Parser::default(),
            depths: Vec::new(),
            detached: Vec::new(),
            journal_fault: None,
            feed_stale: None,
        }
    }

    /// The node's journal changed state: publishes the `journal` entry of the `status` channel
    /// and, while `status.degraded`, refuses orders and publishes with error 4030 (nothing can
    /// be applied that cannot be journaled first).
    pub fn set_journal_status(&mut self, now: Nanos, status: &JournalStatus) {
        self.journal_fault = status.degraded.then(|| status.reason.clone());
        let json = &mut self.json;
        let (key, msg) = self
            .streams
            .publish_journal(|seq| messages::journal_status(json, seq, now, status));
        let subs = self.streams.subscribers(key);
        if subs.is_empty() {
            return;
        }
        self.sessions.register_status(subs, key);
        self.sessions.fan_out(subs, key, &msg, now, None);
        self.streams.count_published();
    }

    /// Adopts another node's run id (an edge serves the origin's run, so a client resumes
    /// across them by `seq`).
    pub fn set_run_id(&mut self, run_id: u64) {
        self.cfg.run_id = run_id;
    }

    /// This run's id (see [`HubConfig::run_id`]).
    pub(super) fn cfg_run(&self) -> u64 {
        self.cfg.run_id
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
        let Some(idx) = self.sessions.insert(now, conn) else {
            return false;
        };
        if !self.sessions.admit(idx) {
            let max = self.cfg.max_connections;
            let msg = format!("too many connections (max {max})");
            self.sessions
                .count_error(Some(idx), CLOSE_TOO_MANY_CONNECTIONS);
            let err = messages::error(&mut self.json, CLOSE_TOO_MANY_CONNECTIONS, &msg, None);
            self.sessions
                .refuse(idx, CLOSE_TOO_MANY_CONNECTIONS, err, msg);
            return false;
        }
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
        let Some(idx) = self.sessions.live(conn) else {
            return;
        };
        self.sessions.heard(idx, now, true);
        let (rate, burst) = (self.cfg.requests_per_sec, self.cfg.request_burst);
        if text.len() > self.cfg.max_message_bytes {
            let msg = format!(
                "message too large: {} bytes (max {})",
                text.len(),
                self.cfg.max_message_bytes
            );
            return self.fail(idx, None, E_TOO_LARGE, &msg);
        }
        let limited = !self.sessions.take_token(idx, now);
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
            Request::Resume {
                streams,
                publishers,
                run,
            } => self.resume(now, idx, id, &streams, &publishers, run, text, view),
            Request::Ping => {
                let msg = messages::pong(&mut self.json, id, now);
                self.succeed(idx, msg);
            }
        }
    }

    /// A binary frame from `conn`: the protocol has none, so it is refused (4004).
    pub fn handle_binary(&mut self, now: Nanos, conn: ConnId, len: usize) {
        let Some(idx) = self.sessions.live(conn) else {
            return;
        };
        self.sessions.heard(idx, now, true);
        let msg = format!("invalid message: binary frame ({len} bytes); requests are JSON text");
        self.fail(idx, None, E_INVALID, &msg);
    }

    /// Any frame (pongs included) was received from `conn`: it is alive.
    pub fn handle_heard(&mut self, now: Nanos, conn: ConnId) {
        if let Some(idx) = self.sessions.slot_of(conn) {
            self.sessions.heard(idx, now, false);
        }
    }

    /// The transport closed `conn` (for any reason); its state is dropped.
    pub fn handle_closed(&mut self, conn: ConnId) {
        if self.sessions.slot_of(conn).is_none() {
            return;
        }
        self.end_session(conn);
        if let Some(Some(d)) = self.sessions.remove(conn) {
            self.forget(&d);
        }
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
        loop {
            match self.sessions.pop(conn)? {
                Popped::Msg(m) => return Some(m),
                // Only an engine swapped for one with fewer instruments could lack it.
                Popped::Snapshot(inst, _) if inst.0 as usize >= view.registry().len() => {}
                Popped::Snapshot(inst, depth) => {
                    let msg = self.book_now(now, inst, depth, None, view);
                    let idx = self.sessions.slot_of(conn).expect("just popped");
                    self.sessions.count_transmitted(idx);
                    return Some(msg);
                }
            }
        }
    }

    /// A connection that has messages to transmit, in the order they became ready. Each is
    /// reported once; keep calling [`Hub::poll_transmit`] for it (now, or when its socket is
    /// writable again) until that returns `None`.
    #[must_use]
    pub fn poll_ready(&mut self) -> Option<ConnId> {
        self.sessions.poll_ready()
    }

    /// When [`Hub::handle_timeout`] next has something to do (`Nanos(0)`: now), if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Nanos> {
        self.sessions.poll_timeout()
    }

    /// Runs the timers (pings due, heartbeat and slow-consumer closes) and appends every
    /// pending [`Action`] to `out`, in connection id order within each pass.
    pub fn handle_timeout(&mut self, now: Nanos, out: &mut Vec<Action>) {
        let mut detached = std::mem::take(&mut self.detached);
        self.sessions.handle_timeout(now, out, &mut detached);
        for d in detached.drain(..) {
            self.forget(&d);
        }
        self.detached = detached;
    }

    /// Channel messages queued to subscribers so far (the `delivered` figure of
    /// [`Hub::stats`], without building the rest).
    pub fn stats_delivered(&self) -> u64 {
        self.sessions.counters().delivered
    }

    /// Every connection the hub knows (open, refused or closing), in id order.
    pub fn connections(&self) -> Vec<ConnId> {
        self.sessions.ids().collect()
    }

    /// Current figures.
    pub fn stats(&self) -> HubStats {
        let c = self.sessions.counters();
        HubStats {
            connections: self.sessions.open_count(),
            subscriptions: Channel::ALL
                .iter()
                .map(|ch| (ch.as_str(), self.streams.subscriptions(*ch)))
                .collect(),
            requests: c.requests,
            published: self.streams.published(),
            delivered: c.delivered,
            transmitted: c.transmitted,
            errors: c.errors.clone(),
            trades_dropped: c.trades_dropped,
            conflated: c.conflated,
            disconnects: c.disconnects,
            resumes: c.resumes,
            per_connection: self.sessions.conn_stats(),
        }
    }

    /// The connection `conn` if it is known and not closing.
    pub(super) fn live(&self, conn: ConnId) -> Option<usize> {
        self.sessions.live(conn)
    }

    /// Queues a reply to a good request.
    pub(super) fn succeed(&mut self, idx: usize, msg: Utf8Bytes) {
        self.sessions.clear_errors(idx);
        self.reply(idx, msg);
    }

    pub(super) fn reply(&mut self, idx: usize, msg: Utf8Bytes) -> bool {
        if self.sessions.push_reply(idx, msg) {
            return true;
        }
        let max = self.cfg.max_queued_replies;
        let reason = format!("slow consumer: over {max} replies not read");
        self.close(idx, CLOSE_SLOW_CONSUMER, reason, false);
        false
    }

    /// Queues an error reply; closes the connection after `max_errors` in a row.
    pub(super) fn fail(&mut self, idx: usize, id: Option<&str>, code: u16, message: &str) {
        let errors = self.sessions.count_error(Some(idx), code);
        let msg = messages::error(&mut self.json, code, message, id);
        if self.reply(idx, msg) && errors >= self.cfg.max_errors {
            let reason = format!("too many errors: {errors} bad requests in a row");
            self.close(idx, CLOSE_TOO_MANY_ERRORS, reason, true);
        }
    }

    /// Decides to close a connection: it stops receiving channel data at once.
    pub(super) fn close(&mut self, idx: usize, code: u16, reason: String, keep_replies: bool) {
        if let Some(d) = self.sessions.close(idx, code, reason, keep_replies) {
            self.forget(&d);
        }
    }

    /// Removes a detached connection from every subscriber list.
    fn forget(&mut self, d: &Detached) {
        for key in d.subs.keys() {
            self.streams.unsubscribe(*key, d.conn);
        }
        // A `status` subscriber holds no stream key until a venue publishes.
        self.streams.unsubscribe(status_key(0), d.conn);
    }
}
