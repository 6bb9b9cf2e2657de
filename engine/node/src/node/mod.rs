//! The engine thread: one mio `Poll` driving the feed, the client server and timers.
//!
//! This is the io layer around the sans-IO core. Per iteration it reads the clock once for
//! the loop, polls sockets (zero timeout when spinning, until the next deadline when
//! blocking), hands socket events to the [`Hub`], feeds due records through the [`Engine`]
//! (timing each stage), fans outputs out, writes what the sockets accept, and runs timers.
//! Nothing here blocks on a client: a client that cannot keep up is conflated, then closed.

mod feed;
mod status;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::{Events, Poll};

pub use feed::{FeedPoll, FeedRecord, ReplayFeed};
pub use status::StatusLine;

use crate::latency_log::LatencyLog;
use crate::live::{LiveConfig, LiveFeed};
use crate::net::{NetConfig, NetEvent, NetServer, SendResult, SocketId};
use tape_core::engine::{Engine, EngineConfig, Probe, Stage};
use tape_core::input::{Nanos, RecordKind, SourceId, CLIENT_SOURCE};
use tape_core::metrics::{Latency, LatencyStage};
use tape_core::output::VenueCommand;
use tape_core::server::{Action, ConnId, Hub, HubConfig};

/// How the loop waits when there is nothing to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleStrategy {
    /// Zero-timeout polls; never sleeps (one core at 100 %).
    Spin,
    /// Zero-timeout polls with a yield between empty iterations.
    Yield,
    /// Sleeps in the poll until the next socket event or deadline.
    Block,
}

/// Where the node's market data comes from.
#[derive(Debug, Clone)]
pub enum FeedSource {
    /// A journal replayed against the wall clock.
    Replay {
        /// The journal directory.
        journal: PathBuf,
        /// Pace: 1 = recorded, N = N× faster, 0 = as fast as possible.
        speed: u32,
        /// Replay the journal again when it ends (the engine starts over each pass).
        repeat: bool,
    },
    /// Live exchange connections.
    Live(Box<LiveConfig>),
}

/// Everything the node needs.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Listen address for clients; `None` serves nobody (`tape record`).
    pub listen: Option<SocketAddr>,
    /// Transport settings.
    pub net: NetConfig,
    /// Client protocol settings.
    pub hub: HubConfig,
    /// Engine core settings.
    pub engine: EngineConfig,
    /// Idle strategy.
    pub idle: IdleStrategy,
    /// The market data.
    pub feed: FeedSource,
    /// Journal every input here (receive time, source, kind, bytes) before it is applied.
    pub record: Option<PathBuf>,
    /// Latency interval log, if any.
    pub latency_log: Option<PathBuf>,
    /// Interval of the latency log and of rate computations, ns.
    pub interval_ns: u64,
    /// Client authentication (JWT HS256, users and roles); `None` refuses `auth` and every
    /// private request.
    pub auth: Option<tape_core::auth::AuthConfig>,
    /// The trading desk (accounts of the users, risk limits, paper venue); journaled as the
    /// first client record so replays rebuild it.
    pub desk: Option<tape_core::desk::DeskSetup>,
}

/// Most feed records handled per loop iteration, so sockets are served between batches
/// even when replaying as fast as possible.
pub const FEED_BATCH: usize = 64;

/// How often hub/net timers run.
const TIMER_PERIOD_NS: u64 = 50_000_000;

/// Longest a blocking poll sleeps, so timers and the stop flag are checked.
const MAX_BLOCK_NS: u64 = 100_000_000;

/// How long shutdown waits for clients to complete their close handshakes.
const SHUTDOWN_GRACE_NS: u64 = 2_000_000_000;

/// The wall clock, read as ns since the Unix epoch but advancing monotonically.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    base_unix_ns: u64,
    base: Instant,
}

impl Default for WallClock {
    fn default() -> Self {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        WallClock {
            base_unix_ns: unix,
            base: Instant::now(),
        }
    }
}

impl WallClock {
    /// Now, in ns since the Unix epoch.
    #[inline]
    pub fn now(&self) -> u64 {
        self.base_unix_ns + self.base.elapsed().as_nanos() as u64
    }
}

/// Times the stages inside [`Engine::handle_record_probed`]: each [`Stage`] mark records
/// the time since the previous mark (or since `start_ns`) as [`LatencyStage::Decode`] or
/// [`LatencyStage::Apply`]. `tape run`'s loop and `tape replay --latency` both use it.
#[derive(Debug)]
pub struct StageTimer<'a> {
    clock: &'a WallClock,
    last: u64,
    latency: &'a mut Latency,
}

impl<'a> StageTimer<'a> {
    /// A timer whose first stage starts at `start_ns` (a [`WallClock::now`] reading).
    pub fn new(clock: &'a WallClock, start_ns: u64, latency: &'a mut Latency) -> Self {
        StageTimer {
            clock,
            last: start_ns,
            latency,
        }
    }

    /// The clock reading of the last mark (`start_ns` before any).
    pub fn last(&self) -> u64 {
        self.last
    }
}

impl Probe for StageTimer<'_> {
    fn mark(&mut self, stage: Stage) {
        let t = self.clock.now();
        let s = match stage {
            Stage::Decoded => LatencyStage::Decode,
            Stage::Applied => LatencyStage::Apply,
        };
        self.latency.record(s, t.saturating_sub(self.last));
        self.last = t;
    }
}

/// Counters of the loop itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoopStats {
    /// Loop iterations.
    pub iterations: u64,
    /// Feed records handled.
    pub records: u64,
    /// Records the engine rejected (counted by code in the engine's stats).
    pub record_errors: u64,
    /// Feed passes started (replay).
    pub passes: u64,
    /// Messages written to client sockets.
    pub sent: u64,
    /// Sends refused by a full socket buffer (the message stays with the hub).
    pub send_refused: u64,
    /// Time spent in loop iterations that had work (socket events or records), ns: the
    /// engine's busy time, excluding idle polling.
    pub busy_ns: u64,
}

/// The running engine: feed, core, client server, metrics.
pub struct Node {
    cfg: NodeConfig,
    poll: Poll,
    events: Events,
    net: Option<NetServer>,
    hub: Hub,
    engine: Engine,
    feed: Feed,
    clock: WallClock,
    started_ns: u64,
    latency: Latency,
    journal: Option<tape_journal::JournalWriter>,
    log: Option<LatencyLog>,
    log_interval_start: u64,
    net_events: Vec<NetEvent>,
    actions: Vec<Action>,
    stats: LoopStats,
    rates: status::Rates,
    /// Receive times of the batch's records whose messages are not written yet.
    wire: Vec<u64>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("listen", &self.local_addr())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

// A hub session lives exactly as long as its socket, so both ids share one number: the
// socket's (never reused, so a stale id can never name a later session).
fn socket_of(c: ConnId) -> SocketId {
    SocketId(c.0)
}

fn conn_of(s: SocketId) -> ConnId {
    ConnId(s.0)
}

/// The node's feed.
enum Feed {
    Replay(Box<ReplayFeed>),
    Live(Box<LiveFeed>),
}

/// First mio token of the live feed (the client server's tokens stay far below).
const LIVE_FIRST_TOKEN: usize = 1 << 40;

impl Node {
    /// Binds the listener, opens the feed and the latency log.
    ///
    /// # Errors
    /// Bind failures, an unreadable journal, an invalid engine config, an uncreatable log.
    pub fn bind(cfg: NodeConfig) -> std::io::Result<Node> {
        let poll = Poll::new()?;
        let net = match cfg.listen {
            Some(addr) => Some(NetServer::bind(addr, cfg.net.clone(), poll.registry(), 0)?),
            None => None,
        };
        let feed = match &cfg.feed {
            FeedSource::Replay {
                journal,
                speed,
                repeat,
            } => Feed::Replay(Box::new(
                ReplayFeed::open(journal, *speed, *repeat)
                    .map_err(|e| std::io::Error::other(format!("{}: {e}", journal.display())))?,
            )),
            FeedSource::Live(live) => Feed::Live(Box::new(LiveFeed::new(
                (**live).clone(),
                poll.registry(),
                LIVE_FIRST_TOKEN,
            )?)),
        };
        let engine = Engine::new(cfg.engine.clone()).map_err(std::io::Error::other)?;
        let clock = WallClock::default();
        let started_ns = clock.now();
        let log = match &cfg.latency_log {
            Some(p) => Some(
                LatencyLog::create(p, started_ns as f64 / 1e9)
                    .map_err(|e| std::io::Error::other(format!("{}: {e}", p.display())))?,
            ),
            None => None,
        };
        let journal = match &cfg.record {
            Some(dir) => {
                let (w, _) =
                    tape_journal::JournalWriter::open(dir, tape_journal::JournalOptions::default())
                        .map_err(|e| std::io::Error::other(format!("{}: {e}", dir.display())))?;
                Some(w)
            }
            None => None,
        };
        let mut hub = Hub::new(cfg.hub.clone());
        if let Some(a) = &cfg.auth {
            hub.set_authenticator(
                tape_core::auth::Authenticator::new(a.clone()).map_err(std::io::Error::other)?,
            );
        }
        Ok(Node {
            journal,
            hub,
            cfg,
            poll,
            events: Events::with_capacity(1024),
            net,
            engine,
            feed,
            clock,
            started_ns,
            latency: Latency::default(),
            log,
            log_interval_start: started_ns,
            net_events: Vec::with_capacity(256),
            actions: Vec::new(),
            stats: LoopStats::default(),
            rates: status::Rates::default(),
            wire: Vec::with_capacity(FEED_BATCH),
        })
    }

    /// The bound address (useful with port 0); `None` when serving nobody.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.net.as_ref().map(NetServer::local_addr)
    }

    /// Runs until `stop` is set (then closes every client with 1001 and returns) or the feed
    /// finishes without looping and `exit_when_done` is set. `on_status` is called every
    /// `status_every_ns` (0 = never) with a one-line summary.
    ///
    /// # Errors
    /// Poll failures, a journal that turns unreadable, latency log write failures.
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        status_every_ns: u64,
        mut on_status: impl FnMut(&StatusLine),
    ) -> std::io::Result<()> {
        let mut next_timer = self.clock.now();
        let mut next_status = self.started_ns + status_every_ns;
        let mut next_feed: u64 = 0;
        let mut feed_finished = false;
        let mut stopping_since: Option<u64> = None;
        self.feed_desk_setup()?;
        if let Feed::Live(live) = &mut self.feed {
            let clock = self.clock;
            live.start(self.poll.registry(), &mut || clock.now());
        }
        loop {
            let now = self.clock.now();
            if stop.load(Ordering::Relaxed) && stopping_since.is_none() {
                if let Some(net) = &mut self.net {
                    net.shutdown(self.poll.registry());
                }
                if let Feed::Live(live) = &mut self.feed {
                    // The venues' `down` records are journaled and applied like any other.
                    let clock = self.clock;
                    live.close_all(self.poll.registry(), &mut || clock.now());
                    self.pump_live(usize::MAX)?;
                }
                stopping_since = Some(now);
            }
            if let Some(t) = stopping_since {
                let open = self.net.as_ref().map_or(0, NetServer::connection_count);
                if open == 0 || now.saturating_sub(t) > SHUTDOWN_GRACE_NS {
                    self.flush_latency_log(now)?;
                    if let Some(j) = &mut self.journal {
                        j.flush()
                            .map_err(|e| std::io::Error::other(format!("journal flush: {e}")))?;
                    }
                    return Ok(());
                }
            }
            let timeout = match self.cfg.idle {
                IdleStrategy::Spin | IdleStrategy::Yield => Duration::ZERO,
                IdleStrategy::Block => {
                    let mut deadline = next_timer.min(now + MAX_BLOCK_NS);
                    if !feed_finished && stopping_since.is_none() {
                        deadline = deadline.min(next_feed);
                        if let Feed::Live(live) = &self.feed {
                            deadline = deadline.min(live.next_deadline());
                        }
                    }
                    Duration::from_nanos(deadline.saturating_sub(now))
                }
            };
            match self.poll.poll(&mut self.events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            self.stats.iterations += 1;
            let now = self.clock.now();
            let had_socket_events = !self.events.is_empty();
            for ev in self.events.iter() {
                if let Some(net) = self.net.as_mut().filter(|n| n.owns(ev.token())) {
                    net.handle_event(self.poll.registry(), ev, now, &mut self.net_events);
                } else if let Feed::Live(live) = &mut self.feed {
                    if live.owns(ev.token()) {
                        let clock = self.clock;
                        live.handle_event(self.poll.registry(), ev.token(), &mut || clock.now());
                    }
                }
            }
            self.dispatch_net_events(now)?;

            let mut fed = 0;
            if stopping_since.is_none() && !feed_finished {
                (fed, next_feed, feed_finished) = self.pump_feed()?;
            }
            self.transmit_all(now);

            if now >= next_timer {
                next_timer = now + TIMER_PERIOD_NS;
                self.run_timers(now)?;
                if self.rates.due(now) {
                    self.rates.sample(now, &self.hub.stats(), &self.stats);
                }
                if self.log.is_some()
                    && now.saturating_sub(self.log_interval_start) >= self.cfg.interval_ns
                {
                    self.flush_latency_log(now)?;
                }
            }
            if status_every_ns > 0 && now >= next_status {
                next_status = now + status_every_ns;
                on_status(&self.status_line(now));
            }
            if fed > 0 || had_socket_events {
                self.stats.busy_ns += self.clock.now().saturating_sub(now);
            }
            if fed == 0 && !had_socket_events {
                // Idle time: fault in journal pages ahead of the writer, off the hot path.
                if let Some(j) = &mut self.journal {
                    let _ = j.pretouch();
                }
                if self.cfg.idle == IdleStrategy::Yield {
                    std::thread::yield_now();
                }
            }
        }
    }

    /// Feeds due records through the engine and the hub; returns (records handled, when the
    /// next one is due, feed finished).
    fn pump_feed(&mut self) -> std::io::Result<(usize, u64, bool)> {
        if let Feed::Live(live) = &mut self.feed {
            let clock = self.clock;
            live.poll(self.poll.registry(), clock.now(), &mut || clock.now());
            let fed = self.pump_live(FEED_BATCH)?;
            let more = matches!(&self.feed, Feed::Live(l) if l.queued() > 0);
            return Ok((fed, if more { 0 } else { u64::MAX }, false));
        }
        let Feed::Replay(feed) = &mut self.feed else {
            unreachable!("live handled above")
        };
        let mut fed = 0;
        while fed < FEED_BATCH {
            let t_read = self.clock.now();
            let polled = feed
                .poll(t_read)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            match polled {
                FeedPoll::Record(rec) => {
                    handle_input(
                        &mut parts!(self, None, Some(&mut self.wire)),
                        t_read,
                        SourceId(rec.source),
                        rec.kind,
                        rec.payload,
                    )?;
                    fed += 1;
                }
                FeedPoll::NotBefore(due) => {
                    flush_wire(&mut parts!(self, None), &mut self.wire);
                    return Ok((fed, due, false));
                }
                FeedPoll::Restarted => {
                    flush_wire(&mut parts!(self, None), &mut self.wire);
                    // A new pass: the books start over as after a reconnect.
                    self.engine =
                        Engine::new(self.cfg.engine.clone()).map_err(std::io::Error::other)?;
                    self.stats.passes += 1;
                    if let Some(setup) = &self.cfg.desk {
                        let payload = setup.to_payload();
                        handle_input(
                            &mut parts!(self, None),
                            self.clock.now(),
                            SourceId(CLIENT_SOURCE),
                            RecordKind::DeskSetup as u16,
                            payload.as_bytes(),
                        )?;
                    }
                }
                FeedPoll::Finished => {
                    flush_wire(&mut parts!(self, None), &mut self.wire);
                    return Ok((fed, u64::MAX, true));
                }
            }
        }
        flush_wire(&mut parts!(self, None), &mut self.wire);
        Ok((fed, 0, false))
    }

    /// Journals and applies up to `max` queued live records (their receive time was stamped
    /// when they were read from the socket or the snapshot thread).
    fn pump_live(&mut self, max: usize) -> std::io::Result<usize> {
        let Feed::Live(live) = &mut self.feed else {
            return Ok(0);
        };
        let mut fed = 0;
        while fed < max {
            let Some(rec) = live.pop() else { break };
            handle_input(
                &mut parts!(self, Some(live), Some(&mut self.wire)),
                rec.recv,
                SourceId(rec.source),
                rec.kind,
                &rec.payload,
            )?;
            fed += 1;
        }
        flush_wire(&mut parts!(self, None), &mut self.wire);
        Ok(fed)
    }

    /// Journals and applies the desk setup (if configured) as a client record.
    fn feed_desk_setup(&mut self) -> std::io::Result<()> {
        let Some(setup) = &self.cfg.desk else {
            return Ok(());
        };
        let payload = setup.to_payload();
        let now = self.clock.now();
        handle_input(
            &mut parts!(self, None),
            now,
            SourceId(CLIENT_SOURCE),
            RecordKind::DeskSetup as u16,
            payload.as_bytes(),
        )
    }

    /// Journals and applies the client records the hub produced (logins, private
    /// subscriptions, order entry), in order.
    fn drain_client_records(&mut self, now: u64) -> std::io::Result<()> {
        while let Some((kind, payload)) = self.hub.poll_record() {
            let live = match &mut self.feed {
                Feed::Live(l) => Some(&mut **l),
                Feed::Replay(_) => None,
            };
            handle_input(
                &mut parts!(self, live),
                now,
                SourceId(CLIENT_SOURCE),
                kind,
                &payload,
            )?;
        }
        Ok(())
    }

    fn dispatch_net_events(&mut self, now: u64) -> std::io::Result<()> {
        let now_n = Nanos(now);
        let mut events = std::mem::take(&mut self.net_events);
        for ev in events.drain(..) {
            match ev {
                NetEvent::Http {
                    conn,
                    path,
                    authorization,
                    ..
                } => {
                    let (status, ctype, body) =
                        self.http_route(&path, authorization.as_deref(), now);
                    if let Some(net) = &mut self.net {
                        net.respond_http(
                            self.poll.registry(),
                            conn,
                            status,
                            ctype,
                            body.as_bytes(),
                        );
                    }
                }
                NetEvent::Open { conn, query, .. } => {
                    self.hub.handle_open(now_n, conn_of(conn), &query);
                    self.drain_client_records(now)?;
                }
                NetEvent::Text { conn, text } => {
                    self.hub.handle_heard(now_n, conn_of(conn));
                    self.hub
                        .handle_text(now_n, conn_of(conn), &text, &self.engine);
                    self.drain_client_records(now)?;
                }
                NetEvent::Binary { conn, len } => {
                    self.hub.handle_heard(now_n, conn_of(conn));
                    self.hub.handle_binary(now_n, conn_of(conn), len);
                }
                NetEvent::Writable { conn } => self.transmit(now, conn_of(conn)),
                NetEvent::Closed { conn, .. } => {
                    self.hub.handle_closed(conn_of(conn));
                    self.drain_client_records(now)?;
                }
            }
        }
        self.net_events = events;
        Ok(())
    }

    /// `GET /api/orders|positions|portfolio` with `Authorization: Bearer`: the same JSON as
    /// `get_orders`/`get_positions`/`get_portfolio`.
    fn api_route(&mut self, what: &str, authorization: Option<&str>, now: u64) -> (u16, String) {
        let err = |status: u16, msg: &str| {
            let mut s = String::from("{\"error\":");
            tape_core::wire::json::escape_json_string(&mut s, msg);
            s.push('}');
            (status, s)
        };
        let user =
            match self
                .hub
                .authorize_http(authorization, tape_core::auth::Role::Viewer, Nanos(now))
            {
                Ok(u) => u,
                Err((status, msg)) => return err(status, &msg),
            };
        let Some(desk) = self.engine.desk() else {
            return err(404, "no trading desk is configured");
        };
        let mut j = tape_core::wire::json::JsonBuf::new();
        let registry = self.engine.registry();
        let what = match what {
            "orders" => tape_core::desk::Snapshot::Orders,
            "positions" => tape_core::desk::Snapshot::Positions,
            _ => tape_core::desk::Snapshot::Portfolio,
        };
        let body = desk.snapshot_json(&mut j, what, &user, None, Nanos(now), registry);
        match body {
            Some(b) => (200, b),
            None => err(404, "this user has no account on the desk"),
        }
    }

    fn http_route(
        &mut self,
        path: &str,
        authorization: Option<&str>,
        now: u64,
    ) -> (u16, &'static str, String) {
        match path {
            "/api/orders" | "/api/positions" | "/api/portfolio" => {
                let (status, body) = self.api_route(&path[5..], authorization, now);
                (status, "application/json", body)
            }
            "/status" => (200, "application/json", self.status_json(now)),
            "/metrics" => (
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                self.metrics_text(now),
            ),
            p if p == self.cfg.net.ws_path => (
                426,
                "text/plain; charset=utf-8",
                "426 Upgrade Required: this path speaks WebSocket\n".into(),
            ),
            _ => (404, "text/plain; charset=utf-8", "404 Not Found\n".into()),
        }
    }

    fn transmit_all(&mut self, now: u64) {
        transmit_all(
            &mut self.hub,
            &mut self.net,
            self.poll.registry(),
            &self.engine,
            &mut self.stats,
            now,
        );
    }

    fn transmit(&mut self, now: u64, conn: ConnId) {
        transmit(
            &mut self.hub,
            &mut self.net,
            self.poll.registry(),
            &self.engine,
            &mut self.stats,
            now,
            conn,
        );
    }

    fn run_timers(&mut self, now: u64) -> std::io::Result<()> {
        // Only when a hub deadline (heartbeat, slow consumer) or action is due: walking every
        // connection on each tick would be O(clients) work on the engine thread for nothing.
        let mut actions = std::mem::take(&mut self.actions);
        if self.hub.poll_timeout().is_some_and(|t| t.0 <= now) {
            // Pongs and other control frames count as activity for the heartbeat.
            for c in self.hub.connections() {
                if let Some(heard) = self.net.as_ref().and_then(|n| n.last_heard(socket_of(c))) {
                    self.hub.handle_heard(Nanos(heard), c);
                }
            }
            self.hub.handle_timeout(Nanos(now), &mut actions);
        }
        for a in actions.drain(..) {
            match a {
                Action::Ping(c) => {
                    if let Some(net) = &mut self.net {
                        net.ping(self.poll.registry(), socket_of(c));
                    }
                }
                Action::Close { conn, code, reason } => {
                    // Let the last queued message (e.g. the 4003 error) go out first.
                    self.transmit(now, conn);
                    if let Some(net) = &mut self.net {
                        net.close(self.poll.registry(), socket_of(conn), code, &reason);
                    }
                }
            }
        }
        self.actions = actions;
        if let Some(net) = &mut self.net {
            net.tick(self.poll.registry(), now, &mut self.net_events);
        }
        self.dispatch_net_events(now)
    }

    fn flush_latency_log(&mut self, now: u64) -> std::io::Result<()> {
        if let Some(log) = &mut self.log {
            let start = self.log_interval_start.saturating_sub(self.started_ns) as f64 / 1e9;
            let len = now.saturating_sub(self.log_interval_start) as f64 / 1e9;
            log.write_interval(&mut self.latency, start, len)?;
            self.log_interval_start = now;
        }
        Ok(())
    }

    /// The status line as of now.
    pub fn status_line_now(&self) -> StatusLine {
        self.status_line(self.clock.now())
    }

    /// The engine (for tests and status).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Loop counters.
    pub fn loop_stats(&self) -> LoopStats {
        self.stats
    }
}

/// The [`Parts`] of a node, borrowed field by field (so its feed may stay borrowed).
macro_rules! parts {
    ($node:ident, $live:expr) => {
        parts!($node, $live, None)
    };
    ($node:ident, $live:expr, $wire:expr) => {
        Parts {
            clock: &$node.clock,
            journal: &mut $node.journal,
            latency: &mut $node.latency,
            engine: &mut $node.engine,
            hub: &mut $node.hub,
            stats: &mut $node.stats,
            net: &mut $node.net,
            registry: $node.poll.registry(),
            live: $live,
            wire: $wire,
        }
    };
}
use parts;

/// The parts of a [`Node`] one input touches (split borrows, so the feed can stay borrowed).
struct Parts<'a> {
    clock: &'a WallClock,
    journal: &'a mut Option<tape_journal::JournalWriter>,
    latency: &'a mut Latency,
    engine: &'a mut Engine,
    hub: &'a mut Hub,
    stats: &'a mut LoopStats,
    net: &'a mut Option<NetServer>,
    registry: &'a mio::Registry,
    live: Option<&'a mut LiveFeed>,
    /// When set, the records' messages are written once for the whole batch (see
    /// [`Node::flush_wire`]) and their receive times collected here; otherwise each
    /// record's messages are written before the next record.
    wire: Option<&'a mut Vec<u64>>,
}

/// One input: journal it (before it changes any state: a crash never leaves state the
/// journal cannot rebuild; a failing journal stops the engine), apply it, fan its outputs out
/// and write them before the next input, timing every stage.
fn handle_input(
    p: &mut Parts<'_>,
    t_read: u64,
    source: SourceId,
    kind: u16,
    payload: &[u8],
) -> std::io::Result<()> {
    let mut t_start = p.clock.now();
    if let Some(j) = p.journal.as_mut() {
        j.append(t_read, source.0, kind, payload)
            .map_err(|e| std::io::Error::other(format!("journal: {e}")))?;
        let t = p.clock.now();
        p.latency
            .record(LatencyStage::Journal, t.saturating_sub(t_start));
        t_start = t;
    }
    let mut timer = StageTimer::new(p.clock, t_start, p.latency);
    // The kind as journaled: one this build does not know is rejected by the engine (counted
    // like any bad record), as it would be on replay.
    if p.engine
        .handle_stored_probed(Nanos(t_read), source, kind, payload, &mut timer)
        .is_err()
    {
        p.stats.record_errors += 1;
    }
    let t_applied = timer.last();
    // Venue commands first: an order goes out before its acknowledgement reaches clients.
    while let Some(cmd) = p.engine.poll_venue_command() {
        let Some(live) = p.live.as_deref_mut() else {
            continue; // replay: the venue's answers are in the journal already
        };
        match cmd {
            // Sent now; a failure comes back as a record.
            VenueCommand::Order { json, .. } => live.send_order(t_read, &json),
            VenueCommand::Snapshot { market, symbol, .. } => {
                live.want_snapshot(t_read, market, &symbol);
            }
        }
    }
    let before = p.hub.stats_delivered();
    while let Some(out) = p.engine.poll_output() {
        p.hub.handle_output(&out, p.engine);
    }
    let t_fan = p.clock.now();
    p.latency
        .record(LatencyStage::Fanout, t_fan.saturating_sub(t_applied));
    if p.hub.stats_delivered() != before {
        if let Some(wire) = p.wire.as_deref_mut() {
            // Part of a batch: written with the batch's other messages, one write per client.
            wire.push(t_read);
            p.stats.records += 1;
            return Ok(());
        }
        // Write this record's messages before the next record.
        transmit_all(p.hub, p.net, p.registry, p.engine, p.stats, t_fan);
        let t_wire = p.clock.now();
        p.latency
            .record(LatencyStage::TickToWire, t_wire.saturating_sub(t_read));
    }
    p.stats.records += 1;
    Ok(())
}

/// Writes what a batch's records produced: every ready client's messages, one write per
/// client, then records each record's tick-to-wire.
///
/// Batching is natural: a batch holds the records that were already waiting when the loop
/// got to them (at most [`FEED_BATCH`]), so an idle engine writes every record at once, and a
/// busy one amortizes the per-client write over the records that queued meanwhile instead of
/// falling further behind at one write per record per client.
fn flush_wire(p: &mut Parts<'_>, wire: &mut Vec<u64>) {
    if wire.is_empty() {
        return;
    }
    let t = p.clock.now();
    transmit_all(p.hub, p.net, p.registry, p.engine, p.stats, t);
    let t_wire = p.clock.now();
    for t_read in wire.drain(..) {
        p.latency
            .record(LatencyStage::TickToWire, t_wire.saturating_sub(t_read));
    }
}

fn transmit_all(
    hub: &mut Hub,
    net: &mut Option<NetServer>,
    registry: &mio::Registry,
    engine: &Engine,
    stats: &mut LoopStats,
    now: u64,
) {
    while let Some(conn) = hub.poll_ready() {
        transmit(hub, net, registry, engine, stats, now, conn);
    }
}

/// Moves the hub's messages for `conn` to its socket until either runs dry: all of them framed
/// into the connection's buffer, then one flush (one syscall for the burst).
fn transmit(
    hub: &mut Hub,
    net: &mut Option<NetServer>,
    registry: &mio::Registry,
    engine: &Engine,
    stats: &mut LoopStats,
    now: u64,
    conn: ConnId,
) {
    let Some(net) = net.as_mut() else { return };
    let nc = socket_of(conn);
    if net.write_pending(nc) {
        return; // the socket is full; NetEvent::Writable brings us back
    }
    let mut queued = 0u64;
    while let Some(msg) = hub.poll_transmit(Nanos(now), conn, engine) {
        match net.queue(registry, nc, msg) {
            SendResult::Sent | SendResult::Buffered => queued += 1,
            SendResult::Refused => {
                // Over the transport's buffer limit: the message is lost for this client,
                // counted; the hub's own bound normally keeps us far from this.
                stats.send_refused += 1;
                break;
            }
            SendResult::Closed => return,
        }
    }
    if queued > 0 {
        stats.sent += queued;
        let _ = net.flush(registry, nc);
    }
}
