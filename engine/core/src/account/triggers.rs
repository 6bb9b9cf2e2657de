//! The trigger engine of tape-managed advanced orders (semantics in [`super::advanced`]).
//!
//! Evaluation never scans all orders: per instrument and side, fixed triggers sit in two
//! ordered sets ("fire at or above X", "fire at or below X") and only the boundary element
//! is examined; trailing stops use [`super::trailing`]. With nothing firing and no peak
//! moving, one market event is a handful of `O(log n)` boundary looks; firing or moving
//! costs time in proportion to the orders that fire or move.

use std::collections::{BTreeMap, HashMap};

use super::advanced::{
    cancel_cmd, child_order, leg_end_reason, trail_update, update, Advanced, LegState, Role,
};
pub use super::advanced::{
    AdvancedKind, AdvancedState, AdvancedUpdate, BracketRequest, Leg, OcoRequest, TrailingRequest,
    TrailingUpdate, TriggerDir, TriggerError, TriggerOutput,
};
use super::ids::{AdvancedId, ClientOrderId};
use super::kinds::{OrderSide, OrderType};
use super::orders::{Fill, NewOrder, Order, OrderCommand};
use super::trailing::{Moved, TrailOffset};
use super::trigger_index::{orient, InstrumentIndex};
use crate::fixed::{Price, Qty};
use crate::instrument::InstrumentId;

/// Default cap on live advanced orders per account.
pub const DEFAULT_MAX_ADVANCED: usize = 100_000;

/// The advanced orders of one account and their trigger index.
#[derive(Debug, Clone)]
pub struct Triggers {
    max: usize,
    next_id: u64,
    advanced: BTreeMap<AdvancedId, Advanced>,
    by_order: HashMap<ClientOrderId, (AdvancedId, Role)>,
    index: BTreeMap<InstrumentId, InstrumentIndex>,
    fired: Vec<(AdvancedId, u8)>,
    moved: Vec<Moved>,
    trail_fired: Vec<Moved>,
}

impl Default for Triggers {
    fn default() -> Self {
        Triggers::new(DEFAULT_MAX_ADVANCED)
    }
}

impl Triggers {
    /// Empty, holding at most `max` live advanced orders.
    pub fn new(max: usize) -> Self {
        Triggers {
            max,
            next_id: 1,
            advanced: BTreeMap::new(),
            by_order: HashMap::new(),
            index: BTreeMap::new(),
            fired: Vec::new(),
            moved: Vec::new(),
            trail_fired: Vec::new(),
        }
    }

    /// Live advanced orders.
    pub fn len(&self) -> usize {
        self.advanced.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.advanced.is_empty()
    }

    /// The ids of the live advanced orders, in order.
    pub fn ids(&self) -> Vec<AdvancedId> {
        self.advanced.keys().copied().collect()
    }

    /// True when `id` is a live order belonging to an advanced order.
    pub fn owns(&self, id: &ClientOrderId) -> bool {
        self.by_order.contains_key(id)
    }

    /// Current state of an advanced order.
    pub fn state(&self, id: AdvancedId) -> Option<AdvancedState> {
        self.advanced.get(&id).map(|a| a.state)
    }

    /// Current peak and stop of a trailing stop.
    pub fn trailing(&self, id: AdvancedId) -> Option<TrailingUpdate> {
        let a = self.advanced.get(&id)?;
        let (off, peak) = a.trail?;
        trail_update(id, a.instrument, a.side, peak, off).ok()
    }

    fn alloc(&mut self) -> Result<AdvancedId, TriggerError> {
        if self.advanced.len() >= self.max {
            return Err(TriggerError::Full(self.max));
        }
        let id = AdvancedId(self.next_id);
        self.next_id = self.next_id.saturating_add(1);
        Ok(id)
    }

    /// Adds an OCO; `Limit` legs are sent at once.
    ///
    /// # Errors
    /// [`TriggerError::Invalid`] for a non-positive quantity or price, [`TriggerError::Full`].
    pub fn add_oco(
        &mut self,
        r: &OcoRequest,
        out: &mut Vec<TriggerOutput>,
    ) -> Result<AdvancedId, TriggerError> {
        if r.qty.0 <= 0 {
            return Err(TriggerError::Invalid("quantity must be positive"));
        }
        for leg in &r.legs {
            let ok = match *leg {
                Leg::Limit { price } => price.0 > 0,
                Leg::Trigger { trigger, limit, .. } => {
                    trigger.0 > 0 && limit.is_none_or(|l| l.0 > 0)
                }
            };
            if !ok {
                return Err(TriggerError::Invalid("leg prices must be positive"));
            }
        }
        let id = self.alloc()?;
        let mut a = Advanced {
            kind: AdvancedKind::Oco,
            state: AdvancedState::Armed,
            instrument: r.instrument,
            side: r.side,
            qty: r.qty,
            reduce_only: r.reduce_only,
            legs: [LegState::Idle(r.legs[0]), LegState::Idle(r.legs[1])],
            entry: None,
            trail: None,
            child: None,
            seq: 0,
        };
        for i in 0..2 {
            self.arm_leg(id, &mut a, i, out);
        }
        out.push(TriggerOutput::Advanced(update(id, &a, "armed")));
        self.advanced.insert(id, a);
        Ok(id)
    }

    /// Checks a bracket request without adding it; returns the take-profit and stop-loss
    /// trigger directions.
    ///
    /// # Errors
    /// As [`Triggers::add_bracket`].
    pub fn check_bracket(
        &self,
        entry: &NewOrder,
        r: &BracketRequest,
    ) -> Result<(TriggerDir, TriggerDir), TriggerError> {
        let (tp, sl) = (r.take_profit, r.stop_loss);
        if tp.0 <= 0 || sl.0 <= 0 {
            return Err(TriggerError::Invalid("bracket prices must be positive"));
        }
        let limit = entry.order_type.has_limit_price().then_some(entry.price);
        let ordered = |lo: Price, hi: Price| lo < hi && limit.is_none_or(|p| lo < p && p < hi);
        let dirs = match entry.side {
            OrderSide::Buy if ordered(sl, tp) => (TriggerDir::AtOrAbove, TriggerDir::AtOrBelow),
            OrderSide::Sell if ordered(tp, sl) => (TriggerDir::AtOrBelow, TriggerDir::AtOrAbove),
            _ => {
                return Err(TriggerError::Invalid(
                    "take-profit and stop-loss must be on either side of the entry",
                ))
            }
        };
        if self.by_order.contains_key(&entry.client_order_id) {
            return Err(TriggerError::Duplicate(entry.client_order_id));
        }
        if self.advanced.len() >= self.max {
            return Err(TriggerError::Full(self.max));
        }
        Ok(dirs)
    }

    /// Adds a bracket around `entry`, which the caller places itself.
    ///
    /// # Errors
    /// [`TriggerError::Invalid`] when the take-profit and stop-loss are on the wrong sides of
    /// each other (or of a limit entry's price), [`TriggerError::Duplicate`],
    /// [`TriggerError::Full`].
    pub fn add_bracket(
        &mut self,
        entry: &NewOrder,
        r: &BracketRequest,
        out: &mut Vec<TriggerOutput>,
    ) -> Result<AdvancedId, TriggerError> {
        let (tp_dir, sl_dir) = self.check_bracket(entry, r)?;
        let (tp, sl) = (r.take_profit, r.stop_loss);
        let id = self.alloc()?;
        let a = Advanced {
            kind: AdvancedKind::Bracket,
            state: AdvancedState::WaitingEntry,
            instrument: entry.instrument,
            side: entry.side.opposite(),
            qty: Qty::ZERO,
            reduce_only: r.reduce_only,
            legs: [
                LegState::Idle(Leg::Trigger {
                    dir: tp_dir,
                    trigger: tp,
                    limit: Some(tp),
                }),
                LegState::Idle(Leg::Trigger {
                    dir: sl_dir,
                    trigger: sl,
                    limit: None,
                }),
            ],
            entry: Some((entry.client_order_id, true)),
            trail: None,
            child: None,
            seq: 0,
        };
        self.by_order
            .insert(entry.client_order_id, (id, Role::Entry));
        out.push(TriggerOutput::Advanced(update(id, &a, "waiting_entry")));
        self.advanced.insert(id, a);
        Ok(id)
    }

    /// Adds a trailing stop, its peak starting at the current watched price.
    ///
    /// # Errors
    /// [`TriggerError::NoMarketData`] before any price for the instrument,
    /// [`TriggerError::Invalid`], [`TriggerError::Full`].
    pub fn add_trailing(
        &mut self,
        r: &TrailingRequest,
        out: &mut Vec<TriggerOutput>,
    ) -> Result<AdvancedId, TriggerError> {
        let valid = match r.offset {
            TrailOffset::Absolute(p) => p.0 > 0,
            TrailOffset::Bps(b) => (1..10_000).contains(&b),
        };
        if r.qty.0 <= 0 || !valid {
            return Err(TriggerError::Invalid(
                "quantity and offset must be positive (bps below 10 000)",
            ));
        }
        let start = self
            .index
            .get(&r.instrument)
            .and_then(|ix| ix.reference(r.side));
        let start = start.ok_or(TriggerError::NoMarketData(r.instrument))?;
        // Refused here, so a stop never starts at or below zero (sell: offset >= price) or
        // beyond i64 (buy: price + offset). From here the sell stop only rises and the buy
        // stop only falls with a positive price, so it stays a price.
        let peak = orient(r.side, start.0)
            .filter(|_| start.0 > 0)
            .ok_or(TriggerError::Invalid(
                "no positive market price to trail from",
            ))?;
        let first = trail_update(AdvancedId(0), r.instrument, r.side, peak, r.offset).map_err(|_| {
            TriggerError::Invalid(
                "trailing offset must be below the price (the stop would be at or below zero or beyond the price range)",
            )
        })?;
        let id = self.alloc()?;
        let a = Advanced {
            kind: AdvancedKind::TrailingStop,
            state: AdvancedState::Armed,
            instrument: r.instrument,
            side: r.side,
            qty: r.qty,
            reduce_only: r.reduce_only,
            legs: [LegState::Off, LegState::Off],
            entry: None,
            trail: Some((r.offset, peak)),
            child: None,
            seq: 0,
        };
        self.index
            .entry(r.instrument)
            .or_default()
            .insert_trailing(r.side, peak, id, r.offset);
        out.push(TriggerOutput::Advanced(update(id, &a, "armed")));
        out.push(TriggerOutput::Trailing(TrailingUpdate { id, ..first }));
        self.advanced.insert(id, a);
        Ok(id)
    }

    /// Cancels an advanced order: disarms its triggers and cancels its resting legs and, for
    /// a bracket, what is left of the entry. Orders already sent by a fired leg are left.
    ///
    /// # Errors
    /// [`TriggerError::Unknown`].
    pub fn cancel(
        &mut self,
        id: AdvancedId,
        out: &mut Vec<TriggerOutput>,
    ) -> Result<(), TriggerError> {
        let mut a = self.advanced.remove(&id).ok_or(TriggerError::Unknown(id))?;
        for i in 0..2 {
            self.disarm_leg(id, &mut a, i, out);
        }
        if let Some((off, peak)) = a.trail.take() {
            let _ = off;
            if let Some(ix) = self.index.get_mut(&a.instrument) {
                ix.remove_trailing(a.side, peak, id);
            }
        }
        if let Some((entry, true)) = a.entry {
            out.push(cancel_cmd(a.instrument, entry));
        }
        a.state = AdvancedState::Canceled;
        out.push(TriggerOutput::Advanced(update(id, &a, "canceled")));
        self.forget(&a);
        Ok(())
    }

    /// Evaluates triggers for one market event. `bid`/`ask` are the current best prices
    /// (`None`: unchanged), `last` a trade print in this event.
    pub fn on_market(
        &mut self,
        instrument: InstrumentId,
        bid: Option<Price>,
        ask: Option<Price>,
        last: Option<Price>,
        out: &mut Vec<TriggerOutput>,
    ) {
        // Prices are remembered even with nothing armed, so a trailing stop can start there.
        let ix = self.index.entry(instrument).or_default();
        let mut fired = std::mem::take(&mut self.fired);
        let mut moved = std::mem::take(&mut self.moved);
        let mut trail_fired = std::mem::take(&mut self.trail_fired);
        ix.evaluate(bid, ask, last, &mut fired, &mut moved, &mut trail_fired);
        for &(id, peak, _) in &moved {
            if let Some(a) = self.advanced.get_mut(&id) {
                if let Some((_, p)) = a.trail.as_mut() {
                    *p = peak;
                    out.push(trailing_output(id, a, peak));
                }
            }
        }
        for &(id, leg) in &fired {
            self.fire_leg(id, usize::from(leg), out);
        }
        for &(id, peak, _) in &trail_fired {
            self.fire_trailing(id, peak, out);
        }
        fired.clear();
        moved.clear();
        trail_fired.clear();
        self.fired = fired;
        self.moved = moved;
        self.trail_fired = trail_fired;
    }

    /// Tells the triggers about an order update; only orders that belong to an advanced
    /// order (bracket entries, legs, children) matter.
    pub fn on_order(&mut self, order: &Order, fill: Option<&Fill>, out: &mut Vec<TriggerOutput>) {
        let Some(&(id, role)) = self.by_order.get(&order.client_order_id) else {
            return;
        };
        let Some(mut a) = self.advanced.remove(&id) else {
            self.by_order.remove(&order.client_order_id);
            return;
        };
        let terminal = order.status.is_terminal();
        match role {
            Role::Entry => {
                if fill.is_some()
                    && matches!(a.state, AdvancedState::WaitingEntry | AdvancedState::Armed)
                {
                    a.qty = order.filled;
                    let reason = if a.state == AdvancedState::WaitingEntry {
                        a.state = AdvancedState::Armed;
                        for i in 0..2 {
                            self.arm_leg(id, &mut a, i, out);
                        }
                        "entry_fill_armed"
                    } else {
                        "entry_fill_resized"
                    };
                    out.push(TriggerOutput::Advanced(update(id, &a, reason)));
                }
                if terminal {
                    a.entry = a.entry.map(|(c, _)| (c, false));
                    if order.filled.0 == 0 && a.state == AdvancedState::WaitingEntry {
                        a.state = AdvancedState::Canceled;
                        out.push(TriggerOutput::Advanced(update(id, &a, "entry_unfilled")));
                    }
                }
            }
            Role::Leg(i) => {
                let resting = matches!(a.legs[i], LegState::Resting(_));
                if resting && fill.is_some() {
                    a.legs[i] = LegState::Working(order.client_order_id);
                    self.disarm_leg(id, &mut a, 1 - i, out);
                    a.state = AdvancedState::Triggered;
                    out.push(TriggerOutput::Advanced(update(id, &a, "leg_filled")));
                }
                if terminal {
                    if resting && order.filled.0 == 0 {
                        a.legs[i] = LegState::Off;
                        self.disarm_leg(id, &mut a, 1 - i, out);
                        a.state = AdvancedState::Canceled;
                        out.push(TriggerOutput::Advanced(update(
                            id,
                            &a,
                            leg_end_reason(order.status),
                        )));
                    } else {
                        a.state = AdvancedState::Done;
                        out.push(TriggerOutput::Advanced(update(id, &a, "leg_done")));
                    }
                }
            }
            Role::Child => {
                if terminal {
                    a.state = AdvancedState::Done;
                    out.push(TriggerOutput::Advanced(update(id, &a, "child_done")));
                }
            }
        }
        if terminal {
            self.by_order.remove(&order.client_order_id);
        }
        if matches!(a.state, AdvancedState::Done | AdvancedState::Canceled) {
            self.forget(&a);
        } else {
            self.advanced.insert(id, a);
        }
    }

    fn next_child_id(&self, id: AdvancedId, a: &mut Advanced) -> ClientOrderId {
        a.seq = a.seq.saturating_add(1);
        // "tp-a" + u64 + "-" + u32 is at most 35 bytes of allowed characters.
        ClientOrderId::generated(&format!("tp-a{}-{}", id.0, a.seq))
    }

    fn arm_leg(
        &mut self,
        id: AdvancedId,
        a: &mut Advanced,
        i: usize,
        out: &mut Vec<TriggerOutput>,
    ) {
        let LegState::Idle(leg) = a.legs[i] else {
            return;
        };
        match leg {
            Leg::Limit { price } => {
                let cid = self.next_child_id(id, a);
                out.push(TriggerOutput::Command(OrderCommand::Place(child_order(
                    a,
                    cid,
                    OrderType::Limit,
                    price,
                ))));
                self.by_order.insert(cid, (id, Role::Leg(i)));
                a.legs[i] = LegState::Resting(cid);
            }
            Leg::Trigger {
                dir,
                trigger,
                limit,
            } => {
                self.index
                    .entry(a.instrument)
                    .or_default()
                    .insert_fixed(a.side, dir, trigger, id, i as u8);
                a.legs[i] = LegState::Armed(dir, trigger, limit);
            }
        }
    }

    fn disarm_leg(
        &mut self,
        id: AdvancedId,
        a: &mut Advanced,
        i: usize,
        out: &mut Vec<TriggerOutput>,
    ) {
        match a.legs[i] {
            LegState::Armed(dir, trigger, _) => {
                if let Some(ix) = self.index.get_mut(&a.instrument) {
                    ix.remove_fixed(a.side, dir, trigger, id, i as u8);
                }
            }
            LegState::Resting(cid) => out.push(cancel_cmd(a.instrument, cid)),
            LegState::Idle(_) | LegState::Working(_) | LegState::Off => {}
        }
        if !matches!(a.legs[i], LegState::Working(_)) {
            a.legs[i] = LegState::Off;
        }
    }

    fn fire_leg(&mut self, id: AdvancedId, i: usize, out: &mut Vec<TriggerOutput>) {
        let Some(mut a) = self.advanced.remove(&id) else {
            return;
        };
        let LegState::Armed(_, _, limit) = a.legs[i] else {
            self.advanced.insert(id, a);
            return;
        };
        let cid = self.next_child_id(id, &mut a);
        let (ty, price) = match limit {
            Some(p) => (OrderType::Limit, p),
            None => (OrderType::Market, Price(0)),
        };
        out.push(TriggerOutput::Command(OrderCommand::Place(child_order(
            &a, cid, ty, price,
        ))));
        self.by_order.insert(cid, (id, Role::Leg(i)));
        a.legs[i] = LegState::Working(cid);
        self.disarm_leg(id, &mut a, 1 - i, out);
        if let Some((entry, true)) = a.entry {
            out.push(cancel_cmd(a.instrument, entry));
        }
        a.state = AdvancedState::Triggered;
        out.push(TriggerOutput::Advanced(update(id, &a, "leg_triggered")));
        self.advanced.insert(id, a);
    }

    fn fire_trailing(&mut self, id: AdvancedId, peak: i64, out: &mut Vec<TriggerOutput>) {
        let Some(mut a) = self.advanced.remove(&id) else {
            return;
        };
        if let Some((_, p)) = a.trail {
            out.push(trailing_output(id, &a, peak.max(p)));
            a.trail = None;
        }
        let cid = self.next_child_id(id, &mut a);
        out.push(TriggerOutput::Command(OrderCommand::Place(child_order(
            &a,
            cid,
            OrderType::Market,
            Price(0),
        ))));
        self.by_order.insert(cid, (id, Role::Child));
        a.child = Some(cid);
        a.state = AdvancedState::Triggered;
        out.push(TriggerOutput::Advanced(update(id, &a, "stop_triggered")));
        self.advanced.insert(id, a);
    }

    /// Drops the order-id links of a finished advanced order.
    fn forget(&mut self, a: &Advanced) {
        let mut drop = |c: &ClientOrderId| {
            self.by_order.remove(c);
        };
        if let Some((e, _)) = &a.entry {
            drop(e);
        }
        for l in &a.legs {
            if let LegState::Resting(c) | LegState::Working(c) = l {
                drop(c);
            }
        }
        if let Some(c) = &a.child {
            drop(c);
        }
    }
}

/// The update of trailing stop `a` at oriented `peak`, or its typed overflow.
fn trailing_output(id: AdvancedId, a: &Advanced, peak: i64) -> TriggerOutput {
    let Some((off, _)) = a.trail else {
        return TriggerOutput::Overflow(id, super::money::overflow("trailing stop"));
    };
    match trail_update(id, a.instrument, a.side, peak, off) {
        Ok(u) => TriggerOutput::Trailing(u),
        Err(e) => TriggerOutput::Overflow(id, e),
    }
}
