//! WebSocket API requests (`{"id":..,"method":..,"params":{..}}`) as the sim validates them,
//! with Binance's error codes.
//!
//! Parameter values are read from their raw JSON text, so a number sent as a JSON number
//! (`"quantity":0.5`) is kept exactly as written and never passes through `f64`.

use std::collections::BTreeMap;

use serde_json::value::RawValue;
use tape_core::account::ClientOrderId;
use tape_core::fixed::{parse_fixed, FixedError};
use tape_core::instrument::Market;

use super::auth::SessionOp;
use super::kinds::{Kind, OrderSide, Tif};
use crate::sim::rest::{legal_symbol, SYMBOL_RANGE};

/// Longest request `id` echoed back, in bytes of its JSON text (a string id of up to 64
/// plain characters, or an integer).
const MAX_ID_BYTES: usize = 66;
/// At most this many characters of a client's text are quoted in an error message.
const ECHO_MAX: usize = 40;
/// Binance's legal range for decimal parameters.
const DECIMAL_RANGE: &str = "^([0-9]{1,20})(\\.[0-9]{1,20})?$";
/// Binance's legal range for client order ids.
const CLIENT_ID_RANGE: &str = "^[\\.A-Z\\:/a-z0-9_-]{1,36}$";
/// Parameters every method accepts here: the authentication parameters, which `auth` checks
/// (strict mode) before the call is parsed, and lenient mode ignores; `returnRateLimits` is
/// read by the venue's rate limiting.
const IGNORED: [&str; 5] = [
    "apiKey",
    "timestamp",
    "signature",
    "recvWindow",
    "returnRateLimits",
];

/// A refused request: Binance's error code and message (sent with [`ApiError::status`]: 400, or
/// 401 for the authentication errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub code: i32,
    pub msg: String,
}

impl ApiError {
    pub fn new(code: i32, msg: impl Into<String>) -> ApiError {
        ApiError {
            code,
            msg: msg.into(),
        }
    }

    /// -1102: a mandatory parameter is missing, empty, null or malformed.
    pub fn missing(param: &str) -> ApiError {
        ApiError::new(
            -1102,
            format!(
                "Mandatory parameter '{}' was not sent, was empty/null, or malformed.",
                clip(param)
            ),
        )
    }

    /// -1100: a parameter outside its legal range.
    pub fn illegal(param: &str, range: &str) -> ApiError {
        ApiError::new(
            -1100,
            format!(
                "Illegal characters found in parameter '{}'; legal range is '{range}'.",
                clip(param)
            ),
        )
    }

    /// -1135: not a JSON request the API can read.
    pub fn invalid_json(what: &str) -> ApiError {
        ApiError::new(-1135, format!("Invalid JSON request: {what}."))
    }
}

/// `s` cut to [`ECHO_MAX`] characters, for error messages.
fn clip(s: &str) -> String {
    s.chars().take(ECHO_MAX).collect()
}

/// `order.place` parameters, checked for presence and form; decimals are parsed later, at the
/// symbol's scales ([`decimal`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlaceParams {
    pub symbol: String,
    pub side: OrderSide,
    pub kind: Kind,
    /// `GTC` for market orders.
    pub tif: Tif,
    pub quantity: String,
    /// Limit orders only.
    pub price: Option<String>,
    pub client_id: Option<String>,
    /// Futures only; accepted and echoed, not enforced.
    pub reduce_only: bool,
}

/// `order.cancel` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CancelParams {
    pub symbol: String,
    pub order_id: Option<u64>,
    pub orig_client_id: Option<String>,
    /// Spot: the cancel's own client id (`c` of the CANCELED report).
    pub new_client_id: Option<String>,
}

/// A request the sim understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    Place(PlaceParams),
    Cancel(CancelParams),
    Subscribe,
    Unsubscribe(Option<u64>),
    Ping,
    /// `order.status`.
    OrderStatus(super::QueryParams),
    /// `openOrders.status`, optionally of one symbol.
    OpenOrders(Option<String>),
    /// Spot `account.status`; `true`: omit zero balances.
    AccountStatus(bool),
    /// Futures `account.position`, optionally of one symbol.
    AccountPosition(Option<String>),
    /// Futures `account.balance`.
    AccountBalance,
    /// Futures `userDataStream.start` / `.ping` / `.stop`.
    ListenKeyStart,
    ListenKeyPing,
    ListenKeyStop,
    /// `time`: the wall clock.
    Time,
    /// `session.logon`, `session.status`, `session.logout` (see `auth`).
    Session(SessionOp),
}

/// A parsed request: the `id` to echo (its JSON text, `null` when absent or unusable) and
/// the call or why it was refused.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    pub id: &'a str,
    pub call: Result<Call, ApiError>,
}

/// Parses one request frame for a listener of `market`. Never panics.
pub(crate) fn parse(text: &str, market: Market) -> Request<'_> {
    let refuse = |e| Request {
        id: "null",
        call: Err(e),
    };
    let Ok(top) = serde_json::from_str::<BTreeMap<String, &RawValue>>(text) else {
        return refuse(ApiError::invalid_json("expected a JSON object"));
    };
    let id = match top.get("id").map(|r| r.get()) {
        None | Some("null") => "null",
        Some(raw) if valid_id(raw) => raw,
        Some(_) => {
            return refuse(ApiError::invalid_json(
                "'id' must be an integer, a string of at most 64 characters, or null",
            ))
        }
    };
    let call = call(&top, market);
    Request { id, call }
}

/// An integer (`-?[0-9]{1,20}`) or a short JSON string.
fn valid_id(raw: &str) -> bool {
    if raw.len() > MAX_ID_BYTES {
        return false;
    }
    if raw.starts_with('"') {
        return true;
    }
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    (1..=20).contains(&digits.len()) && digits.bytes().all(|c| c.is_ascii_digit())
}

fn call(top: &BTreeMap<String, &RawValue>, market: Market) -> Result<Call, ApiError> {
    let method = match top.get("method") {
        None => return Err(ApiError::missing("method")),
        Some(raw) => serde_json::from_str::<String>(raw.get())
            .map_err(|_| ApiError::invalid_json("'method' must be a string"))?,
    };
    let params = match top.get("params") {
        None => Params::default(),
        Some(raw) if raw.get() == "null" => Params::default(),
        Some(raw) => Params {
            map: serde_json::from_str(raw.get())
                .map_err(|_| ApiError::invalid_json("'params' must be an object"))?,
        },
    };
    match method.as_str() {
        "order.place" => place(&params, market).map(Call::Place),
        "order.cancel" => cancel(&params, market).map(Call::Cancel),
        // The signature form differs only in how it is authorized (`auth`).
        "userDataStream.subscribe" | "userDataStream.subscribe.signature" => {
            params.only(&[]).map(|()| Call::Subscribe)
        }
        "time" => params.only(&[]).map(|()| Call::Time),
        "session.logon" => params.only(&[]).map(|()| Call::Session(SessionOp::Logon)),
        "session.status" => params.only(&[]).map(|()| Call::Session(SessionOp::Status)),
        "session.logout" => params.only(&[]).map(|()| Call::Session(SessionOp::Logout)),
        "userDataStream.unsubscribe" => {
            params.only(&["subscriptionId"])?;
            let id = params
                .text("subscriptionId")?
                .map(|s| integer("subscriptionId", &s))
                .transpose()?;
            Ok(Call::Unsubscribe(id))
        }
        "ping" => params.only(&[]).map(|()| Call::Ping),
        m => match super::queries::call(m, &params, market) {
            Some(call) => call,
            None => Err(unknown(m)),
        },
    }
}

/// -1020 for a method the sim does not serve on this market.
fn unknown(m: &str) -> ApiError {
    ApiError::new(
        -1020,
        format!(
            "This operation is not supported: unknown method '{}' (the sim serves order.place, \
             order.cancel, order.status, userDataStream.subscribe, userDataStream.unsubscribe, \
             ping; spot openOrders.status, account.status; futures account.position, \
             account.balance, userDataStream.start/ping/stop).",
            clip(m)
        ),
    )
}

/// A request's `params`, values as raw JSON.
#[derive(Default)]
pub(super) struct Params<'a> {
    map: BTreeMap<String, &'a RawValue>,
}

impl Params<'_> {
    /// Refuses (-1103) any parameter outside `allowed` and [`IGNORED`].
    pub(super) fn only(&self, allowed: &[&str]) -> Result<(), ApiError> {
        match self
            .map
            .keys()
            .find(|k| !allowed.contains(&k.as_str()) && !IGNORED.contains(&k.as_str()))
        {
            Some(k) => Err(ApiError::new(
                -1103,
                format!("An unknown parameter was sent: '{}'.", clip(k)),
            )),
            None => Ok(()),
        }
    }

    /// A value as text: a string's contents, a number or boolean literal as written; `None`
    /// when absent, null or empty.
    ///
    /// # Errors
    /// -1102 for an object or array.
    pub(super) fn text(&self, name: &str) -> Result<Option<String>, ApiError> {
        let Some(raw) = self.map.get(name).map(|r| r.get()) else {
            return Ok(None);
        };
        let s = match raw.as_bytes().first() {
            Some(b'"') => {
                serde_json::from_str::<String>(raw).map_err(|_| ApiError::missing(name))?
            }
            Some(b'{' | b'[') => return Err(ApiError::missing(name)),
            _ if raw == "null" => return Ok(None),
            _ => raw.to_owned(),
        };
        Ok(Some(s).filter(|s| !s.is_empty()))
    }

    pub(super) fn required(&self, name: &str) -> Result<String, ApiError> {
        self.text(name)?.ok_or_else(|| ApiError::missing(name))
    }

    /// The symbol: present and in Binance's legal range (whether it is listed is the
    /// caller's question).
    pub(super) fn symbol(&self) -> Result<String, ApiError> {
        let s = self.required("symbol")?;
        if !legal_symbol(&s) {
            return Err(ApiError::illegal("symbol", SYMBOL_RANGE));
        }
        Ok(s)
    }

    pub(super) fn client_id(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.text(name)? {
            Some(s) if ClientOrderId::new(&s).is_err() => {
                Err(ApiError::illegal(name, CLIENT_ID_RANGE))
            }
            other => Ok(other),
        }
    }
}

fn place(p: &Params<'_>, market: Market) -> Result<PlaceParams, ApiError> {
    let spot = [
        "symbol",
        "side",
        "type",
        "timeInForce",
        "quantity",
        "price",
        "newClientOrderId",
        "newOrderRespType",
    ];
    if market.is_futures() {
        let mut futures = spot.to_vec();
        futures.extend(["reduceOnly", "positionSide"]);
        p.only(&futures)?;
    } else {
        p.only(&spot)?;
    }
    let symbol = p.symbol()?;
    let side = OrderSide::parse(&p.required("side")?)
        .ok_or_else(|| ApiError::new(-1117, "Invalid side."))?;
    let kind = match p.required("type")?.as_str() {
        "MARKET" => Kind::Market,
        "LIMIT" => Kind::Limit,
        _ => {
            return Err(ApiError::new(
                -1116,
                "Invalid orderType (the sim accepts LIMIT and MARKET).",
            ))
        }
    };
    let tif = p.text("timeInForce")?;
    let price = p.text("price")?;
    let tif = match kind {
        Kind::Limit => {
            let tif = tif.ok_or_else(|| ApiError::missing("timeInForce"))?;
            Tif::parse(&tif).ok_or_else(|| {
                ApiError::new(
                    -1115,
                    "Invalid timeInForce (the sim accepts GTC, IOC and FOK).",
                )
            })?
        }
        Kind::Market if tif.is_some() => {
            return Err(ApiError::new(
                -1106,
                "Parameter 'timeInForce' sent when not required.",
            ))
        }
        Kind::Market => Tif::Gtc,
    };
    let quantity = p.required("quantity")?;
    let price = match kind {
        Kind::Limit => Some(price.ok_or_else(|| ApiError::missing("price"))?),
        Kind::Market if price.is_some() => {
            return Err(ApiError::new(
                -1106,
                "Parameter 'price' sent when not required.",
            ))
        }
        Kind::Market => None,
    };
    let reduce_only = match p.text("reduceOnly")?.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::illegal("reduceOnly", "^(true|false)$")),
    };
    if p.text("positionSide")?.is_some_and(|s| s != "BOTH") {
        return Err(ApiError::new(
            -4061,
            "Order's position side does not match user's setting (the sim is one-way: BOTH).",
        ));
    }
    Ok(PlaceParams {
        symbol,
        side,
        kind,
        tif,
        quantity,
        price,
        client_id: p.client_id("newClientOrderId")?,
        reduce_only,
    })
}

fn cancel(p: &Params<'_>, market: Market) -> Result<CancelParams, ApiError> {
    if market.is_futures() {
        p.only(&["symbol", "orderId", "origClientOrderId"])?;
    } else {
        p.only(&["symbol", "orderId", "origClientOrderId", "newClientOrderId"])?;
    }
    let (symbol, order_id, orig_client_id) = order_ref(p)?;
    Ok(CancelParams {
        symbol,
        order_id,
        orig_client_id,
        new_client_id: p.client_id("newClientOrderId")?,
    })
}

/// A non-negative integer parameter.
/// The order a cancel or a query names: `symbol`, and `orderId` or `origClientOrderId` (at
/// least one, as Binance requires).
pub(super) fn order_ref(p: &Params<'_>) -> Result<(String, Option<u64>, Option<String>), ApiError> {
    let symbol = p.symbol()?;
    let order_id = p
        .text("orderId")?
        .map(|s| integer("orderId", &s))
        .transpose()?;
    let orig_client_id = p.client_id("origClientOrderId")?;
    if order_id.is_none() && orig_client_id.is_none() {
        return Err(ApiError::new(
            -1102,
            "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
        ));
    }
    Ok((symbol, order_id, orig_client_id))
}

pub(super) fn integer(name: &str, s: &str) -> Result<u64, ApiError> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|c| c.is_ascii_digit()) {
        return Err(ApiError::illegal(name, "^[0-9]{1,20}$"));
    }
    s.parse()
        .map_err(|_| ApiError::illegal(name, "^[0-9]{1,20}$"))
}

/// What a decimal parameter is for, which names the filter a bad value fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecimalKind {
    Quantity,
    Price,
}

/// A positive decimal parameter as a mantissa at `scale`.
///
/// # Errors
/// -1100 outside Binance's legal range, -1111 for more decimals than the symbol has, -1013
/// for zero or a value too large to represent.
pub(crate) fn decimal(name: &str, s: &str, scale: u8, kind: DecimalKind) -> Result<i64, ApiError> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |d: &str| d.len() <= 20 && d.bytes().all(|c| c.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) || (s.contains('.') && frac.is_empty()) {
        return Err(ApiError::illegal(name, DECIMAL_RANGE));
    }
    let filter = match kind {
        DecimalKind::Quantity => "Filter failure: LOT_SIZE",
        DecimalKind::Price => "Filter failure: PRICE_FILTER",
    };
    match parse_fixed(s.as_bytes(), scale) {
        Ok(v) if v > 0 => Ok(v),
        Ok(_) | Err(FixedError::Overflow) => Err(ApiError::new(-1013, filter)),
        Err(FixedError::Precision { .. }) => Err(ApiError::new(
            -1111,
            format!(
                "Parameter '{}' has too much precision: at most {scale} decimals.",
                clip(name)
            ),
        )),
        Err(FixedError::Syntax) => Err(ApiError::illegal(name, DECIMAL_RANGE)),
    }
}
