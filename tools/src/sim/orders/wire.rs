//! The JSON the order API sends: responses, user-data events and their envelope. Numbers are
//! written from fixed point at the symbol's scales (asset amounts at 8 decimals), keys in
//! Binance's order.

use std::fmt::{Display, Write};

use tape_core::account::money::div_round;
use tape_core::account::{Money, MONEY_SCALE};
use tape_core::fixed::write_fixed;
use tape_core::instrument::Market;

use super::kinds::{Kind, Status};
use super::request::ApiError;
use super::{money, Order, Position, SymbolSpec, Trade};

/// A JSON object written key by key, in the order given.
pub(crate) struct Json {
    out: String,
    first: bool,
}

impl Json {
    pub fn new() -> Json {
        let mut out = String::with_capacity(512);
        out.push('{');
        Json { out, first: true }
    }

    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        push_str(&mut self.out, k);
        self.out.push(':');
    }

    /// A string value, escaped.
    pub fn str(mut self, k: &str, v: &str) -> Json {
        self.key(k);
        push_str(&mut self.out, v);
        self
    }

    /// A fixed-point value as a decimal string with exactly `scale` decimals.
    pub fn fixed(mut self, k: &str, mantissa: i64, scale: u8) -> Json {
        self.key(k);
        self.out.push('"');
        let _ = write_fixed(&mut self.out, mantissa, scale);
        self.out.push('"');
        self
    }

    /// An asset amount, 8 decimals.
    pub fn money(self, k: &str, m: Money) -> Json {
        self.fixed(k, m.0, MONEY_SCALE)
    }

    /// A bare number.
    pub fn num(mut self, k: &str, v: impl Display) -> Json {
        self.key(k);
        let _ = write!(self.out, "{v}");
        self
    }

    pub fn bool(self, k: &str, v: bool) -> Json {
        self.raw(k, if v { "true" } else { "false" })
    }

    /// A value that is already JSON.
    pub fn raw(mut self, k: &str, v: &str) -> Json {
        self.key(k);
        self.out.push_str(v);
        self
    }

    pub fn end(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

fn push_str(out: &mut String, s: &str) {
    // Serialising a &str cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned()));
}

/// `[a,b,..]` of JSON values.
fn array(items: impl IntoIterator<Item = String>) -> String {
    let mut out = String::from("[");
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&item);
    }
    out.push(']');
    out
}

/// `{"id":ID,"status":200,"result":RESULT}`.
pub(crate) fn response_ok(id: &str, result: &str) -> String {
    format!("{{\"id\":{id},\"status\":200,\"result\":{result}}}")
}

/// `{"id":ID,"status":S,"error":{"code":C,"msg":M}}`, S as [`ApiError::status`] says.
pub(crate) fn response_err(id: &str, e: &ApiError) -> String {
    let error = Json::new().num("code", e.code).str("msg", &e.msg).end();
    let status = e.status();
    format!("{{\"id\":{id},\"status\":{status},\"error\":{error}}}")
}

/// A user-data event in the WebSocket API's envelope.
pub(crate) fn envelope(subscription: u64, event: &str) -> String {
    format!("{{\"subscriptionId\":{subscription},\"event\":{event}}}")
}

/// What one report tells about an order.
pub(crate) enum Exec<'a> {
    New,
    Trade(&'a Trade),
    /// Spot: `cancel_id` is the cancel request's own client id (`c`; the order's is `C`).
    Canceled {
        cancel_id: &'a str,
    },
    Expired,
}

impl Exec<'_> {
    fn wire(&self) -> &'static str {
        match self {
            Exec::New => "NEW",
            Exec::Trade(_) => "TRADE",
            Exec::Canceled { .. } => "CANCELED",
            Exec::Expired => "EXPIRED",
        }
    }
}

/// The order's average fill price at the price scale (0 before any fill).
pub(super) fn avg_price(o: &Order) -> i64 {
    if o.filled.0 == 0 {
        return 0;
    }
    // Σ price × qty ÷ qty is a price the order filled between, so it fits.
    div_round(o.quote_raw, i128::from(o.filled.0))
        .and_then(|v| i64::try_from(v).ok())
        .unwrap_or(i64::MAX)
}

/// Spot `executionReport`.
pub(crate) fn execution_report(spec: &SymbolSpec, o: &Order, x: &Exec<'_>, now_ms: u64) -> String {
    let (ps, qs) = (spec.price_scale, spec.qty_scale);
    let (c, orig) = match x {
        Exec::Canceled { cancel_id } => (*cancel_id, o.client_id.as_str()),
        _ => (o.client_id.as_str(), ""),
    };
    let trade = match x {
        Exec::Trade(t) => Some(*t),
        _ => None,
    };
    let working = o.kind == Kind::Limit
        && !matches!(
            o.status,
            Status::Filled | Status::Canceled | Status::Expired
        );
    let mut j = Json::new()
        .str("e", "executionReport")
        .num("E", now_ms)
        .str("s", &spec.name)
        .str("c", c)
        .str("S", o.side.wire())
        .str("o", o.kind.wire())
        .str("f", o.tif.wire())
        .fixed("q", o.qty.0, qs)
        .fixed("p", o.price.0, ps)
        .fixed("P", 0, ps)
        .fixed("F", 0, qs)
        .num("g", -1)
        .str("C", orig)
        .str("x", x.wire())
        .str("X", o.status.wire())
        .str("r", "NONE")
        .num("i", o.id)
        .fixed("l", trade.map_or(0, |t| t.qty.0), qs)
        .fixed("z", o.filled.0, qs)
        .fixed("L", trade.map_or(0, |t| t.price.0), ps);
    j = match trade {
        Some(t) => j.money("n", t.fee).str("N", &spec.quote),
        None => j.str("n", "0").raw("N", "null"),
    };
    let last_quote = trade.map_or(0, |t| i128::from(t.price.0) * i128::from(t.qty.0));
    j.num("T", now_ms)
        .num(
            "t",
            trade.map_or(-1, |t| i64::try_from(t.id).unwrap_or(i64::MAX)),
        )
        .bool("w", working)
        .bool("m", trade.is_some_and(|t| t.maker))
        .bool("M", false)
        .num("O", o.created_ms)
        .money("Z", money(o.quote_raw, ps + qs))
        .money("Y", money(last_quote, ps + qs))
        .money("Q", Money::ZERO)
        .num("W", o.created_ms)
        .str("V", "NONE")
        .end()
}

/// USD-M / COIN-M `ORDER_TRADE_UPDATE`.
pub(crate) fn order_trade_update(
    spec: &SymbolSpec,
    o: &Order,
    x: &Exec<'_>,
    now_ms: u64,
) -> String {
    let (ps, qs) = (spec.price_scale, spec.qty_scale);
    let trade = match x {
        Exec::Trade(t) => Some(*t),
        _ => None,
    };
    let mut j = Json::new()
        .str("s", &spec.name)
        .str("c", &o.client_id)
        .str("S", o.side.wire())
        .str("o", o.kind.wire())
        .str("f", o.tif.wire())
        .fixed("q", o.qty.0, qs)
        .fixed("p", o.price.0, ps)
        .fixed("ap", avg_price(o), ps)
        .str("sp", "0")
        .str("x", x.wire())
        .str("X", o.status.wire())
        .num("i", o.id)
        .fixed("l", trade.map_or(0, |t| t.qty.0), qs)
        .fixed("z", o.filled.0, qs)
        .fixed("L", trade.map_or(0, |t| t.price.0), ps);
    if let Some(t) = trade {
        j = j.str("N", &spec.quote).money("n", t.fee);
    }
    let o_json = j
        .num("T", now_ms)
        .num("t", trade.map_or(0, |t| t.id))
        .str("b", "0")
        .str("a", "0")
        .bool("m", trade.is_some_and(|t| t.maker))
        .bool("R", o.reduce_only)
        .str("wt", "CONTRACT_PRICE")
        .str("ot", o.kind.wire())
        .str("ps", "BOTH")
        .bool("cp", false)
        .money("rp", trade.map_or(Money::ZERO, |t| t.realized))
        .bool("pP", false)
        .num("si", 0)
        .num("ss", 0)
        .str("V", "NONE")
        .str("pm", "NONE")
        .num("gtd", 0)
        .end();
    Json::new()
        .str("e", "ORDER_TRADE_UPDATE")
        .num("E", now_ms)
        .num("T", now_ms)
        .raw("o", &o_json)
        .end()
}

/// Spot `outboundAccountPosition` with the given free balances (nothing is ever locked).
pub(crate) fn account_position<'a>(
    balances: impl IntoIterator<Item = (&'a str, Money)>,
    now_ms: u64,
) -> String {
    let b = array(balances.into_iter().map(|(asset, free)| {
        Json::new()
            .str("a", asset)
            .money("f", free)
            .money("l", Money::ZERO)
            .end()
    }));
    Json::new()
        .str("e", "outboundAccountPosition")
        .num("E", now_ms)
        .num("u", now_ms)
        .raw("B", &b)
        .end()
}

/// USD-M `ACCOUNT_UPDATE` (reason `ORDER`): the margin asset's wallet and one position.
pub(crate) fn account_update(
    spec: &SymbolSpec,
    wallet: Money,
    pos: &Position,
    now_ms: u64,
) -> String {
    let (ps, qs) = (spec.price_scale, spec.qty_scale);
    let b = Json::new()
        .str("a", &spec.quote)
        .money("wb", wallet)
        .money("cw", wallet)
        .str("bc", "0")
        .end();
    let entry = pos.entry_price();
    let p = Json::new()
        .str("s", &spec.name)
        .fixed("pa", pos.qty, qs)
        .fixed("ep", entry, ps)
        .fixed("bep", entry, ps)
        .money("cr", pos.realized)
        .money("up", pos.unrealized(ps + qs))
        .str("mt", "cross")
        .str("iw", "0")
        .str("ps", "BOTH")
        .end();
    let a = Json::new()
        .str("m", "ORDER")
        .raw("B", &array([b]))
        .raw("P", &array([p]))
        .end();
    Json::new()
        .str("e", "ACCOUNT_UPDATE")
        .num("E", now_ms)
        .num("T", now_ms)
        .raw("a", &a)
        .end()
}

/// The `result` of `order.place` on `market`: spot's FULL response (with `fills`), or the
/// futures order object.
pub(crate) fn place_result(
    market: Market,
    spec: &SymbolSpec,
    o: &Order,
    trades: &[Trade],
    now_ms: u64,
) -> String {
    if market.is_futures() {
        return futures_order(market, spec, o, now_ms);
    }
    let (ps, qs) = (spec.price_scale, spec.qty_scale);
    let fills = array(trades.iter().map(|t| {
        Json::new()
            .fixed("price", t.price.0, ps)
            .fixed("qty", t.qty.0, qs)
            .money("commission", t.fee)
            .str("commissionAsset", &spec.quote)
            .num("tradeId", t.id)
            .end()
    }));
    spot_order(spec, o, now_ms)
        .num("workingTime", o.created_ms)
        .str("selfTradePreventionMode", "NONE")
        .raw("fills", &fills)
        .end()
}

/// The `result` of `order.cancel`.
pub(crate) fn cancel_result(
    market: Market,
    spec: &SymbolSpec,
    o: &Order,
    cancel_id: &str,
    now_ms: u64,
) -> String {
    if market.is_futures() {
        return futures_order(market, spec, o, now_ms);
    }
    let (ps, qs) = (spec.price_scale, spec.qty_scale);
    Json::new()
        .str("symbol", &spec.name)
        .str("origClientOrderId", &o.client_id)
        .num("orderId", o.id)
        .num("orderListId", -1)
        .str("clientOrderId", cancel_id)
        .num("transactTime", now_ms)
        .fixed("price", o.price.0, ps)
        .fixed("origQty", o.qty.0, qs)
        .fixed("executedQty", o.filled.0, qs)
        .money("cummulativeQuoteQty", money(o.quote_raw, ps + qs))
        .str("status", o.status.wire())
        .str("timeInForce", o.tif.wire())
        .str("type", o.kind.wire())
        .str("side", o.side.wire())
        .str("selfTradePreventionMode", "NONE")
        .end()
}

/// The fields spot's order responses share.
fn spot_order(spec: &SymbolSpec, o: &Order, now_ms: u64) -> Json {
    let (ps, qs) = (spec.price_scale, spec.qty_scale);
    Json::new()
        .str("symbol", &spec.name)
        .num("orderId", o.id)
        .num("orderListId", -1)
        .str("clientOrderId", &o.client_id)
        .num("transactTime", now_ms)
        .fixed("price", o.price.0, ps)
        .fixed("origQty", o.qty.0, qs)
        .fixed("executedQty", o.filled.0, qs)
        .money("origQuoteOrderQty", Money::ZERO)
        .money("cummulativeQuoteQty", money(o.quote_raw, ps + qs))
        .str("status", o.status.wire())
        .str("timeInForce", o.tif.wire())
        .str("type", o.kind.wire())
        .str("side", o.side.wire())
}

/// The futures order object (`order.place`, `order.cancel`). COIN-M's `cumBase` is left out:
/// inverse contract values are not modelled.
fn futures_order(market: Market, spec: &SymbolSpec, o: &Order, now_ms: u64) -> String {
    let (ps, qs) = (spec.price_scale, spec.qty_scale);
    let mut j = Json::new()
        .num("orderId", o.id)
        .str("symbol", &spec.name)
        .str("status", o.status.wire())
        .str("clientOrderId", &o.client_id)
        .fixed("price", o.price.0, ps)
        .fixed("avgPrice", avg_price(o), ps)
        .fixed("origQty", o.qty.0, qs)
        .fixed("executedQty", o.filled.0, qs)
        .fixed("cumQty", o.filled.0, qs);
    if market == Market::UsdM {
        j = j.money("cumQuote", money(o.quote_raw, ps + qs));
    }
    j.str("timeInForce", o.tif.wire())
        .str("type", o.kind.wire())
        .bool("reduceOnly", o.reduce_only)
        .bool("closePosition", false)
        .str("side", o.side.wire())
        .str("positionSide", "BOTH")
        .str("stopPrice", "0")
        .str("workingType", "CONTRACT_PRICE")
        .bool("priceProtect", false)
        .str("origType", o.kind.wire())
        .str("selfTradePreventionMode", "NONE")
        .num("goodTillDate", 0)
        .num("updateTime", now_ms)
        .end()
}
