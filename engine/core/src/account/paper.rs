//! The paper venue: the default gateway when no venue is configured.
//!
//! It takes [`OrderCommand`]s and answers with the same [`UserEvent::Execution`] reports the
//! venue's user-data stream produces, so the account has one path for both. Fill model
//! (simple and deterministic, no queue position, no latency):
//!
//! * Only `MARKET`, `LIMIT` and `LIMIT_MAKER` orders are accepted (stops and take-profits are
//!   tape-managed triggers that send market or limit orders); others are `REJECTED`.
//! * A market order walks the opposite side of the paper book best-first, one fill per level
//!   at the level's price, until filled; the rest `EXPIRED` (as on Binance when the book runs
//!   out).
//! * A limit order that crosses on arrival walks the levels at prices no worse than its limit
//!   (taker). `IOC` then expires the rest, `FOK` fills completely or expires with nothing,
//!   `GTC`/`GTD` rest the remainder. Post-only orders that would cross: `LIMIT_MAKER` is
//!   rejected (without an acknowledgement), `GTX` is acknowledged and expires.
//! * A resting limit order fills as maker, at its own price, when the opposite best moves to
//!   or through it (taking that level's quantity) or a trade prints strictly through its
//!   price (taking up to the trade's quantity). Resting orders are served in price-time
//!   priority.
//! * Liquidity taken is removed from the paper book until the next book update replaces it.
//! * Fees: taker or maker basis points of the fill notional, rounded half away from zero,
//!   charged in the quote asset. Balances are not settled by the paper venue.

use std::collections::{BTreeMap, HashMap};

use super::event::{ExecutionReport, UserEvent};
use super::ids::ClientOrderId;
use super::instruments::InstrumentInfo;
use super::kinds::{ExecType, OrderSide, OrderStatus, OrderType, TimeInForce, VenuePositionSide};
use super::money::{apply_bps, notional, Money};
use super::orders::{NewOrder, OrderCommand};
use crate::book::OrderBook;
use crate::fixed::{Price, Qty};
use crate::input::Nanos;
use crate::instrument::InstrumentId;
use crate::msg::{Level, Side};

/// Paper venue settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaperConfig {
    /// Maker fee in basis points (negative for a rebate).
    pub maker_fee_bps: i64,
    /// Taker fee in basis points.
    pub taker_fee_bps: i64,
    /// Book levels per side copied from an [`OrderBook`].
    pub depth_levels: usize,
    /// Resting orders at most (more are rejected).
    pub max_resting: usize,
}

impl Default for PaperConfig {
    fn default() -> Self {
        PaperConfig {
            maker_fee_bps: 2,
            taker_fee_bps: 4,
            depth_levels: 20,
            max_resting: 10_000,
        }
    }
}

/// A command the paper venue refused outright (a real venue answers these on the REST call,
/// not on the user-data stream).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaperReject {
    /// Cancel of an order that is not resting.
    #[error("paper venue: order {0} is not resting")]
    UnknownOrder(ClientOrderId),
}

#[derive(Debug, Clone, Copy)]
struct Resting {
    order: NewOrder,
    venue_id: u64,
    filled: Qty,
}

#[derive(Debug, Clone, Default)]
struct PaperMarket {
    /// Best first.
    bids: Vec<Level>,
    /// Best first.
    asks: Vec<Level>,
    /// Best (highest price, then oldest) first.
    resting_bids: Vec<Resting>,
    /// Best (lowest price, then oldest) first.
    resting_asks: Vec<Resting>,
}

/// A deterministic in-process venue.
#[derive(Debug, Clone)]
pub struct PaperVenue {
    cfg: PaperConfig,
    next_order_id: u64,
    next_trade_id: u64,
    markets: BTreeMap<InstrumentId, PaperMarket>,
    resting_ids: HashMap<ClientOrderId, InstrumentId>,
    fills: Vec<(Price, Qty, Money)>,
}

impl Default for PaperVenue {
    fn default() -> Self {
        PaperVenue::new(PaperConfig::default())
    }
}

fn accepts(side: OrderSide, level: Price, limit: Option<Price>) -> bool {
    match (side, limit) {
        (_, None) => true,
        (OrderSide::Buy, Some(l)) => level <= l,
        (OrderSide::Sell, Some(l)) => level >= l,
    }
}

/// The fee of one fill: `bps` of its notional. `None` when the notional or the fee does
/// not fit [`Money`]: the paper venue then does not make that fill (the walk stops there, as
/// if the liquidity were not there), rather than report a fill with a made-up fee.
fn fill_fee(info: &InstrumentInfo, price: Price, qty: Qty, bps: i64) -> Option<Money> {
    notional(price, qty, info.price_scale, info.qty_scale)
        .and_then(|n| apply_bps(n, bps))
        .ok()
}

/// Takes up to `want` from `levels` (best first) at acceptable prices whose fill has a fee
/// (see [`fill_fee`]); records fills with their fees.
fn take(
    levels: &mut Vec<Level>,
    side: OrderSide,
    limit: Option<Price>,
    want: i64,
    fee: impl Fn(Price, Qty) -> Option<Money>,
    fills: &mut Vec<(Price, Qty, Money)>,
) -> i64 {
    let mut got = 0;
    let mut used = 0;
    for l in levels.iter_mut() {
        if got == want || !accepts(side, l.price, limit) {
            break;
        }
        // 0 <= got < want: no overflow.
        let q = l.qty.0.min(want - got);
        if q > 0 {
            let Some(f) = fee(l.price, Qty(q)) else {
                break;
            };
            fills.push((l.price, Qty(q), f));
            got += q;
            l.qty.0 -= q;
        }
        if l.qty.0 == 0 {
            used += 1;
        }
    }
    levels.drain(..used);
    got
}

/// What [`take`] would fill, without taking it (fill-or-kill).
fn fillable(
    levels: &[Level],
    side: OrderSide,
    limit: Option<Price>,
    want: i64,
    fee: impl Fn(Price, Qty) -> Option<Money>,
) -> i64 {
    let mut got = 0;
    for l in levels {
        if got == want || !accepts(side, l.price, limit) {
            break;
        }
        let q = l.qty.0.min(want - got);
        if q > 0 {
            if fee(l.price, Qty(q)).is_none() {
                break;
            }
            got += q;
        }
    }
    got
}

impl PaperVenue {
    /// A paper venue with these settings.
    pub fn new(cfg: PaperConfig) -> Self {
        PaperVenue {
            cfg,
            next_order_id: 1,
            next_trade_id: 1,
            markets: BTreeMap::new(),
            resting_ids: HashMap::new(),
            fills: Vec::new(),
        }
    }

    /// Settings.
    pub fn config(&self) -> &PaperConfig {
        &self.cfg
    }

    /// Number of resting orders.
    pub fn resting_count(&self) -> usize {
        self.resting_ids.len()
    }

    /// Replaces the paper book of `instrument` with the top levels of `book`.
    pub fn set_book(&mut self, instrument: InstrumentId, book: &OrderBook) {
        let n = self.cfg.depth_levels;
        let m = self.markets.entry(instrument).or_default();
        m.bids.clear();
        m.asks.clear();
        book.top_n(Side::Bid, n, &mut m.bids);
        book.top_n(Side::Ask, n, &mut m.asks);
    }

    /// Replaces the paper book of `instrument` with its best levels only.
    pub fn set_top(&mut self, instrument: InstrumentId, bid: Option<Level>, ask: Option<Level>) {
        let m = self.markets.entry(instrument).or_default();
        m.bids.clear();
        m.asks.clear();
        m.bids.extend(bid.filter(|l| l.qty.0 > 0));
        m.asks.extend(ask.filter(|l| l.qty.0 > 0));
    }

    /// Handles a command, appending the venue's reports to `out`.
    ///
    /// # Errors
    /// [`PaperReject::UnknownOrder`] for a cancel of an order that is not resting.
    pub fn submit(
        &mut self,
        now: Nanos,
        cmd: &OrderCommand,
        info: &InstrumentInfo,
        out: &mut Vec<UserEvent>,
    ) -> Result<(), PaperReject> {
        match *cmd {
            OrderCommand::Place(o) => {
                self.place(now, o, info, out);
                Ok(())
            }
            OrderCommand::Cancel {
                client_order_id, ..
            } => {
                let inst = self
                    .resting_ids
                    .remove(&client_order_id)
                    .ok_or(PaperReject::UnknownOrder(client_order_id))?;
                let m = self.markets.entry(inst).or_default();
                let mut found = None;
                for list in [&mut m.resting_bids, &mut m.resting_asks] {
                    if let Some(pos) = list
                        .iter()
                        .position(|r| r.order.client_order_id == client_order_id)
                    {
                        found = Some(list.remove(pos));
                        break;
                    }
                }
                let r = found.ok_or(PaperReject::UnknownOrder(client_order_id))?;
                out.push(self.report(
                    now,
                    info,
                    &r,
                    ExecType::Canceled,
                    OrderStatus::Canceled,
                    None,
                ));
                Ok(())
            }
        }
    }

    fn place(&mut self, now: Nanos, o: NewOrder, info: &InstrumentInfo, out: &mut Vec<UserEvent>) {
        let mut r = Resting {
            order: o,
            venue_id: self.next_order_id,
            filled: Qty::ZERO,
        };
        self.next_order_id = self.next_order_id.saturating_add(1);
        let supported = matches!(
            o.order_type,
            OrderType::Market | OrderType::Limit | OrderType::LimitMaker
        );
        if !supported || o.qty.0 <= 0 || self.resting_ids.len() >= self.cfg.max_resting {
            out.push(self.report(
                now,
                info,
                &r,
                ExecType::Rejected,
                OrderStatus::Rejected,
                None,
            ));
            return;
        }
        let limit = (o.order_type != OrderType::Market).then_some(o.price);
        let taker_bps = self.cfg.taker_fee_bps;
        let fee = |p, q| fill_fee(info, p, q, taker_bps);
        let (crosses, fok_short) = {
            let book = self.opposite(o.instrument, o.side);
            (
                book.first()
                    .is_some_and(|l| accepts(o.side, l.price, limit)),
                o.time_in_force == TimeInForce::Fok
                    && fillable(book, o.side, limit, o.qty.0, fee) < o.qty.0,
            )
        };
        // Like Binance: a crossing LIMIT_MAKER is refused outright; a crossing GTX order is
        // accepted and then expires.
        if crosses && o.order_type == OrderType::LimitMaker {
            out.push(self.report(
                now,
                info,
                &r,
                ExecType::Rejected,
                OrderStatus::Rejected,
                None,
            ));
            return;
        }
        out.push(self.report(now, info, &r, ExecType::New, OrderStatus::New, None));
        if crosses && o.time_in_force == TimeInForce::Gtx {
            out.push(self.report(now, info, &r, ExecType::Expired, OrderStatus::Expired, None));
            return;
        }
        let mut fills = std::mem::take(&mut self.fills);
        if crosses && !fok_short {
            take(
                self.opposite(o.instrument, o.side),
                o.side,
                limit,
                o.qty.0,
                fee,
                &mut fills,
            );
        }
        for &(p, q, f) in &fills {
            // Fills sum to at most the order quantity.
            r.filled.0 += q.0;
            let status = if r.filled == o.qty {
                OrderStatus::Filled
            } else {
                OrderStatus::PartiallyFilled
            };
            out.push(self.report(
                now,
                info,
                &r,
                ExecType::Trade,
                status,
                Some((p, q, false, f)),
            ));
        }
        fills.clear();
        self.fills = fills;
        if r.filled == o.qty {
            return;
        }
        let rests = o.order_type != OrderType::Market
            && matches!(
                o.time_in_force,
                TimeInForce::Gtc | TimeInForce::Gtd | TimeInForce::Gtx
            );
        if !rests {
            out.push(self.report(now, info, &r, ExecType::Expired, OrderStatus::Expired, None));
            return;
        }
        let m = self.markets.entry(o.instrument).or_default();
        let list = match o.side {
            OrderSide::Buy => &mut m.resting_bids,
            OrderSide::Sell => &mut m.resting_asks,
        };
        // After every order at least as good (time priority among equal prices).
        let pos = list.partition_point(|x| match o.side {
            OrderSide::Buy => x.order.price >= o.price,
            OrderSide::Sell => x.order.price <= o.price,
        });
        list.insert(pos, r);
        self.resting_ids.insert(o.client_order_id, o.instrument);
    }

    /// The paper book side an order on `side` trades against.
    fn opposite(&mut self, instrument: InstrumentId, side: OrderSide) -> &mut Vec<Level> {
        let m = self.markets.entry(instrument).or_default();
        match side {
            OrderSide::Buy => &mut m.asks,
            OrderSide::Sell => &mut m.bids,
        }
    }

    /// Fills resting orders of `instrument` that the current paper book crosses.
    pub fn match_book(&mut self, now: Nanos, info: &InstrumentInfo, out: &mut Vec<UserEvent>) {
        self.match_resting(now, info, None, out);
    }

    /// Fills resting orders of `instrument` that a trade at `price` for `qty` printed through.
    pub fn on_trade(
        &mut self,
        now: Nanos,
        info: &InstrumentInfo,
        price: Price,
        qty: Qty,
        out: &mut Vec<UserEvent>,
    ) {
        self.match_resting(now, info, Some((price, qty)), out);
    }

    fn match_resting(
        &mut self,
        now: Nanos,
        info: &InstrumentInfo,
        trade: Option<(Price, Qty)>,
        out: &mut Vec<UserEvent>,
    ) {
        let Some(mut m) = self.markets.remove(&info.id) else {
            return;
        };
        let mut trade_left = trade.map_or(0, |(_, q)| q.0.max(0));
        let maker_bps = self.cfg.maker_fee_bps;
        let fee = |p, q| fill_fee(info, p, q, maker_bps);
        for side in [OrderSide::Buy, OrderSide::Sell] {
            loop {
                let (list, book) = match side {
                    OrderSide::Buy => (&mut m.resting_bids, &mut m.asks),
                    OrderSide::Sell => (&mut m.resting_asks, &mut m.bids),
                };
                let Some(r) = list.first_mut() else {
                    break;
                };
                // 0 <= filled < qty for a resting order.
                let want = r.order.qty.0 - r.filled.0;
                let limit = Some(r.order.price);
                let got = match trade {
                    None => {
                        let mut sink = std::mem::take(&mut self.fills);
                        // Maker fills are at the order's own price: if the fee on all of
                        // `want` there fits, so does the fee on any part of it.
                        let got = if fee(r.order.price, Qty(want)).is_some() {
                            take(book, side, limit, want, |_, _| Some(Money::ZERO), &mut sink)
                        } else {
                            0
                        };
                        sink.clear();
                        self.fills = sink;
                        got
                    }
                    Some((tp, _)) => {
                        let through = match side {
                            OrderSide::Buy => tp < r.order.price,
                            OrderSide::Sell => tp > r.order.price,
                        };
                        let q = want.min(trade_left);
                        if through && fee(r.order.price, Qty(q)).is_some() {
                            trade_left -= q;
                            q
                        } else {
                            0
                        }
                    }
                };
                let Some(fill_fee) = fee(r.order.price, Qty(got)).filter(|_| got > 0) else {
                    break;
                };
                r.filled.0 += got;
                let done = r.filled == r.order.qty;
                let status = if done {
                    OrderStatus::Filled
                } else {
                    OrderStatus::PartiallyFilled
                };
                let snapshot = *r;
                if done {
                    list.remove(0);
                    self.resting_ids.remove(&snapshot.order.client_order_id);
                }
                let fill = (snapshot.order.price, Qty(got), true, fill_fee);
                out.push(self.report(now, info, &snapshot, ExecType::Trade, status, Some(fill)));
                if !done {
                    break;
                }
            }
        }
        self.markets.insert(info.id, m);
    }

    /// A venue-style execution report for `r`; `fill` is (price, qty, maker, fee).
    fn report(
        &mut self,
        now: Nanos,
        info: &InstrumentInfo,
        r: &Resting,
        exec_type: ExecType,
        status: OrderStatus,
        fill: Option<(Price, Qty, bool, Money)>,
    ) -> UserEvent {
        let (last_price, last_qty, is_maker, fee) =
            fill.unwrap_or((Price(0), Qty::ZERO, false, Money::ZERO));
        let (fee, fee_asset, trade_id) = match fill {
            Some(_) => {
                let t = self.next_trade_id;
                self.next_trade_id = self.next_trade_id.saturating_add(1);
                match info.quote_asset {
                    Some(q) => (fee, Some(q), Some(t)),
                    None => (Money::ZERO, None, Some(t)),
                }
            }
            None => (Money::ZERO, None, None),
        };
        let ms = now.0 / 1_000_000;
        UserEvent::Execution(ExecutionReport {
            market: info.market,
            instrument: r.order.instrument,
            event_time_ms: ms,
            transact_time_ms: ms,
            client_order_id: r.order.client_order_id,
            orig_client_order_id: None,
            order_id: r.venue_id,
            side: r.order.side,
            order_type: r.order.order_type,
            time_in_force: r.order.time_in_force,
            qty: r.order.qty,
            price: r.order.price,
            stop_price: r.order.stop_price,
            exec_type,
            status,
            reject_reason: (status == OrderStatus::Rejected).then(|| "PAPER_REJECTED".to_owned()),
            last_qty,
            cum_qty: r.filled,
            last_price,
            fee,
            fee_asset,
            trade_id,
            is_maker,
            reduce_only: r.order.reduce_only,
            position_side: VenuePositionSide::Both,
            venue_realized_pnl: None,
            venue_avg_price: None,
            cum_quote: None,
            order_time_ms: Some(ms),
            order_list_id: None,
        })
    }
}
