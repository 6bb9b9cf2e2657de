//! Binance user-data decoding: spot `executionReport`, `outboundAccountPosition`,
//! `balanceUpdate`, `listStatus`; USD-M `ORDER_TRADE_UPDATE`, `ACCOUNT_UPDATE`.
//!
//! Accepts the bare event object, the combined-stream wrapper `{"stream":..,"data":{..}}` and
//! the WebSocket-API wrapper `{"subscriptionId":N,"event":{..}}`. User data is a few events
//! per second, so this builds a simd-json borrowed DOM (with reused [`simd_json::Buffers`])
//! and reads fields by key; correctness and never panicking matter more here than the last
//! nanosecond.
//!
//! Numbers: an order's own prices and quantities (`p`, `q`, `sp`, `l`, `z`, `L`, `pa`) are
//! parsed strictly at the instrument's scales (digits beyond the scale are an error, never
//! dropped). Prices the venue computes (`ap`, `ep`) are rounded half away from zero to the
//! price scale. Asset amounts are [`Money`], rounded half away from zero beyond
//! [`super::money::MONEY_SCALE`] places (Binance sends at most 8, so in practice exact).

use simd_json::Buffers;

use super::event::{
    AccountPosition, AssetBalance, BalanceDelta, ExecutionReport, FuturesAccountUpdate,
    FuturesBalance, FuturesPosition, ListOrder, ListStatus, UserEvent,
};
use super::json_obj::{truncate, unwrap_envelope, Obj};
use super::kinds::{
    ExecType, MarginType, OrderSide, OrderStatus, OrderType, TimeInForce, VenuePositionSide,
};
use super::money::Money;
use crate::fixed::{FixedError, Price};
use crate::instrument::{InstrumentId, Market, Registry};

/// Largest user-data frame accepted (real ones are under 2 KiB).
pub const MAX_USER_FRAME_BYTES: usize = 64 << 10;

/// Deepest JSON nesting accepted (real frames nest 3 levels).
const MAX_DEPTH: usize = 16;

/// A user-data frame that could not be decoded. Every variant is the peer's fault (or a
/// corrupted journal); the decoder stays usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserDataError {
    /// Zero bytes.
    #[error("empty user-data frame")]
    Empty,
    /// Larger than [`MAX_USER_FRAME_BYTES`].
    #[error("user-data frame of {len} bytes exceeds the {max}-byte limit")]
    Oversize {
        /// Frame size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not valid JSON (or nested deeper than 16 levels).
    #[error("malformed user-data JSON at byte {offset}: {reason}")]
    Json {
        /// Byte offset simd-json reported.
        offset: usize,
        /// simd-json's error kind.
        reason: String,
    },
    /// The frame, its `data`/`event`, or a nested field is not an object.
    #[error("{context} is {found}, expected an object")]
    NotObject {
        /// What was expected to be an object.
        context: &'static str,
        /// The JSON type found.
        found: &'static str,
    },
    /// An event type (`e`) this decoder does not handle.
    #[error("unknown user-data event type {event:?}")]
    UnknownEvent {
        /// The `e` value (truncated).
        event: String,
    },
    /// A required key is absent (or `null`).
    #[error("{event}: missing field {field:?}")]
    MissingField {
        /// Event being decoded.
        event: &'static str,
        /// The key.
        field: &'static str,
    },
    /// A key holds a value of the wrong JSON type.
    #[error("{event}.{field}: expected {expected}, found {found}")]
    WrongType {
        /// Event being decoded.
        event: &'static str,
        /// The key.
        field: &'static str,
        /// What it must hold.
        expected: &'static str,
        /// What it held.
        found: &'static str,
    },
    /// A decimal string that does not parse at its scale.
    #[error("{event}.{field}: bad number {value:?}: {error}")]
    BadNumber {
        /// Event being decoded.
        event: &'static str,
        /// The key.
        field: &'static str,
        /// The string (truncated).
        value: String,
        /// Why it did not parse.
        error: FixedError,
    },
    /// A string that is not one of the values the field allows (side `HOLD`, ...), or an
    /// invalid client order id or asset code.
    #[error("{event}.{field}: unexpected value {value:?}")]
    BadValue {
        /// Event being decoded.
        event: &'static str,
        /// The key.
        field: &'static str,
        /// The value (truncated).
        value: String,
    },
    /// The symbol is not in the registry.
    #[error("{event}: unknown symbol {market}:{symbol}")]
    UnknownSymbol {
        /// Event being decoded.
        event: &'static str,
        /// Market the symbol was looked up on.
        market: Market,
        /// The symbol (truncated).
        symbol: String,
    },
}

impl UserDataError {
    /// A stable short name per variant, for error counters.
    pub fn code(&self) -> &'static str {
        match self {
            UserDataError::Empty => "empty",
            UserDataError::Oversize { .. } => "oversize",
            UserDataError::Json { .. } => "json",
            UserDataError::NotObject { .. } => "not_object",
            UserDataError::UnknownEvent { .. } => "unknown_event",
            UserDataError::MissingField { .. } => "missing_field",
            UserDataError::WrongType { .. } => "wrong_type",
            UserDataError::BadNumber { .. } => "bad_number",
            UserDataError::BadValue { .. } => "bad_value",
            UserDataError::UnknownSymbol { .. } => "unknown_symbol",
        }
    }
}

/// A reusable user-data decoder; one per connection or thread.
pub struct UserDataDecoder {
    scratch: Vec<u8>,
    buffers: Buffers,
}

impl std::fmt::Debug for UserDataDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserDataDecoder")
            .field("scratch_capacity", &self.scratch.capacity())
            .finish_non_exhaustive()
    }
}

impl Default for UserDataDecoder {
    fn default() -> Self {
        UserDataDecoder::new()
    }
}

impl UserDataDecoder {
    /// A decoder with buffers sized for typical frames.
    pub fn new() -> Self {
        UserDataDecoder {
            scratch: Vec::with_capacity(4096),
            buffers: Buffers::with_max_depth(4096, MAX_DEPTH),
        }
    }

    /// Decodes one user-data frame.
    ///
    /// Spot events look their symbols up on [`Market::Spot`]; USD-M events on
    /// `futures_market` (pass [`Market::UsdM`]; a non-futures value is taken as USD-M).
    ///
    /// # Errors
    /// A [`UserDataError`] naming the event and field; the decoder stays usable.
    pub fn decode(
        &mut self,
        frame: &[u8],
        futures_market: Market,
        registry: &Registry,
    ) -> Result<UserEvent, UserDataError> {
        if frame.is_empty() {
            return Err(UserDataError::Empty);
        }
        if frame.len() > MAX_USER_FRAME_BYTES {
            return Err(UserDataError::Oversize {
                len: frame.len(),
                max: MAX_USER_FRAME_BYTES,
            });
        }
        let futures = if futures_market.is_futures() {
            futures_market
        } else {
            Market::UsdM
        };
        self.scratch.clear();
        self.scratch.extend_from_slice(frame);
        let root = simd_json::borrowed::to_value_with_buffers(&mut self.scratch, &mut self.buffers)
            .map_err(|e| UserDataError::Json {
                offset: e.index(),
                reason: format!("{:?}", e.error()),
            })?;
        let event = unwrap_envelope(&root)?;
        let ctx = Ctx { registry, futures };
        let e = Obj {
            map: event,
            event: "frame",
        };
        match e.str("e")? {
            "executionReport" => ctx.execution_report(e.named("executionReport")),
            "ORDER_TRADE_UPDATE" => ctx.order_trade_update(e.named("ORDER_TRADE_UPDATE")),
            "outboundAccountPosition" => account_position(e.named("outboundAccountPosition")),
            "balanceUpdate" => balance_update(e.named("balanceUpdate")),
            "listStatus" => ctx.list_status(e.named("listStatus")),
            "ACCOUNT_UPDATE" => ctx.account_update(e.named("ACCOUNT_UPDATE")),
            other => Err(UserDataError::UnknownEvent {
                event: truncate(other),
            }),
        }
    }
}

/// Per-call decoding context.
struct Ctx<'r> {
    registry: &'r Registry,
    futures: Market,
}

impl Ctx<'_> {
    /// The instrument for symbol field `field` on `market`, with its scales.
    fn instrument(
        &self,
        o: &Obj<'_, '_>,
        field: &'static str,
        market: Market,
    ) -> Result<(InstrumentId, u8, u8), UserDataError> {
        let s = o.str(field)?;
        let id = self.registry.lookup(market, s.as_bytes()).ok_or_else(|| {
            UserDataError::UnknownSymbol {
                event: o.event,
                market,
                symbol: truncate(s),
            }
        })?;
        let inst = self.registry.get(id);
        Ok((id, inst.price_scale, inst.qty_scale))
    }

    fn execution_report(&self, e: Obj<'_, '_>) -> Result<UserEvent, UserDataError> {
        let market = Market::Spot;
        let (instrument, ps, qs) = self.instrument(&e, "s", market)?;
        Ok(UserEvent::Execution(ExecutionReport {
            market,
            instrument,
            event_time_ms: e.u64("E")?,
            transact_time_ms: e.u64("T")?,
            client_order_id: e.client_id("c")?,
            orig_client_order_id: e.opt_client_id("C")?,
            order_id: e.u64("i")?,
            side: e.parsed("S", OrderSide::parse)?,
            order_type: e.parsed("o", |s| OrderType::parse(s, market))?,
            time_in_force: e.parsed("f", TimeInForce::parse)?,
            qty: e.qty("q", qs)?,
            price: e.price("p", ps)?,
            stop_price: e.price("P", ps)?,
            exec_type: e.parsed("x", ExecType::parse)?,
            status: e.parsed("X", OrderStatus::parse)?,
            reject_reason: e.opt_reason("r")?,
            last_qty: e.qty("l", qs)?,
            cum_qty: e.qty("z", qs)?,
            last_price: e.price("L", ps)?,
            fee: e.opt_money("n")?.unwrap_or(Money::ZERO),
            fee_asset: e.opt_asset("N")?,
            trade_id: e.opt_id("t")?,
            is_maker: e.bool_or_false("m")?,
            reduce_only: false,
            position_side: VenuePositionSide::Both,
            venue_realized_pnl: None,
            venue_avg_price: None,
            cum_quote: e.opt_money("Z")?,
            order_time_ms: e.opt_i64("O")?.and_then(|v| u64::try_from(v).ok()),
            order_list_id: e.opt_id("g")?,
        }))
    }

    fn order_trade_update(&self, e: Obj<'_, '_>) -> Result<UserEvent, UserDataError> {
        let market = self.futures;
        let o = e.obj("o")?;
        let (instrument, ps, qs) = self.instrument(&o, "s", market)?;
        Ok(UserEvent::Execution(ExecutionReport {
            market,
            instrument,
            event_time_ms: e.u64("E")?,
            transact_time_ms: e.u64("T")?,
            client_order_id: o.client_id("c")?,
            orig_client_order_id: None,
            order_id: o.u64("i")?,
            side: o.parsed("S", OrderSide::parse)?,
            order_type: o.parsed("o", |s| OrderType::parse(s, market))?,
            time_in_force: o.parsed("f", TimeInForce::parse)?,
            qty: o.qty("q", qs)?,
            price: o.price("p", ps)?,
            stop_price: o.opt_rounded("sp", ps)?.map(Price).unwrap_or_default(),
            exec_type: o.parsed("x", ExecType::parse)?,
            status: o.parsed("X", OrderStatus::parse)?,
            reject_reason: None,
            last_qty: o.qty("l", qs)?,
            cum_qty: o.qty("z", qs)?,
            last_price: o.price("L", ps)?,
            fee: o.opt_money("n")?.unwrap_or(Money::ZERO),
            fee_asset: o.opt_asset("N")?,
            trade_id: o.opt_id("t")?,
            is_maker: o.bool_or_false("m")?,
            reduce_only: o.bool_or_false("R")?,
            position_side: match o.opt_str("ps")? {
                None => VenuePositionSide::Both,
                Some(s) => {
                    VenuePositionSide::parse(s.as_bytes()).ok_or_else(|| o.bad_value("ps", s))?
                }
            },
            venue_realized_pnl: o.opt_money("rp")?,
            venue_avg_price: o.opt_rounded("ap", ps)?.map(Price),
            cum_quote: None,
            order_time_ms: None,
            order_list_id: None,
        }))
    }

    fn list_status(&self, e: Obj<'_, '_>) -> Result<UserEvent, UserDataError> {
        let (instrument, _, _) = self.instrument(&e, "s", Market::Spot)?;
        let orders = e
            .objects("O")?
            .into_iter()
            .map(|o| {
                Ok(ListOrder {
                    instrument: self.instrument(&o, "s", Market::Spot)?.0,
                    order_id: o.u64("i")?,
                    client_order_id: o.client_id("c")?,
                })
            })
            .collect::<Result<Vec<_>, UserDataError>>()?;
        Ok(UserEvent::ListStatus(ListStatus {
            instrument,
            event_time_ms: e.u64("E")?,
            transact_time_ms: e.u64("T")?,
            order_list_id: e.u64("g")?,
            contingency_type: truncate(e.str("c")?),
            list_status_type: truncate(e.str("l")?),
            list_order_status: truncate(e.str("L")?),
            reject_reason: e.opt_reason("r")?,
            list_client_order_id: e.client_id("C")?,
            orders,
        }))
    }

    fn account_update(&self, e: Obj<'_, '_>) -> Result<UserEvent, UserDataError> {
        let a = e.obj("a")?;
        let balances = a
            .objects("B")?
            .into_iter()
            .map(|b| {
                Ok(FuturesBalance {
                    asset: b.asset("a")?,
                    wallet: b.money("wb")?,
                    cross_wallet: b.money("cw")?,
                    change: b.opt_money("bc")?,
                })
            })
            .collect::<Result<Vec<_>, UserDataError>>()?;
        let positions = a
            .objects("P")?
            .into_iter()
            .map(|p| {
                let (instrument, ps, qs) = self.instrument(&p, "s", self.futures)?;
                Ok(FuturesPosition {
                    instrument,
                    amount: p.qty("pa", qs)?,
                    entry_price: Price(p.opt_rounded("ep", ps)?.ok_or(
                        UserDataError::MissingField {
                            event: p.event,
                            field: "ep",
                        },
                    )?),
                    accumulated_realized: p.opt_money("cr")?.unwrap_or(Money::ZERO),
                    unrealized: p.opt_money("up")?.unwrap_or(Money::ZERO),
                    margin_type: p.parsed("mt", MarginType::parse)?,
                    isolated_wallet: p.opt_money("iw")?.unwrap_or(Money::ZERO),
                    position_side: p.parsed("ps", VenuePositionSide::parse)?,
                })
            })
            .collect::<Result<Vec<_>, UserDataError>>()?;
        Ok(UserEvent::AccountUpdate(FuturesAccountUpdate {
            event_time_ms: e.u64("E")?,
            transact_time_ms: e.u64("T")?,
            reason: truncate(a.str("m")?),
            balances,
            positions,
        }))
    }
}

fn account_position(e: Obj<'_, '_>) -> Result<UserEvent, UserDataError> {
    let balances = e
        .objects("B")?
        .into_iter()
        .map(|b| {
            Ok(AssetBalance {
                asset: b.asset("a")?,
                free: b.money("f")?,
                locked: b.money("l")?,
            })
        })
        .collect::<Result<Vec<_>, UserDataError>>()?;
    Ok(UserEvent::AccountPosition(AccountPosition {
        event_time_ms: e.u64("E")?,
        last_update_ms: e.u64("u")?,
        balances,
    }))
}

fn balance_update(e: Obj<'_, '_>) -> Result<UserEvent, UserDataError> {
    Ok(UserEvent::BalanceUpdate(BalanceDelta {
        event_time_ms: e.u64("E")?,
        asset: e.asset("a")?,
        delta: e.money("d")?,
        clear_time_ms: e.u64("T")?,
    }))
}
