//! The simulator's order API: one sim account per listener, orders matched against the sim's
//! own book at the current stream position, and Binance user-data events for every change.
//!
//! Sans-IO: [`SimAccount`] takes validated requests, the symbol's book (or none) and the
//! event time, and returns the response `result` and the events as JSON text; the venue
//! loop does the sockets. The model (see `docs/venue-sim.md`):
//!
//! - a market or marketable limit order takes the recorded levels best-first at the level
//!   prices (taker); the book is not changed, since the sim replays recorded liquidity;
//! - IOC and market orders expire the rest, FOK fills completely or expires with nothing,
//!   a GTC limit order rests;
//! - a resting order fills completely, as maker at its own price, at the first later update of
//!   its symbol whose opposite best crosses it;
//! - fees are a fixed rate of the notional, charged in the quote asset; balances start at
//!   [`START_BALANCE`] per asset and are never checked.
//!
//! - `request`: parsing and validating WebSocket API requests.
//! - `auth`: Binance's request security (signatures, timestamps, session logon).
//! - `matching`: level walking and the crossing test.
//! - `wire`: responses and events as JSON.
//! - `kinds`: side, type, time in force, status.

pub(crate) mod auth;
mod kinds;
mod matching;
mod queries;
mod request;
mod wire;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_queries;
#[cfg(test)]
mod tests_request;

use std::collections::BTreeMap;

use tape_core::account::instruments::split_symbol;
use tape_core::account::money::{apply_bps, div_round, notional_raw, raw_to_money};
use tape_core::account::Money;
use tape_core::book::OrderBook;
use tape_core::fixed::{Price, Qty};
use tape_core::instrument::{Market, DEFAULT_SCALE};

use kinds::{Kind, OrderSide, Status, Tif};
pub(crate) use queries::{listen_key_expired, QueryParams};
use request::{decimal, DecimalKind};
pub(crate) use request::{parse, ApiError, Call, CancelParams, PlaceParams};
use wire::Exec;
pub(crate) use wire::{envelope, response_err, response_ok};

/// Every asset's balance (spot) and the margin asset's wallet (futures) at the start.
pub(crate) const START_BALANCE: Money = Money(1_000_000 * 100_000_000);
/// Resting orders one account may have; more are rejected.
pub(crate) const MAX_OPEN_ORDERS: usize = 1000;

/// What the account needs to know about a symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SymbolSpec {
    pub name: String,
    pub price_scale: u8,
    pub qty_scale: u8,
    /// Base and quote assets from the symbol (`BASE`/`QUOTE` when no known quote ends it).
    pub base: String,
    pub quote: String,
}

impl SymbolSpec {
    /// `name` with its declared scales (the engine's default scale otherwise, as the
    /// engine registers such symbols).
    pub fn new(name: &str, scales: Option<(u8, u8)>) -> SymbolSpec {
        let (price_scale, qty_scale) = scales.unwrap_or((DEFAULT_SCALE, DEFAULT_SCALE));
        let (base, quote) = split_symbol(name).map_or_else(
            || ("BASE".to_owned(), "QUOTE".to_owned()),
            |(b, q)| (b.as_str().to_owned(), q.as_str().to_owned()),
        );
        SymbolSpec {
            name: name.to_owned(),
            price_scale,
            qty_scale,
            base,
            quote,
        }
    }
}

/// Fee rates in basis points of the notional (negative for a rebate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fees {
    pub taker_bps: i64,
    pub maker_bps: i64,
}

/// One order of the sim account.
#[derive(Debug, Clone)]
pub(crate) struct Order {
    /// Index of its symbol (the venue's symbol table).
    pub sym: u32,
    pub id: u64,
    pub client_id: String,
    pub side: OrderSide,
    pub kind: Kind,
    pub tif: Tif,
    /// Zero for market orders.
    pub price: Price,
    pub qty: Qty,
    pub filled: Qty,
    /// Σ fill price × fill qty at price scale + qty scale.
    pub quote_raw: i128,
    pub reduce_only: bool,
    pub created_ms: u64,
    pub status: Status,
    /// When it last changed (placed, filled, cancelled, expired).
    pub updated_ms: u64,
}

/// One fill of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Trade {
    pub id: u64,
    pub price: Price,
    pub qty: Qty,
    pub fee: Money,
    pub maker: bool,
    /// Futures: PnL this fill realized (gross of the fee).
    pub realized: Money,
}

/// A futures position, one-way mode.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Position {
    /// Signed quantity at the qty scale.
    pub qty: i64,
    /// Σ entry price × signed qty of the open quantity, at price scale + qty scale.
    pub cost: i128,
    /// Accumulated realized PnL.
    pub realized: Money,
    /// Price of the last fill, the mark for unrealized PnL.
    pub last: Price,
}

impl Position {
    /// Applies a fill of signed quantity `d` at `p`; returns the realized PnL (raw scale).
    /// Closing `c` of `q` realizes `sign(q)·p·c − cost·c/|q|` and removes the same share of the
    /// cost, so realized + unrealized always equals cash-flow PnL.
    fn apply(&mut self, d: i64, p: Price) -> i128 {
        self.last = p;
        let (q, d128) = (i128::from(self.qty), i128::from(d));
        if q == 0 || (q > 0) == (d > 0) {
            self.qty = self.qty.saturating_add(d);
            self.cost += i128::from(p.0) * d128;
            return 0;
        }
        let closed = d128.abs().min(q.abs());
        // q != 0 here and the model's cost stays far from i128::MIN: the quotient exists.
        let removed = div_round(self.cost * closed, q.abs()).unwrap_or_default();
        let realized = q.signum() * i128::from(p.0) * closed - removed;
        self.cost -= removed;
        let rest = d128.abs() - closed;
        if rest > 0 {
            self.qty = i64::try_from(d128.signum() * rest).unwrap_or(0);
            self.cost = i128::from(p.0) * d128.signum() * rest;
        } else {
            self.qty = i64::try_from(q + d128).unwrap_or(0);
        }
        realized
    }

    /// Average entry price at the price scale (0 when flat).
    pub fn entry_price(&self) -> i64 {
        if self.qty == 0 {
            return 0;
        }
        div_round(self.cost, i128::from(self.qty))
            .and_then(|v| i64::try_from(v).ok())
            .unwrap_or(0)
    }

    /// Unrealized PnL at the last fill price.
    pub fn unrealized(&self, raw_scale: u8) -> Money {
        money(
            i128::from(self.last.0) * i128::from(self.qty) - self.cost,
            raw_scale,
        )
    }
}

/// A raw amount as [`Money`], saturating (amounts are bounded when an order is accepted, so
/// this only guards absurd accumulations).
pub(crate) fn money(raw: i128, raw_scale: u8) -> Money {
    raw_to_money(raw, raw_scale, "sim").unwrap_or(if raw < 0 {
        Money(i64::MIN)
    } else {
        Money(i64::MAX)
    })
}

/// What a request produced: the response `result` and the user-data events, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub result: String,
    pub events: Vec<String>,
}

/// One listener's sim account: its orders, balances and positions.
#[derive(Debug)]
pub(crate) struct SimAccount {
    market: Market,
    fees: Fees,
    next_order_id: u64,
    next_trade_id: u64,
    next_cancel_id: u64,
    /// Orders accepted so far (all passes).
    pub placed: u64,
    /// Fills so far (all passes).
    pub fills: u64,
    /// Resting orders by order id, which is also their time priority.
    resting: BTreeMap<u64, Order>,
    /// Spot: free balance per asset.
    balances: BTreeMap<String, Money>,
    /// Futures: wallet balance per margin asset.
    wallets: BTreeMap<String, Money>,
    /// Futures: position per symbol.
    positions: BTreeMap<u32, Position>,
    /// Orders no longer resting (filled, cancelled, expired), newest last, for `order.status`.
    closed: BTreeMap<u64, Order>,
    /// Futures: when each symbol's position last changed (event time, ms).
    position_times: BTreeMap<u32, u64>,
}

impl SimAccount {
    pub fn new(market: Market, fees: Fees) -> SimAccount {
        SimAccount {
            market,
            fees,
            next_order_id: 1,
            next_trade_id: 1,
            next_cancel_id: 1,
            placed: 0,
            fills: 0,
            resting: BTreeMap::new(),
            balances: BTreeMap::new(),
            wallets: BTreeMap::new(),
            positions: BTreeMap::new(),
            closed: BTreeMap::new(),
            position_times: BTreeMap::new(),
        }
    }

    /// Forgets orders, balances and positions (a new pass of the journal); ids go on.
    pub fn reset(&mut self) {
        self.resting.clear();
        self.balances.clear();
        self.wallets.clear();
        self.positions.clear();
        self.closed.clear();
        self.position_times.clear();
    }

    /// True when an order rests on symbol `sym`.
    pub fn has_resting(&self, sym: u32) -> bool {
        self.resting.values().any(|o| o.sym == sym)
    }

    /// `order.place` on symbol `sym` against `book` (`None`: no synced book yet, so no
    /// liquidity), at event time `now_ms`.
    ///
    /// # Errors
    /// Binance's: -1111/-1100/-1013 for the decimals, -1013 for a notional that cannot be
    /// represented, -2010 for a duplicate client id or too many open orders.
    pub fn place(
        &mut self,
        spec: &SymbolSpec,
        sym: u32,
        p: &PlaceParams,
        book: Option<&OrderBook>,
        now_ms: u64,
    ) -> Result<Outcome, ApiError> {
        let (ps, qs) = (spec.price_scale, spec.qty_scale);
        let qty = Qty(decimal("quantity", &p.quantity, qs, DecimalKind::Quantity)?);
        let limit = match &p.price {
            Some(s) => Some(Price(decimal("price", s, ps, DecimalKind::Price)?)),
            None => None,
        };
        let notional_filter = || ApiError::new(-1013, "Filter failure: NOTIONAL");
        if let Some(px) = limit {
            raw_to_money(notional_raw(px, qty), ps + qs, "order").map_err(|_| notional_filter())?;
        }
        if let Some(c) = &p.client_id {
            if self.resting.values().any(|o| o.client_id == *c) {
                return Err(ApiError::new(-2010, "Duplicate order sent."));
            }
        }
        if self.resting.len() >= MAX_OPEN_ORDERS {
            return Err(ApiError::new(-2010, "Account has too many open orders."));
        }
        let fills = matching::take(book, p.side, limit, qty, p.tif);
        let taken: i128 = fills.iter().map(|f| notional_raw(f.price, f.qty)).sum();
        raw_to_money(taken, ps + qs, "order").map_err(|_| notional_filter())?;

        let id = self.next_order_id;
        self.next_order_id += 1;
        self.placed += 1;
        let mut o = Order {
            sym,
            id,
            client_id: p.client_id.clone().unwrap_or_else(|| format!("sim-{id}")),
            side: p.side,
            kind: p.kind,
            tif: p.tif,
            price: limit.unwrap_or_default(),
            qty,
            filled: Qty::ZERO,
            quote_raw: 0,
            reduce_only: p.reduce_only,
            created_ms: now_ms,
            status: Status::New,
            updated_ms: now_ms,
        };
        let mut events = vec![self.report(spec, &o, &Exec::New, now_ms)];
        let mut trades = Vec::with_capacity(fills.len());
        for f in &fills {
            let t = self.fill(spec, &mut o, f.price, f.qty, false);
            events.push(self.report(spec, &o, &Exec::Trade(&t), now_ms));
            trades.push(t);
        }
        let rests = o.filled < o.qty && o.kind == Kind::Limit && o.tif == Tif::Gtc;
        if o.filled < o.qty && !rests {
            o.status = Status::Expired;
            events.push(self.report(spec, &o, &Exec::Expired, now_ms));
        }
        if !trades.is_empty() {
            events.extend(self.balance_event(spec, sym, now_ms));
        }
        let result = wire::place_result(self.market, spec, &o, &trades, now_ms);
        if rests {
            self.resting.insert(id, o);
        } else {
            self.retire(o, now_ms);
        }
        Ok(Outcome { result, events })
    }

    /// `order.cancel` of a resting order on `sym`, by order id and/or original client id (both
    /// must match when both are given).
    ///
    /// # Errors
    /// -2011 when no resting order matches.
    pub fn cancel(
        &mut self,
        spec: &SymbolSpec,
        sym: u32,
        c: &CancelParams,
        now_ms: u64,
    ) -> Result<Outcome, ApiError> {
        let found = self.resting.values().find(|o| {
            o.sym == sym
                && c.order_id.is_none_or(|id| id == o.id)
                && c.orig_client_id
                    .as_ref()
                    .is_none_or(|cid| *cid == o.client_id)
        });
        let Some(mut o) = found.map(|o| o.id).and_then(|id| self.resting.remove(&id)) else {
            return Err(ApiError::new(-2011, "Unknown order sent."));
        };
        o.status = Status::Canceled;
        let cancel_id = if self.market.is_futures() {
            o.client_id.clone()
        } else {
            c.new_client_id.clone().unwrap_or_else(|| {
                self.next_cancel_id += 1;
                format!("sim-cxl-{}", self.next_cancel_id - 1)
            })
        };
        let event = self.report(
            spec,
            &o,
            &Exec::Canceled {
                cancel_id: &cancel_id,
            },
            now_ms,
        );
        let result = wire::cancel_result(self.market, spec, &o, &cancel_id, now_ms);
        self.retire(o, now_ms);
        Ok(Outcome {
            result,
            events: vec![event],
        })
    }

    /// The stream moved `sym`'s book: resting orders it crosses fill completely, as maker at
    /// their own price, in time priority. Returns the events.
    pub fn on_book(
        &mut self,
        spec: &SymbolSpec,
        sym: u32,
        book: &OrderBook,
        now_ms: u64,
    ) -> Vec<String> {
        let crossed: Vec<u64> = self
            .resting
            .values()
            .filter(|o| o.sym == sym && matching::crosses(book, o.side, o.price))
            .map(|o| o.id)
            .collect();
        let mut events = Vec::new();
        for id in &crossed {
            let Some(mut o) = self.resting.remove(id) else {
                continue;
            };
            let left = Qty(o.qty.0 - o.filled.0);
            let price = o.price;
            let t = self.fill(spec, &mut o, price, left, true);
            events.push(self.report(spec, &o, &Exec::Trade(&t), now_ms));
            self.retire(o, now_ms);
        }
        if !crossed.is_empty() {
            events.extend(self.balance_event(spec, sym, now_ms));
        }
        events
    }

    /// Applies one fill to `o` and to the balances or position.
    fn fill(
        &mut self,
        spec: &SymbolSpec,
        o: &mut Order,
        price: Price,
        qty: Qty,
        maker: bool,
    ) -> Trade {
        let raw_scale = spec.price_scale + spec.qty_scale;
        let raw = notional_raw(price, qty);
        o.filled = Qty(o.filled.0 + qty.0);
        o.quote_raw += raw;
        o.status = if o.filled == o.qty {
            Status::Filled
        } else {
            Status::PartiallyFilled
        };
        let notional = money(raw, raw_scale);
        let bps = if maker {
            self.fees.maker_bps
        } else {
            self.fees.taker_bps
        };
        let fee = apply_bps(notional, bps).unwrap_or(Money::ZERO);
        let sign = o.side.sign();
        let realized = if self.market.is_futures() {
            let pos = self.positions.entry(o.sym).or_default();
            let realized = money(pos.apply(sign * qty.0, price), raw_scale);
            pos.realized = Money(pos.realized.0.saturating_add(realized.0));
            let w = self
                .wallets
                .entry(spec.quote.clone())
                .or_insert(START_BALANCE);
            *w = Money(w.0.saturating_add(realized.0).saturating_sub(fee.0));
            realized
        } else {
            let base = money(i128::from(qty.0), spec.qty_scale);
            let b = self
                .balances
                .entry(spec.base.clone())
                .or_insert(START_BALANCE);
            *b = Money(b.0.saturating_add(sign * base.0));
            let q = self
                .balances
                .entry(spec.quote.clone())
                .or_insert(START_BALANCE);
            *q = Money(q.0.saturating_sub(sign * notional.0).saturating_sub(fee.0));
            Money::ZERO
        };
        self.next_trade_id += 1;
        self.fills += 1;
        Trade {
            id: self.next_trade_id - 1,
            price,
            qty,
            fee,
            maker,
            realized,
        }
    }

    fn report(&self, spec: &SymbolSpec, o: &Order, x: &Exec<'_>, now_ms: u64) -> String {
        if self.market.is_futures() {
            wire::order_trade_update(spec, o, x, now_ms)
        } else {
            wire::execution_report(spec, o, x, now_ms)
        }
    }

    /// After fills on `sym`: spot `outboundAccountPosition` (base and quote), USD-M
    /// `ACCOUNT_UPDATE`; nothing on COIN-M, whose inverse contracts are not modelled.
    fn balance_event(&mut self, spec: &SymbolSpec, sym: u32, now_ms: u64) -> Option<String> {
        if self.market.is_futures() {
            self.position_times.insert(sym, now_ms);
        }
        let get = |m: &BTreeMap<String, Money>, a: &str| m.get(a).copied().unwrap_or(START_BALANCE);
        match self.market {
            Market::Spot => Some(wire::account_position(
                [
                    (spec.base.as_str(), get(&self.balances, &spec.base)),
                    (spec.quote.as_str(), get(&self.balances, &spec.quote)),
                ],
                now_ms,
            )),
            Market::UsdM => Some(wire::account_update(
                spec,
                get(&self.wallets, &spec.quote),
                &self.positions.get(&sym).copied().unwrap_or_default(),
                now_ms,
            )),
            Market::CoinM => None,
        }
    }
}
