//! Reconciliation: what the venue says about an order (an `openOrders.status` entry, an
//! `order.status` answer) turned into the execution reports that bring tape's copy of the
//! order to the venue's state, and the account answers (`account.status`,
//! `account.balance`, `account.position`) into the user-data events a single-user desk
//! applies.
//!
//! Fills the user-data stream missed while the gateway was down are booked as one fill of
//! the difference between the venue's executed quantity and tape's, at the venue's average
//! price (its cumulative quote quantity over its executed quantity, or `avgPrice`), or at the
//! order's limit price when the venue gives neither. Fees of missed fills are unknown and
//! booked as zero; the venue's balances (single-user desks) correct the cash.

use serde_json::{Map, Value};

use crate::account::event::{
    AccountPosition, AssetBalance, ExecutionReport, FuturesAccountUpdate, FuturesBalance,
    FuturesPosition,
};
use crate::account::kinds::{ExecType, MarginType, VenuePositionSide};
use crate::account::{
    ClientOrderId, Money, Order, OrderSide, OrderStatus, OrderType, TimeInForce, UserEvent,
};
use crate::fixed::{parse_fixed, Price, Qty};
use crate::instrument::{Market, Registry};

/// A field as text: JSON strings as they are, numbers as written.
fn text<'a>(o: &'a Map<String, Value>, k: &str) -> Option<std::borrow::Cow<'a, str>> {
    match o.get(k)? {
        Value::String(s) => Some(std::borrow::Cow::Borrowed(s)),
        Value::Number(n) => Some(std::borrow::Cow::Owned(n.to_string())),
        _ => None,
    }
}

fn fixed(o: &Map<String, Value>, k: &str, scale: u8) -> Option<i64> {
    parse_fixed(text(o, k)?.as_bytes(), scale).ok()
}

fn money(o: &Map<String, Value>, k: &str) -> Option<Money> {
    Money::parse(text(o, k)?.as_bytes()).ok()
}

/// The venue's view of one order, at the instrument's scales.
#[derive(Debug, Clone)]
pub(super) struct VenueOrder {
    pub report: ExecutionReport,
    /// Executed quantity.
    pub executed: Qty,
    /// The venue's status.
    pub status: OrderStatus,
    /// Average fill price, when the venue says or it can be computed.
    pub avg_price: Option<Price>,
}

/// Reads one order object of `openOrders.status` / `order.status` (spot and futures
/// shapes). `None` when a field tape needs is missing or malformed, or the symbol is not
/// registered.
pub(super) fn venue_order(
    market: Market,
    o: &Map<String, Value>,
    registry: &Registry,
) -> Option<VenueOrder> {
    let symbol = o.get("symbol")?.as_str()?;
    let instrument = registry.lookup(market, symbol.as_bytes())?;
    let inst = registry.get(instrument);
    let (ps, qs) = (inst.price_scale, inst.qty_scale);
    let client_order_id = ClientOrderId::new(o.get("clientOrderId")?.as_str()?).ok()?;
    let order_id = o.get("orderId")?.as_u64()?;
    let side = OrderSide::parse(o.get("side")?.as_str()?.as_bytes())?;
    let order_type = OrderType::parse(o.get("type")?.as_str()?.as_bytes(), market)?;
    let time_in_force = o
        .get("timeInForce")
        .and_then(Value::as_str)
        .and_then(|s| TimeInForce::parse(s.as_bytes()))
        .unwrap_or(TimeInForce::Gtc);
    let qty = Qty(fixed(o, "origQty", qs)?);
    let executed = Qty(fixed(o, "executedQty", qs)?);
    let price = Price(fixed(o, "price", ps).unwrap_or(0));
    let stop_price = Price(fixed(o, "stopPrice", ps).unwrap_or(0));
    let status = OrderStatus::parse(o.get("status")?.as_str()?.as_bytes())?;
    let time = o
        .get("updateTime")
        .or_else(|| o.get("time"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    // Average price: futures say it; spot gives the cumulative quote quantity.
    let avg_price = fixed(o, "avgPrice", ps)
        .filter(|&p| p > 0)
        .map(Price)
        .or_else(|| {
            let quote = text(o, "cummulativeQuoteQty").or_else(|| text(o, "cumQuote"))?;
            let quote = parse_fixed(quote.as_bytes(), ps.checked_add(qs)?).ok()?;
            if executed.0 <= 0 {
                return None;
            }
            let avg = i128::from(quote) * 10i128.pow(u32::from(qs)) / i128::from(executed.0);
            // `quote` is at scale ps+qs; times 10^qs over qty (scale qs) leaves scale ps+qs:
            // divide back to the price scale.
            let avg = avg / 10i128.pow(u32::from(qs));
            i64::try_from(avg).ok().filter(|&p| p > 0).map(Price)
        });
    let report = ExecutionReport {
        market,
        instrument,
        event_time_ms: time,
        transact_time_ms: time,
        client_order_id,
        orig_client_order_id: None,
        order_id,
        side,
        order_type,
        time_in_force,
        qty,
        price,
        stop_price,
        exec_type: ExecType::New,
        status: OrderStatus::New,
        reject_reason: None,
        last_qty: Qty::ZERO,
        cum_qty: Qty::ZERO,
        last_price: Price(0),
        fee: Money::ZERO,
        fee_asset: None,
        trade_id: None,
        is_maker: false,
        reduce_only: o
            .get("reduceOnly")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        position_side: o
            .get("positionSide")
            .and_then(Value::as_str)
            .and_then(|s| VenuePositionSide::parse(s.as_bytes()))
            .unwrap_or(VenuePositionSide::Both),
        venue_realized_pnl: None,
        venue_avg_price: None,
        cum_quote: None,
        order_time_ms: o.get("time").and_then(Value::as_u64),
        order_list_id: None,
    };
    Some(VenueOrder {
        report,
        executed,
        status,
        avg_price,
    })
}

/// The reports that take `ours` (tape's copy, under the venue's client id `vid`) to the
/// venue's state `v`, in order: an acknowledgement if tape never got one, one fill for what
/// tape missed, the venue's terminal state if it is one and no fill reached it.
pub(super) fn catch_up(ours: &Order, vid: ClientOrderId, v: &VenueOrder) -> Vec<ExecutionReport> {
    let mut out = Vec::new();
    let base = ExecutionReport {
        client_order_id: vid,
        ..v.report.clone()
    };
    if ours.status == OrderStatus::PendingNew
        || (ours.status == OrderStatus::PendingCancel
            && ours.status_before_cancel == Some(OrderStatus::PendingNew))
    {
        out.push(ExecutionReport {
            exec_type: ExecType::New,
            status: OrderStatus::New,
            ..base.clone()
        });
    }
    let missed = v.executed.0.checked_sub(ours.filled.0).unwrap_or(0);
    if missed > 0 {
        let status = if v.executed.0 >= ours.qty.0 {
            OrderStatus::Filled
        } else {
            OrderStatus::PartiallyFilled
        };
        out.push(ExecutionReport {
            exec_type: ExecType::Trade,
            status,
            last_qty: Qty(missed),
            cum_qty: v.executed,
            last_price: v.avg_price.unwrap_or(ours.price),
            ..base.clone()
        });
    }
    let terminal = match v.status {
        OrderStatus::Canceled => Some(ExecType::Canceled),
        OrderStatus::Expired => Some(ExecType::Expired),
        OrderStatus::Rejected => Some(ExecType::Rejected),
        _ => None,
    };
    if let Some(x) = terminal {
        out.push(ExecutionReport {
            exec_type: x,
            status: v.status,
            cum_qty: v.executed,
            ..base
        });
    }
    out
}

/// Spot `account.status`: the balances as an `outboundAccountPosition`.
pub(super) fn spot_balances(result: &Value) -> Option<UserEvent> {
    let o = result.as_object()?;
    let time = o.get("updateTime").and_then(Value::as_u64).unwrap_or(0);
    let mut balances = Vec::new();
    for b in o.get("balances")?.as_array()? {
        let b = b.as_object()?;
        let Ok(asset) = crate::account::Asset::new(b.get("asset")?.as_str()?) else {
            continue;
        };
        balances.push(AssetBalance {
            asset,
            free: money(b, "free")?,
            locked: money(b, "locked")?,
        });
    }
    Some(UserEvent::AccountPosition(AccountPosition {
        event_time_ms: time,
        last_update_ms: time,
        balances,
    }))
}

/// Futures `account.balance`: the wallet balances as an `ACCOUNT_UPDATE`.
pub(super) fn futures_balances(result: &Value) -> Option<UserEvent> {
    let mut balances = Vec::new();
    let mut time = 0;
    for b in result.as_array()? {
        let b = b.as_object()?;
        let Ok(asset) = crate::account::Asset::new(b.get("asset")?.as_str()?) else {
            continue;
        };
        time = time.max(b.get("updateTime").and_then(Value::as_u64).unwrap_or(0));
        let wallet = money(b, "balance")?;
        balances.push(FuturesBalance {
            asset,
            wallet,
            cross_wallet: money(b, "crossWalletBalance").unwrap_or(wallet),
            change: None,
        });
    }
    Some(UserEvent::AccountUpdate(FuturesAccountUpdate {
        event_time_ms: time,
        transact_time_ms: time,
        reason: "RECONCILE".into(),
        balances,
        positions: Vec::new(),
    }))
}

/// Futures `account.position`: the positions as an `ACCOUNT_UPDATE`.
pub(super) fn futures_positions(
    market: Market,
    result: &Value,
    registry: &Registry,
) -> Option<UserEvent> {
    let mut positions = Vec::new();
    let mut time = 0;
    for p in result.as_array()? {
        let p = p.as_object()?;
        let Some(instrument) = p
            .get("symbol")
            .and_then(Value::as_str)
            .and_then(|s| registry.lookup(market, s.as_bytes()))
        else {
            continue;
        };
        let inst = registry.get(instrument);
        time = time.max(p.get("updateTime").and_then(Value::as_u64).unwrap_or(0));
        positions.push(FuturesPosition {
            instrument,
            amount: Qty(fixed(p, "positionAmt", inst.qty_scale)?),
            entry_price: Price(fixed(p, "entryPrice", inst.price_scale).unwrap_or(0)),
            accumulated_realized: Money::ZERO,
            unrealized: money(p, "unRealizedProfit")
                .or_else(|| money(p, "unrealizedProfit"))
                .unwrap_or(Money::ZERO),
            margin_type: p
                .get("marginType")
                .and_then(Value::as_str)
                .and_then(|s| MarginType::parse(s.as_bytes()))
                .unwrap_or(MarginType::Cross),
            isolated_wallet: money(p, "isolatedWallet").unwrap_or(Money::ZERO),
            position_side: p
                .get("positionSide")
                .and_then(Value::as_str)
                .and_then(|s| VenuePositionSide::parse(s.as_bytes()))
                .unwrap_or(VenuePositionSide::Both),
        });
    }
    Some(UserEvent::AccountUpdate(FuturesAccountUpdate {
        event_time_ms: time,
        transact_time_ms: time,
        reason: "RECONCILE".into(),
        balances: Vec::new(),
        positions,
    }))
}

/// A report about tape's own order `o` under venue id `vid` (for a state the venue cannot
/// report any more); the caller sets the exec type and status.
pub(super) fn order_as_report(o: &Order, vid: ClientOrderId, market: Market) -> ExecutionReport {
    ExecutionReport {
        market,
        instrument: o.instrument,
        event_time_ms: 0,
        transact_time_ms: 0,
        client_order_id: vid,
        orig_client_order_id: None,
        order_id: o.venue_order_id.unwrap_or(0),
        side: o.side,
        order_type: o.order_type,
        time_in_force: o.time_in_force,
        qty: o.qty,
        price: o.price,
        stop_price: o.stop_price,
        exec_type: ExecType::Expired,
        status: OrderStatus::Expired,
        reject_reason: None,
        last_qty: Qty::ZERO,
        cum_qty: o.filled,
        last_price: Price(0),
        fee: Money::ZERO,
        fee_asset: None,
        trade_id: None,
        is_maker: false,
        reduce_only: o.reduce_only,
        position_side: VenuePositionSide::Both,
        venue_realized_pnl: None,
        venue_avg_price: None,
        cum_quote: None,
        order_time_ms: None,
        order_list_id: None,
    }
}
