//! Every configured venue connection, their reconnects, and their REST snapshots, as one
//! feed of journal records for the node loop.
//!
//! [`LiveFeed`] owns the WebSocket connections (mio sources on the engine's `Poll`), the
//! snapshot helper thread, a [`mio::Waker`] that helper threads use to wake a blocking poll,
//! and a queue of records ready for the engine. The node pops records one at a time, journals
//! each, then applies it; it reports the engine's `ResyncRequested` outputs back with
//! [`LiveFeed::want_snapshot`].

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use mio::{Registry, Token, Waker};

use super::gateway::{GatewayIo, OrderGateway};
use super::route::Endpoint;
use super::snapshot::{FetcherOptions, SnapshotFetcher, SnapshotJob};
use super::ws::{WsConn, WsOptions, WsSink, WsUrl};
use tape_core::input::{RecordKind, SourceDef};
use tape_core::instrument::Market;
use tape_core::link::{depth_url, SchedulerConfig, SnapshotRequest, SnapshotScheduler};
use tape_core::link::{Backoff, HealthyAfter, LinkAction, LinkConfig, VenueLink};
use tape_core::venue::LinkEvent;

pub use super::spec::{LiveConfig, VenueSpec};

/// One input ready for the journal and the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveRecord {
    /// Receive time, ns since the epoch.
    pub recv: u64,
    /// Source id.
    pub source: u32,
    /// Record kind.
    pub kind: u16,
    /// The bytes.
    pub payload: Vec<u8>,
}

/// io-level figures of one venue connection, for `/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VenueIo {
    /// The connection's name (its source's): the venue's, `<venue>:market` for a routed
    /// market connection.
    pub name: String,
    /// Its routed endpoint class, if routed.
    pub endpoint: Option<Endpoint>,
    /// The combined-stream URL.
    pub url: String,
    /// Frames received (all connections).
    pub frames: u64,
    /// Payload bytes received.
    pub bytes: u64,
    /// When the next attempt starts, if backing off (ns since the epoch).
    pub next_attempt_ns: Option<u64>,
    /// Snapshot requests answered with 200.
    pub snapshots_ok: u64,
    /// Snapshot requests that failed (HTTP error, network, timeout).
    pub snapshots_failed: u64,
    /// The last snapshot failure.
    pub last_snapshot_error: String,
}

/// One venue connection (a routed venue has one per endpoint class).
struct Venue {
    spec: VenueSpec,
    /// The connection's source name.
    name: String,
    endpoint: Option<Endpoint>,
    ws_source: u32,
    rest_sources: Vec<u32>,
    url: String,
    conn: WsConn,
    /// Decides what `conn` does: attempts, timeouts, pings, backoff, link records.
    link: VenueLink,
    frames_before: u64,
    bytes_before: u64,
    snapshots_ok: u64,
    snapshots_failed: u64,
    last_snapshot_error: String,
}

/// Feeds what a connection reports to its link, and the link's records to the queue at once
/// (so an `up` precedes the frames read in the same call); the link's other actions wait in
/// `todo` until the connection is free again.
struct Sink<'a, C: FnMut() -> u64> {
    clock: &'a mut C,
    queue: &'a mut VecDeque<LiveRecord>,
    source: u32,
    link: &'a mut VenueLink,
    todo: &'a mut VecDeque<LinkAction>,
}

impl<C: FnMut() -> u64> Sink<'_, C> {
    fn pump(&mut self) {
        while let Some(action) = self.link.poll_action() {
            match action {
                LinkAction::Journal { at, event } => {
                    push_link(self.queue, self.source, at, &event);
                }
                other => self.todo.push_back(other),
            }
        }
    }
}

impl<C: FnMut() -> u64> WsSink for Sink<'_, C> {
    fn now(&mut self) -> u64 {
        (self.clock)()
    }
    fn frame(&mut self, recv: u64, payload: Vec<u8>) {
        self.link.handle_frame(recv);
        self.queue.push_back(LiveRecord {
            recv,
            source: self.source,
            kind: RecordKind::WsFrame as u16,
            payload,
        });
    }
    fn opened(&mut self, now: u64) {
        self.link.handle_connected(now);
        self.pump();
    }
    fn lost(&mut self, now: u64, reason: String) {
        self.link.handle_closed(now, reason);
        self.pump();
    }
}

/// Queues a link event of `source` as a journal record.
fn push_link(queue: &mut VecDeque<LiveRecord>, source: u32, recv: u64, ev: &LinkEvent) {
    queue.push_back(LiveRecord {
        recv,
        source,
        kind: RecordKind::Link as u16,
        payload: ev.to_text().into_bytes(),
    });
}

/// The live feed: venue connections, snapshots, reconnects.
pub struct LiveFeed {
    venues: Vec<Venue>,
    first_token: usize,
    waker: Arc<Waker>,
    fetcher: SnapshotFetcher,
    scheduler: SnapshotScheduler,
    /// (market, symbol) -> (venue index, REST source id).
    rest_of: HashMap<(Market, String), (usize, u32)>,
    /// REST source id -> (venue index, snapshot URL).
    rest_url: HashMap<u32, (usize, String)>,
    queue: VecDeque<LiveRecord>,
    started: bool,
    /// The scheduler was told something since it was last polled.
    sched_dirty: bool,
    /// The order API connection, if any (token after the venues').
    gateway: Option<OrderGateway>,
}

impl std::fmt::Debug for LiveFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveFeed")
            .field("venues", &self.venues.len())
            .field("queued", &self.queue.len())
            .finish_non_exhaustive()
    }
}

impl LiveFeed {
    /// Sets up the feed: tokens from `first_token` (the waker) to `first_token + connections`
    /// (a routed venue has one per endpoint class), the snapshot thread. Nothing connects
    /// before [`LiveFeed::start`].
    ///
    /// # Errors
    /// A bad URL, or the waker/thread could not be created.
    pub fn new(
        cfg: LiveConfig,
        registry: &Registry,
        first_token: usize,
    ) -> std::io::Result<LiveFeed> {
        let waker = Arc::new(Waker::new(registry, Token(first_token))?);
        let fetcher = SnapshotFetcher::spawn(
            cfg.tls.clone(),
            FetcherOptions {
                connect_timeout: std::time::Duration::from_nanos(cfg.connect_timeout_ns),
                request_timeout: std::time::Duration::from_nanos(cfg.snapshot_timeout_ns),
                max_body_bytes: cfg.max_snapshot_bytes,
            },
            Some(waker.clone()),
        )?;
        let scheduler = SnapshotScheduler::new(SchedulerConfig {
            min_interval_ns: cfg.snapshot_min_interval_ns,
            max_in_flight_per_venue: 1,
            retry_initial_ns: cfg.snapshot_retry_ns,
            retry_max_ns: cfg.reconnect_max_ns,
            timeout_ns: cfg.snapshot_timeout_ns.saturating_add(1_000_000_000),
        });
        let opts = WsOptions {
            tls: cfg.tls.clone(),
            max_frame_bytes: cfg.max_frame_bytes,
        };
        let link_config = LinkConfig {
            connect_timeout_ns: cfg.connect_timeout_ns,
            ping_after_ns: cfg.stall_timeout_ns / 3,
            stall_timeout_ns: cfg.stall_timeout_ns,
            // A connection that stayed up and busy for the backoff cap earns a fresh start.
            healthy_after: HealthyAfter {
                up_ns: cfg.reconnect_max_ns.max(cfg.reconnect_initial_ns).max(1),
                needs_data: true,
            },
        };
        let mut venues = Vec::with_capacity(cfg.venues.len());
        let (mut rest_of, mut rest_url) = (HashMap::new(), HashMap::new());
        let mut next_source = 0u32;
        for spec in cfg.venues {
            let conns = spec.connections();
            // The books' snapshots belong to the connection with the depth streams (the
            // first, if none has any): its link alone decides when they may be fetched.
            let book_conn = conns.iter().position(|c| c.depth).unwrap_or(0);
            for (ci, c) in conns.into_iter().enumerate() {
                let i = venues.len();
                let parsed = WsUrl::parse(&c.url).map_err(std::io::Error::other)?;
                let ws_source = next_source;
                next_source += 1;
                let mut rest_sources = Vec::new();
                if ci == book_conn {
                    for sym in &spec.symbols {
                        rest_of.insert((spec.market, sym.clone()), (i, next_source));
                        let u = depth_url(spec.market, &spec.rest_url, sym, spec.snapshot_limit);
                        rest_url.insert(next_source, (i, u));
                        rest_sources.push(next_source);
                        next_source += 1;
                    }
                }
                let backoff = Backoff::new(
                    cfg.reconnect_initial_ns,
                    cfg.reconnect_max_ns,
                    cfg.jitter_seed.wrapping_add(i as u64),
                );
                venues.push(Venue {
                    conn: WsConn::new(parsed, Token(first_token + 1 + i), opts.clone()),
                    link: VenueLink::new(c.url.clone(), link_config, backoff),
                    spec: spec.clone(),
                    name: c.name,
                    endpoint: c.endpoint,
                    ws_source,
                    rest_sources,
                    url: c.url,
                    frames_before: 0,
                    bytes_before: 0,
                    snapshots_ok: 0,
                    snapshots_failed: 0,
                    last_snapshot_error: String::new(),
                });
            }
        }
        let gateway = match &cfg.gateway_url {
            Some(url) => Some(
                OrderGateway::new(
                    url,
                    Token(first_token + 1 + venues.len()),
                    opts.clone(),
                    LinkConfig {
                        // An order connection is quiet by nature: ping it, never call it
                        // stalled; every connection that opens starts the backoff over.
                        ping_after_ns: 10_000_000_000,
                        stall_timeout_ns: u64::MAX / 4,
                        healthy_after: HealthyAfter {
                            up_ns: 0,
                            needs_data: false,
                        },
                        ..link_config
                    },
                    Backoff::new(
                        cfg.reconnect_initial_ns,
                        cfg.reconnect_max_ns,
                        cfg.jitter_seed.wrapping_add(u64::from(u32::MAX)),
                    ),
                    cfg.gateway.clone(),
                )
                .map_err(|e| std::io::Error::other(format!("gateway_url: {e}")))?,
            ),
            None => None,
        };
        Ok(LiveFeed {
            gateway,
            venues,
            first_token,
            waker,
            fetcher,
            scheduler,
            rest_of,
            rest_url,
            queue: VecDeque::new(),
            started: false,
            sched_dirty: false,
        })
    }

    /// Declares every source (the journal is self-describing) and starts every connection.
    pub fn start(&mut self, registry: &Registry, clock: &mut impl FnMut() -> u64) {
        if self.started {
            return;
        }
        self.started = true;
        let now = clock();
        let mut defs = Vec::new();
        for v in &self.venues {
            let ws = SourceDef {
                market: v.spec.market,
                symbol: None,
                scales: None,
                name: v.name.clone(),
            };
            defs.push((v.ws_source, ws));
            for (sym, src) in v.spec.symbols.iter().zip(&v.rest_sources) {
                let scales = v
                    .spec
                    .scales
                    .iter()
                    .find(|(s, ..)| s == sym)
                    .map(|(_, p, q)| (*p, *q));
                let def = SourceDef {
                    market: v.spec.market,
                    symbol: Some(sym.clone()),
                    scales,
                    name: format!("{}:rest", v.spec.name),
                };
                defs.push((*src, def));
            }
        }
        for (src, def) in defs {
            self.push_def(now, src, &def);
        }
        for i in 0..self.venues.len() {
            let now = clock();
            self.venues[i].link.start(now);
            self.obey(i, registry, clock);
        }
    }

    fn push_def(&mut self, now: u64, source: u32, def: &SourceDef) {
        self.queue.push_back(LiveRecord {
            recv: now,
            source,
            kind: RecordKind::SourceDef as u16,
            payload: def.to_text().into_bytes(),
        });
    }

    /// True for the waker's token and every connection's.
    pub fn owns(&self, token: Token) -> bool {
        token.0.checked_sub(self.first_token).is_some_and(|off| {
            off <= self.venues.len()
                + if self.gateway.is_some() {
                    OrderGateway::TOKENS
                } else {
                    0
                }
        })
    }

    /// Handles a readiness event for a token this feed [`owns`](Self::owns).
    pub fn handle_event(
        &mut self,
        registry: &Registry,
        token: Token,
        clock: &mut impl FnMut() -> u64,
    ) {
        let off = token.0 - self.first_token;
        if off == 0 {
            // A helper thread finished something: snapshots below, resolutions here.
            for i in 0..self.venues.len() {
                self.progress(i, registry, clock);
            }
            if let Some(g) = self.gateway.as_mut() {
                let waker = self.waker.clone();
                g.progress(registry, None, clock, &mut self.queue, move || {
                    let _ = waker.wake();
                });
            }
            self.drain_snapshots(clock);
        } else if off <= self.venues.len() {
            self.progress(off - 1, registry, clock);
        } else if let Some(g) = self.gateway.as_mut() {
            let waker = self.waker.clone();
            g.progress(registry, Some(token), clock, &mut self.queue, move || {
                let _ = waker.wake();
            });
        }
    }

    /// Sends one order-API request (rendered by the desk) on the order gateway; without one,
    /// or when it cannot be sent, an error response is queued as a record instead.
    pub fn send_order(&mut self, now: u64, json: &str) {
        match self.gateway.as_mut() {
            Some(g) => g.send(now, json, &mut self.queue),
            None => {
                if let Some(rec) = OrderGateway::unconfigured_failure(json) {
                    self.queue.push_back(LiveRecord { recv: now, ..rec });
                }
            }
        }
    }

    /// Stopping: with `cancel_on_shutdown` and a ready gateway, the desk is told to cancel
    /// every order (a journaled `shutdown` gateway event); true when there is something to
    /// wait for.
    pub fn begin_stop(&mut self, now: u64) -> bool {
        match self.gateway.as_mut() {
            Some(g) => g.begin_stop(now, &mut self.queue),
            None => false,
        }
    }

    /// The cancels of [`LiveFeed::begin_stop`] are answered (or the gateway is gone).
    pub fn stop_drained(&self) -> bool {
        self.gateway
            .as_ref()
            .is_none_or(|g| g.outstanding() == 0 || !g.io().connected)
    }

    /// io figures of the order gateway, if there is one.
    pub fn gateway_io(&self) -> Option<GatewayIo> {
        self.gateway.as_ref().map(OrderGateway::io)
    }

    fn progress(&mut self, i: usize, registry: &Registry, clock: &mut impl FnMut() -> u64) {
        let mut todo = VecDeque::new();
        self.drive(i, clock, &mut todo, |conn, sink| {
            conn.progress(registry, sink)
        });
        self.obey_with(i, registry, clock, todo);
    }

    /// Runs `f` on venue `i`'s connection with a sink into its link and the record queue.
    fn drive<C: FnMut() -> u64>(
        &mut self,
        i: usize,
        clock: &mut C,
        todo: &mut VecDeque<LinkAction>,
        f: impl FnOnce(&mut WsConn, &mut Sink<'_, C>),
    ) {
        let v = &mut self.venues[i];
        let mut sink = Sink {
            clock: &mut *clock,
            queue: &mut self.queue,
            source: v.ws_source,
            link: &mut v.link,
            todo,
        };
        f(&mut v.conn, &mut sink);
    }

    /// Carries out what venue `i`'s link asks for, until it asks for nothing more.
    fn obey(&mut self, i: usize, registry: &Registry, clock: &mut impl FnMut() -> u64) {
        self.obey_with(i, registry, clock, VecDeque::new());
    }

    fn obey_with(
        &mut self,
        i: usize,
        registry: &Registry,
        clock: &mut impl FnMut() -> u64,
        mut todo: VecDeque<LinkAction>,
    ) {
        loop {
            let Some(action) = todo
                .pop_front()
                .or_else(|| self.venues[i].link.poll_action())
            else {
                return;
            };
            match action {
                LinkAction::Connect => {
                    let waker = self.waker.clone();
                    self.drive(i, clock, &mut todo, |conn, sink| {
                        conn.connect(registry, sink, move || {
                            let _ = waker.wake();
                        });
                    });
                }
                LinkAction::SendPing => {
                    self.drive(i, clock, &mut todo, |conn, sink| {
                        conn.send_ping(registry, sink);
                    });
                }
                LinkAction::Close { .. } => self.venues[i].conn.abort(registry),
                LinkAction::Journal { at, event } => {
                    push_link(&mut self.queue, self.venues[i].ws_source, at, &event);
                }
                LinkAction::CancelSnapshots => self.after_down(i),
            }
        }
    }

    /// The connection of venue `i` went down: forget its snapshot requests (the next
    /// connection's diffs ask again), keep its io figures.
    fn after_down(&mut self, i: usize) {
        let v = &mut self.venues[i];
        v.frames_before += std::mem::take(&mut v.conn.frames);
        v.bytes_before += std::mem::take(&mut v.conn.bytes);
        for src in &v.rest_sources {
            self.scheduler.cancel(*src);
        }
        self.sched_dirty = true;
    }

    /// Timers: reconnects due, connection deadlines, snapshot requests and timeouts, helper
    /// results. Call once per loop iteration (it is cheap when nothing is due).
    pub fn poll(&mut self, registry: &Registry, now: u64, clock: &mut impl FnMut() -> u64) {
        if let Some(g) = self.gateway.as_mut() {
            if now >= g.next_deadline() {
                let waker = self.waker.clone();
                g.poll(registry, now, clock, &mut self.queue, move || {
                    let _ = waker.wake();
                });
            }
        }
        for i in 0..self.venues.len() {
            if self.venues[i].link.poll_timeout().is_some_and(|t| now >= t) {
                // A fresh reading: records stay in clock order after frames read since `now`.
                let at = clock();
                self.venues[i].link.handle_timeout(at);
                self.obey(i, registry, clock);
            }
        }
        // The scheduler's calls walk its keys: only when something changed or is due.
        let due = self.scheduler.poll_timeout().is_some_and(|t| t <= now);
        if !(self.sched_dirty || due) {
            self.drain_snapshots(clock);
            return;
        }
        self.sched_dirty = false;
        self.scheduler.handle_timeout(now);
        while let Some(SnapshotRequest { key, .. }) = self.scheduler.poll_request(now) {
            let Some((_, url)) = self.rest_url.get(&key) else {
                continue;
            };
            let job = SnapshotJob {
                key,
                url: url.clone(),
            };
            if self.fetcher.request(job).is_err() {
                self.scheduler.on_result(now, key, false, None);
            }
        }
        self.drain_snapshots(clock);
    }

    fn drain_snapshots(&mut self, clock: &mut impl FnMut() -> u64) {
        while let Some(done) = self.fetcher.try_recv() {
            let now = clock();
            let Some(&(vi, _)) = self.rest_url.get(&done.key) else {
                continue;
            };
            let v = &mut self.venues[vi];
            match done.result {
                Ok(resp) if resp.status == 200 => {
                    v.snapshots_ok += 1;
                    self.scheduler.on_result(now, done.key, true, None);
                    self.sched_dirty = true;
                    self.queue.push_back(LiveRecord {
                        recv: now,
                        source: done.key,
                        kind: RecordKind::RestSnapshot as u16,
                        payload: resp.body,
                    });
                }
                Ok(resp) => {
                    v.snapshots_failed += 1;
                    let body = String::from_utf8_lossy(&resp.body[..resp.body.len().min(200)])
                        .into_owned();
                    v.last_snapshot_error = format!("HTTP {}: {body}", resp.status);
                    let retry = resp
                        .retry_after_secs
                        .map(|s| s.saturating_mul(1_000_000_000));
                    self.scheduler.on_result(now, done.key, false, retry);
                    self.sched_dirty = true;
                }
                Err(e) => {
                    v.snapshots_failed += 1;
                    v.last_snapshot_error = e.to_string();
                    self.scheduler.on_result(now, done.key, false, None);
                    self.sched_dirty = true;
                }
            }
        }
    }

    /// The earliest time [`LiveFeed::poll`] has something to do.
    pub fn next_deadline(&self) -> u64 {
        let conns = self
            .venues
            .iter()
            .map(|v| v.link.poll_timeout().unwrap_or(u64::MAX))
            .min()
            .unwrap_or(u64::MAX)
            .min(
                self.gateway
                    .as_ref()
                    .map_or(u64::MAX, OrderGateway::next_deadline),
            );
        conns.min(self.scheduler.poll_timeout().unwrap_or(u64::MAX))
    }

    /// A book needs a snapshot (the engine emitted `ResyncRequested`). Requests for a book
    /// whose connection is down wait for the connection: its next diff asks again.
    pub fn want_snapshot(&mut self, now: u64, market: Market, symbol: &str) {
        let Some(&(vi, src)) = self.rest_of.get(&(market, symbol.to_owned())) else {
            return;
        };
        if self.venues[vi].link.is_open() {
            self.scheduler.want(now, vi, src);
            self.sched_dirty = true;
        }
    }

    /// The next record for the journal and the engine.
    pub fn pop(&mut self) -> Option<LiveRecord> {
        self.queue.pop_front()
    }

    /// Records waiting.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Closes every connection (close frames where open); their `down` records are queued.
    pub fn close_all(&mut self, registry: &Registry, clock: &mut impl FnMut() -> u64) {
        if let Some(g) = self.gateway.as_mut() {
            g.close(registry, clock);
        }
        for i in 0..self.venues.len() {
            self.venues[i].conn.send_close_frame();
            let now = clock();
            self.venues[i].link.close(now);
            self.obey(i, registry, clock);
        }
    }

    /// Drops every venue connection that is up or connecting and lets each reconnect after
    /// its backoff, as after any loss: the `down` records are queued like any other, so the
    /// engine clears those books and they resync from fresh snapshots, live and on replay
    /// alike. Used after the node skipped inputs it could not journal.
    pub fn reconnect_all(
        &mut self,
        registry: &Registry,
        clock: &mut impl FnMut() -> u64,
        reason: &str,
    ) {
        for i in 0..self.venues.len() {
            if self.venues[i].link.is_open() || self.venues[i].link.is_connecting() {
                self.venues[i].conn.abort(registry);
                let now = clock();
                self.venues[i].link.handle_closed(now, reason);
                self.obey(i, registry, clock);
            }
        }
    }

    /// io figures per venue connection.
    pub fn venue_io(&self) -> Vec<VenueIo> {
        self.venues
            .iter()
            .map(|v| VenueIo {
                name: v.name.clone(),
                endpoint: v.endpoint,
                url: v.url.clone(),
                frames: v.frames_before + v.conn.frames,
                bytes: v.bytes_before + v.conn.bytes,
                next_attempt_ns: v.link.next_attempt(),
                snapshots_ok: v.snapshots_ok,
                snapshots_failed: v.snapshots_failed,
                last_snapshot_error: v.last_snapshot_error.clone(),
            })
            .collect()
    }
}
