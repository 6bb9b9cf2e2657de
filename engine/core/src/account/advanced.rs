//! Advanced orders managed by tape (bracket, OCO, trailing stop): their requests, states,
//! updates and errors. The trigger engine that runs them is [`super::triggers`].
//!
//! * **OCO**: two legs. A `Limit` leg is sent to the venue at once and rests there; a
//!   `Trigger` leg is held by tape and, when the market touches its trigger price, sends a
//!   market order (or a limit order at its `limit`). When either leg fills (even partly) or
//!   triggers, the other leg is cancelled. If the venue ends a resting leg without a fill
//!   (cancelled elsewhere, rejected, expired), the whole OCO is cancelled.
//! * **Bracket**: an entry order plus two `Trigger` children, take-profit (sends a limit at
//!   the take-profit price) and stop-loss (sends a market order), which form an OCO. Children
//!   are armed on the entry's first fill and are always sized to the entry's *cumulative*
//!   filled quantity, so partial fills are protected as they happen; if the entry ends with
//!   nothing filled, the bracket is cancelled. When a child fires, tape cancels what is left
//!   of the entry (fills of the entry after that are not covered).
//! * **Trailing stop**: the stop trails the best favourable price (the peak of the bid for a
//!   sell stop, the trough of the ask for a buy stop) by an absolute offset or by basis
//!   points of the peak; it fires with a market order. Every peak move emits a
//!   [`TrailingUpdate`] with the current peak and stop.
//!
//! Trigger prices: a sell-side trigger watches the best bid and trade prints, a buy-side
//! trigger the best ask and trade prints. `AtOrBelow` fires when the lowest watched price is
//! at or below the trigger, `AtOrAbove` when the highest is at or above. Trailing peaks move
//! before stops are checked within one event.

use super::ids::{AdvancedId, ClientOrderId};
use super::kinds::{OrderSide, OrderStatus, OrderType, TimeInForce};
use super::money::{overflow, MathError};
use super::orders::{NewOrder, OrderCommand};
use super::trailing::{stop_price, TrailOffset};
use crate::fixed::{Price, Qty};
use crate::instrument::InstrumentId;

/// Which way the market must move to fire a trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TriggerDir {
    /// Fire when the watched price is at or above the trigger.
    AtOrAbove,
    /// Fire when the watched price is at or below the trigger.
    AtOrBelow,
}

/// One leg of an OCO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leg {
    /// A limit order resting at the venue from the start.
    Limit {
        /// Limit price.
        price: Price,
    },
    /// Held by tape until the market touches `trigger`.
    Trigger {
        /// Direction.
        dir: TriggerDir,
        /// Trigger price.
        trigger: Price,
        /// Limit price of the order sent; `None` sends a market order.
        limit: Option<Price>,
    },
}

/// An OCO request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OcoRequest {
    /// Instrument.
    pub instrument: InstrumentId,
    /// Side of both legs.
    pub side: OrderSide,
    /// Quantity of each leg.
    pub qty: Qty,
    /// The two legs.
    pub legs: [Leg; 2],
    /// Send leg orders reduce-only (futures).
    pub reduce_only: bool,
}

/// A bracket request: the entry is placed (and risk-checked) as an ordinary order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BracketRequest {
    /// Take-profit price (above the entry for a buy entry, below for a sell entry).
    pub take_profit: Price,
    /// Stop-loss trigger price (below the entry for a buy entry, above for a sell entry).
    pub stop_loss: Price,
    /// Send children reduce-only (futures).
    pub reduce_only: bool,
}

/// A trailing-stop request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrailingRequest {
    /// Instrument.
    pub instrument: InstrumentId,
    /// Side of the order sent when it fires (sell protects a long).
    pub side: OrderSide,
    /// Quantity.
    pub qty: Qty,
    /// Trailing distance.
    pub offset: TrailOffset,
    /// Send the order reduce-only (futures).
    pub reduce_only: bool,
}

/// Kind of advanced order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AdvancedKind {
    /// Entry + take-profit/stop-loss.
    Bracket,
    /// One-cancels-the-other.
    Oco,
    /// Trailing stop.
    TrailingStop,
}

/// Where an advanced order is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AdvancedState {
    /// Bracket waiting for its entry to fill.
    WaitingEntry,
    /// Legs armed / resting.
    Armed,
    /// A leg filled or fired; its order is working.
    Triggered,
    /// Finished.
    Done,
    /// Cancelled.
    Canceled,
}

/// A change of an advanced order, for clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdvancedUpdate {
    /// Id.
    pub id: AdvancedId,
    /// Kind.
    pub kind: AdvancedKind,
    /// New state.
    pub state: AdvancedState,
    /// Instrument.
    pub instrument: InstrumentId,
    /// Side of the leg orders.
    pub side: OrderSide,
    /// Current leg quantity (a bracket's: the entry's filled quantity).
    pub qty: Qty,
    /// Why (`"armed"`, `"entry_fill"`, `"leg_triggered"`, `"leg_filled"`, ...).
    pub reason: &'static str,
}

/// A trailing stop's current peak and stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrailingUpdate {
    /// Id.
    pub id: AdvancedId,
    /// Instrument.
    pub instrument: InstrumentId,
    /// Best favourable price since armed.
    pub peak: Price,
    /// Current stop.
    pub stop: Price,
}

/// What trigger handling asks the account to do or report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerOutput {
    /// An order to send or cancel.
    Command(OrderCommand),
    /// An advanced order changed.
    Advanced(AdvancedUpdate),
    /// A trailing stop moved.
    Trailing(TrailingUpdate),
    /// A trailing stop's peak or stop is no longer a price (cannot happen for a stop that
    /// passed placement; surfaced as a typed error, never as a wrapped price).
    Overflow(AdvancedId, MathError),
}

/// Why an advanced-order request or action was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    /// No live advanced order has this id.
    #[error("unknown advanced order {0}")]
    Unknown(AdvancedId),
    /// Too many live advanced orders.
    #[error("advanced order table full ({0})")]
    Full(usize),
    /// The request is malformed.
    #[error("invalid advanced order: {0}")]
    Invalid(&'static str),
    /// A trailing stop needs a price to start from.
    #[error("no market price yet for instrument {}", .0.0)]
    NoMarketData(InstrumentId),
    /// The entry client id already belongs to an advanced order.
    #[error("order {0} already belongs to an advanced order")]
    Duplicate(ClientOrderId),
}

/// Where one leg of an advanced order is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LegState {
    /// Bracket child waiting for the entry to fill.
    Idle(Leg),
    /// Trigger leg in the index.
    Armed(TriggerDir, Price, Option<Price>),
    /// Limit leg resting at the venue.
    Resting(ClientOrderId),
    /// The leg's order was sent (fired trigger) or filled (limit).
    Working(ClientOrderId),
    /// Cancelled or not used.
    Off,
}

/// What an order is to the advanced order it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Entry,
    Leg(usize),
    Child,
}

/// The record of one live advanced order.
#[derive(Debug, Clone)]
pub(super) struct Advanced {
    pub(super) kind: AdvancedKind,
    pub(super) state: AdvancedState,
    pub(super) instrument: InstrumentId,
    pub(super) side: OrderSide,
    pub(super) qty: Qty,
    pub(super) reduce_only: bool,
    pub(super) legs: [LegState; 2],
    pub(super) entry: Option<(ClientOrderId, bool)>,
    /// Trailing: offset and current oriented peak.
    pub(super) trail: Option<(TrailOffset, i64)>,
    pub(super) child: Option<ClientOrderId>,
    pub(super) seq: u32,
}

pub(super) fn leg_end_reason(s: OrderStatus) -> &'static str {
    match s {
        OrderStatus::Rejected => "leg_rejected",
        OrderStatus::Expired => "leg_expired",
        _ => "leg_canceled",
    }
}

pub(super) fn cancel_cmd(
    instrument: InstrumentId,
    client_order_id: ClientOrderId,
) -> TriggerOutput {
    TriggerOutput::Command(OrderCommand::Cancel {
        instrument,
        client_order_id,
        venue_order_id: None,
    })
}

pub(super) fn child_order(
    a: &Advanced,
    cid: ClientOrderId,
    order_type: OrderType,
    price: Price,
) -> NewOrder {
    NewOrder {
        client_order_id: cid,
        instrument: a.instrument,
        side: a.side,
        order_type,
        time_in_force: TimeInForce::Gtc,
        qty: a.qty,
        price,
        stop_price: Price(0),
        reduce_only: a.reduce_only,
    }
}

pub(super) fn update(id: AdvancedId, a: &Advanced, reason: &'static str) -> AdvancedUpdate {
    AdvancedUpdate {
        id,
        kind: a.kind,
        state: a.state,
        instrument: a.instrument,
        side: a.side,
        qty: a.qty,
        reason,
    }
}

/// The client-facing peak and stop of a trailing stop at oriented `peak`.
///
/// # Errors
/// [`MathError::Overflow`] when the peak or the stop is not a price in `1..=i64::MAX`;
/// placement refuses such stops and peaks only move away from zero-or-overflow, so this is
/// a guard, reported as an error rather than a wrapped or clamped price.
pub(super) fn trail_update(
    id: AdvancedId,
    instrument: InstrumentId,
    side: OrderSide,
    peak: i64,
    off: TrailOffset,
) -> Result<TrailingUpdate, MathError> {
    let sell = side == OrderSide::Sell;
    Ok(TrailingUpdate {
        id,
        instrument,
        peak: stop_price(sell, i128::from(peak)).ok_or(overflow("trailing peak"))?,
        stop: stop_price(sell, off.stop(peak)).ok_or(overflow("trailing stop"))?,
    })
}
