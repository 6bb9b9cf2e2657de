//! Binance market-data decoders: WebSocket frames and REST depth snapshots to [`MarketMsg`].
//!
//! simd-json parses each frame into a flat tape; the event object is then walked once,
//! left to right, recording where each key's value sits, and fields are read by key (never by
//! position: Binance's key order differs between markets). Prices and quantities go straight
//! from their decimal strings to fixed point at the instrument's scales.
//!
//! `bookTicker`, `trade` and `depthUpdate` frames in their usual shapes first go through the
//! `fast` module, a one-pass tokenizer for the small JSON subset they use, which skips
//! simd-json and yields exactly the same result; anything it does not fully understand falls
//! through to simd-json (see [`Decoder::with_fast_path`]). REST depth snapshot bodies in
//! Binance's exact shapes go through the same module's snapshot reader, on the same terms.
//!
//! A [`Decoder`] owns every buffer it needs (the padded input copy simd-json mutates, its
//! [`simd_json::Buffers`], the tape, and the bid/ask level vectors), so once they have grown
//! to the largest frame seen, decoding allocates nothing. Errors allocate only for the
//! context strings they carry.

/// The [`Fields`] slot of a one-letter JSON key, computed at compile time.
macro_rules! k {
    ($c:literal) => {
        const { $crate::decode::tape::letter($c) }
    };
}

mod error;
mod events;
mod fast;
mod number;
mod symbols;
mod tape;
pub(crate) use tape::static_type_name;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_corpus;
#[cfg(test)]
mod tests_errors;
#[cfg(test)]
mod tests_fast;
#[cfg(test)]
mod tests_fast_snapshot;

use std::fmt;

use simd_json::{Buffers, Node, Tape, INPUT_PADDING};

pub use error::DecodeError;

use crate::instrument::{InstrumentId, Market, Registry};
use crate::msg::{DepthSnapshot, Level, MarketMsg};
use events::Resolver;
use symbols::SymbolCache;
use tape::{type_name, Fields};

/// Largest frame or snapshot body accepted; anything larger is rejected before parsing.
pub const MAX_FRAME_BYTES: usize = 8 << 20;

/// Initial capacity of the input and parser buffers, enough for a 100-level depth frame.
const INITIAL_FRAME_BYTES: usize = 16 << 10;
/// Initial tape capacity in nodes.
const INITIAL_TAPE_NODES: usize = 2048;
/// Initial capacity of each side's level buffer.
const INITIAL_LEVELS: usize = 256;

/// Where a frame came from and what to do with new symbols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeCtx {
    /// The market of the connection the frame arrived on; decides which fields are required
    /// (futures depth needs `T`/`pu`, futures bookTicker `E`/`T`).
    pub market: Market,
    /// Register unknown symbols with default scales instead of failing with
    /// [`DecodeError::UnknownSymbol`].
    pub auto_register: bool,
}

/// A reusable Binance decoder. One per connection (or per thread); not shared.
pub struct Decoder {
    /// Copy of the input plus [`INPUT_PADDING`]: simd-json unescapes strings in place.
    scratch: Vec<u8>,
    buffers: Buffers,
    /// Always empty between calls; `Tape::reset` re-lifetimes it to each input borrow.
    tape: Tape<'static>,
    bids: Vec<Level>,
    asks: Vec<Level>,
    symbols: SymbolCache,
    /// Level string ranges found by the fast path's scan, parsed once the scales are known.
    spans: Vec<fast::LevelSpan>,
    /// Whether [`fast`] gets the first look at each frame.
    fast_path: bool,
    /// Frames the fast path decoded (or rejected with the resolver's error).
    fast_hits: u64,
    /// Snapshot bodies the fast path decoded.
    fast_snapshot_hits: u64,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl fmt::Debug for Decoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("scratch_capacity", &self.scratch.capacity())
            .field("tape_capacity", &self.tape.0.capacity())
            .field(
                "level_capacity",
                &(self.bids.capacity(), self.asks.capacity()),
            )
            .finish_non_exhaustive()
    }
}

impl Decoder {
    /// A decoder with buffers pre-sized for typical frames; they grow on demand and are kept.
    pub fn new() -> Self {
        Decoder {
            scratch: Vec::with_capacity(INITIAL_FRAME_BYTES + INPUT_PADDING),
            buffers: Buffers::new(INITIAL_FRAME_BYTES),
            tape: Tape(Vec::with_capacity(INITIAL_TAPE_NODES)),
            bids: Vec::with_capacity(INITIAL_LEVELS),
            asks: Vec::with_capacity(INITIAL_LEVELS),
            symbols: SymbolCache::default(),
            spans: Vec::with_capacity(2 * INITIAL_LEVELS),
            fast_path: true,
            fast_hits: 0,
            fast_snapshot_hits: 0,
        }
    }

    /// Turns the fast path (on by default) on or off, for frames and snapshot bodies alike. It
    /// only ever changes speed: with it off, every frame and body goes through simd-json,
    /// which is how the tests prove both give the same results.
    pub fn with_fast_path(mut self, on: bool) -> Self {
        self.fast_path = on;
        self
    }

    /// How many frames the fast path has answered since this decoder was created; the rest
    /// went through simd-json. For monitoring how much of a feed takes the fast path.
    pub fn fast_path_hits(&self) -> u64 {
        self.fast_hits
    }

    /// How many snapshot bodies the fast path has decoded since this decoder was created
    /// (counted apart from [`Decoder::fast_path_hits`]); the rest went through simd-json.
    pub fn fast_path_snapshot_hits(&self) -> u64 {
        self.fast_snapshot_hits
    }

    /// A WebSocket market-data frame: bare event or combined-stream wrapper
    /// `{"stream":..,"data":{..}}`.
    ///
    /// Unknown event types (`kline`, `markPriceUpdate`, ...), all-market array streams and
    /// control frames such as subscription acks decode to [`MarketMsg::Unknown`]. The symbol
    /// `s` is looked up on `ctx.market` (registered with default scales if
    /// `ctx.auto_register`). Depth levels borrow the decoder's buffers until the next call.
    ///
    /// # Errors
    /// A [`DecodeError`] naming the event and field for malformed JSON, a non-object frame,
    /// missing or mistyped fields, unparsable decimals, unknown symbols and oversize frames.
    /// The decoder stays usable.
    pub fn decode_frame<'a>(
        &'a mut self,
        frame: &[u8],
        ctx: DecodeCtx,
        registry: &mut Registry,
    ) -> Result<MarketMsg<'a>, DecodeError> {
        let mut res = Resolver {
            ctx,
            registry,
            cache: &mut self.symbols,
        };
        // `bookTicker`, `trade` and `depthUpdate` in their usual shapes skip simd-json; the
        // fast path hands everything else (and anything it doubts) to the tape path below.
        if self.fast_path {
            if let Some(r) = fast::decode(
                frame,
                &mut res,
                &mut self.spans,
                &mut self.bids,
                &mut self.asks,
            ) {
                self.fast_hits += 1;
                return r.map(|msg| attach_levels(msg, &self.bids, &self.asks));
            }
        }
        let msg = with_tape(
            &mut self.scratch,
            &mut self.buffers,
            &mut self.tape,
            frame,
            |nodes| {
                let root = root_object(nodes, "frame")?;
                let mut f = match wrapped_data(nodes, root) {
                    None => Fields::of(nodes, root, "frame"),
                    Some(data) => match &nodes[data] {
                        Node::Object { .. } => Fields::of(nodes, data, "frame"),
                        // `!ticker@arr`-style all-market streams: not used by tape.
                        Node::Array { .. } => return Ok(MarketMsg::Unknown),
                        n => {
                            return Err(DecodeError::NotObject {
                                context: "data",
                                found: type_name(n),
                            })
                        }
                    },
                };
                events::decode_event(&mut f, &mut res, &mut self.bids, &mut self.asks)
            },
        )?;
        Ok(attach_levels(msg, &self.bids, &self.asks))
    }

    /// A REST depth snapshot body for a known instrument (spot `lastUpdateId,bids,asks`;
    /// USD-M adds `E,T`; COIN-M adds `symbol,pair`). Levels borrow the decoder's buffers
    /// until the next call.
    ///
    /// # Errors
    /// As [`Decoder::decode_frame`], plus [`DecodeError::SymbolMismatch`] when the body's
    /// `symbol` names another instrument, [`DecodeError::MissingField`] for a futures snapshot
    /// without `E`/`T`, and [`DecodeError::UnknownInstrument`] (a caller mistake) when
    /// `instrument` is not in `registry`.
    pub fn decode_snapshot<'a>(
        &'a mut self,
        body: &[u8],
        instrument: InstrumentId,
        registry: &Registry,
    ) -> Result<DepthSnapshot<'a>, DecodeError> {
        if instrument.0 as usize >= registry.len() {
            return Err(DecodeError::UnknownInstrument { id: instrument });
        }
        let inst = registry.get(instrument);
        // Bodies in Binance's exact shapes skip simd-json; the fast path hands everything
        // else, errors included, to the tape path below.
        if self.fast_path {
            if let Some(mut snap) = fast::snapshot(body, inst, &mut self.bids, &mut self.asks) {
                self.fast_snapshot_hits += 1;
                snap.bids = &self.bids;
                snap.asks = &self.asks;
                return Ok(snap);
            }
        }
        let (bids, asks) = (&mut self.bids, &mut self.asks);
        let mut snap = with_tape(
            &mut self.scratch,
            &mut self.buffers,
            &mut self.tape,
            body,
            |nodes| {
                let root = root_object(nodes, "snapshot")?;
                let f = Fields::of(nodes, root, "snapshot");
                events::snapshot(&f, inst, bids, asks)
            },
        )?;
        snap.bids = &self.bids;
        snap.asks = &self.asks;
        Ok(snap)
    }
}

/// Points a decoded depth update's (empty) level slices at the decoder's level buffers.
fn attach_levels<'a>(
    msg: MarketMsg<'static>,
    bids: &'a [Level],
    asks: &'a [Level],
) -> MarketMsg<'a> {
    match msg {
        MarketMsg::Depth(mut d) => {
            d.bids = bids;
            d.asks = asks;
            MarketMsg::Depth(d)
        }
        other => other,
    }
}

/// Parses `input` into the reusable tape and runs `f` over its nodes.
///
/// A free function over the buffers it needs, so `f` can borrow the decoder's other fields.
fn with_tape<R>(
    scratch: &mut Vec<u8>,
    buffers: &mut Buffers,
    tape: &mut Tape<'static>,
    input: &[u8],
    f: impl FnOnce(&[Node<'_>]) -> Result<R, DecodeError>,
) -> Result<R, DecodeError> {
    let len = input.len();
    if len == 0 {
        return Err(DecodeError::Empty);
    }
    if len > MAX_FRAME_BYTES {
        return Err(DecodeError::Oversize {
            len,
            max: MAX_FRAME_BYTES,
        });
    }
    scratch.clear();
    scratch.extend_from_slice(input);
    // fill_tape_padded parses in place, skipping the copy fill_tape would make.
    scratch.resize(len + INPUT_PADDING, b' ');
    let mut t = std::mem::replace(tape, Tape(Vec::new())).reset();
    let res = match simd_json::fill_tape_padded(scratch, len, buffers, &mut t) {
        Ok(()) => f(&t.0),
        Err(e) => Err(DecodeError::json(&e)),
    };
    *tape = t.reset();
    res
}

/// The value of `data` if the object at `root` is a combined-stream wrapper
/// (`{"stream":..,"data":..}`).
fn wrapped_data(nodes: &[Node<'_>], root: usize) -> Option<usize> {
    let Some(Node::Object { len, .. }) = nodes.get(root) else {
        return None;
    };
    let (mut stream, mut data) = (false, None);
    let mut p = root + 1;
    for _ in 0..*len {
        let (Some(Node::String(k)), Some(v)) = (nodes.get(p), nodes.get(p + 1)) else {
            break;
        };
        match *k {
            "stream" => stream = true,
            "data" => data = Some(p + 1),
            _ => {}
        }
        p += 1 + tape::span(v);
    }
    data.filter(|_| stream)
}

/// Index of the root object, or the error naming what the top level was instead.
fn root_object(nodes: &[Node<'_>], context: &'static str) -> Result<usize, DecodeError> {
    match nodes.first() {
        Some(Node::Object { .. }) => Ok(0),
        Some(n) => Err(DecodeError::NotObject {
            context,
            found: type_name(n),
        }),
        None => Err(DecodeError::NotObject {
            context,
            found: "nothing",
        }),
    }
}
