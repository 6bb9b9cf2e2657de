//! `tape venue-sim`: a local Binance that replays a journal over the real wire protocol.
//!
//! One listener per market in the journal (like Binance's separate hosts) serves combined
//! streams at `/stream?streams=a/b`, raw streams at `/ws/<name>`, and the REST depth endpoint
//! (`/api/v3/depth`, `/fapi/v1/depth`, `/dapi/v1/depth`), over TLS with a self-signed
//! certificate or plain. Frames go out with their recorded bytes, paced along one timeline;
//! depth snapshots come from the sim's own [`Engine`](tape_core::engine::Engine), which
//! follows the stream, so a snapshot always bridges the diffs that follow it. A WebSocket API
//! (`/ws-api/v3`, `/ws-fapi/v1`, `/ws-dapi/v1`) takes orders, matches them against those
//! books and sends Binance user-data events. Faults (drops,
//! gaps, stalls, bad frames, refused snapshots) are injected from a schedule, through
//! [`SimHandle::inject`], or over HTTP at `/sim/fault`. See `docs/venue-sim.md`.
//!
//! The simulator runs on its own thread with its own `mio::Poll`, on
//! [`NetServer`](tape_node::net::NetServer) for the server side.
//!
//! - `timeline`: loading a journal or capture file; stream names and wire forms of frames.
//! - `venue`: the event loop: clients, subscriptions, pacing, faults, REST.
//! - `rest`: request validation and snapshot bodies.
//! - `fault`: [`Fault`] and [`ScheduledFault`] and their text forms.
//! - `cert`: the self-signed certificate.
//! - `orders`: the WebSocket API's sim account: validation, matching, user-data events.
//! - `auth`: [`SimAuth`] and the registered [`ApiKeys`] (Binance's request signing).
//! - `cli`: the `tape venue-sim` subcommand.

mod auth;
mod cert;
pub mod cli;
mod fault;
mod limits;
mod orders;
mod rest;
mod timeline;
mod venue;

pub use auth::{ApiKeys, KeyFlag, SimAuth, MAX_API_KEY_LEN};
pub use fault::{Fault, ScheduledFault};
pub use limits::{Interval, LimitKind, RateLimit};

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use crossbeam_channel::{Receiver, Sender};
use mio::{Poll, Waker};
use tape_core::instrument::Market;
use tape_node::net::{load_tls_config, NetConfig, NetServer};

use timeline::Timeline;
use venue::{Cmd, Venue};

/// Markets in port order: `--port-base P` gives spot P, usdm P+1, coinm P+2.
pub const MARKETS: [Market; 3] = [Market::Spot, Market::UsdM, Market::CoinM];

/// How long [`SimHandle::stop`] waits for the sim thread before leaving it behind.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// Settings of a [`VenueSim`].
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// A journal directory, or a capture file (hftbacktest or cryptofeed) imported in memory.
    pub journal: PathBuf,
    /// Pace: 1 = recorded, N = N times faster, 0 = as fast as the clients read.
    pub speed: u32,
    /// At the end of the journal, close every stream with 1001 and start over; otherwise
    /// stop streaming (REST keeps answering from the final books).
    pub repeat: bool,
    /// Start the timeline when the first stream client connects (else at once).
    pub start_on_connect: bool,
    /// Address to listen on.
    pub listen_ip: IpAddr,
    /// Port per market in [`MARKETS`] order; 0 = ephemeral.
    pub ports: [u16; 3],
    /// Serve `wss://`/`https://` (else `ws://`/`http://`).
    pub tls: bool,
    /// Where `cert.pem` and `key.pem` are kept (created if missing, reused if present).
    pub cert_dir: PathBuf,
    /// Faults fired at timeline offsets, in every pass.
    pub faults: Vec<ScheduledFault>,
    /// Every stream client is pinged this often; clients silent for 3 intervals are dropped.
    pub ping_interval: Duration,
    /// Connections older than this are closed with 1001 (Binance: 24 hours); `None` = never.
    pub max_connection_age: Option<Duration>,
    /// Fee of a taker fill in basis points of its notional, charged in the quote asset.
    pub taker_fee_bps: i64,
    /// Fee of a maker fill (a resting order) in basis points; negative for a rebate.
    pub maker_fee_bps: i64,
    /// WebSocket API rate limits of every market; `None`: Binance's of each market
    /// ([`RateLimit::binance`]).
    pub rate_limits: Option<Vec<RateLimit>>,
    /// How long an address is banned (418) for violating a limit again after a 429
    /// (Binance: 2 minutes for a first offence, longer for repeat offenders).
    pub ip_ban: Duration,
    /// A futures listen key expires this long after its last `userDataStream.start` or
    /// `.ping` (Binance: 60 minutes).
    pub listen_key_validity: Duration,
    /// Who may use the WebSocket API. Default: [`SimAuth::Strict`] with no keys (signed
    /// requests are refused until keys are registered, as on Binance);
    /// [`SimAuth::Lenient`] checks nothing.
    pub auth: SimAuth,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            journal: crate::config::Config::default().journal_path(),
            speed: 1,
            repeat: true,
            start_on_connect: true,
            listen_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ports: [0; 3],
            tls: true,
            cert_dir: std::env::temp_dir().join("tape-venue-sim"),
            faults: Vec::new(),
            ping_interval: Duration::from_secs(20),
            max_connection_age: None,
            taker_fee_bps: 4,
            maker_fee_bps: 2,
            rate_limits: None,
            ip_ban: Duration::from_secs(120),
            listen_key_validity: Duration::from_secs(3600),
            auth: SimAuth::default(),
        }
    }
}

impl SimConfig {
    /// Ports `base`, `base + 1`, `base + 2` for spot, usdm and coinm (0 keeps them ephemeral).
    #[must_use]
    pub fn with_port_base(mut self, base: u16) -> Self {
        self.ports = if base == 0 {
            [0; 3]
        } else {
            [base, base.saturating_add(1), base.saturating_add(2)]
        };
        self
    }

    fn port(&self, market: Market) -> u16 {
        MARKETS
            .iter()
            .position(|m| *m == market)
            .map_or(0, |i| self.ports[i])
    }
}

/// Where one market is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The market.
    pub market: Market,
    /// The bound address.
    pub addr: SocketAddr,
    /// Combined-stream URL, e.g. `wss://127.0.0.1:PORT/stream` (add `?streams=a/b`); for USD-M
    /// the routed base, `wss://127.0.0.1:PORT` (add `/public/stream?streams=a/b`,
    /// `/market/stream?streams=a/b`).
    pub ws_url: String,
    /// REST base URL, e.g. `https://127.0.0.1:PORT`.
    pub rest_url: String,
    /// WebSocket API URL, e.g. `wss://127.0.0.1:PORT/ws-api/v3` (orders, user data).
    pub api_url: String,
    /// Futures: the user-data stream of a listenKey, as `desk.user_data_url` takes it
    /// (USD-M `wss://127.0.0.1:PORT/private/ws`, add `?listenKey=K`; COIN-M
    /// `wss://127.0.0.1:PORT/ws/{listenKey}`); empty on spot (user data comes through the
    /// WebSocket API).
    pub user_data_url: String,
    /// Symbols on this market, upper case, sorted.
    pub symbols: Vec<String>,
    /// `(price, quantity)` scales of the symbols whose snapshot source declares them.
    pub scales: BTreeMap<String, (u8, u8)>,
}

/// Counters of a running sim, copied out by [`SimHandle::stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SimStats {
    /// Records in the timeline.
    pub records: u64,
    /// Records handled in the current pass (the timeline position).
    pub position: u64,
    /// Recorded time of the position, ms after the journal's first record.
    pub offset_ms: u64,
    /// Passes started (0 until the first stream client when starting on connect).
    pub passes: u64,
    /// The last pass reached the end of the journal and did not restart.
    pub finished: bool,
    /// Frames queued to clients (one per client and frame).
    pub frames_sent: u64,
    /// Depth frames held back by `gap` faults.
    pub frames_withheld: u64,
    /// Frames sent cut in half by `truncate` faults.
    pub frames_truncated: u64,
    /// Stream clients connected now (the `/private` ones included).
    pub clients: u64,
    /// Futures user-data connections (`/private`) open now.
    pub private_clients: u64,
    /// WebSocket API connections open now.
    pub api_clients: u64,
    /// WebSocket API connections ever opened.
    pub api_clients_total: u64,
    /// WebSocket API requests handled (answered with a result or an error, refused by a rate
    /// limit, or carried out unanswered under `mute-api`).
    pub api_requests: u64,
    /// Orders the WebSocket API accepted.
    pub orders_placed: u64,
    /// Fills of those orders (taker and maker).
    pub fills: u64,
    /// WebSocket API requests refused by a rate limit (429) or a ban (418).
    pub api_rate_limited: u64,
    /// WebSocket API requests carried out but not answered (`mute-api`).
    pub api_unanswered: u64,
    /// Stream clients ever connected.
    pub clients_total: u64,
    /// Clients dropped for not answering pings.
    pub clients_silent: u64,
    /// Clients closed because they could not keep up (paced modes).
    pub clients_slow: u64,
    /// Clients closed at the connection age limit.
    pub clients_aged_out: u64,
    /// REST depth requests answered 200.
    pub snapshots_served: u64,
    /// REST depth requests answered 503 (book not synced yet, or `refuse-snapshot`).
    pub snapshots_refused: u64,
    /// HTTP requests and WebSocket messages refused as invalid (4xx, error replies; every
    /// WebSocket API error answer, including a cancel of an unknown order).
    pub bad_requests: u64,
    /// Faults applied (scheduled, injected and over HTTP).
    pub faults_applied: u64,
    /// WebSocket API requests refused by authentication (strict mode: a missing or unknown
    /// key, a bad signature, a timestamp outside the window, no logon); also in
    /// `bad_requests`.
    pub auth_refused: u64,
    /// Records the sim's engine rejected (e.g. frames of a market it cannot decode).
    pub engine_errors: u64,
    /// Why the sim thread stopped on its own, if it did.
    pub error: Option<String>,
}

/// The simulator; [`VenueSim::start`] runs one.
#[derive(Debug)]
pub struct VenueSim;

impl VenueSim {
    /// Loads the journal, binds one listener per market, and starts the sim thread.
    ///
    /// # Errors
    /// An unreadable journal, certificate trouble, or a port that cannot be bound.
    pub fn start(cfg: SimConfig) -> Result<SimHandle> {
        let tl = Timeline::load(&cfg.journal)?;
        let (ca, tls) = if cfg.tls {
            let files = cert::ensure(&cfg.cert_dir)?;
            let tls = load_tls_config(&files.cert, &files.key).map_err(|e| anyhow::anyhow!(e))?;
            (Some(files.cert), Some(tls))
        } else {
            (None, None)
        };
        let poll = Poll::new().context("creating the sim's poll")?;
        let waker = Arc::new(Waker::new(poll.registry(), venue::WAKER).context("waker")?);
        let (ws, http) = if cfg.tls {
            ("wss", "https")
        } else {
            ("ws", "http")
        };
        let mut nets = Vec::new();
        let mut endpoints = Vec::new();
        for (i, &market) in tl.markets.iter().enumerate() {
            let net_cfg = NetConfig {
                ws_path: "/stream".to_owned(),
                // USD-M: every upgrade is a WebSocket (`/public`, `/market`, `/private`, the
                // API); `Venue::on_open` routes the path and closes unknown ones with 1008.
                // Spot and COIN-M serve only `/stream` and `/ws...` (the API, COIN-M's
                // `/ws/<listenKey>`), like Binance: anything else is a 404.
                ws_path_prefix: Some(if market == Market::UsdM { "/" } else { "/ws" }.to_owned()),
                max_sockets: venue::MAX_SOCKETS,
                write_buffer_limit: venue::WRITE_BUFFER_LIMIT,
                tls: tls.clone(),
                ..NetConfig::default()
            };
            let addr = SocketAddr::new(cfg.listen_ip, cfg.port(market));
            let net = NetServer::bind(addr, net_cfg, poll.registry(), venue::first_token(i))
                .with_context(|| format!("{market}: cannot listen on {addr}"))?;
            let local = net.local_addr();
            let host = match local.ip() {
                ip if ip.is_unspecified() && ip.is_ipv4() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                ip if ip.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
                ip => ip,
            };
            let shown = SocketAddr::new(host, local.port());
            let symbols = tl.symbols.iter().filter(|s| s.market == market);
            endpoints.push(Endpoint {
                market,
                addr: local,
                ws_url: match market {
                    // USD-M routes by path: the base of `/public` and `/market`.
                    Market::UsdM => format!("{ws}://{shown}"),
                    _ => format!("{ws}://{shown}/stream"),
                },
                rest_url: format!("{http}://{shown}"),
                api_url: format!("{ws}://{shown}{}", venue::api_path(market)),
                user_data_url: match market {
                    Market::UsdM => format!("{ws}://{shown}/private/ws"),
                    Market::CoinM => format!("{ws}://{shown}/ws/{{listenKey}}"),
                    Market::Spot => String::new(),
                },
                symbols: symbols.clone().map(|s| s.name.clone()).collect(),
                scales: symbols
                    .filter_map(|s| Some((s.name.clone(), s.scales?)))
                    .collect(),
            });
            nets.push(net);
        }
        let (tx, rx) = crossbeam_channel::unbounded();
        let stats = Arc::new(Mutex::new(SimStats::default()));
        let venue = Venue::new(&cfg, tl, poll, nets, rx, Arc::clone(&stats))?;
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        let thread = std::thread::Builder::new()
            .name("venue-sim".to_owned())
            .spawn(move || {
                venue.run();
                let _ = done_tx.send(());
            })
            .context("spawning the sim thread")?;
        Ok(SimHandle {
            endpoints,
            ca,
            tx,
            waker,
            stats,
            thread: Some(thread),
            done: done_rx,
        })
    }
}

/// A running simulator. Dropping it stops the sim, like [`SimHandle::stop`].
#[derive(Debug)]
pub struct SimHandle {
    endpoints: Vec<Endpoint>,
    ca: Option<PathBuf>,
    tx: Sender<Cmd>,
    waker: Arc<Waker>,
    stats: Arc<Mutex<SimStats>>,
    thread: Option<JoinHandle<()>>,
    done: Receiver<()>,
}

impl SimHandle {
    /// One endpoint per market in the journal, in [`MARKETS`] order.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The endpoint of `market`, if the journal has it.
    pub fn endpoint(&self, market: Market) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.market == market)
    }

    /// The certificate to trust as a CA (`None` when serving plain).
    pub fn ca_path(&self) -> Option<&Path> {
        self.ca.as_deref()
    }

    /// Applies `fault` on every market, as soon as the sim thread sees it.
    pub fn inject(&self, fault: Fault) {
        self.send(Cmd::Inject(None, fault));
    }

    /// Applies `fault` on one market's listener only (a stall always stops the whole
    /// timeline).
    pub fn inject_on(&self, market: Market, fault: Fault) {
        self.send(Cmd::Inject(Some(market), fault));
    }

    /// The counters as of the sim's last loop turn.
    pub fn stats(&self) -> SimStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Closes every connection (1001) and joins the sim thread, waiting at most a few seconds.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn send(&self, cmd: Cmd) {
        if self.tx.send(cmd).is_ok() {
            let _ = self.waker.wake();
        }
    }

    fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.send(Cmd::Stop);
        // Join only a thread that is known to be done, so a stuck sim cannot hang the caller.
        if self.done.recv_timeout(STOP_WAIT).is_ok() {
            let _ = thread.join();
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_move_between_threads_and_ports_follow_the_base() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<SimHandle>();
        let cfg = SimConfig::default().with_port_base(9443);
        assert_eq!(MARKETS.map(|m| cfg.port(m)), [9443, 9444, 9445]);
        assert_eq!(SimConfig::default().with_port_base(0).ports, [0; 3]);
    }
}
