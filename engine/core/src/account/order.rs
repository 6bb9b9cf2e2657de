//! One order's record ([`Order`]), what tape sends ([`NewOrder`], [`OrderCommand`]), a fill
//! ([`Fill`]) and why an order event is refused ([`OrderError`]); the state machine that
//! moves orders between states is [`super::orders`].

use super::event::ExecutionReport;
use super::ids::{Asset, ClientOrderId};
use super::kinds::{OrderSide, OrderStatus, OrderType, TimeInForce};
use super::money::{div_round, notional_raw, overflow, MathError, Money};
use crate::fixed::{Price, Qty};
use crate::input::Nanos;
use crate::instrument::InstrumentId;

/// A new order, as tape sends it to a gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewOrder {
    /// Client order id (unique per account, including retained history).
    pub client_order_id: ClientOrderId,
    /// Instrument.
    pub instrument: InstrumentId,
    /// Side.
    pub side: OrderSide,
    /// Type.
    pub order_type: OrderType,
    /// Time in force.
    pub time_in_force: TimeInForce,
    /// Quantity (positive).
    pub qty: Qty,
    /// Limit price (`Price(0)` when the type has none).
    pub price: Price,
    /// Stop price (`Price(0)` when the type has none).
    pub stop_price: Price,
    /// Only reduce a position (futures).
    pub reduce_only: bool,
}

/// What tape asks a gateway (the venue connection or the paper venue) to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderCommand {
    /// Send a new order.
    Place(NewOrder),
    /// Cancel an order.
    Cancel {
        /// Instrument of the order.
        instrument: InstrumentId,
        /// Its client id.
        client_order_id: ClientOrderId,
        /// Its venue id, when known.
        venue_order_id: Option<u64>,
    },
}

/// One order and everything known about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    /// Client order id.
    pub client_order_id: ClientOrderId,
    /// Venue order id, once known.
    pub venue_order_id: Option<u64>,
    /// Instrument.
    pub instrument: InstrumentId,
    /// Side.
    pub side: OrderSide,
    /// Type.
    pub order_type: OrderType,
    /// Time in force.
    pub time_in_force: TimeInForce,
    /// Reduce-only.
    pub reduce_only: bool,
    /// Limit price (`Price(0)` if none).
    pub price: Price,
    /// Stop price (`Price(0)` if none).
    pub stop_price: Price,
    /// Original quantity.
    pub qty: Qty,
    /// Cumulative filled quantity; never above `qty`.
    pub filled: Qty,
    /// Σ price × qty of the fills, exact, at `price_scale + qty_scale`.
    pub cum_quote_raw: i128,
    /// Cumulative fees in `fee_asset` (fees charged in another asset are not summed here;
    /// the account's per-asset fee ledger has them all).
    pub fees: Money,
    /// Asset of the first fee charged.
    pub fee_asset: Option<Asset>,
    /// Current status.
    pub status: OrderStatus,
    /// Status before a cancel request, restored if the cancel is rejected.
    pub status_before_cancel: Option<OrderStatus>,
    /// Price scale of the instrument.
    pub price_scale: u8,
    /// Quantity scale of the instrument.
    pub qty_scale: u8,
    /// When tape first saw the order.
    pub created: Nanos,
    /// When the order last changed.
    pub updated: Nanos,
}

impl Order {
    /// Average fill price: cumulative quote / cumulative quantity, rounded half away from
    /// zero to the price scale; `None` before the first fill.
    pub fn avg_price(&self) -> Option<Price> {
        if self.filled.0 <= 0 {
            return None;
        }
        // A volume-weighted mean of i64 prices lies between them, so it always fits; the
        // checked path only guards that reasoning.
        div_round(self.cum_quote_raw, i128::from(self.filled.0))
            .and_then(|v| i64::try_from(v).ok())
            .map(Price)
    }

    /// Quantity not yet filled.
    pub fn remaining(&self) -> Qty {
        // 0 <= filled <= qty (the order table refuses overfills), so this cannot overflow;
        // saturating only guards that invariant, it is never reached.
        Qty(self.qty.0.saturating_sub(self.filled.0))
    }

    /// True while the order can still fill.
    pub fn is_live(&self) -> bool {
        !self.status.is_terminal()
    }
}

/// One fill applied to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fill {
    /// Instrument.
    pub instrument: InstrumentId,
    /// The order's client id.
    pub client_order_id: ClientOrderId,
    /// Side of the order.
    pub side: OrderSide,
    /// Fill price.
    pub price: Price,
    /// Fill quantity (positive).
    pub qty: Qty,
    /// Fee of this fill.
    pub fee: Money,
    /// Fee asset.
    pub fee_asset: Option<Asset>,
    /// Maker fill.
    pub is_maker: bool,
    /// Venue trade id.
    pub trade_id: Option<u64>,
}

/// The result of applying an event that changed an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// The order after the change.
    pub order: Order,
    /// The fill, when the event was one.
    pub fill: Option<Fill>,
}

/// An order event that was refused; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// No live or retained order has this client id or venue id.
    #[error("unknown order client_id={client_order_id} order_id={order_id:?}")]
    UnknownOrder {
        /// Client id looked up.
        client_order_id: ClientOrderId,
        /// Venue id looked up.
        order_id: Option<u64>,
    },
    /// The event is not allowed in the order's current state (including any event on a
    /// terminal order, such as a late fill after a cancel).
    #[error("order {client_order_id}: {event} not allowed in state {}", .from.as_str())]
    InvalidTransition {
        /// The order.
        client_order_id: ClientOrderId,
        /// Its state.
        from: OrderStatus,
        /// What was attempted (`"trade"`, `"new"`, `"cancel_request"`, ...).
        event: &'static str,
    },
    /// A fill would take the filled quantity past the original quantity.
    #[error("order {client_order_id}: fill of {last} on {filled} filled exceeds qty {qty}", last = .last.0, filled = .filled.0, qty = .qty.0)]
    Overfill {
        /// The order.
        client_order_id: ClientOrderId,
        /// Filled before.
        filled: Qty,
        /// This fill.
        last: Qty,
        /// Original quantity.
        qty: Qty,
    },
    /// The report's cumulative quantity is at or below what was already filled: the fill
    /// was seen before.
    #[error("order {client_order_id}: duplicate fill (cum qty {cum} already applied)", cum = .cum_qty.0)]
    DuplicateFill {
        /// The order.
        client_order_id: ClientOrderId,
        /// Cumulative quantity in the report.
        cum_qty: Qty,
    },
    /// The report's cumulative quantity is more than filled + this fill: fills were missed.
    #[error("order {client_order_id}: cum qty {got} but fills add up to {expected}", got = .got.0, expected = .expected.0)]
    CumQtyMismatch {
        /// The order.
        client_order_id: ClientOrderId,
        /// filled + last.
        expected: Qty,
        /// The report's cumulative quantity.
        got: Qty,
    },
    /// A fill with a non-positive quantity or price.
    #[error("order {client_order_id}: invalid fill qty={qty} price={price}", qty = .qty.0, price = .price.0)]
    BadFill {
        /// The order.
        client_order_id: ClientOrderId,
        /// Fill quantity.
        qty: Qty,
        /// Fill price.
        price: Price,
    },
    /// A new order that is malformed (non-positive quantity, missing price).
    #[error("order {client_order_id}: {reason}")]
    BadOrder {
        /// The order.
        client_order_id: ClientOrderId,
        /// What is wrong.
        reason: &'static str,
    },
    /// The client id is already in use (live or retained).
    #[error("duplicate client order id {0}")]
    DuplicateClientId(ClientOrderId),
    /// Too many live orders.
    #[error("order table full ({0} live orders)")]
    Full(usize),
    /// Arithmetic overflow.
    #[error(transparent)]
    Math(#[from] MathError),
}

/// An order first seen in a venue report (entered outside tape).
pub(super) fn adopt(now: Nanos, id: ClientOrderId, r: &ExecutionReport, ps: u8, qs: u8) -> Order {
    Order {
        client_order_id: id,
        venue_order_id: Some(r.order_id),
        instrument: r.instrument,
        side: r.side,
        order_type: r.order_type,
        time_in_force: r.time_in_force,
        reduce_only: r.reduce_only,
        price: r.price,
        stop_price: r.stop_price,
        qty: r.qty,
        filled: Qty::ZERO,
        cum_quote_raw: 0,
        fees: Money::ZERO,
        fee_asset: None,
        status: OrderStatus::New,
        status_before_cancel: None,
        price_scale: ps,
        qty_scale: qs,
        created: now,
        updated: now,
    }
}

/// Validates and applies a fill to a copy of the order.
pub(super) fn apply_fill(o: &mut Order, r: &ExecutionReport) -> Result<Fill, OrderError> {
    let id = o.client_order_id;
    if r.last_qty.0 <= 0 || r.last_price.0 <= 0 {
        return Err(OrderError::BadFill {
            client_order_id: id,
            qty: r.last_qty,
            price: r.last_price,
        });
    }
    if r.cum_qty.0 <= o.filled.0 {
        return Err(OrderError::DuplicateFill {
            client_order_id: id,
            cum_qty: r.cum_qty,
        });
    }
    let filled = o
        .filled
        .0
        .checked_add(r.last_qty.0)
        .ok_or(overflow("filled qty"))?;
    if filled > o.qty.0 {
        return Err(OrderError::Overfill {
            client_order_id: id,
            filled: o.filled,
            last: r.last_qty,
            qty: o.qty,
        });
    }
    if r.cum_qty.0 != filled {
        return Err(OrderError::CumQtyMismatch {
            client_order_id: id,
            expected: Qty(filled),
            got: r.cum_qty,
        });
    }
    o.cum_quote_raw = o
        .cum_quote_raw
        .checked_add(notional_raw(r.last_price, r.last_qty))
        .ok_or(overflow("cumulative quote"))?;
    match (o.fee_asset, r.fee_asset) {
        (_, None) => {}
        (None, Some(a)) => {
            o.fee_asset = Some(a);
            o.fees = o.fees.add(r.fee, "order fees")?;
        }
        (Some(mine), Some(a)) if mine == a => o.fees = o.fees.add(r.fee, "order fees")?,
        _ => {}
    }
    o.filled = Qty(filled);
    o.status = if filled == o.qty.0 {
        OrderStatus::Filled
    } else if o.status == OrderStatus::PendingCancel {
        OrderStatus::PendingCancel
    } else {
        OrderStatus::PartiallyFilled
    };
    Ok(Fill {
        instrument: o.instrument,
        client_order_id: id,
        side: o.side,
        price: r.last_price,
        qty: r.last_qty,
        fee: r.fee,
        fee_asset: r.fee_asset,
        is_maker: r.is_maker,
        trade_id: r.trade_id,
    })
}
