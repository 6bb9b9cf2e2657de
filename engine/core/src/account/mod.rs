//! Account state and order entry: orders, positions, balances, risk and advanced orders of
//! one user ([`Account`]) or many ([`Accounts`]), as a sans-IO state machine.
//!
//! Inputs are `handle_*` calls carrying `now`; outputs are [`AccountEvent`]s taken with
//! `poll_event`. Venue user data ([`userdata`]) and the built-in [`paper`] venue produce the
//! same [`UserEvent`]s, so fills from either take one path: order state machine
//! ([`orders`]), then position and PnL ([`positions`]), then post-trade risk ([`risk`]), then
//! advanced-order triggers ([`triggers`]). Orders tape wants sent come out as
//! [`AccountEvent::Command`] when an external gateway is configured, or go straight to the
//! paper venue. Everything that reaches output iterates ordered maps or vectors, so the same
//! inputs always give the same events in the same order (see `docs/account.md`).

pub mod advanced;
mod api;
pub mod balances;
mod entry;
pub mod event;
pub mod ids;
pub mod instruments;
mod json_obj;
pub mod kinds;
pub mod money;
pub mod order;
pub mod orders;
pub mod paper;
pub mod positions;
pub mod risk;
pub mod trailing;
mod trigger_index;
pub mod triggers;
pub mod userdata;
mod users;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_extremes;
#[cfg(test)]
mod tests_flow;
#[cfg(test)]
mod tests_orders;
#[cfg(test)]
mod tests_positions;
#[cfg(test)]
mod tests_replay;
#[cfg(test)]
mod tests_risk;
#[cfg(test)]
mod tests_triggers;
#[cfg(test)]
mod tests_userdata;

use std::collections::{BTreeMap, VecDeque};

pub use api::{
    AccountConfig, AccountError, AccountEvent, Gateway, OrderRequest, OrderUpdate, Reject,
    GENERATED_ID_PREFIX,
};
pub use balances::{Balance, BalanceError, Balances};
pub use event::UserEvent;
pub use ids::{AdvancedId, Asset, ClientOrderId, IdError};
pub use instruments::InstrumentInfo;
pub use kinds::{OrderSide, OrderStatus, OrderType, TimeInForce};
pub use money::{MathError, Money, MONEY_SCALE};
pub use orders::{Fill, NewOrder, Order, OrderCommand, OrderError, OrdersConfig};
pub use paper::{PaperConfig, PaperVenue};
pub use positions::{MarkSource, Portfolio, Position, PositionUpdate};
pub use risk::{RiskAlert, RiskKind, RiskLimits, RiskReject, Severity};
pub use trailing::TrailOffset;
pub use triggers::{
    AdvancedUpdate, BracketRequest, Leg, OcoRequest, TrailingRequest, TrailingUpdate, TriggerDir,
    TriggerError,
};
pub use userdata::{UserDataDecoder, UserDataError};
pub use users::{Accounts, AccountsError, UserId};

use crate::book::OrderBook;
use crate::fixed::{Price, Qty};
use crate::input::Nanos;
use crate::instrument::InstrumentId;
use crate::msg::Level;
use event::{ExecutionReport, FuturesAccountUpdate};
use kinds::VenuePositionSide;
use orders::{Applied, Orders};
use positions::EquityTracker;
use risk::{Risk, RiskContext, RiskOrder};
use triggers::{TriggerOutput, Triggers};

#[derive(Debug, Clone, Copy, Default)]
struct Quote {
    bid: Option<Price>,
    ask: Option<Price>,
    last: Option<Price>,
}

/// One user's orders, positions, balances, risk and advanced orders.
#[derive(Debug, Clone)]
pub struct Account {
    quote_asset: Option<Asset>,
    mark_source: MarkSource,
    instruments: BTreeMap<InstrumentId, InstrumentInfo>,
    orders: Orders,
    positions: BTreeMap<InstrumentId, Position>,
    balances: Balances,
    risk: Risk,
    triggers: Triggers,
    paper: Option<PaperVenue>,
    equity: EquityTracker,
    portfolio: Portfolio,
    quotes: BTreeMap<InstrumentId, Quote>,
    events: VecDeque<AccountEvent>,
    next_order: u64,
    trig_out: Vec<TriggerOutput>,
    venue_out: Vec<UserEvent>,
    overflows: u64,
}

impl Account {
    /// An empty account.
    pub fn new(config: AccountConfig) -> Self {
        Account {
            quote_asset: config.quote_asset,
            mark_source: config.mark_source,
            instruments: BTreeMap::new(),
            orders: Orders::new(config.orders),
            positions: BTreeMap::new(),
            balances: Balances::default(),
            risk: Risk::new(config.risk),
            triggers: Triggers::new(config.max_advanced),
            paper: match config.gateway {
                Gateway::Paper(c) => Some(PaperVenue::new(c)),
                Gateway::External => None,
            },
            equity: EquityTracker::default(),
            portfolio: Portfolio::default(),
            quotes: BTreeMap::new(),
            events: VecDeque::new(),
            next_order: 1,
            trig_out: Vec::new(),
            venue_out: Vec::new(),
            overflows: 0,
        }
    }

    /// Makes an instrument known (its scales and assets); replaces an earlier entry.
    ///
    /// # Errors
    /// [`Reject::InvalidInstrument`] for a scale above [`crate::fixed::MAX_SCALE`].
    pub fn add_instrument(&mut self, info: InstrumentInfo) -> Result<(), Reject> {
        if info.price_scale > crate::fixed::MAX_SCALE || info.qty_scale > crate::fixed::MAX_SCALE {
            return Err(Reject::InvalidInstrument(info.id));
        }
        self.instruments.insert(info.id, info);
        Ok(())
    }

    /// Sets a position's leverage (e.g. from the venue's leverage bracket or config).
    ///
    /// # Errors
    /// [`Reject::UnknownInstrument`].
    pub fn set_leverage(
        &mut self,
        instrument: InstrumentId,
        leverage: Option<u32>,
        liquidation_price: Option<Price>,
    ) -> Result<(), Reject> {
        let p = self
            .position_mut(instrument)
            .ok_or(Reject::UnknownInstrument(instrument))?;
        p.leverage = leverage;
        p.liquidation_price = liquidation_price;
        Ok(())
    }

    /// Sets a balance directly (paper accounts, a REST account snapshot).
    ///
    /// # Errors
    /// [`BalanceError::Full`].
    pub fn set_balance(
        &mut self,
        asset: Asset,
        free: Money,
        locked: Money,
    ) -> Result<(), BalanceError> {
        let b = self.balances.set(asset, free, locked)?;
        self.events.push_back(AccountEvent::Balance(b));
        Ok(())
    }

    /// Replaces the risk limits.
    pub fn set_risk_limits(&mut self, limits: RiskLimits) {
        self.risk.set_limits(limits);
    }

    /// The next event, oldest first.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<AccountEvent> {
        self.events.pop_front()
    }

    /// Events waiting to be polled.
    pub fn pending_events(&self) -> usize {
        self.events.len()
    }

    /// An order by client id (live or retained).
    pub fn order(&self, id: &ClientOrderId) -> Option<&Order> {
        self.orders.get(id)
    }

    /// The order table.
    pub fn orders(&self) -> &Orders {
        &self.orders
    }

    /// The position in `instrument`, if any fill or venue update created one.
    pub fn position(&self, instrument: InstrumentId) -> Option<&Position> {
        self.positions.get(&instrument)
    }

    /// All positions in instrument order.
    pub fn positions(&self) -> impl Iterator<Item = &Position> {
        self.positions.values()
    }

    /// Balances.
    pub fn balances(&self) -> &Balances {
        &self.balances
    }

    /// The latest portfolio summary.
    pub fn portfolio(&self) -> &Portfolio {
        &self.portfolio
    }

    /// Advanced orders.
    pub fn triggers(&self) -> &Triggers {
        &self.triggers
    }

    /// The paper venue, when it is the gateway.
    pub fn paper(&self) -> Option<&PaperVenue> {
        self.paper.as_ref()
    }

    /// Values that did not fit their type (a fill, a venue report, a PnL or a trailing stop
    /// that would have overflowed), each refused or withheld and reported as an
    /// [`RiskKind::Overflow`] alert.
    pub fn overflow_count(&self) -> u64 {
        self.overflows
    }

    /// Counts an overflow and tells the user (risk-alert channel): the input was refused or
    /// the output withheld, never wrapped or clamped into a plausible value.
    pub(super) fn report_overflow(
        &mut self,
        now: Nanos,
        instrument: Option<InstrumentId>,
        what: &str,
        e: MathError,
    ) {
        self.overflows = self.overflows.saturating_add(1);
        self.events.push_back(AccountEvent::Risk(RiskAlert {
            kind: RiskKind::Overflow,
            severity: Severity::Critical,
            message: format!("{what}: {e}"),
            limit: crate::fixed::Decimal::default(),
            current: crate::fixed::Decimal::default(),
            instrument,
            at: now,
        }));
    }

    fn info(&self, i: InstrumentId) -> Option<InstrumentInfo> {
        self.instruments.get(&i).copied()
    }

    fn position_mut(&mut self, i: InstrumentId) -> Option<&mut Position> {
        let info = self.info(i)?;
        Some(self.positions.entry(i).or_insert_with(|| {
            let mut p = Position::new(i, info.price_scale, info.qty_scale);
            p.quote_asset = info.quote_asset;
            p
        }))
    }

    /// Applies one user-data event (from the venue's stream).
    ///
    /// # Errors
    /// An [`AccountError`]; the event was not applied.
    pub fn handle_user_event(&mut self, now: Nanos, ev: UserEvent) -> Result<(), AccountError> {
        let r = self.apply_user_event(now, ev);
        self.count_overflow(now, &r);
        self.drain_triggers(now);
        r
    }

    /// Reports a venue event refused (or a portfolio withheld) for overflow.
    pub(super) fn count_overflow(&mut self, now: Nanos, r: &Result<(), AccountError>) {
        if let Err(
            AccountError::Math(e)
            | AccountError::Balance(BalanceError::Math(e))
            | AccountError::Order(OrderError::Math(e)),
        ) = r
        {
            self.report_overflow(now, None, "venue report refused", *e);
        }
    }

    fn apply_user_event(&mut self, now: Nanos, ev: UserEvent) -> Result<(), AccountError> {
        match ev {
            UserEvent::Execution(r) => self.apply_execution(now, &r),
            UserEvent::AccountPosition(p) => {
                for b in self.balances.apply_position(&p)? {
                    self.events.push_back(AccountEvent::Balance(b));
                }
                self.refresh_portfolio(now)
            }
            UserEvent::BalanceUpdate(d) => {
                let b = self.balances.apply_delta(&d)?;
                self.events.push_back(AccountEvent::Balance(b));
                self.refresh_portfolio(now)
            }
            UserEvent::ListStatus(l) => {
                self.events.push_back(AccountEvent::OrderList(l));
                Ok(())
            }
            UserEvent::AccountUpdate(u) => self.apply_account_update(now, &u),
        }
    }

    fn apply_execution(&mut self, now: Nanos, r: &ExecutionReport) -> Result<(), AccountError> {
        let info = self
            .info(r.instrument)
            .ok_or(AccountError::UnknownInstrument(r.instrument))?;
        // Work the fill into a copy of the position first, so an overflow refuses the whole
        // report before the order table changes.
        let position = if r.is_fill() {
            let mut p = self
                .positions
                .get(&r.instrument)
                .copied()
                .unwrap_or_else(|| {
                    let mut p = Position::new(r.instrument, info.price_scale, info.qty_scale);
                    p.quote_asset = info.quote_asset;
                    p
                });
            let quote_fee = match (r.fee_asset, info.quote_asset) {
                (Some(a), Some(q)) if a == q => r.fee,
                _ => Money::ZERO,
            };
            p.apply_fill(r.side, r.last_price, r.last_qty, quote_fee)?;
            if p.mark.is_none() {
                let q = self.quotes.get(&r.instrument).copied().unwrap_or_default();
                p.mark = self.mark_source.mark(q.bid, q.ask, q.last);
            }
            Some(p)
        } else {
            None
        };
        let Some(applied) = self
            .orders
            .apply(now, r, info.price_scale, info.qty_scale)?
        else {
            return Ok(());
        };
        if let (Some(p), Some(f)) = (position, applied.fill) {
            self.positions.insert(r.instrument, p);
            if let Some(a) = f.fee_asset {
                // The report is applied by now; a fee ledger that is full (or would overflow)
                // only loses this ledger entry, the fee is still in the order and position.
                // An overflow is still reported (a full table is not an arithmetic fault).
                if f.fee != Money::ZERO {
                    match self.balances.record_fee(a, f.fee) {
                        Ok(b) => self.events.push_back(AccountEvent::Balance(b)),
                        Err(BalanceError::Math(e)) => {
                            self.report_overflow(now, Some(r.instrument), "fee ledger", e)
                        }
                        Err(BalanceError::Full(..)) => {}
                    }
                }
            }
        }
        self.after_order(now, applied);
        Ok(())
    }

    /// Emits the order update and, for a fill, position, risk and portfolio updates; then
    /// lets the triggers react.
    fn after_order(&mut self, now: Nanos, applied: Applied) {
        self.emit_order(applied.order, applied.fill);
        if let Some(f) = applied.fill {
            if let Some(p) = self.positions.get(&f.instrument).copied() {
                self.emit_position(now, &p);
                if let Some(a) = self.risk.after_fill(p.instrument, p.qty, p.qty_scale, now) {
                    self.events.push_back(AccountEvent::Risk(a));
                }
            }
            // On overflow the previous portfolio stays and the fault is reported.
            let r = self.refresh_portfolio(now);
            self.count_overflow(now, &r);
        }
        let mut out = std::mem::take(&mut self.trig_out);
        self.triggers
            .on_order(&applied.order, applied.fill.as_ref(), &mut out);
        self.trig_out = out;
    }

    fn apply_account_update(
        &mut self,
        now: Nanos,
        u: &FuturesAccountUpdate,
    ) -> Result<(), AccountError> {
        for p in &u.positions {
            if !self.instruments.contains_key(&p.instrument) {
                return Err(AccountError::UnknownInstrument(p.instrument));
            }
        }
        for b in self.balances.apply_futures(&u.balances)? {
            self.events.push_back(AccountEvent::Balance(b));
        }
        for vp in &u.positions {
            let Some(pos) = self.position_mut(vp.instrument) else {
                continue;
            };
            pos.venue_entry_price = Some(vp.entry_price);
            pos.venue_unrealized = Some(vp.unrealized);
            // One-way mode: the venue's amount is the truth when tape's differs (orders
            // entered elsewhere, liquidations, missed events). Hedge-mode legs are kept as
            // reported values only.
            if vp.position_side == VenuePositionSide::Both && pos.qty != vp.amount {
                pos.adopt_venue(vp.amount, vp.entry_price);
            }
            let p = *pos;
            self.emit_position(now, &p);
        }
        self.refresh_portfolio(now)
    }

    /// A market event: best bid/ask (price and quantity) and a trade print, any of which may
    /// be absent. Moves marks, evaluates triggers and matches resting paper orders.
    pub fn handle_market(
        &mut self,
        now: Nanos,
        instrument: InstrumentId,
        best_bid: Option<Level>,
        best_ask: Option<Level>,
        last_trade: Option<Level>,
    ) {
        if let Some(p) = self.paper.as_mut() {
            if best_bid.is_some() || best_ask.is_some() {
                p.set_top(instrument, best_bid, best_ask);
            }
        }
        self.market(now, instrument, best_bid, best_ask, last_trade);
    }

    /// As [`Account::handle_market`], with the whole book: the paper venue copies its top
    /// levels so market orders can walk them.
    pub fn handle_book(
        &mut self,
        now: Nanos,
        instrument: InstrumentId,
        book: &OrderBook,
        last_trade: Option<Level>,
    ) {
        if let Some(p) = self.paper.as_mut() {
            p.set_book(instrument, book);
        }
        self.market(
            now,
            instrument,
            book.best_bid(),
            book.best_ask(),
            last_trade,
        );
    }

    fn market(
        &mut self,
        now: Nanos,
        instrument: InstrumentId,
        bid: Option<Level>,
        ask: Option<Level>,
        trade: Option<Level>,
    ) {
        let q = self.quotes.entry(instrument).or_default();
        q.bid = bid.map(|l| l.price).or(q.bid);
        q.ask = ask.map(|l| l.price).or(q.ask);
        if let Some(t) = trade {
            q.last = Some(t.price);
        }
        let q = *q;
        // Paper fills first: they are the venue's reaction to the same market move.
        if let (Some(paper), Some(info)) = (self.paper.as_mut(), self.instruments.get(&instrument))
        {
            let mut out = std::mem::take(&mut self.venue_out);
            paper.match_book(now, info, &mut out);
            if let Some(t) = trade {
                paper.on_trade(now, info, t.price, t.qty, &mut out);
            }
            self.apply_venue_events(now, &mut out);
            self.venue_out = out;
        }
        let mut out = std::mem::take(&mut self.trig_out);
        self.triggers.on_market(
            instrument,
            bid.map(|l| l.price),
            ask.map(|l| l.price),
            trade.map(|l| l.price),
            &mut out,
        );
        self.trig_out = out;
        if let Some(pos) = self.positions.get_mut(&instrument) {
            let mark = self
                .mark_source
                .mark(q.bid, q.ask, trade.map(|l| l.price).or(q.last));
            if mark.is_some() && mark != pos.mark {
                pos.mark = mark;
                if pos.qty.0 != 0 {
                    let p = *pos;
                    self.emit_position(now, &p);
                    // On overflow the previous portfolio stays and the fault is reported.
                    let r = self.refresh_portfolio(now);
                    self.count_overflow(now, &r);
                }
            }
        }
        self.drain_triggers(now);
    }

    fn emit_order(&mut self, order: Order, fill: Option<Fill>) {
        self.events
            .push_back(AccountEvent::Order(OrderUpdate { order, fill }));
    }

    /// Emits a position snapshot; one whose PnL does not fit `Money` is withheld and
    /// reported as an overflow (the position itself is kept exactly, in `i128`).
    fn emit_position(&mut self, now: Nanos, p: &Position) {
        match p.snapshot() {
            Ok(u) => self.events.push_back(AccountEvent::Position(u)),
            Err(e) => self.report_overflow(now, Some(p.instrument), "position update withheld", e),
        }
    }

    /// Recomputes the portfolio; emits it when it changed, and a drawdown alert on crossing.
    fn refresh_portfolio(&mut self, now: Nanos) -> Result<(), AccountError> {
        let total = match self.quote_asset.and_then(|q| self.balances.get(&q)) {
            Some(b) => b.total(),
            None => Ok(Money::ZERO),
        };
        // The equity peak only moves on success (summarise works on a copy).
        let mut equity = self.equity;
        let p =
            total.and_then(|t| equity.summarise(self.positions.values(), self.quote_asset, t))?;
        self.equity = equity;
        if p != self.portfolio {
            self.portfolio = p;
            self.events.push_back(AccountEvent::Portfolio(p));
            if let Some(a) = self.risk.after_equity(p.drawdown, now) {
                self.events.push_back(AccountEvent::Risk(a));
            }
        }
        Ok(())
    }
}
