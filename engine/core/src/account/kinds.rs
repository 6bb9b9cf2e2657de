//! The small enums of order entry: side, type, time in force, status, execution type.
//!
//! Each parses Binance's wire spelling (`parse`) and has a stable lower-case name for output
//! (`as_str`). Spot and USD-M spell some order types differently; [`OrderType::parse`] takes
//! the market.

use crate::instrument::Market;

/// Buy or sell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OrderSide {
    /// Buy: increases a position.
    Buy,
    /// Sell: decreases a position.
    Sell,
}

impl OrderSide {
    /// `BUY` / `SELL`.
    pub fn parse(s: &[u8]) -> Option<OrderSide> {
        match s {
            b"BUY" => Some(OrderSide::Buy),
            b"SELL" => Some(OrderSide::Sell),
            _ => None,
        }
    }

    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderSide::Buy => "buy",
            OrderSide::Sell => "sell",
        }
    }

    /// +1 for buy, -1 for sell.
    #[inline]
    pub fn sign(self) -> i64 {
        match self {
            OrderSide::Buy => 1,
            OrderSide::Sell => -1,
        }
    }

    /// The other side.
    #[inline]
    pub fn opposite(self) -> OrderSide {
        match self {
            OrderSide::Buy => OrderSide::Sell,
            OrderSide::Sell => OrderSide::Buy,
        }
    }
}

/// Order type, normalised across spot and USD-M.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OrderType {
    /// `MARKET`.
    Market,
    /// `LIMIT`.
    Limit,
    /// Spot `LIMIT_MAKER` (post-only limit).
    LimitMaker,
    /// Spot `STOP_LOSS`, USD-M `STOP_MARKET`.
    StopMarket,
    /// Spot `STOP_LOSS_LIMIT`, USD-M `STOP`.
    StopLimit,
    /// Spot `TAKE_PROFIT`, USD-M `TAKE_PROFIT_MARKET`.
    TakeProfitMarket,
    /// Spot `TAKE_PROFIT_LIMIT`, USD-M `TAKE_PROFIT`.
    TakeProfitLimit,
    /// USD-M `TRAILING_STOP_MARKET` (the venue's own trailing stop).
    TrailingStopMarket,
    /// USD-M `LIQUIDATION` (an order the venue placed to liquidate).
    Liquidation,
}

impl OrderType {
    /// Binance's spelling on `market` (spot and USD-M differ for stops and take-profits).
    pub fn parse(s: &[u8], market: Market) -> Option<OrderType> {
        use OrderType as T;
        Some(match (s, market.is_futures()) {
            (b"MARKET", _) => T::Market,
            (b"LIMIT", _) => T::Limit,
            (b"LIMIT_MAKER", false) => T::LimitMaker,
            (b"STOP_LOSS", false) | (b"STOP_MARKET", true) => T::StopMarket,
            (b"STOP_LOSS_LIMIT", false) | (b"STOP", true) => T::StopLimit,
            (b"TAKE_PROFIT", false) | (b"TAKE_PROFIT_MARKET", true) => T::TakeProfitMarket,
            (b"TAKE_PROFIT_LIMIT", false) | (b"TAKE_PROFIT", true) => T::TakeProfitLimit,
            (b"TRAILING_STOP_MARKET", true) => T::TrailingStopMarket,
            (b"LIQUIDATION", true) => T::Liquidation,
            _ => return None,
        })
    }

    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderType::Market => "market",
            OrderType::Limit => "limit",
            OrderType::LimitMaker => "limit_maker",
            OrderType::StopMarket => "stop_market",
            OrderType::StopLimit => "stop_limit",
            OrderType::TakeProfitMarket => "take_profit_market",
            OrderType::TakeProfitLimit => "take_profit_limit",
            OrderType::TrailingStopMarket => "trailing_stop_market",
            OrderType::Liquidation => "liquidation",
        }
    }

    /// True when the order carries a limit price.
    pub fn has_limit_price(self) -> bool {
        matches!(
            self,
            OrderType::Limit
                | OrderType::LimitMaker
                | OrderType::StopLimit
                | OrderType::TakeProfitLimit
        )
    }

    /// True when the order carries a stop (trigger) price.
    pub fn has_stop_price(self) -> bool {
        matches!(
            self,
            OrderType::StopMarket
                | OrderType::StopLimit
                | OrderType::TakeProfitMarket
                | OrderType::TakeProfitLimit
                | OrderType::TrailingStopMarket
        )
    }
}

/// Time in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum TimeInForce {
    /// Good till canceled.
    #[default]
    Gtc,
    /// Immediate or cancel: the unfilled rest expires.
    Ioc,
    /// Fill or kill: all or nothing.
    Fok,
    /// Good till crossing (USD-M post-only): expires instead of taking liquidity.
    Gtx,
    /// Good till date (USD-M).
    Gtd,
}

impl TimeInForce {
    /// `GTC`, `IOC`, `FOK`, `GTX`, `GTD`.
    pub fn parse(s: &[u8]) -> Option<TimeInForce> {
        Some(match s {
            b"GTC" => TimeInForce::Gtc,
            b"IOC" => TimeInForce::Ioc,
            b"FOK" => TimeInForce::Fok,
            b"GTX" => TimeInForce::Gtx,
            b"GTD" => TimeInForce::Gtd,
            _ => return None,
        })
    }

    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            TimeInForce::Gtc => "gtc",
            TimeInForce::Ioc => "ioc",
            TimeInForce::Fok => "fok",
            TimeInForce::Gtx => "gtx",
            TimeInForce::Gtd => "gtd",
        }
    }
}

/// Where an order is in its life (see `docs/account.md` for the transition diagram).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OrderStatus {
    /// Sent by tape, not yet acknowledged by the venue.
    PendingNew,
    /// Acknowledged, resting, nothing filled.
    New,
    /// Some but not all of the quantity filled.
    PartiallyFilled,
    /// Cancel sent by tape, not yet confirmed.
    PendingCancel,
    /// Completely filled (terminal).
    Filled,
    /// Canceled (terminal).
    Canceled,
    /// Refused by the venue (terminal).
    Rejected,
    /// Expired: IOC/FOK rest, GTX that would cross, self-trade prevention (terminal).
    Expired,
}

impl OrderStatus {
    /// Binance's `X` spelling (`EXPIRED_IN_MATCH` is [`OrderStatus::Expired`]).
    pub fn parse(s: &[u8]) -> Option<OrderStatus> {
        Some(match s {
            b"PENDING_NEW" => OrderStatus::PendingNew,
            b"NEW" => OrderStatus::New,
            b"PARTIALLY_FILLED" => OrderStatus::PartiallyFilled,
            b"FILLED" => OrderStatus::Filled,
            b"CANCELED" => OrderStatus::Canceled,
            b"PENDING_CANCEL" => OrderStatus::PendingCancel,
            b"REJECTED" => OrderStatus::Rejected,
            b"EXPIRED" | b"EXPIRED_IN_MATCH" => OrderStatus::Expired,
            _ => return None,
        })
    }

    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::PendingNew => "pending_new",
            OrderStatus::New => "new",
            OrderStatus::PartiallyFilled => "partially_filled",
            OrderStatus::PendingCancel => "pending_cancel",
            OrderStatus::Filled => "filled",
            OrderStatus::Canceled => "canceled",
            OrderStatus::Rejected => "rejected",
            OrderStatus::Expired => "expired",
        }
    }

    /// True once nothing more can happen to the order.
    #[inline]
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            OrderStatus::Filled
                | OrderStatus::Canceled
                | OrderStatus::Rejected
                | OrderStatus::Expired
        )
    }
}

/// What happened in one execution report (`x`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExecType {
    /// The venue accepted the order.
    New,
    /// The order was canceled.
    Canceled,
    /// Spot cancel-replace: the new order was accepted.
    Replaced,
    /// The venue refused the order.
    Rejected,
    /// A fill.
    Trade,
    /// The order expired.
    Expired,
    /// Spot self-trade prevention expired (part of) the order.
    TradePrevention,
    /// USD-M liquidation fill.
    Calculated,
    /// USD-M order modification (price or quantity changed).
    Amendment,
}

impl ExecType {
    /// Binance's `x` spelling.
    pub fn parse(s: &[u8]) -> Option<ExecType> {
        Some(match s {
            b"NEW" => ExecType::New,
            b"CANCELED" => ExecType::Canceled,
            b"REPLACED" => ExecType::Replaced,
            b"REJECTED" => ExecType::Rejected,
            b"TRADE" => ExecType::Trade,
            b"EXPIRED" => ExecType::Expired,
            b"TRADE_PREVENTION" => ExecType::TradePrevention,
            b"CALCULATED" => ExecType::Calculated,
            b"AMENDMENT" => ExecType::Amendment,
            _ => return None,
        })
    }

    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecType::New => "new",
            ExecType::Canceled => "canceled",
            ExecType::Replaced => "replaced",
            ExecType::Rejected => "rejected",
            ExecType::Trade => "trade",
            ExecType::Expired => "expired",
            ExecType::TradePrevention => "trade_prevention",
            ExecType::Calculated => "calculated",
            ExecType::Amendment => "amendment",
        }
    }
}

/// USD-M position side (`ps`): one-way mode is `BOTH`, hedge mode `LONG`/`SHORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum VenuePositionSide {
    /// One-way mode (also used for spot, which has no position side).
    #[default]
    Both,
    /// Hedge-mode long leg.
    Long,
    /// Hedge-mode short leg.
    Short,
}

impl VenuePositionSide {
    /// `BOTH`, `LONG`, `SHORT`.
    pub fn parse(s: &[u8]) -> Option<VenuePositionSide> {
        Some(match s {
            b"BOTH" => VenuePositionSide::Both,
            b"LONG" => VenuePositionSide::Long,
            b"SHORT" => VenuePositionSide::Short,
            _ => return None,
        })
    }
}

/// USD-M margin type (`mt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MarginType {
    /// Cross margin.
    Cross,
    /// Isolated margin.
    Isolated,
}

impl MarginType {
    /// `cross` / `isolated` (either case).
    pub fn parse(s: &[u8]) -> Option<MarginType> {
        if s.eq_ignore_ascii_case(b"cross") || s.eq_ignore_ascii_case(b"crossed") {
            Some(MarginType::Cross)
        } else if s.eq_ignore_ascii_case(b"isolated") {
            Some(MarginType::Isolated)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spot_and_futures_spell_types_differently() {
        assert_eq!(
            OrderType::parse(b"TAKE_PROFIT", Market::Spot),
            Some(OrderType::TakeProfitMarket)
        );
        assert_eq!(
            OrderType::parse(b"TAKE_PROFIT", Market::UsdM),
            Some(OrderType::TakeProfitLimit)
        );
        assert_eq!(
            OrderType::parse(b"STOP", Market::UsdM),
            Some(OrderType::StopLimit)
        );
        assert_eq!(OrderType::parse(b"STOP", Market::Spot), None);
        assert_eq!(OrderType::parse(b"LIMIT_MAKER", Market::UsdM), None);
        assert_eq!(
            OrderStatus::parse(b"EXPIRED_IN_MATCH"),
            Some(OrderStatus::Expired)
        );
        assert!(OrderStatus::Filled.is_terminal());
        assert!(!OrderStatus::PendingCancel.is_terminal());
        assert_eq!(OrderSide::Sell.opposite(), OrderSide::Buy);
        assert_eq!(MarginType::parse(b"isolated"), Some(MarginType::Isolated));
        assert_eq!(TimeInForce::parse(b"GTX"), Some(TimeInForce::Gtx));
        assert_eq!(ExecType::parse(b"CALCULATED"), Some(ExecType::Calculated));
        assert_eq!(VenuePositionSide::parse(b"x"), None);
    }
}
