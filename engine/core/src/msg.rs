//! Decoded market messages: what the Binance decoders produce and the books consume.
//!
//! Depth levels borrow from the decoder's reusable level buffers, so decoding allocates
//! nothing per frame once the buffers have grown to the largest frame seen.

use crate::fixed::{Decimal, Price, Qty};
use crate::instrument::InstrumentId;

/// Book side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    /// Buy side.
    Bid,
    /// Sell side.
    Ask,
}

/// One price level: a quantity of zero in a diff deletes the level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Level {
    /// Level price.
    pub price: Price,
    /// Total quantity resting at `price`.
    pub qty: Qty,
}

/// A `depthUpdate` diff (spot `U`,`u`; USD-M adds `T`,`pu`; COIN-M adds `ps`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepthUpdate<'a> {
    /// Instrument (from `s`).
    pub instrument: InstrumentId,
    /// `E`, event time, ms.
    pub event_time_ms: u64,
    /// `T`, transaction time, ms (futures only).
    pub transact_time_ms: Option<u64>,
    /// `U`, first update id in the event.
    pub first_update_id: u64,
    /// `u`, final update id in the event.
    pub final_update_id: u64,
    /// `pu`, final update id of the previous event (futures only).
    pub prev_final_update_id: Option<u64>,
    /// `b`, bid level changes in the order received.
    pub bids: &'a [Level],
    /// `a`, ask level changes in the order received.
    pub asks: &'a [Level],
}

/// A REST depth snapshot (spot `lastUpdateId,bids,asks`; USD-M adds `E,T`; COIN-M adds
/// `symbol,pair`). Spot snapshots carry no symbol: the caller names the instrument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepthSnapshot<'a> {
    /// Instrument the snapshot is for.
    pub instrument: InstrumentId,
    /// `lastUpdateId`.
    pub last_update_id: u64,
    /// `E`, message output time, ms (futures only).
    pub event_time_ms: Option<u64>,
    /// `T`, transaction time, ms (futures only).
    pub transact_time_ms: Option<u64>,
    /// Bids, best first as Binance sends them.
    pub bids: &'a [Level],
    /// Asks, best first as Binance sends them.
    pub asks: &'a [Level],
}

/// A `trade` event (spot, with or without the legacy `b`/`a` order ids; futures with `X`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trade {
    /// Instrument (from `s`).
    pub instrument: InstrumentId,
    /// `E`, ms.
    pub event_time_ms: u64,
    /// `T`, trade time, ms.
    pub trade_time_ms: u64,
    /// `t`.
    pub trade_id: u64,
    /// `p`.
    pub price: Price,
    /// `q`.
    pub qty: Qty,
    /// `m`: the buyer was the maker (so the aggressor sold).
    pub buyer_is_maker: bool,
    /// `b`, legacy spot buyer order id.
    pub buyer_order_id: Option<u64>,
    /// `a`, legacy spot seller order id.
    pub seller_order_id: Option<u64>,
    /// `X` on futures: true unless the trade is not a regular `MARKET` trade
    /// (e.g. `INSURANCE_FUND`, `ADL`, `NA`).
    pub is_market: bool,
}

/// An `aggTrade` event (spot has `M`, futures do not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggTrade {
    /// Instrument (from `s`).
    pub instrument: InstrumentId,
    /// `E`, ms.
    pub event_time_ms: u64,
    /// `T`, ms.
    pub trade_time_ms: u64,
    /// `a`, aggregate trade id.
    pub agg_id: u64,
    /// `f`, first trade id.
    pub first_trade_id: u64,
    /// `l`, last trade id.
    pub last_trade_id: u64,
    /// `p`.
    pub price: Price,
    /// `q`.
    pub qty: Qty,
    /// `m`.
    pub buyer_is_maker: bool,
}

/// A `bookTicker` (spot has no `e`/`E`/`T`; keys are parsed by name, never by position).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookTicker {
    /// Instrument (from `s`).
    pub instrument: InstrumentId,
    /// `u`, in the same id space as the depth stream's `u`.
    pub update_id: u64,
    /// `E`, ms (futures only).
    pub event_time_ms: Option<u64>,
    /// `T`, ms (futures only).
    pub transact_time_ms: Option<u64>,
    /// `b`.
    pub bid_price: Price,
    /// `B`.
    pub bid_qty: Qty,
    /// `a`.
    pub ask_price: Price,
    /// `A`.
    pub ask_qty: Qty,
}

/// A `24hrTicker` (full) or `24hrMiniTicker` (no change fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticker {
    /// Instrument (from `s`).
    pub instrument: InstrumentId,
    /// True for `24hrMiniTicker`, which has no `p`/`P`/`w`.
    pub mini: bool,
    /// `E`, ms.
    pub event_time_ms: u64,
    /// `c`, last price.
    pub last: Price,
    /// `o`, open price.
    pub open: Price,
    /// `h`.
    pub high: Price,
    /// `l`.
    pub low: Price,
    /// `p`, price change (full ticker only; mini: `last - open`).
    pub price_change: Price,
    /// `P`, price change percent (full ticker only; mini: `None`).
    pub price_change_pct: Option<Decimal>,
    /// `v`, base volume.
    pub volume: Decimal,
    /// `q`, quote volume.
    pub quote_volume: Decimal,
}

/// Everything a market-data frame can decode to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarketMsg<'a> {
    /// A depth diff.
    Depth(DepthUpdate<'a>),
    /// A REST depth snapshot.
    Snapshot(DepthSnapshot<'a>),
    /// A trade.
    Trade(Trade),
    /// An aggregate trade.
    AggTrade(AggTrade),
    /// Best bid/ask.
    BookTicker(BookTicker),
    /// 24h rolling statistics.
    Ticker(Ticker),
    /// A well-formed frame of a kind tape does not use (`kline`, subscription acks, ...):
    /// counted and skipped.
    Unknown,
}
