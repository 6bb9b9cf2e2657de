//! `tape synth`: a synthetic Binance USD-M session of any length at a chosen frame rate.
//!
//! The bundled session lasts ~28 s, and passes of it cannot be concatenated (update ids would
//! jump back and books would cross), so load tests that need minutes of data at 10k-50k
//! frames/s use a generated journal instead. The journal has the layout `tape import` writes:
//! one WebSocket source for the market (no symbol) and one REST source per symbol (with its
//! scales), source definitions first, then one REST depth snapshot per symbol, then the
//! combined-stream frames, each with its receive time.
//!
//! # The model
//!
//! Every symbol keeps an exact book (integer prices at scale 2, quantities at scale 3). Its top
//! follows a random walk pulled back toward the start price, so the book never drifts out of
//! its ~200 levels per side. Each `depthUpdate` changes 1 to 10 levels:
//!
//! - sometimes the top moves 1-3 ticks: the moving side gets a new best level, every level of
//!   the other side that it reaches is deleted in the same diff, and the other side gets a level
//!   within 3 ticks if none is there, so the book is never crossed and the spread stays small;
//! - otherwise (and with what is left of the budget) levels within 20 ticks of the top are set
//!   or deleted (never the best one, which only a top move removes);
//! - a side that fell below 180 levels gains one at its far end, one above 220 loses its
//!   farthest.
//!
//! Update ids are contiguous per symbol: `U = previous u + 1`, `u >= U`, `pu = previous u`;
//! the first diff has `pu` equal to the snapshot's `lastUpdateId` (tape's futures bridge
//! rule). A `bookTicker` carries the `u` of the symbol's last diff and the book's exact top
//! after it, so tape's oracle can check every one; a `trade` prints at the best bid (buyer
//! is maker) or the best ask. Of the frames ~70% are diffs, ~20% bookTickers, ~10% trades,
//! each for a symbol picked uniformly (a symbol's first frame is always a diff).
//!
//! Frame `i` (from 1) is received at `EPOCH_NS + i * 1e9 / rate` plus a jitter below a
//! quarter of the interval, so the frames are evenly spaced at `rate` per second in total
//! and the session spans `secs` seconds. Everything comes from one SplitMix64 stream
//! seeded by `--seed`: the same arguments give a byte-identical journal.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tape_core::fixed::write_fixed;
use tape_core::input::{RecordKind, SourceDef};
use tape_core::instrument::Market;
use tape_journal::JournalOptions;

/// Receive time of the snapshots and the origin of the timeline: 2024-08-09 00:00:00 UTC.
pub const EPOCH_NS: u64 = 1_723_161_600_000_000_000;
/// Price scale of every synthetic symbol.
pub const PRICE_SCALE: u8 = 2;
/// Quantity scale of every synthetic symbol.
pub const QTY_SCALE: u8 = 3;
/// Most symbols a session can have.
pub const MAX_SYMBOLS: usize = 100;
/// Highest `--rate`: at least 1000 ns between frames keeps the jitter meaningful.
pub const MAX_RATE: u64 = 1_000_000;

/// Levels per side in the snapshot, and the depth the book is kept near.
const SNAPSHOT_LEVELS: usize = 200;
/// A side below this gains a level at its far end.
const MIN_LEVELS: usize = 180;
/// A side above this loses its farthest level.
const MAX_LEVELS: usize = 220;
/// Most level changes in one diff.
const MAX_CHANGES: u64 = 10;
/// Random level changes land within this many ticks of the top.
const NEAR_TICKS: u64 = 20;
/// How far (ticks) from its start price the walk's pull reaches full strength.
const REVERT_TICKS: i64 = 400;
/// Widest spread (ticks) a top move leaves.
const MAX_SPREAD_TICKS: i64 = 3;
/// How much earlier than its receive time a frame's event time `E` is, ms.
const EVENT_LEAD_MS: u64 = 1;
const NS_PER_SEC: u64 = 1_000_000_000;
const NS_PER_MS: u64 = 1_000_000;

/// What `tape synth` generates.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct SynthOptions {
    /// Recorded length of the session, seconds.
    #[arg(long, default_value_t = 60)]
    pub secs: u64,
    /// WebSocket frames per second, over all symbols.
    #[arg(long, default_value_t = 10_000)]
    pub rate: u64,
    /// Seed of the generator: the same arguments give the same journal, byte for byte.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of USD-M symbols: BTCUSDT, ETHUSDT, then SYNTH3USDT, SYNTH4USDT, ...
    #[arg(long, default_value_t = 2)]
    pub symbols: usize,
}

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions {
            secs: 60,
            rate: 10_000,
            seed: 1,
            symbols: 2,
        }
    }
}

impl SynthOptions {
    /// WebSocket frames the session holds: `secs * rate`.
    pub fn frames(&self) -> u64 {
        self.secs.saturating_mul(self.rate)
    }

    /// Every record of the journal: source definitions, snapshots and frames.
    pub fn records(&self) -> u64 {
        1 + 2 * self.symbols as u64 + self.frames()
    }

    fn validate(&self) -> Result<()> {
        if self.secs == 0 {
            bail!("--secs must be at least 1");
        }
        if !(1..=MAX_RATE).contains(&self.rate) {
            bail!("--rate must be 1 to {MAX_RATE} frames/s, got {}", self.rate);
        }
        if !(1..=MAX_SYMBOLS).contains(&self.symbols) {
            bail!("--symbols must be 1 to {MAX_SYMBOLS}, got {}", self.symbols);
        }
        Ok(())
    }
}

/// What [`write`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SynthReport {
    /// The journal directory.
    pub out: PathBuf,
    /// Records written (source definitions, snapshots, frames).
    pub records: u64,
    /// `depthUpdate` frames.
    pub depth: u64,
    /// `bookTicker` frames.
    pub book_tickers: u64,
    /// `trade` frames.
    pub trades: u64,
    /// Receive time of the first and the last record, ns.
    pub first_ns: u64,
    /// Receive time of the last record, ns.
    pub last_ns: u64,
}

impl std::fmt::Display for SynthReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "wrote {} records ({} depth, {} bookTicker, {} trade frames) over {:.3} s into {}",
            self.records,
            self.depth,
            self.book_tickers,
            self.trades,
            self.last_ns.saturating_sub(self.first_ns) as f64 / 1e9,
            self.out.display()
        )
    }
}

/// Generates a session into a new journal in `out`.
///
/// # Errors
/// Options out of range, `out` already holding files, or journal write failures.
pub fn write(opts: &SynthOptions, out: &Path, jopts: JournalOptions) -> Result<SynthReport> {
    opts.validate()?;
    let mut w = crate::dump::create_journal(out, jopts, "synth")?;
    let mut report = SynthReport {
        out: out.to_owned(),
        first_ns: EPOCH_NS,
        last_ns: EPOCH_NS,
        ..SynthReport::default()
    };
    let mut append = |recv_ns: u64, source: u32, kind: RecordKind, payload: &[u8]| {
        report.records += 1;
        report.last_ns = recv_ns;
        w.append(recv_ns, source, kind as u16, payload)
            .map(drop)
            .with_context(|| format!("{}: append", out.display()))
    };
    let mut gen = Synth::new(opts);
    for (id, def) in gen.sources() {
        append(
            EPOCH_NS,
            id,
            RecordKind::SourceDef,
            def.to_text().as_bytes(),
        )?;
    }
    let mut buf = String::with_capacity(16 << 10);
    for i in 0..opts.symbols {
        buf.clear();
        gen.snapshot(i, &mut buf);
        append(
            EPOCH_NS,
            rest_source(i),
            RecordKind::RestSnapshot,
            buf.as_bytes(),
        )?;
    }
    for _ in 0..opts.frames() {
        buf.clear();
        let (recv_ns, kind) = gen.next_frame(&mut buf);
        match kind {
            FrameKind::Depth => report.depth += 1,
            FrameKind::BookTicker => report.book_tickers += 1,
            FrameKind::Trade => report.trades += 1,
        }
        append(recv_ns, WS_SOURCE, RecordKind::WsFrame, buf.as_bytes())?;
    }
    w.close()
        .with_context(|| format!("{}: close", out.display()))?;
    Ok(report)
}

/// The journal source of the combined stream.
const WS_SOURCE: u32 = 0;

/// The journal source of symbol `i`'s REST snapshots.
fn rest_source(i: usize) -> u32 {
    1 + i as u32
}

/// SplitMix64: tiny, fast, and good enough for market noise; no clock, no crate.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`; the modulo bias is irrelevant at these sizes).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    /// A resting quantity at scale 3: mostly small, sometimes large.
    fn qty(&mut self) -> i64 {
        let q = if self.chance(100) {
            1_000 + self.below(49_000)
        } else {
            1 + self.below(3_000)
        };
        q as i64
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrameKind {
    Depth,
    BookTicker,
    Trade,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Bid,
    Ask,
}

/// One symbol's exact book and sequence state.
#[derive(Debug)]
struct SymbolState {
    name: String,
    /// Lower case, for stream names.
    stream: String,
    /// Price step, at [`PRICE_SCALE`].
    tick: i64,
    /// The walk's anchor, at [`PRICE_SCALE`].
    start_price: i64,
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
    /// `lastUpdateId` of the snapshot.
    snapshot_id: u64,
    /// `u` of the last diff (the snapshot's id before the first).
    last_u: u64,
    /// A diff was generated (bookTickers wait for one).
    streaming: bool,
    next_trade_id: u64,
}

impl SymbolState {
    fn new(i: usize, rng: &mut Rng) -> SymbolState {
        // BTCUSDT trades in 0.10 steps, the others in 0.01.
        let (name, start_price, tick) = match i {
            0 => ("BTCUSDT".to_owned(), 6_180_000, 10),
            1 => ("ETHUSDT".to_owned(), 268_000, 1),
            n => (format!("SYNTH{}USDT", n + 1), 10_000 + 500 * n as i64, 1),
        };
        let snapshot_id = 5_000_000_000_000 + rng.below(1_000_000_000);
        let mut s = SymbolState {
            stream: name.to_ascii_lowercase(),
            name,
            tick,
            start_price,
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            snapshot_id,
            last_u: snapshot_id,
            streaming: false,
            next_trade_id: 1_000_000_000 + rng.below(1_000_000_000),
        };
        // About one tick in ten is empty, except the best ones.
        for (side, best, step) in [
            (Side::Bid, start_price, -tick),
            (Side::Ask, start_price + tick, tick),
        ] {
            let mut price = best;
            while s.side(side).len() < SNAPSHOT_LEVELS {
                if price == best || !rng.chance(100) {
                    let q = rng.qty();
                    s.side_mut(side).insert(price, q);
                }
                price += step;
            }
        }
        s
    }

    fn side(&self, side: Side) -> &BTreeMap<i64, i64> {
        match side {
            Side::Bid => &self.bids,
            Side::Ask => &self.asks,
        }
    }

    fn side_mut(&mut self, side: Side) -> &mut BTreeMap<i64, i64> {
        match side {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
        }
    }

    /// Best `(price, qty)` of a side; both sides are never empty.
    fn best(&self, side: Side) -> (i64, i64) {
        let l = match side {
            Side::Bid => self.bids.last_key_value(),
            Side::Ask => self.asks.first_key_value(),
        };
        l.map(|(p, q)| (*p, *q)).expect("a side is never empty")
    }

    /// Farthest price of a side.
    fn worst(&self, side: Side) -> i64 {
        let l = match side {
            Side::Bid => self.bids.first_key_value(),
            Side::Ask => self.asks.last_key_value(),
        };
        l.map(|(p, _)| *p).expect("a side is never empty")
    }
}

/// One diff being built: the final quantity per touched price (0 = delete).
#[derive(Debug, Default)]
struct Diff {
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
}

impl Diff {
    fn len(&self) -> u64 {
        (self.bids.len() + self.asks.len()) as u64
    }
}

/// Sets (`qty > 0`) or deletes a level in the book and records it in the diff.
fn change(s: &mut SymbolState, d: &mut Diff, side: Side, price: i64, qty: i64) {
    if qty > 0 {
        s.side_mut(side).insert(price, qty);
    } else {
        s.side_mut(side).remove(&price);
    }
    let levels = match side {
        Side::Bid => &mut d.bids,
        Side::Ask => &mut d.asks,
    };
    levels.insert(price, qty);
}

/// The generator: symbols, the random stream and the frame clock.
#[derive(Debug)]
struct Synth {
    rng: Rng,
    symbols: Vec<SymbolState>,
    rate: u64,
    /// Frames generated so far.
    frame: u64,
    diff: Diff,
}

impl Synth {
    fn new(opts: &SynthOptions) -> Synth {
        let mut rng = Rng(opts.seed);
        let symbols = (0..opts.symbols)
            .map(|i| SymbolState::new(i, &mut rng))
            .collect();
        Synth {
            rng,
            symbols,
            rate: opts.rate,
            frame: 0,
            diff: Diff::default(),
        }
    }

    fn sources(&self) -> Vec<(u32, SourceDef)> {
        let mut defs = vec![(
            WS_SOURCE,
            SourceDef {
                market: Market::UsdM,
                symbol: None,
                scales: None,
                name: "synth".to_owned(),
            },
        )];
        for (i, s) in self.symbols.iter().enumerate() {
            defs.push((
                rest_source(i),
                SourceDef {
                    market: Market::UsdM,
                    symbol: Some(s.name.clone()),
                    scales: Some((PRICE_SCALE, QTY_SCALE)),
                    name: "synth:rest".to_owned(),
                },
            ));
        }
        defs
    }

    /// Writes symbol `i`'s REST depth snapshot body (`/fapi/v1/depth`) into `out`.
    fn snapshot(&self, i: usize, out: &mut String) {
        let s = &self.symbols[i];
        let ms = EPOCH_NS / NS_PER_MS;
        let _ = write!(
            out,
            "{{\"lastUpdateId\":{},\"E\":{},\"T\":{},\"bids\":",
            s.snapshot_id,
            ms - EVENT_LEAD_MS,
            ms - EVENT_LEAD_MS
        );
        levels(out, s.bids.iter().rev());
        out.push_str(",\"asks\":");
        levels(out, s.asks.iter());
        out.push('}');
    }

    /// Writes the next frame into `out`; returns its receive time and kind.
    fn next_frame(&mut self, out: &mut String) -> (u64, FrameKind) {
        self.frame += 1;
        let interval = NS_PER_SEC / self.rate;
        let offset = u128::from(self.frame) * u128::from(NS_PER_SEC) / u128::from(self.rate);
        let jitter = self.rng.below(interval / 4 + 1);
        let recv_ns = EPOCH_NS + offset as u64 + jitter;
        let event_ms = recv_ns / NS_PER_MS - EVENT_LEAD_MS;
        let i = self.rng.below(self.symbols.len() as u64) as usize;
        let roll = self.rng.below(100);
        let kind = if !self.symbols[i].streaming || roll < 70 {
            FrameKind::Depth
        } else if roll < 90 {
            FrameKind::BookTicker
        } else {
            FrameKind::Trade
        };
        match kind {
            FrameKind::Depth => self.depth(i, event_ms, out),
            FrameKind::BookTicker => self.book_ticker(i, event_ms, out),
            FrameKind::Trade => self.trade(i, event_ms, out),
        }
        (recv_ns, kind)
    }

    fn depth(&mut self, i: usize, event_ms: u64, out: &mut String) {
        let Synth {
            rng, symbols, diff, ..
        } = self;
        let s = &mut symbols[i];
        diff.bids.clear();
        diff.asks.clear();
        let budget = 1 + rng.below(MAX_CHANGES);
        if rng.chance(250) {
            move_top(s, diff, rng);
        }
        for side in [Side::Bid, Side::Ask] {
            keep_depth(s, diff, side, rng);
        }
        while diff.len() < budget {
            near_top_change(s, diff, rng);
        }
        debug_assert!(s.best(Side::Bid).0 < s.best(Side::Ask).0, "crossed");
        let first = s.last_u + 1;
        let last = first + rng.below(20);
        let _ = write!(
            out,
            "{{\"stream\":\"{}@depth@0ms\",\"data\":{{\"e\":\"depthUpdate\",\"E\":{event_ms},\"T\":{event_ms},\"s\":\"{}\",\"U\":{first},\"u\":{last},\"pu\":{},\"b\":",
            s.stream, s.name, s.last_u
        );
        levels(out, diff.bids.iter());
        out.push_str(",\"a\":");
        levels(out, diff.asks.iter());
        out.push_str("}}");
        s.last_u = last;
        s.streaming = true;
    }

    fn book_ticker(&mut self, i: usize, event_ms: u64, out: &mut String) {
        let s = &self.symbols[i];
        let (bid, bid_qty) = s.best(Side::Bid);
        let (ask, ask_qty) = s.best(Side::Ask);
        let _ = write!(
            out,
            "{{\"stream\":\"{}@bookTicker\",\"data\":{{\"e\":\"bookTicker\",\"u\":{},\"s\":\"{}\",\"b\":\"",
            s.stream, s.last_u, s.name
        );
        let _ = write_fixed(out, bid, PRICE_SCALE);
        out.push_str("\",\"B\":\"");
        let _ = write_fixed(out, bid_qty, QTY_SCALE);
        out.push_str("\",\"a\":\"");
        let _ = write_fixed(out, ask, PRICE_SCALE);
        out.push_str("\",\"A\":\"");
        let _ = write_fixed(out, ask_qty, QTY_SCALE);
        let _ = write!(out, "\",\"T\":{event_ms},\"E\":{event_ms}}}}}");
    }

    fn trade(&mut self, i: usize, event_ms: u64, out: &mut String) {
        // Buyer is maker: a seller hit the bid; otherwise a buyer lifted the ask.
        let buyer_maker = self.rng.chance(500);
        let qty = 1 + self.rng.below(500) as i64;
        let s = &mut self.symbols[i];
        let price = if buyer_maker {
            s.best(Side::Bid).0
        } else {
            s.best(Side::Ask).0
        };
        let id = s.next_trade_id;
        s.next_trade_id += 1;
        let _ = write!(
            out,
            "{{\"stream\":\"{}@trade\",\"data\":{{\"e\":\"trade\",\"E\":{event_ms},\"T\":{event_ms},\"s\":\"{}\",\"t\":{id},\"p\":\"",
            s.stream, s.name
        );
        let _ = write_fixed(out, price, PRICE_SCALE);
        out.push_str("\",\"q\":\"");
        let _ = write_fixed(out, qty, QTY_SCALE);
        let _ = write!(out, "\",\"X\":\"MARKET\",\"m\":{buyer_maker}}}}}");
    }
}

/// `[["p","q"],..]` in the given order.
fn levels<'a>(out: &mut String, it: impl Iterator<Item = (&'a i64, &'a i64)>) {
    out.push('[');
    for (n, (p, q)) in it.enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push_str("[\"");
        let _ = write_fixed(out, *p, PRICE_SCALE);
        out.push_str("\",\"");
        let _ = write_fixed(out, *q, QTY_SCALE);
        out.push_str("\"]");
    }
    out.push(']');
}

/// Moves the top 1-3 ticks, up or down, pulled toward the start price. The side moving
/// into the spread gets a new best level; the other side loses every level the new best
/// reaches and gets a level within [`MAX_SPREAD_TICKS`] if none is left there.
fn move_top(s: &mut SymbolState, d: &mut Diff, rng: &mut Rng) {
    let tick = s.tick;
    let (bid, _) = s.best(Side::Bid);
    let away = (bid - s.start_price) / tick;
    let up_per_mille = (500 - away * 500 / REVERT_TICKS).clamp(100, 900) as u64;
    let step = tick * (1 + rng.below(3) as i64);
    let (mover, other, new_best) = if rng.chance(up_per_mille) {
        (Side::Bid, Side::Ask, bid + step)
    } else {
        (Side::Ask, Side::Bid, s.best(Side::Ask).0 - step)
    };
    // Levels of the other side at or through the new best would cross it.
    loop {
        let crossed = match other {
            Side::Ask => s.asks.first_key_value().filter(|(p, _)| **p <= new_best),
            Side::Bid => s.bids.last_key_value().filter(|(p, _)| **p >= new_best),
        };
        let Some((&p, _)) = crossed else { break };
        change(s, d, other, p, 0);
    }
    let q = rng.qty();
    change(s, d, mover, new_best, q);
    let (dir, far_enough) = match other {
        Side::Ask => (1, s.asks.first_key_value().map(|(p, _)| *p)),
        Side::Bid => (-1, s.bids.last_key_value().map(|(p, _)| *p)),
    };
    let spread_ok = far_enough.is_some_and(|p| (p - new_best).abs() <= MAX_SPREAD_TICKS * tick);
    if !spread_ok {
        let p = new_best + dir * tick * (1 + rng.below(2) as i64);
        let q = rng.qty();
        change(s, d, other, p, q);
    }
}

/// Keeps a side between [`MIN_LEVELS`] and [`MAX_LEVELS`] levels by changing its far end.
fn keep_depth(s: &mut SymbolState, d: &mut Diff, side: Side, rng: &mut Rng) {
    let len = s.side(side).len();
    let worst = s.worst(side);
    let away = match side {
        Side::Bid => -s.tick,
        Side::Ask => s.tick,
    };
    if len < MIN_LEVELS {
        let p = worst + away * (1 + rng.below(2) as i64);
        if p > 0 {
            let q = rng.qty();
            change(s, d, side, p, q);
        }
    } else if len > MAX_LEVELS {
        change(s, d, side, worst, 0);
    }
}

/// Sets or deletes one level within [`NEAR_TICKS`] of a side's best; the best itself is only
/// ever re-set, so the spread cannot widen here.
fn near_top_change(s: &mut SymbolState, d: &mut Diff, rng: &mut Rng) {
    let side = if rng.chance(500) {
        Side::Bid
    } else {
        Side::Ask
    };
    let off = rng.below(NEAR_TICKS) as i64;
    let (best, _) = s.best(side);
    let price = match side {
        Side::Bid => best - off * s.tick,
        Side::Ask => best + off * s.tick,
    };
    if price <= 0 {
        return change(s, d, side, best, rng.qty());
    }
    let present = s.side(side).contains_key(&price);
    if present && off > 0 && rng.chance(300) {
        change(s, d, side, price, 0);
    } else {
        let q = rng.qty();
        change(s, d, side, price, q);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(symbols: usize) -> SynthOptions {
        SynthOptions {
            secs: 1,
            rate: 1_000,
            seed: 7,
            symbols,
        }
    }

    #[test]
    fn frames_have_binance_shapes() {
        let mut g = Synth::new(&opts(1));
        let mut snap = String::new();
        g.snapshot(0, &mut snap);
        let v: serde_json::Value = serde_json::from_str(&snap).unwrap();
        assert_eq!(v["bids"].as_array().unwrap().len(), SNAPSHOT_LEVELS);
        assert_eq!(v["asks"].as_array().unwrap().len(), SNAPSHOT_LEVELS);
        assert_eq!(v["bids"][0][0], "61800.00");
        assert_eq!(v["asks"][0][0], "61800.10");
        let first_id = v["lastUpdateId"].as_u64().unwrap();
        let mut buf = String::new();
        let (t, kind) = g.next_frame(&mut buf);
        assert_eq!(kind, FrameKind::Depth, "a symbol starts with a diff");
        assert!(t > EPOCH_NS && t < EPOCH_NS + 2_000_000);
        let v: serde_json::Value = serde_json::from_str(&buf).unwrap();
        assert_eq!(v["stream"], "btcusdt@depth@0ms");
        let data = &v["data"];
        assert_eq!(data["e"], "depthUpdate");
        assert_eq!(data["s"], "BTCUSDT");
        assert_eq!(data["pu"].as_u64(), Some(first_id));
        assert_eq!(data["U"].as_u64(), Some(first_id + 1));
        let mut seen = [false; 2];
        let mut prev_u = data["u"].as_u64().unwrap();
        for _ in 0..500 {
            buf.clear();
            let (_, kind) = g.next_frame(&mut buf);
            let v: serde_json::Value = serde_json::from_str(&buf).unwrap();
            let d = &v["data"];
            match kind {
                FrameKind::Depth => {
                    assert_eq!(d["pu"].as_u64(), Some(prev_u));
                    assert_eq!(d["U"].as_u64(), Some(prev_u + 1));
                    prev_u = d["u"].as_u64().unwrap();
                    let n = d["b"].as_array().unwrap().len() + d["a"].as_array().unwrap().len();
                    assert!((1..=MAX_CHANGES as usize).contains(&n), "{buf}");
                }
                FrameKind::BookTicker => {
                    seen[0] = true;
                    assert_eq!(d["u"].as_u64(), Some(prev_u));
                    let int = |k: &str| d[k].as_str().unwrap().replace('.', "").parse::<i64>();
                    assert!(int("b").unwrap() < int("a").unwrap(), "{buf}");
                }
                FrameKind::Trade => {
                    seen[1] = true;
                    assert_eq!(d["X"], "MARKET");
                    let frac = |k: &str| d[k].as_str().unwrap().split_once('.').unwrap().1.len();
                    assert_eq!((frac("p"), frac("q")), (2, 3), "{buf}");
                }
            }
        }
        assert_eq!(seen, [true; 2]);
    }

    #[test]
    fn the_book_never_crosses_and_keeps_its_depth() {
        let mut g = Synth::new(&opts(3));
        let mut buf = String::new();
        for _ in 0..30_000 {
            buf.clear();
            g.next_frame(&mut buf);
            for s in &g.symbols {
                assert!(s.best(Side::Bid).0 < s.best(Side::Ask).0, "{}", s.name);
                assert!(s.best(Side::Ask).0 - s.best(Side::Bid).0 <= 3 * s.tick);
                for side in [Side::Bid, Side::Ask] {
                    let n = s.side(side).len();
                    assert!((MIN_LEVELS - 10..=MAX_LEVELS + 10).contains(&n), "{n}");
                }
            }
        }
        assert_eq!(g.symbols[2].name, "SYNTH3USDT");
    }

    #[test]
    fn bad_options_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for bad in [
            SynthOptions { secs: 0, ..opts(1) },
            SynthOptions { rate: 0, ..opts(1) },
            SynthOptions {
                rate: MAX_RATE + 1,
                ..opts(1)
            },
            opts(0),
            opts(MAX_SYMBOLS + 1),
        ] {
            assert!(write(&bad, &dir.path().join("j"), JournalOptions::default()).is_err());
        }
        std::fs::write(dir.path().join("x"), b"x").unwrap();
        let err = write(&opts(1), dir.path(), JournalOptions::default()).unwrap_err();
        assert!(err.to_string().contains("not empty"), "{err}");
    }
}
