//! `tape venue-sim`: start a [`VenueSim`], print its endpoints, run until SIGINT/SIGTERM.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::{ApiKeys, KeyFlag, ScheduledFault, SimAuth, SimConfig, VenueSim};

/// Flags of `tape venue-sim`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Journal directory or capture file (hftbacktest, cryptofeed); default: the bundled
    /// session.
    #[arg(long)]
    pub journal: Option<PathBuf>,
    /// Pace: 1 recorded, N times faster, 0 as fast as the clients read.
    #[arg(long, default_value_t = 1)]
    pub speed: u32,
    /// Play the journal once (default: close streams with 1001 at the end and start over).
    #[arg(long)]
    pub once: bool,
    /// Start the timeline now instead of when the first stream client connects.
    #[arg(long)]
    pub start_now: bool,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub listen: IpAddr,
    /// Ports: spot P, usdm P+1, coinm P+2; 0 = ephemeral ports.
    #[arg(long, default_value_t = 0)]
    pub port_base: u16,
    /// Where cert.pem and key.pem are kept (default: $TMPDIR/tape-venue-sim).
    #[arg(long)]
    pub cert_dir: Option<PathBuf>,
    /// Serve ws:// and http:// instead of wss:// and https://.
    #[arg(long)]
    pub plain: bool,
    /// Scheduled fault `[MARKET:]KIND@SECONDS` (timeline offset); repeatable. KIND: drop,
    /// close, gap[=N], stall=MS, malformed, truncate, refuse-snapshot[=N], drop-api,
    /// mute-api[=N], expire-listen-key.
    #[arg(long = "fault")]
    pub faults: Vec<ScheduledFault>,
    /// Seconds between pings; clients silent for 3 intervals are dropped.
    #[arg(long, default_value_t = 20)]
    pub ping_interval: u64,
    /// Close connections older than this many seconds with 1001 (Binance: 86400).
    #[arg(long)]
    pub max_connection_secs: Option<u64>,
    /// Stop by itself after this many seconds (tests, demos).
    #[arg(long)]
    pub exit_after: Option<u64>,
    /// WebSocket API: taker fee in basis points of the notional (quote asset).
    #[arg(long, default_value_t = 4, allow_negative_numbers = true)]
    pub taker_fee_bps: i64,
    /// WebSocket API: maker fee (resting orders) in basis points; negative for a rebate.
    #[arg(long, default_value_t = 2, allow_negative_numbers = true)]
    pub maker_fee_bps: i64,
    /// WebSocket API: check no apiKey, signature or timestamp (the default is Binance's
    /// rules: signed requests need a key registered below).
    #[arg(long)]
    pub lenient_auth: bool,
    /// WebSocket API: register an HMAC-SHA256 API key whose secret is the content of FILE;
    /// repeatable.
    #[arg(long = "api-key-hmac", value_name = "API_KEY=FILE")]
    pub api_key_hmac: Vec<KeyFlag>,
    /// WebSocket API: register an HMAC-SHA256 API key whose secret is the environment
    /// variable VAR; repeatable.
    #[arg(long = "api-key-hmac-env", value_name = "API_KEY=VAR")]
    pub api_key_hmac_env: Vec<KeyFlag>,
    /// WebSocket API: register an Ed25519 API key by its public key PEM file
    /// (`openssl pkey -in key.pem -pubout`); repeatable.
    #[arg(long = "api-key-ed25519", value_name = "API_KEY=PUBLIC_PEM")]
    pub api_key_ed25519: Vec<KeyFlag>,
}

impl SimArgs {
    /// The simulator settings these flags describe; key files and variables are read here.
    ///
    /// # Errors
    /// An unreadable key file or unset variable, a key that does not parse, keys given with
    /// `--lenient-auth`.
    pub fn config(&self) -> Result<SimConfig> {
        let d = SimConfig::default();
        let auth = self.auth()?;
        Ok(SimConfig {
            journal: self.journal.clone().unwrap_or(d.journal),
            speed: self.speed,
            repeat: !self.once,
            start_on_connect: !self.start_now,
            listen_ip: self.listen,
            tls: !self.plain,
            cert_dir: self.cert_dir.clone().unwrap_or(d.cert_dir),
            faults: self.faults.clone(),
            ping_interval: Duration::from_secs(self.ping_interval.max(1)),
            max_connection_age: self.max_connection_secs.map(Duration::from_secs),
            taker_fee_bps: self.taker_fee_bps,
            maker_fee_bps: self.maker_fee_bps,
            auth,
            ..d
        }
        .with_port_base(self.port_base))
    }

    fn auth(&self) -> Result<SimAuth> {
        let flags =
            self.api_key_hmac.len() + self.api_key_hmac_env.len() + self.api_key_ed25519.len();
        if self.lenient_auth {
            if flags > 0 {
                anyhow::bail!("--lenient-auth checks no key: drop it or the --api-key-* flags");
            }
            return Ok(SimAuth::Lenient);
        }
        let mut keys = ApiKeys::new();
        for f in &self.api_key_hmac {
            keys.insert_hmac_file(&f.name, f.value.as_ref())?;
        }
        for f in &self.api_key_hmac_env {
            keys.insert_hmac_env(&f.name, &f.value)?;
        }
        for f in &self.api_key_ed25519 {
            keys.insert_ed25519_file(&f.name, f.value.as_ref())?;
        }
        Ok(SimAuth::Strict(keys))
    }
}

/// Prints a console line; a closed stdout must not stop the sim.
fn say(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_fmt(line);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

/// Runs `tape venue-sim` until SIGINT/SIGTERM (or `--exit-after`).
///
/// # Errors
/// Bad input, certificate trouble, ports that cannot be bound.
pub fn run(args: &SimArgs) -> Result<()> {
    let cfg = args.config()?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("install signal handler")?;
    }
    let sim = VenueSim::start(cfg.clone())?;
    let pace = match cfg.speed {
        0 => "full speed".to_owned(),
        1 => "recorded pace".to_owned(),
        n => format!("{n}x recorded pace"),
    };
    say(format_args!(
        "tape venue-sim: {} at {pace}, {}",
        cfg.journal.display(),
        if cfg.repeat { "repeating" } else { "once" }
    ));
    for e in sim.endpoints() {
        say(format_args!(
            "  {:<5}  {}  {}  {}  {}",
            e.market.as_str(),
            e.ws_url,
            e.api_url,
            e.rest_url,
            e.symbols.join(",")
        ));
    }
    match &cfg.auth {
        SimAuth::Lenient => say(format_args!(
            "  WebSocket API: lenient (no signature checks)"
        )),
        SimAuth::Strict(keys) => {
            let names: Vec<String> = keys
                .names()
                .map(|(n, k)| format!("{n} ({})", k.as_str()))
                .collect();
            say(format_args!(
                "  WebSocket API: signed requests checked as Binance does; API keys: {}",
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            ));
        }
    }
    if let Some(ca) = sim.ca_path() {
        say(format_args!("  CA certificate: {}", ca.display()));
    }
    // An exit time past what the clock can hold means never.
    let deadline = args
        .exit_after
        .and_then(|s| Instant::now().checked_add(Duration::from_secs(s)));
    while !stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let s = sim.stats();
    sim.stop();
    say(format_args!(
        "tape venue-sim stopped: passes={} position={}/{} frames_sent={} clients_total={} \
         snapshots_served={} snapshots_refused={} faults={} api_requests={} orders={} \
         fills={} bad_requests={}",
        s.passes,
        s.position,
        s.records,
        s.frames_sent,
        s.clients_total,
        s.snapshots_served,
        s.snapshots_refused,
        s.faults_applied,
        s.api_requests,
        s.orders_placed,
        s.fills,
        s.bad_requests
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sim: SimArgs,
    }

    fn config(args: &[&str]) -> Result<SimConfig> {
        let mut argv = vec!["venue-sim"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)?.sim.config()
    }

    #[test]
    fn auth_flags_register_keys_strict_by_default() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("s");
        std::fs::write(&secret, "sekrit\n").unwrap();
        let public = dir.path().join("p.pem");
        let ed = tape_core::sign::Ed25519Key::from_seed(&[3; 32]);
        std::fs::write(&public, ed.public().to_public_pem()).unwrap();

        let SimAuth::Strict(keys) = config(&[]).unwrap().auth else {
            panic!("strict by default");
        };
        assert!(keys.is_empty());
        let hmac = format!("h1={}", secret.display());
        let edf = format!("e1={}", public.display());
        let cfg = config(&["--api-key-hmac", &hmac, "--api-key-ed25519", &edf]).unwrap();
        let SimAuth::Strict(keys) = cfg.auth else {
            panic!("strict");
        };
        let names: Vec<_> = keys
            .names()
            .map(|(n, k)| (n.to_owned(), k.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("h1".to_owned(), "HMAC_SHA256"),
                ("e1".to_owned(), "ED25519")
            ]
        );
        assert!(config(&["--lenient-auth"]).unwrap().auth.is_lenient());
        // Keys with lenient mode, a missing file, a private key as the public one: refused.
        assert!(config(&["--lenient-auth", "--api-key-hmac", &hmac]).is_err());
        assert!(config(&["--api-key-hmac", "h2=/nonexistent/secret"]).is_err());
        std::fs::write(&public, ed.to_pkcs8_pem().as_bytes()).unwrap();
        assert!(config(&["--api-key-ed25519", &edf]).is_err());
        assert!(config(&["--api-key-hmac", "bad name=x"]).is_err());
    }
}
