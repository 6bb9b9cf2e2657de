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
    /// Close a client that stays behind this long (ms), with 4010.
    pub slow_client_timeout_ms: u64,
    /// WebSocket ping interval (s); silent for two intervals closes with 4011.
    pub heartbeat_secs: u64,
    /// Consecutive invalid requests before the connection is closed with 1008.
    pub max_errors: u32,
    /// Seconds between one-line status reports on stdout; 0 = none.
    pub status_interval_secs: u64,
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
            slow_client_timeout_ms: 5_000,
            heartbeat_secs: 30,
            max_errors: 10,
            status_interval_secs: 5,
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
            journal: String::new(),
            speed: 1,
            repeat: true,
            record: String::new(),
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
        let l = &self.limits;
        if l.max_connections == 0 || l.max_message_bytes < 64 || l.requests_per_sec == 0 {
            bail!("limits: max_connections, requests_per_sec must be >= 1 and max_message_bytes >= 64");
        }
        if l.request_burst < 1 {
            bail!("limits.request_burst must be at least 1");
        }
        if self.engine.latency_log_interval_secs == 0 {
            bail!("engine.latency_log_interval_secs must be at least 1");
        }
        Ok(())
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
