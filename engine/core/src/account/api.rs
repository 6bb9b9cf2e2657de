//! The account's public vocabulary: configuration, order requests, events and errors.

use super::event::ListStatus;
use super::{
    AdvancedUpdate, Asset, Balance, BalanceError, ClientOrderId, Fill, MarkSource, MathError,
    Order, OrderCommand, OrderError, OrderSide, OrderType, OrdersConfig, PaperConfig, Portfolio,
    PositionUpdate, RiskAlert, RiskLimits, RiskReject, TimeInForce, TrailingUpdate, TriggerError,
};
use crate::fixed::{Price, Qty};
use crate::instrument::InstrumentId;

/// Prefix of the client order ids tape generates; user-supplied ids may not use it.
pub const GENERATED_ID_PREFIX: &str = "tp-";

/// Where orders go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gateway {
    /// The built-in paper venue (the default).
    Paper(PaperConfig),
    /// A real venue: commands come out as [`AccountEvent::Command`] and its user data comes
    /// back through [`super::Account::handle_user_event`].
    External,
}

/// Settings of one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountConfig {
    /// Asset the portfolio is summarised in (`USDT` unless set).
    pub quote_asset: Option<Asset>,
    /// Price that marks positions.
    pub mark_source: MarkSource,
    /// Risk limits.
    pub risk: RiskLimits,
    /// Order table bounds.
    pub orders: OrdersConfig,
    /// Gateway.
    pub gateway: Gateway,
    /// Live advanced orders at most.
    pub max_advanced: usize,
}

impl Default for AccountConfig {
    fn default() -> Self {
        AccountConfig {
            quote_asset: Asset::new("USDT").ok(),
            mark_source: MarkSource::Mid,
            risk: RiskLimits::default(),
            orders: OrdersConfig::default(),
            gateway: Gateway::Paper(PaperConfig::default()),
            max_advanced: super::triggers::DEFAULT_MAX_ADVANCED,
        }
    }
}

/// A new order from a user; tape assigns a client id when none is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderRequest {
    /// Client id (must not start with [`GENERATED_ID_PREFIX`]).
    pub client_order_id: Option<ClientOrderId>,
    /// Instrument.
    pub instrument: InstrumentId,
    /// Side.
    pub side: OrderSide,
    /// Type.
    pub order_type: OrderType,
    /// Time in force.
    pub time_in_force: TimeInForce,
    /// Quantity.
    pub qty: Qty,
    /// Limit price (`Price(0)` if none).
    pub price: Price,
    /// Stop price (`Price(0)` if none).
    pub stop_price: Price,
    /// Reduce-only.
    pub reduce_only: bool,
}

/// Why a place or cancel request was refused; nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    /// A risk rule refused it (the alert is also emitted as an event).
    #[error(transparent)]
    Risk(#[from] RiskReject),
    /// The order table refused it (duplicate id, full, invalid, wrong state).
    #[error(transparent)]
    Order(#[from] OrderError),
    /// The advanced order is invalid.
    #[error(transparent)]
    Trigger(#[from] TriggerError),
    /// The instrument was never added to this account.
    #[error("instrument {} is not known to the account", .0.0)]
    UnknownInstrument(InstrumentId),
    /// An instrument with a price or quantity scale above 18.
    #[error("instrument {} has a scale above 18", .0.0)]
    InvalidInstrument(InstrumentId),
    /// A user-supplied client id uses tape's generated-id prefix.
    #[error("client order id {0} uses the reserved prefix \"tp-\"")]
    ReservedId(ClientOrderId),
    /// A value the order implies (notional, fee, resulting position) does not fit its
    /// type: the order is refused rather than accepted with a wrapped value.
    #[error("order refused: {0}")]
    Math(#[from] MathError),
}

/// Why a user-data event was not applied (state is unchanged unless noted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// The order state machine refused the report.
    #[error(transparent)]
    Order(#[from] OrderError),
    /// A balance event did not fit.
    #[error(transparent)]
    Balance(#[from] BalanceError),
    /// Arithmetic overflow.
    #[error(transparent)]
    Math(#[from] MathError),
    /// The event is about an instrument never added to the account.
    #[error("instrument {} is not known to the account", .0.0)]
    UnknownInstrument(InstrumentId),
}

/// An order changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderUpdate {
    /// The order after the change.
    pub order: Order,
    /// The fill, when the change was one.
    pub fill: Option<Fill>,
}

/// What an account tells its user (and, for commands, the gateway).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountEvent {
    /// An order changed.
    Order(OrderUpdate),
    /// A position changed (fill, mark, venue update).
    Position(PositionUpdate),
    /// The portfolio summary changed.
    Portfolio(Portfolio),
    /// A balance changed.
    Balance(Balance),
    /// A risk alert.
    Risk(RiskAlert),
    /// An advanced order changed.
    Advanced(AdvancedUpdate),
    /// A trailing stop moved.
    Trailing(TrailingUpdate),
    /// An order list changed (spot `listStatus`, passed through).
    OrderList(ListStatus),
    /// Send this to the venue (external gateway only).
    Command(OrderCommand),
    /// An order tape generated (a trigger child) could not be placed or cancelled.
    CommandFailed {
        /// The order.
        client_order_id: ClientOrderId,
        /// Why.
        reason: String,
    },
}

impl AccountEvent {
    /// A stable short name per variant (`order`, `position`, ...), for logs and digests.
    pub fn kind(&self) -> &'static str {
        match self {
            AccountEvent::Order(_) => "order",
            AccountEvent::Position(_) => "position",
            AccountEvent::Portfolio(_) => "portfolio",
            AccountEvent::Balance(_) => "balance",
            AccountEvent::Risk(_) => "risk",
            AccountEvent::Advanced(_) => "advanced",
            AccountEvent::Trailing(_) => "trailing",
            AccountEvent::OrderList(_) => "order_list",
            AccountEvent::Command(_) => "command",
            AccountEvent::CommandFailed { .. } => "command_failed",
        }
    }
}
