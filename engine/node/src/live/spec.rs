//! What to connect to: the venue specs and settings a [`LiveFeed`](super::LiveFeed) is built
//! from (kept apart from the feed's machinery, which never changes them).

use std::sync::Arc;

use tape_core::instrument::Market;

/// One venue connection to open: a market, its combined-stream endpoint, symbols and
/// streams, and where its REST snapshots come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VenueSpec {
    /// A name for status and the journal's source definitions (no spaces).
    pub name: String,
    /// Market rules for decoding and sequencing.
    pub market: Market,
    /// Combined-stream endpoint, e.g. `wss://fstream.binance.com/stream`.
    pub ws_url: String,
    /// REST base, e.g. `https://fapi.binance.com`.
    pub rest_url: String,
    /// Symbols, upper case.
    pub symbols: Vec<String>,
    /// Streams per symbol: `depth@100ms`, `trade`, `aggTrade`, `bookTicker`, `ticker`, ...
    pub streams: Vec<String>,
    /// Levels per side requested in REST snapshots.
    pub snapshot_limit: u32,
    /// Known `(symbol, price scale, quantity scale)`; others get the default scale.
    pub scales: Vec<(String, u8, u8)>,
}

impl VenueSpec {
    /// The combined-stream URL: `ws_url?streams=btcusdt@depth@100ms/btcusdt@trade/...`.
    pub fn stream_url(&self) -> String {
        let names: Vec<String> = self
            .symbols
            .iter()
            .flat_map(|s| {
                let lower = s.to_ascii_lowercase();
                self.streams.iter().map(move |st| format!("{lower}@{st}"))
            })
            .collect();
        let sep = if self.ws_url.contains('?') { '&' } else { '?' };
        format!("{}{sep}streams={}", self.ws_url, names.join("/"))
    }
}

/// Settings of a [`LiveFeed`](super::LiveFeed).
#[derive(Clone)]
pub struct LiveConfig {
    /// The venues, in source-id order.
    pub venues: Vec<VenueSpec>,
    /// TLS client configuration for wss:// and https://.
    pub tls: Arc<rustls::ClientConfig>,
    /// First reconnect delay ceiling, ns (doubles per failed attempt).
    pub reconnect_initial_ns: u64,
    /// Reconnect delay cap, ns.
    pub reconnect_max_ns: u64,
    /// From the start of an attempt to an open WebSocket, ns.
    pub connect_timeout_ns: u64,
    /// Silence after which the connection is dropped as stalled, ns (a ping goes out at a
    /// third of it).
    pub stall_timeout_ns: u64,
    /// Largest frame accepted from a venue.
    pub max_frame_bytes: usize,
    /// Least time between two snapshot requests to the same venue, ns.
    pub snapshot_min_interval_ns: u64,
    /// A snapshot request that takes longer counts as failed, ns.
    pub snapshot_timeout_ns: u64,
    /// First retry delay after a failed snapshot, ns (doubles up to `reconnect_max_ns`).
    pub snapshot_retry_ns: u64,
    /// Largest snapshot body accepted.
    pub max_snapshot_bytes: usize,
    /// Seed of the backoff jitter.
    pub jitter_seed: u64,
    /// The venue's WebSocket order API (`wss://.../ws-fapi/v1`), when orders go to a venue.
    pub gateway_url: Option<String>,
    /// The order gateway's credentials and session settings.
    pub gateway: super::gateway::GatewayOptions,
}

impl std::fmt::Debug for LiveConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveConfig")
            .field("venues", &self.venues)
            .field("reconnect_initial_ns", &self.reconnect_initial_ns)
            .field("reconnect_max_ns", &self.reconnect_max_ns)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined_stream_url() {
        let v = VenueSpec {
            name: "usdm".into(),
            market: Market::UsdM,
            ws_url: "wss://fstream.binance.com/stream".into(),
            rest_url: "https://fapi.binance.com".into(),
            symbols: vec!["BTCUSDT".into(), "ETHUSDT".into()],
            streams: vec!["depth@100ms".into(), "bookTicker".into()],
            snapshot_limit: 1000,
            scales: vec![],
        };
        assert_eq!(
            v.stream_url(),
            "wss://fstream.binance.com/stream?streams=btcusdt@depth@100ms/btcusdt@bookTicker/ethusdt@depth@100ms/ethusdt@bookTicker"
        );
    }
}
