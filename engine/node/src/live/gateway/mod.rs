//! The order gateway: the WebSocket to a venue's order API (Binance's WebSocket API:
//! spot `/ws-api/v3`, USD-M `/ws-fapi/v1`, COIN-M `/ws-dapi/v1`), and, on futures, the
//! user-data connection (`/private?listenKey=`), on the engine's mio loop.
//!
//! On every connect: `time` (the venue's clock offset, re-measured every
//! `time_sync_ns`), then with an Ed25519 key `session.logon`, then user data — spot:
//! `userDataStream.subscribe` on the logged-on session (or `userDataStream.subscribe.signature`
//! with an HMAC key); futures: `userDataStream.start` for a listenKey, kept alive with
//! `userDataStream.ping`, read on its own connection. When user data flows the gateway is
//! *ready*: a journaled [`GatewayEvent::Ready`] makes the desk reconcile.
//!
//! The desk renders requests without credentials; [`signing`] adds them. Every request
//! written is journaled as [`GatewayEvent::Sent`] (without `signature` and `apiKey`); in dry
//! run an `order.place` is signed and journaled, not written. Everything the venue says
//! (responses, user-data events, on either connection) becomes a
//! [`RecordKind::GatewayFrame`] record. A request that cannot be written is answered here
//! with an error response in the venue's shape (the order was never sent); one unanswered
//! past `request_timeout_ns` becomes a [`GatewayEvent::Timeout`]; a drop is a
//! [`GatewayEvent::Down`] (requests outstanding are in doubt until the desk reconciles).

use std::collections::{BTreeMap, VecDeque};

use mio::{Registry, Token};
use serde_json::Value;

use super::feed::LiveRecord;
use super::ws::{WsConn, WsOptions, WsSink, WsUrl};
use tape_core::desk::GatewayEvent;
use tape_core::input::{RecordKind, GATEWAY_SOURCE};
use tape_core::instrument::Market;
use tape_core::link::{Backoff, LinkAction, LinkConfig, VenueLink};
use tape_core::sign::KeyKind;
use tape_core::venue::LinkEvent;

pub mod signing;

pub use signing::Credentials;
use signing::{sign, Auth};

/// The request id the desk put first in a request (`{"id":N,...`).
fn request_id(json: &str) -> Option<u64> {
    let rest = json.strip_prefix("{\"id\":")?;
    let end = rest.find(|c: char| !c.is_ascii_digit())?;
    rest[..end].parse().ok()
}

/// The method of a request (`"method":"..."`).
fn request_method(json: &str) -> Option<&str> {
    let at = json.find("\"method\":\"")? + 10;
    let rest = &json[at..];
    Some(&rest[..rest.find('"')?])
}

/// The user-data stream URL for `key`: `base` with `{listenKey}` replaced, or, without that
/// placeholder, `?listenKey=` appended (USD-M's routed `/private`).
fn user_data_url(base: &str, key: &str) -> String {
    if base.contains("{listenKey}") {
        return base.replace("{listenKey}", key);
    }
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}listenKey={key}")
}

fn failure(id: u64, reason: &str) -> Vec<u8> {
    let mut msg = String::new();
    tape_core::wire::json::escape_json_string(&mut msg, &format!("order gateway: {reason}"));
    format!("{{\"id\":{id},\"status\":503,\"error\":{{\"code\":-1001,\"msg\":{msg}}}}}")
        .into_bytes()
}

/// Settings of the order gateway beyond its URL.
#[derive(Debug, Default, Clone)]
pub struct GatewayOptions {
    /// The market whose API it is (what user data looks like, which methods exist).
    pub market: Option<Market>,
    /// The API key and signer; `None` sends requests unsigned (only a lenient venue
    /// simulator accepts them).
    pub credentials: Option<std::sync::Arc<Credentials>>,
    /// `recvWindow` sent with signed requests, ms (`None`: the venue's default).
    pub recv_window_ms: Option<u64>,
    /// How often the venue's clock offset is measured again, ns (0: only at connect).
    pub time_sync_ns: u64,
    /// A request unanswered this long is reported as timed out, ns.
    pub request_timeout_ns: u64,
    /// Futures: the user-data stream URL the listenKey is appended to
    /// (`wss://fstream.binance.com/private/ws`).
    pub user_data_url: Option<String>,
    /// Futures: how often the listenKey is kept alive, ns.
    pub listen_key_ping_ns: u64,
    /// Orders are signed and journaled, not written.
    pub dry_run: bool,
    /// On shutdown, cancel every open order first (and wait, bounded, for the answers).
    pub cancel_on_shutdown: bool,
}

/// Counters of the order gateway, for `/status`. Never holds a credential.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GatewayIo {
    /// The order API URL.
    pub url: String,
    /// True while connected.
    pub connected: bool,
    /// Connections opened.
    pub connects: u64,
    /// Requests written.
    pub sent: u64,
    /// Requests answered with a failure here (not connected, not signable).
    pub failed: u64,
    /// The last reason the connection went down.
    pub last_down: String,
    /// `ed25519`, `hmac` or `none`.
    pub signing: &'static str,
    /// Logged on with `session.logon` (Ed25519).
    pub logged_on: bool,
    /// User data flows and the desk was told (`ready`).
    pub ready: bool,
    /// The venue's clock minus ours, ms, when measured.
    pub clock_offset_ms: Option<i64>,
    /// Round trip of the last `time` measurement, µs.
    pub clock_rtt_us: Option<u64>,
    /// Futures: listenKeys obtained (1 per connect, plus renewals after expiry).
    pub listen_keys: u64,
    /// Requests that timed out.
    pub timeouts: u64,
    /// Orders signed and journaled but not written (dry run).
    pub dry_run_orders: u64,
    /// Dry run is on.
    pub dry_run: bool,
}

/// Feeds what a connection reports to the link; the link's actions wait in `todo` until the
/// connection is free again. Frames with the gateway's own string ids are kept in `own` for
/// the gateway to act on after they are queued.
struct GwSink<'a, C: FnMut() -> u64> {
    clock: &'a mut C,
    queue: &'a mut VecDeque<LiveRecord>,
    outstanding: &'a mut BTreeMap<u64, u64>,
    link: Option<&'a mut VenueLink>,
    rep: &'a mut Reported,
}

/// What the connections reported during one call, for the gateway to act on after it.
#[derive(Default)]
struct Reported {
    /// The API link's actions.
    todo: VecDeque<LinkAction>,
    /// Frames the gateway acts on itself (its own requests' answers, `listenKeyExpired`).
    own: Vec<(u64, Value)>,
    /// The user-data connection opened or was lost.
    private: Vec<PrivateEvent>,
}

enum PrivateEvent {
    Opened(u64),
    Lost(u64, String),
}

impl<C: FnMut() -> u64> GwSink<'_, C> {
    fn pump(&mut self) {
        if let Some(link) = self.link.as_deref_mut() {
            while let Some(action) = link.poll_action() {
                self.rep.todo.push_back(action);
            }
        }
    }
}

impl<C: FnMut() -> u64> WsSink for GwSink<'_, C> {
    fn now(&mut self) -> u64 {
        (self.clock)()
    }
    fn frame(&mut self, recv: u64, payload: Vec<u8>) {
        if let Some(link) = self.link.as_deref_mut() {
            link.handle_frame(recv);
        }
        let text = std::str::from_utf8(&payload).ok();
        if let Some(id) = text.and_then(request_id) {
            self.outstanding.remove(&id);
        }
        // The gateway's own requests (string ids `tape-...`) and venue events it acts on.
        if text.is_some_and(|t| t.contains("\"tape-") || t.contains("listenKeyExpired")) {
            if let Ok(v) = serde_json::from_slice::<Value>(&payload) {
                self.rep.own.push((recv, v));
            }
        }
        self.queue.push_back(LiveRecord {
            recv,
            source: GATEWAY_SOURCE,
            kind: RecordKind::GatewayFrame as u16,
            payload,
        });
    }
    fn opened(&mut self, now: u64) {
        match self.link.as_deref_mut() {
            Some(link) => {
                link.handle_connected(now);
                self.pump();
            }
            None => self.rep.private.push(PrivateEvent::Opened(now)),
        }
    }
    fn lost(&mut self, now: u64, reason: String) {
        match self.link.as_deref_mut() {
            Some(link) => {
                link.handle_closed(now, reason);
                self.pump();
            }
            None => self.rep.private.push(PrivateEvent::Lost(now, reason)),
        }
    }
}

/// Where the session is, on the current connection.
#[derive(Debug, Default)]
struct Session {
    /// `time` sent at (ns), awaiting its answer.
    time_sent: Option<(String, u64)>,
    next_time_sync: u64,
    logged_on: bool,
    /// User data was asked for (subscribe or listenKey start).
    asked_user_data: bool,
    listen_key: Option<String>,
    next_key_ping: u64,
    ready: bool,
}

/// The connection to the venue's order API.
pub(crate) struct OrderGateway {
    conn: WsConn,
    link: VenueLink,
    /// The user-data connection (futures), when a listenKey is held.
    private: Option<WsConn>,
    private_token: Token,
    private_retry_at: u64,
    opts: WsOptions,
    cfg: GatewayOptions,
    /// The first poll starts the link.
    started: bool,
    /// Request id → when written (ns).
    outstanding: BTreeMap<u64, u64>,
    session: Session,
    seq: u64,
    io: GatewayIo,
}

/// How long the private connection waits before another try, ns.
const PRIVATE_RETRY_NS: u64 = 1_000_000_000;

impl OrderGateway {
    /// `token` is the API connection's; `token + 1` the user-data connection's.
    pub(crate) fn new(
        url: &str,
        token: Token,
        opts: WsOptions,
        link: LinkConfig,
        backoff: Backoff,
        cfg: GatewayOptions,
    ) -> Result<OrderGateway, String> {
        let parsed = WsUrl::parse(url)?;
        if let Some(u) = &cfg.user_data_url {
            WsUrl::parse(u).map_err(|e| format!("user_data_url: {e}"))?;
        }
        let signing = cfg
            .credentials
            .as_ref()
            .map_or("none", |c| c.kind().as_str());
        Ok(OrderGateway {
            conn: WsConn::new(parsed, token, opts.clone()),
            link: VenueLink::new(url, link, backoff),
            private: None,
            private_token: Token(token.0 + 1),
            private_retry_at: u64::MAX,
            opts,
            started: false,
            outstanding: BTreeMap::new(),
            session: Session::default(),
            seq: 0,
            io: GatewayIo {
                url: url.to_owned(),
                signing,
                dry_run: cfg.dry_run,
                ..GatewayIo::default()
            },
            cfg,
        })
    }

    /// Tokens it uses: the API connection's and the user-data connection's.
    pub(crate) const TOKENS: usize = 2;

    fn futures(&self) -> bool {
        self.cfg.market.is_some_and(Market::is_futures)
    }

    /// The error record for a request when no gateway is configured (`recv` is set by the
    /// caller).
    pub(crate) fn unconfigured_failure(json: &str) -> Option<LiveRecord> {
        request_id(json).map(|id| LiveRecord {
            recv: 0,
            source: GATEWAY_SOURCE,
            kind: RecordKind::GatewayFrame as u16,
            payload: failure(id, "no order gateway is configured"),
        })
    }

    pub(crate) fn io(&self) -> GatewayIo {
        let mut io = self.io.clone();
        io.connected = self.conn.is_open();
        io.logged_on = self.session.logged_on;
        io.ready = self.session.ready;
        io
    }

    pub(crate) fn next_deadline(&self) -> u64 {
        if !self.started {
            return 0;
        }
        let mut t = self.link.poll_timeout().unwrap_or(u64::MAX);
        if self.conn.is_open() {
            if self.cfg.time_sync_ns > 0 {
                t = t.min(self.session.next_time_sync);
            }
            if self.session.listen_key.is_some() {
                t = t.min(self.session.next_key_ping);
            }
        }
        if let Some(oldest) = self.outstanding.values().min() {
            t = t.min(oldest.saturating_add(self.cfg.request_timeout_ns));
        }
        t.min(self.private_retry_at)
    }

    fn event(queue: &mut VecDeque<LiveRecord>, recv: u64, ev: &GatewayEvent) {
        queue.push_back(LiveRecord {
            recv,
            source: GATEWAY_SOURCE,
            kind: RecordKind::GatewayEvent as u16,
            payload: ev.to_payload().into_bytes(),
        });
    }

    /// Writes one request of the gateway's own (`id` a `tape-...` string).
    fn own_request(
        &mut self,
        now: u64,
        method: &str,
        params: &str,
        auth: Auth,
        queue: &mut VecDeque<LiveRecord>,
    ) -> Option<String> {
        self.seq += 1;
        let id = format!("tape-{method}-{}", self.seq);
        let json = if params.is_empty() {
            format!("{{\"id\":\"{id}\",\"method\":\"{method}\"}}")
        } else {
            format!("{{\"id\":\"{id}\",\"method\":\"{method}\",\"params\":{{{params}}}}}")
        };
        let auth = if self.cfg.credentials.is_none() {
            Auth::None
        } else {
            auth
        };
        let signed = match sign(
            &json,
            auth,
            self.cfg.credentials.as_deref(),
            self.timestamp_ms(now),
            self.cfg.recv_window_ms,
        ) {
            Ok(s) => s,
            Err(e) => {
                self.io.failed += 1;
                self.io.last_down = format!("{method}: {e}");
                return None;
            }
        };
        match self.conn.send_text(&signed.wire) {
            Ok(()) => {
                self.io.sent += 1;
                Self::event(
                    queue,
                    now,
                    &GatewayEvent::Sent {
                        request: signed.journal,
                        dry_run: false,
                    },
                );
                Some(id)
            }
            Err(e) => {
                self.io.failed += 1;
                self.io.last_down = format!("{method}: {e}");
                None
            }
        }
    }

    /// Now on the venue's clock, ms.
    fn timestamp_ms(&self, now: u64) -> u64 {
        let local = (now / 1_000_000) as i64;
        u64::try_from(local.saturating_add(self.io.clock_offset_ms.unwrap_or(0))).unwrap_or(0)
    }

    fn drive<C: FnMut() -> u64>(
        &mut self,
        private: bool,
        clock: &mut C,
        queue: &mut VecDeque<LiveRecord>,
        rep: &mut Reported,
        f: impl FnOnce(&mut WsConn, &mut GwSink<'_, C>),
    ) {
        let (conn, link) = if private {
            match self.private.as_mut() {
                Some(c) => (c, None),
                None => return,
            }
        } else {
            (&mut self.conn, Some(&mut self.link))
        };
        let mut sink = GwSink {
            clock: &mut *clock,
            queue: &mut *queue,
            outstanding: &mut self.outstanding,
            link,
            rep,
        };
        f(conn, &mut sink);
    }

    /// Carries out what the link asks for and what the connections reported.
    fn obey<C: FnMut() -> u64>(
        &mut self,
        registry: &Registry,
        clock: &mut C,
        queue: &mut VecDeque<LiveRecord>,
        mut rep: Reported,
        wake: &(impl Fn() + Send + Clone + 'static),
    ) {
        loop {
            for (recv, v) in std::mem::take(&mut rep.own) {
                self.on_own(registry, recv, &v, queue, wake);
            }
            for e in std::mem::take(&mut rep.private) {
                self.on_private(registry, e, queue);
            }
            let Some(action) = rep.todo.pop_front().or_else(|| self.link.poll_action()) else {
                break;
            };
            match action {
                LinkAction::Connect => {
                    let wake = wake.clone();
                    self.drive(false, clock, queue, &mut rep, |c, s| {
                        c.connect(registry, s, wake)
                    });
                }
                LinkAction::SendPing => {
                    self.drive(false, clock, queue, &mut rep, |c, s| {
                        c.send_ping(registry, s)
                    });
                }
                LinkAction::Close { .. } => self.conn.abort(registry),
                LinkAction::Journal {
                    at,
                    event: LinkEvent::Up,
                } => {
                    self.io.connects += 1;
                    self.session = Session::default();
                    Self::event(queue, at, &GatewayEvent::Up);
                    self.start_session(at, queue);
                }
                LinkAction::Journal {
                    at,
                    event: LinkEvent::Down { reason },
                } => {
                    self.outstanding.clear();
                    self.session = Session::default();
                    if let Some(mut p) = self.private.take() {
                        p.abort(registry);
                    }
                    self.private_retry_at = u64::MAX;
                    Self::event(
                        queue,
                        at,
                        &GatewayEvent::Down {
                            reason: reason.clone(),
                        },
                    );
                    self.io.last_down = reason;
                }
                LinkAction::Journal { .. } | LinkAction::CancelSnapshots => {}
            }
        }
    }

    /// A fresh connection: measure the clock, log on, ask for user data.
    fn start_session(&mut self, now: u64, queue: &mut VecDeque<LiveRecord>) {
        self.measure_time(now, queue);
        let ed = self
            .cfg
            .credentials
            .as_deref()
            .is_some_and(|c| c.kind() == KeyKind::Ed25519);
        // `session.logon` is documented for the spot WebSocket API (Ed25519 keys only); the
        // futures APIs get every request signed, with either kind of key.
        if ed && !self.futures() {
            // One signed logon, then requests carry no key or signature.
            self.own_request(now, "session.logon", "", Auth::Signed, queue);
        } else {
            self.ask_user_data(now, queue);
        }
    }

    fn measure_time(&mut self, now: u64, queue: &mut VecDeque<LiveRecord>) {
        if let Some(id) = self.own_request(now, "time", "", Auth::None, queue) {
            self.session.time_sent = Some((id, now));
        }
        self.session.next_time_sync = if self.cfg.time_sync_ns > 0 {
            now.saturating_add(self.cfg.time_sync_ns)
        } else {
            u64::MAX
        };
    }

    fn ask_user_data(&mut self, now: u64, queue: &mut VecDeque<LiveRecord>) {
        self.session.asked_user_data = true;
        if self.futures() {
            let auth = if self.session.logged_on {
                Auth::None
            } else {
                Auth::ApiKey
            };
            self.own_request(now, "userDataStream.start", "", auth, queue);
        } else if self.session.logged_on || self.cfg.credentials.is_none() {
            self.own_request(now, "userDataStream.subscribe", "", Auth::None, queue);
        } else {
            self.own_request(
                now,
                "userDataStream.subscribe.signature",
                "",
                Auth::Signed,
                queue,
            );
        }
    }

    fn ready(&mut self, now: u64, queue: &mut VecDeque<LiveRecord>) {
        if !self.session.ready {
            self.session.ready = true;
            Self::event(queue, now, &GatewayEvent::Ready);
        }
    }

    /// A frame answering one of the gateway's own requests, or a venue event it acts on.
    fn on_own(
        &mut self,
        registry: &Registry,
        recv: u64,
        v: &Value,
        queue: &mut VecDeque<LiveRecord>,
        wake: &(impl Fn() + Send + Clone + 'static),
    ) {
        let _ = wake;
        let inner = v.get("data").or_else(|| v.get("event")).unwrap_or(v);
        if inner.get("e").and_then(Value::as_str) == Some("listenKeyExpired") {
            // The desk reconciles on the journaled frame; the gateway gets a new key.
            if let Some(mut p) = self.private.take() {
                p.abort(registry);
            }
            // The API connection and its requests are unaffected: no `down`. `ready` comes
            // again with the new key (and reconciles again).
            self.session.listen_key = None;
            self.session.ready = false;
            self.io.last_down = "user data: listenKeyExpired".into();
            if self.conn.is_open() {
                self.ask_user_data(recv, queue);
            }
            return;
        }
        let Some(id) = v.get("id").and_then(Value::as_str) else {
            return;
        };
        let ok = v.get("status").and_then(Value::as_u64) == Some(200);
        let method = id
            .strip_prefix("tape-")
            .and_then(|m| m.rsplit_once('-'))
            .map(|(m, _)| m);
        match method {
            Some("time") => {
                let Some((sent_id, sent)) = self.session.time_sent.take() else {
                    return;
                };
                if sent_id != id || !ok {
                    return;
                }
                if let Some(server) = v
                    .get("result")
                    .and_then(|r| r.get("serverTime"))
                    .and_then(Value::as_u64)
                {
                    let mid_ms = ((sent / 2 + recv / 2) / 1_000_000) as i64;
                    self.io.clock_offset_ms = Some(server as i64 - mid_ms);
                    self.io.clock_rtt_us = Some(recv.saturating_sub(sent) / 1_000);
                }
            }
            Some("session.logon") => {
                if ok {
                    self.session.logged_on = true;
                    self.ask_user_data(recv, queue);
                } else {
                    // Refused: every request is signed instead (the key signs either way).
                    self.io.last_down = format!(
                        "session.logon refused, signing each request: {}",
                        v.get("error").map(Value::to_string).unwrap_or_default()
                    );
                    self.ask_user_data(recv, queue);
                }
            }
            Some("userDataStream.subscribe" | "userDataStream.subscribe.signature") => {
                if ok {
                    self.ready(recv, queue);
                } else {
                    self.io.last_down = format!(
                        "user data refused: {}",
                        v.get("error").map(Value::to_string).unwrap_or_default()
                    );
                }
            }
            Some("userDataStream.start") => {
                let key = v
                    .get("result")
                    .and_then(|r| r.get("listenKey"))
                    .and_then(Value::as_str);
                match (ok, key) {
                    (true, Some(key))
                        if key.len() <= 256 && key.bytes().all(|b| b.is_ascii_alphanumeric()) =>
                    {
                        self.io.listen_keys += 1;
                        self.session.listen_key = Some(key.to_owned());
                        self.session.next_key_ping =
                            recv.saturating_add(self.cfg.listen_key_ping_ns.max(1));
                        self.open_private(registry, recv, queue);
                    }
                    _ => {
                        self.io.last_down = format!(
                            "userDataStream.start refused: {}",
                            v.get("error").map(Value::to_string).unwrap_or_default()
                        );
                    }
                }
            }
            _ => {}
        }
    }

    /// Opens the user-data connection for the listenKey held.
    fn open_private(&mut self, registry: &Registry, now: u64, queue: &mut VecDeque<LiveRecord>) {
        let (Some(base), Some(key)) = (
            self.cfg.user_data_url.as_deref(),
            self.session.listen_key.as_deref(),
        ) else {
            self.io.last_down = "no user_data_url for the listenKey stream".into();
            return;
        };
        let url = user_data_url(base, key);
        let Ok(parsed) = WsUrl::parse(&url) else {
            return;
        };
        if let Some(mut p) = self.private.take() {
            p.abort(registry);
        }
        self.private = Some(WsConn::new(parsed, self.private_token, self.opts.clone()));
        self.private_retry_at = u64::MAX;
        let mut rep = Reported::default();
        let mut clock = || now;
        self.drive(true, &mut clock, queue, &mut rep, |c, s| {
            c.connect(registry, s, || {})
        });
        for e in rep.private {
            self.on_private(registry, e, queue);
        }
    }

    fn on_private(
        &mut self,
        registry: &Registry,
        e: PrivateEvent,
        queue: &mut VecDeque<LiveRecord>,
    ) {
        match e {
            PrivateEvent::Opened(now) => self.ready(now, queue),
            PrivateEvent::Lost(now, reason) => {
                if let Some(mut p) = self.private.take() {
                    p.abort(registry);
                }
                // Requests on the API connection are unaffected; events may be missed until
                // the stream is back, when `ready` makes the desk reconcile.
                self.session.ready = false;
                self.io.last_down = format!("user data: {reason}");
                let _ = queue;
                // Ask for the key again after a pause, then reconnect.
                self.private_retry_at = now.saturating_add(PRIVATE_RETRY_NS);
            }
        }
    }

    /// Connects when due (at once the first time, then after the backoff), and runs the
    /// timers: the link's, clock sync, listenKey keep-alive, request timeouts.
    pub(crate) fn poll<C: FnMut() -> u64>(
        &mut self,
        registry: &Registry,
        now: u64,
        clock: &mut C,
        queue: &mut VecDeque<LiveRecord>,
        wake: impl Fn() + Send + Clone + 'static,
    ) {
        if !self.started {
            self.started = true;
            self.link.start(clock());
        } else if self.link.poll_timeout().is_some_and(|t| now >= t) {
            self.link.handle_timeout(clock());
        }
        if self.conn.is_open() {
            if now >= self.session.next_time_sync {
                self.measure_time(now, queue);
            }
            if self.session.listen_key.is_some() && now >= self.session.next_key_ping {
                self.session.next_key_ping = now.saturating_add(self.cfg.listen_key_ping_ns.max(1));
                let auth = if self.session.logged_on {
                    Auth::None
                } else {
                    Auth::ApiKey
                };
                self.own_request(now, "userDataStream.ping", "", auth, queue);
            }
            if now >= self.private_retry_at {
                // `userDataStream.start` again: the same key while it is valid, a new one
                // if it expired unnoticed; its answer opens the stream.
                self.private_retry_at = u64::MAX;
                self.session.listen_key = None;
                self.ask_user_data(now, queue);
            }
        }
        let timeout = self.cfg.request_timeout_ns;
        if timeout > 0 {
            let late: Vec<u64> = self
                .outstanding
                .iter()
                .filter(|(_, &at)| now >= at.saturating_add(timeout))
                .map(|(id, _)| *id)
                .collect();
            for id in late {
                self.outstanding.remove(&id);
                self.io.timeouts += 1;
                Self::event(queue, now, &GatewayEvent::Timeout { id });
            }
        }
        self.obey(registry, clock, queue, Reported::default(), &wake);
    }

    /// Readiness on one of the gateway's tokens.
    pub(crate) fn progress<C: FnMut() -> u64>(
        &mut self,
        registry: &Registry,
        token: Option<Token>,
        clock: &mut C,
        queue: &mut VecDeque<LiveRecord>,
        wake: impl Fn() + Send + Clone + 'static,
    ) {
        let mut rep = Reported::default();
        let private = token.is_none_or(|t| t == self.private_token);
        let api = token.is_none_or(|t| t != self.private_token);
        if api {
            self.drive(false, clock, queue, &mut rep, |c, s| {
                c.progress(registry, s)
            });
        }
        if private {
            self.drive(true, clock, queue, &mut rep, |c, s| c.progress(registry, s));
        }
        self.obey(registry, clock, queue, rep, &wake);
    }

    /// Signs and writes one request of the desk; a failure is answered at once with a
    /// journaled error response. In dry run an `order.place` is signed and journaled only.
    pub(crate) fn send(&mut self, now: u64, json: &str, queue: &mut VecDeque<LiveRecord>) {
        let id = request_id(json);
        let method = request_method(json).unwrap_or("");
        let auth = match (&self.cfg.credentials, self.session.logged_on) {
            (None, _) => Auth::None,
            (Some(_), true) => Auth::Session,
            (Some(_), false) => Auth::Signed,
        };
        let dry =
            self.cfg.dry_run && (method == "order.place" || method.starts_with("orderList.place"));
        let res = sign(
            json,
            auth,
            self.cfg.credentials.as_deref(),
            self.timestamp_ms(now),
            self.cfg.recv_window_ms,
        )
        .and_then(|signed| {
            if dry {
                self.io.dry_run_orders += 1;
                Self::event(
                    queue,
                    now,
                    &GatewayEvent::Sent {
                        request: signed.journal,
                        dry_run: true,
                    },
                );
                return Ok(false);
            }
            self.conn.send_text(&signed.wire)?;
            Self::event(
                queue,
                now,
                &GatewayEvent::Sent {
                    request: signed.journal,
                    dry_run: false,
                },
            );
            Ok(true)
        });
        match (res, id) {
            (Ok(true), Some(id)) => {
                self.io.sent += 1;
                self.outstanding.insert(id, now);
            }
            (Ok(true), None) => self.io.sent += 1,
            (Ok(false), _) => {}
            (Err(reason), Some(id)) => {
                self.io.failed += 1;
                queue.push_back(LiveRecord {
                    recv: now,
                    source: GATEWAY_SOURCE,
                    kind: RecordKind::GatewayFrame as u16,
                    payload: failure(id, &reason),
                });
            }
            (Err(_), None) => self.io.failed += 1,
        }
    }

    /// Stopping with `cancel_on_shutdown`: tells the desk (a journaled `shutdown` event);
    /// true when the gateway is ready, so the cancels can go out.
    pub(crate) fn begin_stop(&mut self, now: u64, queue: &mut VecDeque<LiveRecord>) -> bool {
        if !self.cfg.cancel_on_shutdown || !self.session.ready || !self.conn.is_open() {
            return false;
        }
        Self::event(queue, now, &GatewayEvent::Shutdown);
        true
    }

    /// Requests written and not answered yet.
    pub(crate) fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    /// Shutdown: close frames, then the sockets go; requests still outstanding get no
    /// answer (the node is stopping).
    pub(crate) fn close<C: FnMut() -> u64>(&mut self, registry: &Registry, clock: &mut C) {
        self.started = true;
        if let Some(mut p) = self.private.take() {
            p.send_close_frame();
            p.abort(registry);
        }
        self.conn.send_close_frame();
        self.link.close(clock());
        while let Some(action) = self.link.poll_action() {
            if let LinkAction::Close { .. } = action {
                self.conn.abort(registry);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_urls() {
        assert_eq!(
            user_data_url("wss://fstream.binance.com/private/ws", "K1"),
            "wss://fstream.binance.com/private/ws?listenKey=K1"
        );
        assert_eq!(
            user_data_url("wss://h/private/ws?events=ORDER_TRADE_UPDATE", "K"),
            "wss://h/private/ws?events=ORDER_TRADE_UPDATE&listenKey=K"
        );
        assert_eq!(
            user_data_url("wss://dstream.binance.com/ws/{listenKey}", "K"),
            "wss://dstream.binance.com/ws/K"
        );
    }

    #[test]
    fn request_ids_methods_and_failures() {
        assert_eq!(request_id(r#"{"id":42,"method":"order.place"}"#), Some(42));
        assert_eq!(request_id(r#"{"id":"x"}"#), None);
        assert_eq!(request_id("garbage"), None);
        assert_eq!(
            request_method(r#"{"id":42,"method":"order.place","params":{}}"#),
            Some("order.place")
        );
        assert_eq!(request_method(r#"{"id":42}"#), None);
        let f: serde_json::Value =
            serde_json::from_slice(&failure(7, "not \"connected\"")).unwrap();
        assert_eq!(f["id"], 7);
        assert_eq!(f["status"], 503);
        assert!(f["error"]["msg"]
            .as_str()
            .unwrap()
            .contains("not \"connected\""));
    }
}
