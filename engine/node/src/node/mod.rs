//! The engine thread: one mio `Poll` driving the feed, the client server and timers.
//!
//! This is the io layer around the sans-IO core. Per iteration it reads the clock once for
//! the loop, polls sockets (zero timeout when spinning, until the next deadline when
//! blocking), hands socket events to the [`Hub`], feeds due records through the [`Engine`]
//! (timing each stage), fans outputs out, writes what the sockets accept, and runs timers.
//! Nothing here blocks on a client: a client that cannot keep up is conflated, then closed.

mod clock;
mod dashboard;
mod feed;
mod http;
mod pipeline;
mod replay_route;
mod scale_out;
mod status;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mio::{Events, Poll};

pub use clock::{StageTimer, WallClock};
pub use feed::{Feed, FeedPoll, FeedRecord, ReplayFeed};
pub use pipeline::FEED_BATCH;
pub use status::StatusLine;

use crate::latency_log::LatencyLog;
use crate::live::{LiveConfig, LiveFeed};
use crate::net::{NetConfig, NetEvent, NetServer, SocketId};
use pipeline::{conn_of, socket_of, Handled, Pipeline};
use tape_core::engine::{Engine, EngineConfig};
use tape_core::input::{Nanos, RecordKind, SourceId, CLIENT_SOURCE};
use tape_core::server::{Action, Hub, HubConfig};
use tape_core::wire::CLOSE_TOO_MANY_CONNECTIONS;

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
    /// An edge: the origin's log over NATS (docs/scale-out.md).
    Edge(Box<crate::nats::NatsConfig>),
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
    /// How the journal is written and what a write failure (a full disk) does.
    pub journal: JournalPolicy,
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
    /// Publish books and accounts in shared memory for colocated readers (`[shm]`).
    pub shm: Option<crate::shm::ShmConfig>,
    /// Serve the dashboard at `/` (and its assets under `/dashboard/`); off, both are 404.
    pub dashboard: bool,
    /// Replay on demand (`/replay`, `/replay.ndjson`); `None`: both are 404.
    pub replay: Option<crate::replay::ReplayConfig>,
    /// The origin of a scale-out: publish every journaled record to NATS (`[nats]`). Unused
    /// by an edge (its feed is [`FeedSource::Edge`]).
    pub nats: Option<crate::nats::NatsConfig>,
}

/// What the node does when it cannot journal an input (a full disk, an I/O error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnJournalError {
    /// Keep serving clients with the state it has, apply no input it could not journal (and
    /// take no order), say so in `/status`, the `status` channel and on stderr, and retry.
    Degrade,
    /// Stop the node with an error.
    Stop,
}

/// Journal settings of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalPolicy {
    /// Segment size and pre-touching.
    pub options: tape_journal::JournalOptions,
    /// What a failed append does.
    pub on_error: OnJournalError,
    /// While degraded: how often to try again, ns.
    pub retry_ns: u64,
}

impl Default for JournalPolicy {
    fn default() -> Self {
        JournalPolicy {
            options: tape_journal::JournalOptions::default(),
            on_error: OnJournalError::Degrade,
            retry_ns: 1_000_000_000,
        }
    }
}

/// How often hub/net timers run.
const TIMER_PERIOD_NS: u64 = 50_000_000;

/// Longest a blocking poll sleeps, so timers and the stop flag are checked.
const MAX_BLOCK_NS: u64 = 100_000_000;

/// How long shutdown waits for the venue to answer the cancels of `cancel_on_shutdown`.
const CANCEL_GRACE_NS: u64 = 3_000_000_000;
/// How long shutdown waits for clients to complete their close handshakes.
const SHUTDOWN_GRACE_NS: u64 = 2_000_000_000;

/// How long a stopping origin waits for NATS to take the records it has not acknowledged
/// yet (`nats::Publisher::finish`); what is left is in the journal.
const NATS_STOP_GRACE: Duration = Duration::from_secs(5);

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
    /// Journal, engine, hub and client sockets: what every input goes through.
    pipe: Pipeline,
    // Send: a node is built on one thread and may run on another (tests, `tape run`).
    feed: Box<dyn Feed + Send>,
    clock: WallClock,
    started_ns: u64,
    log: Option<LatencyLog>,
    log_interval_start: u64,
    net_events: Vec<NetEvent>,
    actions: Vec<Action>,
    rates: status::Rates,
    /// A record of a feed that [can wait](Feed::can_wait), read while the journal could not
    /// take it: handled first once it can.
    held: Option<(u64, SourceId, u16, Vec<u8>)>,
    /// Unauthenticated WebSocket sessions per peer address.
    anonymous: AnonymousPerIp,
    /// Replay sessions (their threads), when `/replay` is configured.
    replays: Option<crate::replay::Replays>,
    /// An edge: the origin run its hub serves.
    edge_run: Option<u64>,
}

/// Unauthenticated WebSocket sessions per peer address, so one host cannot take every
/// anonymous slot (`NetConfig::max_anonymous_per_ip`). The node keeps it, not the transport
/// (which does not know who authenticated) nor the hub (which has no addresses).
#[derive(Debug, Default)]
struct AnonymousPerIp {
    by_ip: std::collections::HashMap<std::net::IpAddr, usize>,
    by_conn: std::collections::HashMap<SocketId, std::net::IpAddr>,
}

impl AnonymousPerIp {
    /// Counts a new session from `ip` unless it comes with a token (the hub decides on that)
    /// or its address is at the limit (then false: refuse it).
    fn admit(
        &mut self,
        cfg: &NetConfig,
        conn: SocketId,
        ip: std::net::IpAddr,
        query: &str,
    ) -> bool {
        let ip = ip.to_canonical();
        let limit = cfg.max_anonymous_per_ip;
        let exempt = limit == 0 || (cfg.per_ip_exempt_loopback && ip.is_loopback());
        if exempt || query.split('&').any(|kv| kv.starts_with("token=")) {
            return true;
        }
        let n = self.by_ip.entry(ip).or_default();
        if *n >= limit {
            return false;
        }
        *n += 1;
        self.by_conn.insert(conn, ip);
        true
    }

    /// `conn` authenticated or closed: it no longer counts.
    fn forget(&mut self, conn: SocketId) {
        if let Some(ip) = self.by_conn.remove(&conn) {
            if let Some(n) = self.by_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    self.by_ip.remove(&ip);
                }
            }
        }
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("listen", &self.local_addr())
            .field("stats", &self.pipe.stats)
            .finish_non_exhaustive()
    }
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
        let feed: Box<dyn Feed + Send> = match &cfg.feed {
            FeedSource::Replay {
                journal,
                speed,
                repeat,
            } => Box::new(
                ReplayFeed::open(journal, *speed, *repeat)
                    .map_err(|e| std::io::Error::other(format!("{}: {e}", journal.display())))?,
            ),
            FeedSource::Live(live) => Box::new(LiveFeed::new(
                (**live).clone(),
                poll.registry(),
                LIVE_FIRST_TOKEN,
            )?),
            FeedSource::Edge(nats) => Box::new(crate::nats::EdgeFeed::new(
                (**nats).clone(),
                mio::Token(LIVE_FIRST_TOKEN),
            )),
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
                let (w, report) = tape_journal::JournalWriter::open(dir, cfg.journal.options)
                    .map_err(|e| {
                        let hint = if e.is_corruption() {
                            "; the writer only cuts a torn tail by itself: `tape verify DIR` \
                                 lists the damage, `tape repair DIR` moves it into \
                                 DIR/quarantine/ (nothing is deleted)"
                        } else {
                            ""
                        };
                        std::io::Error::other(format!("{}: {e}{hint}", dir.display()))
                    })?;
                if !report.is_clean() {
                    // The one repair the writer makes on its own; the operator hears of it.
                    eprintln!("tape: journal {}: {report}", dir.display());
                }
                Some(w)
            }
            None => None,
        };
        let shm = match &cfg.shm {
            Some(c) => {
                let users = cfg
                    .desk
                    .as_ref()
                    .map(|d| d.users.clone())
                    .unwrap_or_default();
                Some(
                    crate::shm::Publisher::open(c, &users)
                        .map_err(|e| std::io::Error::other(format!("shm: {e}")))?,
                )
            }
            None => None,
        };
        let mut hub = Hub::new(cfg.hub.clone());
        if let Some(a) = &cfg.auth {
            hub.set_authenticator(
                tape_core::auth::Authenticator::new(a.clone()).map_err(std::io::Error::other)?,
            );
        }
        let replays = cfg.replay.clone().map(|r| {
            crate::replay::Replays::new(r, cfg.engine.clone(), cfg.hub.clone(), cfg.auth.clone())
        });
        let mut pipe = Pipeline::new(clock, journal, cfg.journal, engine, hub, net, shm);
        match (&cfg.nats, &cfg.feed) {
            (_, FeedSource::Edge(n)) => pipe.edge_id = Some(n.edge_id),
            (Some(n), _) => {
                let waker = scale_out::origin_waker(poll.registry())?;
                pipe.nats = Some(crate::nats::Publisher::start(n, cfg.hub.run_id, waker)?);
            }
            (None, _) => {}
        }
        Ok(Node {
            replays,
            pipe,
            cfg,
            poll,
            events: Events::with_capacity(1024),
            feed,
            clock,
            started_ns,
            log,
            log_interval_start: started_ns,
            net_events: Vec::with_capacity(256),
            actions: Vec::new(),
            rates: status::Rates::default(),
            held: None,
            anonymous: AnonymousPerIp::default(),
            edge_run: None,
        })
    }

    /// The bound address (useful with port 0); `None` when serving nobody.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.pipe.net.as_ref().map(NetServer::local_addr)
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
        let mut draining_since: Option<u64> = None;
        self.feed_desk_setup()?;
        self.feed.start(self.poll.registry(), &self.clock);
        if self.feed.defines_before_serving() {
            // The venues' source definitions (queued at start, before any connection is
            // up): journaled and applied before the first client message is read.
            self.pump(usize::MAX)?;
        }
        loop {
            let now = self.clock.now();
            if stop.load(Ordering::Relaxed) && stopping_since.is_none() && draining_since.is_none()
            {
                // `cancel_on_shutdown`: the desk cancels every order first (journaled like
                // any record); the feed keeps running until the venue answered them.
                if self.feed.begin_stop(now) {
                    draining_since = Some(now);
                    self.pump(usize::MAX)?;
                }
            }
            let drained = draining_since.is_some_and(|d| {
                self.feed.stop_drained() || now.saturating_sub(d) > CANCEL_GRACE_NS
            });
            if stop.load(Ordering::Relaxed)
                && stopping_since.is_none()
                && (draining_since.is_none() || drained)
            {
                draining_since = None;
                if let Some(net) = &mut self.pipe.net {
                    net.shutdown(self.poll.registry());
                }
                // What the feed still holds (the venues' `down` records) is journaled and
                // applied like any other record; a replay just ends.
                self.feed.close(self.poll.registry(), &self.clock);
                self.pump(usize::MAX)?;
                stopping_since = Some(now);
            }
            if let Some(t) = stopping_since {
                let open = self
                    .pipe
                    .net
                    .as_ref()
                    .map_or(0, NetServer::connection_count);
                if open == 0 || now.saturating_sub(t) > SHUTDOWN_GRACE_NS {
                    if let Some(shm) = &mut self.pipe.shm {
                        shm.close();
                    }
                    if let Some(r) = &self.replays {
                        r.stop_all();
                    }
                    self.flush_latency_log(now)?;
                    if let Some(j) = &mut self.pipe.journal {
                        j.flush()
                            .map_err(|e| std::io::Error::other(format!("journal flush: {e}")))?;
                    }
                    if let Some(p) = self.pipe.nats.take() {
                        p.finish(NATS_STOP_GRACE);
                    }
                    return Ok(());
                }
            }
            let timeout = match self.cfg.idle {
                IdleStrategy::Spin | IdleStrategy::Yield => Duration::ZERO,
                IdleStrategy::Block => {
                    let mut deadline = next_timer.min(now + MAX_BLOCK_NS);
                    if !feed_finished && stopping_since.is_none() {
                        deadline = deadline.min(next_feed).min(self.feed.next_deadline());
                    }
                    Duration::from_nanos(deadline.saturating_sub(now))
                }
            };
            match self.poll.poll(&mut self.events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            self.pipe.stats.iterations += 1;
            let now = self.clock.now();
            let had_socket_events = !self.events.is_empty();
            for ev in self.events.iter() {
                if let Some(net) = self.pipe.net.as_mut().filter(|n| n.owns(ev.token())) {
                    net.handle_event(self.poll.registry(), ev, now, &mut self.net_events);
                } else if self.feed.owns(ev.token()) {
                    self.feed
                        .handle_event(self.poll.registry(), ev.token(), &self.clock);
                }
            }
            self.dispatch_net_events(now)?;
            self.serve_edge_commands(now)?;

            let mut fed = 0;
            if stopping_since.is_none() && !feed_finished {
                self.feed.drive(self.poll.registry(), &self.clock);
                if let Some(s) = self.feed.take_log_status() {
                    self.pipe
                        .hub
                        .set_log_status(Nanos(now), &s, &self.pipe.engine);
                }
                (fed, next_feed, feed_finished) = self.pump(FEED_BATCH)?;
                while let Some((rec, why)) = self.feed.take_refused_command() {
                    self.pipe.hub.refuse_forwarded(&rec, &why);
                }
            }
            self.pipe.transmit_all(self.poll.registry(), now);

            if now >= next_timer {
                next_timer = now + TIMER_PERIOD_NS;
                self.run_timers(now)?;
                if self.rates.due(now) {
                    self.rates
                        .sample(now, &self.pipe.hub.stats(), &self.pipe.stats);
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
                self.pipe.stats.busy_ns += self.clock.now().saturating_sub(now);
            }
            if fed == 0 && !had_socket_events {
                // Idle time: fault in journal pages ahead of the writer, off the hot path.
                if let Some(j) = &mut self.pipe.journal {
                    let _ = j.pretouch();
                }
                if self.cfg.idle == IdleStrategy::Yield {
                    std::thread::yield_now();
                }
            }
        }
    }

    /// Feeds up to `max` due records through the pipeline; returns (records handled, when
    /// the next one is due, feed finished).
    fn pump(&mut self, max: usize) -> std::io::Result<(usize, u64, bool)> {
        let mut fed = 0;
        let waits = self.feed.can_wait();
        if waits && self.pipe.fault.is_some() {
            // The journal cannot take records: a replayed journal keeps them until it can.
            return Ok((0, self.clock.now() + TIMER_PERIOD_NS, false));
        }
        if let Some((recv, source, kind, payload)) = self.held.take() {
            let registry = self.poll.registry();
            self.pipe
                .handle_input(registry, recv, source, kind, &payload, true)?;
            forward_venue_commands(&mut self.pipe.engine, &mut *self.feed);
            fed += 1;
        }
        let (next, finished) = loop {
            if fed >= max {
                break (0, false);
            }
            match self.feed.poll(self.clock.now())? {
                FeedPoll::Record(rec) => {
                    let (recv, source, kind) = (rec.recv, rec.source, rec.kind);
                    let registry = self.poll.registry();
                    let handled =
                        self.pipe
                            .handle_input(registry, recv, source, kind, &rec.payload, true)?;
                    if handled == Handled::Skipped && waits {
                        self.held = Some((recv, source, kind, rec.payload.into_owned()));
                        break (self.clock.now() + TIMER_PERIOD_NS, false);
                    }
                    forward_venue_commands(&mut self.pipe.engine, &mut *self.feed);
                    fed += 1;
                }
                FeedPoll::NotBefore(due) => break (due, false),
                FeedPoll::Restarted => {
                    self.pipe.flush_wire(self.poll.registry());
                    self.adopt_origin_run();
                    // A new pass: the books start over as after a reconnect.
                    self.pipe.engine =
                        Engine::new(self.cfg.engine.clone()).map_err(std::io::Error::other)?;
                    if let Some(shm) = &mut self.pipe.shm {
                        shm.restart();
                    }
                    self.pipe.stats.passes += 1;
                    self.feed_desk_setup()?;
                }
                FeedPoll::Finished => break (u64::MAX, true),
            }
        };
        self.pipe.flush_wire(self.poll.registry());
        Ok((fed, next, finished))
    }

    /// Journals and applies one input that is not from the feed (a client record, the desk
    /// setup); its messages are written before the next input.
    fn handle_input(
        &mut self,
        now: u64,
        source: SourceId,
        kind: u16,
        payload: &[u8],
    ) -> std::io::Result<()> {
        self.pipe
            .handle_input(self.poll.registry(), now, source, kind, payload, false)?;
        forward_venue_commands(&mut self.pipe.engine, &mut *self.feed);
        Ok(())
    }

    /// Journals and applies the desk setup (if configured) as a client record.
    fn feed_desk_setup(&mut self) -> std::io::Result<()> {
        let Some(setup) = &self.cfg.desk else {
            return Ok(());
        };
        let payload = setup.to_payload();
        let now = self.clock.now();
        self.handle_input(
            now,
            SourceId(CLIENT_SOURCE),
            RecordKind::DeskSetup as u16,
            payload.as_bytes(),
        )
    }

    /// Journals and applies the client records the hub produced (logins, private
    /// subscriptions, order entry), in order.
    /// On an edge they go to the origin instead, which journals and applies them: they come
    /// back in its log like every record.
    fn drain_client_records(&mut self, now: u64) -> std::io::Result<()> {
        let edge = self.feed.forwards_client_records().is_some();
        while let Some((kind, payload)) = self.pipe.hub.poll_record() {
            if edge {
                self.feed.forward_client_record(kind, &payload);
            } else {
                self.handle_input(now, SourceId(CLIENT_SOURCE), kind, &payload)?;
            }
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
                    method,
                    path,
                    query,
                    authorization,
                    host,
                    ws_accept,
                } => {
                    if self.replays.is_some() && replay_route::is_replay_path(&path) {
                        let req = replay_route::ReplayRequest {
                            method: &method,
                            path: &path,
                            query: &query,
                            authorization: authorization.as_deref(),
                            ws_accept,
                        };
                        if let Some(answer) = self.replay_request(conn, req, now) {
                            self.respond(conn, &answer);
                        }
                        continue;
                    }
                    let req = http::Request {
                        method: &method,
                        path: &path,
                        authorization: authorization.as_deref(),
                        host: host.as_deref(),
                    };
                    let answer = self.http_route(req, now);
                    self.respond(conn, &answer);
                }
                NetEvent::Open {
                    conn, query, peer, ..
                } => {
                    if !self.anonymous.admit(&self.cfg.net, conn, peer.ip(), &query) {
                        if let Some(net) = &mut self.pipe.net {
                            net.close(
                                self.poll.registry(),
                                conn,
                                CLOSE_TOO_MANY_CONNECTIONS,
                                "too many anonymous connections from this address: authenticate \
                                 (?token=) or close some",
                            );
                        }
                        continue;
                    }
                    self.pipe.hub.handle_open(now_n, conn_of(conn), &query);
                    self.drain_client_records(now)?;
                }
                NetEvent::Text { conn, text } => {
                    self.pipe.hub.handle_heard(now_n, conn_of(conn));
                    self.pipe
                        .hub
                        .handle_text(now_n, conn_of(conn), &text, &self.pipe.engine);
                    if self.pipe.hub.session_user(conn_of(conn)).is_some() {
                        // Authenticated now: no longer one of its address's anonymous sessions.
                        self.anonymous.forget(conn);
                    }
                    self.drain_client_records(now)?;
                }
                NetEvent::Binary { conn, len } => {
                    self.pipe.hub.handle_heard(now_n, conn_of(conn));
                    self.pipe.hub.handle_binary(now_n, conn_of(conn), len);
                }
                NetEvent::Writable { conn } => {
                    self.pipe.transmit(self.poll.registry(), now, conn_of(conn));
                }
                NetEvent::Closed { conn, .. } => {
                    self.anonymous.forget(conn);
                    self.pipe.hub.handle_closed(conn_of(conn));
                    self.drain_client_records(now)?;
                }
            }
        }
        self.net_events = events;
        Ok(())
    }

    /// Writes an HTTP answer to `conn` (then the transport closes it).
    fn respond(&mut self, conn: SocketId, answer: &http::Answer) {
        let headers: Vec<(&str, &str)> = answer
            .headers
            .iter()
            .map(|(n, v)| (*n, v.as_str()))
            .collect();
        if let Some(net) = &mut self.pipe.net {
            net.respond_http_with(
                self.poll.registry(),
                conn,
                answer.status,
                answer.content_type,
                &headers,
                &answer.body,
            );
        }
    }

    fn run_timers(&mut self, now: u64) -> std::io::Result<()> {
        if let Some(p) = &mut self.pipe.nats {
            p.flush();
            if let Some(s) = p.take_log_status(now) {
                self.pipe
                    .hub
                    .set_log_status(Nanos(now), &s, &self.pipe.engine);
            }
        }
        if self.pipe.retry_journal(now) {
            // Inputs were skipped: what they fed starts over (a live venue reconnects and its
            // books resync; a replayed journal held its records and just goes on).
            self.feed.resync(self.poll.registry(), &self.clock);
        }
        // Only when a hub deadline (heartbeat, slow consumer) or action is due: walking every
        // connection on each tick would be O(clients) work on the engine thread for nothing.
        let mut actions = std::mem::take(&mut self.actions);
        if self.pipe.hub.poll_timeout().is_some_and(|t| t.0 <= now) {
            // Pongs and other control frames count as activity for the heartbeat.
            for c in self.pipe.hub.connections() {
                if let Some(heard) = self
                    .pipe
                    .net
                    .as_ref()
                    .and_then(|n| n.last_heard(socket_of(c)))
                {
                    self.pipe.hub.handle_heard(Nanos(heard), c);
                }
            }
            self.pipe.hub.handle_timeout(Nanos(now), &mut actions);
        }
        for a in actions.drain(..) {
            match a {
                Action::Ping(c) => {
                    if let Some(net) = &mut self.pipe.net {
                        net.ping(self.poll.registry(), socket_of(c));
                    }
                }
                Action::Close { conn, code, reason } => {
                    // Let the last queued message (e.g. the 4003 error) go out first.
                    self.pipe.transmit(self.poll.registry(), now, conn);
                    if let Some(net) = &mut self.pipe.net {
                        net.close(self.poll.registry(), socket_of(conn), code, &reason);
                    }
                }
            }
        }
        self.actions = actions;
        if let Some(net) = &mut self.pipe.net {
            net.tick(self.poll.registry(), now, &mut self.net_events);
        }
        self.dispatch_net_events(now)
    }

    fn flush_latency_log(&mut self, now: u64) -> std::io::Result<()> {
        if let Some(log) = &mut self.log {
            let start = self.log_interval_start.saturating_sub(self.started_ns) as f64 / 1e9;
            let len = now.saturating_sub(self.log_interval_start) as f64 / 1e9;
            log.write_interval(&mut self.pipe.latency, start, len)?;
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
        &self.pipe.engine
    }

    /// Loop counters.
    pub fn loop_stats(&self) -> LoopStats {
        self.pipe.stats
    }

    /// Replay session figures, when `/replay` is configured.
    pub fn replay_stats(&self) -> Option<crate::replay::ReplayStats> {
        self.replays.as_ref().map(crate::replay::Replays::stats)
    }

    /// The shared-memory directory, when publishing.
    pub fn shm_dir(&self) -> Option<&std::path::Path> {
        self.pipe.shm.as_ref().map(crate::shm::Publisher::dir)
    }
}

/// Hands the engine's venue commands to the feed, in order (a replay drops them: the venue's
/// answers are in the journal already).
fn forward_venue_commands(engine: &mut Engine, feed: &mut dyn Feed) {
    while let Some(cmd) = engine.poll_venue_command() {
        feed.handle_venue_command(cmd);
    }
}
