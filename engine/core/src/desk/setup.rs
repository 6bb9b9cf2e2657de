//! [`DeskSetup`]: the users and account settings, as a journal record (kind 5).
//!
//! The payload is a `"type":"desk"` record of the one control-record encoding
//! ([`crate::record`]):
//!
//! ```text
//! {"v":2,"type":"desk","users":["alice","bob"],"quote_asset":"USDT","mark":"mid","maker_fee_bps":2,"taker_fee_bps":4,"gateway":"paper","max_order_qty":"1.5","max_order_notional":"100000","max_position":"3","max_open_orders":50,"max_orders_per_sec":10,"max_drawdown":"5000"}
//! ```
//!
//! Journals written before version 2 hold the same fields as `tape-desk/1` text, one
//! `key=value` per line (`user=` once per user; see [`crate::record::legacy`]). Limits that are
//! absent are off. Rendering then parsing gives the same setup.

use crate::account::{AccountConfig, Asset, Gateway, MarkSource, Money, PaperConfig, RiskLimits};
use crate::fixed::{parse_decimal, Decimal};
use crate::instrument::Market;

/// Most users one desk holds.
pub const MAX_USERS: usize = 1024;

/// Why a setup was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    /// The text is not a setup record.
    #[error("desk setup: {0}")]
    Syntax(String),
    /// A key has a bad value.
    #[error("desk setup: {key}: {message}")]
    Value {
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A version 2 record that is malformed.
    #[error("desk setup: {0}")]
    Record(#[from] crate::record::RecordError),
    /// The account layer refused a user.
    #[error("desk setup: user {0:?}: {1}")]
    User(String, String),
}

/// The desk's users and the settings each of their accounts gets (paper venue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskSetup {
    /// User names, in configuration order (no duplicates).
    pub users: Vec<String>,
    /// Asset the portfolio is summarised in.
    pub quote_asset: String,
    /// What marks positions.
    pub mark: MarkSource,
    /// Paper venue maker fee, basis points.
    pub maker_fee_bps: i64,
    /// Paper venue taker fee, basis points.
    pub taker_fee_bps: i64,
    /// Largest quantity of one order.
    pub max_order_qty: Option<Decimal>,
    /// Largest notional of one order (quote asset).
    pub max_order_notional: Option<Money>,
    /// Largest absolute position per instrument.
    pub max_position: Option<Decimal>,
    /// Most live orders at once.
    pub max_open_orders: Option<u32>,
    /// Most orders per second.
    pub max_orders_per_sec: Option<u32>,
    /// Largest drawdown of PnL equity from its peak (alert only).
    pub max_drawdown: Option<Money>,
    /// Where orders go: `None` = the paper venue inside the engine; `Some(market)` = an
    /// external venue's WebSocket order API (its user data decoded as that market's).
    pub gateway: Option<Market>,
    /// External gateway only: orders are risk-checked, signed and journaled but never
    /// written to the venue; each ends `rejected` at once, and the reply says `dry_run`.
    pub dry_run: bool,
}

impl Default for DeskSetup {
    fn default() -> Self {
        let paper = PaperConfig::default();
        DeskSetup {
            users: Vec::new(),
            quote_asset: "USDT".into(),
            mark: MarkSource::Mid,
            maker_fee_bps: paper.maker_fee_bps,
            taker_fee_bps: paper.taker_fee_bps,
            max_order_qty: None,
            max_order_notional: None,
            max_position: None,
            max_open_orders: None,
            max_orders_per_sec: None,
            max_drawdown: None,
            gateway: None,
            dry_run: false,
        }
    }
}

impl DeskSetup {
    /// The account settings every user gets.
    pub fn account_config(&self) -> AccountConfig {
        AccountConfig {
            quote_asset: Asset::new(&self.quote_asset).ok(),
            mark_source: self.mark,
            risk: RiskLimits {
                max_order_qty: self.max_order_qty,
                max_order_notional: self.max_order_notional,
                max_position: self.max_position,
                max_open_orders: self.max_open_orders,
                max_orders_per_sec: self.max_orders_per_sec,
                max_drawdown: self.max_drawdown,
                ..RiskLimits::default()
            },
            gateway: match self.gateway {
                Some(_) => Gateway::External,
                None => Gateway::Paper(PaperConfig {
                    maker_fee_bps: self.maker_fee_bps,
                    taker_fee_bps: self.taker_fee_bps,
                    ..PaperConfig::default()
                }),
            },
            ..AccountConfig::default()
        }
    }

    /// The record payload (version 2, see [`crate::record`]).
    pub fn to_payload(&self) -> String {
        crate::record::encode_desk(self)
    }

    /// Parses a record payload in either encoding (version 2 or `tape-desk/1`). Never panics.
    ///
    /// # Errors
    /// A [`SetupError`] naming the line or key.
    pub fn parse(payload: &[u8]) -> Result<DeskSetup, SetupError> {
        crate::record::parse_desk(payload)
    }

    /// Sets one field from its text, as a `tape-desk/1` line `k=v` states it: the value
    /// rules of both encodings (a version 2 reader passes each typed field through here), so
    /// a value means the same in either.
    ///
    /// # Errors
    /// [`SetupError::Value`] naming the key.
    pub fn set_field(&mut self, k: &str, v: &str) -> Result<(), SetupError> {
        let s = self;
        let bad = |m: &str| SetupError::Value {
            key: k.chars().take(40).collect(),
            message: m.into(),
        };
        match k {
            "user" => {
                if s.users.iter().any(|u| u == v) {
                    return Err(bad("duplicate user"));
                }
                if s.users.len() >= MAX_USERS {
                    return Err(bad("too many users"));
                }
                s.users.push(v.to_owned());
            }
            "quote_asset" => {
                Asset::new(v).map_err(|e| bad(&e.to_string()))?;
                s.quote_asset = v.to_owned();
            }
            "gateway" => {
                s.gateway = match v {
                    "paper" => None,
                    m => Some(
                        Market::parse(m)
                            .ok_or_else(|| bad("must be paper, spot, usdm or coinm"))?,
                    ),
                }
            }
            "dry_run" => {
                s.dry_run = match v {
                    "1" | "true" => true,
                    "0" | "false" => false,
                    _ => return Err(bad("must be 0 or 1")),
                }
            }
            "mark" => {
                s.mark = match v {
                    "mid" => MarkSource::Mid,
                    "last" => MarkSource::Last,
                    _ => return Err(bad("must be mid or last")),
                }
            }
            "maker_fee_bps" | "taker_fee_bps" => {
                let bps: i64 = v.parse().map_err(|_| bad("not an integer"))?;
                if !(-10_000..=10_000).contains(&bps) {
                    return Err(bad("must be within -10000..=10000"));
                }
                if k == "maker_fee_bps" {
                    s.maker_fee_bps = bps;
                } else {
                    s.taker_fee_bps = bps;
                }
            }
            "max_order_qty" | "max_position" => {
                let d = parse_decimal(v.as_bytes()).map_err(|e| bad(&e.to_string()))?;
                if d.mantissa <= 0 {
                    return Err(bad("must be positive"));
                }
                if k == "max_order_qty" {
                    s.max_order_qty = Some(d);
                } else {
                    s.max_position = Some(d);
                }
            }
            "max_order_notional" | "max_drawdown" => {
                let m = Money::parse(v.as_bytes()).map_err(|e| bad(&e.to_string()))?;
                if m.0 <= 0 {
                    return Err(bad("must be positive"));
                }
                if k == "max_order_notional" {
                    s.max_order_notional = Some(m);
                } else {
                    s.max_drawdown = Some(m);
                }
            }
            "max_open_orders" | "max_orders_per_sec" => {
                let n: u32 = v.parse().map_err(|_| bad("not a positive integer"))?;
                if n == 0 {
                    return Err(bad("must be at least 1"));
                }
                if k == "max_open_orders" {
                    s.max_open_orders = Some(n);
                } else {
                    s.max_orders_per_sec = Some(n);
                }
            }
            _ => return Err(bad("unknown key")),
        }
        Ok(())
    }
}
