//! The WebSocket API's query methods: `order.status`, `openOrders.status`, spot
//! `account.status`, futures `account.position` and `account.balance`, in Binance's response
//! shapes; and the request parsing of every method beyond placing and cancelling (the
//! futures listen-key methods, and spot's `orderList.place.oco`, which the sim refuses).

use std::collections::BTreeMap;

use tape_core::account::money::apply_bps;
use tape_core::account::Money;
use tape_core::instrument::Market;

use super::kinds::{Kind, Status};
use super::request::{order_ref, ApiError, Call, Params};
use super::wire::Json;
use super::{money, Order, SimAccount, SymbolSpec, START_BALANCE};

/// Closed orders `order.status` still finds, per account; older ones are forgotten.
pub(crate) const MAX_CLOSED: usize = 10_000;

/// `order.status` parameters: the symbol and the order id and/or original client id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueryParams {
    pub symbol: String,
    pub order_id: Option<u64>,
    pub orig_client_id: Option<String>,
}

/// Parses the methods `request::call` leaves to this module; `None` for a method the sim
/// does not serve on `market`.
pub(super) fn call(method: &str, p: &Params<'_>, market: Market) -> Option<Result<Call, ApiError>> {
    let futures = market.is_futures();
    Some(match method {
        "order.status" => order_status(p).map(Call::OrderStatus),
        // Binance's futures WebSocket APIs have no openOrders.status (open orders are a
        // REST read there), so neither has the sim's.
        "openOrders.status" if !futures => p
            .only(&["symbol"])
            .and_then(|()| optional_symbol(p))
            .map(Call::OpenOrders),
        "account.status" if !futures => p.only(&["omitZeroBalances"]).and_then(|()| {
            match p.text("omitZeroBalances")?.as_deref() {
                None | Some("false") => Ok(Call::AccountStatus(false)),
                Some("true") => Ok(Call::AccountStatus(true)),
                Some(_) => Err(ApiError::illegal("omitZeroBalances", "^(true|false)$")),
            }
        }),
        "account.position" if futures => p
            .only(&["symbol"])
            .and_then(|()| optional_symbol(p))
            .map(Call::AccountPosition),
        "account.balance" if futures => p.only(&[]).map(|()| Call::AccountBalance),
        // Spot removed listen keys (2026-02-20): there these are unknown methods.
        "userDataStream.start" if futures => p.only(&[]).map(|()| Call::ListenKeyStart),
        "userDataStream.ping" if futures => p.only(&["listenKey"]).map(|()| Call::ListenKeyPing),
        "userDataStream.stop" if futures => p.only(&["listenKey"]).map(|()| Call::ListenKeyStop),
        "orderList.place.oco" if !futures => Err(oco_refused(p)),
        _ => return None,
    })
}

fn optional_symbol(p: &Params<'_>) -> Result<Option<String>, ApiError> {
    match p.text("symbol")? {
        None => Ok(None),
        Some(_) => p.symbol().map(Some),
    }
}

fn order_status(p: &Params<'_>) -> Result<QueryParams, ApiError> {
    p.only(&["symbol", "orderId", "origClientOrderId"])?;
    let (symbol, order_id, orig_client_id) = order_ref(p)?;
    Ok(QueryParams {
        symbol,
        order_id,
        orig_client_id,
    })
}

/// `orderList.place.oco`: every OCO has a stop leg (`STOP_LOSS`, `STOP_LOSS_LIMIT`,
/// `TAKE_PROFIT`, `TAKE_PROFIT_LIMIT`), and the sim's matching has no stop orders (nor
/// `LIMIT_MAKER`), so it refuses every OCO rather than pretend. Missing mandatory
/// parameters still get Binance's -1102 first.
fn oco_refused(p: &Params<'_>) -> ApiError {
    for name in ["symbol", "side", "quantity", "aboveType", "belowType"] {
        match p.text(name) {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return ApiError::missing(name),
        }
    }
    ApiError::new(
        -1020,
        "This operation is not supported: the sim's matching has no stop or LIMIT_MAKER \
         orders, so it places no OCO order lists.",
    )
}

impl SimAccount {
    /// Keeps a closed order for `order.status`, forgetting the oldest beyond [`MAX_CLOSED`].
    pub(super) fn retire(&mut self, mut o: Order, now_ms: u64) {
        o.updated_ms = now_ms;
        self.closed.insert(o.id, o);
        while self.closed.len() > MAX_CLOSED {
            self.closed.pop_first();
        }
    }

    /// `order.status` of an order of symbol `sym`, resting or closed, by order id and/or
    /// original client id (both must match when both are given; by client id the newest
    /// order wins, as client ids are only unique among open orders).
    ///
    /// # Errors
    /// -2013 when no order matches.
    pub fn order_status(
        &self,
        spec: &SymbolSpec,
        sym: u32,
        q: &QueryParams,
    ) -> Result<String, ApiError> {
        let matches = |o: &&Order| {
            o.sym == sym
                && q.order_id.is_none_or(|id| id == o.id)
                && q.orig_client_id.as_ref().is_none_or(|c| *c == o.client_id)
        };
        let found = match q.order_id {
            Some(id) => self
                .resting
                .get(&id)
                .or_else(|| self.closed.get(&id))
                .filter(matches),
            None => {
                let open = self.resting.values().rev().find(matches);
                open.or_else(|| self.closed.values().rev().find(matches))
            }
        };
        let o = found.ok_or_else(|| ApiError::new(-2013, "Order does not exist."))?;
        Ok(order_json(self.market, spec, o))
    }

    /// `openOrders.status`: the resting orders (of one symbol when `only` is given), oldest
    /// first, in `order.status`'s shape.
    pub fn open_orders(&self, specs: &[SymbolSpec], only: Option<u32>) -> String {
        array(
            self.resting
                .values()
                .filter(|o| only.is_none_or(|s| s == o.sym))
                .filter_map(|o| Some(order_json(self.market, specs.get(o.sym as usize)?, o))),
        )
    }

    /// Spot `account.status`: commissions and the balances of every asset of `specs` (the
    /// market's symbols); nothing is ever locked.
    pub fn account_status(&self, specs: &[&SymbolSpec], omit_zero: bool, now_ms: u64) -> String {
        let mut assets: Vec<&str> = specs
            .iter()
            .flat_map(|s| [s.base.as_str(), s.quote.as_str()])
            .collect();
        assets.sort_unstable();
        assets.dedup();
        let balances = array(assets.into_iter().filter_map(|a| {
            let free = self.balances.get(a).copied().unwrap_or(START_BALANCE);
            (!omit_zero || free != Money::ZERO).then(|| {
                Json::new()
                    .str("asset", a)
                    .money("free", free)
                    .money("locked", Money::ZERO)
                    .end()
            })
        }));
        let rate = |bps: i64| apply_bps(Money(100_000_000), bps).unwrap_or(Money::ZERO);
        let rates = Json::new()
            .money("maker", rate(self.fees.maker_bps))
            .money("taker", rate(self.fees.taker_bps))
            .money("buyer", Money::ZERO)
            .money("seller", Money::ZERO)
            .end();
        Json::new()
            .num("makerCommission", self.fees.maker_bps)
            .num("takerCommission", self.fees.taker_bps)
            .num("buyerCommission", 0)
            .num("sellerCommission", 0)
            .bool("canTrade", true)
            .bool("canWithdraw", true)
            .bool("canDeposit", true)
            .raw("commissionRates", &rates)
            .bool("brokered", false)
            .bool("requireSelfTradePrevention", false)
            .bool("preventSor", false)
            .num("updateTime", now_ms)
            .str("accountType", "SPOT")
            .raw("balances", &balances)
            .raw("permissions", "[\"SPOT\"]")
            .num("uid", 0)
            .end()
    }

    /// Futures `account.position`: one entry per symbol of `specs` (`(index, spec)`), flat
    /// ones included, one-way (`BOTH`), cross margin. The mark price is the last fill price
    /// (the sim has no mark price stream of its own).
    pub fn account_position(&self, specs: &[(u32, &SymbolSpec)]) -> String {
        array(specs.iter().map(|&(sym, spec)| {
            let (ps, qs) = (spec.price_scale, spec.qty_scale);
            let pos = self.positions.get(&sym).copied().unwrap_or_default();
            let entry = pos.entry_price();
            let notional = money(i128::from(pos.last.0) * i128::from(pos.qty), ps + qs);
            let mut j = Json::new()
                .fixed("entryPrice", entry, ps)
                .fixed("breakEvenPrice", entry, ps)
                .str("marginType", "cross")
                .str("isAutoAddMargin", "false")
                .money("isolatedMargin", Money::ZERO)
                .str("leverage", "20")
                .str("liquidationPrice", "0")
                .fixed("markPrice", pos.last.0, ps);
            j = if self.market == Market::UsdM {
                j.str("maxNotionalValue", "1000000000")
                    .fixed("positionAmt", pos.qty, qs)
                    .money("notional", notional)
            } else {
                j.str("maxQty", "1000000000")
                    .fixed("positionAmt", pos.qty, qs)
                    .money("notionalValue", notional)
            };
            j.money("isolatedWallet", Money::ZERO)
                .str("symbol", &spec.name)
                .money("unRealizedProfit", pos.unrealized(ps + qs))
                .str("positionSide", "BOTH")
                .num(
                    "updateTime",
                    self.position_times.get(&sym).copied().unwrap_or(0),
                )
                .end()
        }))
    }

    /// Futures `account.balance` (USD-M's or COIN-M's shape): one entry per margin asset of
    /// `specs` (their quote assets; COIN-M contracts are treated as linear, margined in
    /// `USD`), the wallet as it stands and the unrealized PnL of the positions margined in
    /// it. No margin is reserved: the available balance is wallet + unrealized PnL.
    pub fn account_balance(&self, specs: &[(u32, &SymbolSpec)], now_ms: u64) -> String {
        let mut by_asset: BTreeMap<&str, Money> = BTreeMap::new();
        for &(sym, spec) in specs {
            let upnl = self.positions.get(&sym).map_or(Money::ZERO, |p| {
                p.unrealized(spec.price_scale + spec.qty_scale)
            });
            let e = by_asset.entry(spec.quote.as_str()).or_insert(Money::ZERO);
            *e = Money(e.0.saturating_add(upnl.0));
        }
        array(by_asset.into_iter().map(|(asset, upnl)| {
            let wallet = self.wallets.get(asset).copied().unwrap_or(START_BALANCE);
            let available = Money(wallet.0.saturating_add(upnl.0));
            let j = Json::new()
                .str("accountAlias", "sim")
                .str("asset", asset)
                .money("balance", wallet);
            if self.market == Market::UsdM {
                j.money("crossWalletBalance", wallet)
                    .money("crossUnPnl", upnl)
                    .money("availableBalance", available)
                    .money("maxWithdrawAmount", available)
                    .bool("marginAvailable", true)
                    .num("updateTime", now_ms)
                    .end()
            } else {
                // COIN-M's shape.
                j.money("withdrawAvailable", available)
                    .money("crossWalletBalance", wallet)
                    .money("crossUnPnl", upnl)
                    .money("availableBalance", available)
                    .num("updateTime", now_ms)
                    .end()
            }
        }))
    }
}

/// An order as `order.status` and `openOrders.status` show it on `market`.
pub(super) fn order_json(market: Market, spec: &SymbolSpec, o: &Order) -> String {
    let (ps, qs) = (spec.price_scale, spec.qty_scale);
    let quote = money(o.quote_raw, ps + qs);
    if !market.is_futures() {
        let working =
            o.kind == Kind::Limit && matches!(o.status, Status::New | Status::PartiallyFilled);
        return Json::new()
            .str("symbol", &spec.name)
            .num("orderId", o.id)
            .num("orderListId", -1)
            .str("clientOrderId", &o.client_id)
            .fixed("price", o.price.0, ps)
            .fixed("origQty", o.qty.0, qs)
            .fixed("executedQty", o.filled.0, qs)
            .money("cummulativeQuoteQty", quote)
            .str("status", o.status.wire())
            .str("timeInForce", o.tif.wire())
            .str("type", o.kind.wire())
            .str("side", o.side.wire())
            .fixed("stopPrice", 0, ps)
            .fixed("icebergQty", 0, qs)
            .num("time", o.created_ms)
            .num("updateTime", o.updated_ms)
            .bool("isWorking", working)
            .num("workingTime", o.created_ms)
            .money("origQuoteOrderQty", Money::ZERO)
            .str("selfTradePreventionMode", "NONE")
            .end();
    }
    let mut j = Json::new()
        .fixed("avgPrice", super::wire::avg_price(o), ps)
        .str("clientOrderId", &o.client_id);
    if market == Market::UsdM {
        j = j.money("cumQuote", quote);
    }
    j.fixed("executedQty", o.filled.0, qs)
        .num("orderId", o.id)
        .fixed("origQty", o.qty.0, qs)
        .str("origType", o.kind.wire())
        .fixed("price", o.price.0, ps)
        .bool("reduceOnly", o.reduce_only)
        .str("side", o.side.wire())
        .str("positionSide", "BOTH")
        .str("status", o.status.wire())
        .str("stopPrice", "0")
        .bool("closePosition", false)
        .str("symbol", &spec.name)
        .num("time", o.created_ms)
        .str("timeInForce", o.tif.wire())
        .str("type", o.kind.wire())
        .bool("priceProtect", false)
        .num("updateTime", o.updated_ms)
        .str("workingType", "CONTRACT_PRICE")
        .str("selfTradePreventionMode", "NONE")
        .num("goodTillDate", 0)
        .str("priceMatch", "NONE")
        .end()
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

/// Futures `listenKeyExpired`, the last event of an expired key's connections. Binance's
/// documentation shows its `E` as a string (`"E":"1736996475556"`), unlike every other
/// event's; the sim sends it so.
pub(crate) fn listen_key_expired(key: &str, now_ms: u64) -> String {
    Json::new()
        .str("e", "listenKeyExpired")
        .str("E", &now_ms.to_string())
        .str("listenKey", key)
        .end()
}
