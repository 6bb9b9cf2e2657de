//! A strictly validating fast path in front of simd-json for the hot frame shapes.
//!
//! simd-json's tape construction is about two thirds of the cost of a small frame, and
//! `bookTicker`, `trade` and `depthUpdate` frames use a tiny subset of JSON. This module
//! tokenizes that subset in one left-to-right pass (objects with string keys, strings without
//! escapes, unsigned integers, `true`/`false`/`null`, and `[["price","qty"],..]` level arrays,
//! with any JSON whitespace between tokens) and builds the same [`MarketMsg`] the tape path
//! would.
//!
//! It never decides anything the tape path might decide differently: whenever a frame leaves
//! that subset, or would make the tape path fail before the symbol lookup, it answers `None`
//! ("not mine") and the caller runs the tape path unchanged. Checks mirror
//! [`super::events`] field by field, numbers go through the same [`super::number::fixed`],
//! and the symbol goes through the same [`Resolver`], so an accepted frame decodes exactly
//! as the tape path would decode it. Duplicate keys follow the tape path's rule: the last one
//! wins. The only error it returns itself is the resolver's, which the tape path would return
//! identically; any later problem (a bad decimal) is left to the tape path, whose repeated
//! lookup finds the same instrument without changing the registry again.

mod shape;
mod snapshot;

pub(super) use snapshot::snapshot;

use super::events::{Inst, Resolver};
use super::number::{fixed_in, scan_dec, scan_uint, Dec};
use super::{DecodeError, MAX_FRAME_BYTES};
use crate::fixed::{Price, Qty};
use crate::msg::{BookTicker, DepthUpdate, Level, MarketMsg, Trade};

/// Byte ranges of one level's price and quantity strings in the frame.
pub(super) type LevelSpan = [u32; 4];

/// A field value as scanned; strings and level arrays stay as byte ranges into the frame.
#[derive(Clone, Copy, Default)]
enum Val {
    #[default]
    Absent,
    Str(u32, u32),
    /// A string that scanned as an unsigned decimal: [`Dec`]'s digits and fraction length.
    Dec(u64, u8),
    Int(u64),
    Bool(bool),
    Null,
    /// `first` and `count` in the level-span buffer.
    Levels(u32, u32),
    /// The levels are already in the sink's vector for this side, parsed at the scales of
    /// this instrument id (see [`shape`]).
    Direct(u32),
}

/// What the scan may write depth levels into directly: the level vectors, and the resolver
/// whose symbol cache says at which scales (read only: the scan never registers a symbol).
struct Sink<'a, 'r> {
    res: &'a Resolver<'r>,
    bids: &'a mut Vec<Level>,
    asks: &'a mut Vec<Level>,
    /// The last instrument the cache gave for the frame's bytes `s..e`: a depth frame's two
    /// level arrays and the event after them resolve the same `s` once.
    memo: Option<(u32, u32, Inst)>,
}

impl Sink<'_, '_> {
    /// [`Resolver::cached`] for the frame's bytes `s..e`, remembered for the rest of the frame
    /// (the cache and the registry do not change while a frame is scanned).
    #[inline]
    fn cached(&mut self, b: &[u8], s: u32, e: u32) -> Option<Inst> {
        if let Some((ms, me, inst)) = self.memo {
            if (ms, me) == (s, e) {
                return Some(inst);
            }
        }
        let inst = self.res.cached(b.get(s as usize..e as usize)?)?;
        self.memo = Some((s, e, inst));
        Some(inst)
    }
}

/// The keys the three fast-path events read; every other key is skipped like the tape path's
/// `Fields` ignores it for these events.
#[derive(Clone, Copy)]
#[repr(u8)]
enum F {
    LowE,
    UpE,
    S,
    UpU,
    LowU,
    UpT,
    Pu,
    LowB,
    LowA,
    UpB,
    UpA,
    LowT,
    P,
    Q,
    M,
    X,
}

const TRACKED: usize = F::X as usize + 1;

#[inline]
fn tracked(key: &[u8]) -> Option<F> {
    let &[c] = key else {
        return (key == b"pu").then_some(F::Pu);
    };
    Some(match c {
        b'e' => F::LowE,
        b'E' => F::UpE,
        b's' => F::S,
        b'U' => F::UpU,
        b'u' => F::LowU,
        b'T' => F::UpT,
        b'b' => F::LowB,
        b'a' => F::LowA,
        b'B' => F::UpB,
        b'A' => F::UpA,
        b't' => F::LowT,
        b'p' => F::P,
        b'q' => F::Q,
        b'm' => F::M,
        b'X' => F::X,
        _ => return None,
    })
}

/// The scanned event object.
struct Rec {
    v: [Val; TRACKED],
}

impl Rec {
    fn new() -> Rec {
        Rec {
            v: [Val::Absent; TRACKED],
        }
    }

    #[inline]
    fn get(&self, f: F) -> Val {
        self.v[f as usize]
    }
}

/// A cursor over the frame. Every method returns `None` when the bytes leave the subset.
struct Cur<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cur<'_> {
    #[inline(always)]
    fn ws(&mut self) {
        // Nearly every token follows the previous one directly: one compare for that.
        if let Some(&c) = self.b.get(self.i) {
            if c > b' ' {
                return;
            }
        }
        self.ws_slow();
    }

    #[inline(never)]
    fn ws_slow(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    /// Skips whitespace, then consumes `c`.
    #[inline(always)]
    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        if *self.b.get(self.i)? != c {
            return None;
        }
        self.i += 1;
        Some(())
    }

    /// Skips whitespace and returns the next byte without consuming it.
    #[inline(always)]
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    /// [`Cur::str_body`] sixteen bytes a step, by the bytes' stop mask
    /// ([`tape_simd::string_stops16`]): for strings of ~15-25 bytes, a combined stream's name
    /// (`btcusdt@depth20@100ms`), where it takes two steps instead of three. Short strings (a
    /// symbol) keep the eight-byte steps, which cost less for one step.
    #[inline(always)]
    fn long_str_body(&mut self) -> Option<(usize, usize)> {
        let start = self.i;
        while let Some(w) = self.b.get(self.i..).and_then(<[u8]>::first_chunk::<16>) {
            let stops = tape_simd::string_stops16(w);
            if stops != 0 {
                let at = self.i + stops.trailing_zeros() as usize;
                return self.str_end(start, at);
            }
            self.i += 16;
        }
        // Fewer than sixteen bytes left (never for a stream name, which `,"data":` follows):
        // the whole string as `str_body` reads it.
        self.i = start;
        self.str_body()
    }

    /// A string whose opening quote was consumed: ASCII from 0x20 up, without `\`, so its
    /// bytes are exactly the decoded string simd-json would produce. Returns its byte range.
    ///
    /// Scans eight bytes at a time (SWAR): most strings are a few bytes to a few words, and a
    /// byte loop was the largest cost of the whole fast path.
    #[inline(always)]
    fn str_body(&mut self) -> Option<(usize, usize)> {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HI: u64 = 0x8080_8080_8080_8080;
        // High bit of each byte of `x` that is zero. Exact for the lowest such byte, which
        // is the only one used (borrows only propagate upwards).
        let zero = |x: u64| x.wrapping_sub(ONES) & !x & HI;
        let start = self.i;
        while let Some(chunk) = self.b.get(self.i..self.i + 8) {
            let v = u64::from_le_bytes(chunk.try_into().ok()?);
            // Quote, backslash, control byte (< 0x20) or non-ASCII (high bit). For the last
            // two, `v - 0x20` sets the high bit of a byte below 0x20 and `| v` that of one
            // from 0x80: bytes below the first such byte (0x20..0x80) borrow nothing, so the
            // lowest flag is exact.
            let special = zero(v ^ (ONES * u64::from(b'"')))
                | zero(v ^ (ONES * u64::from(b'\\')))
                | ((v.wrapping_sub(ONES * 0x20) | v) & HI);
            if special == 0 {
                self.i += 8;
                continue;
            }
            let at = self.i + (special.trailing_zeros() / 8) as usize;
            return self.str_end(start, at);
        }
        while let Some(&c) = self.b.get(self.i) {
            if c == b'"' || c == b'\\' || !(0x20..0x80).contains(&c) {
                return self.str_end(start, self.i);
            }
            self.i += 1;
        }
        None
    }

    /// The first special byte of a string is at `at`: the closing quote, or something the
    /// tape path must judge (escapes, control bytes, non-ASCII and so all UTF-8 questions).
    #[inline(always)]
    fn str_end(&mut self, start: usize, at: usize) -> Option<(usize, usize)> {
        if *self.b.get(at)? != b'"' {
            return None;
        }
        self.i = at + 1;
        Some((start, at))
    }

    /// A string value, opening quote included.
    #[inline(always)]
    fn string(&mut self) -> Option<(usize, usize)> {
        self.eat(b'"')?;
        self.str_body()
    }

    /// An unsigned integer of at most 19 digits (below `u64::MAX`, so simd-json reads the
    /// same value). A leading zero ends the number; whatever follows it must then be a
    /// delimiter, so `01`, `0.5`, `1e3` and `1.0` all fail at the caller's next token.
    #[inline(always)]
    fn uint(&mut self) -> Option<u64> {
        let (v, end) = scan_uint(self.b, self.i)?;
        self.i = end;
        Some(v)
    }

    /// Consumes the literal `word` (`true`, `false`, `null`).
    #[inline(always)]
    fn lit(&mut self, word: &[u8]) -> Option<()> {
        if self.b.get(self.i..self.i + word.len())? != word {
            return None;
        }
        self.i += word.len();
        Some(())
    }

    /// A simple value: string, unsigned integer, bool or null.
    #[inline(always)]
    fn simple(&mut self) -> Option<Val> {
        Some(match self.peek()? {
            b'"' => {
                let (s, e) = self.string()?;
                Val::Str(s as u32, e as u32)
            }
            b't' => {
                self.lit(b"true")?;
                Val::Bool(true)
            }
            b'f' => {
                self.lit(b"false")?;
                Val::Bool(false)
            }
            b'n' => {
                self.lit(b"null")?;
                Val::Null
            }
            _ => Val::Int(self.uint()?),
        })
    }

    /// A simple value for a field that holds a decimal string: one that scans as an unsigned
    /// decimal is kept as [`Val::Dec`], any other value as [`Cur::simple`] reads it.
    #[inline(always)]
    fn decimal(&mut self) -> Option<Val> {
        if self.peek()? == b'"' {
            if let Some((d, end)) = scan_dec(self.b, self.i + 1) {
                self.i = end;
                return Some(Val::Dec(d.m, d.frac));
            }
        }
        self.simple()
    }

    /// `[["price","qty"],..]`, spans appended to `spans`; returns `Val::Levels`.
    fn levels(&mut self, spans: &mut Vec<LevelSpan>) -> Option<Val> {
        self.eat(b'[')?;
        let first = spans.len();
        if self.peek()? == b']' {
            self.i += 1;
        } else {
            loop {
                // `["price","qty"]` without whitespace is checked by fixed offsets; any
                // other spelling takes the token-by-token route to the same spans.
                let ((ps, pe), (qs, qe)) = if self.b.get(self.i..self.i + 2) == Some(b"[\"") {
                    self.i += 2;
                    let p = self.str_body()?;
                    let q = if self.b.get(self.i..self.i + 2) == Some(b",\"") {
                        self.i += 2;
                        self.str_body()?
                    } else {
                        self.eat(b',')?;
                        self.string()?
                    };
                    self.eat(b']')?;
                    (p, q)
                } else {
                    self.eat(b'[')?;
                    let p = self.string()?;
                    self.eat(b',')?;
                    let q = self.string()?;
                    self.eat(b']')?;
                    (p, q)
                };
                spans.push([ps as u32, pe as u32, qs as u32, qe as u32]);
                match self.peek()? {
                    b',' => self.i += 1,
                    b']' => {
                        self.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        Some(Val::Levels(first as u32, (spans.len() - first) as u32))
    }

    /// After a member's value: `,` (more members follow; returns true) or `}` (false).
    #[inline(always)]
    fn member_end(&mut self) -> Option<bool> {
        match self.peek()? {
            b',' => {
                self.i += 1;
                Some(true)
            }
            b'}' => {
                self.i += 1;
                Some(false)
            }
            _ => None,
        }
    }

    /// A member's key and colon.
    #[inline(always)]
    fn key(&mut self) -> Option<(usize, usize)> {
        // One-letter keys (`"s":`), most of every event, by fixed offsets; the letter must be
        // a byte `str_body` would pass through unchanged.
        self.ws();
        if let Some(&[b'"', c, b'"', b':']) = self.b.get(self.i..self.i + 4) {
            if (0x20..0x80).contains(&c) && c != b'"' && c != b'\\' {
                self.i += 4;
                return Some((self.i - 3, self.i - 2));
            }
        }
        let k = self.string()?;
        self.eat(b':')?;
        Some(k)
    }

    /// The event object, `{` included, into `rec`. Tracked keys are recorded (last one wins,
    /// like the tape path's `Fields`); `b`/`a` may hold level arrays; others are skipped.
    /// A `bare` event (the root) must not hold `stream` or `data`: with both, the tape path
    /// would read it as a wrapper, whatever their order and values.
    fn event(
        &mut self,
        rec: &mut Rec,
        spans: &mut Vec<LevelSpan>,
        sink: &mut Sink<'_, '_>,
        bare: bool,
    ) -> Option<()> {
        self.eat(b'{')?;
        // Binance's own shapes first; off them, the member-by-member scan from the start.
        let (at, mark) = (self.i, spans.len());
        if self.shaped(rec, spans, sink).is_some() {
            return Some(());
        }
        self.i = at;
        spans.truncate(mark);
        *rec = Rec::new();
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            let (ks, ke) = self.key()?;
            let key = &self.b[ks..ke];
            match tracked(key) {
                Some(f @ (F::LowB | F::LowA)) if self.peek()? == b'[' => {
                    rec.v[f as usize] = self.levels(spans)?;
                }
                Some(f @ (F::LowB | F::LowA | F::UpB | F::UpA | F::P | F::Q)) => {
                    rec.v[f as usize] = self.decimal()?;
                }
                Some(f) => rec.v[f as usize] = self.simple()?,
                None if bare && (key == b"stream" || key == b"data") => return None,
                None => {
                    self.simple()?;
                }
            }
            if !self.member_end()? {
                return Some(());
            }
        }
    }

    /// The whole frame: a combined-stream wrapper or a bare event object, then only
    /// whitespace. Returns `None` for anything else.
    fn frame(
        &mut self,
        rec: &mut Rec,
        spans: &mut Vec<LevelSpan>,
        sink: &mut Sink<'_, '_>,
    ) -> Option<()> {
        // The combined-stream wrapper as Binance writes it, by fixed bytes.
        if self.lit_n(b"{\"stream\":\"").is_some() {
            let wrapped = self.str_body().and_then(|_| {
                self.lit_n(b",\"data\":")?;
                self.event(rec, spans, sink, false)?;
                self.lit_n(b"}")?;
                (self.i == self.b.len()).then_some(())
            });
            if wrapped.is_some() {
                return Some(());
            }
            self.i = 0;
            spans.clear();
            *rec = Rec::new();
        }
        self.eat(b'{')?;
        let open = self.i - 1;
        let (ks, ke) = self.key()?;
        let first = &self.b[ks..ke];
        if first == b"stream" || first == b"data" {
            self.i = open + 1;
            let (mut stream, mut data) = (false, false);
            loop {
                let (ks, ke) = self.key()?;
                match &self.b[ks..ke] {
                    // The tape path accepts any `stream` value; plain strings are all we see.
                    b"stream" => {
                        self.string()?;
                        stream = true;
                    }
                    // A second `data` would replace the first: left to the tape path.
                    b"data" if !data => {
                        self.event(rec, spans, sink, false)?;
                        data = true;
                    }
                    b"data" => return None,
                    _ => {
                        self.simple()?;
                    }
                }
                if !self.member_end()? {
                    break;
                }
            }
            // Without both the tape path reads the root as the event.
            if !(stream && data) {
                return None;
            }
        } else {
            self.i = open;
            self.event(rec, spans, sink, true)?;
        }
        self.ws();
        (self.i == self.b.len()).then_some(())
    }
}

/// Frames the fast path judged: the tape path's result for them, or `None`.
///
/// Inlined into [`Decoder::decode_frame`](super::Decoder::decode_frame), its only caller, so
/// the direct path's message is built where the frame's result goes instead of being copied
/// out of this function's (~20-30 instructions a frame); the general walk stays out of line.
#[inline(always)]
pub(super) fn decode(
    frame: &[u8],
    res: &mut Resolver<'_>,
    spans: &mut Vec<LevelSpan>,
    bids: &mut Vec<Level>,
    asks: &mut Vec<Level>,
) -> Option<Result<MarketMsg<'static>, DecodeError>> {
    if frame.is_empty() || frame.len() > MAX_FRAME_BYTES {
        return None;
    }
    if let Some(msg) = direct(frame, res, bids, asks) {
        return Some(Ok(msg));
    }
    walk(frame, res, spans, bids, asks)
}

/// The fast path's general walk: any of the shapes, member by member into a [`Rec`], then
/// the event read from it. Out of line: inlined with the direct path, it made every frame's
/// direct read keep the walk's arguments alive (spills and reloads on the hot path).
#[inline(never)]
pub(super) fn walk(
    frame: &[u8],
    res: &mut Resolver<'_>,
    spans: &mut Vec<LevelSpan>,
    bids: &mut Vec<Level>,
    asks: &mut Vec<Level>,
) -> Option<Result<MarketMsg<'static>, DecodeError>> {
    spans.clear();
    let mut rec = Rec::new();
    let mut sink = Sink {
        res,
        bids,
        asks,
        memo: None,
    };
    Cur { b: frame, i: 0 }.frame(&mut rec, spans, &mut sink)?;
    let memo = sink.memo;
    let kind = match rec.get(F::LowE) {
        Val::Str(s, e) => match &frame[s as usize..e as usize] {
            b"depthUpdate" => Kind::Depth,
            b"trade" => Kind::Trade,
            b"bookTicker" => Kind::BookTicker,
            _ => return None,
        },
        // Spot bookTicker: no `e`, but `u` and `s` (of any type, as in `decode_event`).
        Val::Absent
            if !matches!(rec.get(F::LowU), Val::Absent)
                && !matches!(rec.get(F::S), Val::Absent) =>
        {
            Kind::BookTicker
        }
        _ => return None,
    };
    let ev = Ev {
        rec: &rec,
        frame,
        market_is_futures: res.ctx.market.is_futures(),
        memo,
    };
    match kind {
        Kind::BookTicker => ev.book_ticker(res),
        Kind::Trade => ev.trade(res),
        Kind::Depth => ev.depth(res, spans, bids, asks),
    }
}

/// A depthUpdate (any market), or a spot bookTicker or trade, in a combined-stream frame in
/// Binance's exact bytes, of an instrument the symbol cache knows, decoded straight into its
/// message: the frames tape decodes all day, without the member record the general walk
/// fills and reads back.
///
/// - depthUpdate: `{"stream":"..","data":{"e":"depthUpdate","E":..,("T":..,)"s":"..",
///   ("ps":"..",)"U":..,"u":..,("pu":..,)"b":[..],"a":[..]}}` (spot, USD-M, COIN-M), its
///   levels into `bids` and `asks` at the instrument's scales;
/// - spot bookTicker: `{"stream":"..","data":{"u":..,"s":"..","b":"..","B":"..","a":"..",
///   "A":".."}}`;
/// - spot trade: `{"stream":"..","data":{"e":"trade","E":..,"s":"..","t":..,"p":"..",
///   "q":"..","T":..,"m":..,"M":..}}`.
///
/// It answers exactly what the walk ([`Cur::frame`], [`Cur::shaped`], [`Ev`]) answers for
/// these bytes: the same scans, the same scaling ([`Dec::at`]) and level reads, the same
/// defaults for what a frame lacks. `None` for any other byte, a number that does not scan
/// or scale, a futures frame without `T` or `pu`, or a symbol the cache does not know
/// (registering one, or the error for one, is the walk's), and the walk then runs from the
/// start (it clears `bids` and `asks` itself).
#[inline(always)]
pub(super) fn direct(
    frame: &[u8],
    res: &Resolver<'_>,
    bids: &mut Vec<Level>,
    asks: &mut Vec<Level>,
) -> Option<MarketMsg<'static>> {
    let mut c = Cur { b: frame, i: 0 };
    c.lit_n(b"{\"stream\":\"")?;
    c.long_str_body()?;
    c.lit_n(b",\"data\":{\"")?;
    let futures = res.ctx.market.is_futures();
    let msg = if c.lit_n(b"u\":").is_some() {
        // Spot's and COIN-M's bookTicker (the most frequent frame) start with `u`.
        c.book_body(res, futures, true)?
    } else {
        c.lit_n(b"e\":\"")?;
        if c.lit_n(b"depthUpdate\",\"E\":").is_some() {
            c.depth_body(res, futures, bids, asks)?
        } else if c.lit_n(b"trade\",\"E\":").is_some() {
            c.trade_body(res)?
        } else {
            c.lit_n(b"bookTicker\",\"u\":")?;
            c.book_body(res, futures, false)?
        }
    };
    c.lit_n(b"}}")?;
    (c.i == frame.len()).then_some(msg)
}

impl Cur<'_> {
    /// The `s` member's symbol, if the cache knows its instrument.
    #[inline(always)]
    fn cached_symbol(&mut self, res: &Resolver<'_>) -> Option<Inst> {
        self.lit_n(b",\"s\":\"")?;
        let (s, e) = self.str_body()?;
        res.cached(self.b.get(s..e)?)
    }

    /// A decimal string's body (its opening quote consumed) at `scale`.
    #[inline(always)]
    fn dec_at(&mut self, scale: u8) -> Option<i64> {
        let (d, end) = scan_dec(self.b, self.i)?;
        self.i = end;
        d.at(scale)
    }

    /// An unsigned integer member `,"key":` if it is next.
    #[inline(always)]
    fn opt_uint<const N: usize>(&mut self, key: &[u8; N]) -> Option<Option<u64>> {
        if self.lit_n(key).is_none() {
            return Some(None);
        }
        self.uint().map(Some)
    }

    /// [`direct`]'s depthUpdate after `{"e":"depthUpdate","E":`, up to its closing `}` (not
    /// consumed). `T` and `pu` are required on futures, as the walk requires them.
    #[inline(always)]
    fn depth_body(
        &mut self,
        res: &Resolver<'_>,
        futures: bool,
        bids: &mut Vec<Level>,
        asks: &mut Vec<Level>,
    ) -> Option<MarketMsg<'static>> {
        let event_time_ms = self.uint()?;
        let transact_time_ms = self.opt_uint(b",\"T\":")?;
        let inst = self.cached_symbol(res)?;
        self.skip_pair()?;
        self.lit_n(b",\"U\":")?;
        let first_update_id = self.uint()?;
        self.lit_n(b",\"u\":")?;
        let final_update_id = self.uint()?;
        let prev_final_update_id = self.opt_uint(b",\"pu\":")?;
        if futures && (transact_time_ms.is_none() || prev_final_update_id.is_none()) {
            return None;
        }
        self.lit_n(b",\"b\":")?;
        self.direct_levels(bids, inst.price_scale, inst.qty_scale)?;
        self.lit_n(b",\"a\":")?;
        self.direct_levels(asks, inst.price_scale, inst.qty_scale)?;
        Some(MarketMsg::Depth(DepthUpdate {
            instrument: inst.id,
            event_time_ms,
            transact_time_ms,
            first_update_id,
            final_update_id,
            prev_final_update_id,
            bids: &[],
            asks: &[],
        }))
    }

    /// [`direct`]'s bookTicker after its `"u":` up to its closing `}` (not consumed):
    /// `u s b B a A` with, where the market's shape has them, `e` after `u` (`after_u`:
    /// COIN-M's; USD-M's `e` comes first and is consumed already), `ps` after `s`, and `T`
    /// and `E` last. `T` and `E` are required on futures, as the walk requires them.
    #[inline(always)]
    fn book_body(
        &mut self,
        res: &Resolver<'_>,
        futures: bool,
        after_u: bool,
    ) -> Option<MarketMsg<'static>> {
        let update_id = self.uint()?;
        if after_u {
            let _ = self.lit_n(b",\"e\":\"bookTicker\"");
        }
        let inst = self.cached_symbol(res)?;
        self.skip_pair()?;
        self.lit_n(b",\"b\":\"")?;
        let bid_price = Price(self.dec_at(inst.price_scale)?);
        self.lit_n(b",\"B\":\"")?;
        let bid_qty = Qty(self.dec_at(inst.qty_scale)?);
        self.lit_n(b",\"a\":\"")?;
        let ask_price = Price(self.dec_at(inst.price_scale)?);
        self.lit_n(b",\"A\":\"")?;
        let ask_qty = Qty(self.dec_at(inst.qty_scale)?);
        let transact_time_ms = self.opt_uint(b",\"T\":")?;
        let event_time_ms = self.opt_uint(b",\"E\":")?;
        if futures && (transact_time_ms.is_none() || event_time_ms.is_none()) {
            return None;
        }
        Some(MarketMsg::BookTicker(BookTicker {
            instrument: inst.id,
            update_id,
            event_time_ms,
            transact_time_ms,
            bid_price,
            bid_qty,
            ask_price,
            ask_qty,
        }))
    }

    /// COIN-M's `,"ps":"pair"`, which tape does not read, if it is next: a plain string here
    /// (`None` for anything else, which the walk reads instead).
    #[inline(always)]
    fn skip_pair(&mut self) -> Option<()> {
        if self.lit_n(b",\"ps\":\"").is_some() {
            self.str_body()?;
        }
        Some(())
    }

    /// [`direct`]'s trade after `{"e":"trade","E":`, up to its closing `}` (not consumed):
    /// spot's `E s t p q T m M`, futures' `E T s t p q X m`. `T` may stand in either place
    /// (the later one counts, as in the walk) and is required; `M`, which tape does not
    /// read, is taken only as `true` or `false`, `X` only as a plain string.
    #[inline(always)]
    fn trade_body(&mut self, res: &Resolver<'_>) -> Option<MarketMsg<'static>> {
        let event_time_ms = self.uint()?;
        let early_t = self.opt_uint(b",\"T\":")?;
        let inst = self.cached_symbol(res)?;
        self.lit_n(b",\"t\":")?;
        let trade_id = self.uint()?;
        self.lit_n(b",\"p\":\"")?;
        let price = Price(self.dec_at(inst.price_scale)?);
        self.lit_n(b",\"q\":\"")?;
        let qty = Qty(self.dec_at(inst.qty_scale)?);
        let trade_time_ms = self.opt_uint(b",\"T\":")?.or(early_t)?;
        let is_market = if self.lit_n(b",\"X\":\"").is_some() {
            let (s, e) = self.str_body()?;
            self.b.get(s..e)? == b"MARKET"
        } else {
            true
        };
        self.lit_n(b",\"m\":")?;
        let buyer_is_maker = self.bool_lit()?;
        if self.lit_n(b",\"M\":").is_some() {
            self.bool_lit()?;
        }
        Some(MarketMsg::Trade(Trade {
            instrument: inst.id,
            event_time_ms,
            trade_time_ms,
            trade_id,
            price,
            qty,
            buyer_is_maker,
            buyer_order_id: None,
            seller_order_id: None,
            is_market,
        }))
    }

    /// `true` or `false`.
    #[inline(always)]
    fn bool_lit(&mut self) -> Option<bool> {
        if self.lit_n(b"true").is_some() {
            return Some(true);
        }
        self.lit_n(b"false")?;
        Some(false)
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Depth,
    Trade,
    BookTicker,
}

/// The scanned event with the checks of [`super::events`], in the same order. `None` is
/// "hand over to the tape path".
struct Ev<'r, 'f> {
    rec: &'r Rec,
    frame: &'f [u8],
    market_is_futures: bool,
    /// [`Sink::memo`] after the scan.
    memo: Option<(u32, u32, Inst)>,
}

impl Ev<'_, '_> {
    /// `Fields::u64`: a required unsigned integer.
    #[inline]
    fn u64(&self, f: F) -> Option<u64> {
        match self.rec.get(f) {
            Val::Int(v) => Some(v),
            _ => None,
        }
    }

    /// `Fields::opt_u64`.
    #[inline]
    fn opt_u64(&self, f: F) -> Option<Option<u64>> {
        match self.rec.get(f) {
            Val::Absent => Some(None),
            Val::Int(v) => Some(Some(v)),
            _ => None,
        }
    }

    /// `events::market_u64`: required on futures, optional on spot.
    #[inline]
    fn market_u64(&self, f: F) -> Option<Option<u64>> {
        match self.opt_u64(f)? {
            None if self.market_is_futures => None,
            v => Some(v),
        }
    }

    #[inline]
    fn bytes(&self, f: F) -> Option<&[u8]> {
        match self.rec.get(f) {
            Val::Str(s, e) => self.frame.get(s as usize..e as usize),
            _ => None,
        }
    }

    /// `Fields::fixed`; a decimal the tape path would reject is handed over.
    #[inline(always)]
    fn fixed(&self, f: F, scale: u8) -> Option<i64> {
        match self.rec.get(f) {
            Val::Dec(m, frac) => Dec { m, frac }.at(scale),
            Val::Str(s, e) => fixed_in(self.frame, s as usize, e as usize, scale).ok(),
            _ => None,
        }
    }

    /// `Resolver::instrument` on `s`: its error is exactly the tape path's.
    #[inline]
    fn inst(
        &self,
        res: &mut Resolver<'_>,
        event: &'static str,
    ) -> Option<Result<Inst, DecodeError>> {
        if let (Some((ms, me, inst)), Val::Str(s, e)) = (self.memo, self.rec.get(F::S)) {
            if (ms, me) == (s, e) {
                return Some(Ok(inst));
            }
        }
        let s = self.bytes(F::S)?;
        if let Some(inst) = res.cached(s) {
            return Some(Ok(inst));
        }
        // ASCII by construction, so this cannot fail; `?` keeps it panic-free anyway.
        let s = std::str::from_utf8(s).ok()?;
        Some(res.symbol(event, s))
    }

    fn book_ticker(
        &self,
        res: &mut Resolver<'_>,
    ) -> Option<Result<MarketMsg<'static>, DecodeError>> {
        let update_id = self.u64(F::LowU)?;
        let event_time_ms = self.market_u64(F::UpE)?;
        let transact_time_ms = self.market_u64(F::UpT)?;
        let inst = match self.inst(res, "bookTicker")? {
            Ok(i) => i,
            Err(e) => return Some(Err(e)),
        };
        Some(Ok(MarketMsg::BookTicker(BookTicker {
            instrument: inst.id,
            update_id,
            event_time_ms,
            transact_time_ms,
            bid_price: Price(self.fixed(F::LowB, inst.price_scale)?),
            bid_qty: Qty(self.fixed(F::UpB, inst.qty_scale)?),
            ask_price: Price(self.fixed(F::LowA, inst.price_scale)?),
            ask_qty: Qty(self.fixed(F::UpA, inst.qty_scale)?),
        })))
    }

    fn trade(&self, res: &mut Resolver<'_>) -> Option<Result<MarketMsg<'static>, DecodeError>> {
        let event_time_ms = self.u64(F::UpE)?;
        let trade_time_ms = self.u64(F::UpT)?;
        let trade_id = self.u64(F::LowT)?;
        let Val::Bool(buyer_is_maker) = self.rec.get(F::M) else {
            return None;
        };
        let buyer_order_id = self.opt_u64(F::LowB)?;
        let seller_order_id = self.opt_u64(F::LowA)?;
        let is_market = match self.rec.get(F::X) {
            Val::Absent => true,
            Val::Str(..) => self.bytes(F::X)? == b"MARKET",
            _ => return None,
        };
        let inst = match self.inst(res, "trade")? {
            Ok(i) => i,
            Err(e) => return Some(Err(e)),
        };
        Some(Ok(MarketMsg::Trade(Trade {
            instrument: inst.id,
            event_time_ms,
            trade_time_ms,
            trade_id,
            price: Price(self.fixed(F::P, inst.price_scale)?),
            qty: Qty(self.fixed(F::Q, inst.qty_scale)?),
            buyer_is_maker,
            buyer_order_id,
            seller_order_id,
            is_market,
        })))
    }

    fn depth(
        &self,
        res: &mut Resolver<'_>,
        spans: &[LevelSpan],
        bids: &mut Vec<Level>,
        asks: &mut Vec<Level>,
    ) -> Option<Result<MarketMsg<'static>, DecodeError>> {
        let event_time_ms = self.u64(F::UpE)?;
        let first_update_id = self.u64(F::UpU)?;
        let final_update_id = self.u64(F::LowU)?;
        let transact_time_ms = self.market_u64(F::UpT)?;
        let prev_final_update_id = self.market_u64(F::Pu)?;
        let inst = match self.inst(res, "depthUpdate")? {
            Ok(i) => i,
            Err(e) => return Some(Err(e)),
        };
        self.levels(F::LowB, spans, inst, bids)?;
        self.levels(F::LowA, spans, inst, asks)?;
        Some(Ok(MarketMsg::Depth(DepthUpdate {
            instrument: inst.id,
            event_time_ms,
            transact_time_ms,
            first_update_id,
            final_update_id,
            prev_final_update_id,
            bids: &[],
            asks: &[],
        })))
    }

    /// `Fields::levels`: `out` cleared, then every level in order.
    /// Levels the scan already parsed ([`Val::Direct`]) stand if they were parsed at this
    /// instrument's scales (a later `s` may have named another).
    fn levels(&self, f: F, spans: &[LevelSpan], inst: Inst, out: &mut Vec<Level>) -> Option<()> {
        let (price_scale, qty_scale) = (inst.price_scale, inst.qty_scale);
        let (first, count) = match self.rec.get(f) {
            Val::Direct(id) => return (id == inst.id.0).then_some(()),
            Val::Levels(first, count) => (first, count),
            _ => return None,
        };
        out.clear();
        let spans = spans.get(first as usize..(first + count) as usize)?;
        out.reserve(spans.len());
        for &[ps, pe, qs, qe] in spans {
            let price = fixed_in(self.frame, ps as usize, pe as usize, price_scale).ok()?;
            let qty = fixed_in(self.frame, qs as usize, qe as usize, qty_scale).ok()?;
            out.push(Level {
                price: Price(price),
                qty: Qty(qty),
            });
        }
        Some(())
    }
}
