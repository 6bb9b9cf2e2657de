//! `tape run`: the engine as a server, fed by a journal replay (the bundled session by
//! default), until SIGINT/SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use tape_engine::engine::EngineConfig;
use tape_engine::net::{load_tls_config, NetConfig};
use tape_engine::node::{IdleStrategy, Node, NodeConfig};
use tape_engine::server::HubConfig;

use crate::config::{Config, Idle};

/// Command-line overrides of the config file.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct RunArgs {
    /// Config file (TOML); see docs/config.md.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Listen address (server.listen), e.g. 127.0.0.1:0 for a free port.
    #[arg(long)]
    pub listen: Option<String>,
    /// Journal to replay (feed.journal); default: the bundled session.
    #[arg(long)]
    pub journal: Option<PathBuf>,
    /// Replay pace (feed.speed): 1 recorded, N times faster, 0 as fast as possible.
    #[arg(long)]
    pub speed: Option<u32>,
    /// Play the journal once instead of looping (feed.loop = false).
    #[arg(long)]
    pub once: bool,
    /// Idle strategy (engine.idle).
    #[arg(long, value_enum)]
    pub idle: Option<Idle>,
    /// Pin the engine thread to this CPU (engine.cpu).
    #[arg(long)]
    pub cpu: Option<i64>,
    /// Journal every input into this directory before applying it (feed.record).
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// HdrHistogram interval log of every stage (engine.latency_log).
    #[arg(long)]
    pub latency_log: Option<PathBuf>,
    /// Echo endpoint path (server.echo_path), for conformance tests.
    #[arg(long)]
    pub echo_path: Option<String>,
    /// Seconds between status lines (server.status_interval_secs); 0 = none.
    #[arg(long)]
    pub status_interval: Option<u64>,
    /// Stop by itself after this many seconds (tests, demos).
    #[arg(long)]
    pub exit_after: Option<u64>,
}

/// Merges the config file and the flags.
///
/// # Errors
/// An unreadable or invalid config.
pub fn resolve(args: &RunArgs) -> Result<Config> {
    let mut cfg = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if let Some(v) = &args.listen {
        cfg.server.listen = v.clone();
    }
    if let Some(v) = &args.journal {
        cfg.feed.journal = v.display().to_string();
    }
    if let Some(v) = args.speed {
        cfg.feed.speed = v;
    }
    if args.once {
        cfg.feed.repeat = false;
    }
    if let Some(v) = args.idle {
        cfg.engine.idle = v;
    }
    if let Some(v) = args.cpu {
        cfg.engine.cpu = v;
    }
    if let Some(v) = &args.record {
        cfg.feed.record = v.display().to_string();
    }
    if let Some(v) = &args.latency_log {
        cfg.engine.latency_log = v.display().to_string();
    }
    if let Some(v) = &args.echo_path {
        cfg.server.echo_path = v.clone();
    }
    if let Some(v) = args.status_interval {
        cfg.server.status_interval_secs = v;
    }
    cfg.validate().context("invalid settings")?;
    Ok(cfg)
}

/// Builds the node configuration.
///
/// # Errors
/// TLS files that cannot be loaded.
pub fn node_config(cfg: &Config) -> Result<NodeConfig> {
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
    Ok(NodeConfig {
        listen,
        net: NetConfig {
            ws_path: s.ws_path.clone(),
            echo_path: (!s.echo_path.is_empty()).then(|| s.echo_path.clone()),
            // Sockets in every phase (HTTP, handshakes, closing) beyond the WebSocket limit,
            // so a refused client still gets its 4003 reply.
            max_sockets: l.max_connections + l.max_connections / 4 + 16,
            // The transport's hard cap: a request over `max_message_bytes` gets error 4008 from
            // the hub and the connection stays; only a frame over 4x the limit is closed (1009).
            max_message_bytes: l.max_message_bytes.saturating_mul(4),
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
            ..HubConfig::default()
        },
        engine: EngineConfig::default(),
        idle: match cfg.engine.idle {
            Idle::Spin => IdleStrategy::Spin,
            Idle::Yield => IdleStrategy::Yield,
            Idle::Block => IdleStrategy::Block,
        },
        journal: cfg.journal_path(),
        speed: cfg.feed.speed,
        repeat: cfg.feed.repeat,
        record: (!cfg.feed.record.is_empty()).then(|| PathBuf::from(&cfg.feed.record)),
        latency_log: (!cfg.engine.latency_log.is_empty())
            .then(|| PathBuf::from(&cfg.engine.latency_log)),
        interval_ns: cfg
            .engine
            .latency_log_interval_secs
            .saturating_mul(1_000_000_000),
    })
}

/// Prints a console line; a closed stdout (the reader went away) must not stop the engine.
fn say(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_fmt(line);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

/// Runs the engine until SIGINT/SIGTERM (or `--exit-after`).
///
/// # Errors
/// Bad settings, bind failures, an unreadable journal, a failing loop.
pub fn run(args: &RunArgs) -> Result<()> {
    let cfg = resolve(args)?;
    let node_cfg = node_config(&cfg)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("install signal handler")?;
    }
    if cfg.engine.cpu >= 0 {
        let id = core_affinity::CoreId {
            id: usize::try_from(cfg.engine.cpu).unwrap_or(0),
        };
        if !core_affinity::set_for_current(id) {
            bail!("engine.cpu: cannot pin to CPU {}", cfg.engine.cpu);
        }
    }
    if let Some(secs) = args.exit_after {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(secs));
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
    }
    let journal = node_cfg.journal.clone();
    let mut node =
        Node::bind(node_cfg).with_context(|| format!("cannot start on {}", cfg.server.listen))?;
    let scheme = if cfg.server.tls_cert.is_empty() {
        ("ws", "http")
    } else {
        ("wss", "https")
    };
    let addr = node.local_addr();
    say(format_args!(
        "tape serving {}://{addr}{}",
        scheme.0, cfg.server.ws_path
    ));
    say(format_args!(
        "  status  {}://{addr}/status   metrics {}://{addr}/metrics",
        scheme.1, scheme.1
    ));
    say(format_args!(
        "  feed    {} at {}",
        journal.display(),
        match cfg.feed.speed {
            0 => "full speed".to_owned(),
            1 => "recorded pace".to_owned(),
            n => format!("{n}x recorded pace"),
        }
    ));
    let every = cfg
        .server
        .status_interval_secs
        .saturating_mul(1_000_000_000);
    node.run(&stop, every, |line| say(format_args!("{line}")))
        .context("engine loop")?;
    say(format_args!("tape stopped: {}", node.status_line_now()));
    Ok(())
}
