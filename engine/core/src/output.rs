//! What comes out of the engine, and the digest that proves two runs produced the same.

use crate::book::BookEvent;
use crate::decode::DecodeError;
use crate::fixed::{Decimal, Price, Qty};
use crate::input::{Nanos, SourceId};
use crate::instrument::{InstrumentId, Market, RegistryError};
use crate::msg::{AggTrade, BookTicker, Level, Ticker, Trade};

/// One engine output, stamped with the receive time of the input that caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Receive time of the input record that produced this output.
    pub recv: Nanos,
    /// What happened.
    pub event: Event,
}

/// What the engine wants a venue connection to do: its second output queue
/// ([`Engine::poll_venue_command`](crate::engine::Engine::poll_venue_command)), apart from the
/// client outputs, so nothing meant for a venue can reach a client by mistake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VenueCommand {
    /// Send this request to the external order venue's WebSocket API.
    Order {
        /// Receive time of the input that produced it (a failed send comes back as a
        /// record stamped later).
        recv: Nanos,
        /// The user whose order it is.
        user: String,
        /// The `order.place` / `order.cancel` request, as sent.
        json: String,
    },
    /// Fetch a REST depth snapshot: the book lost sync while its connection stayed up (a gap,
    /// a crossed book, a stale snapshot). A book whose connection went down gets none: it
    /// syncs again when frames flow on the new connection.
    Snapshot {
        /// Receive time of the input that produced it.
        recv: Nanos,
        /// The book.
        instrument: InstrumentId,
        /// Its market.
        market: Market,
        /// Its symbol.
        symbol: String,
    },
}

/// Best bid and ask of a synced book, emitted when either changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bbo {
    /// Instrument.
    pub instrument: InstrumentId,
    /// Final update id of the depth event that produced this top of book.
    pub update_id: u64,
    /// Best bid, if any.
    pub bid: Option<Level>,
    /// Best ask, if any.
    pub ask: Option<Level>,
}

/// Why an input was rejected. Counted by [`Error::code`]; the engine carries on.
///
/// The digest folds each error's `Display` text, so these messages are part of every pinned
/// digest: ids print as bare numbers, exactly as when they were plain `u32`s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The frame did not decode.
    #[error("source {}: {err}", .source_id.0)]
    Decode {
        /// Source of the frame.
        source_id: SourceId,
        /// The decoder's error.
        err: DecodeError,
    },
    /// A record named a source that was never defined.
    #[error("record from undefined source {}", .0.0)]
    UnknownSource(SourceId),
    /// A source definition that could not be parsed or conflicts with an earlier one.
    #[error("source {}: bad definition: {message}", .source_id.0)]
    BadSourceDef {
        /// The source id.
        source_id: SourceId,
        /// What was wrong.
        message: String,
    },
    /// A record kind this engine does not know.
    #[error("source {}: unknown record kind {kind}", .source_id.0)]
    UnknownKind {
        /// The source id.
        source_id: SourceId,
        /// The stored kind.
        kind: u16,
    },
    /// A link record that could not be parsed.
    #[error("source {}: {err}", .source_id.0)]
    BadLink {
        /// The source id.
        source_id: SourceId,
        /// What was wrong.
        err: crate::venue::LinkError,
    },
    /// A REST snapshot from a source that names no symbol.
    #[error("source {}: snapshot source has no symbol", .0.0)]
    SnapshotWithoutSymbol(SourceId),
    /// A client record or desk setup was refused.
    #[error("client record: {0}")]
    Desk(crate::desk::DeskError),
    /// The symbol of a snapshot source could not be registered.
    #[error("source {}: {err}", .source_id.0)]
    Registry {
        /// The source id.
        source_id: SourceId,
        /// Why the registry refused the symbol.
        err: RegistryError,
    },
}

impl Error {
    /// A stable short name, for counting errors by kind.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Decode { err, .. } => err.code(),
            Error::UnknownSource(_) => "unknown_source",
            Error::BadSourceDef { .. } => "bad_source_def",
            Error::UnknownKind { .. } => "unknown_kind",
            Error::BadLink { .. } => "bad_link",
            Error::SnapshotWithoutSymbol(_) => "snapshot_without_symbol",
            Error::Registry { .. } => "registry",
            Error::Desk(e) => e.code(),
        }
    }
}

/// Every kind of engine output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A book changed state or content.
    Book(BookEvent),
    /// The top of a synced book changed.
    Bbo(Bbo),
    /// A trade.
    Trade(Trade),
    /// An aggregate trade.
    AggTrade(AggTrade),
    /// The exchange's own best bid/ask stream.
    BookTicker(BookTicker),
    /// 24h statistics.
    Ticker(Ticker),
    /// An input was rejected.
    Error(Error),
    /// A venue connection's status changed.
    Venue(crate::venue::VenueStatus),
    /// A reply or private-channel message of the trading desk.
    Private(crate::desk::PrivateMsg),
}

/// A running hash over every output in order: equal digests mean equal output sequences.
///
/// Each output is encoded canonically (explicit little-endian fields, a tag per variant) and
/// folded with xxh3 seeded by the previous digest; no `Hash` impl or memory layout leaks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Digest {
    value: u64,
    count: u64,
}

impl Digest {
    /// The digest value.
    pub fn value(&self) -> u64 {
        self.value
    }

    /// How many outputs were folded in.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Folds one output into the digest.
    #[inline]
    pub fn update(&mut self, out: &Output) {
        // The hot case (three of every four events of a depth-heavy session) gets its bytes
        // laid out at fixed offsets; `level_changed_fast_path_folds_the_canonical_bytes`
        // proves they are the canonical encoding below, byte for byte.
        if let Event::Book(BookEvent::LevelChanged {
            instrument,
            side,
            price,
            qty,
        }) = out.event
        {
            self.update_level_changed(out.recv, instrument, side, price, qty);
            return;
        }
        // The next most common (one per applied diff), likewise laid out at fixed offsets;
        // `applied_fast_path_folds_the_canonical_bytes` proves them canonical.
        if let Event::Book(BookEvent::Applied {
            instrument,
            first_update_id,
            final_update_id,
            event_time_ms,
        }) = out.event
        {
            self.fold_bytes(&applied_bytes(
                out.recv,
                instrument,
                [first_update_id, final_update_id, event_time_ms],
            ));
            return;
        }
        self.update_slow(out);
    }

    /// [`Digest::update`] of an `Event::Book(BookEvent::LevelChanged)` output given by its
    /// fields, for a caller that has them at hand and need not build the output first.
    #[inline(always)]
    pub(crate) fn update_level_changed(
        &mut self,
        recv: Nanos,
        instrument: InstrumentId,
        side: crate::msg::Side,
        price: Price,
        qty: Qty,
    ) {
        self.fold_bytes(&level_changed_bytes(recv, instrument, side, price, qty));
    }

    /// [`Digest::update`] for every output but a level change: kept out of line so the
    /// inlined fast path stays small.
    #[inline(never)]
    fn update_slow(&mut self, out: &Output) {
        let mut enc = Enc::default();
        enc.u64(out.recv.0);
        encode_event(&mut enc, &out.event);
        self.fold(&enc);
    }

    /// Folds one venue order into the digest, at the point in the output sequence where the
    /// engine produced it.
    ///
    /// Venue orders used to travel as `Event::Private` messages on channel 7 ("gateway",
    /// never to clients, no connection) and were folded like any output. Every journal with
    /// external orders was pinned with that encoding, so it is kept byte for byte: the same
    /// tag, channel number, empty `conn`, user and request text. A replay therefore gives the
    /// same digest (and count) as before the venue commands got their own queue.
    pub fn update_venue_order(&mut self, recv: Nanos, user: &str, json: &str) {
        let mut enc = Enc::default();
        enc.u64(recv.0);
        enc.u8(TAG_PRIVATE);
        enc.u8(GATEWAY_CHANNEL);
        enc.opt(None);
        enc.str(user);
        enc.str(json);
        self.fold(&enc);
    }

    fn fold(&mut self, enc: &Enc) {
        self.fold_bytes(enc.bytes());
    }

    #[inline]
    fn fold_bytes(&mut self, bytes: &[u8]) {
        self.value = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, self.value);
        self.count += 1;
    }
}

/// The canonical encoding of an `Event::Book(BookEvent::LevelChanged)` output: receive time,
/// tag 1, then [`encode_book_event`](crate::book::encode_book_event)'s 22 bytes (tag 2,
/// instrument, side, price, quantity).
#[inline]
fn level_changed_bytes(
    recv: Nanos,
    instrument: InstrumentId,
    side: crate::msg::Side,
    price: Price,
    qty: Qty,
) -> [u8; 31] {
    let mut b = [0u8; 31];
    b[0..8].copy_from_slice(&recv.0.to_le_bytes());
    b[8] = 1;
    b[9] = 2;
    b[10..14].copy_from_slice(&instrument.0.to_le_bytes());
    b[14] = match side {
        crate::msg::Side::Bid => 0,
        crate::msg::Side::Ask => 1,
    };
    b[15..23].copy_from_slice(&price.0.to_le_bytes());
    b[23..31].copy_from_slice(&qty.0.to_le_bytes());
    b
}

/// The canonical encoding of an `Event::Book(BookEvent::Applied)` output: receive time,
/// tag 1, then [`encode_book_event`](crate::book::encode_book_event)'s 29 bytes (tag 3,
/// instrument, first, final update id, event time).
#[inline]
fn applied_bytes(recv: Nanos, instrument: InstrumentId, ids: [u64; 3]) -> [u8; 38] {
    let mut b = [0u8; 38];
    b[0..8].copy_from_slice(&recv.0.to_le_bytes());
    b[8] = 1;
    b[9] = 3;
    b[10..14].copy_from_slice(&instrument.0.to_le_bytes());
    for (i, v) in ids.iter().enumerate() {
        b[14 + 8 * i..22 + 8 * i].copy_from_slice(&v.to_le_bytes());
    }
    b
}

/// The digest tag of [`Event::Private`].
const TAG_PRIVATE: u8 = 9;

/// The channel number venue orders had as private messages (the retired
/// `PrivateChannel::Gateway`), kept in their digest encoding.
const GATEWAY_CHANNEL: u8 = 7;

/// A fixed stack buffer for canonical encodings; long strings are hashed, not copied.
struct Enc {
    buf: [u8; 192],
    len: usize,
}

impl Default for Enc {
    fn default() -> Self {
        Enc {
            buf: [0; 192],
            len: 0,
        }
    }
}

impl Enc {
    #[inline(always)]
    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
    #[inline(always)]
    fn raw(&mut self, b: &[u8]) {
        // Every encoding below is far shorter than the buffer; strings go through `str`.
        if let Some(dst) = self.buf.get_mut(self.len..self.len + b.len()) {
            dst.copy_from_slice(b);
            self.len += b.len();
            return;
        }
        self.raw_clamped(b);
    }
    #[cold]
    fn raw_clamped(&mut self, b: &[u8]) {
        let end = (self.len + b.len()).min(self.buf.len());
        let n = end - self.len;
        self.buf[self.len..end].copy_from_slice(&b[..n]);
        self.len = end;
    }
    #[inline(always)]
    fn u8(&mut self, v: u8) {
        self.raw(&[v]);
    }
    #[inline(always)]
    fn u64(&mut self, v: u64) {
        self.raw(&v.to_le_bytes());
    }
    #[inline(always)]
    fn i64(&mut self, v: i64) {
        self.raw(&v.to_le_bytes());
    }
    #[inline(always)]
    fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }
    #[inline(always)]
    fn opt(&mut self, v: Option<u64>) {
        match v {
            Some(x) => {
                self.u8(1);
                self.u64(x);
            }
            None => self.u8(0),
        }
    }
    #[inline(always)]
    fn inst(&mut self, i: InstrumentId) {
        self.raw(&i.0.to_le_bytes());
    }
    #[inline(always)]
    fn price(&mut self, p: Price) {
        self.i64(p.0);
    }
    #[inline(always)]
    fn qty(&mut self, q: Qty) {
        self.i64(q.0);
    }
    #[inline(always)]
    fn dec(&mut self, d: Decimal) {
        self.i64(d.mantissa);
        self.u8(d.scale);
    }
    #[inline(always)]
    fn level(&mut self, l: Option<Level>) {
        match l {
            Some(l) => {
                self.u8(1);
                self.price(l.price);
                self.qty(l.qty);
            }
            None => self.u8(0),
        }
    }
    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.u64(xxhash_rust::xxh3::xxh3_64(s.as_bytes()));
    }
}

fn encode_event(e: &mut Enc, ev: &Event) {
    match ev {
        Event::Book(b) => {
            e.u8(1);
            crate::book::encode_book_event(b, &mut |bytes| e.raw(bytes));
        }
        Event::Bbo(b) => {
            e.u8(2);
            e.inst(b.instrument);
            e.u64(b.update_id);
            e.level(b.bid);
            e.level(b.ask);
        }
        Event::Trade(t) => {
            e.u8(3);
            e.inst(t.instrument);
            e.u64(t.event_time_ms);
            e.u64(t.trade_time_ms);
            e.u64(t.trade_id);
            e.price(t.price);
            e.qty(t.qty);
            e.bool(t.buyer_is_maker);
            e.opt(t.buyer_order_id);
            e.opt(t.seller_order_id);
            e.bool(t.is_market);
        }
        Event::AggTrade(t) => {
            e.u8(4);
            e.inst(t.instrument);
            e.u64(t.event_time_ms);
            e.u64(t.trade_time_ms);
            e.u64(t.agg_id);
            e.u64(t.first_trade_id);
            e.u64(t.last_trade_id);
            e.price(t.price);
            e.qty(t.qty);
            e.bool(t.buyer_is_maker);
        }
        Event::BookTicker(t) => {
            e.u8(5);
            e.inst(t.instrument);
            e.u64(t.update_id);
            e.opt(t.event_time_ms);
            e.opt(t.transact_time_ms);
            e.price(t.bid_price);
            e.qty(t.bid_qty);
            e.price(t.ask_price);
            e.qty(t.ask_qty);
        }
        Event::Ticker(t) => {
            e.u8(6);
            e.inst(t.instrument);
            e.bool(t.mini);
            e.u64(t.event_time_ms);
            e.price(t.last);
            e.price(t.open);
            e.price(t.high);
            e.price(t.low);
            e.price(t.price_change);
            match t.price_change_pct {
                Some(d) => {
                    e.u8(1);
                    e.dec(d);
                }
                None => e.u8(0),
            }
            e.dec(t.volume);
            e.dec(t.quote_volume);
        }
        Event::Error(err) => {
            e.u8(7);
            e.str(&err.to_string());
        }
        Event::Venue(v) => {
            e.u8(8);
            v.encode(&mut |bytes| e.raw(bytes));
        }
        Event::Private(m) => {
            e.u8(TAG_PRIVATE);
            e.u8(m.channel as u8);
            e.opt(m.conn);
            e.str(&m.user);
            e.str(&m.json);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The digest the general encoder gives (no fast path).
    fn slow_fold(seed: u64, out: &Output) -> u64 {
        let mut enc = Enc::default();
        enc.u64(out.recv.0);
        encode_event(&mut enc, &out.event);
        xxhash_rust::xxh3::xxh3_64_with_seed(enc.bytes(), seed)
    }

    /// `Digest::update` of `out` from `seed` folds what the general encoder would.
    fn folds_canonically(seed: u64, out: &Output) -> Result<(), TestCaseError> {
        let mut d = Digest {
            value: seed,
            count: 0,
        };
        d.update(out);
        prop_assert_eq!(d.value(), slow_fold(seed, out));
        prop_assert_eq!(d.count(), 1);
        Ok(())
    }

    proptest! {
        /// The fixed-offset bytes of a `LevelChanged` output are its canonical encoding,
        /// so the fast path folds the same digest as before it existed.
        #[test]
        fn level_changed_fast_path_folds_the_canonical_bytes(
            seed in any::<u64>(),
            recv in any::<u64>(),
            inst in any::<u32>(),
            ask in any::<bool>(),
            price in any::<i64>(),
            qty in any::<i64>(),
        ) {
            let out = Output {
                recv: Nanos(recv),
                event: Event::Book(BookEvent::LevelChanged {
                    instrument: InstrumentId(inst),
                    side: if ask { crate::msg::Side::Ask } else { crate::msg::Side::Bid },
                    price: Price(price),
                    qty: Qty(qty),
                }),
            };
            folds_canonically(seed, &out)?;
        }

        /// Likewise for an `Applied` output.
        #[test]
        fn applied_fast_path_folds_the_canonical_bytes(
            seed in any::<u64>(),
            recv in any::<u64>(),
            inst in any::<u32>(),
            first in any::<u64>(),
            last in any::<u64>(),
            time in any::<u64>(),
        ) {
            let out = Output {
                recv: Nanos(recv),
                event: Event::Book(BookEvent::Applied {
                    instrument: InstrumentId(inst),
                    first_update_id: first,
                    final_update_id: last,
                    event_time_ms: time,
                }),
            };
            folds_canonically(seed, &out)?;
        }
    }

    /// Venue orders keep the digest encoding they had as `Event::Private` messages on
    /// channel 7 (the pinned digests of every journal with orders depend on it): recv, tag 9,
    /// channel 7, no connection, then user and request as (length, xxh3) pairs.
    #[test]
    fn venue_orders_fold_as_the_old_gateway_messages() {
        let (user, json) = ("alice", r#"{"method":"order.place"}"#);
        let mut old = Vec::new();
        old.extend_from_slice(&42u64.to_le_bytes());
        old.extend_from_slice(&[9, 7, 0]);
        for s in [user, json] {
            old.extend_from_slice(&(s.len() as u64).to_le_bytes());
            old.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(s.as_bytes()).to_le_bytes());
        }
        let mut d = Digest::default();
        d.update_venue_order(Nanos(42), user, json);
        assert_eq!(d.value(), xxhash_rust::xxh3::xxh3_64_with_seed(&old, 0));
        assert_eq!(d.count(), 1);
        // The other private channels still fold with their own numbers: a reply folds
        // exactly like the bytes above with channel 0.
        let mut r = Digest::default();
        r.update(&Output {
            recv: Nanos(42),
            event: Event::Private(crate::desk::PrivateMsg {
                user: user.into(),
                channel: crate::desk::PrivateChannel::Reply,
                conn: None,
                seq: 0,
                json: json.into(),
            }),
        });
        old[9] = 0;
        assert_eq!(r.value(), xxhash_rust::xxh3::xxh3_64_with_seed(&old, 0));
    }
}
