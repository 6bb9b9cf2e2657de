//! The one encoding of control records: source definitions, link events, the desk setup and
//! client records (record kinds 1, 4, 5 and 6).
//!
//! Market data is journaled as the venue sent it; control records are tape's own words, and
//! they used to be four hand-made text formats (`tape-source/1`, `tape-link/1`, `tape-desk/1`,
//! `tape-client/1`), each with its own escaping, or none: a URL with a space or a user name
//! with a space could not round-trip. Version 2 is one format for all of them:
//!
//! ```text
//! {"v":2,"type":"source","market":"usdm","symbol":"BTCUSDT","price_scale":2,"qty_scale":3,"name":"rest"}
//! {"v":2,"type":"link","event":"down","reason":"closed by venue: 1001 going away"}
//! {"v":2,"type":"desk","users":["alice"],"quote_asset":"USDT","mark":"mid","maker_fee_bps":2,"taker_fee_bps":4,"gateway":"paper"}
//! {"v":2,"type":"client","op":"command","conn":7,"user":"alice"}
//! {"type":"place_order","symbol":"BTCUSDT"}
//! ```
//!
//! * The record is a *header*: one JSON object on one line (JSON escapes every control
//!   character, so a string never breaks the line), with `"v":2` and a `"type"` first. Every
//!   other field is typed: numbers are JSON numbers, decimals (risk limits) are strings so no
//!   digit is lost to a float, text is a JSON string carried verbatim.
//! * Only a `client` record has a *body*: after the header's `\n`, the client's request
//!   bytes exactly as received (the journal keeps raw bytes, never a re-encoding). Any other
//!   type with bytes after its header is refused.
//! * A reader refuses unknown fields, another version and another type, with a typed
//!   [`RecordError`]; it never panics, whatever the bytes.
//!
//! Writers emit version 2 only. Readers also accept the version 1 formats that journals
//! written before it hold ([`legacy`]): a payload that starts with `{` is version 2, anything
//! else goes to the legacy parser of its kind, which keeps the exact rules (and errors) it
//! always had, so every old journal replays to the digest it always had. Rules about *values*
//! (scales 0 to 18, known markets, fee ranges, positive limits, the 200-byte bound of a link
//! reason) are shared by both paths, so the same value means the same thing in either
//! encoding and the engine's outputs cannot depend on which one carried it.

pub mod legacy;

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::account::MarkSource;
use crate::desk::{ClientOp, ClientRecord, DeskError, DeskSetup, GatewayEvent, SetupError};
use crate::fixed::MAX_SCALE;
use crate::input::{SourceDef, SourceDefError};
use crate::instrument::Market;
use crate::venue::{one_line, LinkError, LinkEvent, MAX_REASON_BYTES};

/// The version this module writes (and the only JSON version it reads).
pub const VERSION: u64 = 2;

/// The `type` of a source definition (record kind 1).
pub const TYPE_SOURCE: &str = "source";
/// The `type` of a link event (record kind 4).
pub const TYPE_LINK: &str = "link";
/// The `type` of the desk setup (record kind 5).
pub const TYPE_DESK: &str = "desk";
/// The `type` of a client record (record kind 6).
pub const TYPE_CLIENT: &str = "client";
/// The `type` of a gateway event (record kind 8).
pub const TYPE_GATEWAY: &str = "gateway";

/// Why a version 2 record could not be read: the syntax and the types of its fields.
/// (What a well-typed value means is checked by the record's own type, with its own error.)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The header is not UTF-8.
    #[error("record header is not UTF-8")]
    NotUtf8,
    /// The header is not one JSON object.
    #[error("record header is not a JSON object: {0}")]
    Syntax(String),
    /// `"v"` names a version this build does not read.
    #[error("record version {0} is not supported (this build reads {VERSION})")]
    Version(u64),
    /// `"type"` is not the type the record kind carries.
    #[error("record type {found:?} where {expected:?} was expected")]
    Type {
        /// The type the record kind carries.
        expected: &'static str,
        /// What the record says (at most 64 chars).
        found: String,
    },
    /// A required field is absent.
    #[error("record field {0:?} is missing")]
    Missing(&'static str),
    /// A field has the wrong JSON type or an unknown value.
    #[error("record field {field:?} must be {expected}")]
    Field {
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// A field this type does not have.
    #[error("unknown record field {0:?}")]
    UnknownField(String),
    /// Bytes after the header of a type that has no body.
    #[error("a {0} record has nothing after its header")]
    Body(&'static str),
}

impl RecordError {
    /// A fixed description, for error types that can only hold a `&'static str`.
    pub fn summary(&self) -> &'static str {
        match self {
            RecordError::NotUtf8 => "header is not UTF-8",
            RecordError::Syntax(_) => "header is not a JSON object",
            RecordError::Version(_) => "unsupported record version",
            RecordError::Type { .. } => "wrong record type",
            RecordError::Missing(_) => "missing header field",
            RecordError::Field { .. } => "bad header field",
            RecordError::UnknownField(_) => "unknown header field",
            RecordError::Body(_) => "unexpected body",
        }
    }
}

/// True when `payload` is in the version 2 encoding (a JSON header); anything else is for the
/// [`legacy`] parsers. No legacy format starts with `{`.
pub fn is_v2(payload: &[u8]) -> bool {
    payload.first() == Some(&b'{')
}

// ---------------------------------------------------------------------------------------
// Writing

/// Builds one header: `{"v":2,"type":"..."` then fields in a fixed order, so equal values
/// always give equal bytes.
struct Header {
    out: String,
}

impl Header {
    fn new(ty: &str) -> Header {
        let mut out = String::with_capacity(96);
        let _ = write!(out, "{{\"v\":{VERSION},\"type\":");
        push_json_str(&mut out, ty);
        Header { out }
    }

    fn key(&mut self, k: &str) {
        self.out.push(',');
        push_json_str(&mut self.out, k);
        self.out.push(':');
    }

    fn str(mut self, k: &str, v: &str) -> Header {
        self.key(k);
        push_json_str(&mut self.out, v);
        self
    }

    fn opt_str(self, k: &str, v: Option<&str>) -> Header {
        match v {
            Some(v) => self.str(k, v),
            None => self,
        }
    }

    fn num(mut self, k: &str, v: impl std::fmt::Display) -> Header {
        self.key(k);
        let _ = write!(self.out, "{v}");
        self
    }

    fn opt_num(self, k: &str, v: Option<impl std::fmt::Display>) -> Header {
        match v {
            Some(v) => self.num(k, v),
            None => self,
        }
    }

    fn strs<'s>(mut self, k: &str, vs: impl IntoIterator<Item = &'s str>) -> Header {
        self.key(k);
        self.out.push('[');
        for (i, v) in vs.into_iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            push_json_str(&mut self.out, v);
        }
        self.out.push(']');
        self
    }

    fn finish(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

/// Appends `s` as a JSON string: quotes, backslashes and every control character escaped (so
/// the header stays one line), everything else (non-ASCII included) as is.
fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

// ---------------------------------------------------------------------------------------
// Reading

/// The fields of a header whose version and type were checked; each is taken at most once
/// and [`Fields::finish`] refuses what was not taken.
struct Fields(Map<String, Value>);

/// Splits a version 2 payload into its checked header fields and its body (the bytes after
/// the first `\n`, empty without one).
fn header<'p>(
    payload: &'p [u8],
    expected: &'static str,
) -> Result<(Fields, &'p [u8]), RecordError> {
    let nl = payload.iter().position(|&b| b == b'\n');
    let (head, body) = match nl {
        Some(i) => (&payload[..i], &payload[i + 1..]),
        None => (payload, &[][..]),
    };
    let head = std::str::from_utf8(head).map_err(|_| RecordError::NotUtf8)?;
    let map = match serde_json::from_str::<Value>(head) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return Err(RecordError::Syntax("not an object".into())),
        Err(e) => return Err(RecordError::Syntax(e.to_string())),
    };
    let mut f = Fields(map);
    match f.0.remove("v") {
        None => return Err(RecordError::Missing("v")),
        Some(v) => match v.as_u64() {
            Some(VERSION) => {}
            Some(other) => return Err(RecordError::Version(other)),
            None => {
                return Err(RecordError::Field {
                    field: "v",
                    expected: "an integer",
                })
            }
        },
    }
    let ty = f.string("type")?;
    if ty != expected {
        return Err(RecordError::Type {
            expected,
            found: ty.chars().take(64).collect(),
        });
    }
    if nl.is_some() && expected != TYPE_CLIENT {
        return Err(RecordError::Body(expected));
    }
    Ok((f, body))
}

impl Fields {
    fn opt_string(&mut self, k: &'static str) -> Result<Option<String>, RecordError> {
        match self.0.remove(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(RecordError::Field {
                field: k,
                expected: "a string",
            }),
        }
    }

    fn string(&mut self, k: &'static str) -> Result<String, RecordError> {
        self.opt_string(k)?.ok_or(RecordError::Missing(k))
    }

    fn opt_u64(&mut self, k: &'static str) -> Result<Option<u64>, RecordError> {
        match self.0.remove(k) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or(RecordError::Field {
                field: k,
                expected: "an integer from 0 to 2^64-1",
            }),
        }
    }

    fn u64(&mut self, k: &'static str) -> Result<u64, RecordError> {
        self.opt_u64(k)?.ok_or(RecordError::Missing(k))
    }

    fn i64(&mut self, k: &'static str) -> Result<i64, RecordError> {
        match self.0.remove(k) {
            None => Err(RecordError::Missing(k)),
            Some(v) => v.as_i64().ok_or(RecordError::Field {
                field: k,
                expected: "an integer",
            }),
        }
    }

    fn strings(&mut self, k: &'static str) -> Result<Vec<String>, RecordError> {
        let bad = RecordError::Field {
            field: k,
            expected: "an array of strings",
        };
        match self.0.remove(k) {
            None => Err(RecordError::Missing(k)),
            Some(Value::Array(vs)) => vs
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(bad.clone()),
                })
                .collect(),
            Some(_) => Err(bad),
        }
    }

    fn finish(self) -> Result<(), RecordError> {
        match self.0.into_iter().next() {
            None => Ok(()),
            Some((k, _)) => Err(RecordError::UnknownField(k.chars().take(64).collect())),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Source definitions (kind 1)

/// The payload of a source definition.
pub fn encode_source(d: &SourceDef) -> String {
    let h = Header::new(TYPE_SOURCE)
        .str("market", d.market.as_str())
        .opt_str("symbol", d.symbol.as_deref());
    let h = match d.scales {
        Some((p, q)) => h.num("price_scale", p).num("qty_scale", q),
        None => h,
    };
    let h = if d.name.is_empty() {
        h
    } else {
        h.str("name", &d.name)
    };
    h.finish()
}

/// Parses a source definition in either encoding.
///
/// # Errors
/// [`SourceDefError`]: the legacy errors for a `tape-source/1` line, the same value errors for
/// version 2, and [`SourceDefError::Record`] for its syntax.
pub fn parse_source(payload: &[u8]) -> Result<SourceDef, SourceDefError> {
    if !is_v2(payload) {
        return legacy::parse_source_v1(payload);
    }
    let (mut f, _) = header(payload, TYPE_SOURCE)?;
    let market = source_market(&f.string("market")?)?;
    let symbol = f.opt_string("symbol")?;
    let ps = f.opt_u64("price_scale")?.map(source_scale).transpose()?;
    let qs = f.opt_u64("qty_scale")?.map(source_scale).transpose()?;
    let name = f.opt_string("name")?.unwrap_or_default();
    f.finish()?;
    Ok(SourceDef {
        market,
        symbol,
        scales: source_scales(ps, qs)?,
        name,
    })
}

/// The market of a source definition (both encodings).
pub(crate) fn source_market(v: &str) -> Result<Market, SourceDefError> {
    Market::parse(v).ok_or(SourceDefError::Market)
}

/// One scale of a source definition: 0 to 18 (both encodings).
pub(crate) fn source_scale(v: u64) -> Result<u8, SourceDefError> {
    u8::try_from(v)
        .ok()
        .filter(|s| *s <= MAX_SCALE)
        .ok_or(SourceDefError::Scale)
}

/// Both scales or neither (both encodings).
pub(crate) fn source_scales(
    ps: Option<u8>,
    qs: Option<u8>,
) -> Result<Option<(u8, u8)>, SourceDefError> {
    match (ps, qs) {
        (Some(p), Some(q)) => Ok(Some((p, q))),
        (None, None) => Ok(None),
        _ => Err(SourceDefError::Scale),
    }
}

// ---------------------------------------------------------------------------------------
// Link events (kind 4)

/// The payload of a link event. A reason is stored as [`LinkEvent::Down`] means it: one line,
/// at most [`MAX_REASON_BYTES`].
pub fn encode_link(ev: &LinkEvent) -> String {
    let h = Header::new(TYPE_LINK);
    match ev {
        LinkEvent::Connecting { url } => h.str("event", "connecting").str("url", url),
        LinkEvent::Up => h.str("event", "up"),
        LinkEvent::Down { reason } => h
            .str("event", "down")
            .str("reason", &one_line(reason, MAX_REASON_BYTES)),
        LinkEvent::Backoff { attempt, delay_ms } => h
            .str("event", "backoff")
            .num("attempt", attempt)
            .num("delay_ms", delay_ms),
    }
    .finish()
}

/// Parses a link event in either encoding.
///
/// # Errors
/// [`LinkError::Legacy`] for a bad `tape-link/1` line, [`LinkError::Record`] for a bad
/// version 2 record.
pub fn parse_link(payload: &[u8]) -> Result<LinkEvent, LinkError> {
    if !is_v2(payload) {
        return legacy::parse_link_v1(payload);
    }
    let (mut f, _) = header(payload, TYPE_LINK)?;
    let ev = match f.string("event")?.as_str() {
        "connecting" => LinkEvent::Connecting {
            url: f.string("url")?,
        },
        "up" => LinkEvent::Up,
        "down" => LinkEvent::Down {
            reason: one_line(&f.string("reason")?, MAX_REASON_BYTES),
        },
        "backoff" => LinkEvent::Backoff {
            attempt: u32::try_from(f.u64("attempt")?).map_err(|_| RecordError::Field {
                field: "attempt",
                expected: "an integer from 0 to 2^32-1",
            })?,
            delay_ms: f.u64("delay_ms")?,
        },
        _ => {
            return Err(RecordError::Field {
                field: "event",
                expected: "connecting, up, down or backoff",
            }
            .into())
        }
    };
    f.finish()?;
    Ok(ev)
}

// ---------------------------------------------------------------------------------------
// Desk setup (kind 5)

/// The payload of a desk setup: every field but the risk limits that are off.
pub fn encode_desk(s: &DeskSetup) -> String {
    Header::new(TYPE_DESK)
        .strs("users", s.users.iter().map(String::as_str))
        .str("quote_asset", &s.quote_asset)
        .str("mark", mark_name(s.mark))
        .num("maker_fee_bps", s.maker_fee_bps)
        .num("taker_fee_bps", s.taker_fee_bps)
        .str("gateway", s.gateway.map_or("paper", Market::as_str))
        .opt_str(
            "max_order_qty",
            s.max_order_qty.map(|d| d.to_string()).as_deref(),
        )
        .opt_str(
            "max_order_notional",
            s.max_order_notional.map(|m| m.to_string()).as_deref(),
        )
        .opt_str(
            "max_position",
            s.max_position.map(|d| d.to_string()).as_deref(),
        )
        .opt_num("max_open_orders", s.max_open_orders)
        .opt_num("max_orders_per_sec", s.max_orders_per_sec)
        .opt_str(
            "max_drawdown",
            s.max_drawdown.map(|m| m.to_string()).as_deref(),
        )
        .opt_num("dry_run", s.dry_run.then_some(1))
        .finish()
}

/// The name of a mark source in a desk setup (both encodings).
pub(crate) fn mark_name(m: MarkSource) -> &'static str {
    match m {
        MarkSource::Mid => "mid",
        MarkSource::Last => "last",
    }
}

/// Parses a desk setup in either encoding. Values are checked by [`DeskSetup::set_field`] in
/// both, with the same errors.
///
/// # Errors
/// [`SetupError`]; [`SetupError::Record`] for the syntax of a version 2 record.
pub fn parse_desk(payload: &[u8]) -> Result<DeskSetup, SetupError> {
    if !is_v2(payload) {
        return legacy::parse_desk_v1(payload);
    }
    let (mut f, _) = header(payload, TYPE_DESK)?;
    let mut s = DeskSetup::default();
    for u in f.strings("users")? {
        s.set_field("user", &u)?;
    }
    for k in ["quote_asset", "mark", "gateway"] {
        s.set_field(k, &f.string(k)?)?;
    }
    for k in ["maker_fee_bps", "taker_fee_bps"] {
        s.set_field(k, &f.i64(k)?.to_string())?;
    }
    for k in [
        "max_order_qty",
        "max_order_notional",
        "max_position",
        "max_drawdown",
    ] {
        if let Some(v) = f.opt_string(k)? {
            s.set_field(k, &v)?;
        }
    }
    for k in ["max_open_orders", "max_orders_per_sec", "dry_run"] {
        if let Some(v) = f.opt_u64(k)? {
            s.set_field(k, &v.to_string())?;
        }
    }
    f.finish()?;
    Ok(s)
}

// ---------------------------------------------------------------------------------------
// Gateway events (kind 8)

/// The payload of a gateway event.
pub fn encode_gateway(ev: &GatewayEvent) -> String {
    let h = Header::new(TYPE_GATEWAY);
    match ev {
        GatewayEvent::Up => h.str("event", "up"),
        GatewayEvent::Ready => h.str("event", "ready"),
        GatewayEvent::Shutdown => h.str("event", "shutdown"),
        GatewayEvent::Down { reason } => h
            .str("event", "down")
            .str("reason", &one_line(reason, MAX_REASON_BYTES)),
        GatewayEvent::Sent { request, dry_run } => {
            let h = h.str("event", "sent").str("request", request);
            if *dry_run {
                h.num("dry_run", 1)
            } else {
                h
            }
        }
        GatewayEvent::Timeout { id } => h.str("event", "timeout").num("id", id),
    }
    .finish()
}

/// Parses a gateway event (version 2 only: the kind is younger than version 2).
///
/// # Errors
/// [`RecordError`] for anything but a well-formed gateway event.
pub fn parse_gateway(payload: &[u8]) -> Result<GatewayEvent, RecordError> {
    let (mut f, _) = header(payload, TYPE_GATEWAY)?;
    let ev = match f.string("event")?.as_str() {
        "up" => GatewayEvent::Up,
        "ready" => GatewayEvent::Ready,
        "shutdown" => GatewayEvent::Shutdown,
        "down" => GatewayEvent::Down {
            reason: one_line(&f.string("reason")?, MAX_REASON_BYTES),
        },
        "sent" => GatewayEvent::Sent {
            request: f.string("request")?,
            dry_run: f.opt_u64("dry_run")?.is_some_and(|v| v == 1),
        },
        "timeout" => GatewayEvent::Timeout { id: f.u64("id")? },
        _ => {
            return Err(RecordError::Field {
                field: "event",
                expected: "up, ready, down, sent, shutdown or timeout",
            })
        }
    };
    f.finish()?;
    Ok(ev)
}

// ---------------------------------------------------------------------------------------
// Client records (kind 6)

/// The payload of a client record: the header line, `\n`, then `body` verbatim.
pub fn encode_client(op: ClientOp, conn: u64, user: &str, body: &[u8]) -> Vec<u8> {
    let head = Header::new(TYPE_CLIENT)
        .str("op", op.as_str())
        .num("conn", conn)
        .str("user", user)
        .finish();
    let mut v = Vec::with_capacity(head.len() + 1 + body.len());
    v.extend_from_slice(head.as_bytes());
    v.push(b'\n');
    v.extend_from_slice(body);
    v
}

/// Parses a client record in either encoding; the body is borrowed from `payload`.
///
/// # Errors
/// [`DeskError::BadRecord`] naming what is wrong.
pub fn parse_client(payload: &[u8]) -> Result<ClientRecord<'_>, DeskError> {
    if !is_v2(payload) {
        return legacy::parse_client_v1(payload);
    }
    let bad = |e: RecordError| DeskError::BadRecord(e.summary());
    let (mut f, body) = header(payload, TYPE_CLIENT).map_err(bad)?;
    let op = ClientOp::parse(&f.string("op").map_err(bad)?).ok_or(DeskError::BadRecord(
        "op must be login, logout, subscribe or command",
    ))?;
    let conn = f.u64("conn").map_err(bad)?;
    let user = f.string("user").map_err(bad)?;
    if user.is_empty() {
        return Err(DeskError::BadRecord("missing user"));
    }
    f.finish().map_err(bad)?;
    Ok(ClientRecord {
        op,
        conn,
        user: Cow::Owned(user),
        body,
    })
}
