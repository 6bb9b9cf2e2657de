//! Execution events: what the venue's user-data stream (decoded by [`super::userdata`]) and
//! the paper venue ([`super::paper`]) both produce, so the account has one input path.

use super::ids::{Asset, ClientOrderId};
use super::kinds::{
    ExecType, MarginType, OrderSide, OrderStatus, OrderType, TimeInForce, VenuePositionSide,
};
use super::money::Money;
use crate::fixed::{Price, Qty};
use crate::instrument::{InstrumentId, Market};

/// One user-data event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserEvent {
    /// Spot `executionReport` or USD-M `ORDER_TRADE_UPDATE`.
    Execution(ExecutionReport),
    /// Spot `outboundAccountPosition`: absolute balances of the assets that changed.
    AccountPosition(AccountPosition),
    /// Spot `balanceUpdate`: a deposit, withdrawal or transfer.
    BalanceUpdate(BalanceDelta),
    /// Spot `listStatus`: an order list (OCO, OTO, ...) changed.
    ListStatus(ListStatus),
    /// USD-M `ACCOUNT_UPDATE`: wallet balances and positions that changed.
    AccountUpdate(FuturesAccountUpdate),
}

impl UserEvent {
    /// Binance's event type name (`e`), for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            UserEvent::Execution(r) if r.market.is_futures() => "ORDER_TRADE_UPDATE",
            UserEvent::Execution(_) => "executionReport",
            UserEvent::AccountPosition(_) => "outboundAccountPosition",
            UserEvent::BalanceUpdate(_) => "balanceUpdate",
            UserEvent::ListStatus(_) => "listStatus",
            UserEvent::AccountUpdate(_) => "ACCOUNT_UPDATE",
        }
    }
}

/// An order's execution report, normalised across spot, USD-M and the paper venue.
///
/// Prices and quantities are at the instrument's scales; money at
/// [`super::money::MONEY_SCALE`]. A price the order does not have (a market order's limit
/// price, a limit order's stop price) is `Price(0)`, as Binance sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionReport {
    /// Market the report came from.
    pub market: Market,
    /// Instrument (`s`).
    pub instrument: InstrumentId,
    /// Event time, ms (`E`).
    pub event_time_ms: u64,
    /// Transaction time, ms (`T`).
    pub transact_time_ms: u64,
    /// Client order id (`c`); on a spot cancel this is the cancel request's id.
    pub client_order_id: ClientOrderId,
    /// Spot `C`: the canceled order's original client id (absent unless canceled).
    pub orig_client_order_id: Option<ClientOrderId>,
    /// Venue order id (`i`).
    pub order_id: u64,
    /// `S`.
    pub side: OrderSide,
    /// `o`.
    pub order_type: OrderType,
    /// `f`.
    pub time_in_force: TimeInForce,
    /// Original quantity (`q`).
    pub qty: Qty,
    /// Limit price (`p`).
    pub price: Price,
    /// Stop price (spot `P`, USD-M `sp`).
    pub stop_price: Price,
    /// `x`.
    pub exec_type: ExecType,
    /// `X`.
    pub status: OrderStatus,
    /// Reject reason (`r`, spot only) when not `NONE`.
    pub reject_reason: Option<String>,
    /// Last filled quantity (`l`).
    pub last_qty: Qty,
    /// Cumulative filled quantity (`z`).
    pub cum_qty: Qty,
    /// Last fill price (`L`).
    pub last_price: Price,
    /// Commission of this fill (`n`), in `fee_asset`.
    pub fee: Money,
    /// Commission asset (`N`), absent when no fee was charged.
    pub fee_asset: Option<Asset>,
    /// Trade id (`t`), absent when the report is not a fill (`-1` spot, `0` USD-M).
    pub trade_id: Option<u64>,
    /// The fill was on the maker side (`m`).
    pub is_maker: bool,
    /// Reduce-only (USD-M `R`).
    pub reduce_only: bool,
    /// Position side (USD-M `ps`; spot is always [`VenuePositionSide::Both`]).
    pub position_side: VenuePositionSide,
    /// Realized profit of this fill as computed by the venue (USD-M `rp`).
    pub venue_realized_pnl: Option<Money>,
    /// Average fill price as computed by the venue (USD-M `ap`, rounded to the price scale).
    pub venue_avg_price: Option<Price>,
    /// Cumulative quote quantity (spot `Z`).
    pub cum_quote: Option<Money>,
    /// Order creation time, ms (spot `O`).
    pub order_time_ms: Option<u64>,
    /// Order list id (spot `g`) when the order belongs to a list.
    pub order_list_id: Option<u64>,
}

impl ExecutionReport {
    /// True for reports that carry a fill (`TRADE`, or a USD-M liquidation `CALCULATED`).
    pub fn is_fill(&self) -> bool {
        matches!(self.exec_type, ExecType::Trade | ExecType::Calculated) && self.last_qty.0 > 0
    }
}

/// One asset's balance in an `outboundAccountPosition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssetBalance {
    /// `a`.
    pub asset: Asset,
    /// Free amount (`f`).
    pub free: Money,
    /// Locked in open orders (`l`).
    pub locked: Money,
}

/// Spot `outboundAccountPosition`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountPosition {
    /// `E`, ms.
    pub event_time_ms: u64,
    /// `u`, time of last account update, ms.
    pub last_update_ms: u64,
    /// `B`, in the order received.
    pub balances: Vec<AssetBalance>,
}

/// Spot `balanceUpdate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BalanceDelta {
    /// `E`, ms.
    pub event_time_ms: u64,
    /// `a`.
    pub asset: Asset,
    /// `d`, signed change of the free balance.
    pub delta: Money,
    /// `T`, clear time, ms.
    pub clear_time_ms: u64,
}

/// One order of a `listStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListOrder {
    /// `s`.
    pub instrument: InstrumentId,
    /// `i`.
    pub order_id: u64,
    /// `c`.
    pub client_order_id: ClientOrderId,
}

/// Spot `listStatus`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListStatus {
    /// `s`.
    pub instrument: InstrumentId,
    /// `E`, ms.
    pub event_time_ms: u64,
    /// `T`, ms.
    pub transact_time_ms: u64,
    /// `g`.
    pub order_list_id: u64,
    /// `c`: `OCO`, `OTO`, `OTOCO`, ...
    pub contingency_type: String,
    /// `l`: `RESPONSE`, `EXEC_STARTED`, `ALL_DONE`, ...
    pub list_status_type: String,
    /// `L`: `EXECUTING`, `ALL_DONE`, `REJECT`.
    pub list_order_status: String,
    /// `r` when not `NONE`.
    pub reject_reason: Option<String>,
    /// `C`.
    pub list_client_order_id: ClientOrderId,
    /// `O`.
    pub orders: Vec<ListOrder>,
}

/// One wallet balance of an `ACCOUNT_UPDATE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FuturesBalance {
    /// `a`.
    pub asset: Asset,
    /// Wallet balance (`wb`).
    pub wallet: Money,
    /// Cross wallet balance (`cw`).
    pub cross_wallet: Money,
    /// Balance change except PnL and commission (`bc`), when sent.
    pub change: Option<Money>,
}

/// One position of an `ACCOUNT_UPDATE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FuturesPosition {
    /// `s`.
    pub instrument: InstrumentId,
    /// Signed position amount (`pa`).
    pub amount: Qty,
    /// Entry price (`ep`, rounded to the price scale).
    pub entry_price: Price,
    /// Accumulated realized PnL (`cr`).
    pub accumulated_realized: Money,
    /// Unrealized PnL (`up`).
    pub unrealized: Money,
    /// Margin type (`mt`).
    pub margin_type: MarginType,
    /// Isolated wallet (`iw`).
    pub isolated_wallet: Money,
    /// `ps`.
    pub position_side: VenuePositionSide,
}

/// USD-M `ACCOUNT_UPDATE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuturesAccountUpdate {
    /// `E`, ms.
    pub event_time_ms: u64,
    /// `T`, ms.
    pub transact_time_ms: u64,
    /// Reason (`m`): `ORDER`, `FUNDING_FEE`, `DEPOSIT`, ...
    pub reason: String,
    /// `B`.
    pub balances: Vec<FuturesBalance>,
    /// `P`.
    pub positions: Vec<FuturesPosition>,
}
