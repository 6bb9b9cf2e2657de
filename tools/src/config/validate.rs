//! Loading `tape.toml` and checking the values that parse but make no sense.

use std::path::Path;

use anyhow::{bail, Context, Result};

use tape_core::instrument::Market;
use tape_node::live::{usdm_base, Endpoint, UsdmBase};

use super::{Config, FeedKind, ROUTE_KINDS, STREAMS};

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
        let mut cfg = cfg;
        for warning in cfg.rewrite_legacy_urls() {
            eprintln!("tape: {}: warning: {warning}", path.display());
        }
        Ok(cfg)
    }

    /// Rewrites every USD-M venue's legacy `ws_url` (`.../stream`, `.../ws`: Binance retired
    /// them on 2026-04-23, and they deliver only `/public` streams) to its routed base; one
    /// warning per rewrite, saying what to write instead. Call after [`Config::validate`].
    pub fn rewrite_legacy_urls(&mut self) -> Vec<String> {
        let mut warnings = Vec::new();
        for (i, v) in self.venues.iter_mut().enumerate() {
            if Market::parse(&v.market) != Some(Market::UsdM) {
                continue;
            }
            if let Ok(UsdmBase::Legacy { base }) = usdm_base(&v.ws_url) {
                warnings.push(format!(
                    "venue[{i}] ({:?}): ws_url {:?} is a legacy USD-M endpoint; using the \
                     routed base {base:?} (streams go to {base}/public/stream and \
                     {base}/market/stream); write ws_url = {base:?}",
                    v.name, v.ws_url
                ));
                v.ws_url = base;
            }
        }
        warnings
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
        self.validate_nats()?;
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
            if setup.gateway.is_some() && self.desk.request_timeout_ms == 0 {
                // Without a timeout a request the venue never answers would stay outstanding
                // (and in the desk's tables) for ever.
                bail!("desk.request_timeout_ms must be at least 1");
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
        self.shm_config()?;
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
            let usdm = Market::parse(&v.market) == Some(Market::UsdM);
            if usdm {
                usdm_base(&v.ws_url).map_err(|e| anyhow::anyhow!("{at}: ws_url: {e}"))?;
            }
            if !v.routes.is_empty() && !usdm {
                bail!("{at}: routes: only a usdm venue routes streams by endpoint");
            }
            for (kind, class) in &v.routes {
                if !ROUTE_KINDS.contains(&kind.as_str()) {
                    bail!(
                        "{at}: routes.{kind}: not a stream kind (one of {})",
                        ROUTE_KINDS.join(", ")
                    );
                }
                if Endpoint::parse(class).is_none() {
                    bail!("{at}: routes.{kind}: {class:?} is neither \"public\" nor \"market\"");
                }
            }
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
        self.validate_replay()
    }

    /// `[replay]`: names a client can type and nothing else, each once; a directory each.
    fn validate_replay(&self) -> Result<()> {
        let r = &self.replay;
        if !(0..=19).contains(&r.nice) {
            bail!("replay.nice must be 0 to 19");
        }
        if !r.journals.is_empty() && r.max_sessions == 0 {
            bail!("replay.max_sessions must be at least 1 when journals are listed");
        }
        for (i, j) in r.journals.iter().enumerate() {
            if tape_node::replay::valid_name(&j.name).is_err() {
                bail!(
                    "replay.journals[{i}].name {:?}: letters, digits, '-', '_', '.', at most {} \
                     bytes, not starting with '.'",
                    j.name,
                    tape_node::replay::MAX_NAME_BYTES
                );
            }
            if j.dir.is_empty() {
                bail!("replay.journals[{i}].dir is empty");
            }
            if r.journals[..i].iter().any(|o| o.name == j.name) {
                bail!("replay.journals[{i}].name {:?} is listed twice", j.name);
            }
        }
        Ok(())
    }
}

impl Config {
    /// `[nats]`: what an origin and an edge need to agree with their peers.
    fn validate_nats(&self) -> Result<()> {
        let n = &self.nats;
        let edge = self.feed.source == super::FeedKind::Nats;
        if !edge && !n.enabled {
            return Ok(());
        }
        if n.url.is_empty() || n.subject.is_empty() || n.stream.is_empty() {
            bail!("nats.url, nats.subject and nats.stream must not be empty");
        }
        if n.subject.contains(['*', '>', ' ']) {
            bail!("nats.subject must be a literal subject (no wildcard, no space)");
        }
        if n.stream.contains(['.', '*', '>', ' ']) {
            bail!("nats.stream must be a stream name (no '.', wildcard or space)");
        }
        if n.heartbeat_ms == 0 || n.origin_timeout_ms <= n.heartbeat_ms {
            bail!("nats.heartbeat_ms must be >= 1 and below nats.origin_timeout_ms");
        }
        if n.max_mib == 0 || n.max_backlog == 0 {
            bail!("nats.max_mib and nats.max_backlog must be at least 1");
        }
        if !edge && self.feed_kind() == super::FeedKind::Replay && self.feed.repeat {
            bail!(
                "[nats] on a looping replay: each pass restarts the engine, which the log does \
                 not carry; set feed.loop = false (or --once)"
            );
        }
        if edge && (n.edge_id == 0 || n.edge_id > tape_node::nats::MAX_EDGE_ID) {
            bail!(
                "nats.edge_id must be 1 to {} (unique per edge)",
                tape_node::nats::MAX_EDGE_ID
            );
        }
        Ok(())
    }
}
