//! The order vocabulary the sim accepts, in Binance's wire spelling.

/// `BUY` / `SELL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OrderSide {
    Buy,
    Sell,
}

impl OrderSide {
    pub fn parse(s: &str) -> Option<OrderSide> {
        match s {
            "BUY" => Some(OrderSide::Buy),
            "SELL" => Some(OrderSide::Sell),
            _ => None,
        }
    }

    pub fn wire(self) -> &'static str {
        match self {
            OrderSide::Buy => "BUY",
            OrderSide::Sell => "SELL",
        }
    }

    /// +1 for a buy, -1 for a sell.
    pub fn sign(self) -> i64 {
        match self {
            OrderSide::Buy => 1,
            OrderSide::Sell => -1,
        }
    }
}

/// The order types the sim matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Market,
    Limit,
}

impl Kind {
    pub fn wire(self) -> &'static str {
        match self {
            Kind::Market => "MARKET",
            Kind::Limit => "LIMIT",
        }
    }
}

/// Time in force. Market orders report `GTC`, as Binance's do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tif {
    Gtc,
    Ioc,
    Fok,
}

impl Tif {
    pub fn parse(s: &str) -> Option<Tif> {
        match s {
            "GTC" => Some(Tif::Gtc),
            "IOC" => Some(Tif::Ioc),
            "FOK" => Some(Tif::Fok),
            _ => None,
        }
    }

    pub fn wire(self) -> &'static str {
        match self {
            Tif::Gtc => "GTC",
            Tif::Ioc => "IOC",
            Tif::Fok => "FOK",
        }
    }
}

/// Order status (`X`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    New,
    PartiallyFilled,
    Filled,
    Canceled,
    Expired,
}

impl Status {
    pub fn wire(self) -> &'static str {
        match self {
            Status::New => "NEW",
            Status::PartiallyFilled => "PARTIALLY_FILLED",
            Status::Filled => "FILLED",
            Status::Canceled => "CANCELED",
            Status::Expired => "EXPIRED",
        }
    }
}
