//! Pre-trade and post-trade risk.
//!
//! Pre-trade ([`Risk::check`]), in this order, the first failure wins: order quantity, order
//! notional, resulting position, open orders, drawdown, order rate. The rate limiter runs
//! last so a refused order does not use up a token. Post-trade: a fill that leaves a position
//! beyond its limit raises a `position_limit` alert, and equity drawdown beyond the limit a
//! `drawdown` alert; each fires once per crossing and re-arms when the value is back within
//! the limit.
//!
//! Quantity limits are [`Decimal`]s so one default serves instruments of different scales;
//! they are compared exactly against a quantity at its instrument's scale.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::kinds::OrderSide;
use super::money::{notional, Money, MONEY_SCALE};
use crate::fixed::{Decimal, Price, Qty, Scaled, MAX_SCALE};
use crate::input::Nanos;
use crate::instrument::InstrumentId;

/// Nanoseconds per second (the rate limiter's window).
pub const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Configured limits; `None` means unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RiskLimits {
    /// Largest quantity of one order (default for every instrument).
    pub max_order_qty: Option<Decimal>,
    /// Per-instrument override of `max_order_qty`.
    pub max_order_qty_per_instrument: BTreeMap<InstrumentId, Decimal>,
    /// Largest notional (price × qty, quote asset) of one order.
    pub max_order_notional: Option<Money>,
    /// Largest absolute position (default for every instrument).
    pub max_position: Option<Decimal>,
    /// Per-instrument override of `max_position`.
    pub max_position_per_instrument: BTreeMap<InstrumentId, Decimal>,
    /// Most live orders at once.
    pub max_open_orders: Option<u32>,
    /// Most orders per second (token bucket: burst = rate, refilled continuously).
    pub max_orders_per_sec: Option<u32>,
    /// Largest drawdown of PnL equity from its peak.
    pub max_drawdown: Option<Money>,
}

impl RiskLimits {
    fn order_qty_limit(&self, i: InstrumentId) -> Option<Decimal> {
        self.max_order_qty_per_instrument
            .get(&i)
            .copied()
            .or(self.max_order_qty)
    }

    fn position_limit(&self, i: InstrumentId) -> Option<Decimal> {
        self.max_position_per_instrument
            .get(&i)
            .copied()
            .or(self.max_position)
    }
}

/// Which rule an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RiskKind {
    /// Order quantity above `max_order_qty`.
    OrderQty,
    /// Order notional above `max_order_notional`.
    OrderNotional,
    /// Position beyond `max_position`.
    PositionLimit,
    /// Too many open orders.
    OpenOrders,
    /// Order rate above `max_orders_per_sec`.
    OrderRate,
    /// Drawdown beyond `max_drawdown`.
    Drawdown,
    /// A value computed from a fill, a venue report or a trigger did not fit its type; the
    /// input was refused (or the output withheld) instead of wrapping.
    Overflow,
    /// The venue's own rate limits (request weight, orders per window, a 429 or 418): the
    /// order was refused before the venue would have.
    VenueRateLimit,
}

impl RiskKind {
    /// Stable name (`order_qty`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            RiskKind::OrderQty => "order_qty",
            RiskKind::OrderNotional => "order_notional",
            RiskKind::PositionLimit => "position_limit",
            RiskKind::OpenOrders => "open_orders",
            RiskKind::OrderRate => "order_rate",
            RiskKind::Drawdown => "drawdown",
            RiskKind::Overflow => "overflow",
            RiskKind::VenueRateLimit => "venue_rate_limit",
        }
    }
}

/// How bad it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// An order was refused; nothing is at risk yet.
    Warning,
    /// A limit is breached by the account's actual state.
    Critical,
}

impl Severity {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// A risk alert for clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskAlert {
    /// Rule.
    pub kind: RiskKind,
    /// Severity.
    pub severity: Severity,
    /// Human-readable context.
    pub message: String,
    /// The limit.
    pub limit: Decimal,
    /// The value that broke it.
    pub current: Decimal,
    /// Instrument, for per-instrument rules.
    pub instrument: Option<InstrumentId>,
    /// When.
    pub at: Nanos,
}

/// A pre-trade refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("risk reject ({}): {}", .0.kind.as_str(), .0.message)]
pub struct RiskReject(pub RiskAlert);

/// What the pre-trade check needs to know about an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RiskOrder {
    /// Instrument.
    pub instrument: InstrumentId,
    /// Side.
    pub side: OrderSide,
    /// Quantity.
    pub qty: Qty,
    /// Price to value it at: the limit price, or a reference (mark/touch) for market orders.
    pub price: Option<Price>,
    /// Reduce-only.
    pub reduce_only: bool,
    /// Price scale.
    pub price_scale: u8,
    /// Quantity scale.
    pub qty_scale: u8,
}

/// What the pre-trade check needs to know about the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RiskContext {
    /// Live orders now.
    pub open_orders: usize,
    /// Current signed position in the order's instrument.
    pub position: Qty,
    /// Current drawdown.
    pub drawdown: Money,
}

/// A token bucket: `rate` tokens per second, holding at most `rate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bucket {
    /// Tokens × 10^9 (one token per `NANOS_PER_SEC / rate` ns of refill).
    nano_tokens: u128,
    last: Nanos,
}

/// Compares `a` at scale `sa` with `b` at scale `sb`; exact for scales up to 18 (larger,
/// misconfigured scales saturate rather than panic).
pub fn cmp_scaled(a: i64, sa: u8, b: i64, sb: u8) -> Ordering {
    // Exact for scales up to 18 (|v| · 10^18 < 2^123); beyond, saturation keeps the order.
    let up = |v: i64, s: u8| {
        i128::from(v)
            .checked_mul(super::money::pow10_i128(s))
            .unwrap_or(if v < 0 { i128::MIN } else { i128::MAX })
    };
    up(a, sb).cmp(&up(b, sa))
}

/// A value at a scale as text; never panics on a scale above [`MAX_SCALE`].
fn show(m: i64, scale: u8) -> String {
    if scale <= MAX_SCALE {
        Scaled(m, scale).to_string()
    } else {
        format!("{m}e-{scale}")
    }
}

fn dec(mantissa: i64, scale: u8) -> Decimal {
    Decimal { mantissa, scale }
}

/// Risk state of one account: limits, the rate bucket, and which breaches are active.
#[derive(Debug, Clone)]
pub struct Risk {
    limits: RiskLimits,
    bucket: Option<Bucket>,
    drawdown_breached: bool,
    position_breached: BTreeSet<InstrumentId>,
}

impl Risk {
    /// Risk state with these limits.
    pub fn new(limits: RiskLimits) -> Self {
        Risk {
            limits,
            bucket: None,
            drawdown_breached: false,
            position_breached: BTreeSet::new(),
        }
    }

    /// The limits.
    pub fn limits(&self) -> &RiskLimits {
        &self.limits
    }

    /// Replaces the limits (the rate bucket restarts full).
    pub fn set_limits(&mut self, limits: RiskLimits) {
        self.limits = limits;
        self.bucket = None;
    }

    /// Pre-trade check; on success an order-rate token is used.
    ///
    /// # Errors
    /// [`RiskReject`] with a warning-severity alert naming the rule.
    pub fn check(
        &mut self,
        o: &RiskOrder,
        ctx: &RiskContext,
        now: Nanos,
    ) -> Result<(), RiskReject> {
        let alert = |kind, message: String, limit, current| {
            RiskReject(RiskAlert {
                kind,
                severity: Severity::Warning,
                message,
                limit,
                current,
                instrument: Some(o.instrument),
                at: now,
            })
        };
        let qs = o.qty_scale;
        if let Some(l) = self.limits.order_qty_limit(o.instrument) {
            if cmp_scaled(o.qty.0, qs, l.mantissa, l.scale) == Ordering::Greater {
                return Err(alert(
                    RiskKind::OrderQty,
                    format!(
                        "order qty {} above limit {}",
                        show(o.qty.0, qs),
                        show(l.mantissa, l.scale)
                    ),
                    l,
                    dec(o.qty.0, qs),
                ));
            }
        }
        if let Some(l) = self.limits.max_order_notional {
            let lim = dec(l.0, MONEY_SCALE);
            let value = o.price.map(|p| notional(p, o.qty, o.price_scale, qs));
            match value {
                Some(Ok(n)) if n <= l => {}
                Some(Ok(n)) => {
                    return Err(alert(
                        RiskKind::OrderNotional,
                        format!("order notional {n} above limit {l}"),
                        lim,
                        dec(n.0, MONEY_SCALE),
                    ))
                }
                Some(Err(_)) => {
                    return Err(alert(
                        RiskKind::OrderNotional,
                        "order notional overflows".into(),
                        lim,
                        dec(i64::MAX, MONEY_SCALE),
                    ))
                }
                None => {
                    return Err(alert(
                        RiskKind::OrderNotional,
                        "no price to value the order at (no market data yet)".into(),
                        lim,
                        dec(0, MONEY_SCALE),
                    ))
                }
            }
        }
        // The account refuses an order whose resulting position overflows before risk runs;
        // called on its own, risk refuses it here rather than compare a saturated value.
        let Some(after) = o
            .side
            .sign()
            .checked_mul(o.qty.0)
            .and_then(|d| ctx.position.0.checked_add(d))
        else {
            return Err(alert(
                RiskKind::Overflow,
                "resulting position overflows".into(),
                dec(i64::MAX, qs),
                dec(ctx.position.0, qs),
            ));
        };
        let reduces = after.unsigned_abs() <= ctx.position.0.unsigned_abs()
            && (after == 0 || (after > 0) == (ctx.position.0 > 0));
        if let Some(l) = self.limits.position_limit(o.instrument) {
            // |i64::MIN| has no i64: it is beyond any limit.
            let beyond = after
                .checked_abs()
                .is_none_or(|a| cmp_scaled(a, qs, l.mantissa, l.scale) == Ordering::Greater);
            if beyond && !reduces {
                return Err(alert(
                    RiskKind::PositionLimit,
                    format!(
                        "position would be {} (limit {})",
                        show(after, qs),
                        show(l.mantissa, l.scale)
                    ),
                    l,
                    dec(after, qs),
                ));
            }
        }
        if let Some(l) = self.limits.max_open_orders {
            if ctx.open_orders as u64 >= u64::from(l) {
                return Err(alert(
                    RiskKind::OpenOrders,
                    format!("{} open orders, limit {l}", ctx.open_orders),
                    dec(i64::from(l), 0),
                    // A count (bounded by the order table): the conversion cannot fail.
                    dec(
                        i64::try_from(ctx.open_orders)
                            .unwrap_or(i64::MAX)
                            .saturating_add(1),
                        0,
                    ),
                ));
            }
        }
        if let Some(l) = self.limits.max_drawdown {
            if ctx.drawdown >= l && !(reduces || o.reduce_only) {
                return Err(alert(
                    RiskKind::Drawdown,
                    format!(
                        "drawdown {} at or beyond limit {l}: only reducing orders",
                        ctx.drawdown
                    ),
                    dec(l.0, MONEY_SCALE),
                    dec(ctx.drawdown.0, MONEY_SCALE),
                ));
            }
        }
        if let Some(rate) = self.limits.max_orders_per_sec {
            let cap = u128::from(rate) * u128::from(NANOS_PER_SEC);
            let b = self.bucket.get_or_insert(Bucket {
                nano_tokens: cap,
                last: now,
            });
            let elapsed = now.0.saturating_sub(b.last.0);
            b.nano_tokens = (b.nano_tokens + u128::from(elapsed) * u128::from(rate)).min(cap);
            b.last = Nanos(b.last.0.max(now.0));
            if b.nano_tokens < u128::from(NANOS_PER_SEC) {
                return Err(alert(
                    RiskKind::OrderRate,
                    format!("more than {rate} orders per second"),
                    dec(i64::from(rate), 0),
                    dec(i64::from(rate) + 1, 0),
                ));
            }
            b.nano_tokens -= u128::from(NANOS_PER_SEC);
        }
        Ok(())
    }

    /// Post-trade: the position in `instrument` is now `position`; alerts once when it goes
    /// beyond its limit, re-arming when it is back within.
    pub fn after_fill(
        &mut self,
        instrument: InstrumentId,
        position: Qty,
        qty_scale: u8,
        now: Nanos,
    ) -> Option<RiskAlert> {
        let l = self.limits.position_limit(instrument)?;
        // |i64::MIN| has no i64: it is beyond any limit.
        let beyond = position
            .0
            .checked_abs()
            .is_none_or(|a| cmp_scaled(a, qty_scale, l.mantissa, l.scale) == Ordering::Greater);
        if !beyond {
            self.position_breached.remove(&instrument);
            return None;
        }
        if !self.position_breached.insert(instrument) {
            return None;
        }
        Some(RiskAlert {
            kind: RiskKind::PositionLimit,
            severity: Severity::Critical,
            message: format!(
                "position {} beyond limit {}",
                show(position.0, qty_scale),
                show(l.mantissa, l.scale)
            ),
            limit: l,
            current: dec(position.0, qty_scale),
            instrument: Some(instrument),
            at: now,
        })
    }

    /// Post-trade: equity drawdown is now `drawdown`; alerts once per crossing of the limit.
    pub fn after_equity(&mut self, drawdown: Money, now: Nanos) -> Option<RiskAlert> {
        let l = self.limits.max_drawdown?;
        if drawdown < l {
            self.drawdown_breached = false;
            return None;
        }
        if std::mem::replace(&mut self.drawdown_breached, true) {
            return None;
        }
        Some(RiskAlert {
            kind: RiskKind::Drawdown,
            severity: Severity::Critical,
            message: format!("drawdown {drawdown} reached limit {l}"),
            limit: dec(l.0, MONEY_SCALE),
            current: dec(drawdown.0, MONEY_SCALE),
            instrument: None,
            at: now,
        })
    }
}

impl fmt::Display for RiskAlert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.severity.as_str(),
            self.kind.as_str(),
            self.message
        )
    }
}
