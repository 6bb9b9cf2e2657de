//! `tape run` and `tape record`: the engine fed by live venues, by the venue simulator
//! in-process (the default: the bundled session served over wss and reached through the real
//! TLS client), or by a journal replay; serving clients (`run`) or only journaling (`record`),
//! until SIGINT/SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use tape_core::engine::EngineConfig;
use tape_core::instrument::Market;
use tape_core::server::HubConfig;
use tape_node::live::{
    client_tls_config, usdm_base, Credentials, Endpoint, GatewayOptions, LiveConfig, Routes,
    VenueSpec,
};
use tape_node::net::{load_tls_config, NetConfig};
use tape_node::node::{FeedSource, IdleStrategy, Node, NodeConfig};

use crate::config::{Config, FeedKind, Idle};
use crate::sim::{ScheduledFault, SimAuth, SimConfig, SimHandle, VenueSim};

/// The flags `tape run` and `tape edge` share: overrides of the node's own settings.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct NodeArgs {
    /// Config file (TOML); see docs/config.md.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Listen address (server.listen), e.g. 127.0.0.1:0 for a free port.
    #[arg(long)]
    pub listen: Option<String>,
    /// Idle strategy (engine.idle).
    #[arg(long, value_enum)]
    pub idle: Option<Idle>,
    /// Pin the engine thread to this CPU (engine.cpu).
    #[arg(long)]
    pub cpu: Option<i64>,
    /// Journal every input into this directory before applying it (feed.record); an edge's
    /// journal of the origin's log replays to the origin's digest.
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// HdrHistogram interval log of every stage (engine.latency_log).
    #[arg(long)]
    pub latency_log: Option<PathBuf>,
    /// Seconds between status lines (server.status_interval_secs); 0 = none.
    #[arg(long)]
    pub status_interval: Option<u64>,
    /// Stop by itself after this many seconds (tests, demos).
    #[arg(long)]
    pub exit_after: Option<u64>,
    /// Publish books and accounts in shared memory in this directory (shm.enabled, shm.dir),
    /// e.g. /dev/shm/tape; read it with `tape shm-read DIR`.
    #[arg(long, value_name = "DIR")]
    pub shm: Option<PathBuf>,
    /// NATS server URL (nats.url): `tape run` publishes its log there (nats.enabled), `tape
    /// edge` follows it.
    #[arg(long, value_name = "URL")]
    pub nats: Option<String>,
}

/// `tape run`'s flags: the node's, and those of its feed (a journal or the simulator).
#[derive(Debug, Default, Clone, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Journal to replay (feed.journal) instead of the simulator.
    #[arg(long)]
    pub journal: Option<PathBuf>,
    /// Pace of the replay or simulator (feed.speed, sim.speed): 1 recorded, N times faster,
    /// 0 as fast as possible.
    #[arg(long)]
    pub speed: Option<u32>,
    /// Play the journal once instead of looping (feed.loop, sim.loop = false).
    #[arg(long)]
    pub once: bool,
    /// Echo endpoint path (server.echo_path), for conformance tests.
    #[arg(long)]
    pub echo_path: Option<String>,
    /// Run as an edge (`tape edge`: feed.source = "nats").
    #[arg(skip)]
    pub edge: bool,
}

/// `tape edge`'s flags: the node's only (an edge's feed is the origin's log: no journal to
/// replay, no pace, no simulator).
#[derive(Debug, Default, Clone, clap::Args)]
pub struct EdgeArgs {
    #[command(flatten)]
    pub node: NodeArgs,
}

impl From<EdgeArgs> for RunArgs {
    fn from(a: EdgeArgs) -> RunArgs {
        RunArgs {
            node: a.node,
            edge: true,
            ..RunArgs::default()
        }
    }
}

/// Merges the config file and the flags.
///
/// # Errors
/// An unreadable or invalid config.
pub fn resolve(args: &RunArgs) -> Result<Config> {
    let mut cfg = match &args.node.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if let Some(v) = &args.node.listen {
        cfg.server.listen = v.clone();
    }
    if let Some(v) = &args.journal {
        cfg.feed.journal = v.display().to_string();
    }
    if let Some(v) = args.speed {
        cfg.feed.speed = v;
        cfg.sim.speed = v;
    }
    if args.once {
        cfg.feed.repeat = false;
        cfg.sim.repeat = false;
    }
    if let Some(v) = args.node.idle {
        cfg.engine.idle = v;
    }
    if let Some(v) = args.node.cpu {
        cfg.engine.cpu = v;
    }
    if let Some(v) = &args.node.record {
        cfg.feed.record = v.display().to_string();
    }
    if let Some(v) = &args.node.latency_log {
        cfg.engine.latency_log = v.display().to_string();
    }
    if let Some(v) = &args.echo_path {
        cfg.server.echo_path = v.clone();
    }
    if let Some(v) = args.node.status_interval {
        cfg.server.status_interval_secs = v;
    }
    if let Some(v) = &args.node.shm {
        cfg.shm.enabled = true;
        cfg.shm.dir = v.display().to_string();
    }
    if let Some(v) = &args.node.nats {
        cfg.nats.url = v.clone();
        cfg.nats.enabled = true;
    }
    if args.edge {
        cfg.feed.source = FeedKind::Nats;
    }
    cfg.validate().context("invalid settings")?;
    Ok(cfg)
}

/// The live-feed settings for `venues`, trusting `extra_ca` besides `[live]`'s choices.
///
/// # Errors
/// An unreadable CA file.
pub fn live_config(
    cfg: &Config,
    venues: Vec<VenueSpec>,
    extra_ca: Option<&std::path::Path>,
) -> Result<LiveConfig> {
    let lv = &cfg.live;
    let ca = match (extra_ca, lv.ca_file.is_empty()) {
        (Some(p), _) => Some(p.to_owned()),
        (None, false) => Some(PathBuf::from(&lv.ca_file)),
        (None, true) => None,
    };
    let tls = client_tls_config(lv.webpki_roots || ca.is_none(), ca.as_deref())
        .map_err(|e| anyhow::anyhow!("live TLS: {e}"))?;
    let ms = |v: u64| v.saturating_mul(1_000_000);
    Ok(LiveConfig {
        venues,
        tls,
        reconnect_initial_ns: ms(lv.reconnect_initial_ms),
        reconnect_max_ns: ms(lv.reconnect_max_ms),
        connect_timeout_ns: ms(lv.connect_timeout_ms),
        stall_timeout_ns: ms(lv.stall_timeout_ms),
        max_frame_bytes: lv.max_frame_bytes,
        snapshot_min_interval_ns: ms(lv.snapshot_min_interval_ms),
        snapshot_timeout_ns: ms(lv.snapshot_timeout_ms),
        snapshot_retry_ns: ms(lv.snapshot_retry_ms),
        max_snapshot_bytes: lv.max_snapshot_bytes,
        jitter_seed: std::process::id().into(),
        gateway_url: (!cfg.users.is_empty()
            && cfg.desk.gateway != "paper"
            && !cfg.desk.gateway_url.is_empty())
        .then(|| cfg.desk.gateway_url.clone()),
        gateway: gateway_options(cfg)?,
    })
}

/// Points the order gateway at the simulator's WebSocket API for `market` (and, on
/// futures, its `/private` user-data stream).
pub fn use_sim_gateway(
    live: &mut LiveConfig,
    sim: &crate::sim::SimHandle,
    market: tape_core::instrument::Market,
) {
    if let Some(e) = sim.endpoints().iter().find(|e| e.market == market) {
        live.gateway_url = Some(e.api_url.clone());
        if live.gateway.user_data_url.is_none() && !e.user_data_url.is_empty() {
            live.gateway.user_data_url = Some(e.user_data_url.clone());
        }
    }
}

/// The order gateway's settings and credentials (`[desk]`).
pub fn gateway_options(cfg: &Config) -> anyhow::Result<GatewayOptions> {
    let d = &cfg.desk;
    let ms = |v: u64| v.saturating_mul(1_000_000);
    let market = tape_core::instrument::Market::parse(&d.gateway);
    let credentials = if market.is_some() && !cfg.users.is_empty() {
        crate::config::credentials::load(d)?
    } else {
        None
    };
    let user_data_url = if d.user_data_url.is_empty() {
        derive_user_data_url(&d.gateway_url)
    } else {
        Some(d.user_data_url.clone())
    };
    Ok(GatewayOptions {
        market,
        credentials,
        recv_window_ms: (d.recv_window_ms > 0).then_some(d.recv_window_ms),
        time_sync_ns: ms(d.time_sync_ms),
        request_timeout_ns: ms(d.request_timeout_ms),
        user_data_url,
        listen_key_ping_ns: ms(d.listen_key_ping_ms),
        dry_run: d.dry_run()?,
        cancel_on_shutdown: d.cancel_on_shutdown,
    })
}

/// Binance's futures user-data stream for its WebSocket API hosts: USD-M reads the
/// listenKey on the routed `/private` endpoint of the market-data host, COIN-M on
/// `dstream`'s `/ws/<listenKey>`.
pub fn derive_user_data_url(gateway_url: &str) -> Option<String> {
    let host = gateway_url
        .strip_prefix("wss://")?
        .split(['/', ':'])
        .next()?;
    match host {
        "ws-fapi.binance.com" => Some("wss://fstream.binance.com/private/ws".into()),
        // COIN-M's user data is not routed: the key is the stream's path.
        "ws-dapi.binance.com" => Some("wss://dstream.binance.com/ws/{listenKey}".into()),
        _ => None,
    }
}

/// The `[[venue]]`s as the engine takes them.
pub fn venue_specs(cfg: &Config) -> Vec<VenueSpec> {
    cfg.venues
        .iter()
        .map(|v| {
            let market = Market::parse(&v.market).unwrap_or(Market::Spot);
            let usdm = market == Market::UsdM;
            VenueSpec {
                name: v.name.clone(),
                market,
                // Validated; a legacy USD-M endpoint becomes its routed base here too, for
                // configs that never went through `Config::load`.
                ws_url: match usdm_base(&v.ws_url) {
                    Ok(b) if usdm => b.base().to_owned(),
                    _ => v.ws_url.clone(),
                },
                rest_url: v.rest_url.trim_end_matches('/').to_owned(),
                symbols: v.symbols.iter().map(|s| s.to_ascii_uppercase()).collect(),
                streams: v.streams.clone(),
                snapshot_limit: v.snapshot_limit,
                scales: v
                    .scales
                    .iter()
                    .map(|(s, [p, q])| (s.to_ascii_uppercase(), *p, *q))
                    .collect(),
                routes: usdm.then(|| {
                    Routes::with_overrides(
                        v.routes
                            .iter()
                            .filter_map(|(k, c)| Some((k.clone(), Endpoint::parse(c)?))),
                    )
                }),
            }
        })
        .collect()
}

/// The simulator settings of `[sim]`.
///
/// # Errors
/// A fault that does not parse.
pub fn sim_config(cfg: &Config) -> Result<SimConfig> {
    let s = &cfg.sim;
    let mut c = SimConfig::default();
    if !s.journal.is_empty() {
        c.journal = PathBuf::from(&s.journal);
    }
    c.speed = s.speed;
    c.repeat = s.repeat;
    // Strict like Binance; `start_sim` registers the run's own key.
    c.auth = SimAuth::Strict(crate::sim::ApiKeys::new());
    c.cert_dir = if s.cert_dir.is_empty() {
        // Per process: two simulators must never generate into one directory at once.
        private_cert_dir()
    } else {
        PathBuf::from(&s.cert_dir)
    };
    c.faults = s
        .faults
        .iter()
        .map(|f| {
            f.parse::<ScheduledFault>()
                .map_err(|e| anyhow::anyhow!("sim.faults: {f:?}: {e}"))
        })
        .collect::<Result<_>>()?;
    Ok(c)
}

/// The certificate directory of an in-process simulator with no `sim.cert_dir`.
fn private_cert_dir() -> PathBuf {
    std::env::temp_dir().join(format!("tape-sim-{}", std::process::id()))
}

/// Stops the simulator and removes its private certificate directory, if it has one.
fn stop_sim(cfg: &Config, sim: Option<SimHandle>) {
    if let Some(sim) = sim {
        sim.stop();
        if cfg.sim.cert_dir.is_empty() {
            let _ = std::fs::remove_dir_all(private_cert_dir());
        }
    }
}

/// One venue per market a simulator serves: all its symbols, every stream kind it can
/// carry, the scales it recorded.
pub fn sim_venues(sim: &SimHandle) -> Vec<VenueSpec> {
    sim.endpoints()
        .iter()
        .map(|e| VenueSpec {
            name: format!("sim-{}", e.market.as_str()),
            market: e.market,
            ws_url: e.ws_url.clone(),
            rest_url: e.rest_url.clone(),
            symbols: e.symbols.clone(),
            streams: ["depth@100ms", "trade", "aggTrade", "bookTicker", "ticker"]
                .map(String::from)
                .to_vec(),
            snapshot_limit: 1000,
            scales: e
                .scales
                .iter()
                .map(|(sym, (p, q))| (sym.clone(), *p, *q))
                .collect(),
            // USD-M's endpoint is the routed base: one connection per class.
            routes: (e.market == Market::UsdM).then(Routes::default),
        })
        .collect()
}

/// Starts the venue simulator of `[sim]` and returns it with its venues.
///
/// # Errors
/// The simulator could not start (bad journal, ports, certificate directory).
pub fn start_sim(cfg: &Config) -> Result<(SimHandle, Vec<VenueSpec>, Arc<Credentials>)> {
    let (credentials, keys) = local_key()?;
    let mut c = sim_config(cfg)?;
    c.auth = SimAuth::Strict(keys);
    let sim = VenueSim::start(c)?;
    let venues = sim_venues(&sim);
    Ok((sim, venues, credentials))
}

/// The API key name of [`local_key`].
pub const LOCAL_API_KEY: &str = "tapeLocalRun";

/// A fresh Ed25519 key for one run against the in-process simulator: tape's credentials and
/// the simulator's registration of its public half. Made from the OS's randomness, never
/// stored.
///
/// # Errors
/// The OS has no randomness to give.
pub fn local_key() -> Result<(Arc<Credentials>, crate::sim::ApiKeys)> {
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut seed[..])
        .map_err(|e| anyhow::anyhow!("randomness for the local key: {e}"))?;
    let key = tape_core::sign::Ed25519Key::from_seed(&seed);
    let keys = crate::sim::ApiKeys::new().with_ed25519(LOCAL_API_KEY, key.public())?;
    let creds = Credentials::new(LOCAL_API_KEY, tape_core::sign::Signer::Ed25519(key))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((Arc::new(creds), keys))
}

/// Builds the node configuration. For a live feed the venues are given (from the config or
/// from a simulator) with the CA to trust besides the configured ones.
///
/// # Errors
/// TLS files that cannot be loaded.
pub fn node_config(cfg: &Config) -> Result<NodeConfig> {
    node_config_with(cfg, None)
}

/// [`node_config`] with a live feed instead of the configured one.
///
/// # Errors
/// TLS files that cannot be loaded.
pub fn node_config_with(cfg: &Config, live: Option<LiveConfig>) -> Result<NodeConfig> {
    let s = &cfg.server;
    let l = &cfg.limits;
    let tls = if s.tls_cert.is_empty() {
        None
    } else {
        Some(
            load_tls_config(s.tls_cert.as_ref(), s.tls_key.as_ref())
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        )
    };
    let listen: SocketAddr = s.listen.parse().context("server.listen")?;
    let feed = match live {
        Some(l) => FeedSource::Live(Box::new(l)),
        None if cfg.feed_kind() == FeedKind::Live => {
            FeedSource::Live(Box::new(live_config(cfg, venue_specs(cfg), None)?))
        }
        None if cfg.feed_kind() == FeedKind::Nats => FeedSource::Edge(Box::new(cfg.nats_config())),
        None => FeedSource::Replay {
            journal: cfg.journal_path(),
            speed: cfg.feed.speed,
            repeat: cfg.feed.repeat,
        },
    };
    Ok(NodeConfig {
        listen: Some(listen),
        net: NetConfig {
            ws_path: s.ws_path.clone(),
            echo_path: (!s.echo_path.is_empty()).then(|| s.echo_path.clone()),
            // Open WebSockets, room beyond them for closing ones and for a refused client to
            // get its 4003 reply, plus the handshake pool: a flood of handshakes evicts its own
            // oldest and never takes a completed connection's socket.
            max_sockets: l.max_connections + l.max_connections / 4 + 16 + s.max_handshaking,
            handshake_timeout_ns: s.handshake_timeout_ms.saturating_mul(1_000_000),
            first_byte_timeout_ns: s.first_byte_timeout_ms.saturating_mul(1_000_000),
            max_handshaking: s.max_handshaking,
            max_handshaking_per_ip: s.max_handshaking_per_ip,
            max_partial_bytes: l.max_partial_mib.saturating_mul(1 << 20),
            max_anonymous_per_ip: l.max_anonymous_per_ip,
            per_ip_exempt_loopback: s.per_ip_exempt_loopback,
            // The transport's hard cap: a request over `max_message_bytes` gets error 4008 from
            // the hub and the connection stays; only a frame over 4x the limit is closed (1009).
            max_message_bytes: l.max_message_bytes.saturating_mul(4),
            send_buffer_bytes: s.send_buffer_bytes,
            tls,
            ..NetConfig::default()
        },
        hub: HubConfig {
            max_connections: l.max_connections,
            max_message_bytes: l.max_message_bytes,
            max_subscriptions: l.max_subscriptions,
            requests_per_sec: l.requests_per_sec,
            request_burst: l.request_burst,
            max_errors: s.max_errors,
            outbound_queue: s.outbound_queue,
            slow_client_timeout_ns: s.slow_client_timeout_ms.saturating_mul(1_000_000),
            heartbeat_interval_ns: s.heartbeat_secs.saturating_mul(1_000_000_000),
            history: cfg.history.budgets(),
            // Distinct per run, so a `resume` with another run's numbers is told so.
            run_id: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64),
            ..HubConfig::default()
        },
        engine: EngineConfig::default(),
        idle: match cfg.engine.idle {
            Idle::Spin => IdleStrategy::Spin,
            Idle::Yield => IdleStrategy::Yield,
            Idle::Block => IdleStrategy::Block,
        },
        feed,
        journal: cfg.journal.policy(),
        record: (!cfg.feed.record.is_empty()).then(|| PathBuf::from(&cfg.feed.record)),
        latency_log: (!cfg.engine.latency_log.is_empty())
            .then(|| PathBuf::from(&cfg.engine.latency_log)),
        interval_ns: cfg
            .engine
            .latency_log_interval_secs
            .saturating_mul(1_000_000_000),
        auth: cfg.auth_config()?,
        // An edge's desk setup comes in the origin's log.
        desk: if cfg.feed_kind() == FeedKind::Nats {
            None
        } else {
            cfg.desk_setup()?
        },
        shm: cfg.shm_config()?,
        dashboard: s.dashboard,
        replay: cfg.replay.config(),
        nats: (cfg.nats.enabled && cfg.feed_kind() != FeedKind::Nats).then(|| cfg.nats_config()),
    })
}

/// Prints a console line; a closed stdout (the reader went away) must not stop the engine.
fn say(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_fmt(line);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

/// The stop flag, set by SIGINT/SIGTERM and by `--exit-after`.
fn stop_flag(exit_after: Option<u64>) -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("install signal handler")?;
    }
    if let Some(secs) = exit_after {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(secs));
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
    }
    Ok(stop)
}

fn pin(cfg: &Config) -> Result<()> {
    if cfg.engine.cpu >= 0 {
        let id = core_affinity::CoreId {
            id: usize::try_from(cfg.engine.cpu).unwrap_or(0),
        };
        if !core_affinity::set_for_current(id) {
            bail!("engine.cpu: cannot pin to CPU {}", cfg.engine.cpu);
        }
    }
    Ok(())
}

/// The node configuration for the configured feed, starting the simulator if that is it.
fn prepare(cfg: &Config) -> Result<(NodeConfig, Option<SimHandle>, String)> {
    match cfg.feed_kind() {
        FeedKind::Sim => {
            let (sim, venues, local) = start_sim(cfg)?;
            let mut what = String::from("venue simulator (in-process, TLS):");
            for v in &venues {
                for c in v.connections() {
                    what.push_str(&format!("\n          {} {}", v.market.as_str(), c.url));
                }
            }
            let mut live = live_config(cfg, venues, sim.ca_path())?;
            if let Some(m) = cfg.desk_setup()?.and_then(|d| d.gateway) {
                if live.gateway_url.is_none() {
                    use_sim_gateway(&mut live, &sim, m);
                    // The simulator knows only the run's own key.
                    live.gateway.credentials = Some(local);
                }
                if let Some(u) = &live.gateway_url {
                    what.push_str(&format!("\n          orders {u}"));
                }
            }
            Ok((node_config_with(cfg, Some(live))?, Some(sim), what))
        }
        FeedKind::Live => {
            let mut what = String::from("live venues:");
            for v in venue_specs(cfg) {
                for c in v.connections() {
                    what.push_str(&format!("\n          {} {}", c.name, c.url));
                }
            }
            Ok((node_config(cfg)?, None, what))
        }
        FeedKind::Nats => Ok((
            node_config(cfg)?,
            None,
            format!(
                "the origin's log over NATS: {} (stream {})",
                cfg.nats.url, cfg.nats.stream
            ),
        )),
        FeedKind::Replay | FeedKind::Auto => {
            let what = format!(
                "journal {} at {}",
                cfg.journal_path().display(),
                match cfg.feed.speed {
                    0 => "full speed".to_owned(),
                    1 => "recorded pace".to_owned(),
                    n => format!("{n}x recorded pace"),
                }
            );
            Ok((node_config(cfg)?, None, what))
        }
    }
}

/// Runs the engine until SIGINT/SIGTERM (or `--exit-after`).
///
/// # Errors
/// Bad settings, bind failures, an unreadable journal, a failing loop.
pub fn run(args: &RunArgs) -> Result<()> {
    let cfg = resolve(args)?;
    let stop = stop_flag(args.node.exit_after)?;
    let (node_cfg, sim, what) = prepare(&cfg)?;
    pin(&cfg)?;
    let mut node =
        Node::bind(node_cfg).with_context(|| format!("cannot start on {}", cfg.server.listen))?;
    let scheme = if cfg.server.tls_cert.is_empty() {
        ("ws", "http")
    } else {
        ("wss", "https")
    };
    let addr = node
        .local_addr()
        .map_or_else(|| "-".to_owned(), |a| a.to_string());
    say(format_args!(
        "tape serving {}://{addr}{}",
        scheme.0, cfg.server.ws_path
    ));
    say(format_args!(
        "  status  {}://{addr}/status   metrics {}://{addr}/metrics",
        scheme.1, scheme.1
    ));
    say(format_args!("  feed    {what}"));
    if let Some(dir) = node.shm_dir() {
        say(format_args!(
            "  shm     {} (read it with: tape shm-read {})",
            dir.display(),
            dir.display()
        ));
    }
    if cfg.feed_kind() != FeedKind::Replay && cfg.feed.record.is_empty() {
        say(format_args!(
            "  journal off: set feed.record (or --record DIR) to journal the live inputs"
        ));
    }
    let every = cfg
        .server
        .status_interval_secs
        .saturating_mul(1_000_000_000);
    node.run(&stop, every, |line| say(format_args!("{line}")))
        .context("engine loop")?;
    let d = node.engine().digest();
    say(format_args!("tape stopped: {}", node.status_line_now()));
    say(format_args!(
        "  digest {:016x} over {} outputs, {} records",
        d.value(),
        d.count(),
        node.loop_stats().records
    ));
    stop_sim(&cfg, sim);
    Ok(())
}

/// `tape record`: what `tape run` would do with the same config, journaling every input and
/// serving no client.
#[derive(Debug, Clone, clap::Args)]
pub struct RecordArgs {
    /// Config file (TOML) with `[[venue]]`s; without one, the venue simulator is recorded.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Journal directory (feed.record); a new journal, or one of the same config to continue.
    #[arg(short = 'o', long = "out")]
    pub out: Option<PathBuf>,
    /// Idle strategy (engine.idle).
    #[arg(long, value_enum)]
    pub idle: Option<Idle>,
    /// Seconds between status lines; 0 = none.
    #[arg(long)]
    pub status_interval: Option<u64>,
    /// Stop by itself after this many seconds.
    #[arg(long)]
    pub exit_after: Option<u64>,
}

/// Runs `tape record`.
///
/// # Errors
/// Bad settings, no journal directory, a replay config, a failing loop or journal.
pub fn record(args: &RecordArgs) -> Result<()> {
    let mut cfg = resolve(&RunArgs {
        node: NodeArgs {
            config: args.config.clone(),
            record: args.out.clone(),
            idle: args.idle,
            status_interval: args.status_interval,
            ..NodeArgs::default()
        },
        ..RunArgs::default()
    })?;
    if cfg.feed.record.is_empty() {
        bail!("tape record needs a journal directory: --out DIR (or feed.record)");
    }
    if cfg.feed_kind() == FeedKind::Replay {
        bail!("tape record records live venues or the simulator, not a journal replay");
    }
    cfg.server.status_interval_secs = args
        .status_interval
        .unwrap_or(cfg.server.status_interval_secs);
    let stop = stop_flag(args.exit_after)?;
    let (mut node_cfg, sim, what) = prepare(&cfg)?;
    node_cfg.listen = None;
    pin(&cfg)?;
    let mut node = Node::bind(node_cfg).context("cannot start")?;
    say(format_args!("tape recording {what}"));
    say(format_args!("  into    {}", cfg.feed.record));
    let every = cfg
        .server
        .status_interval_secs
        .saturating_mul(1_000_000_000);
    node.run(&stop, every, |line| say(format_args!("{line}")))
        .context("engine loop")?;
    let d = node.engine().digest();
    say(format_args!(
        "tape recorded {} records into {}; digest {:016x} over {} outputs",
        node.loop_stats().records,
        cfg.feed.record,
        d.value(),
        d.count()
    ));
    stop_sim(&cfg, sim);
    Ok(())
}
