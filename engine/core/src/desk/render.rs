//! The desk's JSON: replies, private channel updates and snapshots. Field order is fixed so
//! equal inputs give byte-identical text (the digest covers it). Prices, quantities and money
//! are decimal strings, like the public channels.

use super::{Command, PrivateChannel};
use crate::account::advanced::{AdvancedKind, AdvancedState, AdvancedUpdate, TrailingUpdate};
use crate::account::{
    Account, AccountEvent, AdvancedId, Balance, ClientOrderId, Money, Order, OrderUpdate,
    Portfolio, PositionUpdate, RiskAlert, MONEY_SCALE,
};
use crate::input::Nanos;
use crate::instrument::{InstrumentId, Registry};
use crate::wire::JsonBuf;

/// What an accepted command produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ack {
    /// An order (and the bracket around it).
    Order(ClientOrderId, Option<AdvancedId>),
    /// An OCO or trailing stop.
    Advanced(AdvancedId),
    /// A cancel was sent.
    Canceled,
    /// A message was broadcast.
    Published,
    /// `cancel_all`: this many cancels were sent.
    CanceledAll(usize),
}

/// The channel an account event goes to; `None` for gateway commands (not for clients).
pub(super) fn channel_of(ev: &AccountEvent) -> Option<PrivateChannel> {
    Some(match ev {
        AccountEvent::Order(_)
        | AccountEvent::Advanced(_)
        | AccountEvent::Trailing(_)
        | AccountEvent::OrderList(_)
        | AccountEvent::CommandFailed { .. } => PrivateChannel::Orders,
        AccountEvent::Position(_) => PrivateChannel::Positions,
        AccountEvent::Portfolio(_) | AccountEvent::Balance(_) => PrivateChannel::Portfolio,
        AccountEvent::Risk(_) => PrivateChannel::RiskAlerts,
        AccountEvent::Command(_) => return None,
    })
}

fn id_field(j: &mut JsonBuf, id: Option<&str>) {
    if let Some(id) = id {
        j.raw(",\"id\":");
        j.raw(id);
    }
}

fn money(j: &mut JsonBuf, m: Money) {
    j.fixed(m.0, MONEY_SCALE);
}

fn boolean(j: &mut JsonBuf, b: bool) {
    j.raw(if b { "true" } else { "false" });
}

fn symbol(j: &mut JsonBuf, registry: &Registry, id: InstrumentId) {
    if (id.0 as usize) < registry.len() {
        let i = registry.get(id);
        j.raw("\"market\":\"");
        j.raw(i.market.as_str());
        j.raw("\",\"symbol\":");
        j.string(&i.symbol);
    } else {
        j.raw("\"market\":null,\"symbol\":null");
    }
}

fn opt_price(j: &mut JsonBuf, v: Option<i64>, scale: u8) {
    match v {
        Some(v) => j.fixed(v, scale),
        None => j.raw("null"),
    }
}

/// `{"type":"error","code":..,"message":..,"id":..}`.
pub(super) fn error(j: &mut JsonBuf, code: u16, message: &str, id: Option<&str>) -> String {
    j.clear();
    j.raw("{\"type\":\"error\"");
    id_field(j, id);
    j.raw(",\"code\":");
    j.u64(u64::from(code));
    j.raw(",\"message\":");
    j.string(message);
    j.raw("}");
    j.as_str().to_owned()
}

/// The reply to an accepted command.
pub(super) fn ack(
    j: &mut JsonBuf,
    id: Option<&str>,
    cmd: &Command,
    ack: &Ack,
    now: Nanos,
) -> String {
    j.clear();
    j.raw("{\"type\":\"ack\"");
    id_field(j, id);
    j.raw(",\"request\":\"");
    j.raw(cmd.kind());
    j.raw("\",\"recv_ns\":");
    j.u64(now.0);
    match ack {
        Ack::Order(o, adv) => {
            j.raw(",\"client_order_id\":");
            j.string(o.as_str());
            if let Some(a) = adv {
                j.raw(",\"advanced_id\":");
                j.string(&a.to_string());
            }
        }
        Ack::Advanced(a) => {
            j.raw(",\"advanced_id\":");
            j.string(&a.to_string());
        }
        Ack::CanceledAll(n) => {
            j.raw(",\"canceled\":");
            j.u64(*n as u64);
        }
        Ack::Canceled | Ack::Published => {}
    }
    j.raw("}");
    j.as_str().to_owned()
}

fn head(j: &mut JsonBuf, ch: PrivateChannel, seq: u64, now: Nanos) {
    j.clear();
    j.raw("{\"type\":\"update\",\"channel\":\"");
    j.raw(ch.as_str());
    j.raw("\",\"seq\":");
    j.u64(seq);
    j.raw(",\"recv_ns\":");
    j.u64(now.0);
    j.raw(",\"data\":");
}

/// A `signal` or `bot_status` message: stamped with the engine's receive time and the
/// publisher's name.
pub(super) fn published(
    j: &mut JsonBuf,
    ch: PrivateChannel,
    user: &str,
    data: &str,
    seq: u64,
    now: Nanos,
) -> String {
    head(j, ch, seq, now);
    j.raw("{\"publisher\":");
    j.string(user);
    j.raw(",\"payload\":");
    j.raw(data);
    j.raw("}}");
    j.as_str().to_owned()
}

/// An account event on its channel.
pub(super) fn event(
    j: &mut JsonBuf,
    ev: &AccountEvent,
    seq: u64,
    now: Nanos,
    registry: &Registry,
) -> String {
    let ch = channel_of(ev).unwrap_or(PrivateChannel::Orders);
    head(j, ch, seq, now);
    match ev {
        AccountEvent::Order(u) => order_update(j, u, registry),
        AccountEvent::Advanced(a) => advanced(j, a, registry),
        AccountEvent::Trailing(t) => trailing(j, t, registry),
        AccountEvent::OrderList(l) => {
            j.raw("{\"event\":\"order_list\",");
            symbol(j, registry, l.instrument);
            j.raw(",\"list_client_order_id\":");
            j.string(l.list_client_order_id.as_str());
            j.raw(",\"list_status\":");
            j.string(&l.list_order_status);
            j.raw("}");
        }
        AccountEvent::CommandFailed {
            client_order_id,
            reason,
        } => {
            j.raw("{\"event\":\"command_failed\",\"client_order_id\":");
            j.string(client_order_id.as_str());
            j.raw(",\"reason\":");
            j.string(reason);
            j.raw("}");
        }
        AccountEvent::Position(p) => position(j, p, registry),
        AccountEvent::Portfolio(p) => portfolio(j, p),
        AccountEvent::Balance(b) => balance(j, b),
        AccountEvent::Risk(r) => risk(j, r, registry),
        AccountEvent::Command(_) => j.raw("null"),
    }
    j.raw("}");
    j.as_str().to_owned()
}

fn order_fields(j: &mut JsonBuf, o: &Order, registry: &Registry) {
    let (ps, qs) = (o.price_scale, o.qty_scale);
    symbol(j, registry, o.instrument);
    j.raw(",\"client_order_id\":");
    j.string(o.client_order_id.as_str());
    j.raw(",\"venue_order_id\":");
    match o.venue_order_id {
        Some(v) => j.u64(v),
        None => j.raw("null"),
    }
    j.raw(",\"side\":\"");
    j.raw(o.side.as_str());
    j.raw("\",\"order_type\":\"");
    j.raw(o.order_type.as_str());
    j.raw("\",\"time_in_force\":\"");
    j.raw(o.time_in_force.as_str());
    j.raw("\",\"status\":\"");
    j.raw(o.status.as_str());
    j.raw("\",\"price\":");
    opt_price(j, (o.price.0 != 0).then_some(o.price.0), ps);
    j.raw(",\"stop_price\":");
    opt_price(j, (o.stop_price.0 != 0).then_some(o.stop_price.0), ps);
    j.raw(",\"qty\":");
    j.fixed(o.qty.0, qs);
    j.raw(",\"filled\":");
    j.fixed(o.filled.0, qs);
    j.raw(",\"avg_price\":");
    opt_price(j, o.avg_price().map(|p| p.0), ps);
    j.raw(",\"fees\":");
    money(j, o.fees);
    j.raw(",\"fee_asset\":");
    match &o.fee_asset {
        Some(a) => j.string(a.as_str()),
        None => j.raw("null"),
    }
    j.raw(",\"reduce_only\":");
    boolean(j, o.reduce_only);
}

fn order_update(j: &mut JsonBuf, u: &OrderUpdate, registry: &Registry) {
    j.raw("{\"event\":\"order\",");
    order_fields(j, &u.order, registry);
    j.raw(",\"fill\":");
    match &u.fill {
        Some(f) => {
            j.raw("{\"price\":");
            j.fixed(f.price.0, u.order.price_scale);
            j.raw(",\"qty\":");
            j.fixed(f.qty.0, u.order.qty_scale);
            j.raw(",\"fee\":");
            money(j, f.fee);
            j.raw(",\"maker\":");
            boolean(j, f.is_maker);
            j.raw(",\"trade_id\":");
            match f.trade_id {
                Some(t) => j.u64(t),
                None => j.raw("null"),
            }
            j.raw("}");
        }
        None => j.raw("null"),
    }
    j.raw("}");
}

fn scales(registry: &Registry, id: InstrumentId) -> (u8, u8) {
    if (id.0 as usize) < registry.len() {
        let i = registry.get(id);
        (i.price_scale, i.qty_scale)
    } else {
        (0, 0)
    }
}

fn advanced(j: &mut JsonBuf, a: &AdvancedUpdate, registry: &Registry) {
    let (_, qs) = scales(registry, a.instrument);
    j.raw("{\"event\":\"advanced\",\"advanced_id\":");
    j.string(&a.id.to_string());
    j.raw(",\"kind\":\"");
    j.raw(match a.kind {
        AdvancedKind::Bracket => "bracket",
        AdvancedKind::Oco => "oco",
        AdvancedKind::TrailingStop => "trailing_stop",
    });
    j.raw("\",\"state\":\"");
    j.raw(match a.state {
        AdvancedState::WaitingEntry => "waiting_entry",
        AdvancedState::Armed => "armed",
        AdvancedState::Triggered => "triggered",
        AdvancedState::Done => "done",
        AdvancedState::Canceled => "canceled",
    });
    j.raw("\",");
    symbol(j, registry, a.instrument);
    j.raw(",\"side\":\"");
    j.raw(a.side.as_str());
    j.raw("\",\"qty\":");
    j.fixed(a.qty.0, qs);
    j.raw(",\"reason\":\"");
    j.raw(a.reason);
    j.raw("\"}");
}

fn trailing(j: &mut JsonBuf, t: &TrailingUpdate, registry: &Registry) {
    let (ps, _) = scales(registry, t.instrument);
    j.raw("{\"event\":\"trailing\",\"advanced_id\":");
    j.string(&t.id.to_string());
    j.raw(",");
    symbol(j, registry, t.instrument);
    j.raw(",\"peak\":");
    j.fixed(t.peak.0, ps);
    j.raw(",\"stop\":");
    j.fixed(t.stop.0, ps);
    j.raw("}");
}

fn position(j: &mut JsonBuf, p: &PositionUpdate, registry: &Registry) {
    let (ps, qs) = scales(registry, p.instrument);
    j.raw("{\"event\":\"position\",");
    symbol(j, registry, p.instrument);
    j.raw(",\"side\":\"");
    j.raw(p.side.as_str());
    j.raw("\",\"qty\":");
    j.fixed(p.qty.0, qs);
    j.raw(",\"avg_entry_price\":");
    opt_price(j, p.avg_entry_price.map(|v| v.0), ps);
    j.raw(",\"mark\":");
    opt_price(j, p.mark.map(|v| v.0), ps);
    j.raw(",\"realized_pnl\":");
    money(j, p.realized_pnl);
    j.raw(",\"unrealized_pnl\":");
    money(j, p.unrealized_pnl);
    j.raw(",\"fees\":");
    money(j, p.fees);
    j.raw(",\"leverage\":");
    match p.leverage {
        Some(l) => j.u64(u64::from(l)),
        None => j.raw("null"),
    }
    j.raw(",\"liquidation_price\":");
    opt_price(j, p.liquidation_price.map(|v| v.0), ps);
    j.raw("}");
}

fn portfolio(j: &mut JsonBuf, p: &Portfolio) {
    j.raw("{\"event\":\"portfolio\",\"total_balance\":");
    money(j, p.total_balance);
    j.raw(",\"realized_pnl\":");
    money(j, p.realized_pnl);
    j.raw(",\"unrealized_pnl\":");
    money(j, p.unrealized_pnl);
    j.raw(",\"total_pnl\":");
    money(j, p.total_pnl);
    j.raw(",\"open_positions\":");
    j.u64(u64::from(p.open_positions));
    j.raw(",\"equity_peak\":");
    money(j, p.equity_peak);
    j.raw(",\"drawdown\":");
    money(j, p.drawdown);
    j.raw("}");
}

fn balance(j: &mut JsonBuf, b: &Balance) {
    j.raw("{\"event\":\"balance\",\"asset\":");
    j.string(b.asset.as_str());
    j.raw(",\"free\":");
    money(j, b.free);
    j.raw(",\"locked\":");
    money(j, b.locked);
    j.raw(",\"fees_paid\":");
    money(j, b.fees_paid);
    j.raw("}");
}

fn risk(j: &mut JsonBuf, r: &RiskAlert, registry: &Registry) {
    j.raw("{\"event\":\"risk_alert\",\"alert_type\":\"");
    j.raw(r.kind.as_str());
    j.raw("\",\"severity\":\"");
    j.raw(r.severity.as_str());
    j.raw("\",\"message\":");
    j.string(&r.message);
    j.raw(",\"limit\":");
    j.string(&r.limit.to_string());
    j.raw(",\"current\":");
    j.string(&r.current.to_string());
    j.raw(",");
    match r.instrument {
        Some(i) => symbol(j, registry, i),
        None => j.raw("\"market\":null,\"symbol\":null"),
    }
    j.raw(",\"at_ns\":");
    j.u64(r.at.0);
    j.raw("}");
}

fn snapshot_head(j: &mut JsonBuf, kind: &str, id: Option<&str>, now: Nanos) {
    j.clear();
    j.raw("{\"type\":\"");
    j.raw(kind);
    j.raw("\"");
    id_field(j, id);
    j.raw(",\"recv_ns\":");
    j.u64(now.0);
    j.raw(",\"data\":");
}

/// Appends `items` as a JSON array, each rendered by `each`.
fn array<T>(
    j: &mut JsonBuf,
    items: impl Iterator<Item = T>,
    mut each: impl FnMut(&mut JsonBuf, T),
) {
    j.raw("[");
    for (k, item) in items.enumerate() {
        if k > 0 {
            j.raw(",");
        }
        each(j, item);
    }
    j.raw("]");
}

/// `get_orders`: live orders, in client-id order.
pub(super) fn orders_snapshot(
    j: &mut JsonBuf,
    a: &Account,
    id: Option<&str>,
    now: Nanos,
    registry: &Registry,
) -> String {
    snapshot_head(j, "orders", id, now);
    array(j, a.orders().live(), |j, o| {
        j.raw("{");
        order_fields(j, o, registry);
        j.raw("}");
    });
    j.raw("}");
    j.as_str().to_owned()
}

/// `get_positions`: every position with a quantity or history, in instrument order.
pub(super) fn positions_snapshot(
    j: &mut JsonBuf,
    a: &Account,
    id: Option<&str>,
    now: Nanos,
    registry: &Registry,
) -> String {
    snapshot_head(j, "positions", id, now);
    let updates = a.positions().filter_map(|p| p.snapshot().ok());
    array(j, updates, |j, u| position(j, &u, registry));
    j.raw("}");
    j.as_str().to_owned()
}

/// `get_portfolio`: the summary and balances.
pub(super) fn portfolio_snapshot(
    j: &mut JsonBuf,
    a: &Account,
    id: Option<&str>,
    now: Nanos,
) -> String {
    snapshot_head(j, "portfolio", id, now);
    j.raw("{\"summary\":");
    portfolio(j, a.portfolio());
    j.raw(",\"balances\":");
    array(j, a.balances().iter(), balance);
    j.raw("}}");
    j.as_str().to_owned()
}

/// A gateway note on the user's `orders` channel: a venue error naming the Binance code, or
/// a reconciliation's outcome.
pub(super) fn gateway_note(
    j: &mut JsonBuf,
    n: &super::gateway::Note,
    seq: u64,
    now: Nanos,
) -> String {
    use super::gateway::Note;
    head(j, PrivateChannel::Orders, seq, now);
    match n {
        Note::VenueError {
            client_order_id,
            method,
            status,
            code,
            msg,
            ..
        } => {
            j.raw("{\"event\":\"venue_error\",\"method\":\"");
            j.raw(method);
            j.raw("\"");
            if let Some(id) = client_order_id {
                j.raw(",\"client_order_id\":");
                j.string(id.as_str());
            }
            j.raw(",\"status\":");
            j.u64(*status);
            j.raw(",\"code\":");
            j.raw(&code.to_string());
            j.raw(",\"error\":\"");
            j.raw(super::gateway::venue_errors::name(*code));
            j.raw("\",\"message\":");
            j.string(msg);
            j.raw("}}");
        }
        Note::Reconciled {
            trigger,
            changes,
            open_at_venue,
            ..
        } => {
            j.raw("{\"event\":\"reconciled\",\"trigger\":\"");
            j.raw(trigger.as_str());
            j.raw("\",\"open_at_venue\":");
            j.u64(*open_at_venue as u64);
            let list = |j: &mut JsonBuf, k: &str, ids: &[crate::account::ClientOrderId]| {
                j.raw(",\"");
                j.raw(k);
                j.raw("\":[");
                for (i, id) in ids.iter().enumerate() {
                    if i > 0 {
                        j.raw(",");
                    }
                    j.string(id.as_str());
                }
                j.raw("]");
            };
            list(j, "adopted", &changes.adopted);
            list(j, "filled", &changes.filled);
            list(j, "still_open", &changes.still_open);
            j.raw(",\"closed\":[");
            for (i, (id, st)) in changes.closed.iter().enumerate() {
                if i > 0 {
                    j.raw(",");
                }
                j.raw("{\"client_order_id\":");
                j.string(id.as_str());
                j.raw(",\"status\":\"");
                j.raw(st.as_str());
                j.raw("\"}");
            }
            j.raw("]}}");
        }
        Note::RateAlert { .. } => j.raw("{}}"),
    }
    j.as_str().to_owned()
}
