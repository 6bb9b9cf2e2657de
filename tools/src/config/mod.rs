//! `tape.toml`: every key, its default, and validation. `docs/config.md` documents the same
//! keys; `config_reference_matches_defaults` keeps the two honest.
//!
//! This module is the schema: one struct per TOML section, each with its defaults. Loading and
//! validation live in `validate`, turning the file into what the node and core take (desk
//! setup, auth config, the feed it resolves to) in `convert`.

mod convert;
pub mod credentials;
mod validate;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Client server settings.
    pub server: ServerSection,
    /// Per-connection limits.
    pub limits: LimitsSection,
    /// What each stream keeps for clients that `resume`.
    pub history: HistorySection,
    /// The event loop.
    pub engine: EngineSection,
    /// Where market data comes from.
    pub feed: FeedSection,
    /// How the journal (`feed.record`) is written and what a failed write does.
    pub journal: JournalSection,
    /// Live venue connections: reconnects, timeouts, snapshots, TLS trust.
    pub live: LiveSection,
    /// The venue simulator that `tape run` starts in-process when no venue is configured.
    pub sim: SimSection,
    /// Venue connections (`[[venue]]`, one per combined stream); any makes the feed live.
    #[serde(rename = "venue", skip_serializing_if = "Vec::is_empty")]
    pub venues: Vec<VenueSection>,
    /// Client authentication (JWT HS256).
    pub auth: AuthSection,
    /// The trading desk every configured user gets an account on.
    pub desk: DeskSection,
    /// Users (`[[user]]`); any turns on authentication, private channels and the desk.
    #[serde(rename = "user", skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<UserSection>,
    /// The shared-memory publication for colocated readers (off unless enabled).
    pub shm: ShmSection,
    /// Replay on demand (`/replay`, `/replay.ndjson`): off until a journal is listed.
    pub replay: ReplaySection,
    /// Scale-out over NATS: an origin publishes its log, an edge (`feed.source = "nats"`)
    /// follows it (docs/scale-out.md).
    pub nats: NatsSection,
}

/// `[replay]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplaySection {
    /// The journals clients may replay, by name; none turns `/replay` off (404).
    pub journals: Vec<ReplayJournal>,
    /// Replay sessions at once at most (503 beyond).
    pub max_sessions: usize,
    /// Market data may be replayed without a token.
    pub public: bool,
    /// Niceness of the replay threads, 0..=19.
    pub nice: i32,
}

/// One `[[replay.journals]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayJournal {
    /// What clients call it (`journal=NAME`).
    pub name: String,
    /// Its directory on this host (never shown to clients).
    pub dir: String,
}

impl Default for ReplaySection {
    fn default() -> Self {
        ReplaySection {
            journals: Vec::new(),
            max_sessions: 4,
            public: false,
            nice: 19,
        }
    }
}

impl ReplaySection {
    /// The node's replay settings; `None` when no journal is listed.
    pub fn config(&self) -> Option<tape_node::replay::ReplayConfig> {
        (!self.journals.is_empty()).then(|| tape_node::replay::ReplayConfig {
            journals: self
                .journals
                .iter()
                .map(|j| (j.name.clone(), std::path::PathBuf::from(&j.dir)))
                .collect(),
            max_sessions: self.max_sessions,
            public: self.public,
            nice: self.nice,
        })
    }
}

/// `[nats]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsSection {
    /// Origin: publish every journaled record (an edge follows whatever this says).
    pub enabled: bool,
    /// Server URL(s), comma-separated.
    pub url: String,
    /// Subject of the records; heartbeats go to `<subject>.hb`.
    pub subject: String,
    /// JetStream stream keeping the records for late or lagging edges.
    pub stream: String,
    /// The stream keeps records at most this long, seconds (0: no age limit).
    pub max_age_secs: u64,
    /// ... and at most this many MiB (the oldest go first).
    pub max_mib: u64,
    /// Origin: heartbeat period, ms.
    pub heartbeat_ms: u64,
    /// Edge: no heartbeat for this long and the origin counts as silent (books stale), ms.
    pub origin_timeout_ms: u64,
    /// Origin: records held unacknowledged (NATS down or slow) before the run's log is
    /// given up.
    pub max_backlog: usize,
    /// Edge: its id, unique among the deployment's edges (1 to 2047).
    pub edge_id: u32,
}

impl Default for NatsSection {
    fn default() -> Self {
        NatsSection {
            enabled: false,
            url: "nats://127.0.0.1:4222".into(),
            subject: "tape.log".into(),
            stream: "TAPE_LOG".into(),
            max_age_secs: 86_400,
            max_mib: 8192,
            heartbeat_ms: 500,
            origin_timeout_ms: 3000,
            max_backlog: 4_000_000,
            edge_id: 1,
        }
    }
}

/// `[shm]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShmSection {
    /// Publish books and accounts in shared memory (`--shm DIR` turns it on).
    pub enabled: bool,
    /// The directory (created if its parent exists).
    pub dir: String,
    /// Levels per side in the depth records.
    pub levels: u32,
    /// Instrument slots of the market file.
    pub max_instruments: u32,
    /// Room for positions in each user file.
    pub max_positions: u32,
    /// Room for open orders in each user file.
    pub max_orders: u32,
    /// Octal mode of the market file.
    pub market_mode: String,
    /// Octal mode of the user files (never readable by every account).
    pub user_mode: String,
    /// Group of the user files (name or gid; a user's `shm_group` overrides); empty = the
    /// engine's.
    pub user_group: String,
}

impl Default for ShmSection {
    fn default() -> Self {
        ShmSection {
            enabled: false,
            dir: tape_shm::DEFAULT_DIR.into(),
            levels: tape_shm::DEFAULT_LEVELS,
            max_instruments: tape_shm::DEFAULT_MAX_INSTRUMENTS,
            max_positions: tape_shm::DEFAULT_MAX_POSITIONS,
            max_orders: tape_shm::DEFAULT_MAX_ORDERS,
            market_mode: "0644".into(),
            user_mode: "0600".into(),
            user_group: String::new(),
        }
    }
}

/// What the node does when it cannot journal an input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnJournalErrorKey {
    /// Keep serving, apply nothing unjournaled, take no order, retry (see docs/journal.md).
    #[default]
    Degrade,
    /// Stop the node with an error.
    Stop,
}

/// `[journal]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JournalSection {
    /// Segment file size in MiB (each is allocated in full when created).
    pub segment_mib: u64,
    /// `degrade` or `stop` when an append fails (a full disk).
    pub on_error: OnJournalErrorKey,
    /// While degraded, how often to try again, ms.
    pub retry_ms: u64,
}

impl Default for JournalSection {
    fn default() -> Self {
        JournalSection {
            segment_mib: 64,
            on_error: OnJournalErrorKey::Degrade,
            retry_ms: 1000,
        }
    }
}

/// `[auth]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSection {
    /// Environment variable holding the HS256 secret (used when `secret` is empty).
    pub secret_env: String,
    /// The secret itself (for tests and examples; prefer `secret_env`).
    pub secret: String,
    /// Clock skew tolerated on `exp`/`nbf`, seconds.
    pub leeway_secs: u64,
    /// Open connections per user unless the user sets `max_connections`.
    pub max_connections_per_user: usize,
}

impl Default for AuthSection {
    fn default() -> Self {
        AuthSection {
            secret_env: "TAPE_JWT_SECRET".into(),
            secret: String::new(),
            leeway_secs: 30,
            max_connections_per_user: 5,
        }
    }
}

/// `[[user]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSection {
    /// The name a token's `sub` must carry.
    pub name: String,
    /// Any of `viewer`, `trader`, `publisher`, `admin`, `replay`.
    pub roles: Vec<String>,
    /// Open connections allowed; 0 = `auth.max_connections_per_user`.
    #[serde(default)]
    pub max_connections: usize,
    /// Group (name or gid) of this user's shared-memory file; empty = `shm.user_group`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub shm_group: String,
}

/// `[desk]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeskSection {
    /// Asset the portfolio is summarised in.
    pub quote_asset: String,
    /// What marks positions: `mid` or `last`.
    pub mark: String,
    /// Paper venue maker fee, basis points.
    pub maker_fee_bps: i64,
    /// Paper venue taker fee, basis points.
    pub taker_fee_bps: i64,
    /// Largest quantity of one order (decimal); empty = no limit.
    pub max_order_qty: String,
    /// Largest notional of one order (quote asset, decimal); empty = no limit.
    pub max_order_notional: String,
    /// Largest absolute position per instrument (decimal); empty = no limit.
    pub max_position: String,
    /// Most live orders per user; 0 = no limit.
    pub max_open_orders: u32,
    /// Most orders per second per user; 0 = no limit.
    pub max_orders_per_sec: u32,
    /// Drawdown of PnL equity from its peak that raises an alert (decimal); empty = none.
    pub max_drawdown: String,
    /// Where orders go: `paper` (inside the engine), or the order API of a `spot`, `usdm`
    /// or `coinm` venue.
    pub gateway: String,
    /// That venue's WebSocket order API URL; empty = the in-process simulator's.
    pub gateway_url: String,
    /// Environment variable holding the API key.
    pub api_key_env: String,
    /// File holding the API key.
    pub api_key_file: String,
    /// PEM file of the Ed25519 private key (unencrypted PKCS#8).
    pub ed25519_key_file: String,
    /// Environment variable holding the HMAC secret.
    pub hmac_secret_env: String,
    /// File holding the HMAC secret.
    pub hmac_secret_file: String,
    /// `recvWindow` of signed requests, ms (0 = the venue's default).
    pub recv_window_ms: u64,
    /// How often the venue's clock offset is measured again, ms (0 = only at connect).
    pub time_sync_ms: u64,
    /// A request the venue has not answered after this long is reconciled, ms.
    pub request_timeout_ms: u64,
    /// Futures: the user-data stream the listenKey is appended to; empty = derived from
    /// the gateway URL for Binance's hosts and the simulator.
    pub user_data_url: String,
    /// Futures: how often the listenKey is kept alive, ms.
    pub listen_key_ping_ms: u64,
    /// `auto`, `true` or `false`: orders are risk-checked, signed and journaled, not sent.
    /// `auto` is true with a `gateway_url` (a real venue) and false for the simulator.
    pub dry_run: String,
    /// On shutdown, cancel every open order first.
    pub cancel_on_shutdown: bool,
}

impl DeskSection {
    /// Whether orders are only signed and journaled (`dry_run`, `auto` resolved).
    pub fn dry_run(&self) -> anyhow::Result<bool> {
        match self.dry_run.as_str() {
            "auto" => Ok(!self.gateway_url.is_empty()),
            "true" => Ok(true),
            "false" => Ok(false),
            other => {
                anyhow::bail!("desk.dry_run must be \"auto\", \"true\" or \"false\", not {other:?}")
            }
        }
    }
}

impl Default for DeskSection {
    fn default() -> Self {
        DeskSection {
            quote_asset: "USDT".into(),
            mark: "mid".into(),
            maker_fee_bps: 2,
            taker_fee_bps: 4,
            max_order_qty: String::new(),
            max_order_notional: String::new(),
            max_position: String::new(),
            max_open_orders: 0,
            max_orders_per_sec: 0,
            max_drawdown: String::new(),
            gateway: "paper".into(),
            gateway_url: String::new(),
            api_key_env: String::new(),
            api_key_file: String::new(),
            ed25519_key_file: String::new(),
            hmac_secret_env: String::new(),
            hmac_secret_file: String::new(),
            recv_window_ms: 5000,
            time_sync_ms: 600_000,
            request_timeout_ms: 10_000,
            user_data_url: String::new(),
            listen_key_ping_ms: 1_800_000,
            dry_run: "auto".into(),
            cancel_on_shutdown: true,
        }
    }
}

/// Which feed `tape run` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeedKind {
    /// `live` when `[[venue]]`s are configured, else `replay` when `feed.journal` is set,
    /// else `sim`.
    Auto,
    /// The venue simulator in-process, reached through the real TLS client.
    Sim,
    /// A journal replay.
    Replay,
    /// The configured venues.
    Live,
    /// An edge: the origin's log over NATS (`[nats]`).
    Nats,
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    /// Address and port to listen on (`127.0.0.1:0` picks a free port).
    pub listen: String,
    /// WebSocket path.
    pub ws_path: String,
    /// Echo endpoint path for conformance tests; empty = off.
    pub echo_path: String,
    /// PEM certificate chain for wss/https; empty = plain ws/http.
    pub tls_cert: String,
    /// PEM private key for `tls_cert`.
    pub tls_key: String,
    /// Outbound queue per connection, in messages.
    pub outbound_queue: usize,
    /// Kernel send buffer (`SO_SNDBUF`) of each client socket, bytes; 0 = the kernel's
    /// auto-tuning.
    pub send_buffer_bytes: usize,
    /// Close a client that stays behind this long (ms), with 4010.
    pub slow_client_timeout_ms: u64,
    /// WebSocket ping interval (s); silent for two intervals closes with 4011.
    pub heartbeat_secs: u64,
    /// Consecutive invalid requests before the connection is closed with 1008.
    pub max_errors: u32,
    /// Seconds between one-line status reports on stdout; 0 = none.
    pub status_interval_secs: u64,
    /// Time from accept to the first byte, ms; an idle socket is closed after it.
    pub first_byte_timeout_ms: u64,
    /// Time from accept to a completed handshake (or an answered HTTP request), ms.
    pub handshake_timeout_ms: u64,
    /// Sockets in their handshake at most, all addresses; a new one evicts the oldest.
    pub max_handshaking: usize,
    /// Sockets in their handshake from one IP address at most (more are closed); 0 = no limit.
    pub max_handshaking_per_ip: usize,
    /// Exempt loopback addresses from `max_handshaking_per_ip` (e.g. behind a local proxy).
    pub per_ip_exempt_loopback: bool,
    /// Serve the dashboard at `/`; off, `/` and its assets are 404.
    pub dashboard: bool,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: "127.0.0.1:8080".into(),
            ws_path: "/ws".into(),
            echo_path: String::new(),
            tls_cert: String::new(),
            tls_key: String::new(),
            outbound_queue: 100,
            send_buffer_bytes: 256 * 1024,
            slow_client_timeout_ms: 5_000,
            heartbeat_secs: 30,
            max_errors: 10,
            status_interval_secs: 5,
            first_byte_timeout_ms: 2_000,
            handshake_timeout_ms: 10_000,
            max_handshaking: 512,
            max_handshaking_per_ip: 64,
            per_ip_exempt_loopback: false,
            dashboard: true,
        }
    }
}

/// `[history]`: the budget of each stream's history, the window `resume` can replay
/// (per instrument for market channels, per user and channel for private ones). A count
/// or size of 0 turns that kind's history off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistorySection {
    /// `trades` messages kept per instrument.
    pub trades_messages: usize,
    /// `trades` bytes kept per instrument.
    pub trades_bytes: usize,
    /// `bbo` messages kept per instrument.
    pub bbo_messages: usize,
    /// `bbo` bytes kept per instrument.
    pub bbo_bytes: usize,
    /// `ticker` messages kept per instrument.
    pub ticker_messages: usize,
    /// `ticker` bytes kept per instrument.
    pub ticker_bytes: usize,
    /// `book` messages kept per instrument.
    pub book_messages: usize,
    /// `book` bytes kept per instrument.
    pub book_bytes: usize,
    /// Private messages kept per user and channel (per publisher for `signal`/`bot_status`).
    pub private_messages: usize,
    /// Private bytes kept per user and channel.
    pub private_bytes: usize,
}

impl Default for HistorySection {
    fn default() -> Self {
        let d = tape_core::server::HistoryConfig::default();
        HistorySection {
            trades_messages: d.trades.messages,
            trades_bytes: d.trades.bytes,
            bbo_messages: d.bbo.messages,
            bbo_bytes: d.bbo.bytes,
            ticker_messages: d.ticker.messages,
            ticker_bytes: d.ticker.bytes,
            book_messages: d.book.messages,
            book_bytes: d.book.bytes,
            private_messages: d.private.messages,
            private_bytes: d.private.bytes,
        }
    }
}

impl HistorySection {
    /// The hub's history budgets.
    pub fn budgets(&self) -> tape_core::server::HistoryConfig {
        use tape_core::server::{HistoryBudget, HistoryConfig};
        HistoryConfig {
            trades: HistoryBudget::new(self.trades_messages, self.trades_bytes),
            bbo: HistoryBudget::new(self.bbo_messages, self.bbo_bytes),
            ticker: HistoryBudget::new(self.ticker_messages, self.ticker_bytes),
            book: HistoryBudget::new(self.book_messages, self.book_bytes),
            private: HistoryBudget::new(self.private_messages, self.private_bytes),
        }
    }
}

/// `[limits]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsSection {
    /// Open WebSocket connections at most (4003 beyond).
    pub max_connections: usize,
    /// Largest client message in bytes (4008 / close 1009 beyond).
    pub max_message_bytes: usize,
    /// Subscriptions per connection (4009 beyond).
    pub max_subscriptions: usize,
    /// Sustained requests per second per connection (4007 beyond).
    pub requests_per_sec: u32,
    /// Request burst per connection.
    pub request_burst: u32,
    /// Bytes of unfinished messages held across all connections at most, MiB (1008 beyond).
    pub max_partial_mib: usize,
    /// Unauthenticated WebSocket sessions from one IP address at most (4003 beyond); 0 = none.
    pub max_anonymous_per_ip: usize,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            max_connections: 1000,
            max_message_bytes: 64 * 1024,
            max_subscriptions: 500,
            requests_per_sec: 20,
            request_burst: 40,
            max_partial_mib: 64,
            max_anonymous_per_ip: 256,
        }
    }
}

/// How the loop waits when there is nothing to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Idle {
    /// Zero-timeout polls, never sleeping: lowest latency, one core at 100 % (production).
    Spin,
    /// Zero-timeout polls with a `sched_yield` between empty ones.
    Yield,
    /// Sleep in `epoll_wait` until the next socket event or timer (laptops, tests).
    Block,
}

/// `[engine]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineSection {
    /// Idle strategy.
    pub idle: Idle,
    /// Pin the engine thread to this CPU; -1 = no pinning.
    pub cpu: i64,
    /// HdrHistogram interval log file; empty = none.
    pub latency_log: String,
    /// Seconds per interval in the latency log.
    pub latency_log_interval_secs: u64,
}

impl Default for EngineSection {
    fn default() -> Self {
        EngineSection {
            idle: Idle::Block,
            cpu: -1,
            latency_log: String::new(),
            latency_log_interval_secs: 5,
        }
    }
}

/// `[feed]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedSection {
    /// `auto`, `sim`, `replay`, `live` or `nats` (an edge).
    pub source: FeedKind,
    /// Journal to replay; empty = the bundled session.
    pub journal: String,
    /// Replay pace: 1 = recorded pace, N = N times faster, 0 = as fast as possible.
    pub speed: u32,
    /// Start again from the beginning when the journal ends.
    #[serde(rename = "loop")]
    pub repeat: bool,
    /// Journal every input the engine handles into this directory (a new journal, or one to
    /// continue); empty = none.
    pub record: String,
}

impl Default for FeedSection {
    fn default() -> Self {
        FeedSection {
            source: FeedKind::Auto,
            journal: String::new(),
            speed: 1,
            repeat: true,
            record: String::new(),
        }
    }
}

/// `[live]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiveSection {
    /// First reconnect delay ceiling, ms; doubles per failed attempt (full jitter).
    pub reconnect_initial_ms: u64,
    /// Reconnect delay cap, ms.
    pub reconnect_max_ms: u64,
    /// Time from the start of an attempt to an open WebSocket, ms.
    pub connect_timeout_ms: u64,
    /// Silence after which a venue connection is dropped as stalled, ms (a ping goes out at
    /// a third of it).
    pub stall_timeout_ms: u64,
    /// Largest frame accepted from a venue, bytes.
    pub max_frame_bytes: usize,
    /// Least time between two REST snapshot requests to one venue, ms.
    pub snapshot_min_interval_ms: u64,
    /// A snapshot request taking longer fails, ms.
    pub snapshot_timeout_ms: u64,
    /// First retry delay after a failed snapshot, ms (doubles up to reconnect_max_ms).
    pub snapshot_retry_ms: u64,
    /// Largest snapshot body accepted, bytes.
    pub max_snapshot_bytes: usize,
    /// Trust the Mozilla root certificates (webpki-roots).
    pub webpki_roots: bool,
    /// Extra CA certificates (PEM) to trust; empty = none.
    pub ca_file: String,
}

impl Default for LiveSection {
    fn default() -> Self {
        LiveSection {
            reconnect_initial_ms: 1_000,
            reconnect_max_ms: 30_000,
            connect_timeout_ms: 10_000,
            stall_timeout_ms: 30_000,
            max_frame_bytes: 4 << 20,
            snapshot_min_interval_ms: 1_000,
            snapshot_timeout_ms: 10_000,
            snapshot_retry_ms: 1_000,
            max_snapshot_bytes: 16 << 20,
            webpki_roots: true,
            ca_file: String::new(),
        }
    }
}

/// `[[venue]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VenueSection {
    /// Name in status and in the journal (no spaces).
    pub name: String,
    /// `spot`, `usdm` or `coinm`.
    pub market: String,
    /// Combined-stream endpoint, e.g. `wss://stream.binance.com:9443/stream`; for `usdm` the
    /// routed base, `wss://fstream.binance.com` (a legacy `.../stream` or `.../ws` is rewritten
    /// to it with a warning).
    pub ws_url: String,
    /// REST base for depth snapshots, e.g. `https://fapi.binance.com`.
    pub rest_url: String,
    /// Symbols (any case).
    pub symbols: Vec<String>,
    /// Streams per symbol.
    #[serde(default = "default_streams")]
    pub streams: Vec<String>,
    /// Levels per side of REST snapshots.
    #[serde(default = "default_snapshot_limit")]
    pub snapshot_limit: u32,
    /// Price/quantity scales of symbols, e.g. `{ BTCUSDT = [2, 3] }`; others use 8.
    #[serde(default)]
    pub scales: std::collections::BTreeMap<String, [u8; 2]>,
    /// `usdm` only: stream kind -> endpoint class (`public`, `market`) over Binance's table,
    /// e.g. `{ trade = "public" }`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub routes: std::collections::BTreeMap<String, String>,
}

fn default_streams() -> Vec<String> {
    ["depth@100ms", "trade", "bookTicker", "ticker"]
        .map(String::from)
        .to_vec()
}

fn default_snapshot_limit() -> u32 {
    1000
}

/// Streams a venue may subscribe to.
pub const STREAMS: [&str; 11] = [
    "depth",
    "depth@0ms",
    "depth@100ms",
    "depth@250ms",
    "depth@500ms",
    "depth@1000ms",
    "trade",
    "aggTrade",
    "bookTicker",
    "ticker",
    "miniTicker",
];

/// The stream kinds a USD-M venue's `routes` may move (those of [`STREAMS`]).
pub const ROUTE_KINDS: [&str; 6] = [
    "depth",
    "trade",
    "aggTrade",
    "bookTicker",
    "ticker",
    "miniTicker",
];

/// `[sim]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimSection {
    /// Journal or capture file the simulator serves; empty = the bundled session.
    pub journal: String,
    /// Pace: 1 = recorded, N = N times faster, 0 = as fast as possible.
    pub speed: u32,
    /// Start again (closing every stream with 1001) when the journal ends.
    #[serde(rename = "loop")]
    pub repeat: bool,
    /// Directory for the simulator's self-signed certificate; empty = a temporary one.
    pub cert_dir: String,
    /// Faults to inject, `KIND@SECONDS` (see docs/venue-sim.md).
    pub faults: Vec<String>,
}

impl Default for SimSection {
    fn default() -> Self {
        SimSection {
            journal: String::new(),
            speed: 1,
            repeat: true,
            cert_dir: String::new(),
            faults: Vec::new(),
        }
    }
}
