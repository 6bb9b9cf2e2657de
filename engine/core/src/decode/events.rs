//! One decoder per Binance event type, reading fields by key from a walked object.

use super::error::{symbol_for_error, DecodeError};
use super::symbols::SymbolCache;
use super::tape::{Fields, Key};
use super::DecodeCtx;
use crate::fixed::{Decimal, FixedError, Price};
use crate::instrument::{Instrument, InstrumentId, Market, Registry};
use crate::msg::{
    AggTrade, BookTicker, DepthSnapshot, DepthUpdate, Level, MarketMsg, Ticker, Trade,
};

/// The instrument named by `s`, with its price and quantity scales.
#[derive(Clone, Copy)]
pub(super) struct Inst {
    pub id: InstrumentId,
    pub price_scale: u8,
    pub qty_scale: u8,
}

/// Everything needed to turn `s` into an instrument.
pub(super) struct Resolver<'r> {
    /// Market and registration policy of the frame.
    pub ctx: DecodeCtx,
    /// The caller's registry.
    pub registry: &'r mut Registry,
    /// The decoder's lookup cache.
    pub cache: &'r mut SymbolCache,
}

impl Resolver<'_> {
    fn instrument(&mut self, f: &Fields<'_, '_>) -> Result<Inst, DecodeError> {
        let s = f.str(k!(b's'), "s")?;
        self.symbol(f.event, s)
    }

    /// The instrument of symbol `s` in a frame of type `event`. Shared by the tape path and
    /// the fast path, so both look up, auto-register and fail identically. Calling it again
    /// with the same arguments returns the same result and changes nothing more.
    #[inline]
    pub(super) fn symbol(&mut self, event: &'static str, s: &str) -> Result<Inst, DecodeError> {
        let (market, sym) = (self.ctx.market, s.as_bytes());
        let id = match self.cache.get(market, sym, self.registry) {
            Some(id) => id,
            None => {
                let id = self.lookup(event, s)?;
                self.cache.put(market, sym, id);
                id
            }
        };
        let i = self.registry.get(id);
        Ok(Inst {
            id,
            price_scale: i.price_scale,
            qty_scale: i.qty_scale,
        })
    }

    /// The instrument of `s` if the cache knows it: exactly what [`Resolver::symbol`] would
    /// return then, without needing `s` as a `str`.
    #[inline]
    pub(super) fn cached(&self, s: &[u8]) -> Option<Inst> {
        let id = self.cache.get(self.ctx.market, s, self.registry)?;
        let i = self.registry.get(id);
        Some(Inst {
            id,
            price_scale: i.price_scale,
            qty_scale: i.qty_scale,
        })
    }

    #[cold]
    fn lookup(&mut self, event: &'static str, s: &str) -> Result<InstrumentId, DecodeError> {
        let market = self.ctx.market;
        if self.ctx.auto_register {
            self.registry
                .lookup_or_register(market, s.as_bytes())
                .map_err(|error| DecodeError::Register {
                    event,
                    market,
                    symbol: symbol_for_error(s),
                    error,
                })
        } else {
            self.registry
                .lookup(market, s.as_bytes())
                .ok_or_else(|| DecodeError::UnknownSymbol {
                    event,
                    market,
                    symbol: symbol_for_error(s),
                })
        }
    }
}

/// A field that is required on futures markets and optional (absent in practice) on spot.
fn market_u64(
    f: &Fields<'_, '_>,
    market: Market,
    slot: usize,
    field: &'static str,
) -> Result<Option<u64>, DecodeError> {
    match f.opt_u64(slot, field)? {
        None if market.is_futures() => Err(f.missing(field)),
        v => Ok(v),
    }
}

/// The event types tape decodes.
#[derive(Clone, Copy)]
enum Kind {
    Depth,
    Trade,
    AggTrade,
    BookTicker,
    Ticker,
    MiniTicker,
}

/// Decodes the event object walked into `f`. Depth levels go into `bids`/`asks`; the returned
/// `Depth` has empty slices that the caller points at those buffers.
pub(super) fn decode_event(
    f: &mut Fields<'_, '_>,
    res: &mut Resolver<'_>,
    bids: &mut Vec<Level>,
    asks: &mut Vec<Level>,
) -> Result<MarketMsg<'static>, DecodeError> {
    let (name, kind) = match f.opt_str(k!(b'e'), "e")? {
        Some("depthUpdate") => ("depthUpdate", Kind::Depth),
        Some("trade") => ("trade", Kind::Trade),
        Some("aggTrade") => ("aggTrade", Kind::AggTrade),
        Some("bookTicker") => ("bookTicker", Kind::BookTicker),
        Some("24hrTicker") => ("24hrTicker", Kind::Ticker),
        Some("24hrMiniTicker") => ("24hrMiniTicker", Kind::MiniTicker),
        Some(_) => return Ok(MarketMsg::Unknown),
        // Spot bookTicker is the one event without `e`. Acks (`{"result":null,"id":1}`)
        // and other control frames have neither `u` nor `s`.
        None if f.has(k!(b'u')) && f.has(k!(b's')) => ("bookTicker", Kind::BookTicker),
        None => return Ok(MarketMsg::Unknown),
    };
    f.event = name;
    let f = &*f;
    Ok(match kind {
        Kind::Depth => return depth(f, res, bids, asks),
        Kind::Trade => MarketMsg::Trade(trade(f, res)?),
        Kind::AggTrade => MarketMsg::AggTrade(agg_trade(f, res)?),
        Kind::BookTicker => MarketMsg::BookTicker(book_ticker(f, res)?),
        Kind::Ticker => MarketMsg::Ticker(ticker(f, res, false)?),
        Kind::MiniTicker => MarketMsg::Ticker(ticker(f, res, true)?),
    })
}

fn depth(
    f: &Fields<'_, '_>,
    res: &mut Resolver<'_>,
    bids: &mut Vec<Level>,
    asks: &mut Vec<Level>,
) -> Result<MarketMsg<'static>, DecodeError> {
    let event_time_ms = f.u64(k!(b'E'), "E")?;
    let first_update_id = f.u64(k!(b'U'), "U")?;
    let final_update_id = f.u64(k!(b'u'), "u")?;
    let transact_time_ms = market_u64(f, res.ctx.market, k!(b'T'), "T")?;
    let prev_final_update_id = market_u64(f, res.ctx.market, Key::Pu as usize, "pu")?;
    let inst = res.instrument(f)?;
    f.levels(k!(b'b'), "b", inst.price_scale, inst.qty_scale, bids)?;
    f.levels(k!(b'a'), "a", inst.price_scale, inst.qty_scale, asks)?;
    Ok(MarketMsg::Depth(DepthUpdate {
        instrument: inst.id,
        event_time_ms,
        transact_time_ms,
        first_update_id,
        final_update_id,
        prev_final_update_id,
        bids: &[],
        asks: &[],
    }))
}

fn trade(f: &Fields<'_, '_>, res: &mut Resolver<'_>) -> Result<Trade, DecodeError> {
    let event_time_ms = f.u64(k!(b'E'), "E")?;
    let trade_time_ms = f.u64(k!(b'T'), "T")?;
    let trade_id = f.u64(k!(b't'), "t")?;
    let buyer_is_maker = f.bool(k!(b'm'), "m")?;
    let buyer_order_id = f.opt_u64(k!(b'b'), "b")?;
    let seller_order_id = f.opt_u64(k!(b'a'), "a")?;
    // Futures send `X`; every captured value is "MARKET". Spot has no `X`: all its trades
    // are regular market trades.
    let is_market = f.opt_str(k!(b'X'), "X")?.is_none_or(|x| x == "MARKET");
    let inst = res.instrument(f)?;
    Ok(Trade {
        instrument: inst.id,
        event_time_ms,
        trade_time_ms,
        trade_id,
        price: f.price(k!(b'p'), "p", inst.price_scale)?,
        qty: f.qty(k!(b'q'), "q", inst.qty_scale)?,
        buyer_is_maker,
        buyer_order_id,
        seller_order_id,
        is_market,
    })
}

fn agg_trade(f: &Fields<'_, '_>, res: &mut Resolver<'_>) -> Result<AggTrade, DecodeError> {
    let event_time_ms = f.u64(k!(b'E'), "E")?;
    let trade_time_ms = f.u64(k!(b'T'), "T")?;
    let agg_id = f.u64(k!(b'a'), "a")?;
    let first_trade_id = f.u64(k!(b'f'), "f")?;
    let last_trade_id = f.u64(k!(b'l'), "l")?;
    let buyer_is_maker = f.bool(k!(b'm'), "m")?;
    let inst = res.instrument(f)?;
    Ok(AggTrade {
        instrument: inst.id,
        event_time_ms,
        trade_time_ms,
        agg_id,
        first_trade_id,
        last_trade_id,
        price: f.price(k!(b'p'), "p", inst.price_scale)?,
        qty: f.qty(k!(b'q'), "q", inst.qty_scale)?,
        buyer_is_maker,
    })
}

fn book_ticker(f: &Fields<'_, '_>, res: &mut Resolver<'_>) -> Result<BookTicker, DecodeError> {
    let update_id = f.u64(k!(b'u'), "u")?;
    let event_time_ms = market_u64(f, res.ctx.market, k!(b'E'), "E")?;
    let transact_time_ms = market_u64(f, res.ctx.market, k!(b'T'), "T")?;
    let inst = res.instrument(f)?;
    Ok(BookTicker {
        instrument: inst.id,
        update_id,
        event_time_ms,
        transact_time_ms,
        bid_price: f.price(k!(b'b'), "b", inst.price_scale)?,
        bid_qty: f.qty(k!(b'B'), "B", inst.qty_scale)?,
        ask_price: f.price(k!(b'a'), "a", inst.price_scale)?,
        ask_qty: f.qty(k!(b'A'), "A", inst.qty_scale)?,
    })
}

fn ticker(f: &Fields<'_, '_>, res: &mut Resolver<'_>, mini: bool) -> Result<Ticker, DecodeError> {
    let event_time_ms = f.u64(k!(b'E'), "E")?;
    let inst = res.instrument(f)?;
    let ps = inst.price_scale;
    let last = f.price(k!(b'c'), "c", ps)?;
    let open = f.price(k!(b'o'), "o", ps)?;
    let (price_change, price_change_pct): (Price, Option<Decimal>) = if mini {
        let change = last.0.checked_sub(open.0).ok_or(DecodeError::BadNumber {
            event: f.event,
            field: "c",
            level: None,
            error: FixedError::Overflow,
        })?;
        (Price(change), None)
    } else {
        (f.price(k!(b'p'), "p", ps)?, Some(f.decimal(k!(b'P'), "P")?))
    };
    Ok(Ticker {
        instrument: inst.id,
        mini,
        event_time_ms,
        last,
        open,
        high: f.price(k!(b'h'), "h", ps)?,
        low: f.price(k!(b'l'), "l", ps)?,
        price_change,
        price_change_pct,
        volume: f.decimal(k!(b'v'), "v")?,
        quote_volume: f.decimal(k!(b'q'), "q")?,
    })
}

/// Decodes a REST depth snapshot body walked into `f` for `inst`. Levels go into
/// `bids`/`asks`; the returned snapshot has empty slices the caller points at them.
pub(super) fn snapshot(
    f: &Fields<'_, '_>,
    inst: &Instrument,
    bids: &mut Vec<Level>,
    asks: &mut Vec<Level>,
) -> Result<DepthSnapshot<'static>, DecodeError> {
    let last_update_id = f.u64(Key::LastUpdateId as usize, "lastUpdateId")?;
    let event_time_ms = market_u64(f, inst.market, k!(b'E'), "E")?;
    let transact_time_ms = market_u64(f, inst.market, k!(b'T'), "T")?;
    // COIN-M names the symbol; a snapshot for the wrong instrument would corrupt a book.
    if let Some(symbol) = f.opt_str(Key::Symbol as usize, "symbol")? {
        if !symbol.eq_ignore_ascii_case(&inst.symbol) {
            return Err(DecodeError::SymbolMismatch {
                expected: inst.symbol.clone(),
                got: symbol_for_error(symbol),
            });
        }
    }
    f.levels(
        Key::Bids as usize,
        "bids",
        inst.price_scale,
        inst.qty_scale,
        bids,
    )?;
    f.levels(
        Key::Asks as usize,
        "asks",
        inst.price_scale,
        inst.qty_scale,
        asks,
    )?;
    Ok(DepthSnapshot {
        instrument: inst.id,
        last_update_id,
        event_time_ms,
        transact_time_ms,
        bids: &[],
        asks: &[],
    })
}
