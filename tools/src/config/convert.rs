//! The configuration turned into what the node and core take: the desk setup and auth
//! config (validated by the core's own parsers), the feed `tape run` uses and its journal.

use std::path::PathBuf;

use anyhow::Result;

use super::{Config, FeedKind, JournalSection, OnJournalErrorKey};

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
        // Field by field through the same rules a journal reader applies, then once through
        // the record encoding: a value (a user name with a newline, say) can never turn into
        // another key, and what the node journals is exactly what was checked.
        let mut fields: Vec<(&str, String)> = self
            .users
            .iter()
            .map(|u| ("user", u.name.clone()))
            .collect();
        fields.extend([
            ("quote_asset", d.quote_asset.clone()),
            ("mark", d.mark.clone()),
            ("maker_fee_bps", d.maker_fee_bps.to_string()),
            ("taker_fee_bps", d.taker_fee_bps.to_string()),
            ("gateway", d.gateway.clone()),
        ]);
        if d.gateway != "paper" && d.dry_run()? {
            fields.push(("dry_run", "true".into()));
        }
        for (k, v) in [
            ("max_order_qty", &d.max_order_qty),
            ("max_order_notional", &d.max_order_notional),
            ("max_position", &d.max_position),
            ("max_drawdown", &d.max_drawdown),
        ] {
            if !v.is_empty() {
                fields.push((k, v.clone()));
            }
        }
        for (k, v) in [
            ("max_open_orders", d.max_open_orders),
            ("max_orders_per_sec", d.max_orders_per_sec),
        ] {
            if v > 0 {
                fields.push((k, v.to_string()));
            }
        }
        let desk_err = |e: tape_core::desk::SetupError| {
            anyhow::anyhow!("{}", e.to_string().replace("desk setup: ", "desk."))
        };
        let mut built = tape_core::desk::DeskSetup::default();
        for (k, v) in &fields {
            built.set_field(k, v).map_err(desk_err)?;
        }
        let setup =
            tape_core::desk::DeskSetup::parse(built.to_payload().as_bytes()).map_err(desk_err)?;
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

    /// The shared-memory publication, when `shm.enabled`: modes and groups resolved, sizes
    /// checked (each error names its key).
    ///
    /// # Errors
    /// A value out of range, a mode that does not parse or is unsafe, an unknown group.
    pub fn shm_config(&self) -> Result<Option<tape_node::shm::ShmConfig>> {
        let s = &self.shm;
        if !s.enabled {
            return Ok(None);
        }
        if s.dir.is_empty() {
            anyhow::bail!("shm.dir must name a directory");
        }
        let group = |key: String, v: &str| -> Result<Option<u32>> {
            if v.is_empty() {
                return Ok(None);
            }
            Ok(Some(tape_shm::resolve_group(&key, v)?))
        };
        let mut cfg = tape_node::shm::ShmConfig::new(PathBuf::from(&s.dir));
        cfg.market = tape_shm::MarketOptions {
            levels: s.levels,
            max_instruments: s.max_instruments,
            mode: tape_shm::parse_mode("market_mode", &s.market_mode)?,
        };
        cfg.user = tape_shm::UserOptions {
            max_positions: s.max_positions,
            max_orders: s.max_orders,
            mode: tape_shm::parse_mode("user_mode", &s.user_mode)?,
            group: group("shm.user_group".into(), &s.user_group)?,
        };
        cfg.market.validate()?;
        cfg.user.validate()?;
        for (i, u) in self.users.iter().enumerate() {
            if let Some(g) = group(format!("user[{i}] ({:?}).shm_group", u.name), &u.shm_group)? {
                cfg.user_groups.push((u.name.clone(), g));
            }
        }
        Ok(Some(cfg))
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

    /// The `[nats]` settings as the node takes them.
    pub fn nats_config(&self) -> tape_node::nats::NatsConfig {
        let n = &self.nats;
        tape_node::nats::NatsConfig {
            url: n.url.clone(),
            subject: n.subject.clone(),
            stream: n.stream.clone(),
            max_age: std::time::Duration::from_secs(n.max_age_secs),
            max_bytes: i64::try_from(n.max_mib.saturating_mul(1 << 20)).unwrap_or(i64::MAX),
            heartbeat: std::time::Duration::from_millis(n.heartbeat_ms),
            origin_timeout: std::time::Duration::from_millis(n.origin_timeout_ms),
            max_backlog: n.max_backlog,
            edge_id: n.edge_id,
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
