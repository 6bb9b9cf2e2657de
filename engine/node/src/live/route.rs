//! USD-M futures' routed stream endpoints: which streams Binance serves on `/public` and which
//! on `/market`, and the base URL they hang from.
//!
//! Since Binance's notice of 2026-03-06 (legacy URLs retired 2026-04-23),
//! `wss://fstream.binance.com` routes by path: `/public` carries the high-frequency book data
//! (diff and partial depth, `bookTicker`), `/market` the regular market data (`aggTrade`,
//! `markPrice`, `kline_*`, `ticker`, `miniTicker`, `forceOrder`, ...), `/private` user data
//! (not here: the gateway's business). Each class has a `ws` mode (`/public/ws/<a>/<b>`) and a
//! `stream` mode (`/public/stream?streams=<a>/<b>`). A connection without a routed path
//! (`/ws`, `/stream`) only gets `/public` data, and a stream asked of the wrong class is
//! accepted and silently never delivered; so every stream must go to its own class.
//!
//! Binance's notice names examples, not a complete list. tape's table: the depth streams and
//! `bookTicker` are `public`, everything else `market`. That includes `trade`, which the
//! notice does not name (USD-M's stream reference documents `aggTrade`, not a raw trade
//! stream) and which libraries that migrated disagree about: a venue config can move any kind
//! with its `routes` table if Binance decides otherwise. Spot and COIN-M do not route.

use std::fmt;

/// A routed endpoint class of USD-M's market streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    /// `/public`: high-frequency book data.
    Public,
    /// `/market`: regular market data.
    Market,
}

impl Endpoint {
    /// Both classes, in connection order.
    pub const ALL: [Endpoint; 2] = [Endpoint::Public, Endpoint::Market];

    /// `public` or `market`: the path segment and the config value.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Public => "public",
            Endpoint::Market => "market",
        }
    }

    /// The inverse of [`Endpoint::as_str`].
    pub fn parse(s: &str) -> Option<Endpoint> {
        match s {
            "public" => Some(Endpoint::Public),
            "market" => Some(Endpoint::Market),
            _ => None,
        }
    }

    /// Binance's class of a stream, by its kind ([`stream_kind`]).
    pub fn of_kind(kind: &str) -> Endpoint {
        match kind {
            "depth" | "depth5" | "depth10" | "depth20" | "bookTicker" => Endpoint::Public,
            _ => Endpoint::Market,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of a stream name, the key of the routing table: the stream without its symbol,
/// update speed or interval. `btcusdt@depth@100ms` and `depth@100ms` are `depth`,
/// `btcusdt@kline_1m` is `kline`, `!bookTicker` is `bookTicker`, `!ticker@arr` is `ticker`.
pub fn stream_kind(name: &str) -> &str {
    let mut parts = name.split('@');
    let first = parts.next().unwrap_or_default();
    // `<symbol>@<kind>[@..]` or a bare `<kind>[@..]` (a venue's configured stream list).
    let kind = match (first.strip_prefix('!'), parts.next()) {
        (Some(all_market), _) => all_market,
        (None, Some(kind)) if !is_kind(first) => kind,
        _ => first,
    };
    kind.split('_').next().unwrap_or_default()
}

/// A bare stream kind (rather than a symbol): starts lower case and has an upper-case letter
/// or is one of the all-lower-case kinds.
fn is_kind(s: &str) -> bool {
    let base = s.split('_').next().unwrap_or_default();
    matches!(
        base,
        "depth" | "depth5" | "depth10" | "depth20" | "trade" | "ticker" | "kline"
    ) || (s.starts_with(|c: char| c.is_ascii_lowercase()) && s.contains(char::is_uppercase))
}

/// A venue's routing table: Binance's classes ([`Endpoint::of_kind`]) with the config's
/// overrides on top.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes {
    /// `(kind, class)`, as configured.
    overrides: Vec<(String, Endpoint)>,
}

impl Routes {
    /// Binance's table with `overrides` (`kind -> class`) on top.
    pub fn with_overrides(overrides: impl IntoIterator<Item = (String, Endpoint)>) -> Routes {
        Routes {
            overrides: overrides.into_iter().collect(),
        }
    }

    /// The class a stream (`btcusdt@aggTrade`, `depth@100ms`, ...) goes to.
    pub fn endpoint(&self, stream: &str) -> Endpoint {
        let kind = stream_kind(stream);
        self.overrides
            .iter()
            .find(|(k, _)| k == kind)
            .map_or_else(|| Endpoint::of_kind(kind), |(_, e)| *e)
    }
}

/// What a configured USD-M `ws_url` means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsdmBase {
    /// A routed base (`wss://fstream.binance.com`), used as is.
    Routed(String),
    /// A legacy combined or raw endpoint (`.../stream`, `.../ws`): its routed base.
    Legacy {
        /// The base to use instead.
        base: String,
    },
}

impl UsdmBase {
    /// The base URL either way, without a trailing `/`.
    pub fn base(&self) -> &str {
        match self {
            UsdmBase::Routed(b) | UsdmBase::Legacy { base: b } => b,
        }
    }
}

/// Reads a USD-M venue's `ws_url`: a routed base is kept, a legacy `/stream` or `/ws` endpoint
/// becomes its base (the caller warns), and one naming a class (`/public/stream`, `/market`)
/// or carrying a query is refused: a venue's connections are one per class, so the URL is the
/// base they share.
///
/// # Errors
/// The message says what to write instead.
pub fn usdm_base(ws_url: &str) -> Result<UsdmBase, String> {
    let (scheme, rest) = ws_url
        .split_once("://")
        .ok_or_else(|| format!("{ws_url:?} is not a ws:// or wss:// URL"))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if ws_url.contains(['?', '#']) {
        return Err(format!(
            "{ws_url:?}: a USD-M ws_url is the routed base without a query, e.g. \
             \"{scheme}://{authority}\" (tape adds /public/stream?streams=... and \
             /market/stream?streams=...)"
        ));
    }
    let mut segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut legacy = false;
    while let Some(&("ws" | "stream")) = segments.last() {
        segments.pop();
        legacy = true;
    }
    let base = |segments: &[&str]| format!("{scheme}://{authority}{}", join(segments));
    if segments
        .last()
        .is_some_and(|c| Endpoint::parse(c).is_some())
    {
        let keep = &segments[..segments.len() - 1];
        return Err(format!(
            "{ws_url:?} names one endpoint class; a USD-M venue connects to each class it has \
             streams for: write ws_url = \"{}\" (tape adds /public/stream and \
             /market/stream)",
            base(keep)
        ));
    }
    Ok(if legacy {
        UsdmBase::Legacy {
            base: base(&segments),
        }
    } else {
        UsdmBase::Routed(base(&segments))
    })
}

fn join(segments: &[&str]) -> String {
    segments.iter().map(|s| format!("/{s}")).collect()
}

/// `base/<class>/stream?streams=a/b`: one class's combined-stream URL.
pub fn routed_stream_url(base: &str, endpoint: Endpoint, streams: &[String]) -> String {
    format!(
        "{}/{}/stream?streams={}",
        base.trim_end_matches('/'),
        endpoint.as_str(),
        streams.join("/")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_stream_names() {
        for (name, kind) in [
            ("btcusdt@depth@100ms", "depth"),
            ("depth@100ms", "depth"),
            ("depth", "depth"),
            ("btcusdt@depth20@100ms", "depth20"),
            ("depth5", "depth5"),
            ("btcusdt@bookTicker", "bookTicker"),
            ("bookTicker", "bookTicker"),
            ("!bookTicker", "bookTicker"),
            ("btcusdt@aggTrade", "aggTrade"),
            ("aggTrade", "aggTrade"),
            ("btcusdt@trade", "trade"),
            ("trade", "trade"),
            ("btcusdt@ticker", "ticker"),
            ("ticker", "ticker"),
            ("!ticker@arr", "ticker"),
            ("btcusdt@miniTicker", "miniTicker"),
            ("btcusdt@markPrice@1s", "markPrice"),
            ("btcusdt@kline_1m", "kline"),
            ("kline_1m", "kline"),
            ("btcusdt_perpetual@continuousKline_1m", "continuousKline"),
            ("btcusdt@forceOrder", "forceOrder"),
            ("!forceOrder@arr", "forceOrder"),
        ] {
            assert_eq!(stream_kind(name), kind, "{name}");
        }
    }

    #[test]
    fn binance_table_and_overrides() {
        let r = Routes::default();
        for s in [
            "btcusdt@depth@100ms",
            "btcusdt@depth",
            "btcusdt@depth5@100ms",
            "btcusdt@bookTicker",
            "!bookTicker",
        ] {
            assert_eq!(r.endpoint(s), Endpoint::Public, "{s}");
        }
        for s in [
            "btcusdt@aggTrade",
            "btcusdt@trade",
            "btcusdt@ticker",
            "btcusdt@miniTicker",
            "btcusdt@markPrice@1s",
            "btcusdt@kline_1m",
            "btcusdt@forceOrder",
            "!ticker@arr",
        ] {
            assert_eq!(r.endpoint(s), Endpoint::Market, "{s}");
        }
        let r = Routes::with_overrides([
            ("trade".to_owned(), Endpoint::Public),
            ("bookTicker".to_owned(), Endpoint::Market),
        ]);
        assert_eq!(r.endpoint("btcusdt@trade"), Endpoint::Public);
        assert_eq!(r.endpoint("bookTicker"), Endpoint::Market);
        assert_eq!(r.endpoint("btcusdt@depth@100ms"), Endpoint::Public);
        assert_eq!(r.endpoint("btcusdt@aggTrade"), Endpoint::Market);
    }

    #[test]
    fn usdm_bases_legacy_and_refused() {
        let routed = |u: &str| UsdmBase::Routed(u.to_owned());
        let legacy = |u: &str| UsdmBase::Legacy { base: u.to_owned() };
        let f = "wss://fstream.binance.com";
        assert_eq!(usdm_base(f), Ok(routed(f)));
        assert_eq!(usdm_base(&format!("{f}/")), Ok(routed(f)));
        assert_eq!(usdm_base(&format!("{f}/stream")), Ok(legacy(f)));
        assert_eq!(usdm_base(&format!("{f}/ws")), Ok(legacy(f)));
        assert_eq!(usdm_base(&format!("{f}/ws/")), Ok(legacy(f)));
        assert_eq!(
            usdm_base("wss://proxy.example:8443/binance/fstream/stream"),
            Ok(legacy("wss://proxy.example:8443/binance/fstream"))
        );
        assert_eq!(
            usdm_base("ws://127.0.0.1:9/x"),
            Ok(routed("ws://127.0.0.1:9/x"))
        );
        for bad in [
            "wss://fstream.binance.com/public/stream",
            "wss://fstream.binance.com/market/ws",
            "wss://fstream.binance.com/market",
            "wss://fstream.binance.com/public",
        ] {
            let e = usdm_base(bad).unwrap_err();
            assert!(
                e.contains("write ws_url = \"wss://fstream.binance.com\""),
                "{bad}: {e}"
            );
        }
        let e = usdm_base("wss://fstream.binance.com/stream?streams=btcusdt@depth").unwrap_err();
        assert!(e.contains("\"wss://fstream.binance.com\""), "{e}");
        assert!(usdm_base("fstream.binance.com").is_err());
    }

    proptest::proptest! {
        /// Config text is outside input: any string gets an answer, never a panic, and a
        /// base that is accepted is accepted again as itself.
        #[test]
        fn any_url_or_stream_name_is_answered(
            s in "\\PC{0,40}",
            t in "(wss://h)?(/(ws|stream|public|market|x))*/?",
        ) {
            for x in [&s, &t] {
                let _ = stream_kind(x);
                let _ = Routes::default().endpoint(x);
                if let Ok(b) = usdm_base(x) {
                    proptest::prop_assert_eq!(
                        usdm_base(b.base()),
                        Ok(UsdmBase::Routed(b.base().to_owned()))
                    );
                }
            }
        }
    }

    #[test]
    fn routed_urls() {
        let s = ["btcusdt@aggTrade".to_owned(), "btcusdt@ticker".to_owned()];
        assert_eq!(
            routed_stream_url("wss://fstream.binance.com/", Endpoint::Market, &s),
            "wss://fstream.binance.com/market/stream?streams=btcusdt@aggTrade/btcusdt@ticker"
        );
    }
}
