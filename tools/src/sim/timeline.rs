//! The simulator's input: a journal (or a capture file imported in memory) turned into one
//! timeline of records, each WebSocket frame already in its wire form with its stream key.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::value::RawValue;
use tape_core::input::{RecordKind, SourceDef};
use tape_core::instrument::Market;
use tape_journal::JournalReader;
use tungstenite::Utf8Bytes;

use crate::import::{self, Format, ImportOptions};

/// A record as read: `(recv_ns, source, kind, payload)`.
type RawRecord = (u64, u32, u16, Vec<u8>);

/// One journal record.
pub(crate) struct Rec {
    /// Recorded receive time, ns.
    pub recv_ns: u64,
    /// Journal source id.
    pub source: u32,
    /// Journal record kind.
    pub kind: u16,
    /// What it carries.
    pub body: Body,
}

/// A record's payload: a frame the venue streams, or bytes only the sim's engine sees
/// (source definitions, snapshots, frames that name no stream).
pub(crate) enum Body {
    Frame(Frame),
    Other(Box<[u8]>),
}

/// A WebSocket frame ready to go out.
pub(crate) struct Frame {
    /// The market of its source, so the listener that streams it.
    pub market: Market,
    /// Its stream key (index into [`Timeline::keys`]).
    pub key: u32,
    /// The combined-stream form `{"stream":..,"data":..}`: the recorded bytes when they were
    /// recorded wrapped. The sim's engine is fed these bytes too (it decodes both forms).
    pub wire: Utf8Bytes,
    /// Where the bare event (`data`) sits in `wire`, for `/ws/` raw streams.
    pub data: Range<usize>,
    /// For depth diffs: the symbol (index into [`Timeline::symbols`]) and the event time `E`.
    pub depth: Option<(u32, u64)>,
}

/// A symbol the venue lists on one market.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Symbol {
    pub market: Market,
    /// Upper case, as Binance's REST API wants it.
    pub name: String,
    /// `(price, quantity)` scales when a snapshot source declared them.
    pub scales: Option<(u8, u8)>,
}

/// Everything the simulator replays, in journal order.
pub(crate) struct Timeline {
    pub records: Vec<Rec>,
    /// Receive time of the first record: timeline offsets count from here.
    pub first_ns: u64,
    /// Normalised stream keys (`btcusdt@depth`, `btcusdt@aggtrade`).
    pub keys: Vec<String>,
    key_ids: HashMap<String, u32>,
    /// Symbols per market, sorted by market then name.
    pub symbols: Vec<Symbol>,
    /// Markets with at least one source, sorted.
    pub markets: Vec<Market>,
    /// Frames the sim cannot stream (no stream name, not UTF-8, unknown source).
    pub unstreamable: u64,
}

impl Timeline {
    /// Loads a journal directory, or a capture file (hftbacktest or cryptofeed, detected from
    /// its first line; a cryptofeed `NAME.ws.*` file brings its `NAME.http.*` siblings).
    ///
    /// # Errors
    /// Unreadable or damaged input, or input with no source definition.
    pub fn load(path: &Path) -> Result<Timeline> {
        let raw = if path.is_dir() {
            read_journal(path)?
        } else {
            read_capture(path)?
        };
        let tl = Timeline::build(raw);
        if tl.markets.is_empty() {
            bail!(
                "{}: no sources defined, nothing to simulate",
                path.display()
            );
        }
        Ok(tl)
    }

    /// The key id of a stream name, if any frame in the timeline has that key.
    pub fn key_id(&self, name: &str) -> Option<u32> {
        self.key_ids.get(&stream_key(name)).copied()
    }

    /// The index of `symbol` (upper case) on `market` in [`Timeline::symbols`].
    pub fn symbol_id(&self, market: Market, symbol: &str) -> Option<usize> {
        self.symbols
            .iter()
            .position(|s| s.market == market && s.name == symbol)
    }

    fn build(raw: Vec<RawRecord>) -> Timeline {
        let mut markets_by_source: HashMap<u32, Market> = HashMap::new();
        let mut symbols: BTreeMap<(Market, String), Option<(u8, u8)>> = BTreeMap::new();
        for (_, source, kind, payload) in &raw {
            if *kind != RecordKind::SourceDef as u16 {
                continue;
            }
            if let Ok(def) = SourceDef::parse(payload) {
                markets_by_source.insert(*source, def.market);
                if let Some(sym) = def.symbol {
                    let slot = symbols
                        .entry((def.market, sym.to_ascii_uppercase()))
                        .or_default();
                    *slot = slot.or(def.scales);
                }
            }
        }
        let mut tl = Timeline {
            records: Vec::with_capacity(raw.len()),
            first_ns: raw.first().map_or(0, |r| r.0),
            keys: Vec::new(),
            key_ids: HashMap::new(),
            symbols: Vec::new(),
            markets: markets_by_source
                .values()
                .copied()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            unstreamable: 0,
        };
        // Frames first name their symbols; the symbol table is final before depth ids are set.
        let mut frames = Vec::with_capacity(raw.len());
        for (_, source, kind, payload) in &raw {
            let parsed = (*kind == RecordKind::WsFrame as u16)
                .then(|| markets_by_source.get(source))
                .flatten()
                .and_then(|m| parse_frame(payload).map(|p| (*m, p)));
            if let Some((m, p)) = &parsed {
                if let Some(sym) = &p.symbol {
                    symbols.entry((*m, sym.clone())).or_default();
                }
            } else if *kind == RecordKind::WsFrame as u16 {
                tl.unstreamable += 1;
            }
            frames.push(parsed);
        }
        tl.symbols = symbols
            .into_iter()
            .map(|((market, name), scales)| Symbol {
                market,
                name,
                scales,
            })
            .collect();
        for ((recv_ns, source, kind, payload), parsed) in raw.into_iter().zip(frames) {
            let body = match parsed {
                Some((market, p)) => {
                    let key = tl.intern(&p.name);
                    let depth = match (&p.symbol, p.depth_event_ms) {
                        (Some(sym), Some(e)) => tl.symbol_id(market, sym).map(|i| (i as u32, e)),
                        _ => None,
                    };
                    Body::Frame(Frame {
                        market,
                        key,
                        wire: p.wire,
                        data: p.data,
                        depth,
                    })
                }
                None => Body::Other(payload.into_boxed_slice()),
            };
            tl.records.push(Rec {
                recv_ns,
                source,
                kind,
                body,
            });
        }
        tl
    }

    fn intern(&mut self, name: &str) -> u32 {
        let key = stream_key(name);
        if let Some(id) = self.key_ids.get(&key) {
            return *id;
        }
        let id = self.keys.len() as u32;
        self.keys.push(key.clone());
        self.key_ids.insert(key, id);
        id
    }
}

fn read_journal(dir: &Path) -> Result<Vec<RawRecord>> {
    let mut reader = JournalReader::open(dir)
        .with_context(|| format!("{}: cannot open journal", dir.display()))?;
    let mut out = Vec::new();
    while let Some(rec) = reader.next() {
        let rec = rec.with_context(|| format!("{}: damaged journal", dir.display()))?;
        out.push((rec.recv_ns, rec.source, rec.kind, rec.payload.to_vec()));
    }
    Ok(out)
}

/// Imports a capture file in memory with `tape import`'s code (the same records a journal
/// written by `tape import` would hold).
fn read_capture(path: &Path) -> Result<Vec<RawRecord>> {
    let first = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    let format = if first.contains(" <-> ") {
        Format::Cryptofeed
    } else {
        Format::Hftbacktest
    };
    let http = match format {
        Format::Cryptofeed => cryptofeed_http_siblings(path),
        Format::Hftbacktest => Vec::new(),
    };
    let plan = import::plan(&ImportOptions {
        format,
        files: vec![path.to_owned()],
        http,
        market: None,
        symbol: None,
    })?;
    let first_ts = plan.records.first().map_or(0, |r| r.recv_ns);
    let defs = plan.sources.iter().map(|(id, def)| {
        let text = def.to_text().into_bytes();
        (first_ts, *id, RecordKind::SourceDef as u16, text)
    });
    let recs = plan
        .records
        .into_iter()
        .map(|r| (r.recv_ns, r.source, r.kind as u16, r.payload));
    Ok(defs.collect::<Vec<_>>().into_iter().chain(recs).collect())
}

/// `X.http.*` files next to a cryptofeed `X.ws.*` capture.
fn cryptofeed_http_siblings(ws: &Path) -> Vec<PathBuf> {
    let Some(name) = ws.file_name().and_then(|n| n.to_str()) else {
        return Vec::new();
    };
    let Some((prefix, _)) = name.split_once(".ws.") else {
        return Vec::new();
    };
    let dir = ws.parent().unwrap_or(Path::new("."));
    let want = format!("{prefix}.http.");
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&want))
        })
        .collect();
    out.sort();
    out
}

/// A stream name's matching key: lower case, without a depth update-speed suffix
/// (`BTCUSDT@depth@100ms` and `btcusdt@depth` are the same stream here).
pub(crate) fn stream_key(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    match lower.rsplit_once('@') {
        Some((head, speed))
            if head.contains('@')
                && speed.len() > 2
                && speed.ends_with("ms")
                && speed[..speed.len() - 2].bytes().all(|c| c.is_ascii_digit()) =>
        {
            head.to_owned()
        }
        _ => lower,
    }
}

/// A frame as the venue sends it.
struct Parsed {
    /// The stream name: recorded, or derived from the event for bare frames.
    name: String,
    wire: Utf8Bytes,
    data: Range<usize>,
    symbol: Option<String>,
    /// `E` of a `depthUpdate`.
    depth_event_ms: Option<u64>,
}

#[derive(Deserialize)]
struct Wrapper<'a> {
    #[serde(borrow)]
    stream: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

/// The event fields that name a stream. Unknown fields are skipped.
#[derive(Deserialize)]
struct EventProbe<'a> {
    #[serde(borrow)]
    e: Option<Cow<'a, str>>,
    #[serde(rename = "E")]
    event_ms: Option<u64>,
    #[serde(borrow)]
    s: Option<Cow<'a, str>>,
    u: Option<u64>,
    b: Option<serde::de::IgnoredAny>,
    #[serde(rename = "B")]
    bid_qty: Option<serde::de::IgnoredAny>,
    a: Option<serde::de::IgnoredAny>,
    #[serde(rename = "A")]
    ask_qty: Option<serde::de::IgnoredAny>,
    #[serde(borrow)]
    k: Option<KlineProbe<'a>>,
}

#[derive(Deserialize)]
struct KlineProbe<'a> {
    #[serde(borrow)]
    i: Option<Cow<'a, str>>,
}

/// Wire form, stream name, symbol and depth event time of a recorded frame; `None` for
/// frames no stream carries (subscription acks, non-UTF-8, not JSON objects).
fn parse_frame(payload: &[u8]) -> Option<Parsed> {
    let text = std::str::from_utf8(payload).ok()?;
    let outer: Wrapper<'_> = serde_json::from_str(text).ok()?;
    let (name, wire, data) = match (outer.stream, outer.data) {
        (Some(stream), Some(data)) => {
            // `data` borrows from `text`, so its offset is a pointer difference.
            let start = data.get().as_ptr() as usize - text.as_ptr() as usize;
            let range = start..start + data.get().len();
            (stream.into_owned(), Utf8Bytes::from(text), range)
        }
        _ => {
            let ev: EventProbe<'_> = serde_json::from_str(text).ok()?;
            let name = derive_name(&ev)?;
            let prefix = format!(
                "{{\"stream\":{},\"data\":",
                serde_json::to_string(&name).ok()?
            );
            let range = prefix.len()..prefix.len() + text.len();
            (name, Utf8Bytes::from(format!("{prefix}{text}}}")), range)
        }
    };
    let ev = serde_json::from_str::<EventProbe<'_>>(&wire[data.clone()]).ok();
    let symbol = ev
        .as_ref()
        .and_then(|e| e.s.as_deref())
        .map(str::to_ascii_uppercase);
    let depth_event_ms = ev
        .as_ref()
        .filter(|e| e.e.as_deref() == Some("depthUpdate"))
        .map(|e| e.event_ms.unwrap_or(0));
    Some(Parsed {
        name,
        wire,
        data,
        symbol,
        depth_event_ms,
    })
}

/// Binance's stream name for a bare event (`{s}@depth`, `{s}@aggTrade`, ...). A bookTicker
/// has no `e` on spot: it is recognised by `u`,`s`,`b`,`B`,`a`,`A`.
fn derive_name(ev: &EventProbe<'_>) -> Option<String> {
    let s = ev.s.as_deref()?.to_ascii_lowercase();
    let kind = match ev.e.as_deref() {
        Some("depthUpdate") => "depth".to_owned(),
        Some("trade") => "trade".to_owned(),
        Some("aggTrade") => "aggTrade".to_owned(),
        Some("bookTicker") => "bookTicker".to_owned(),
        Some("24hrTicker") => "ticker".to_owned(),
        Some("24hrMiniTicker") => "miniTicker".to_owned(),
        Some("markPriceUpdate") => "markPrice".to_owned(),
        Some("kline") => format!("kline_{}", ev.k.as_ref()?.i.as_deref()?),
        Some(other) => other.to_owned(),
        None if ev.u.is_some()
            && ev.b.is_some()
            && ev.bid_qty.is_some()
            && ev.a.is_some()
            && ev.ask_qty.is_some() =>
        {
            "bookTicker".to_owned()
        }
        None => return None,
    };
    Some(format!("{s}@{kind}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_session_loads_with_every_frame_streamable() {
        let tl = Timeline::load(&crate::config::Config::default().journal_path()).unwrap();
        assert_eq!(tl.markets, [Market::Spot, Market::UsdM, Market::CoinM]);
        assert_eq!(tl.unstreamable, 0);
        let names: Vec<_> = tl
            .symbols
            .iter()
            .map(|s| (s.market, s.name.as_str(), s.scales))
            .collect();
        assert_eq!(
            names,
            [
                (Market::Spot, "BTCUSDT", Some((8, 8))),
                (Market::Spot, "ETHUSDT", Some((8, 8))),
                (Market::UsdM, "BTCUSDT", Some((2, 3))),
                (Market::UsdM, "ETHUSDT", Some((2, 3))),
                (Market::CoinM, "BTCUSD_PERP", Some((1, 0))),
            ]
        );
        assert_eq!(
            tl.key_id("BTCUSDT@depth@0ms"),
            tl.key_id("btcusdt@depth@100ms")
        );
        assert!(tl.key_id("btcusdt@kline_1m").is_none());
        let frames = tl
            .records
            .iter()
            .filter(|r| matches!(r.body, Body::Frame(_)))
            .count();
        assert_eq!(frames, 8895);
    }

    #[test]
    fn keys_ignore_case_and_depth_speed() {
        assert_eq!(stream_key("btcusdt@depth@100ms"), "btcusdt@depth");
        assert_eq!(stream_key("BTCUSDT@depth@0ms"), "btcusdt@depth");
        assert_eq!(stream_key("btcusdt@depth20@100ms"), "btcusdt@depth20");
        assert_eq!(stream_key("btcusdt@aggTrade"), "btcusdt@aggtrade");
        assert_eq!(stream_key("btcusdt@kline_1m"), "btcusdt@kline_1m");
        assert_eq!(stream_key("btcusdt@ms"), "btcusdt@ms");
    }

    #[test]
    fn wrapped_frames_keep_their_bytes() {
        let f = br#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":17,"s":"BTCUSDT","U":1,"u":2,"b":[],"a":[]}}"#;
        let p = parse_frame(f).unwrap();
        assert_eq!(p.wire.as_bytes(), f);
        assert_eq!(p.name, "btcusdt@depth@100ms");
        assert!(p.wire[p.data.clone()].starts_with(r#"{"e":"depthUpdate""#));
        assert!(p.wire[p.data.clone()].ends_with(r#""a":[]}"#));
        assert_eq!(
            (p.symbol.as_deref(), p.depth_event_ms),
            (Some("BTCUSDT"), Some(17))
        );
    }

    #[test]
    fn bare_frames_are_wrapped_with_a_derived_name() {
        let bt = r#"{"u":400900217,"s":"BNBUSDT","b":"25.35","B":"31.21","a":"25.36","A":"40.66"}"#;
        let p = parse_frame(bt.as_bytes()).unwrap();
        assert_eq!(p.name, "bnbusdt@bookTicker");
        assert_eq!(
            p.wire.as_str(),
            format!(r#"{{"stream":"bnbusdt@bookTicker","data":{bt}}}"#)
        );
        assert_eq!(&p.wire[p.data.clone()], bt);
        for (frame, name) in [
            (
                r#"{"e":"aggTrade","E":1,"s":"ETHUSDT","a":1}"#,
                "ethusdt@aggTrade",
            ),
            (r#"{"e":"trade","E":1,"s":"ETHUSDT"}"#, "ethusdt@trade"),
            (r#"{"e":"24hrTicker","E":1,"s":"X"}"#, "x@ticker"),
            (
                r#"{"e":"kline","E":1,"s":"X","k":{"i":"1m"}}"#,
                "x@kline_1m",
            ),
            (
                r#"{"e":"depthUpdate","E":1,"s":"X","U":1,"u":1}"#,
                "x@depth",
            ),
        ] {
            assert_eq!(parse_frame(frame.as_bytes()).unwrap().name, name);
        }
        for junk in [
            &b"{\"result\":null,\"id\":1}"[..],
            b"[1,2]",
            b"not json",
            b"\xff\xfe",
            br#"{"u":1,"s":"X"}"#,
        ] {
            assert!(parse_frame(junk).is_none());
        }
    }
}
