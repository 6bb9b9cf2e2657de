//! `tape.toml`: every key, its default, and validation. `docs/config.md` documents the same
//! keys; `config_reference_matches_defaults` keeps the two honest.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Client server settings.
    pub server: ServerSection,
    /// Per-connection limits.
    pub limits: LimitsSection,
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

impl JournalSection {
    /// The node's journal policy.
    pub fn policy(&self) -> tape_node::node::JournalPolicy {
        tape_node::node::JournalPolicy {
            options: tape_journal::JournalOptions {
                segment_size: self.segment_mib.saturating_mul(1 << 20),
                ..tape_journal::JournalOptions::default()
            },
            on_error: match self.on_error {
                OnJournalErrorKey::Degrade => tape_node::node::OnJournalError::Degrade,
                OnJournalErrorKey::Stop => tape_node::node::OnJournalError::Stop,
            },
            retry_ns: self.retry_ms.saturating_mul(1_000_000),
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
    /// Any of `viewer`, `trader`, `publisher`, `admin`.
    pub roles: Vec<String>,
    /// Open connections allowed; 0 = `auth.max_connections_per_user`.
    #[serde(default)]
    pub max_connections: usize,
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
        }
    }
}

impl Config {
    /// The desk setup, when users are configured. Validated like the journal record.
    ///
    /// # Errors
    /// A desk key with a bad value.
    pub fn desk_setup(&self) -> Result<Option<tape_core::desk::DeskSetup>> {
        if self.users.is_empty() {
            return Ok(None);
        }
        let d = &self.desk;
        let mut text = String::from("tape-desk/1\n");
        for u in &self.users {
            text.push_str(&format!("user={}\n", u.name));
        }
        text.push_str(&format!(
            "quote_asset={}\nmark={}\nmaker_fee_bps={}\ntaker_fee_bps={}\ngateway={}\n",
            d.quote_asset, d.mark, d.maker_fee_bps, d.taker_fee_bps, d.gateway
        ));
        for (k, v) in [
            ("max_order_qty", &d.max_order_qty),
            ("max_order_notional", &d.max_order_notional),
            ("max_position", &d.max_position),
            ("max_drawdown", &d.max_drawdown),
        ] {
            if !v.is_empty() {
                text.push_str(&format!("{k}={v}\n"));
            }
        }
        for (k, v) in [
            ("max_open_orders", d.max_open_orders),
            ("max_orders_per_sec", d.max_orders_per_sec),
        ] {
            if v > 0 {
                text.push_str(&format!("{k}={v}\n"));
            }
        }
        let setup = tape_core::desk::DeskSetup::parse(text.as_bytes())
            .map_err(|e| anyhow::anyhow!("{}", e.to_string().replace("desk setup: ", "desk.")))?;
        Ok(Some(setup))
    }

    /// The authentication settings, when users are configured: the secret from `auth.secret`
    /// or else the environment variable `auth.secret_env`.
    ///
    /// # Errors
    /// No secret, a short one, a bad user name or role.
    pub fn auth_config(&self) -> Result<Option<tape_core::auth::AuthConfig>> {
        use tape_core::auth::{AuthConfig, Authenticator, Roles, UserDef};
        if self.users.is_empty() {
            return Ok(None);
        }
        let a = &self.auth;
        let secret = if a.secret.is_empty() {
            AuthConfig::secret_from_env(&a.secret_env).map_err(|e| anyhow::anyhow!("auth: {e}"))?
        } else {
            a.secret.clone().into_bytes()
        };
        let mut users = Vec::new();
        for u in &self.users {
            let roles = Roles::from_names(u.roles.iter().map(String::as_str))
                .map_err(|e| anyhow::anyhow!("user {:?}: {e}", u.name))?;
            users.push(UserDef {
                name: u.name.clone(),
                roles,
                max_connections: (u.max_connections > 0).then_some(u.max_connections),
            });
        }
        let mut cfg = AuthConfig::new(secret, users);
        cfg.leeway_s = a.leeway_secs;
        cfg.max_connections_per_user = a.max_connections_per_user;
        Authenticator::new(cfg.clone()).map_err(|e| anyhow::anyhow!("auth: {e}"))?;
        Ok(Some(cfg))
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
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            max_connections: 1000,
            max_message_bytes: 64 * 1024,
            max_subscriptions: 500,
            requests_per_sec: 20,
            request_burst: 40,
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
    /// `auto`, `sim`, `replay` or `live`.
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
    /// Combined-stream endpoint, e.g. `wss://fstream.binance.com/stream`.
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

impl Config {
    /// Reads and validates a config file.
    ///
    /// # Errors
    /// Unreadable file, TOML syntax, unknown keys, or invalid values (each names the file).
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read config", path.display()))?;
        let cfg: Config = toml::from_str(&text).map_err(|e| {
            anyhow::anyhow!("{}: {}", path.display(), e.to_string().replace('\n', " "))
        })?;
        cfg.validate()
            .with_context(|| format!("{}: invalid config", path.display()))?;
        Ok(cfg)
    }

    /// Checks values that parse but make no sense.
    ///
    /// # Errors
    /// The first invalid value, by key.
    pub fn validate(&self) -> Result<()> {
        let s = &self.server;
        if s.listen.parse::<std::net::SocketAddr>().is_err() {
            bail!("server.listen: {:?} is not an address:port", s.listen);
        }
        if !s.ws_path.starts_with('/') {
            bail!("server.ws_path must start with '/'");
        }
        if !s.echo_path.is_empty() && (!s.echo_path.starts_with('/') || s.echo_path == s.ws_path) {
            bail!("server.echo_path must start with '/' and differ from ws_path");
        }
        if s.tls_cert.is_empty() != s.tls_key.is_empty() {
            bail!("server.tls_cert and server.tls_key go together");
        }
        if s.outbound_queue == 0 {
            bail!("server.outbound_queue must be at least 1");
        }
        if s.heartbeat_secs == 0 {
            bail!("server.heartbeat_secs must be at least 1");
        }
        if s.first_byte_timeout_ms == 0 || s.handshake_timeout_ms < s.first_byte_timeout_ms {
            bail!("server.first_byte_timeout_ms must be >= 1 and <= server.handshake_timeout_ms");
        }
        if s.max_handshaking == 0 {
            bail!("server.max_handshaking must be at least 1");
        }
        let l = &self.limits;
        if l.max_connections == 0 || l.max_message_bytes < 64 || l.requests_per_sec == 0 {
            bail!("limits: max_connections, requests_per_sec must be >= 1 and max_message_bytes >= 64");
        }
        if l.request_burst < 1 {
            bail!("limits.request_burst must be at least 1");
        }
        self.journal
            .policy()
            .options
            .validate()
            .context("journal.segment_mib")?;
        if self.journal.retry_ms == 0 {
            bail!("journal.retry_ms must be at least 1");
        }
        if self.engine.latency_log_interval_secs == 0 {
            bail!("engine.latency_log_interval_secs must be at least 1");
        }
        let lv = &self.live;
        if lv.reconnect_initial_ms == 0 || lv.reconnect_max_ms < lv.reconnect_initial_ms {
            bail!("live.reconnect_initial_ms must be >= 1 and <= live.reconnect_max_ms");
        }
        if lv.connect_timeout_ms == 0 || lv.stall_timeout_ms < 3 || lv.snapshot_timeout_ms == 0 {
            bail!("live: connect_timeout_ms, snapshot_timeout_ms >= 1 and stall_timeout_ms >= 3");
        }
        if lv.max_frame_bytes < 1024 || lv.max_snapshot_bytes < 1024 {
            bail!("live: max_frame_bytes and max_snapshot_bytes must be at least 1024");
        }
        if lv.snapshot_retry_ms == 0 {
            bail!("live.snapshot_retry_ms must be at least 1");
        }
        if let Some(setup) = self.desk_setup()? {
            if setup.gateway.is_some() {
                if self.feed_kind() == FeedKind::Replay {
                    bail!("desk.gateway = {:?} needs a live feed ([[venue]]s or the simulator), not a journal replay", self.desk.gateway);
                }
                if self.feed_kind() == FeedKind::Live && self.desk.gateway_url.is_empty() {
                    bail!("desk.gateway_url is required with [[venue]]s (the venue's WebSocket order API)");
                }
            }
            if !self.desk.gateway_url.is_empty() {
                tape_node::live::WsUrl::parse(&self.desk.gateway_url)
                    .map_err(|e| anyhow::anyhow!("desk.gateway_url: {e}"))?;
            }
        }
        for u in &self.users {
            tape_core::auth::Roles::from_names(u.roles.iter().map(String::as_str))
                .map_err(|e| anyhow::anyhow!("user {:?}: {e}", u.name))?;
        }
        if self.feed.source == FeedKind::Live && self.venues.is_empty() {
            bail!("feed.source = \"live\" needs at least one [[venue]]");
        }
        for f in &self.sim.faults {
            if let Err(e) = f.parse::<crate::sim::ScheduledFault>() {
                bail!("sim.faults: {f:?}: {e}");
            }
        }
        let mut names = std::collections::HashSet::new();
        for (i, v) in self.venues.iter().enumerate() {
            let at = format!("venue[{i}] ({:?})", v.name);
            if v.name.is_empty() || v.name.contains(char::is_whitespace) || !names.insert(&v.name) {
                bail!("{at}: name must be non-empty, unique, without spaces");
            }
            if tape_core::instrument::Market::parse(&v.market).is_none() {
                bail!(
                    "{at}: market must be spot, usdm or coinm, not {:?}",
                    v.market
                );
            }
            tape_node::live::WsUrl::parse(&v.ws_url)
                .map_err(|e| anyhow::anyhow!("{at}: ws_url: {e}"))?;
            if !(v.rest_url.starts_with("https://") || v.rest_url.starts_with("http://")) {
                bail!("{at}: rest_url must be an https:// (or http://) URL");
            }
            if v.symbols.is_empty() {
                bail!("{at}: symbols must name at least one symbol");
            }
            for sym in &v.symbols {
                if sym.is_empty()
                    || sym.len() > 32
                    || !sym.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    bail!("{at}: bad symbol {sym:?}");
                }
            }
            if v.streams.is_empty() {
                bail!("{at}: streams must not be empty");
            }
            for st in &v.streams {
                if !STREAMS.contains(&st.as_str()) {
                    bail!(
                        "{at}: unknown stream {st:?} (one of {})",
                        STREAMS.join(", ")
                    );
                }
            }
            if !(5..=5000).contains(&v.snapshot_limit) {
                bail!("{at}: snapshot_limit must be 5 to 5000");
            }
            for (sym, [p, q]) in &v.scales {
                if *p > 18 || *q > 18 || !v.symbols.iter().any(|s| s.eq_ignore_ascii_case(sym)) {
                    bail!("{at}: scales.{sym}: scales 0 to 18, for a listed symbol");
                }
            }
        }
        Ok(())
    }

    /// The feed `tape run` uses.
    pub fn feed_kind(&self) -> FeedKind {
        match self.feed.source {
            FeedKind::Auto if !self.venues.is_empty() => FeedKind::Live,
            FeedKind::Auto if !self.feed.journal.is_empty() => FeedKind::Replay,
            FeedKind::Auto => FeedKind::Sim,
            other => other,
        }
    }

    /// The journal to replay: the configured one, or the bundled session.
    pub fn journal_path(&self) -> PathBuf {
        if !self.feed.journal.is_empty() {
            return PathBuf::from(&self.feed.journal);
        }
        let local = PathBuf::from("fixtures/session");
        if local.is_dir() {
            return local;
        }
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/session")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_all_defaults() {
        let c: Config = toml::from_str("").unwrap();
        assert_eq!(c, Config::default());
        c.validate().unwrap();
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let e = toml::from_str::<Config>("[server]\nlisten_addr = \"x\"\n").unwrap_err();
        assert!(e.to_string().contains("listen_addr"), "{e}");
        let c: Config = toml::from_str("[server]\nlisten = \"nope\"\n").unwrap();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("server.listen"));
        let c: Config = toml::from_str("[engine]\nidle = \"spin\"\n[feed]\nspeed = 0\n").unwrap();
        assert_eq!(c.engine.idle, Idle::Spin);
        assert_eq!(c.feed.speed, 0);
        assert!(toml::from_str::<Config>("[engine]\nidle = \"nap\"\n").is_err());
    }

    #[test]
    fn example_configs_load_and_are_live() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
        for (file, venues) in [("live.toml", 2), ("sim.toml", 3)] {
            let c = Config::load(&dir.join(file)).unwrap();
            assert_eq!(c.venues.len(), venues, "{file}");
            assert_eq!(c.feed_kind(), FeedKind::Live, "{file}");
        }
        let c = Config::load(&dir.join("desk.toml")).unwrap();
        let setup = c.desk_setup().unwrap().unwrap();
        assert_eq!(setup.users, ["alice", "bob", "signals", "dashboard"]);
        assert_eq!(setup.max_open_orders, Some(50));
        assert_eq!(c.users[3].max_connections, 20);
    }

    #[test]
    fn desk_and_user_mistakes_are_named() {
        let user = "[[user]]\nname = \"a\"\nroles = [\"trader\"]\n";
        for (extra, needle) in [
            ("[desk]\nmax_order_qty = \"x\"\n", "max_order_qty"),
            ("[desk]\nmark = \"vwap\"\n", "mark"),
            ("[[user]]\nname = \"b\"\nroles = [\"god\"]\n", "god"),
            ("[[user]]\nname = \"a\"\nroles = []\n", "duplicate"),
        ] {
            let c: Config = toml::from_str(&format!("{user}{extra}")).unwrap();
            let e = format!("{:#}", c.validate().unwrap_err());
            assert!(e.contains(needle), "{extra}: {e}");
        }
        // No secret anywhere: named when the node is configured.
        let mut c: Config = toml::from_str(user).unwrap();
        c.auth.secret_env = "TAPE_TEST_SURELY_UNSET_VARIABLE".into();
        let e = format!("{:#}", c.auth_config().unwrap_err());
        assert!(e.contains("TAPE_TEST_SURELY_UNSET_VARIABLE"), "{e}");
    }

    #[test]
    fn venue_and_sim_mistakes_are_named() {
        let base = "[[venue]]\nname = \"a\"\nmarket = \"usdm\"\nws_url = \"wss://h/stream\"\nrest_url = \"https://h\"\nsymbols = [\"BTCUSDT\"]\n";
        let ok: Config = toml::from_str(base).unwrap();
        ok.validate().unwrap();
        assert_eq!(ok.venues[0].streams, default_streams());
        for (extra, needle) in [
            ("streams = [\"kline_1m\"]\n", "unknown stream"),
            ("snapshot_limit = 1\n", "snapshot_limit"),
            ("scales = { ETHUSDT = [2, 3] }\n", "scales.ETHUSDT"),
        ] {
            let c: Config = toml::from_str(&format!("{base}{extra}")).unwrap();
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(needle), "{extra}: {e}");
        }
        let two = format!("{base}{base}");
        let c: Config = toml::from_str(&two).unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("unique"));
        let c: Config =
            toml::from_str(&base.replace("wss://h/stream", "https://h/stream")).unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("ws_url"));
        let c: Config = toml::from_str(&base.replace("usdm", "options")).unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("market"));
        let c: Config = toml::from_str("[sim]\nfaults = [\"explode@3\"]\n").unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("sim.faults"));
        let c: Config = toml::from_str("[feed]\nsource = \"live\"\n").unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("[[venue]]"));
        let c: Config = toml::from_str("[live]\nreconnect_initial_ms = 0\n").unwrap();
        assert!(c.validate().is_err());
        assert_eq!(Config::default().feed_kind(), FeedKind::Sim);
    }

    /// Every key in docs/config.md's tables exists with the documented default, and every
    /// key of the config is documented.
    #[test]
    fn config_reference_matches_defaults() {
        let doc = std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/config.md"),
        )
        .unwrap();
        let defaults = toml::Value::try_from(Config::default()).unwrap();
        let mut documented = 0;
        for line in doc.lines() {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            if cells.len() < 4 || !cells[1].starts_with('`') || !cells[1].contains('.') {
                continue;
            }
            let key = cells[1].trim_matches('`');
            let default = cells[2].trim_matches('`');
            let (section, name) = key.split_once('.').unwrap();
            let v = defaults
                .get(section)
                .and_then(|s| s.get(name))
                .unwrap_or_else(|| panic!("docs/config.md documents unknown key {key}"));
            let shown = match v {
                toml::Value::String(s) => format!("\"{s}\""),
                other => other.to_string(),
            };
            assert_eq!(shown, default, "default of {key}");
            documented += 1;
        }
        let total: usize = defaults
            .as_table()
            .unwrap()
            .values()
            .map(|s| s.as_table().unwrap().len())
            .sum();
        assert_eq!(documented, total, "every key is documented");
    }
}
