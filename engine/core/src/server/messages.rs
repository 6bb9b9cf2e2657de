//! The server's messages, each serialized once into a shareable [`Utf8Bytes`].
//!
//! The shapes are those of `docs/protocol.md`; field order is fixed so that equal inputs give
//! byte-identical output.

use tungstenite::Utf8Bytes;

use super::Channel;
use crate::book::OrderBook;
use crate::input::Nanos;
use crate::instrument::Instrument;
use crate::msg::{AggTrade, Level, Side, Ticker, Trade};
use crate::output::Bbo;
use crate::wire::JsonBuf;

/// One changed level of a book update.
pub(crate) type Change = (Side, Level);

/// The envelope fields before `data`.
pub(crate) struct Head<'a> {
    /// `update`, `snapshot` or `status`.
    pub kind: &'static str,
    /// Pre-rendered request id (replies to `get_book` only).
    pub id: Option<&'a str>,
    pub channel: Channel,
    pub inst: &'a Instrument,
    pub seq: u64,
    pub ts: u64,
    pub recv: Nanos,
}

fn head(j: &mut JsonBuf, h: &Head<'_>) {
    j.clear();
    j.raw("{\"type\":\"");
    j.raw(h.kind);
    j.raw("\"");
    if let Some(id) = h.id {
        j.raw(",\"id\":");
        j.raw(id);
    }
    j.raw(",\"channel\":\"");
    j.raw(h.channel.as_str());
    j.raw("\",\"market\":\"");
    j.raw(h.inst.market.as_str());
    j.raw("\",\"symbol\":");
    j.string(&h.inst.symbol);
    j.raw(",\"seq\":");
    j.u64(h.seq);
    j.raw(",\"ts\":");
    j.u64(h.ts);
    j.raw(",\"recv_ns\":");
    j.u64(h.recv.0);
    j.raw(",\"data\":");
}

fn opt_level(j: &mut JsonBuf, name: &str, l: Option<Level>, inst: &Instrument) {
    j.raw("\"");
    j.raw(name);
    j.raw("\":");
    match l {
        Some(l) => j.fixed(l.price.0, inst.price_scale),
        None => j.raw("null"),
    }
    j.raw(",\"");
    j.raw(name);
    j.raw("_qty\":");
    match l {
        Some(l) => j.fixed(l.qty.0, inst.qty_scale),
        None => j.raw("null"),
    }
}

/// A `bbo` update.
pub(crate) fn bbo(j: &mut JsonBuf, h: &Head<'_>, b: &Bbo) -> Utf8Bytes {
    head(j, h);
    j.raw("{");
    opt_level(j, "bid", b.bid, h.inst);
    j.raw(",");
    opt_level(j, "ask", b.ask, h.inst);
    j.raw(",\"spread\":");
    match (b.bid, b.ask) {
        (Some(bid), Some(ask)) => {
            j.fixed(ask.price.0.saturating_sub(bid.price.0), h.inst.price_scale)
        }
        _ => j.raw("null"),
    }
    j.raw(",\"update_id\":");
    j.u64(b.update_id);
    j.raw("}}");
    j.freeze()
}

fn trade_common(j: &mut JsonBuf, inst: &Instrument, price: i64, qty: i64, buyer_is_maker: bool) {
    j.raw("{\"price\":");
    j.fixed(price, inst.price_scale);
    j.raw(",\"qty\":");
    j.fixed(qty, inst.qty_scale);
    // The aggressor sold into the bid when the buyer was the resting (maker) order.
    j.raw(if buyer_is_maker {
        ",\"side\":\"sell\""
    } else {
        ",\"side\":\"buy\""
    });
}

/// A `trades` update from a trade.
pub(crate) fn trade(j: &mut JsonBuf, h: &Head<'_>, t: &Trade) -> Utf8Bytes {
    head(j, h);
    trade_common(j, h.inst, t.price.0, t.qty.0, t.buyer_is_maker);
    j.raw(",\"trade_id\":");
    j.u64(t.trade_id);
    j.raw(",\"trade_ts\":");
    j.u64(t.trade_time_ms);
    j.raw("}}");
    j.freeze()
}

/// A `trades` update from an aggregate trade: `trade_id` is the last trade it aggregates.
pub(crate) fn agg_trade(j: &mut JsonBuf, h: &Head<'_>, t: &AggTrade) -> Utf8Bytes {
    head(j, h);
    trade_common(j, h.inst, t.price.0, t.qty.0, t.buyer_is_maker);
    j.raw(",\"trade_id\":");
    j.u64(t.last_trade_id);
    j.raw(",\"trade_ts\":");
    j.u64(t.trade_time_ms);
    j.raw(",\"agg_id\":");
    j.u64(t.agg_id);
    j.raw(",\"first_trade_id\":");
    j.u64(t.first_trade_id);
    j.raw("}}");
    j.freeze()
}

/// A `ticker` update.
pub(crate) fn ticker(j: &mut JsonBuf, h: &Head<'_>, t: &Ticker) -> Utf8Bytes {
    let ps = h.inst.price_scale;
    head(j, h);
    j.raw("{\"last\":");
    j.fixed(t.last.0, ps);
    j.raw(",\"open\":");
    j.fixed(t.open.0, ps);
    j.raw(",\"high\":");
    j.fixed(t.high.0, ps);
    j.raw(",\"low\":");
    j.fixed(t.low.0, ps);
    j.raw(",\"change\":");
    j.fixed(t.price_change.0, ps);
    j.raw(",\"change_pct\":");
    match t.price_change_pct {
        Some(d) => j.fixed(d.mantissa, d.scale),
        None => j.raw("null"),
    }
    j.raw(",\"volume\":");
    j.fixed(t.volume.mantissa, t.volume.scale);
    j.raw(",\"quote_volume\":");
    j.fixed(t.quote_volume.mantissa, t.quote_volume.scale);
    j.raw("}}");
    j.freeze()
}

fn level_list(j: &mut JsonBuf, inst: &Instrument, levels: impl Iterator<Item = Level>) {
    j.raw("[");
    for (i, l) in levels.enumerate() {
        j.raw(if i == 0 { "[" } else { ",[" });
        j.fixed(l.price.0, inst.price_scale);
        j.raw(",");
        j.fixed(l.qty.0, inst.qty_scale);
        j.raw("]");
    }
    j.raw("]");
}

/// A `book` update carrying the levels one diff changed (bids first, each side in the order
/// the exchange sent them).
pub(crate) fn book_update(
    j: &mut JsonBuf,
    h: &Head<'_>,
    update_id: u64,
    changes: &[Change],
) -> Utf8Bytes {
    head(j, h);
    j.raw("{\"update_id\":");
    j.u64(update_id);
    j.raw(",\"bids\":");
    let side = |s: Side| changes.iter().filter(move |c| c.0 == s).map(|c| c.1);
    level_list(j, h.inst, side(Side::Bid));
    j.raw(",\"asks\":");
    level_list(j, h.inst, side(Side::Ask));
    j.raw("}}");
    j.freeze()
}

/// A `book` snapshot of the best `depth` levels per side.
pub(crate) fn book_snapshot(
    j: &mut JsonBuf,
    h: &Head<'_>,
    update_id: u64,
    book: &OrderBook,
    depth: usize,
) -> Utf8Bytes {
    head(j, h);
    j.raw("{\"update_id\":");
    j.u64(update_id);
    j.raw(",\"bids\":");
    level_list(j, h.inst, book.bids().take(depth));
    j.raw(",\"asks\":");
    level_list(j, h.inst, book.asks().take(depth));
    j.raw("}}");
    j.freeze()
}

/// A `status` message: the stream is stale for `reason`.
pub(crate) fn status(j: &mut JsonBuf, h: &Head<'_>, reason: &str) -> Utf8Bytes {
    head(j, h);
    j.raw("{\"stale\":true,\"reason\":");
    j.string(reason);
    j.raw("}}");
    j.freeze()
}

fn reply_head(j: &mut JsonBuf, kind: &str, id: Option<&str>) {
    j.clear();
    j.raw("{\"type\":\"");
    j.raw(kind);
    j.raw("\"");
    if let Some(id) = id {
        j.raw(",\"id\":");
        j.raw(id);
    }
}

/// A `subscribed` or `unsubscribed` reply listing `(channel, instrument)` pairs.
pub(crate) fn subscriptions<'a>(
    j: &mut JsonBuf,
    kind: &str,
    id: Option<&str>,
    pairs: impl Iterator<Item = (Channel, &'a Instrument)>,
    status: bool,
    run: u64,
) -> Utf8Bytes {
    reply_head(j, kind, id);
    if run != 0 {
        j.raw(",\"run\":");
        j.u64(run);
    }
    j.raw(",\"subscriptions\":[");
    let mut n = 0;
    for (ch, inst) in pairs {
        j.raw(if n == 0 { "{" } else { ",{" });
        n += 1;
        j.raw("\"channel\":\"");
        j.raw(ch.as_str());
        j.raw("\",\"market\":\"");
        j.raw(inst.market.as_str());
        j.raw("\",\"symbol\":");
        j.string(&inst.symbol);
        j.raw("}");
    }
    if status {
        j.raw(if n == 0 { "{" } else { ",{" });
        j.raw("\"channel\":\"status\"}");
    }
    j.raw("]}");
    j.freeze()
}

/// A `status` channel message: one venue connection's state.
pub(crate) fn venue_status(
    j: &mut JsonBuf,
    seq: u64,
    recv: Nanos,
    v: &crate::venue::VenueStatus,
) -> Utf8Bytes {
    j.clear();
    j.raw("{\"type\":\"update\",\"channel\":\"status\",\"venue\":");
    j.string(&v.name);
    j.raw(",\"market\":\"");
    j.raw(v.market.as_str());
    j.raw("\",\"seq\":");
    j.u64(seq);
    j.raw(",\"ts\":0,\"recv_ns\":");
    j.u64(recv.0);
    j.raw(",\"data\":{\"state\":\"");
    j.raw(v.state.as_str());
    j.raw("\",\"reason\":");
    j.string(&v.reason);
    for (name, val) in [
        ("attempts", v.attempts),
        ("connects", v.connects),
        ("disconnects", v.disconnects),
        ("backoff_ms", v.backoff_ms),
        ("books", u64::from(v.books)),
        ("books_synced", u64::from(v.books_synced)),
        ("since_ns", v.since_ns),
    ] {
        j.raw(",\"");
        j.raw(name);
        j.raw("\":");
        j.u64(val);
    }
    j.raw("}}");
    j.freeze()
}

/// A `status` channel message about the node's journal: `ok`, or `degraded` while it cannot
/// journal (and so applies no input and takes no order).
pub(crate) fn journal_status(
    j: &mut JsonBuf,
    seq: u64,
    now: Nanos,
    s: &super::JournalStatus,
) -> Utf8Bytes {
    j.clear();
    j.raw("{\"type\":\"update\",\"channel\":\"status\",\"venue\":\"journal\",\"seq\":");
    j.u64(seq);
    j.raw(",\"ts\":0,\"recv_ns\":");
    j.u64(now.0);
    j.raw(",\"data\":{\"state\":\"");
    j.raw(if s.degraded { "degraded" } else { "ok" });
    j.raw("\",\"reason\":");
    j.string(&s.reason);
    j.raw(",\"skipped_inputs\":");
    j.u64(s.skipped_inputs);
    j.raw(",\"since_ns\":");
    j.u64(s.since_ns);
    j.raw("}}");
    j.freeze()
}

/// A `pong` reply.
pub(crate) fn pong(j: &mut JsonBuf, id: Option<&str>, now: Nanos) -> Utf8Bytes {
    reply_head(j, "pong", id);
    j.raw(",\"ts\":");
    j.u64(now.0);
    j.raw("}");
    j.freeze()
}

/// An `error` reply.
pub(crate) fn error(j: &mut JsonBuf, code: u16, message: &str, id: Option<&str>) -> Utf8Bytes {
    j.clear();
    j.raw("{\"type\":\"error\",\"code\":");
    j.u64(u64::from(code));
    j.raw(",\"message\":");
    j.string(message);
    if let Some(id) = id {
        j.raw(",\"id\":");
        j.raw(id);
    }
    j.raw("}");
    j.freeze()
}
