//! The order state machine: one [`Order`] per client order id, driven by tape's own requests
//! (place, cancel) and by the venue's execution reports.
//!
//! ```text
//!            place                ack (NEW)          fill            fill (rest)
//!   (none) ───────> PendingNew ───────────> New ──────────> Partially ───────────> Filled
//!                     │   │                  │ │             Filled │ │
//!                     │   │ reject           │ │ cancel req.  cancel│ │ cancel req.
//!                     │   └────> Rejected    │ └──────> PendingCancel <┘
//!                     │                      │              │  │  └─ fill: stays, or Filled
//!                     └─ cancel req. ────────┼──────────────┘  │ cancel rejected: back
//!   CANCELED from any live state ─> Canceled;  EXPIRED from any live state ─> Expired
//! ```
//!
//! Everything else is an [`OrderError`] and changes nothing: a fill or ack on a terminal
//! order (found in the bounded terminal history, so a late event is told apart from an
//! unknown order), a fill that would take the filled quantity past the original quantity, a
//! cumulative quantity that disagrees with the fills seen (duplicate or gap).
//!
//! The average fill price is exact until presented: the order keeps the cumulative quote
//! (Σ price × qty, exact in `i128` at price scale + qty scale) and divides by the
//! cumulative quantity only when asked, rounding half away from zero to the price scale.

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::event::ExecutionReport;
use super::ids::ClientOrderId;
use super::kinds::{ExecType, OrderStatus};
use super::money::Money;
use super::order::{adopt, apply_fill};
pub use super::order::{Applied, Fill, NewOrder, Order, OrderCommand, OrderError};
use crate::fixed::Qty;
use crate::input::Nanos;

/// Default number of live (non-terminal) orders an account may track.
pub const DEFAULT_MAX_LIVE_ORDERS: usize = 10_000;

/// Default number of terminal orders retained to recognise late events.
pub const DEFAULT_ORDER_HISTORY: usize = 10_000;

/// Bounds of an [`Orders`] table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrdersConfig {
    /// Live orders at most; more (from the venue or from tape) is [`OrderError::Full`].
    pub max_live: usize,
    /// Terminal orders retained (oldest dropped first).
    pub history: usize,
}

impl Default for OrdersConfig {
    fn default() -> Self {
        OrdersConfig {
            max_live: DEFAULT_MAX_LIVE_ORDERS,
            history: DEFAULT_ORDER_HISTORY,
        }
    }
}

/// The orders of one account: live ones by client id, terminal ones in a bounded history.
#[derive(Debug, Clone, Default)]
pub struct Orders {
    config: OrdersConfig,
    live: BTreeMap<ClientOrderId, Order>,
    /// Looked up by key only (never iterated), so a hash map: every order operation checks
    /// it, and a tree of 10 000 retained ids cost a dozen comparisons per miss.
    done: HashMap<ClientOrderId, Order>,
    done_fifo: VecDeque<ClientOrderId>,
    /// Venue id -> client id, for lookups only.
    by_venue: HashMap<u64, ClientOrderId>,
}

fn name(x: ExecType) -> &'static str {
    x.as_str()
}

impl Orders {
    /// An empty table with these bounds.
    pub fn new(config: OrdersConfig) -> Self {
        Orders {
            config,
            ..Orders::default()
        }
    }

    /// The order with this client id, live or retained.
    pub fn get(&self, id: &ClientOrderId) -> Option<&Order> {
        self.live.get(id).or_else(|| self.done.get(id))
    }

    /// The order with this venue id, live or retained.
    pub fn by_venue_id(&self, order_id: u64) -> Option<&Order> {
        self.by_venue.get(&order_id).and_then(|c| self.get(c))
    }

    /// Live orders in client-id order.
    pub fn live(&self) -> impl Iterator<Item = &Order> {
        self.live.values()
    }

    /// Number of live orders.
    pub fn open_count(&self) -> usize {
        self.live.len()
    }

    /// Number of retained terminal orders.
    pub fn history_len(&self) -> usize {
        self.done.len()
    }

    /// Checks that `o` could be inserted (fresh id, room, sane quantity and prices).
    ///
    /// # Errors
    /// As [`Orders::insert_pending`].
    pub fn check_new(&self, o: &NewOrder) -> Result<(), OrderError> {
        let id = o.client_order_id;
        if self.get(&id).is_some() {
            return Err(OrderError::DuplicateClientId(id));
        }
        let bad = |reason| OrderError::BadOrder {
            client_order_id: id,
            reason,
        };
        if o.qty.0 <= 0 {
            return Err(bad("quantity must be positive"));
        }
        if o.order_type.has_limit_price() && o.price.0 <= 0 {
            return Err(bad("limit price must be positive"));
        }
        if o.order_type.has_stop_price() && o.stop_price.0 <= 0 {
            return Err(bad("stop price must be positive"));
        }
        if self.live.len() >= self.config.max_live {
            return Err(OrderError::Full(self.config.max_live));
        }
        Ok(())
    }

    /// Records an order tape is about to send, in [`OrderStatus::PendingNew`].
    ///
    /// # Errors
    /// [`OrderError::DuplicateClientId`], [`OrderError::Full`], [`OrderError::BadOrder`].
    pub fn insert_pending(
        &mut self,
        now: Nanos,
        o: &NewOrder,
        price_scale: u8,
        qty_scale: u8,
    ) -> Result<Order, OrderError> {
        self.check_new(o)?;
        let id = o.client_order_id;
        let order = Order {
            client_order_id: id,
            venue_order_id: None,
            instrument: o.instrument,
            side: o.side,
            order_type: o.order_type,
            time_in_force: o.time_in_force,
            reduce_only: o.reduce_only,
            price: o.price,
            stop_price: o.stop_price,
            qty: o.qty,
            filled: Qty::ZERO,
            cum_quote_raw: 0,
            fees: Money::ZERO,
            fee_asset: None,
            status: OrderStatus::PendingNew,
            status_before_cancel: None,
            price_scale,
            qty_scale,
            created: now,
            updated: now,
        };
        self.live.insert(id, order);
        Ok(order)
    }

    /// Marks a cancel request sent: the order goes to [`OrderStatus::PendingCancel`].
    ///
    /// # Errors
    /// [`OrderError::UnknownOrder`], or [`OrderError::InvalidTransition`] for a terminal order
    /// or one already pending cancel.
    pub fn request_cancel(&mut self, now: Nanos, id: &ClientOrderId) -> Result<Order, OrderError> {
        let o = self.live_mut(id, "cancel_request")?;
        match o.status {
            OrderStatus::PendingNew | OrderStatus::New | OrderStatus::PartiallyFilled => {
                o.status_before_cancel = Some(o.status);
                o.status = OrderStatus::PendingCancel;
                o.updated = now;
                Ok(*o)
            }
            from => Err(OrderError::InvalidTransition {
                client_order_id: *id,
                from,
                event: "cancel_request",
            }),
        }
    }

    /// The venue refused a cancel: the order returns to its state before the request.
    ///
    /// # Errors
    /// [`OrderError::UnknownOrder`], or [`OrderError::InvalidTransition`] when the order is
    /// not pending cancel.
    pub fn cancel_rejected(&mut self, now: Nanos, id: &ClientOrderId) -> Result<Order, OrderError> {
        let o = self.live_mut(id, "cancel_rejected")?;
        match (o.status, o.status_before_cancel) {
            (OrderStatus::PendingCancel, Some(prev)) => {
                // A fill while the cancel was pending may have moved New on to PartiallyFilled.
                o.status = if o.filled.0 > 0 {
                    OrderStatus::PartiallyFilled
                } else {
                    prev
                };
                o.status_before_cancel = None;
                o.updated = now;
                Ok(*o)
            }
            (from, _) => Err(OrderError::InvalidTransition {
                client_order_id: *id,
                from,
                event: "cancel_rejected",
            }),
        }
    }

    /// The gateway could not send an order tape recorded: [`OrderStatus::PendingNew`] ->
    /// [`OrderStatus::Rejected`].
    ///
    /// # Errors
    /// [`OrderError::UnknownOrder`] or [`OrderError::InvalidTransition`].
    pub fn reject_pending(&mut self, now: Nanos, id: &ClientOrderId) -> Result<Order, OrderError> {
        let o = self.live_mut(id, "reject")?;
        if o.status != OrderStatus::PendingNew {
            return Err(OrderError::InvalidTransition {
                client_order_id: *id,
                from: o.status,
                event: "reject",
            });
        }
        o.status = OrderStatus::Rejected;
        o.updated = now;
        let order = *o;
        self.retire(*id);
        Ok(order)
    }

    fn live_mut(
        &mut self,
        id: &ClientOrderId,
        event: &'static str,
    ) -> Result<&mut Order, OrderError> {
        // An id is never both live and retained, so the live table (a few entries) answers
        // first and the history is asked only on a miss.
        if !self.live.contains_key(id) {
            if let Some(done) = self.done.get(id) {
                return Err(OrderError::InvalidTransition {
                    client_order_id: *id,
                    from: done.status,
                    event,
                });
            }
        }
        self.live.get_mut(id).ok_or(OrderError::UnknownOrder {
            client_order_id: *id,
            order_id: None,
        })
    }

    /// Which client id a report is about: the venue id if known, else `C` on a cancel, else `c`.
    fn resolve(&self, r: &ExecutionReport) -> ClientOrderId {
        if let Some(c) = self.by_venue.get(&r.order_id) {
            return *c;
        }
        match (r.exec_type, r.orig_client_order_id) {
            (ExecType::Canceled, Some(orig)) => orig,
            _ => r.client_order_id,
        }
    }

    /// Applies a venue (or paper) execution report.
    ///
    /// Returns `Ok(None)` when the report changes nothing (a repeated ack, a self-trade
    /// prevention notice that does not end the order). An order the venue reports that tape
    /// never placed (entered elsewhere) is adopted when the report is a `NEW` or a fill.
    ///
    /// # Errors
    /// An [`OrderError`]; the order is left as it was.
    pub fn apply(
        &mut self,
        now: Nanos,
        r: &ExecutionReport,
        price_scale: u8,
        qty_scale: u8,
    ) -> Result<Option<Applied>, OrderError> {
        let id = self.resolve(r);
        let event = name(r.exec_type);
        // Never both live and retained: the history is asked only when the id is not live.
        if !self.live.contains_key(&id) {
            if let Some(done) = self.done.get(&id) {
                return Err(OrderError::InvalidTransition {
                    client_order_id: id,
                    from: done.status,
                    event,
                });
            }
        }
        let mut o = match self.live.get(&id) {
            Some(o) => *o,
            None if matches!(
                r.exec_type,
                ExecType::New | ExecType::Trade | ExecType::Calculated | ExecType::Replaced
            ) =>
            {
                if self.live.len() >= self.config.max_live {
                    return Err(OrderError::Full(self.config.max_live));
                }
                adopt(now, id, r, price_scale, qty_scale)
            }
            None => {
                return Err(OrderError::UnknownOrder {
                    client_order_id: id,
                    order_id: Some(r.order_id),
                })
            }
        };
        let invalid = |from| OrderError::InvalidTransition {
            client_order_id: id,
            from,
            event,
        };
        let mut fill = None;
        match r.exec_type {
            ExecType::New | ExecType::Replaced => match o.status {
                OrderStatus::PendingNew => o.status = OrderStatus::New,
                // A repeated ack of an acknowledged order changes nothing.
                _ if self.live.contains_key(&id) => return Ok(None),
                _ => {}
            },
            ExecType::Trade | ExecType::Calculated => {
                fill = Some(apply_fill(&mut o, r)?);
            }
            ExecType::Canceled => o.status = OrderStatus::Canceled,
            ExecType::Expired => o.status = OrderStatus::Expired,
            ExecType::TradePrevention => {
                if r.status != OrderStatus::Expired {
                    return Ok(None);
                }
                o.status = OrderStatus::Expired;
            }
            ExecType::Rejected => match (o.status, o.status_before_cancel) {
                (OrderStatus::PendingNew, _)
                | (OrderStatus::PendingCancel, Some(OrderStatus::PendingNew)) => {
                    o.status = OrderStatus::Rejected
                }
                (from, _) => return Err(invalid(from)),
            },
            ExecType::Amendment => {
                if r.qty.0 < o.filled.0 || r.qty.0 <= 0 {
                    return Err(OrderError::Overfill {
                        client_order_id: id,
                        filled: o.filled,
                        last: Qty::ZERO,
                        qty: r.qty,
                    });
                }
                o.qty = r.qty;
                o.price = r.price;
                if o.filled == o.qty {
                    o.status = OrderStatus::Filled;
                }
            }
        }
        if o.venue_order_id.is_none() {
            o.venue_order_id = Some(r.order_id);
        }
        o.updated = now;
        if o.status.is_terminal() {
            o.status_before_cancel = None;
        }
        self.by_venue.entry(r.order_id).or_insert(id);
        self.live.insert(id, o);
        if o.status.is_terminal() {
            self.retire(id);
        }
        Ok(Some(Applied { order: o, fill }))
    }

    /// Moves a terminal order into the bounded history.
    fn retire(&mut self, id: ClientOrderId) {
        let Some(o) = self.live.remove(&id) else {
            return;
        };
        self.done.insert(id, o);
        self.done_fifo.push_back(id);
        while self.done.len() > self.config.history {
            let Some(old) = self.done_fifo.pop_front() else {
                break;
            };
            if let Some(gone) = self.done.remove(&old) {
                if let Some(v) = gone.venue_order_id {
                    self.by_venue.remove(&v);
                }
            }
        }
    }
}
