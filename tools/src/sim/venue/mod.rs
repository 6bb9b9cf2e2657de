//! The sim thread's event loop: listeners and their stream clients, the paced timeline, the
//! sim's own engine (for snapshots), pings and connection limits.
//!
//! - `requests`: what clients ask (WebSocket subscription requests, HTTP endpoints).
//! - `api`: the WebSocket API (orders, user data) on top of [`crate::sim::orders`].
//! - `faults`: applying a [`Fault`].

use std::collections::BTreeMap;
use std::mem;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use crossbeam_channel::{Receiver, TryRecvError};
use mio::{Events, Poll, Registry, Token};
use tape_core::engine::{Engine, EngineConfig};
use tape_core::input::{Nanos, SourceId};
use tape_core::instrument::Market;
use tape_node::live::Endpoint;
use tape_node::net::{NetEvent, NetServer, SendResult, SocketId};
use tungstenite::Utf8Bytes;

mod api;
mod auth;
mod faults;
mod limits;
mod listen_key;
mod queries;
mod requests;

pub(crate) use api::api_path;

use super::auth::SimAuth;
use super::fault::{Fault, ScheduledFault};
use super::limits::{Limiter, RateLimit};
use super::orders::auth::SessionAuth;
use super::orders::{Fees, SimAccount, SymbolSpec};
use super::timeline::{Body, Frame, Timeline};
use super::{SimConfig, SimStats};
use listen_key::ListenKeys;
use requests::error_reply;

/// The waker's token; listener `i` owns the tokens from [`first_token`]`(i)` on.
pub(crate) const WAKER: Token = Token(0);
/// Sockets per listener, in any phase.
pub(crate) const MAX_SOCKETS: usize = 1024;
/// Bytes a client may have unsent before it counts as too slow.
pub(crate) const WRITE_BUFFER_LIMIT: usize = 16 << 20;
/// Records handled per loop turn at most, so sockets are served during a fast replay.
const BATCH: usize = 512;
/// Longest poll wait, so connection deadlines are ticked.
const MAX_WAIT_NS: u64 = 100_000_000;
/// How long shutting down waits for close handshakes.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(1);
/// Close code for going away / restarting (Binance's 24-hour disconnect uses it too).
const GOING_AWAY: u16 = 1001;
/// Close code for a request the venue refuses.
const POLICY: u16 = 1008;
/// Largest fee rate accepted, in basis points (100%).
const MAX_FEE_BPS: i64 = 10_000;

/// A duration in ns, saturating (durations come from flags and may be absurd).
fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The first mio token of listener `i`.
pub(crate) fn first_token(i: usize) -> usize {
    1 + i * (MAX_SOCKETS + 1)
}

/// What the handle asks of the sim thread.
#[derive(Debug)]
pub(crate) enum Cmd {
    /// Apply a fault on one market (or all).
    Inject(Option<Market>, Fault),
    /// Close everything and end the thread.
    Stop,
}

/// One connection: a stream client, or a WebSocket API session (`api` is `Some`).
struct Client {
    /// A `/ws/` connection: frames go out bare, without the `{"stream":..}` wrapper.
    raw: bool,
    /// Subscribed stream names, as given.
    names: Vec<String>,
    /// Their keys, for the ones any frame in the timeline has and this connection delivers.
    keys: Vec<u32>,
    /// A USD-M stream connection's endpoint class (`/public`, `/market`; a legacy path without
    /// one is `/public`): only its streams are delivered. `None` elsewhere: all are.
    route: Option<Endpoint>,
    opened_ns: u64,
    /// Frames were queued since the last flush.
    touched: bool,
    /// `Some` for a WebSocket API connection, which has no streams.
    api: Option<ApiSession>,
}

/// A WebSocket API connection's state.
#[derive(Debug, Clone, Copy, Default)]
struct ApiSession {
    /// Its user-data subscription, once `userDataStream.subscribe` was called.
    subscription: Option<u64>,
    /// Its logon (`session.logon`) and when it connected.
    auth: SessionAuth,
}

/// One market's port.
struct Listener {
    market: Market,
    net: NetServer,
    clients: BTreeMap<SocketId, Client>,
    /// `truncate`: cut the next frame sent on this listener.
    truncate_next: bool,
    /// `refuse-snapshot`: depth requests still to refuse.
    refuse_left: u32,
    /// The sim account behind this listener's WebSocket API.
    account: SimAccount,
    /// The listener's event time, ms: the latest `E` of its depth frames so far (the
    /// journal's start before the first), so user-data events follow the timeline.
    clock_ms: u64,
    /// Next user-data subscription id.
    next_subscription: u64,
    /// Futures: the account's listen key and its `/private` connections.
    keys: ListenKeys,
    /// The WebSocket API's rate limits.
    limiter: Limiter,
    /// `mute-api`: requests still to carry out without answering.
    mute_left: u32,
}

/// Where the timeline is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the first stream client.
    Waiting,
    /// Playing; the first record was due at `epoch_ns`.
    Running { epoch_ns: u64 },
    /// The journal ended and does not repeat.
    Ended,
}

/// The sim thread's whole state; [`Venue::run`] owns it until the handle says stop.
pub(crate) struct Venue {
    poll: Poll,
    rx: Receiver<Cmd>,
    base: Instant,
    speed: u32,
    repeat: bool,
    start_on_connect: bool,
    schedule: Vec<ScheduledFault>,
    ping_ns: u64,
    max_age_ns: Option<u64>,
    tl: Timeline,
    /// Per symbol of the timeline: what the order API needs to know.
    specs: Vec<SymbolSpec>,
    listeners: Vec<Listener>,
    engine: Engine,
    phase: Phase,
    /// Index of the next record.
    pos: usize,
    /// Index of the next scheduled fault.
    next_fault: usize,
    /// Per symbol: depth frames still to withhold (`gap`).
    gap_left: Vec<u32>,
    /// Per symbol: `E` of the last depth frame handled.
    last_depth_ms: Vec<u64>,
    /// Nothing is sent before this (`stall`); also the floor of every client's liveness.
    stall_until: u64,
    next_ping: u64,
    stats: SimStats,
    shared: Arc<Mutex<SimStats>>,
    out: Vec<NetEvent>,
    /// Who may use the WebSocket API (`auth`).
    auth: SimAuth,
}

fn new_engine() -> Result<Engine> {
    Engine::new(EngineConfig {
        derive_tickers: false,
        ..EngineConfig::default()
    })
    .map_err(|e| anyhow::anyhow!("sim engine: {e}"))
}

impl Venue {
    pub(crate) fn new(
        cfg: &SimConfig,
        tl: Timeline,
        poll: Poll,
        nets: Vec<NetServer>,
        rx: Receiver<Cmd>,
        shared: Arc<Mutex<SimStats>>,
    ) -> Result<Venue> {
        let fees = Fees {
            taker_bps: cfg.taker_fee_bps,
            maker_bps: cfg.maker_fee_bps,
        };
        for bps in [fees.taker_bps, fees.maker_bps] {
            if !(-MAX_FEE_BPS..=MAX_FEE_BPS).contains(&bps) {
                anyhow::bail!("fee of {bps} bps is outside -{MAX_FEE_BPS}..={MAX_FEE_BPS}");
            }
        }
        let first_ms = tl.first_ns / 1_000_000;
        let listeners = tl
            .markets
            .iter()
            .zip(nets)
            .map(|(&market, net)| Listener {
                market,
                net,
                clients: BTreeMap::new(),
                truncate_next: false,
                refuse_left: 0,
                account: SimAccount::new(market, fees),
                clock_ms: first_ms,
                next_subscription: 0,
                keys: ListenKeys::new(ns(cfg.listen_key_validity)),
                limiter: Limiter::new(
                    cfg.rate_limits
                        .clone()
                        .unwrap_or_else(|| RateLimit::binance(market)),
                    u64::try_from(cfg.ip_ban.as_millis()).unwrap_or(u64::MAX),
                ),
                mute_left: 0,
            })
            .collect();
        let specs = tl
            .symbols
            .iter()
            .map(|s| SymbolSpec::new(&s.name, s.scales))
            .collect();
        let mut schedule = cfg.faults.clone();
        schedule.sort_by_key(|f| f.at);
        let ping_ns = ns(cfg.ping_interval).max(1_000_000);
        let symbols = tl.symbols.len();
        let mut venue = Venue {
            poll,
            rx,
            base: Instant::now(),
            speed: cfg.speed,
            repeat: cfg.repeat,
            start_on_connect: cfg.start_on_connect,
            schedule,
            ping_ns,
            max_age_ns: cfg.max_connection_age.map(ns),
            stats: SimStats {
                records: tl.records.len() as u64,
                ..SimStats::default()
            },
            tl,
            specs,
            listeners,
            engine: new_engine()?,
            phase: Phase::Waiting,
            pos: 0,
            next_fault: 0,
            gap_left: vec![0; symbols],
            last_depth_ms: vec![0; symbols],
            stall_until: 0,
            next_ping: ping_ns,
            shared,
            out: Vec::new(),
            auth: cfg.auth.clone(),
        };
        if !venue.start_on_connect {
            venue.start_pass(0);
        }
        venue.publish();
        Ok(venue)
    }

    fn now(&self) -> u64 {
        ns(self.base.elapsed())
    }

    /// Runs until [`Cmd::Stop`] (or the handle is gone).
    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            let wait = self.wait(self.now());
            if let Err(e) = self.poll.poll(&mut events, Some(wait)) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    self.stats.error = Some(format!("poll: {e}"));
                    self.publish();
                    break;
                }
            }
            let now = self.now();
            for ev in events.iter() {
                let Some(li) = self.listeners.iter().position(|l| l.net.owns(ev.token())) else {
                    continue;
                };
                let reg = self.poll.registry();
                self.listeners[li]
                    .net
                    .handle_event(reg, ev, now, &mut self.out);
                self.drain_net(li, now);
            }
            for li in 0..self.listeners.len() {
                let reg = self.poll.registry();
                self.listeners[li].net.tick(reg, now, &mut self.out);
                self.drain_net(li, now);
            }
            loop {
                match self.rx.try_recv() {
                    Ok(Cmd::Inject(market, fault)) => self.apply(market, fault, now),
                    Ok(Cmd::Stop) | Err(TryRecvError::Disconnected) => {
                        self.shutdown();
                        return;
                    }
                    Err(TryRecvError::Empty) => break,
                }
            }
            self.advance(now);
            self.housekeeping(now);
            self.publish();
        }
        self.shutdown();
    }

    /// How long the next poll may block.
    fn wait(&self, now: u64) -> Duration {
        let mut next = now.saturating_add(MAX_WAIT_NS).min(self.next_ping);
        if let Some(max) = self.max_age_ns {
            for c in self.listeners.iter().flat_map(|l| l.clients.values()) {
                next = next.min(c.opened_ns.saturating_add(max));
            }
        }
        if let (Phase::Running { epoch_ns }, Some(rec)) =
            (self.phase, self.tl.records.get(self.pos))
        {
            if now < self.stall_until {
                next = next.min(self.stall_until);
            } else if self.speed == 0 {
                // As fast as the clients read: on at once unless a client is still writing,
                // whose `Writable` wakes the poll.
                if !self.write_pending() {
                    next = now;
                }
            } else {
                next = next.min(self.due(epoch_ns, rec.recv_ns));
            }
        }
        Duration::from_nanos(next.saturating_sub(now))
    }

    /// When a record recorded at `recv_ns` is due.
    fn due(&self, epoch_ns: u64, recv_ns: u64) -> u64 {
        let offset = recv_ns.saturating_sub(self.tl.first_ns);
        epoch_ns.saturating_add(offset / u64::from(self.speed.max(1)))
    }

    fn write_pending(&self) -> bool {
        self.listeners
            .iter()
            .any(|l| l.clients.keys().any(|id| l.net.write_pending(*id)))
    }

    fn drain_net(&mut self, li: usize, now: u64) {
        let mut evs = mem::take(&mut self.out);
        for ev in evs.drain(..) {
            self.on_net_event(li, ev, now);
        }
        self.out = evs;
    }

    fn on_net_event(&mut self, li: usize, ev: NetEvent, now: u64) {
        match ev {
            NetEvent::Open {
                conn, path, query, ..
            } => self.on_open(li, conn, &path, &query, now),
            NetEvent::Text { conn, text } => self.on_text(li, conn, text.as_str()),
            NetEvent::Binary { conn, .. } if self.is_api(li, conn) => self.on_api_binary(li, conn),
            NetEvent::Binary { conn, .. } => {
                self.stats.bad_requests += 1;
                let reply = error_reply(3, "Invalid JSON: binary frame", &serde_json::Value::Null);
                let reg = self.poll.registry();
                self.listeners[li].net.send(reg, conn, reply.into());
            }
            NetEvent::Closed { conn, .. } => {
                self.listeners[li].clients.remove(&conn);
            }
            NetEvent::Writable { .. } => {}
            NetEvent::Http {
                conn,
                method,
                path,
                query,
                ..
            } => {
                let reply = self.route(li, &method, &path, &query, now);
                if reply.status >= 400 && reply.status != 503 {
                    self.stats.bad_requests += 1;
                }
                let headers: &[(&str, &str)] = if reply.retry_after {
                    &[("Retry-After", "1")]
                } else {
                    &[]
                };
                let reg = self.poll.registry();
                self.listeners[li].net.respond_http_with(
                    reg,
                    conn,
                    reply.status,
                    reply.content_type,
                    headers,
                    reply.body.as_bytes(),
                );
            }
        }
    }

    fn start_pass(&mut self, now: u64) {
        self.phase = Phase::Running { epoch_ns: now };
        self.stats.passes += 1;
        self.stats.finished = false;
    }

    /// Hands every record that is due to the engine and its frames to the subscribers.
    fn advance(&mut self, now: u64) {
        let Phase::Running { epoch_ns } = self.phase else {
            return;
        };
        if now < self.stall_until || (self.speed == 0 && self.write_pending()) {
            return;
        }
        let mut handled = 0;
        while handled < BATCH && self.pos < self.tl.records.len() {
            let recv_ns = self.tl.records[self.pos].recv_ns;
            if self.speed > 0 && self.due(epoch_ns, recv_ns) > now {
                break;
            }
            let offset = recv_ns.saturating_sub(self.tl.first_ns);
            while let Some(f) = self
                .schedule
                .get(self.next_fault)
                .filter(|f| ns(f.at) <= offset)
                .copied()
            {
                self.next_fault += 1;
                self.apply(f.market, f.fault, now);
            }
            if now < self.stall_until {
                break;
            }
            self.step();
            self.pos += 1;
            self.stats.offset_ms = offset / 1_000_000;
            handled += 1;
        }
        self.flush_clients();
        if self.pos == self.tl.records.len() {
            self.end_pass(now);
        }
    }

    /// The record at `pos`: into the engine, then (a frame) out to its subscribers.
    fn step(&mut self) {
        let rec = &self.tl.records[self.pos];
        let payload: &[u8] = match &rec.body {
            Body::Frame(f) => f.wire.as_bytes(),
            Body::Other(bytes) => bytes,
        };
        let depth = match &rec.body {
            Body::Frame(f) => f.depth.map(|(sym, e)| (f.market, sym, e)),
            Body::Other(_) => None,
        };
        if self
            .engine
            .handle_stored(Nanos(rec.recv_ns), SourceId(rec.source), rec.kind, payload)
            .is_err()
        {
            self.stats.engine_errors += 1;
        }
        while self.engine.poll_output().is_some() {}
        // The simulator serves snapshots itself; the engine's wishes go nowhere.
        while self.engine.poll_venue_command().is_some() {}
        if let Some((market, sym, event_ms)) = depth {
            self.on_depth(market, sym, event_ms);
        }
        let rec = &self.tl.records[self.pos];
        let Body::Frame(frame) = &rec.body else {
            return;
        };
        if let Some((sym, event_ms)) = frame.depth {
            let sym = sym as usize;
            self.last_depth_ms[sym] = event_ms;
            if self.gap_left[sym] > 0 {
                self.gap_left[sym] -= 1;
                self.stats.frames_withheld += 1;
                return;
            }
        }
        let reg = self.poll.registry();
        if let Some(l) = self.listeners.iter_mut().find(|l| l.market == frame.market) {
            emit(reg, l, frame, &mut self.stats);
        }
    }

    /// Writes what [`emit`] queued, one flush per client.
    fn flush_clients(&mut self) {
        let reg = self.poll.registry();
        for l in &mut self.listeners {
            let mut gone = Vec::new();
            for (id, c) in l.clients.iter_mut().filter(|(_, c)| c.touched) {
                c.touched = false;
                if l.net.flush(reg, *id) == SendResult::Closed {
                    gone.push(*id);
                }
            }
            for id in gone {
                l.clients.remove(&id);
            }
        }
    }

    fn end_pass(&mut self, now: u64) {
        if !self.repeat {
            self.phase = Phase::Ended;
            self.stats.finished = true;
            return;
        }
        let reg = self.poll.registry();
        for l in &mut self.listeners {
            for id in mem::take(&mut l.clients).into_keys() {
                l.net.close(reg, id, GOING_AWAY, "venue restarting");
            }
            l.truncate_next = false;
            l.account.reset();
            l.clock_ms = self.tl.first_ns / 1_000_000;
        }
        match new_engine() {
            Ok(engine) => self.engine = engine,
            Err(e) => self.stats.error = Some(e.to_string()),
        }
        self.pos = 0;
        self.next_fault = 0;
        self.gap_left.fill(0);
        self.last_depth_ms.fill(0);
        self.phase = Phase::Waiting;
        if !self.start_on_connect {
            self.start_pass(now);
        }
    }

    /// Connection age limit, pings, and dropping clients that stopped answering them.
    fn housekeeping(&mut self, now: u64) {
        self.expire_listen_keys(now);
        let reg = self.poll.registry();
        if let Some(max) = self.max_age_ns {
            for l in &mut self.listeners {
                let old: Vec<SocketId> = l
                    .clients
                    .iter()
                    .filter(|(_, c)| now.saturating_sub(c.opened_ns) >= max)
                    .map(|(id, _)| *id)
                    .collect();
                for id in old {
                    l.clients.remove(&id);
                    l.net.close(reg, id, GOING_AWAY, "connection age limit");
                    self.stats.clients_aged_out += 1;
                }
            }
        }
        if now < self.next_ping {
            return;
        }
        self.next_ping = now.saturating_add(self.ping_ns);
        if now < self.stall_until {
            return; // a stall sends nothing, pings included
        }
        let silent_limit = self.ping_ns.saturating_mul(3);
        for l in &mut self.listeners {
            let mut silent = Vec::new();
            for (id, c) in &l.clients {
                let heard = l
                    .net
                    .last_heard(*id)
                    .unwrap_or(0)
                    .max(c.opened_ns)
                    .max(self.stall_until);
                if now.saturating_sub(heard) > silent_limit {
                    silent.push(*id);
                } else {
                    l.net.ping(reg, *id);
                }
            }
            for id in silent {
                l.clients.remove(&id);
                l.net.abort(reg, id);
                self.stats.clients_silent += 1;
            }
        }
    }

    fn publish(&mut self) {
        self.refresh_stats();
        if let Ok(mut s) = self.shared.lock() {
            s.clone_from(&self.stats);
        }
    }

    /// Brings the counters that are kept elsewhere (position, clients, the accounts') up to date.
    fn refresh_stats(&mut self) {
        self.stats.position = self.pos as u64;
        let (mut streams, mut api) = (0, 0);
        for c in self.listeners.iter().flat_map(|l| l.clients.values()) {
            if c.api.is_some() {
                api += 1;
            } else {
                streams += 1;
            }
        }
        self.stats.clients = streams;
        self.stats.api_clients = api;
        self.stats.private_clients = self
            .listeners
            .iter()
            .map(|l| {
                l.keys
                    .conn_ids()
                    .filter(|c| l.clients.contains_key(c))
                    .count() as u64
            })
            .sum();
        self.stats.orders_placed = self.listeners.iter().map(|l| l.account.placed).sum();
        self.stats.fills = self.listeners.iter().map(|l| l.account.fills).sum();
    }

    /// Closes everything (1001) and waits, bounded, for the close handshakes.
    fn shutdown(&mut self) {
        let reg = self.poll.registry();
        for l in &mut self.listeners {
            l.clients.clear();
            l.net.shutdown(reg);
        }
        let deadline = Instant::now() + SHUTDOWN_WAIT;
        let mut events = Events::with_capacity(256);
        while Instant::now() < deadline
            && self.listeners.iter().any(|l| l.net.connection_count() > 0)
        {
            if self
                .poll
                .poll(&mut events, Some(Duration::from_millis(20)))
                .is_err()
            {
                break;
            }
            let now = self.now();
            let reg = self.poll.registry();
            for l in &mut self.listeners {
                for ev in events.iter() {
                    if l.net.owns(ev.token()) {
                        l.net.handle_event(reg, ev, now, &mut self.out);
                    }
                }
                l.net.tick(reg, now, &mut self.out);
            }
            self.out.clear();
        }
        self.publish();
    }
}

/// Queues `frame` to every subscriber on `l` (not flushed): wrapped for combined streams, bare
/// for `/ws/` streams, cut in half if a `truncate` is pending.
fn emit(reg: &Registry, l: &mut Listener, frame: &Frame, stats: &mut SimStats) {
    let truncate = l.truncate_next;
    let (mut wire, mut bare) = (None::<Utf8Bytes>, None::<Utf8Bytes>);
    let mut gone = Vec::new();
    for (id, c) in l.clients.iter_mut() {
        if !c.keys.contains(&frame.key) {
            continue;
        }
        let msg = if c.raw {
            bare.get_or_insert_with(|| {
                let data = &frame.wire[frame.data.clone()];
                if truncate {
                    half(data)
                } else {
                    Utf8Bytes::from(data)
                }
            })
            .clone()
        } else {
            wire.get_or_insert_with(|| {
                if truncate {
                    half(&frame.wire)
                } else {
                    frame.wire.clone()
                }
            })
            .clone()
        };
        match l.net.queue(reg, *id, msg) {
            SendResult::Sent | SendResult::Buffered => {
                c.touched = true;
                stats.frames_sent += 1;
            }
            SendResult::Refused => gone.push((*id, true)),
            SendResult::Closed => gone.push((*id, false)),
        }
    }
    if truncate && (wire.is_some() || bare.is_some()) {
        l.truncate_next = false;
        stats.frames_truncated += 1;
    }
    for (id, slow) in gone {
        l.clients.remove(&id);
        if slow {
            l.net.close(reg, id, POLICY, "slow consumer");
            stats.clients_slow += 1;
        }
    }
}

/// The first half of `s`, cut on a character boundary.
fn half(s: &str) -> Utf8Bytes {
    let mut n = s.len() / 2;
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    Utf8Bytes::from(&s[..n])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_cut_on_char_boundaries() {
        assert_eq!(half("abcd").as_str(), "ab");
        assert_eq!(half("aé").as_str(), "a");
        assert_eq!(half("").as_str(), "");
    }
}
