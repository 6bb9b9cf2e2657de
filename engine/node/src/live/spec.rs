//! What to connect to: the venue specs and settings a [`LiveFeed`](super::LiveFeed) is built
//! from (kept apart from the feed's machinery, which never changes them).

use std::sync::Arc;

use tape_core::instrument::Market;

use super::route::{routed_stream_url, Endpoint, Routes};

/// One configured venue: a market, its combined-stream endpoint (or, routed, the base of its
/// endpoints), symbols and streams, and where its REST snapshots come from. It opens one
/// connection, or one per endpoint class that has streams when `routes` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VenueSpec {
    /// A name for status and the journal's source definitions (no spaces).
    pub name: String,
    /// Market rules for decoding and sequencing.
    pub market: Market,
    /// Combined-stream endpoint, e.g. `wss://stream.binance.com:9443/stream`; with `routes`,
    /// the routed base, e.g. `wss://fstream.binance.com`.
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
    /// USD-M's routed endpoints: `Some` opens `ws_url/public/stream?..` and
    /// `ws_url/market/stream?..`, each for the streams the table routes to it.
    pub routes: Option<Routes>,
}

/// One connection a [`VenueSpec`] opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnSpec {
    /// Its endpoint class, when routed.
    pub endpoint: Option<Endpoint>,
    /// Its name in status and the journal: the venue's, `<venue>:market` for a routed market
    /// connection.
    pub name: String,
    /// The URL, with its streams.
    pub url: String,
    /// It carries depth streams: the books' snapshots and sync belong to it.
    pub depth: bool,
}

impl VenueSpec {
    /// Every `<symbol>@<stream>` name, symbol by symbol.
    fn stream_names(&self) -> Vec<String> {
        self.symbols
            .iter()
            .flat_map(|s| {
                let lower = s.to_ascii_lowercase();
                self.streams.iter().map(move |st| format!("{lower}@{st}"))
            })
            .collect()
    }

    /// The connections to open: one combined stream, or one per routed class that has
    /// streams (public first).
    pub fn connections(&self) -> Vec<ConnSpec> {
        let is_depth = |s: &str| super::route::stream_kind(s).starts_with("depth");
        let Some(routes) = &self.routes else {
            return vec![ConnSpec {
                endpoint: None,
                name: self.name.clone(),
                url: self.stream_url(),
                depth: self.streams.iter().any(|s| is_depth(s)),
            }];
        };
        let names = self.stream_names();
        Endpoint::ALL
            .into_iter()
            .filter_map(|e| {
                let mine: Vec<String> = names
                    .iter()
                    .filter(|n| routes.endpoint(n) == e)
                    .cloned()
                    .collect();
                (!mine.is_empty()).then(|| ConnSpec {
                    endpoint: Some(e),
                    name: match e {
                        Endpoint::Public => self.name.clone(),
                        Endpoint::Market => format!("{}:market", self.name),
                    },
                    url: routed_stream_url(&self.ws_url, e, &mine),
                    depth: mine.iter().any(|s| is_depth(s)),
                })
            })
            .collect()
    }

    /// The combined-stream URL: `ws_url?streams=btcusdt@depth@100ms/btcusdt@trade/...`.
    pub fn stream_url(&self) -> String {
        let names = self.stream_names();
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
            routes: None,
        };
        assert_eq!(
            v.stream_url(),
            "wss://fstream.binance.com/stream?streams=btcusdt@depth@100ms/btcusdt@bookTicker/ethusdt@depth@100ms/ethusdt@bookTicker"
        );
        let conns = v.connections();
        assert_eq!(conns.len(), 1);
        assert_eq!((conns[0].endpoint, conns[0].depth), (None, true));
        assert_eq!(conns[0].url, v.stream_url());
    }

    fn usdm(streams: &[&str], routes: Routes) -> VenueSpec {
        VenueSpec {
            name: "usdm".into(),
            market: Market::UsdM,
            ws_url: "wss://fstream.binance.com".into(),
            rest_url: "https://fapi.binance.com".into(),
            symbols: vec!["BTCUSDT".into(), "ETHUSDT".into()],
            streams: streams.iter().map(|s| (*s).to_owned()).collect(),
            snapshot_limit: 1000,
            scales: vec![],
            routes: Some(routes),
        }
    }

    #[test]
    fn routed_connections_one_per_class() {
        let v = usdm(
            &["depth@100ms", "aggTrade", "bookTicker", "ticker"],
            Routes::default(),
        );
        let c = v.connections();
        assert_eq!(c.len(), 2);
        assert_eq!(
            (c[0].endpoint, c[0].name.as_str(), c[0].depth),
            (Some(Endpoint::Public), "usdm", true)
        );
        assert_eq!(
            c[0].url,
            "wss://fstream.binance.com/public/stream?streams=btcusdt@depth@100ms/btcusdt@bookTicker/ethusdt@depth@100ms/ethusdt@bookTicker"
        );
        assert_eq!(
            (c[1].endpoint, c[1].name.as_str(), c[1].depth),
            (Some(Endpoint::Market), "usdm:market", false)
        );
        assert_eq!(
            c[1].url,
            "wss://fstream.binance.com/market/stream?streams=btcusdt@aggTrade/btcusdt@ticker/ethusdt@aggTrade/ethusdt@ticker"
        );
        // A class without streams opens nothing.
        let c = usdm(&["aggTrade"], Routes::default()).connections();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].endpoint, Some(Endpoint::Market));
        // An override moves a kind.
        let r = Routes::with_overrides([("aggTrade".to_owned(), Endpoint::Public)]);
        let c = usdm(&["depth", "aggTrade"], r).connections();
        assert_eq!(c.len(), 1);
        assert!(c[0].url.ends_with(
            "/public/stream?streams=btcusdt@depth/btcusdt@aggTrade/ethusdt@depth/ethusdt@aggTrade"
        ));
    }
}
