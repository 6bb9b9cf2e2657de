//! The version 1 control-record formats, read-only: journals written before version 2 hold
//! them, and must replay to the digests they always had. Nothing writes these any more.
//!
//! Each parser is the one the format always had, moved here unchanged (same acceptance, same
//! errors); value rules are shared with version 2 through the parent module and
//! [`DeskSetup::set_field`]. The tests pin each format with literal bytes.
//!
//! | kind | version 1 payload |
//! |---|---|
//! | 1 | `tape-source/1 market=usdm symbol=BTCUSDT price_scale=2 qty_scale=3 name=rest` (space-separated `key=value`; no value may hold a space) |
//! | 4 | `tape-link/1 event=connecting url=...` / `event=up` / `event=down reason=free text to the end of the line` / `event=backoff attempt=N delay_ms=M` |
//! | 5 | `tape-desk/1`, then one `key=value` per line (`user=` once per user) |
//! | 6 | `tape-client/1 op=OP conn=N user=NAME`, `\n`, then the body verbatim |

use std::borrow::Cow;

use super::{source_market, source_scale, source_scales};
use crate::desk::{ClientOp, ClientRecord, DeskError, DeskSetup, SetupError};
use crate::input::{SourceDef, SourceDefError};
use crate::venue::{one_line, LinkError, LinkEvent, MAX_REASON_BYTES};

/// The magic word of a version 1 source definition.
pub const SOURCE_MAGIC: &str = "tape-source/1";
/// The magic word of a version 1 link event.
pub const LINK_MAGIC: &str = "tape-link/1";
/// The magic line of a version 1 desk setup.
pub const DESK_MAGIC: &str = "tape-desk/1";
/// The magic word of a version 1 client record.
pub const CLIENT_MAGIC: &str = "tape-client/1";

/// Parses a `tape-source/1` line.
///
/// # Errors
/// [`SourceDefError`] (never [`SourceDefError::Record`]).
pub fn parse_source_v1(payload: &[u8]) -> Result<SourceDef, SourceDefError> {
    let text = std::str::from_utf8(payload).map_err(|_| SourceDefError::Format)?;
    let mut parts = text.split_ascii_whitespace();
    if parts.next() != Some(SOURCE_MAGIC) {
        return Err(SourceDefError::Format);
    }
    let (mut market, mut symbol, mut name) = (None, None, String::new());
    let (mut ps, mut qs) = (None, None);
    let scale = |v: &str| {
        v.parse::<u64>()
            .map_err(|_| SourceDefError::Scale)
            .and_then(source_scale)
    };
    for part in parts {
        match part.split_once('=') {
            Some(("market", v)) => market = Some(source_market(v)?),
            Some(("symbol", v)) => symbol = Some(v.to_owned()),
            Some(("name", v)) => name = v.to_owned(),
            Some(("price_scale", v)) => ps = Some(scale(v)?),
            Some(("qty_scale", v)) => qs = Some(scale(v)?),
            _ => return Err(SourceDefError::UnknownKey(part.chars().take(64).collect())),
        }
    }
    let scales = source_scales(ps, qs)?;
    Ok(SourceDef {
        market: market.ok_or(SourceDefError::Market)?,
        symbol,
        scales,
        name,
    })
}

/// Parses a `tape-link/1` line.
///
/// # Errors
/// [`LinkError::Legacy`] naming what is wrong.
pub fn parse_link_v1(payload: &[u8]) -> Result<LinkEvent, LinkError> {
    let text = std::str::from_utf8(payload).map_err(|_| LinkError::Legacy("not UTF-8"))?;
    let rest = text
        .strip_prefix(LINK_MAGIC)
        .and_then(|r| r.strip_prefix(" event="))
        .ok_or(LinkError::Legacy("not a tape-link/1 record"))?;
    let (event, args) = rest.split_once(' ').unwrap_or((rest, ""));
    match event {
        "up" if args.is_empty() => Ok(LinkEvent::Up),
        "connecting" => {
            let url = args
                .strip_prefix("url=")
                .ok_or(LinkError::Legacy("missing url"))?;
            Ok(LinkEvent::Connecting {
                url: url.to_owned(),
            })
        }
        "down" => {
            let reason = args
                .strip_prefix("reason=")
                .ok_or(LinkError::Legacy("missing reason"))?;
            Ok(LinkEvent::Down {
                reason: one_line(reason, MAX_REASON_BYTES),
            })
        }
        "backoff" => {
            let (mut attempt, mut delay) = (None, None);
            for kv in args.split(' ') {
                match kv.split_once('=') {
                    Some(("attempt", v)) => attempt = v.parse().ok(),
                    Some(("delay_ms", v)) => delay = v.parse().ok(),
                    _ => return Err(LinkError::Legacy("unknown backoff field")),
                }
            }
            Ok(LinkEvent::Backoff {
                attempt: attempt.ok_or(LinkError::Legacy("bad attempt"))?,
                delay_ms: delay.ok_or(LinkError::Legacy("bad delay_ms"))?,
            })
        }
        _ => Err(LinkError::Legacy("unknown event")),
    }
}

/// Parses a `tape-desk/1` text.
///
/// # Errors
/// A [`SetupError`] naming the line or key.
pub fn parse_desk_v1(payload: &[u8]) -> Result<DeskSetup, SetupError> {
    let text = std::str::from_utf8(payload).map_err(|_| SetupError::Syntax("not UTF-8".into()))?;
    let mut lines = text.lines();
    if lines.next() != Some(DESK_MAGIC) {
        return Err(SetupError::Syntax(format!("must start with {DESK_MAGIC}")));
    }
    let mut s = DeskSetup::default();
    for line in lines.filter(|l| !l.is_empty()) {
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| SetupError::Syntax("a line without '='".into()))?;
        s.set_field(k, v)?;
    }
    Ok(s)
}

/// Parses a `tape-client/1` record; the user and body are borrowed from `payload`.
///
/// # Errors
/// [`DeskError::BadRecord`] naming what is wrong.
pub fn parse_client_v1(payload: &[u8]) -> Result<ClientRecord<'_>, DeskError> {
    let nl = payload
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(payload.len());
    let head = std::str::from_utf8(&payload[..nl])
        .map_err(|_| DeskError::BadRecord("header is not UTF-8"))?;
    let body = payload.get(nl + 1..).unwrap_or(&[]);
    let mut words = head.split(' ');
    if words.next() != Some(CLIENT_MAGIC) {
        return Err(DeskError::BadRecord("header must start with tape-client/1"));
    }
    let (mut op, mut conn, mut user) = (None, None, None);
    for w in words {
        match w.split_once('=') {
            Some(("op", v)) => op = ClientOp::parse(v),
            Some(("conn", v)) => conn = v.parse().ok(),
            Some(("user", v)) if !v.is_empty() => user = Some(v),
            _ => return Err(DeskError::BadRecord("unknown header field")),
        }
    }
    Ok(ClientRecord {
        op: op.ok_or(DeskError::BadRecord("missing or unknown op"))?,
        conn: conn.ok_or(DeskError::BadRecord("missing or bad conn"))?,
        user: Cow::Borrowed(user.ok_or(DeskError::BadRecord("missing user"))?),
        body,
    })
}
