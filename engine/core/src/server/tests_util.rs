//! Test harness: an engine and a hub driven with virtual time, fixture records, and a model
//! client that rebuilds books from what it receives and checks every `seq`.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::{Action, ConnId, Hub, HubConfig};
use crate::engine::{Engine, EngineConfig};
use crate::fixed::{parse_fixed, Scaled};
use crate::input::{Nanos, RecordKind, SourceDef, SourceId};
use crate::instrument::{InstrumentId, Market};
use crate::msg::Side;
use crate::output::{Event, Output};

/// One journal-like record.
#[derive(Debug, Clone)]
pub(super) struct Rec {
    pub now: u64,
    pub source: u32,
    pub kind: RecordKind,
    pub payload: Vec<u8>,
}

/// The hftbacktest fixtures with realistic scales: (file, market, symbol, price, qty scale).
pub(super) const FIXTURES: &[(&str, Market, &str, u8, u8)] = &[
    (
        "cm_btcusd_perp_20240808.first900lines.txt",
        Market::CoinM,
        "BTCUSD_PERP",
        1,
        0,
    ),
    (
        "spot_btcusdt_20240808.first2900lines.txt",
        Market::Spot,
        "BTCUSDT",
        2,
        8,
    ),
    (
        "spot_ethusdt_20240808.first1000lines.txt",
        Market::Spot,
        "ETHUSDT",
        2,
        4,
    ),
    (
        "usdm_btcusdt_20240808.first3300lines.txt",
        Market::UsdM,
        "BTCUSDT",
        2,
        3,
    ),
    (
        "usdm_ethusdt_20240808.first800lines.txt",
        Market::UsdM,
        "ETHUSDT",
        2,
        3,
    ),
];

/// Every symbol of the fixtures, market-qualified, as a JSON array.
pub(super) const ALL_SYMBOLS: &str =
    r#"["coinm:BTCUSD_PERP","spot:BTCUSDT","spot:ETHUSDT","usdm:BTCUSDT","usdm:ETHUSDT"]"#;

/// Source definitions (at time 0), then every fixture line merged by receive time. File `i`
/// uses source `2i+1` for frames and `2i+2` (naming the symbol) for its REST snapshot.
pub(super) fn fixture_records() -> Vec<Rec> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/hftbacktest");
    let mut defs = Vec::new();
    let mut lines = Vec::new();
    for (i, (file, market, symbol, ps, qs)) in FIXTURES.iter().enumerate() {
        let (ws, rest) = (2 * i as u32 + 1, 2 * i as u32 + 2);
        let def = |symbol: Option<&str>, scales, name: &str| Rec {
            now: 0,
            source: 0,
            kind: RecordKind::SourceDef,
            payload: SourceDef {
                market: *market,
                symbol: symbol.map(str::to_owned),
                scales,
                name: name.into(),
            }
            .to_text()
            .into_bytes(),
        };
        // The symbol (with its scales) is registered before any frame names it.
        defs.push(Rec {
            source: rest,
            ..def(Some(symbol), Some((*ps, *qs)), "rest")
        });
        defs.push(Rec {
            source: ws,
            ..def(None, None, "ws")
        });
        let text = std::fs::read_to_string(format!("{dir}/{file}")).expect("fixture");
        for line in text.lines() {
            let (ts, json) = line.split_once(' ').expect("<ns> <json>");
            let snapshot = json.starts_with("{\"lastUpdateId\"");
            lines.push(Rec {
                now: ts.parse().expect("ns"),
                source: if snapshot { rest } else { ws },
                kind: if snapshot {
                    RecordKind::RestSnapshot
                } else {
                    RecordKind::WsFrame
                },
                payload: json.as_bytes().to_vec(),
            });
        }
    }
    lines.sort_by_key(|r| r.now);
    defs.extend(lines);
    defs
}

/// An engine and a hub wired together.
pub(super) struct Harness {
    pub engine: Engine,
    pub hub: Hub,
    pub now: Nanos,
    pub actions: Vec<Action>,
}

impl Harness {
    pub(super) fn new(cfg: HubConfig) -> Self {
        Harness {
            engine: Engine::new(EngineConfig::default()).expect("engine"),
            hub: Hub::new(cfg),
            now: Nanos(1),
            actions: Vec::new(),
        }
    }

    /// Feeds one record; every output goes to the hub. Returns the outputs.
    pub(super) fn record(&mut self, r: &Rec) -> Vec<Output> {
        self.now = self.now.max(Nanos(r.now));
        let _ = self
            .engine
            .handle_record(self.now, SourceId(r.source), r.kind, &r.payload);
        let mut outs = Vec::new();
        while let Some(o) = self.engine.poll_output() {
            self.hub.handle_output(&o, &self.engine);
            outs.push(o);
        }
        outs
    }

    pub(super) fn open(&mut self, conn: usize) {
        assert!(self.hub.handle_open(self.now, ConnId(conn), ""));
    }

    pub(super) fn send(&mut self, conn: usize, text: &str) {
        self.hub
            .handle_text(self.now, ConnId(conn), text, &self.engine);
    }

    /// Everything queued for `conn`, parsed (each must be valid JSON).
    pub(super) fn drain(&mut self, conn: usize) -> Vec<Value> {
        let mut v = Vec::new();
        while let Some(m) = self.hub.poll_transmit(self.now, ConnId(conn), &self.engine) {
            v.push(serde_json::from_str(&m).unwrap_or_else(|e| panic!("{e}: {m}")));
        }
        v
    }

    /// Runs the timers at `now`.
    pub(super) fn tick(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        self.hub.handle_timeout(self.now, &mut out);
        self.actions.extend(out.iter().cloned());
        out
    }

    pub(super) fn lookup(&self, market: &str, symbol: &str) -> InstrumentId {
        let m = Market::parse(market).expect("market");
        self.engine
            .registry()
            .lookup(m, symbol.as_bytes())
            .expect("registered")
    }
}

/// A client's picture of one book.
#[derive(Debug, Default, Clone)]
pub(super) struct ClientBook {
    pub seq: u64,
    pub live: bool,
    pub bids: BTreeMap<i64, i64>,
    pub asks: BTreeMap<i64, i64>,
    /// Worst price of the last snapshot on each side when it was cut at its depth: levels
    /// beyond it are only known when they changed since.
    pub bid_floor: Option<i64>,
    pub ask_ceiling: Option<i64>,
    pub snapshots: u64,
    pub updates: u64,
}

/// A model client: applies every message it receives and checks continuity.
#[derive(Debug, Default)]
pub(super) struct Client {
    pub depth: usize,
    pub books: HashMap<String, ClientBook>,
    /// Last `seq` per (channel, market:symbol).
    pub seqs: HashMap<(String, String), u64>,
    pub last: HashMap<(String, String), Value>,
    pub trades: HashMap<String, u64>,
    pub replies: Vec<Value>,
    pub statuses: Vec<Value>,
    pub gaps: u64,
}

fn fixed(v: &Value, scale: u8) -> i64 {
    parse_fixed(v.as_str().expect("decimal string").as_bytes(), scale).expect("decimal")
}

impl Client {
    pub(super) fn new(depth: usize) -> Self {
        Client {
            depth,
            ..Client::default()
        }
    }

    /// Applies one message; `scales` gives (price, qty) scales of `market:symbol`.
    pub(super) fn apply(&mut self, m: Value, scales: &dyn Fn(&str) -> (u8, u8)) {
        let ty = m["type"].as_str().expect("type").to_owned();
        let Some(ch) = m["channel"].as_str().map(str::to_owned) else {
            self.replies.push(m);
            return;
        };
        let name = format!(
            "{}:{}",
            m["market"].as_str().unwrap(),
            m["symbol"].as_str().unwrap()
        );
        let seq = m["seq"].as_u64().expect("seq");
        let (ps, qs) = scales(&name);
        let key = (ch.clone(), name.clone());
        let prev = self.seqs.get(&key).copied();
        match (ch.as_str(), ty.as_str()) {
            ("book", "snapshot") => {
                let b = self.books.entry(name.clone()).or_default();
                assert!(prev.is_none_or(|p| seq >= p), "snapshot seq went back: {m}");
                b.bids.clear();
                b.asks.clear();
                let side = |k: &str| m["data"][k].as_array().expect("levels").clone();
                for (lv, map) in [(side("bids"), &mut b.bids), (side("asks"), &mut b.asks)] {
                    for l in &lv {
                        map.insert(fixed(&l[0], ps), fixed(&l[1], qs));
                    }
                }
                let (nb, na) = (side("bids").len(), side("asks").len());
                b.bid_floor = (nb == self.depth).then(|| *b.bids.keys().next().unwrap());
                b.ask_ceiling = (na == self.depth).then(|| *b.asks.keys().next_back().unwrap());
                b.live = true;
                b.seq = seq;
                b.snapshots += 1;
            }
            ("book", "update") => {
                let b = self.books.get_mut(&name).expect("update before snapshot");
                assert!(b.live, "update while stale: {m}");
                assert_eq!(seq, b.seq + 1, "book seq not continuous: {m}");
                b.seq = seq;
                b.updates += 1;
                for (k, side) in [("bids", Side::Bid), ("asks", Side::Ask)] {
                    for l in m["data"][k].as_array().expect("levels") {
                        let (p, q) = (fixed(&l[0], ps), fixed(&l[1], qs));
                        let map = if side == Side::Bid {
                            &mut b.bids
                        } else {
                            &mut b.asks
                        };
                        if q == 0 {
                            map.remove(&p);
                        } else {
                            map.insert(p, q);
                        }
                    }
                }
            }
            (_, "status") => {
                assert_eq!(m["data"]["stale"], true);
                if ch == "book" {
                    let b = self.books.entry(name.clone()).or_default();
                    b.live = false;
                    b.seq = seq;
                }
                self.statuses.push(m.clone());
            }
            ("trades", "update") => *self.trades.entry(name.clone()).or_default() += 1,
            ("bbo" | "ticker", "update") => {}
            _ => panic!("unexpected message {m}"),
        }
        if ch != "book" {
            if let Some(p) = prev {
                assert!(seq >= p, "seq went back: {m}");
                if seq > p + 1 {
                    self.gaps += 1;
                }
            }
        }
        self.seqs.insert(key.clone(), seq);
        self.last.insert(key, m);
    }
}

/// `(price, qty)` scales by `market:symbol`, from the engine's registry.
pub(super) fn scales_of(engine: &Engine) -> impl Fn(&str) -> (u8, u8) + '_ {
    move |name: &str| {
        let (m, s) = name.split_once(':').expect("market:symbol");
        let id = engine
            .registry()
            .lookup(Market::parse(m).unwrap(), s.as_bytes())
            .unwrap();
        let i = engine.registry().get(id);
        (i.price_scale, i.qty_scale)
    }
}

/// Checks a client's book of `id` against the engine's, within what the client can know.
pub(super) fn assert_book_matches(engine: &Engine, client: &ClientBook, id: InstrumentId) {
    let book = engine.book(id).expect("book").book();
    let within = |side: Side, p: i64| match side {
        Side::Bid => client.bid_floor.is_none_or(|f| p >= f),
        Side::Ask => client.ask_ceiling.is_none_or(|c| p <= c),
    };
    for (side, map) in [(Side::Bid, &client.bids), (Side::Ask, &client.asks)] {
        let want: Vec<(i64, i64)> = book
            .levels(side)
            .filter(|l| within(side, l.price.0))
            .map(|l| (l.price.0, l.qty.0))
            .collect();
        let mut got: Vec<(i64, i64)> = map
            .iter()
            .filter(|(p, _)| within(side, **p))
            .map(|(p, q)| (*p, *q))
            .collect();
        if side == Side::Bid {
            got.reverse();
        }
        assert_eq!(got.len(), want.len(), "{side:?} level count of {id:?}");
        assert_eq!(got, want, "{side:?} levels of {id:?}");
    }
}

/// Renders `mantissa` at `scale` the way the server does.
pub(super) fn dec(mantissa: i64, scale: u8) -> String {
    Scaled(mantissa, scale).to_string()
}

/// Trades per instrument in `outs`.
pub(super) fn count_trades(outs: &[Output], counts: &mut HashMap<InstrumentId, u64>) {
    for o in outs {
        if let Event::Trade(t) = &o.event {
            *counts.entry(t.instrument).or_default() += 1;
        }
    }
}
