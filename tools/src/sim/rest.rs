//! Binance's REST depth endpoint as the simulator answers it: request validation with
//! Binance-style errors, and snapshot bodies built from the sim's own book.

use std::fmt::Write;

use tape_core::book::BookSync;
use tape_core::fixed::write_fixed;
use tape_core::instrument::{Instrument, Market};
use tape_core::msg::Side;

/// Depth levels per side when the request names no `limit`.
pub(crate) const DEFAULT_LIMIT: usize = 100;
/// Most depth levels per side a request can get; larger limits are cut to this.
pub(crate) const MAX_LIMIT: usize = 5000;

/// The REST depth path of a market.
pub(crate) fn depth_path(market: Market) -> &'static str {
    match market {
        Market::Spot => "/api/v3/depth",
        Market::UsdM => "/fapi/v1/depth",
        Market::CoinM => "/dapi/v1/depth",
    }
}

/// An HTTP answer: status, JSON or text body, and whether to add `Retry-After: 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    pub retry_after: bool,
}

impl Reply {
    /// `200` with a JSON body.
    pub fn json(body: String) -> Reply {
        Reply {
            status: 200,
            content_type: "application/json",
            body,
            retry_after: false,
        }
    }

    /// A plain-text answer.
    pub fn text(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
            retry_after: false,
        }
    }

    /// A Binance error body `{"code":CODE,"msg":MSG}` with `status`.
    pub fn error(status: u16, code: i32, msg: &str) -> Reply {
        let msg = serde_json::to_string(msg).unwrap_or_else(|_| "\"\"".to_owned());
        Reply {
            status,
            content_type: "application/json",
            body: format!("{{\"code\":{code},\"msg\":{msg}}}"),
            retry_after: status == 503,
        }
    }

    /// `503`: the book cannot be served now; the client should retry in a second.
    pub fn unavailable(msg: &str) -> Reply {
        Reply::error(503, -1003, msg)
    }
}

/// A validated depth request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DepthRequest {
    /// As sent (upper case, checked against Binance's symbol pattern).
    pub symbol: String,
    /// Levels per side, `1..=MAX_LIMIT`.
    pub limit: usize,
}

/// At most this many bytes of a client's text are echoed into an error message.
const ECHO_MAX: usize = 40;

fn clip(s: &str) -> String {
    s.chars().take(ECHO_MAX).collect()
}

/// Binance's legal range for a `symbol` parameter, as its error messages quote it.
pub(crate) const SYMBOL_RANGE: &str = "^[A-Z0-9-_.]{1,20}$";

/// True when `s` is in [`SYMBOL_RANGE`].
pub(crate) fn legal_symbol(s: &str) -> bool {
    (1..=20).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || b"-_.".contains(&c))
}

/// Parses `symbol=..&limit=..` the way Binance validates it.
///
/// # Errors
/// A 400 [`Reply`]: -1102 without a symbol, -1100 for illegal characters or unknown
/// parameters, -1101 for a repeated parameter, -1130 for a zero limit.
pub(crate) fn parse_depth_query(query: &str) -> Result<DepthRequest, Reply> {
    let (mut symbol, mut limit) = (None::<&str>, None::<&str>);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match k {
            "symbol" => &mut symbol,
            "limit" => &mut limit,
            _ => {
                return Err(Reply::error(
                    400,
                    -1100,
                    &format!("Illegal parameter '{}'.", clip(k)),
                ))
            }
        };
        if slot.replace(v).is_some() {
            return Err(Reply::error(
                400,
                -1101,
                "Duplicate values for a parameter detected.",
            ));
        }
    }
    let symbol = match symbol {
        None | Some("") => {
            return Err(Reply::error(
                400,
                -1102,
                "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
            ))
        }
        Some(s) => s,
    };
    if !legal_symbol(symbol) {
        return Err(Reply::error(
            400,
            -1100,
            &format!(
                "Illegal characters found in parameter 'symbol'; legal range is '{SYMBOL_RANGE}'."
            ),
        ));
    }
    let limit =
        match limit {
            None => DEFAULT_LIMIT,
            Some(v) if !v.is_empty() && v.len() <= 20 && v.bytes().all(|c| c.is_ascii_digit()) => {
                match v.trim_start_matches('0') {
                    "" => {
                        return Err(Reply::error(
                            400,
                            -1130,
                            "Data sent for parameter 'limit' is not valid.",
                        ))
                    }
                    // Over 5000 (even past u64) is cut, as Binance cuts it.
                    digits => digits
                        .parse::<usize>()
                        .map_or(MAX_LIMIT, |n| n.min(MAX_LIMIT)),
                }
            }
            Some(_) => return Err(Reply::error(
                400,
                -1100,
                "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'.",
            )),
        };
    Ok(DepthRequest {
        symbol: symbol.to_owned(),
        limit,
    })
}

/// A depth snapshot body in the market's format from a synced `book`, with `limit` levels per
/// side at the instrument's scales (Binance pads every number to them). `event_ms` is the
/// event time of the last applied diff, used for the futures `E` and `T`.
pub(crate) fn depth_body(
    market: Market,
    inst: &Instrument,
    book: &BookSync,
    event_ms: u64,
    limit: usize,
) -> String {
    let mut out = String::with_capacity(64 + 48 * limit.min(book.book().len(Side::Bid)) * 2);
    let last = book.last_update_id().unwrap_or(0);
    let _ = write!(out, "{{\"lastUpdateId\":{last}");
    if market.is_futures() {
        let _ = write!(out, ",\"E\":{event_ms},\"T\":{event_ms}");
    }
    if market == Market::CoinM {
        let pair = inst.symbol.split('_').next().unwrap_or(&inst.symbol);
        let _ = write!(out, ",\"symbol\":\"{}\",\"pair\":\"{pair}\"", inst.symbol);
    }
    for (name, side) in [("bids", Side::Bid), ("asks", Side::Ask)] {
        let _ = write!(out, ",\"{name}\":[");
        for (i, level) in book.book().levels(side).take(limit).enumerate() {
            out.push_str(if i == 0 { "[\"" } else { ",[\"" });
            let _ = write_fixed(&mut out, level.price.0, inst.price_scale);
            out.push_str("\",\"");
            let _ = write_fixed(&mut out, level.qty.0, inst.qty_scale);
            out.push_str("\"]");
        }
        out.push(']');
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tape_core::book::SyncLimits;
    use tape_core::decode::Decoder;
    use tape_core::fixed::{Price, Qty};
    use tape_core::instrument::Registry;
    use tape_core::msg::{DepthSnapshot, DepthUpdate, Level};

    fn code(r: Result<DepthRequest, Reply>) -> (u16, String) {
        let r = r.unwrap_err();
        (r.status, r.body)
    }

    #[test]
    fn queries_are_validated_like_binance() {
        assert_eq!(
            parse_depth_query("symbol=BTCUSDT"),
            Ok(DepthRequest {
                symbol: "BTCUSDT".into(),
                limit: 100
            })
        );
        assert_eq!(
            parse_depth_query("limit=7000&symbol=BTCUSD_PERP")
                .unwrap()
                .limit,
            5000
        );
        assert_eq!(
            parse_depth_query("symbol=X&limit=99999999999999999999")
                .unwrap()
                .limit,
            5000
        );
        assert_eq!(parse_depth_query("symbol=X&limit=005").unwrap().limit, 5);
        for (q, c) in [
            ("", "-1102"),
            ("symbol=", "-1102"),
            ("limit=5", "-1102"),
            ("symbol=btcusdt", "-1100"),
            ("symbol=BTC\"USDT", "-1100"),
            ("symbol=X&limit=ten", "-1100"),
            ("symbol=X&limit=", "-1100"),
            ("symbol=X&limit=0", "-1130"),
            ("symbol=X&symbol=Y", "-1101"),
            ("symbol=X&foo=1", "-1100"),
        ] {
            let (status, body) = code(parse_depth_query(q));
            assert_eq!(status, 400, "{q}");
            assert!(body.starts_with(&format!("{{\"code\":{c},")), "{q}: {body}");
            serde_json::from_str::<serde_json::Value>(&body).unwrap();
        }
        let (_, body) = code(parse_depth_query("x\"y\\=1"));
        serde_json::from_str::<serde_json::Value>(&body).unwrap();
    }

    #[test]
    fn bodies_decode_with_tapes_own_decoder() {
        for (market, symbol, ps, qs) in [
            (Market::Spot, "BTCUSDT", 8, 8),
            (Market::UsdM, "BTCUSDT", 2, 3),
            (Market::CoinM, "BTCUSD_PERP", 1, 0),
        ] {
            let mut reg = Registry::default();
            let id = reg.register(market, symbol, ps, qs).unwrap();
            let mut book = BookSync::new(id, market, SyncLimits::default());
            let lv = |p: i64, q: i64| Level {
                price: Price(p),
                qty: Qty(q),
            };
            let bids = [lv(1000, 5), lv(990, 7), lv(980, 1)];
            let asks = [lv(1010, 2), lv(1020, 3)];
            let snap = DepthSnapshot {
                instrument: id,
                last_update_id: 10,
                event_time_ms: None,
                transact_time_ms: None,
                bids: &bids,
                asks: &asks,
            };
            let mut ev = Vec::new();
            book.on_snapshot(&snap, &mut ev);
            let diff = DepthUpdate {
                instrument: id,
                event_time_ms: 77,
                transact_time_ms: Some(77),
                first_update_id: 10,
                final_update_id: 11,
                prev_final_update_id: Some(9),
                bids: &[],
                asks: &[],
            };
            book.on_diff(&diff, &mut ev);
            assert!(book.is_synced());
            let inst = reg.get(id).clone();
            let body = depth_body(market, &inst, &book, 77, 2);
            let mut dec = Decoder::new();
            let got = dec.decode_snapshot(body.as_bytes(), id, &reg).unwrap();
            assert_eq!(got.last_update_id, 11, "{body}");
            assert_eq!(got.bids, &bids[..2], "{body}");
            assert_eq!(got.asks, &asks[..], "{body}");
            if market.is_futures() {
                assert_eq!(got.event_time_ms, Some(77));
            }
        }
        let mut reg = Registry::default();
        let id = reg.register(Market::CoinM, "BTCUSD_PERP", 1, 0).unwrap();
        let book = BookSync::new(id, Market::CoinM, SyncLimits::default());
        assert_eq!(
            depth_body(Market::CoinM, reg.get(id), &book, 5, 10),
            r#"{"lastUpdateId":0,"E":5,"T":5,"symbol":"BTCUSD_PERP","pair":"BTCUSD","bids":[],"asks":[]}"#
        );
        let mut reg = Registry::default();
        let id = reg.register(Market::Spot, "ETHUSDT", 8, 8).unwrap();
        let mut book = BookSync::new(id, Market::Spot, SyncLimits::default());
        let bids = [Level {
            price: Price(268_380_000_000),
            qty: Qty(302_920_000),
        }];
        let snap = DepthSnapshot {
            instrument: id,
            last_update_id: 3,
            event_time_ms: None,
            transact_time_ms: None,
            bids: &bids,
            asks: &[],
        };
        book.on_snapshot(&snap, &mut Vec::new());
        assert_eq!(
            depth_body(Market::Spot, reg.get(id), &book, 0, 100),
            r#"{"lastUpdateId":3,"bids":[["2683.80000000","3.02920000"]],"asks":[]}"#
        );
    }
}
