//! Order-entry and publish requests: client JSON in, a typed [`Command`] out.
//!
//! The body is read with the hub's reader and `id` rule ([`crate::wire::request`]): the hub
//! looks only at its `type` and `id` and journals the raw bytes; this is the one place its
//! fields are read, at apply time, live and in replay alike.
//!
//! Prices and quantities are JSON strings (`"61800.5"`), parsed exactly at the instrument's
//! scales; a JSON number there is refused, so no binary float ever touches a price.

use crate::wire::request::{request_id, Obj, Reader, Val, BAD_ID};

use super::{PrivateChannel, MAX_COMMAND_BYTES};
use crate::account::{
    AdvancedId, BracketRequest, ClientOrderId, Leg, OcoRequest, OrderRequest, OrderSide, OrderType,
    TimeInForce, TrailOffset, TrailingRequest, TriggerDir,
};
use crate::fixed::{parse_fixed, Price, Qty};
use crate::instrument::{InstrumentId, Market, Registry};

/// Error code: invalid message (shared with the public protocol).
const E_INVALID: u16 = 4004;
/// Error code: unknown or ambiguous symbol (shared with the public protocol).
const E_SYMBOL: u16 = 4005;

/// Largest `data` of a published message, bytes (as re-serialized).
pub const MAX_PUBLISH_BYTES: usize = 4096;

/// A validated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `place_order`, with `take_profit` and `stop_loss` it is a bracket.
    Place {
        /// The order.
        order: OrderRequest,
        /// Its bracket, if any.
        bracket: Option<BracketRequest>,
    },
    /// `place_oco`.
    Oco(OcoRequest),
    /// `place_trailing`.
    Trailing(TrailingRequest),
    /// `cancel_order` by `client_order_id`.
    Cancel(ClientOrderId),
    /// `cancel_order` by `advanced_id`.
    CancelAdvanced(AdvancedId),
    /// `cancel_all`: every live order and advanced order of the user, or, with
    /// `"all_users":true` (role `admin`, checked by the hub), of every user.
    CancelAll {
        /// Every user's, not only the sender's.
        all_users: bool,
    },
    /// `publish` to `signal` or `bot_status`; `data` is compact JSON.
    Publish {
        /// The channel.
        channel: PrivateChannel,
        /// The payload, re-serialized compactly.
        data: String,
    },
}

impl Command {
    /// The instrument the command is about, if any.
    pub fn instrument(&self) -> Option<InstrumentId> {
        match self {
            Command::Place { order, .. } => Some(order.instrument),
            Command::Oco(r) => Some(r.instrument),
            Command::Trailing(r) => Some(r.instrument),
            _ => None,
        }
    }

    /// The protocol name of the request.
    pub fn kind(&self) -> &'static str {
        match self {
            Command::Place { .. } => "place_order",
            Command::Oco(_) => "place_oco",
            Command::Trailing(_) => "place_trailing",
            Command::Cancel(_) | Command::CancelAdvanced(_) => "cancel_order",
            Command::CancelAll { .. } => "cancel_all",
            Command::Publish { .. } => "publish",
        }
    }
}

/// Why a request is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// Not a valid request.
    #[error("invalid message: {0}")]
    Invalid(String),
    /// The symbol is unknown or ambiguous.
    #[error("{0}")]
    Symbol(String),
}

impl CommandError {
    /// The protocol error code.
    pub fn code(&self) -> u16 {
        match self {
            CommandError::Invalid(_) => E_INVALID,
            CommandError::Symbol(_) => E_SYMBOL,
        }
    }
}

/// A parsed request: its rendered `id` and the command.
#[derive(Debug)]
pub struct Parsed {
    /// The `id` as JSON text, when valid.
    pub id: Option<String>,
    /// The command.
    pub command: Result<Command, CommandError>,
}

fn invalid(m: impl Into<String>) -> CommandError {
    CommandError::Invalid(m.into())
}

/// Parses one request body with `reader`'s reused buffers (no allocation once warm). Never
/// panics.
pub fn parse(reader: &mut Reader, body: &[u8], registry: &Registry) -> Parsed {
    if body.len() > MAX_COMMAND_BYTES {
        return Parsed {
            id: None,
            command: Err(invalid(format!("over {MAX_COMMAND_BYTES} bytes"))),
        };
    }
    reader.read(body, |root| {
        let obj = match root {
            Ok(o) => o,
            Err(e) => {
                return Parsed {
                    id: None,
                    command: Err(invalid(e.message())),
                }
            }
        };
        match request_id(obj) {
            Ok(id) => Parsed {
                id,
                command: command(obj, registry),
            },
            Err(()) => Parsed {
                id: None,
                command: Err(invalid(BAD_ID)),
            },
        }
    })
}

fn command(o: Obj<'_>, registry: &Registry) -> Result<Command, CommandError> {
    let kind = o
        .kind()
        .ok_or_else(|| invalid("expected a JSON object with a \"type\""))?;
    match kind {
        "place_order" => place(o, registry),
        "place_oco" => oco(o, registry),
        "place_trailing" => trailing(o, registry),
        "cancel_order" => cancel(o),
        "cancel_all" => match o.get("all_users") {
            None => Ok(Command::CancelAll { all_users: false }),
            Some(v) => match v.as_bool() {
                Some(b) => Ok(Command::CancelAll { all_users: b }),
                None => Err(invalid("\"all_users\" must be true or false")),
            },
        },
        "publish" => publish(o),
        other => Err(invalid(format!(
            "unknown type {:?}",
            other.chars().take(64).collect::<String>()
        ))),
    }
}

fn string<'a>(o: Obj<'a>, k: &str) -> Result<&'a str, CommandError> {
    match o.get(k) {
        Some(v) => v
            .as_str()
            .ok_or_else(|| invalid(format!("\"{k}\" must be a string"))),
        None => Err(invalid(format!("\"{k}\" is required"))),
    }
}

fn opt_string<'a>(o: Obj<'a>, k: &str) -> Result<Option<&'a str>, CommandError> {
    match o.get(k) {
        None => Ok(None),
        Some(v) if v.is_null() => Ok(None),
        Some(_) => string(o, k).map(Some),
    }
}

fn flag(o: Obj<'_>, k: &str) -> Result<bool, CommandError> {
    match o.get(k) {
        None => Ok(false),
        Some(v) if v.is_null() => Ok(false),
        Some(v) => v
            .as_bool()
            .ok_or_else(|| invalid(format!("\"{k}\" must be true or false"))),
    }
}

/// The instrument a `symbol` (`SYMBOL` or `MARKET:SYMBOL`) names, exactly one.
fn instrument(o: Obj<'_>, registry: &Registry) -> Result<InstrumentId, CommandError> {
    let name = string(o, "symbol")?;
    let unknown = || {
        CommandError::Symbol(format!(
            "unknown symbol {:?}",
            name.chars().take(64).collect::<String>()
        ))
    };
    if let Some((m, sym)) = name.split_once(':') {
        let market = Market::parse(m).ok_or_else(unknown)?;
        return registry.lookup(market, sym.as_bytes()).ok_or_else(unknown);
    }
    let found: Vec<InstrumentId> = [Market::Spot, Market::UsdM, Market::CoinM]
        .into_iter()
        .filter_map(|m| registry.lookup(m, name.as_bytes()))
        .collect();
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(unknown()),
        _ => Err(CommandError::Symbol(format!(
            "ambiguous symbol {name:?}: name the market (e.g. \"usdm:{name}\")"
        ))),
    }
}

fn side(o: Obj<'_>) -> Result<OrderSide, CommandError> {
    let s = string(o, "side")?;
    OrderSide::parse(s.to_ascii_uppercase().as_bytes())
        .ok_or_else(|| invalid("\"side\" must be \"buy\" or \"sell\""))
}

fn scaled(s: &str, scale: u8, k: &str) -> Result<i64, CommandError> {
    let v = parse_fixed(s.as_bytes(), scale)
        .map_err(|e| invalid(format!("\"{k}\": {e} (at most {scale} decimals)")))?;
    if v <= 0 {
        return Err(invalid(format!("\"{k}\" must be positive")));
    }
    Ok(v)
}

fn price(o: Obj<'_>, k: &str, scale: u8) -> Result<Price, CommandError> {
    scaled(string(o, k)?, scale, k).map(Price)
}

fn opt_price(o: Obj<'_>, k: &str, scale: u8) -> Result<Option<Price>, CommandError> {
    opt_string(o, k)?
        .map(|s| scaled(s, scale, k).map(Price))
        .transpose()
}

fn qty(o: Obj<'_>, scale: u8) -> Result<Qty, CommandError> {
    scaled(string(o, "qty")?, scale, "qty").map(Qty)
}

fn client_id(o: Obj<'_>) -> Result<Option<ClientOrderId>, CommandError> {
    opt_string(o, "client_order_id")?
        .map(|s| ClientOrderId::new(s).map_err(|e| invalid(format!("\"client_order_id\": {e}"))))
        .transpose()
}

fn place(o: Obj<'_>, registry: &Registry) -> Result<Command, CommandError> {
    let inst = instrument(o, registry)?;
    let i = registry.get(inst);
    let side = side(o)?;
    let order_type = match string(o, "order_type")? {
        "market" => OrderType::Market,
        "limit" => OrderType::Limit,
        _ => return Err(invalid("\"order_type\" must be \"market\" or \"limit\"")),
    };
    let price = match order_type {
        OrderType::Limit => price(o, "price", i.price_scale)?,
        _ if o.get("price").is_some_and(|v| !v.is_null()) => {
            return Err(invalid("a market order takes no \"price\""))
        }
        _ => Price(0),
    };
    let time_in_force = match opt_string(o, "time_in_force")? {
        None if order_type == OrderType::Market => TimeInForce::Ioc,
        None => TimeInForce::Gtc,
        Some(s) => match TimeInForce::parse(s.to_ascii_uppercase().as_bytes()) {
            Some(t @ (TimeInForce::Gtc | TimeInForce::Ioc | TimeInForce::Fok)) => t,
            _ => return Err(invalid("\"time_in_force\" must be gtc, ioc or fok")),
        },
    };
    let reduce_only = flag(o, "reduce_only")?;
    let order = OrderRequest {
        client_order_id: client_id(o)?,
        instrument: inst,
        side,
        order_type,
        time_in_force,
        qty: qty(o, i.qty_scale)?,
        price,
        stop_price: Price(0),
        reduce_only,
    };
    let tp = opt_price(o, "take_profit", i.price_scale)?;
    let sl = opt_price(o, "stop_loss", i.price_scale)?;
    let bracket = match (tp, sl) {
        (None, None) => None,
        (Some(take_profit), Some(stop_loss)) => Some(BracketRequest {
            take_profit,
            stop_loss,
            reduce_only,
        }),
        _ => {
            return Err(invalid(
                "a bracket needs both \"take_profit\" and \"stop_loss\"",
            ))
        }
    };
    Ok(Command::Place { order, bracket })
}

fn leg(v: Val<'_>, scale: u8) -> Result<Leg, CommandError> {
    let Some(l) = v.as_obj() else {
        return Err(invalid("each leg must be an object"));
    };
    if let Some(trigger) = opt_price(l, "trigger", scale)? {
        let dir = match string(l, "when")? {
            "above" => TriggerDir::AtOrAbove,
            "below" => TriggerDir::AtOrBelow,
            _ => return Err(invalid("a leg's \"when\" must be \"above\" or \"below\"")),
        };
        return Ok(Leg::Trigger {
            dir,
            trigger,
            limit: opt_price(l, "price", scale)?,
        });
    }
    Ok(Leg::Limit {
        price: price(l, "price", scale)?,
    })
}

fn oco(o: Obj<'_>, registry: &Registry) -> Result<Command, CommandError> {
    let inst = instrument(o, registry)?;
    let i = registry.get(inst);
    let two = o.get("legs").filter(|v| v.array_len() == Some(2));
    let Some(mut legs) = two.and_then(Val::as_array) else {
        return Err(invalid("\"legs\" must be an array of two legs"));
    };
    let (first, second) = (legs.next().expect("two"), legs.next().expect("two"));
    let legs = [leg(first, i.price_scale)?, leg(second, i.price_scale)?];
    Ok(Command::Oco(OcoRequest {
        instrument: inst,
        side: side(o)?,
        qty: qty(o, i.qty_scale)?,
        legs,
        reduce_only: flag(o, "reduce_only")?,
    }))
}

fn trailing(o: Obj<'_>, registry: &Registry) -> Result<Command, CommandError> {
    let inst = instrument(o, registry)?;
    let i = registry.get(inst);
    let offset = match (opt_price(o, "offset", i.price_scale)?, o.get("offset_bps")) {
        (Some(p), None) => TrailOffset::Absolute(p),
        (None, Some(v)) => match v.as_u64() {
            Some(b @ 1..=9_999) => TrailOffset::Bps(b as u32),
            _ => return Err(invalid("\"offset_bps\" must be an integer from 1 to 9999")),
        },
        _ => return Err(invalid("give exactly one of \"offset\" and \"offset_bps\"")),
    };
    Ok(Command::Trailing(TrailingRequest {
        instrument: inst,
        side: side(o)?,
        qty: qty(o, i.qty_scale)?,
        offset,
        reduce_only: flag(o, "reduce_only")?,
    }))
}

fn cancel(o: Obj<'_>) -> Result<Command, CommandError> {
    match (client_id(o)?, opt_string(o, "advanced_id")?) {
        (Some(id), None) => Ok(Command::Cancel(id)),
        (None, Some(a)) => a
            .strip_prefix("adv-")
            .and_then(|n| n.parse().ok())
            .map(|n| Command::CancelAdvanced(AdvancedId(n)))
            .ok_or_else(|| invalid("\"advanced_id\" must look like \"adv-7\"")),
        _ => Err(invalid(
            "give exactly one of \"client_order_id\" and \"advanced_id\"",
        )),
    }
}

fn publish(o: Obj<'_>) -> Result<Command, CommandError> {
    let channel = match string(o, "channel")? {
        "signal" => PrivateChannel::Signal,
        "bot_status" => PrivateChannel::BotStatus,
        _ => return Err(invalid("\"channel\" must be \"signal\" or \"bot_status\"")),
    };
    let data = match o.get("data") {
        Some(v) if v.as_obj().is_some() => {
            let mut data = String::new();
            v.write_compact(&mut data);
            data
        }
        _ => return Err(invalid("\"data\" must be an object")),
    };
    if data.len() > MAX_PUBLISH_BYTES {
        return Err(invalid(format!("\"data\" over {MAX_PUBLISH_BYTES} bytes")));
    }
    Ok(Command::Publish { channel, data })
}
