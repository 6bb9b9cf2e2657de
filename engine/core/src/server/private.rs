//! Authenticated sessions: `auth`, private channels, order entry and publishing.
//!
//! The hub authenticates (JWT HS256, see [`crate::auth`]) and checks roles; what changes
//! trading state goes out as a client record ([`Hub::poll_record`]) that the io layer
//! journals and feeds to the engine, whose desk answers with [`Event::Private`] outputs that
//! come back through [`Hub::handle_output`]. Private messages use the reply queue, so they
//! are never conflated or dropped: a client that lets them pile up is closed (4010).
//!
//! [`Event::Private`]: crate::output::Event::Private

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use tungstenite::Utf8Bytes;

use super::history::{History, HistoryBudget, Lookup};
use super::request::PrivateKind;
use super::view::MarketView;
use super::{ConnId, Hub};
use crate::auth::{AuthError, Authenticator, Role, Roles};
use crate::desk::{ClientOp, ClientRecord, PrivateChannel, PrivateMsg, Snapshot};
use crate::input::{Nanos, RecordKind};
use crate::wire::{
    CLOSE_TOO_MANY_CONNECTIONS, CLOSE_UNAUTHORIZED, E_FORBIDDEN, E_INVALID, E_JOURNAL_UNAVAILABLE,
    E_ORDER_REJECTED, E_ORIGIN_UNAVAILABLE, E_UNAUTHORIZED,
};

/// One authenticated connection.
#[derive(Debug, Clone)]
pub(super) struct Session {
    pub(super) user: String,
    roles: Roles,
    /// Subscribed private channels, by [`PrivateChannel::index`] bit.
    subs: u8,
}

/// Authenticated sessions, their private subscriptions, and client records waiting for the
/// journal.
///
/// Invariants: a connection is in `user_conns[u]` exactly when it has a session of user `u`
/// (no empty sets are kept); a connection subscribes to a broadcast channel (`signal`,
/// `bot_status`) only while it has a session, and its session's `subs` bit says so too.
#[derive(Debug, Default)]
pub(super) struct Private {
    auth: Option<Authenticator>,
    sessions: BTreeMap<ConnId, Session>,
    user_conns: BTreeMap<String, BTreeSet<ConnId>>,
    /// Subscribers of `signal` and `bot_status`.
    broadcast: [BTreeSet<ConnId>; 2],
    records: VecDeque<(u16, Vec<u8>)>,
    stats: PrivateStats,
    /// Per user: the history of each per-user channel, for `resume`.
    pub(super) history: BTreeMap<String, UserHistory>,
    /// Per broadcast channel (`signal`, `bot_status`) and publisher: its history and last
    /// `seq` (they count per publisher).
    pub(super) published: [BTreeMap<String, (History, u64)>; 2],
    /// Bounds of each of those histories.
    pub(super) budget: HistoryBudget,
}

/// A user's per-user channels (`orders`, `positions`, `portfolio`, `risk_alerts`): what
/// each published lately, and its last `seq`.
#[derive(Debug, Default)]
pub(super) struct UserHistory {
    hist: [History; 4],
    head: [u64; 4],
}

impl UserHistory {
    /// The slot of a per-user channel.
    fn slot(ch: PrivateChannel) -> Option<usize> {
        ch.is_per_user()
            .then(|| ch.index() - PrivateChannel::Orders.index())
    }

    /// What the user's channel `ch` can replay after `after`, and its last `seq`.
    pub(super) fn lookup(&self, ch: PrivateChannel, after: u64) -> (Lookup<'_>, u64) {
        match Self::slot(ch) {
            Some(i) => (self.hist[i].lookup(after, self.head[i]), self.head[i]),
            None => (Lookup::TooOld, 0),
        }
    }
}

impl Private {
    /// No sessions; per-user histories bounded by `budget`.
    pub(super) fn with_budget(budget: HistoryBudget) -> Self {
        Private {
            budget,
            ..Private::default()
        }
    }

    /// The session of `conn`, if it authenticated.
    fn session(&self, conn: ConnId) -> Option<&Session> {
        self.sessions.get(&conn)
    }

    /// Queues a client record for the journal.
    fn record(&mut self, op: ClientOp, conn: ConnId, user: &str, body: &[u8]) {
        let payload = ClientRecord::encode(op, conn.0 as u64, user, body);
        self.stats.records += 1;
        self.records.push_back((RecordKind::Client as u16, payload));
    }

    fn count_auth_failure(&mut self, e: &AuthError) {
        *self.stats.auth_failures.entry(e.code()).or_default() += 1;
    }

    /// Opens a session of `user` for `conn`, unless the user already has `max` connections
    /// (then false, counted).
    fn login(&mut self, conn: ConnId, user: &str, roles: Roles, max: usize) -> bool {
        let open = self.user_conns.get(user).map_or(0, BTreeSet::len);
        if open >= max {
            self.stats.user_limit_refused += 1;
            return false;
        }
        self.stats.logins += 1;
        self.user_conns
            .entry(user.to_owned())
            .or_default()
            .insert(conn);
        let s = Session {
            user: user.to_owned(),
            roles,
            subs: 0,
        };
        self.sessions.insert(conn, s);
        self.record(ClientOp::Login, conn, user, b"");
        true
    }

    /// Ends `conn`'s session, if any, with its subscriptions.
    fn logout(&mut self, conn: ConnId) {
        let Some(s) = self.sessions.remove(&conn) else {
            return;
        };
        if let Some(set) = self.user_conns.get_mut(&s.user) {
            set.remove(&conn);
            if set.is_empty() {
                self.user_conns.remove(&s.user);
            }
        }
        for b in &mut self.broadcast {
            b.remove(&conn);
        }
        self.record(ClientOp::Logout, conn, &s.user, b"");
    }

    /// True when `conn`'s session subscribes to `ch`.
    pub(super) fn subscribes(&self, conn: ConnId, ch: PrivateChannel) -> bool {
        self.session(conn).is_some_and(|s| s.subs & bit(ch) != 0)
    }

    /// Subscribes (or unsubscribes) `conn`'s session to `channels`.
    pub(super) fn set_channels(
        &mut self,
        conn: ConnId,
        channels: &[PrivateChannel],
        subscribe: bool,
    ) {
        let Some(sess) = self.sessions.get_mut(&conn) else {
            return;
        };
        for &ch in channels {
            if subscribe {
                sess.subs |= bit(ch);
            } else {
                sess.subs &= !bit(ch);
            }
            if let Some(b) = broadcast_slot(ch) {
                if subscribe {
                    self.broadcast[b].insert(conn);
                } else {
                    self.broadcast[b].remove(&conn);
                }
            }
        }
    }

    /// The connections a desk message goes to, in id order.
    fn targets(&self, m: &PrivateMsg, out: &mut Vec<ConnId>) {
        match m.channel {
            PrivateChannel::Reply => {
                let Some(conn) = m.conn.map(|c| ConnId(c as usize)) else {
                    return;
                };
                // Only to the session that sent it (a replayed journal has no such client).
                if self.session(conn).is_some_and(|s| s.user == m.user) {
                    out.push(conn);
                }
            }
            ch if ch.is_per_user() => {
                if let Some(conns) = self.user_conns.get(&m.user) {
                    out.extend(
                        conns.iter().copied().filter(|c| {
                            self.sessions.get(c).is_some_and(|s| s.subs & bit(ch) != 0)
                        }),
                    );
                }
            }
            ch => {
                if let Some(b) = broadcast_slot(ch) {
                    out.extend(self.broadcast[b].iter().copied());
                }
            }
        }
    }
}

/// Counters of authentication and private traffic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrivateStats {
    /// Sessions authenticated.
    pub logins: u64,
    /// Refused tokens, by [`AuthError::code`].
    pub auth_failures: BTreeMap<&'static str, u64>,
    /// Connections refused by the per-user limit.
    pub user_limit_refused: u64,
    /// Client records handed to the journal.
    pub records: u64,
    /// Private messages queued to connections.
    pub delivered: u64,
}

fn bit(ch: PrivateChannel) -> u8 {
    1 << ch.index()
}

pub(super) fn broadcast_slot(ch: PrivateChannel) -> Option<usize> {
    match ch {
        PrivateChannel::Signal => Some(0),
        PrivateChannel::BotStatus => Some(1),
        _ => None,
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The value of `token` in a query string, if any.
fn query_token(query: &str) -> Option<&str> {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .filter(|t| !t.is_empty())
}

impl Hub {
    /// Turns on authentication and private channels. Without it, `auth` and every private
    /// request are refused with 4001.
    pub fn set_authenticator(&mut self, auth: Authenticator) {
        self.private.auth = Some(auth);
    }

    /// The next client record to journal and feed to the engine (kind, payload), oldest
    /// first. The io layer drains this after every hub call that takes client input.
    pub fn poll_record(&mut self) -> Option<(u16, Vec<u8>)> {
        self.private.records.pop_front()
    }

    /// Open authenticated connections per user, by name; the rest of the open connections
    /// are anonymous.
    pub fn connections_per_user(&self) -> impl Iterator<Item = (&str, usize)> {
        self.private
            .user_conns
            .iter()
            .map(|(u, conns)| (u.as_str(), conns.len()))
    }

    /// Authentication and private-traffic counters.
    pub fn private_stats(&self) -> &PrivateStats {
        &self.private.stats
    }

    /// The user `conn` is authenticated as.
    pub fn session_user(&self, conn: ConnId) -> Option<&str> {
        self.private.session(conn).map(|s| s.user.as_str())
    }

    /// Checks an HTTP `Authorization: Bearer` header for a user with `role`: the user's name,
    /// or the HTTP status and message to answer.
    ///
    /// # Errors
    /// 401 (missing, malformed or refused token; or no authentication configured) and 403
    /// (the role is missing).
    pub fn authorize_http(
        &mut self,
        authorization: Option<&str>,
        role: Role,
        now: Nanos,
    ) -> Result<String, (u16, String)> {
        let Some(auth) = &self.private.auth else {
            return Err((401, "authentication is not configured".into()));
        };
        let token = authorization
            .and_then(bearer_token)
            .ok_or((401, "an Authorization: Bearer token is required".to_owned()))?;
        match auth.verify(token, now.0 / 1_000_000) {
            Ok(p) if p.roles.contains(role) => Ok(auth.user_name(p.user).to_owned()),
            Ok(_) => Err((403, format!("forbidden: role {role} required"))),
            Err(e) => {
                self.private.count_auth_failure(&e);
                Err((401, format!("unauthorized: {e}")))
            }
        }
    }

    /// `?token=` at open: authenticates or refuses the connection (error, then close).
    /// Returns false when the connection was refused.
    pub(super) fn auth_at_open(&mut self, now: Nanos, idx: usize, query: &str) -> bool {
        let Some(token) = query_token(query) else {
            return true;
        };
        let token = token.to_owned();
        self.authenticate(now, idx, None, &token, true)
    }

    /// Verifies `token` for the connection in `idx`. At open a failure closes the connection
    /// (4001, or 4003 over the per-user limit); in an `auth` request it is an error reply.
    pub(super) fn authenticate(
        &mut self,
        now: Nanos,
        idx: usize,
        id: Option<&str>,
        token: &str,
        at_open: bool,
    ) -> bool {
        let conn = self.sessions.conn(idx).id;
        let verified = match &self.private.auth {
            None => Err(None),
            Some(a) => a
                .verify(token, now.0 / 1_000_000)
                .map(|p| {
                    (
                        a.user_name(p.user).to_owned(),
                        p.roles,
                        a.max_connections(p.user),
                    )
                })
                .map_err(Some),
        };
        let (user, roles, max) = match verified {
            Ok(v) => v,
            Err(e) => {
                let msg = match &e {
                    None => "unauthorized: authentication is not configured".to_owned(),
                    Some(e) => format!("unauthorized: {e}"),
                };
                if let Some(e) = e {
                    self.private.count_auth_failure(&e);
                }
                return self.refuse_session(
                    idx,
                    id,
                    E_UNAUTHORIZED,
                    CLOSE_UNAUTHORIZED,
                    &msg,
                    at_open,
                );
            }
        };
        if let Some(s) = self.private.session(conn) {
            let msg = format!("already authenticated as {}", s.user);
            self.fail(idx, id, E_INVALID, &msg);
            return true;
        }
        if !self.private.login(conn, &user, roles, max) {
            let msg = format!("too many connections for user {user} (max {max})");
            return self.refuse_session(
                idx,
                id,
                CLOSE_TOO_MANY_CONNECTIONS,
                CLOSE_TOO_MANY_CONNECTIONS,
                &msg,
                true,
            );
        }
        let j = &mut self.json;
        j.clear();
        j.raw("{\"type\":\"authenticated\"");
        if let Some(id) = id {
            j.raw(",\"id\":");
            j.raw(id);
        }
        j.raw(",\"user\":");
        j.string(&user);
        j.raw(",\"roles\":[");
        for (k, r) in roles.iter().enumerate() {
            j.raw(if k == 0 { "\"" } else { ",\"" });
            j.raw(r.as_str());
            j.raw("\"");
        }
        j.raw("]}");
        let msg = j.freeze();
        self.succeed(idx, msg);
        true
    }

    /// An error reply; at open (or over the per-user limit) also a close with `close_code`.
    fn refuse_session(
        &mut self,
        idx: usize,
        id: Option<&str>,
        code: u16,
        close_code: u16,
        msg: &str,
        close: bool,
    ) -> bool {
        self.fail(idx, id, code, msg);
        if close {
            self.close(idx, close_code, msg.to_owned(), true);
            return false;
        }
        true
    }

    /// Journals a market-only (un)subscribe of an authenticated session (private ones are
    /// journaled by `private_subscribe`); anonymous sessions have no user to name.
    pub(super) fn record_market_subscribe(&mut self, idx: usize, text: &str) {
        let conn = self.sessions.conn(idx).id;
        if let Some(user) = self.private.session(conn).map(|s| s.user.clone()) {
            self.private
                .record(ClientOp::Subscribe, conn, &user, text.as_bytes());
        }
    }

    /// Drops `conn`'s session (if any) when it closes.
    pub(super) fn end_session(&mut self, conn: ConnId) {
        self.private.logout(conn);
    }

    /// The session of `idx` with `role`, or the error reply already queued.
    pub(super) fn session_with(
        &mut self,
        idx: usize,
        id: Option<&str>,
        role: Role,
    ) -> Option<Session> {
        let conn = self.sessions.conn(idx).id;
        match self.private.session(conn) {
            None => {
                self.fail(
                    idx,
                    id,
                    E_UNAUTHORIZED,
                    "unauthorized: authenticate first ({\"type\":\"auth\",\"token\":...} or ?token=)",
                );
                None
            }
            Some(s) if !s.roles.contains(role) => {
                let msg = format!("forbidden: role {role} required");
                self.fail(idx, id, E_FORBIDDEN, &msg);
                None
            }
            Some(s) => Some(s.clone()),
        }
    }

    /// Subscribes or unsubscribes private channels (one reply for them).
    pub(super) fn private_subscribe(
        &mut self,
        idx: usize,
        id: Option<&str>,
        channels: &[PrivateChannel],
        subscribe: bool,
        text: &str,
    ) {
        let Some(s) = self.session_with(idx, id, Role::Viewer) else {
            return;
        };
        let conn = self.sessions.conn(idx).id;
        self.private.set_channels(conn, channels, subscribe);
        self.private
            .record(ClientOp::Subscribe, conn, &s.user, text.as_bytes());
        let run = self.cfg_run();
        let j = &mut self.json;
        j.clear();
        j.raw(if subscribe {
            "{\"type\":\"subscribed\""
        } else {
            "{\"type\":\"unsubscribed\""
        });
        if let Some(id) = id {
            j.raw(",\"id\":");
            j.raw(id);
        }
        if run != 0 {
            j.raw(",\"run\":");
            j.u64(run);
        }
        j.raw(",\"subscriptions\":[");
        for (k, ch) in channels.iter().enumerate() {
            j.raw(if k == 0 {
                "{\"channel\":\""
            } else {
                ",{\"channel\":\""
            });
            j.raw(ch.as_str());
            j.raw("\"}");
        }
        j.raw("]}");
        let msg = j.freeze();
        self.succeed(idx, msg);
    }

    /// Order entry, publish (journaled; the engine replies) and `get_*` (answered here).
    pub(super) fn private_request(
        &mut self,
        now: Nanos,
        idx: usize,
        id: Option<&str>,
        kind: PrivateKind,
        text: &str,
        view: &(impl MarketView + ?Sized),
    ) {
        let role = match kind {
            PrivateKind::Order => Role::Trader,
            PrivateKind::AdminOrder => Role::Admin,
            PrivateKind::Publish => Role::Publisher,
            _ => Role::Viewer,
        };
        let Some(s) = self.session_with(idx, id, role) else {
            return;
        };
        let Some(desk) = view.desk() else {
            return self.fail(idx, id, E_ORDER_REJECTED, "no trading desk is configured");
        };
        let conn = self.sessions.conn(idx).id;
        let what = match kind {
            PrivateKind::Order | PrivateKind::AdminOrder | PrivateKind::Publish
                if self.journal_fault.is_some() =>
            {
                let why = self.journal_fault.as_deref().unwrap_or_default();
                let msg = format!(
                    "journal unavailable: tape takes no order until it can journal it ({why})"
                );
                return self.fail(idx, id, E_JOURNAL_UNAVAILABLE, &msg);
            }
            PrivateKind::Order | PrivateKind::AdminOrder | PrivateKind::Publish
                if self.feed_stale.is_some() =>
            {
                let why = self.feed_stale.unwrap_or_default();
                let msg = format!("origin unavailable: this edge's log is {why}, it takes no order until the log is live again");
                return self.fail(idx, id, E_ORIGIN_UNAVAILABLE, &msg);
            }
            PrivateKind::Order | PrivateKind::AdminOrder | PrivateKind::Publish => {
                self.sessions.clear_errors(idx);
                return self
                    .private
                    .record(ClientOp::Command, conn, &s.user, text.as_bytes());
            }
            PrivateKind::GetOrders => Snapshot::Orders,
            PrivateKind::GetPositions => Snapshot::Positions,
            PrivateKind::GetPortfolio => Snapshot::Portfolio,
        };
        let rendered = desk.snapshot_json(&mut self.json, what, &s.user, id, now, view.registry());
        match rendered {
            Some(json) => self.succeed(idx, Utf8Bytes::from(json)),
            None => {
                let msg = format!("user {} has no account on the desk", s.user);
                self.fail(idx, id, E_ORDER_REJECTED, &msg);
            }
        }
    }

    /// Routes one desk message: a reply to its connection, a per-user channel to that
    /// user's subscribed connections, `signal`/`bot_status` to every subscriber.
    pub(super) fn on_private(&mut self, m: &PrivateMsg) {
        let msg = Utf8Bytes::from(m.json.as_str());
        if let Some(i) = UserHistory::slot(m.channel).filter(|_| m.seq > 0) {
            let budget = self.private.budget;
            let h = match self.private.history.get_mut(m.user.as_str()) {
                Some(h) => h,
                None => self.private.history.entry(m.user.clone()).or_default(),
            };
            h.head[i] = m.seq;
            h.hist[i].record(budget, m.seq, Some(&msg));
        }
        if let Some(b) = broadcast_slot(m.channel).filter(|_| m.seq > 0) {
            let budget = self.private.budget;
            let map = &mut self.private.published[b];
            let (h, head) = match map.get_mut(m.user.as_str()) {
                Some(e) => e,
                None => map.entry(m.user.clone()).or_default(),
            };
            *head = m.seq;
            h.record(budget, m.seq, Some(&msg));
        }
        let mut targets: Vec<ConnId> = Vec::new();
        self.private.targets(m, &mut targets);
        for conn in targets {
            if let Some(idx) = self.live(conn) {
                if self.reply(idx, msg.clone()) {
                    self.private.stats.delivered += 1;
                    self.sessions.count_delivered();
                }
            }
        }
    }
}
