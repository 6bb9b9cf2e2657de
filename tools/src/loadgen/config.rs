//! What a load run does: [`LoadgenConfig`], which is also the `tape loadgen` command line, and
//! the checks on it before anything connects.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};

/// What to run; also the `tape loadgen` flags. `Default` is the flags' defaults.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadgenConfig {
    /// Server WebSocket URL (ws:// or wss://).
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    pub url: String,
    /// Client connections.
    #[arg(long, default_value_t = 100)]
    pub clients: usize,
    /// Channels to subscribe, comma-separated (bbo, trades, ticker, book, status).
    #[arg(long, value_delimiter = ',', default_value = "bbo,trades,book")]
    pub channels: Vec<String>,
    /// Symbols, comma-separated; a bare symbol names every market listing it.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "BTCUSDT,ETHUSDT,BTCUSD_PERP"
    )]
    pub symbols: Vec<String>,
    /// Measured seconds, after the warm-up.
    #[arg(long, default_value = "10", value_parser = parse_secs)]
    pub duration: Duration,
    /// Seconds excluded from the measurement once every client has connected or failed.
    #[arg(long, default_value = "1", value_parser = parse_secs)]
    pub warmup: Duration,
    /// CA certificate (PEM) to trust for wss://; without one, the webpki roots.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 64)]
    pub connect_batch: usize,
    /// Seconds each connection's TCP + TLS + WebSocket handshake may take.
    #[arg(long, default_value = "10", value_parser = parse_secs)]
    pub connect_timeout: Duration,
    /// Seconds the final close handshakes may take.
    #[arg(long, default_value = "2", value_parser = parse_secs)]
    pub close_timeout: Duration,
    /// Write an HdrHistogram interval log (V2, values in ns) of the measured window.
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Seconds per interval of the log.
    #[arg(long, default_value = "1", value_parser = parse_secs)]
    pub interval: Duration,
}

impl Default for LoadgenConfig {
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            cfg: LoadgenConfig,
        }
        // No arguments: every flag has a default, so this cannot fail.
        <Defaults as clap::Parser>::parse_from(["loadgen"]).cfg
    }
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s.parse().map_err(|e| format!("{s:?}: {e}"))?;
    Duration::try_from_secs_f64(v).map_err(|e| format!("{s:?}: {e}"))
}

pub(super) fn validate(cfg: &LoadgenConfig) -> Result<()> {
    let week = Duration::from_secs(7 * 86_400);
    if !(1..=100_000).contains(&cfg.clients) {
        bail!("clients must be 1 to 100000");
    }
    if cfg.duration.is_zero() || cfg.duration > week {
        bail!("duration must be above 0 and at most a week");
    }
    if cfg.warmup > week || cfg.connect_timeout.is_zero() || cfg.interval.is_zero() {
        bail!("warmup must be at most a week, connect timeout and interval above 0");
    }
    if cfg.connect_batch == 0 || cfg.channels.is_empty() {
        bail!("connect batch and channels must not be empty");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_cli_defaults() {
        let c = LoadgenConfig::default();
        assert_eq!((c.clients, c.connect_batch), (100, 64));
        assert_eq!(c.channels, ["bbo", "trades", "book"]);
        assert_eq!(c.symbols, ["BTCUSDT", "ETHUSDT", "BTCUSD_PERP"]);
        assert_eq!(
            (c.duration, c.warmup),
            (Duration::from_secs(10), Duration::from_secs(1))
        );
        assert_eq!(parse_secs("0.25"), Ok(Duration::from_millis(250)));
        assert!(parse_secs("-1").is_err() && parse_secs("inf").is_err());
    }
}
