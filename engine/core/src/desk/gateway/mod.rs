//! The desk's side of an external order venue (Binance's WebSocket API, or the simulator's).
//!
//! Orders the accounts want sent become `order.place` / `order.cancel` requests, rendered
//! here without credentials and emitted as
//! [`DeskOutput::VenueOrder`](super::DeskOutput::VenueOrder)s, which the engine hands to the
//! io layer as [`VenueCommand::Order`](crate::output::VenueCommand::Order)s; the io layer adds
//! `apiKey`, `timestamp` and the signature. Everything the venue says back (responses,
//! user-data events) returns as [`RecordKind::GatewayFrame`](crate::input::RecordKind)
//! records, and what the io layer did (connected, ready, down, sent, a request timed out) as
//! [`GatewayEvent`] records, both journaled, so a replay reproduces the same fills and the
//! same reconciliations.
//!
//! One venue account serves every user of the desk. Each order gets a venue client id of its
//! own (`tg<n>`, unique on the desk), so two users' ids never collide at the venue; the desk
//! maps it back to the user and the id the user knows before the account sees the report.
//! Account-wide venue events (balances, the venue's own positions) are applied when the desk
//! has one user (the venue account is that user's), and counted, not applied, when several
//! users share it: their positions and PnL are tape's own, from fills.
//!
//! **Reconciliation.** When the gateway is ready (connected, logged on, user data flowing),
//! after the venue expired the user-data key, and when a request stayed unanswered past the
//! io layer's timeout, the desk asks the venue for its open orders (and the account), adopts
//! what the venue accepted that tape did not hear about, asks `order.status` for every order
//! tape thinks live that the venue no longer lists, and publishes one `reconciled` message per
//! user on `orders` with what changed. Requests outstanding when the connection dropped are in
//! doubt until then: never rejected blindly.
//!
//! **Rate limits.** Every response's `rateLimits` updates [`limits::Limits`]; an order that
//! would exceed one is refused before it is sent (error 4021 and a `venue_rate_limit` risk
//! alert), as is any order during a 429's `retryAfter`; after a 418 nothing is sent until its
//! time.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::{Map, Value};

mod event;
pub mod limits;
mod reconcile;
pub mod venue_errors;

pub use event::GatewayEvent;

use crate::account::event::ExecutionReport;
use crate::account::{
    Accounts, ClientOrderId, NewOrder, OrderCommand, OrderStatus, OrderType, UserDataDecoder,
    UserEvent,
};
use crate::input::Nanos;
use crate::instrument::{InstrumentId, Market, Registry};
use crate::wire::JsonBuf;
use limits::{Blocked, Limits};

/// Counters of the gateway.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GatewayStats {
    /// Requests rendered for the venue.
    pub requests: u64,
    /// Error responses (orders rejected, cancels refused).
    pub rejected: u64,
    /// Order reports applied to an account.
    pub reports: u64,
    /// Events for no order of the desk, or account-wide ones on a shared venue account.
    pub unattributed: u64,
    /// Frames that did not parse or decode.
    pub bad_frames: u64,
    /// Reconciliations completed.
    pub reconciliations: u64,
    /// Orders adopted or brought up to date by a reconciliation.
    pub reconciled_orders: u64,
    /// Orders refused locally by the venue's rate limits.
    pub rate_limited: u64,
    /// Orders signed and journaled but not sent (dry run).
    pub dry_run: u64,
    /// Requests the venue did not answer in time.
    pub timeouts: u64,
    /// Connections that became ready.
    pub ready: u64,
    /// Connection drops.
    pub downs: u64,
}

/// What a request was.
#[derive(Debug, Clone)]
enum Pending {
    Place { user: String, mine: ClientOrderId },
    Cancel { user: String, mine: ClientOrderId },
    OpenOrders,
    OrderStatus { user: String, mine: ClientOrderId },
    Account,
}

/// Why a reconciliation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The gateway (re)connected and is ready.
    Connect,
    /// The venue expired the user-data key: events may have been missed.
    ListenKeyExpired,
    /// A request went unanswered past the timeout.
    Timeout,
}

impl Trigger {
    /// The name in `reconciled` messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Connect => "connect",
            Trigger::ListenKeyExpired => "listen_key_expired",
            Trigger::Timeout => "timeout",
        }
    }
}

/// What a reconciliation changed for one user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Orders the venue had accepted that tape had not heard acknowledged.
    pub adopted: Vec<ClientOrderId>,
    /// Orders with fills tape had missed (booked now).
    pub filled: Vec<ClientOrderId>,
    /// Orders that are gone at the venue, with the state they ended in.
    pub closed: Vec<(ClientOrderId, OrderStatus)>,
    /// Orders whose cancel was in doubt and which the venue still has open.
    pub still_open: Vec<ClientOrderId>,
}

/// Something the desk renders for a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Note {
    /// The venue refused a request with this error.
    VenueError {
        user: String,
        client_order_id: Option<ClientOrderId>,
        method: &'static str,
        status: u64,
        code: i64,
        msg: String,
    },
    /// A reconciliation finished.
    Reconciled {
        user: String,
        trigger: Trigger,
        changes: Changes,
        open_at_venue: usize,
    },
    /// Orders refused or a ban: a risk alert (`venue_rate_limit`).
    RateAlert { user: String, message: String },
}

/// One reconciliation in progress.
#[derive(Debug)]
struct Round {
    trigger: Trigger,
    /// Queries not answered yet.
    waiting: BTreeSet<u64>,
    changes: BTreeMap<String, Changes>,
    open_at_venue: usize,
}

#[derive(Debug)]
pub(super) struct Gateway {
    market: Market,
    /// The only user, when the desk has one: the venue account is theirs.
    single_user: Option<String>,
    dry_run: bool,
    next: u64,
    pending: BTreeMap<u64, Pending>,
    /// Requests outstanding when the connection dropped: resolved by the next reconciliation.
    in_doubt: BTreeMap<u64, Pending>,
    /// Venue client id → (user, the user's client id).
    by_venue: BTreeMap<ClientOrderId, (String, ClientOrderId)>,
    /// (user, client id) → venue client id.
    to_venue: BTreeMap<(String, ClientOrderId), ClientOrderId>,
    decoder: UserDataDecoder,
    limits: Limits,
    round: Option<Round>,
    /// A reconciliation asked for while one runs: it runs when that one ends.
    again: Option<Trigger>,
    /// Requests for the venue, (user, JSON), in order.
    pub(super) requests: VecDeque<(String, String)>,
    /// Messages for users, in order.
    pub(super) notes: VecDeque<Note>,
    pub stats: GatewayStats,
}

fn venue_id(n: u64) -> ClientOrderId {
    // `tg` + at most 20 digits: always a valid id.
    ClientOrderId::new(&format!("tg{n}")).unwrap_or_else(|_| ClientOrderId::generated("tg"))
}

fn ms(now: Nanos) -> u64 {
    now.0 / 1_000_000
}

impl Gateway {
    pub(super) fn new(market: Market, users: &[String], dry_run: bool) -> Gateway {
        Gateway {
            market,
            single_user: match users {
                [one] => Some(one.clone()),
                _ => None,
            },
            dry_run,
            next: 1,
            pending: BTreeMap::new(),
            in_doubt: BTreeMap::new(),
            by_venue: BTreeMap::new(),
            to_venue: BTreeMap::new(),
            decoder: UserDataDecoder::new(),
            limits: Limits::default(),
            round: None,
            again: None,
            requests: VecDeque::new(),
            notes: VecDeque::new(),
            stats: GatewayStats::default(),
        }
    }

    /// The venue's rate limits as last seen.
    pub(super) fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether an order may go out now; `Err` says why not (the caller refuses it, 4021).
    pub(super) fn check_order(&self, now: Nanos) -> Result<(), Blocked> {
        self.limits.check(ms(now), true)
    }

    /// A rate-limit refusal: counted, and an alert for the user.
    pub(super) fn rate_limited(&mut self, user: &str, why: &Blocked) {
        self.stats.rate_limited += 1;
        self.notes.push_back(Note::RateAlert {
            user: user.to_owned(),
            message: why.to_string(),
        });
    }

    fn take_id(&mut self) -> u64 {
        let n = self.next;
        self.next += 1;
        self.stats.requests += 1;
        n
    }

    /// Renders the request for `cmd` of `user`; `Err` is why it cannot be sent (the order
    /// is then rejected by the caller). In dry run the request is rendered and handed on
    /// (the io layer signs and journals it without sending) and `Ok(true)` says the order
    /// must be ended here.
    pub(super) fn request(
        &mut self,
        now: Nanos,
        j: &mut JsonBuf,
        user: &str,
        cmd: &OrderCommand,
        registry: &Registry,
    ) -> Result<(String, bool), String> {
        let n = self.next;
        match cmd {
            OrderCommand::Place(o) => {
                if let Err(b) = self.limits.check(ms(now), true) {
                    return Err(b.to_string());
                }
                let vid = venue_id(n);
                render_place(j, n, o, vid, registry)?;
                if !self.dry_run {
                    self.by_venue
                        .insert(vid, (user.to_owned(), o.client_order_id));
                    self.to_venue
                        .insert((user.to_owned(), o.client_order_id), vid);
                    self.pending.insert(
                        n,
                        Pending::Place {
                            user: user.to_owned(),
                            mine: o.client_order_id,
                        },
                    );
                }
                self.limits.count(ms(now), true);
            }
            OrderCommand::Cancel {
                instrument,
                client_order_id,
                ..
            } => {
                let vid = *self
                    .to_venue
                    .get(&(user.to_owned(), *client_order_id))
                    .ok_or("the venue never got this order")?;
                j.clear();
                j.raw("{\"id\":");
                j.u64(n);
                j.raw(",\"method\":\"order.cancel\",\"params\":{\"symbol\":");
                symbol(j, *instrument, registry)?;
                j.raw(",\"origClientOrderId\":");
                j.string(vid.as_str());
                j.raw("}}");
                self.pending.insert(
                    n,
                    Pending::Cancel {
                        user: user.to_owned(),
                        mine: *client_order_id,
                    },
                );
                self.limits.count(ms(now), false);
            }
        }
        self.take_id();
        if self.dry_run && matches!(cmd, OrderCommand::Place(_)) {
            self.stats.dry_run += 1;
            return Ok((j.as_str().to_owned(), true));
        }
        Ok((j.as_str().to_owned(), false))
    }

    /// Queues a query of the desk's own (`user` is empty).
    fn query(&mut self, method: &str, params: &str, what: Pending) -> u64 {
        let n = self.take_id();
        let json = if params.is_empty() {
            format!("{{\"id\":{n},\"method\":\"{method}\"}}")
        } else {
            format!("{{\"id\":{n},\"method\":\"{method}\",\"params\":{{{params}}}}}")
        };
        self.pending.insert(n, what);
        self.requests.push_back((String::new(), json));
        n
    }

    /// What the io layer reports.
    pub(super) fn handle_event(
        &mut self,
        now: Nanos,
        ev: GatewayEvent,
        accounts: &mut Accounts,
        registry: &Registry,
    ) {
        match ev {
            GatewayEvent::Up | GatewayEvent::Sent { .. } | GatewayEvent::Shutdown => {}
            GatewayEvent::Ready => {
                self.stats.ready += 1;
                self.reconcile(Trigger::Connect, accounts, registry);
            }
            GatewayEvent::Down { .. } => {
                self.stats.downs += 1;
                // Nothing outstanding will be answered on this connection; a reconciliation
                // in progress starts again when the gateway is ready.
                let pending = std::mem::take(&mut self.pending);
                for (id, p) in pending {
                    match p {
                        Pending::Place { .. } | Pending::Cancel { .. } => {
                            self.in_doubt.insert(id, p);
                        }
                        _ => {}
                    }
                }
                self.round = None;
                self.again = None;
            }
            GatewayEvent::Timeout { id } => {
                if let Some(p) = self.pending.remove(&id) {
                    self.stats.timeouts += 1;
                    match p {
                        Pending::Place { .. } | Pending::Cancel { .. } => {
                            self.in_doubt.insert(id, p);
                            self.reconcile(Trigger::Timeout, accounts, registry);
                        }
                        // An unanswered query: this round cannot finish; run another.
                        _ => {
                            if let Some(r) = self.round.take() {
                                self.reconcile(r.trigger, accounts, registry);
                            }
                        }
                    }
                }
            }
        }
        let _ = now;
    }

    /// Starts a reconciliation (or queues one after the running one).
    fn reconcile(&mut self, trigger: Trigger, accounts: &Accounts, registry: &Registry) {
        if self.round.is_some() {
            self.again = Some(trigger);
            return;
        }
        let mut waiting = BTreeSet::new();
        if self.market == Market::Spot {
            waiting.insert(self.query("openOrders.status", "", Pending::OpenOrders));
            waiting.insert(self.query("account.status", "", Pending::Account));
        } else {
            // The futures WebSocket APIs have no open-orders query: each order the desk
            // tracks is asked for by its venue id.
            waiting.extend(self.ask_each(|_| true, accounts, registry));
            waiting.insert(self.query("account.balance", "", Pending::Account));
            waiting.insert(self.query("account.position", "", Pending::Account));
        }
        let _ = (accounts, registry);
        self.round = Some(Round {
            trigger,
            waiting,
            changes: BTreeMap::new(),
            open_at_venue: 0,
        });
    }

    /// Applies one frame from the venue.
    pub(super) fn handle_frame(
        &mut self,
        now: Nanos,
        frame: &[u8],
        accounts: &mut Accounts,
        registry: &Registry,
    ) {
        let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(frame) else {
            self.stats.bad_frames += 1;
            return;
        };
        if let (Some(id), Some(status)) = (o.get("id"), o.get("status").and_then(Value::as_u64)) {
            if let Some(rl) = o.get("rateLimits") {
                self.limits.observe(ms(now), rl);
            }
            self.on_response(now, id, status, &o, accounts, registry);
            return;
        }
        // USD-M: the listenKey expired; the io layer gets a new one, the desk reconciles.
        let inner = o
            .get("data")
            .or_else(|| o.get("event"))
            .and_then(Value::as_object)
            .unwrap_or(&o);
        if inner.get("e").and_then(Value::as_str) == Some("listenKeyExpired") {
            self.reconcile(Trigger::ListenKeyExpired, accounts, registry);
            return;
        }
        let ev = match self.decoder.decode(frame, self.market, registry) {
            Ok(ev) => ev,
            Err(_) => {
                self.stats.bad_frames += 1;
                return;
            }
        };
        let UserEvent::Execution(r) = ev else {
            self.account_event(now, ev, accounts);
            return;
        };
        self.execution(now, r, accounts);
    }

    /// An account-wide event: applied to the only user's account, else counted.
    fn account_event(&mut self, now: Nanos, ev: UserEvent, accounts: &mut Accounts) {
        match &self.single_user {
            Some(u) => {
                let _ = accounts.handle_user_event(now, u, ev);
            }
            None => self.stats.unattributed += 1,
        }
    }

    /// An execution report for a venue client id: to its user's account.
    fn execution(&mut self, now: Nanos, mut r: ExecutionReport, accounts: &mut Accounts) -> bool {
        // A spot cancel's report carries the cancel's id in `c` and the order's in `C`.
        let key = r.orig_client_order_id.unwrap_or(r.client_order_id);
        let Some((user, mine)) = self.by_venue.get(&key).cloned() else {
            self.stats.unattributed += 1;
            return false;
        };
        r.client_order_id = mine;
        r.orig_client_order_id = None;
        self.stats.reports += 1;
        let done = r.status.is_terminal();
        let _ = accounts.handle_user_event(now, &user, UserEvent::Execution(r));
        // A finished order gets no more reports: its mapping goes, so the maps hold live
        // orders only, however long the session.
        if done {
            self.forget(&user, mine);
        }
        true
    }

    fn on_response(
        &mut self,
        now: Nanos,
        id: &Value,
        status: u64,
        o: &Map<String, Value>,
        accounts: &mut Accounts,
        registry: &Registry,
    ) {
        let id = id
            .as_u64()
            .or_else(|| id.as_str().and_then(|s| s.parse().ok()));
        let Some(id) = id else {
            // The io layer's own requests (time, logon, subscriptions) have string ids.
            return;
        };
        let what = match self.pending.remove(&id) {
            Some(w) => w,
            // An answer after the drop (the venue still sent it) resolves the doubt.
            None => match self.in_doubt.remove(&id) {
                Some(w) => w,
                None => return,
            },
        };
        let (code, msg) = o
            .get("error")
            .and_then(Value::as_object)
            .map(|e| {
                (
                    e.get("code").and_then(Value::as_i64).unwrap_or(0),
                    e.get("msg")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                )
            })
            .unwrap_or((0, String::new()));
        if status == 429 || status == 418 {
            let until = o
                .get("error")
                .and_then(|e| e.get("data"))
                .and_then(|d| d.get("retryAfter"))
                .or_else(|| o.get("retryAfter"))
                .and_then(Value::as_u64)
                .unwrap_or(ms(now) + 60_000);
            if status == 429 {
                self.limits.too_many(until);
            } else {
                self.limits.banned(until);
            }
            let who = match &what {
                Pending::Place { user, .. } | Pending::Cancel { user, .. } => Some(user.clone()),
                _ => None,
            };
            let message = format!(
                "the venue answered {status} ({code} {msg}): {} until {until} ms",
                if status == 418 {
                    "nothing is sent"
                } else {
                    "no orders are sent"
                }
            );
            if let Some(u) = who.or_else(|| self.single_user.clone()) {
                self.notes.push_back(Note::RateAlert { user: u, message });
            }
        }
        match what {
            Pending::Place { user, mine } => {
                if status == 200 {
                    return;
                }
                self.stats.rejected += 1;
                self.note_error(&user, Some(mine), "order.place", status, code, &msg);
                let Some(a) = accounts.user_mut(&user) else {
                    return;
                };
                // A report may have moved the order on already; then there is nothing to undo.
                let _ = a.order_rejected(now, &mine);
                if a.order(&mine).is_none_or(|o| !o.is_live()) {
                    self.forget(&user, mine);
                }
            }
            Pending::Cancel { user, mine } => {
                if status == 200 {
                    return;
                }
                self.stats.rejected += 1;
                self.note_error(&user, Some(mine), "order.cancel", status, code, &msg);
                if let Some(a) = accounts.user_mut(&user) {
                    let _ = a.cancel_rejected(now, &mine);
                }
            }
            Pending::OpenOrders => {
                if status == 200 {
                    self.open_orders(now, o.get("result"), accounts, registry);
                } else {
                    self.query_failed(id, status, code, &msg);
                }
                self.answered(id, accounts, registry);
            }
            Pending::OrderStatus { user, mine } => {
                self.order_status(
                    now,
                    &user,
                    mine,
                    status,
                    code,
                    o.get("result"),
                    accounts,
                    registry,
                );
                self.answered(id, accounts, registry);
            }
            Pending::Account => {
                if status == 200 {
                    let ev = o.get("result").and_then(|r| {
                        if self.market == Market::Spot {
                            reconcile::spot_balances(r)
                        } else if r.as_array().is_some_and(|a| {
                            a.first().is_some_and(|x| x.get("positionAmt").is_some())
                        }) {
                            reconcile::futures_positions(self.market, r, registry)
                        } else {
                            reconcile::futures_balances(r)
                        }
                    });
                    match ev {
                        Some(ev) => self.account_event(now, ev, accounts),
                        None => self.stats.bad_frames += 1,
                    }
                } else {
                    self.query_failed(id, status, code, &msg);
                }
                self.answered(id, accounts, registry);
            }
        }
    }

    fn note_error(
        &mut self,
        user: &str,
        id: Option<ClientOrderId>,
        method: &'static str,
        status: u64,
        code: i64,
        msg: &str,
    ) {
        self.notes.push_back(Note::VenueError {
            user: user.to_owned(),
            client_order_id: id,
            method,
            status,
            code,
            msg: msg.chars().take(200).collect(),
        });
    }

    /// A reconciliation query the venue refused: told to every user (the round still ends).
    fn query_failed(&mut self, id: u64, status: u64, code: i64, msg: &str) {
        let _ = id;
        self.stats.rejected += 1;
        let users: Vec<String> = self.single_user.iter().cloned().collect();
        for u in users {
            self.note_error(&u, None, "reconcile", status, code, msg);
        }
    }

    /// The open orders at the venue: adopt and catch up the desk's, and ask about the ones
    /// the venue no longer lists.
    fn open_orders(
        &mut self,
        now: Nanos,
        result: Option<&Value>,
        accounts: &mut Accounts,
        registry: &Registry,
    ) {
        let Some(list) = result.and_then(Value::as_array) else {
            self.stats.bad_frames += 1;
            return;
        };
        let mut seen = BTreeSet::new();
        for o in list {
            let Some(v) = o
                .as_object()
                .and_then(|o| reconcile::venue_order(self.market, o, registry))
            else {
                self.stats.bad_frames += 1;
                continue;
            };
            let vid = v.report.client_order_id;
            seen.insert(vid);
            if let Some(r) = self.round.as_mut() {
                r.open_at_venue += 1;
            }
            let Some((user, mine)) = self.by_venue.get(&vid).cloned() else {
                // Entered elsewhere, or by an earlier session: not the desk's.
                self.stats.unattributed += 1;
                continue;
            };
            self.catch_up(now, &user, mine, vid, &v, accounts);
        }
        // Orders tape thinks live that the venue does not list: ask each.
        let asked = self.ask_each(|vid| !seen.contains(vid), accounts, registry);
        if let Some(r) = self.round.as_mut() {
            r.waiting.extend(asked);
        }
        // Requests in doubt are settled by what the queries say.
        self.in_doubt.clear();
    }

    /// Asks `order.status` for every tracked order whose venue id passes `pick`; returns the
    /// request ids.
    fn ask_each(
        &mut self,
        pick: impl Fn(&ClientOrderId) -> bool,
        accounts: &Accounts,
        registry: &Registry,
    ) -> Vec<u64> {
        let chosen: Vec<(ClientOrderId, String, ClientOrderId)> = self
            .by_venue
            .iter()
            .filter(|(vid, _)| pick(vid))
            .map(|(vid, (u, m))| (*vid, u.clone(), *m))
            .collect();
        let mut ids = Vec::new();
        for (vid, user, mine) in chosen {
            let Some(inst) = accounts
                .user(&user)
                .and_then(|a| a.order(&mine))
                .map(|o| o.instrument)
            else {
                self.forget(&user, mine);
                continue;
            };
            if inst.0 as usize >= registry.len() {
                continue;
            }
            let sym = &registry.get(inst).symbol;
            let params = format!(
                "\"symbol\":\"{sym}\",\"origClientOrderId\":\"{}\"",
                vid.as_str()
            );
            ids.push(self.query("order.status", &params, Pending::OrderStatus { user, mine }));
        }
        ids
    }

    /// Brings `mine` of `user` to the venue's state `v`.
    fn catch_up(
        &mut self,
        now: Nanos,
        user: &str,
        mine: ClientOrderId,
        vid: ClientOrderId,
        v: &reconcile::VenueOrder,
        accounts: &mut Accounts,
    ) {
        let Some(ours) = accounts.user(user).and_then(|a| a.order(&mine)).copied() else {
            return;
        };
        let reports = reconcile::catch_up(&ours, vid, v);
        let mut changed = false;
        let mut changes = Changes::default();
        for r in reports {
            match r.exec_type {
                crate::account::kinds::ExecType::New => changes.adopted.push(mine),
                crate::account::kinds::ExecType::Trade => changes.filled.push(mine),
                _ => changes.closed.push((mine, r.status)),
            }
            changed = true;
            self.execution(now, r, accounts);
        }
        // A cancel in doubt for an order the venue still has: back to its state before.
        if matches!(v.status, OrderStatus::New | OrderStatus::PartiallyFilled) {
            if let Some(a) = accounts.user_mut(user) {
                if a.order(&mine)
                    .is_some_and(|o| o.status == OrderStatus::PendingCancel)
                {
                    let _ = a.cancel_rejected(now, &mine);
                    changes.still_open.push(mine);
                    changed = true;
                }
            }
        }
        if changed {
            self.stats.reconciled_orders += 1;
        }
        if let Some(r) = self.round.as_mut() {
            let e = r.changes.entry(user.to_owned()).or_default();
            e.adopted.extend(changes.adopted);
            e.filled.extend(changes.filled);
            e.closed.extend(changes.closed);
            e.still_open.extend(changes.still_open);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn order_status(
        &mut self,
        now: Nanos,
        user: &str,
        mine: ClientOrderId,
        status: u64,
        code: i64,
        result: Option<&Value>,
        accounts: &mut Accounts,
        registry: &Registry,
    ) {
        let Some(vid) = self.to_venue.get(&(user.to_owned(), mine)).copied() else {
            return;
        };
        if status == 200 {
            let Some(v) = result
                .and_then(Value::as_object)
                .and_then(|o| reconcile::venue_order(self.market, o, registry))
            else {
                self.stats.bad_frames += 1;
                return;
            };
            if self.market != Market::Spot
                && matches!(v.status, OrderStatus::New | OrderStatus::PartiallyFilled)
            {
                if let Some(r) = self.round.as_mut() {
                    r.open_at_venue += 1;
                }
            }
            self.catch_up(now, user, mine, vid, &v, accounts);
            return;
        }
        if code != -2013 {
            // The venue could not say: the order stays as tape has it; the next
            // reconciliation asks again.
            self.note_error(user, Some(mine), "order.status", status, code, "");
            return;
        }
        // The venue does not know the order.
        let Some(a) = accounts.user_mut(user) else {
            return;
        };
        let Some(o) = a.order(&mine).copied() else {
            self.forget(user, mine);
            return;
        };
        let pending_new = o.status == OrderStatus::PendingNew
            || o.status_before_cancel == Some(OrderStatus::PendingNew);
        let end = if pending_new {
            // It never reached the venue.
            let _ = a.order_rejected(now, &mine);
            OrderStatus::Rejected
        } else {
            // It was acknowledged and is gone without a trace the venue keeps: expired.
            let r = ExecutionReport {
                exec_type: crate::account::kinds::ExecType::Expired,
                status: OrderStatus::Expired,
                ..reconcile::order_as_report(&o, vid, self.market)
            };
            self.execution(now, r, accounts);
            OrderStatus::Expired
        };
        self.forget(user, mine);
        self.stats.reconciled_orders += 1;
        if let Some(r) = self.round.as_mut() {
            r.changes
                .entry(user.to_owned())
                .or_default()
                .closed
                .push((mine, end));
        }
    }

    /// A reconciliation query was answered: when it was the last, the round ends.
    fn answered(&mut self, id: u64, accounts: &Accounts, registry: &Registry) {
        let Some(r) = self.round.as_mut() else {
            return;
        };
        r.waiting.remove(&id);
        if !r.waiting.is_empty() {
            return;
        }
        let Some(r) = self.round.take() else {
            return;
        };
        self.stats.reconciliations += 1;
        let mut users: BTreeSet<String> = r.changes.keys().cloned().collect();
        users.extend(self.to_venue.keys().map(|(u, _)| u.clone()));
        users.extend(self.single_user.clone());
        for user in users {
            let changes = r.changes.get(&user).cloned().unwrap_or_default();
            self.notes.push_back(Note::Reconciled {
                user,
                trigger: r.trigger,
                changes,
                open_at_venue: r.open_at_venue,
            });
        }
        self.in_doubt.clear();
        if let Some(t) = self.again.take() {
            self.reconcile(t, accounts, registry);
        }
    }

    fn forget(&mut self, user: &str, mine: ClientOrderId) {
        if let Some(vid) = self.to_venue.remove(&(user.to_owned(), mine)) {
            self.by_venue.remove(&vid);
        }
    }

    /// Orders whose venue id is still mapped (live at the venue, as far as tape knows).
    #[cfg(test)]
    pub(super) fn tracked(&self) -> usize {
        self.by_venue.len()
    }
}

fn symbol(j: &mut JsonBuf, id: InstrumentId, registry: &Registry) -> Result<(), String> {
    if id.0 as usize >= registry.len() {
        return Err("unknown instrument".into());
    }
    j.string(&registry.get(id).symbol);
    Ok(())
}

fn render_place(
    j: &mut JsonBuf,
    n: u64,
    o: &NewOrder,
    vid: ClientOrderId,
    registry: &Registry,
) -> Result<(), String> {
    let kind = match o.order_type {
        OrderType::Market => "MARKET",
        OrderType::Limit => "LIMIT",
        other => return Err(format!("order type {} cannot be sent", other.as_str())),
    };
    if o.instrument.0 as usize >= registry.len() {
        return Err("unknown instrument".into());
    }
    let inst = registry.get(o.instrument);
    j.clear();
    j.raw("{\"id\":");
    j.u64(n);
    j.raw(",\"method\":\"order.place\",\"params\":{\"symbol\":");
    j.string(&inst.symbol);
    j.raw(",\"side\":\"");
    j.raw(&o.side.as_str().to_ascii_uppercase());
    j.raw("\",\"type\":\"");
    j.raw(kind);
    j.raw("\",\"quantity\":");
    j.fixed(o.qty.0, inst.qty_scale);
    if o.order_type == OrderType::Limit {
        j.raw(",\"price\":");
        j.fixed(o.price.0, inst.price_scale);
        j.raw(",\"timeInForce\":\"");
        j.raw(&o.time_in_force.as_str().to_ascii_uppercase());
        j.raw("\"");
    }
    if o.reduce_only && inst.market.is_futures() {
        j.raw(",\"reduceOnly\":\"true\"");
    }
    j.raw(",\"newClientOrderId\":");
    j.string(vid.as_str());
    j.raw("}}");
    Ok(())
}
