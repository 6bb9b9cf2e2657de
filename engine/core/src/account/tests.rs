//! Shared helpers for the account tests.

use super::event::ExecutionReport;
use super::ids::{Asset, ClientOrderId};
use super::instruments::InstrumentInfo;
use super::kinds::*;
use super::money::Money;
use super::orders::NewOrder;
use super::{Account, AccountConfig, AccountEvent, Gateway, OrderRequest};
use crate::fixed::{Price, Qty};
use crate::input::Nanos;
use crate::instrument::{InstrumentId, Market};
use crate::msg::Level;

/// Spot BTCUSDT: price scale 2, qty scale 5.
pub(super) const SPOT: InstrumentId = InstrumentId(0);
/// USD-M BTCUSDT: price scale 1, qty scale 3 (raw scale 4).
pub(super) const FUT: InstrumentId = InstrumentId(1);

pub(super) fn usdt() -> Asset {
    Asset::new("USDT").unwrap()
}

pub(super) fn info(id: InstrumentId) -> InstrumentInfo {
    let (market, ps, qs) = if id == SPOT {
        (Market::Spot, 2, 5)
    } else {
        (Market::UsdM, 1, 3)
    };
    InstrumentInfo {
        id,
        market,
        price_scale: ps,
        qty_scale: qs,
        base_asset: Asset::new("BTC").ok(),
        quote_asset: Some(usdt()),
    }
}

pub(super) fn cid(s: &str) -> ClientOrderId {
    ClientOrderId::new(s).unwrap()
}

pub(super) fn t(ms: u64) -> Nanos {
    Nanos(ms * 1_000_000)
}

pub(super) fn lvl(price: i64, qty: i64) -> Level {
    Level {
        price: Price(price),
        qty: Qty(qty),
    }
}

/// A USD-M GTC limit buy of 1.000 at 100.0.
pub(super) fn new_order(id: &str) -> NewOrder {
    NewOrder {
        client_order_id: cid(id),
        instrument: FUT,
        side: OrderSide::Buy,
        order_type: OrderType::Limit,
        time_in_force: TimeInForce::Gtc,
        qty: Qty(1_000),
        price: Price(1_000),
        stop_price: Price(0),
        reduce_only: false,
    }
}

/// A report about order `id` (venue id 42) matching [`new_order`].
pub(super) fn report(id: &str, exec_type: ExecType, status: OrderStatus) -> ExecutionReport {
    ExecutionReport {
        market: Market::UsdM,
        instrument: FUT,
        event_time_ms: 1,
        transact_time_ms: 1,
        client_order_id: cid(id),
        orig_client_order_id: None,
        order_id: 42,
        side: OrderSide::Buy,
        order_type: OrderType::Limit,
        time_in_force: TimeInForce::Gtc,
        qty: Qty(1_000),
        price: Price(1_000),
        stop_price: Price(0),
        exec_type,
        status,
        reject_reason: None,
        last_qty: Qty::ZERO,
        cum_qty: Qty::ZERO,
        last_price: Price(0),
        fee: Money::ZERO,
        fee_asset: None,
        trade_id: None,
        is_maker: false,
        reduce_only: false,
        position_side: VenuePositionSide::Both,
        venue_realized_pnl: None,
        venue_avg_price: None,
        cum_quote: None,
        order_time_ms: None,
        order_list_id: None,
    }
}

/// A fill report: `last` at `price`, cumulative `cum`.
pub(super) fn fill(id: &str, last: i64, cum: i64, price: i64) -> ExecutionReport {
    ExecutionReport {
        last_qty: Qty(last),
        cum_qty: Qty(cum),
        last_price: Price(price),
        trade_id: Some(cum as u64),
        ..report(id, ExecType::Trade, OrderStatus::PartiallyFilled)
    }
}

/// A paper account that knows both test instruments.
pub(super) fn paper_account() -> Account {
    account(AccountConfig::default())
}

/// An account with an external gateway.
pub(super) fn external_account() -> Account {
    account(AccountConfig {
        gateway: Gateway::External,
        ..AccountConfig::default()
    })
}

pub(super) fn account(cfg: AccountConfig) -> Account {
    let mut a = Account::new(cfg);
    a.add_instrument(info(SPOT)).unwrap();
    a.add_instrument(info(FUT)).unwrap();
    a
}

pub(super) fn drain(a: &mut Account) -> Vec<AccountEvent> {
    std::iter::from_fn(|| a.poll_event()).collect()
}

/// A USD-M request.
pub(super) fn req(side: OrderSide, order_type: OrderType, qty: i64, price: i64) -> OrderRequest {
    OrderRequest {
        client_order_id: None,
        instrument: FUT,
        side,
        order_type,
        time_in_force: TimeInForce::Gtc,
        qty: Qty(qty),
        price: Price(price),
        stop_price: Price(0),
        reduce_only: false,
    }
}
