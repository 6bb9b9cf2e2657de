//! The trading desk: the engine's side of private client sessions.
//!
//! Client commands that change trading state (order entry, cancels, publishing) and the
//! session events around them (login, private subscriptions) reach the engine as journal
//! records on [`CLIENT_SOURCE`](crate::input::CLIENT_SOURCE), exactly like market data: the
//! io layer journals them, then the engine applies them. A replay of the journal therefore
//! rebuilds the same orders, fills, positions and messages, and the output digest proves it.
//!
//! * [`DeskSetup`] (record kind 5): the users and the account settings every user gets.
//! * [`ClientRecord`] (record kind 6): a header line naming the op, the connection and the
//!   user (see [`crate::record`]), a newline, then for `command` and `subscribe` the
//!   client's JSON request as received.
//!
//! Authentication and roles are checked by the hub before a record is written; the desk
//! trusts the journal. Everything the desk says comes out as [`PrivateMsg`]s: rendered JSON,
//! addressed to one connection (a reply) or to one user's private channel, in a deterministic
//! order (see `docs/protocol.md`, "Private channels").

mod command;
mod gateway;
mod render;
mod setup;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};

pub use command::{Command, CommandError};
pub use gateway::{GatewayEvent, GatewayStats};
pub use setup::{DeskSetup, SetupError};

use crate::account::{Accounts, InstrumentInfo, Reject};
use crate::book::OrderBook;
use crate::input::Nanos;
use crate::instrument::{InstrumentId, Registry};
use crate::msg::Level;
use crate::wire::JsonBuf;
use crate::wire::{E_ORDER_REJECTED, E_RISK_REJECTED};

/// Largest JSON body of a client command, bytes.
pub const MAX_COMMAND_BYTES: usize = 16 << 10;

/// A private channel (or a reply), as addressed by a [`PrivateMsg`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PrivateChannel {
    /// A reply to one connection's command.
    Reply = 0,
    /// Order updates (and advanced-order and trailing-stop updates).
    Orders = 1,
    /// Position updates.
    Positions = 2,
    /// Portfolio summaries (and balances).
    Portfolio = 3,
    /// Risk alerts.
    RiskAlerts = 4,
    /// Signals from publishers, to every subscriber.
    Signal = 5,
    /// Bot status from publishers, to every subscriber.
    BotStatus = 6,
    // 7 was the external order venue's requests; they now leave the engine through
    // `Engine::poll_venue_command`, and the digest still folds them under tag 7 (see
    // `Digest::update_venue_order`), so 7 must not be reused.
}

impl PrivateChannel {
    /// Every subscribable private channel.
    pub const ALL: [PrivateChannel; 6] = [
        PrivateChannel::Orders,
        PrivateChannel::Positions,
        PrivateChannel::Portfolio,
        PrivateChannel::RiskAlerts,
        PrivateChannel::Signal,
        PrivateChannel::BotStatus,
    ];

    /// The protocol name.
    pub fn as_str(self) -> &'static str {
        match self {
            PrivateChannel::Reply => "reply",
            PrivateChannel::Orders => "orders",
            PrivateChannel::Positions => "positions",
            PrivateChannel::Portfolio => "portfolio",
            PrivateChannel::RiskAlerts => "risk_alerts",
            PrivateChannel::Signal => "signal",
            PrivateChannel::BotStatus => "bot_status",
        }
    }

    /// Parses a subscribable channel name.
    pub fn parse(s: &str) -> Option<PrivateChannel> {
        PrivateChannel::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// True for channels that carry one user's own data (not broadcast).
    pub fn is_per_user(self) -> bool {
        matches!(
            self,
            PrivateChannel::Orders
                | PrivateChannel::Positions
                | PrivateChannel::Portfolio
                | PrivateChannel::RiskAlerts
        )
    }

    /// Index into per-channel arrays.
    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }
}

/// One message of the desk, rendered once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateMsg {
    /// The user it is about (the publisher, for `signal`/`bot_status`).
    pub user: String,
    /// Where it goes.
    pub channel: PrivateChannel,
    /// The connection a [`PrivateChannel::Reply`] answers.
    pub conn: Option<u64>,
    /// Its `seq` on the user's channel (0 for a [`PrivateChannel::Reply`]). Not folded into
    /// the digest: `json` carries it already.
    pub seq: u64,
    /// The JSON text sent to clients.
    pub json: String,
}

/// What the desk says, in the order it said it: the relative order of client messages and
/// venue orders is part of the engine's digest, so both travel through one queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeskOutput {
    /// A message for clients.
    Private(PrivateMsg),
    /// A request for the external order venue (never sent to clients).
    VenueOrder {
        /// The user whose order it is.
        user: String,
        /// The order-API request (`order.place` / `order.cancel`), as sent to the venue.
        json: String,
    },
}

/// What a [`ClientRecord`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientOp {
    /// A connection authenticated as the user.
    Login,
    /// An authenticated connection closed.
    Logout,
    /// A private subscribe or unsubscribe (the body is the request).
    Subscribe,
    /// An order-entry or publish request (the body is the request).
    Command,
}

impl ClientOp {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ClientOp::Login => "login",
            ClientOp::Logout => "logout",
            ClientOp::Subscribe => "subscribe",
            ClientOp::Command => "command",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<ClientOp> {
        [
            ClientOp::Login,
            ClientOp::Logout,
            ClientOp::Subscribe,
            ClientOp::Command,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// A client record: a `"type":"client"` header line (see [`crate::record`]; journals written
/// before version 2 hold `tape-client/1 op=OP conn=N user=NAME`), `\n`, then the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord<'a> {
    /// What happened.
    pub op: ClientOp,
    /// The transport's connection id.
    pub conn: u64,
    /// The authenticated user (owned when the header had to unescape it).
    pub user: std::borrow::Cow<'a, str>,
    /// The request text (empty for login/logout).
    pub body: &'a [u8],
}

/// Why a client record was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeskError {
    /// The header line is malformed.
    #[error("bad client record: {0}")]
    BadRecord(&'static str),
    /// A client record arrived before any desk setup.
    #[error("client record before the desk setup")]
    NoDesk,
    /// The setup record is invalid.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// The record names a user the desk does not have.
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    /// A gateway event record that does not parse.
    #[error("bad gateway event: {0}")]
    BadGatewayEvent(crate::record::RecordError),
}

impl DeskError {
    /// A stable short name for counting.
    pub fn code(&self) -> &'static str {
        match self {
            DeskError::BadRecord(_) => "bad_client_record",
            DeskError::NoDesk => "no_desk",
            DeskError::Setup(_) => "bad_desk_setup",
            DeskError::UnknownUser(_) => "unknown_user",
            DeskError::BadGatewayEvent(_) => "bad_gateway_event",
        }
    }
}

impl<'a> ClientRecord<'a> {
    /// Renders a record payload (version 2).
    pub fn encode(op: ClientOp, conn: u64, user: &str, body: &[u8]) -> Vec<u8> {
        crate::record::encode_client(op, conn, user, body)
    }

    /// Parses a record payload in either encoding. Never panics.
    ///
    /// # Errors
    /// [`DeskError::BadRecord`] naming what is wrong.
    pub fn parse(payload: &'a [u8]) -> Result<ClientRecord<'a>, DeskError> {
        if let Some(r) = canonical_client(payload) {
            return Ok(r);
        }
        crate::record::parse_client(payload)
    }
}

/// The header exactly as [`ClientRecord::encode`] writes it, for a user name of printable
/// ASCII without `"` or `\\` (every name the hub journals): read by position, without
/// building a JSON map. Anything else is `None` and goes to the full reader, which gives the
/// same record for every input this accepts (proptested in `tests.rs`).
fn canonical_client(p: &[u8]) -> Option<ClientRecord<'_>> {
    let rest = p.strip_prefix(b"{\"v\":2,\"type\":\"client\",\"op\":\"")?;
    let (op, rest) = [
        ClientOp::Command,
        ClientOp::Login,
        ClientOp::Logout,
        ClientOp::Subscribe,
    ]
    .into_iter()
    .find_map(|op| {
        let r = rest.strip_prefix(op.as_str().as_bytes())?;
        Some((op, r.strip_prefix(b"\",\"conn\":")?))
    })?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || (digits > 1 && rest[0] == b'0') {
        return None;
    }
    let mut conn: u64 = 0;
    for &d in &rest[..digits] {
        conn = conn.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    let rest = rest[digits..].strip_prefix(b",\"user\":\"")?;
    let q = rest.iter().position(|&b| b == b'"')?;
    let user = &rest[..q];
    if user.is_empty()
        || !user
            .iter()
            .all(|&b| (0x20..0x7f).contains(&b) && b != b'\\')
    {
        return None;
    }
    let body = match &rest[q + 1..] {
        [b'}'] => &[][..],
        [b'}', b'\n', body @ ..] => body,
        _ => return None,
    };
    Some(ClientRecord {
        op,
        conn,
        user: std::borrow::Cow::Borrowed(std::str::from_utf8(user).ok()?),
        body,
    })
}

/// Per user: the next `seq` of each private channel.
type Seqs = [u64; 7];

/// Counters of the desk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeskStats {
    /// Client records applied (all ops).
    pub records: u64,
    /// Commands accepted.
    pub accepted: u64,
    /// Commands refused (invalid, rejected, risk).
    pub refused: u64,
    /// Risk alerts emitted.
    pub risk_alerts: u64,
    /// Publisher messages broadcast.
    pub published: u64,
}

/// The accounts of every configured user, driven by client records and market data.
#[derive(Debug)]
pub struct Desk {
    setup: DeskSetup,
    accounts: Accounts,
    /// Instruments already made known to the accounts, by id.
    known: Vec<bool>,
    seqs: BTreeMap<String, Seqs>,
    out: VecDeque<DeskOutput>,
    json: JsonBuf,
    /// The request reader's buffers, reused for every command.
    reader: crate::wire::request::Reader,
    stats: DeskStats,
    /// The external order venue, when the setup names one (else the paper venue).
    gateway: Option<gateway::Gateway>,
}

impl Desk {
    /// A desk with the setup's users.
    ///
    /// # Errors
    /// A user the account layer refuses (bad name, duplicate, too many).
    pub fn new(setup: DeskSetup) -> Result<Desk, SetupError> {
        let mut accounts = Accounts::new(setup.users.len().max(1));
        for u in &setup.users {
            accounts
                .add_user(u, setup.account_config())
                .map_err(|e| SetupError::User(u.clone(), e.to_string()))?;
        }
        let gw = setup
            .gateway
            .map(|m| gateway::Gateway::new(m, &setup.users, setup.dry_run));
        Ok(Desk {
            seqs: setup
                .users
                .iter()
                .map(|u| (u.clone(), Seqs::default()))
                .collect(),
            setup,
            accounts,
            known: Vec::new(),
            out: VecDeque::new(),
            json: JsonBuf::new(),
            reader: crate::wire::request::Reader::default(),
            stats: DeskStats::default(),
            gateway: gw,
        })
    }

    /// The setup in use.
    pub fn setup(&self) -> &DeskSetup {
        &self.setup
    }

    /// The accounts (for snapshots: `get_orders`, `/api/orders`, ...).
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// Counters.
    pub fn stats(&self) -> DeskStats {
        self.stats
    }

    /// Counters of the external order venue, when there is one.
    pub fn gateway_stats(&self) -> Option<GatewayStats> {
        self.gateway.as_ref().map(|g| g.stats)
    }

    /// Applies one frame from the external order venue (a response or a user-data event).
    pub fn handle_gateway_frame(&mut self, now: Nanos, frame: &[u8], registry: &Registry) {
        if let Some(g) = self.gateway.as_mut() {
            g.handle_frame(now, frame, &mut self.accounts, registry);
        }
        self.drain(now, registry);
    }

    /// Applies what the io layer did on the order gateway.
    pub fn handle_gateway_event(&mut self, now: Nanos, ev: GatewayEvent, registry: &Registry) {
        if ev == GatewayEvent::Shutdown && self.gateway.is_some() {
            for u in self.setup.users.clone() {
                if let Some(a) = self.accounts.user_mut(&u) {
                    a.cancel_all(now);
                }
            }
        }
        if let Some(g) = self.gateway.as_mut() {
            g.handle_event(now, ev, &mut self.accounts, registry);
        }
        self.drain(now, registry);
    }

    /// The venue's rate limits as the gateway last saw them (empty without a gateway).
    pub fn venue_rate_limits(&self) -> &[gateway::limits::RateLimit] {
        self.gateway.as_ref().map_or(&[], |g| g.limits().all())
    }

    /// The next message or venue order, oldest first.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<DeskOutput> {
        self.out.pop_front()
    }

    fn ensure_instrument(&mut self, id: InstrumentId, registry: &Registry) {
        let idx = id.0 as usize;
        if self.known.get(idx).copied().unwrap_or(false) {
            return;
        }
        if let Some(info) = InstrumentInfo::from_registry(registry, id) {
            if self.accounts.add_instrument(info).is_ok() {
                if self.known.len() <= idx {
                    self.known.resize(idx + 1, false);
                }
                self.known[idx] = true;
            }
        }
    }

    /// Applies one client record; replies and events are queued for [`Desk::poll_output`].
    ///
    /// # Errors
    /// A malformed record or an unknown user (counted by the engine; nothing is queued).
    pub fn handle_client(
        &mut self,
        now: Nanos,
        payload: &[u8],
        registry: &Registry,
    ) -> Result<(), DeskError> {
        if let Some(e) = self.enter(now, payload, registry)? {
            self.reply(now, e, registry);
        }
        Ok(())
    }

    /// The first half of [`Desk::handle_client`]: the record and its command read, the
    /// gateway's rate check, and the account's decision (risk checks; the paper venue matches
    /// at once, an external venue's order is queued). `None` when there is nothing left to
    /// say but what was already queued (not a command, or refused). Public for the order
    /// entry benchmark, which times the two halves apart; [`Desk::reply`] must follow before
    /// any other call.
    ///
    /// # Errors
    /// As [`Desk::handle_client`].
    #[doc(hidden)]
    pub fn enter(
        &mut self,
        now: Nanos,
        payload: &[u8],
        registry: &Registry,
    ) -> Result<Option<Entered>, DeskError> {
        let rec = ClientRecord::parse(payload)?;
        if self.accounts.user(&rec.user).is_none() {
            return Err(DeskError::UnknownUser(rec.user.chars().take(64).collect()));
        }
        self.stats.records += 1;
        if rec.op != ClientOp::Command {
            return Ok(None);
        }
        let user = rec.user.into_owned();
        let parsed = command::parse(&mut self.reader, rec.body, registry);
        let id = parsed.id;
        let cmd = match parsed.command {
            Ok(c) => c,
            Err(e) => {
                self.refuse(&user, rec.conn, id.as_deref(), e.code(), &e.to_string());
                return Ok(None);
            }
        };
        if let Some(inst) = cmd.instrument() {
            self.ensure_instrument(inst, registry);
        }
        let places = matches!(
            cmd,
            Command::Place { .. } | Command::Oco(_) | Command::Trailing(_)
        );
        if places {
            if let Some(g) = self.gateway.as_mut() {
                if let Err(why) = g.check_order(now) {
                    g.rate_limited(&user, &why);
                    let why = why.to_string();
                    self.refuse(&user, rec.conn, id.as_deref(), E_RISK_REJECTED, &why);
                    self.drain(now, registry);
                    return Ok(None);
                }
            }
        }
        let result = self.apply(now, &user, &cmd);
        Ok(Some(Entered {
            user,
            conn: rec.conn,
            id,
            cmd,
            places,
            result,
        }))
    }

    /// The second half of [`Desk::handle_client`]: the reply (ack or refusal) and every event
    /// the command caused rendered and queued, venue requests among them in their order.
    #[doc(hidden)]
    pub fn reply(&mut self, now: Nanos, e: Entered, registry: &Registry) {
        let Entered {
            user,
            conn,
            id,
            cmd,
            places,
            result,
        } = e;
        let id = id.as_deref();
        match result {
            Ok(ack) => {
                self.stats.accepted += 1;
                let mut msg = render::ack(&mut self.json, id, &cmd, &ack, now);
                if places && self.setup.dry_run && self.gateway.is_some() {
                    // Said before the order's own events: it is signed and journaled, not sent.
                    msg.pop();
                    msg.push_str(",\"dry_run\":true}");
                }
                self.push(&user, PrivateChannel::Reply, Some(conn), 0, msg);
                if let Command::Publish { channel, data } = &cmd {
                    self.stats.published += 1;
                    let seq = self.next_seq(&user, *channel);
                    let msg = render::published(&mut self.json, *channel, &user, data, seq, now);
                    self.push(&user, *channel, None, seq, msg);
                }
            }
            Err(Reject::Risk(r)) => {
                self.refuse(&user, conn, id, E_RISK_REJECTED, &r.to_string());
            }
            Err(e) => self.refuse(&user, conn, id, E_ORDER_REJECTED, &e.to_string()),
        }
        self.drain(now, registry);
    }

    fn apply(&mut self, now: Nanos, user: &str, cmd: &Command) -> Result<render::Ack, Reject> {
        if let Command::CancelAll { all_users } = *cmd {
            let users: Vec<String> = if all_users {
                self.setup.users.clone()
            } else {
                vec![user.to_owned()]
            };
            let mut n = 0;
            for u in users {
                if let Some(a) = self.accounts.user_mut(&u) {
                    n += a.cancel_all(now);
                }
            }
            return Ok(render::Ack::CanceledAll(n));
        }
        let Some(a) = self.accounts.user_mut(user) else {
            // Checked by the caller; a publish needs no account anyway.
            return Ok(render::Ack::Published);
        };
        Ok(match cmd {
            Command::Place {
                order,
                bracket: None,
            } => render::Ack::Order(a.place(now, *order)?, None),
            Command::Place {
                order,
                bracket: Some(b),
            } => {
                let (o, adv) = a.place_bracket(now, *order, *b)?;
                render::Ack::Order(o, Some(adv))
            }
            Command::Oco(r) => render::Ack::Advanced(a.place_oco(now, *r)?),
            Command::Trailing(r) => render::Ack::Advanced(a.place_trailing(now, *r)?),
            Command::Cancel(id) => {
                a.cancel(now, id)?;
                render::Ack::Canceled
            }
            Command::CancelAdvanced(id) => {
                a.cancel_advanced(now, *id)?;
                render::Ack::Canceled
            }
            Command::CancelAll { .. } => render::Ack::CanceledAll(0),
            Command::Publish { .. } => render::Ack::Published,
        })
    }

    fn refuse(&mut self, user: &str, conn: u64, id: Option<&str>, code: u16, message: &str) {
        self.stats.refused += 1;
        let msg = render::error(&mut self.json, code, message, id);
        self.push(user, PrivateChannel::Reply, Some(conn), 0, msg);
    }

    fn next_seq(&mut self, user: &str, ch: PrivateChannel) -> u64 {
        // Every user has an entry from `new`; the name is copied only for one that has not.
        if !self.seqs.contains_key(user) {
            self.seqs.insert(user.to_owned(), Seqs::default());
        }
        let Some(s) = self.seqs.get_mut(user) else {
            unreachable!("inserted above");
        };
        s[ch.index()] += 1;
        s[ch.index()]
    }

    fn push(
        &mut self,
        user: &str,
        channel: PrivateChannel,
        conn: Option<u64>,
        seq: u64,
        json: String,
    ) {
        self.out.push_back(DeskOutput::Private(PrivateMsg {
            user: user.to_owned(),
            channel,
            conn,
            seq,
            json,
        }));
    }

    /// A synced book changed: marks, triggers and the paper venue follow it.
    pub fn on_book(&mut self, now: Nanos, id: InstrumentId, book: &OrderBook, registry: &Registry) {
        self.ensure_instrument(id, registry);
        self.accounts.handle_book(now, id, book, None);
        self.drain(now, registry);
    }

    /// A trade printed: last-trade marks and trade-watching triggers follow it.
    pub fn on_trade(&mut self, now: Nanos, id: InstrumentId, trade: Level, registry: &Registry) {
        self.ensure_instrument(id, registry);
        self.accounts
            .handle_market(now, id, None, None, Some(trade));
        self.drain(now, registry);
    }

    /// Renders every pending account event onto its user's channel, and the gateway's
    /// queries and notes, until neither has more.
    fn drain(&mut self, now: Nanos, registry: &Registry) {
        loop {
            self.drain_accounts(now, registry);
            let Some(g) = self.gateway.as_mut() else {
                return;
            };
            let reqs: Vec<(String, String)> = g.requests.drain(..).collect();
            let notes: Vec<gateway::Note> = g.notes.drain(..).collect();
            if reqs.is_empty() && notes.is_empty() {
                return;
            }
            for (user, json) in reqs {
                self.out.push_back(DeskOutput::VenueOrder { user, json });
            }
            for n in notes {
                self.note(now, n, registry);
            }
        }
    }

    /// Renders one gateway note for its user.
    fn note(&mut self, now: Nanos, n: gateway::Note, registry: &Registry) {
        match n {
            gateway::Note::RateAlert { user, message } => {
                let alert = crate::account::AccountEvent::Risk(crate::account::RiskAlert {
                    kind: crate::account::RiskKind::VenueRateLimit,
                    severity: crate::account::Severity::Critical,
                    message,
                    limit: crate::fixed::Decimal {
                        mantissa: 0,
                        scale: 0,
                    },
                    current: crate::fixed::Decimal {
                        mantissa: 0,
                        scale: 0,
                    },
                    instrument: None,
                    at: now,
                });
                self.stats.risk_alerts += 1;
                let seq = self.next_seq(&user, PrivateChannel::RiskAlerts);
                let json = render::event(&mut self.json, &alert, seq, now, registry);
                self.push(&user, PrivateChannel::RiskAlerts, None, seq, json);
            }
            gateway::Note::VenueError { ref user, .. }
            | gateway::Note::Reconciled { ref user, .. } => {
                let user = user.clone();
                let seq = self.next_seq(&user, PrivateChannel::Orders);
                let json = render::gateway_note(&mut self.json, &n, seq, now);
                self.push(&user, PrivateChannel::Orders, None, seq, json);
            }
        }
    }

    fn drain_accounts(&mut self, now: Nanos, registry: &Registry) {
        while let Some((user, ev)) = self.accounts.poll_event() {
            let user = user.as_str().to_owned();
            if let crate::account::AccountEvent::Command(cmd) = &ev {
                self.send(now, &user, cmd, registry);
                continue;
            }
            let Some(ch) = render::channel_of(&ev) else {
                continue;
            };
            if ch == PrivateChannel::RiskAlerts {
                self.stats.risk_alerts += 1;
            }
            let seq = self.next_seq(&user, ch);
            let json = render::event(&mut self.json, &ev, seq, now, registry);
            self.push(&user, ch, None, seq, json);
        }
    }

    /// Renders an order command for the external venue, or undoes it when it cannot be
    /// sent (the account's events follow through `drain`).
    fn send(
        &mut self,
        now: Nanos,
        user: &str,
        cmd: &crate::account::OrderCommand,
        registry: &Registry,
    ) {
        let Some(g) = self.gateway.as_mut() else {
            return;
        };
        match g.request(now, &mut self.json, user, cmd, registry) {
            Ok((json, dry_run)) => {
                self.out.push_back(DeskOutput::VenueOrder {
                    user: user.to_owned(),
                    json,
                });
                if dry_run {
                    // Signed and journaled by the io layer, never sent: the order ends here.
                    if let crate::account::OrderCommand::Place(o) = cmd {
                        if let Some(a) = self.accounts.user_mut(user) {
                            let _ = a.order_rejected(now, &o.client_order_id);
                        }
                    }
                }
            }
            Err(_) => {
                if let Some(a) = self.accounts.user_mut(user) {
                    let _ = match cmd {
                        crate::account::OrderCommand::Place(o) => {
                            a.order_rejected(now, &o.client_order_id)
                        }
                        crate::account::OrderCommand::Cancel {
                            client_order_id, ..
                        } => a.cancel_rejected(now, client_order_id),
                    };
                }
            }
        }
    }

    /// A snapshot of the user's state (`get_orders`, `get_positions`, `get_portfolio` and
    /// their `/api/*` twins), rendered into `j`; `None` for an unknown user.
    pub fn snapshot_json(
        &self,
        j: &mut JsonBuf,
        what: Snapshot,
        user: &str,
        id: Option<&str>,
        now: Nanos,
        registry: &Registry,
    ) -> Option<String> {
        let a = self.accounts.user(user)?;
        Some(match what {
            Snapshot::Orders => render::orders_snapshot(j, a, id, now, registry),
            Snapshot::Positions => render::positions_snapshot(j, a, id, now, registry),
            Snapshot::Portfolio => render::portfolio_snapshot(j, a, id, now),
        })
    }
}

/// A command between [`Desk::enter`] and [`Desk::reply`] (the benchmark's split point).
#[doc(hidden)]
#[derive(Debug)]
pub struct Entered {
    user: String,
    conn: u64,
    id: Option<String>,
    cmd: Command,
    places: bool,
    result: Result<render::Ack, Reject>,
}

/// Which snapshot of a user's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Snapshot {
    /// Live orders.
    Orders,
    /// Positions.
    Positions,
    /// Portfolio summary and balances.
    Portfolio,
}
