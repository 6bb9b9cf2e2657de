//! Binance's event objects in the exact shapes it sends them: the fast path's first try.
//!
//! The general scanner ([`Cur::event`]) takes members in any order and spelling: it matches
//! each key, looks its field up, peeks at the value's type and at the delimiter after it. The
//! frames tape decodes all day come in a handful of fixed shapes: the same keys, in the same
//! order, with no whitespace. This module walks those shapes as a list of expected keys
//! ([`DEPTH`], [`TRADE`], [`BOOK_AFTER_E`], [`BOOK_AFTER_U`], one list per event covering
//! spot, USD-M and COIN-M through optional keys), so each member costs one word compare for
//! its key and a parse of a value whose type is known.
//!
//! It fills the same [`Rec`] the general scanner would fill for the same bytes, value for
//! value: a shaped frame is a frame the general scanner reads member by member, keys set in
//! order (so a repeated key still ends with its last value), untracked keys read and
//! dropped the same way. Any byte off the shape answers `None` and the caller runs the general
//! scanner from the same place with a fresh [`Rec`], so this module only changes speed.
//!
//! Depth levels of an instrument the decoder's symbol cache already knows are parsed straight
//! into the caller's bid and ask vectors at its scales ([`Val::Direct`]), skipping the level
//! spans; [`Ev::levels`](super::Ev) checks the instrument is the frame's final one.

use super::{Cur, LevelSpan, Rec, Sink, Val, F};
use crate::decode::number::{dec16_in, dec_in, fixed_fast, load8, quotes64, scan_dec};
use crate::fixed::{Price, Qty, MAX_SCALE};
use crate::msg::Level;

/// How a shaped member's value is read.
#[derive(Clone, Copy)]
enum Kind {
    /// An unsigned integer ([`Cur::uint`]).
    Int,
    /// A string without escapes.
    Str,
    /// A decimal string ([`Cur::decimal`]).
    Dec,
    /// `true` or `false`.
    Bool,
    /// `[["price","qty"],..]`.
    Levels,
    /// A key the event does not read: its value is read like the general scanner reads an
    /// untracked member's, and dropped.
    Skip,
}

/// One expected member: the bytes `,"key":` (at most 8) as a little-endian word.
#[derive(Clone, Copy)]
struct Key {
    lit: u64,
    len: u8,
    f: F,
    kind: Kind,
    /// Absent in some markets' shape: when the key does not match, the next one is tried.
    opt: bool,
}

const fn key(name: &[u8], f: F, kind: Kind, opt: bool) -> Key {
    let mut w = [0u8; 8];
    w[0] = b',';
    w[1] = b'"';
    let mut i = 0;
    while i < name.len() {
        w[2 + i] = name[i];
        i += 1;
    }
    w[2 + i] = b'"';
    w[3 + i] = b':';
    Key {
        lit: u64::from_le_bytes(w),
        len: (name.len() + 4) as u8,
        f,
        kind,
        opt,
    }
}

use Kind::{Bool, Dec, Int, Levels, Skip, Str};

/// After `"e":"depthUpdate"`: spot `E s U u b a`, USD-M `E T s U u pu b a`, COIN-M
/// `E T s ps U u pu b a`.
const DEPTH: [Key; 9] = [
    key(b"E", F::UpE, Int, false),
    key(b"T", F::UpT, Int, true),
    key(b"s", F::S, Str, false),
    key(b"ps", F::S, Skip, true),
    key(b"U", F::UpU, Int, false),
    key(b"u", F::LowU, Int, false),
    key(b"pu", F::Pu, Int, true),
    key(b"b", F::LowB, Levels, false),
    key(b"a", F::LowA, Levels, false),
];

/// After `"e":"trade"`: spot `E s t p q T m M`, futures `E T s t p q X m`.
const TRADE: [Key; 10] = [
    key(b"E", F::UpE, Int, false),
    key(b"T", F::UpT, Int, true),
    key(b"s", F::S, Str, false),
    key(b"t", F::LowT, Int, false),
    key(b"p", F::P, Dec, false),
    key(b"q", F::Q, Dec, false),
    key(b"T", F::UpT, Int, true),
    key(b"X", F::X, Str, true),
    key(b"m", F::M, Bool, false),
    key(b"M", F::M, Skip, true),
];

/// After `"e":"bookTicker"` (USD-M): `u s b B a A T E`.
const BOOK_AFTER_E: [Key; 9] = [
    key(b"u", F::LowU, Int, false),
    key(b"s", F::S, Str, false),
    key(b"ps", F::S, Skip, true),
    key(b"b", F::LowB, Dec, false),
    key(b"B", F::UpB, Dec, false),
    key(b"a", F::LowA, Dec, false),
    key(b"A", F::UpA, Dec, false),
    key(b"T", F::UpT, Int, true),
    key(b"E", F::UpE, Int, true),
];

/// After `"u":..` (spot, COIN-M): spot `s b B a A`, COIN-M `e s ps b B a A T E`.
const BOOK_AFTER_U: [Key; 9] = [
    key(b"e", F::LowE, Str, true),
    key(b"s", F::S, Str, false),
    key(b"ps", F::S, Skip, true),
    key(b"b", F::LowB, Dec, false),
    key(b"B", F::UpB, Dec, false),
    key(b"a", F::LowA, Dec, false),
    key(b"A", F::UpA, Dec, false),
    key(b"T", F::UpT, Int, true),
    key(b"E", F::UpE, Int, true),
];

impl Cur<'_> {
    /// Consumes exactly the bytes `w`.
    #[inline(always)]
    pub(super) fn lit_n<const N: usize>(&mut self, w: &[u8; N]) -> Option<()> {
        let got: &[u8; N] = self.b.get(self.i..self.i + N)?.try_into().ok()?;
        if got != w {
            return None;
        }
        self.i += N;
        Some(())
    }

    /// Consumes `k`'s `,"key":` if it is next.
    #[inline(always)]
    fn key_lit(&mut self, k: &Key) -> bool {
        let len = usize::from(k.len);
        if self.i + len > self.b.len() {
            return false;
        }
        let mask = u64::MAX >> (64 - 8 * len);
        if load8(self.b, self.i) & mask != k.lit {
            return false;
        }
        self.i += len;
        true
    }

    /// The members of an event object after its `{`, when they are one of the shapes.
    /// Consumes the closing `}`. `None`: not a shape (the cursor, `rec`, `spans` and the
    /// sink's vectors are then the caller's to reset).
    pub(super) fn shaped(
        &mut self,
        rec: &mut Rec,
        spans: &mut Vec<LevelSpan>,
        sink: &mut Sink<'_, '_>,
    ) -> Option<()> {
        let keys: &[Key] = if self.lit_n(b"\"e\":\"").is_some() {
            let start = self.i;
            let keys: &[Key] = if self.lit_n(b"depthUpdate\"").is_some() {
                &DEPTH
            } else if self.lit_n(b"trade\"").is_some() {
                &TRADE
            } else if self.lit_n(b"bookTicker\"").is_some() {
                &BOOK_AFTER_E
            } else {
                return None;
            };
            rec.v[F::LowE as usize] = Val::Str(start as u32, (self.i - 1) as u32);
            keys
        } else if self.lit_n(b"\"u\":").is_some() {
            rec.v[F::LowU as usize] = Val::Int(self.uint()?);
            let at = self.i;
            if self.spot_book(rec).is_some() {
                return Some(());
            }
            // Not spot's exact shape: the key list decides, from the same state.
            self.i = at;
            for f in [F::S, F::LowB, F::UpB, F::LowA, F::UpA] {
                rec.v[f as usize] = Val::Absent;
            }
            &BOOK_AFTER_U
        } else {
            return None;
        };
        for k in keys {
            if !self.key_lit(k) {
                if k.opt {
                    continue;
                }
                return None;
            }
            let v = match k.kind {
                Int => Val::Int(self.uint()?),
                Str => {
                    self.lit_n(b"\"")?;
                    let (s, e) = self.str_body()?;
                    Val::Str(s as u32, e as u32)
                }
                Dec => self.decimal()?,
                Bool => {
                    if self.lit_n(b"true").is_some() {
                        Val::Bool(true)
                    } else {
                        self.lit_n(b"false")?;
                        Val::Bool(false)
                    }
                }
                Levels => self.shaped_levels(k.f, rec, spans, sink)?,
                Skip => {
                    self.simple()?;
                    continue;
                }
            };
            rec.v[k.f as usize] = v;
        }
        self.lit_n(b"}")
    }

    /// Spot's bookTicker after `"u":..`: `,"s":"..","b":"..","B":"..","a":"..","A":".."}`
    /// with four plain decimals, the hottest frame of all. It is [`BOOK_AFTER_U`]'s walk when
    /// its optional keys are all absent and every decimal scans, unrolled: each key and the
    /// value's opening quote are one fixed compare, and each decimal goes straight to
    /// [`scan_dec`]. It sets exactly the fields that walk would set, to the same values;
    /// `None` (any other byte, a decimal `scan_dec` does not take) leaves the frame to it.
    /// Kept out of line: inlined, it grew [`Cur::shaped`] enough to slow the depth walk.
    #[inline(never)]
    fn spot_book(&mut self, rec: &mut Rec) -> Option<()> {
        self.lit_n(b",\"s\":\"")?;
        let (s, e) = self.str_body()?;
        rec.v[F::S as usize] = Val::Str(s as u32, e as u32);
        for (lit, f) in [
            (b",\"b\":\"", F::LowB),
            (b",\"B\":\"", F::UpB),
            (b",\"a\":\"", F::LowA),
            (b",\"A\":\"", F::UpA),
        ] {
            self.lit_n(lit)?;
            let (d, end) = scan_dec(self.b, self.i)?;
            self.i = end;
            rec.v[f as usize] = Val::Dec(d.m, d.frac);
        }
        self.lit_n(b"}")
    }

    /// A level array: straight into the sink at the scales of the frame's `s` so far, if the
    /// symbol cache knows it; else (or off the strict spelling) as spans, like the general
    /// scanner.
    fn shaped_levels(
        &mut self,
        f: F,
        rec: &Rec,
        spans: &mut Vec<LevelSpan>,
        sink: &mut Sink<'_, '_>,
    ) -> Option<Val> {
        let inst = match rec.get(F::S) {
            Val::Str(s, e) => sink.cached(self.b, s, e),
            _ => None,
        };
        if let Some(inst) = inst {
            let out = if matches!(f, F::LowB) {
                &mut *sink.bids
            } else {
                &mut *sink.asks
            };
            let at = self.i;
            if self
                .direct_levels(out, inst.price_scale, inst.qty_scale)
                .is_some()
            {
                return Some(Val::Direct(inst.id.0));
            }
            self.i = at;
        }
        self.levels(spans)
    }

    /// `[["price","qty"],..]` with no whitespace, parsed into `out` (cleared first). `None`
    /// for anything else, including a decimal the fast tiers do not take (the span route then
    /// decides, with `parse_fixed` behind it; for a snapshot body, the tape path).
    ///
    /// Levels are read from the byte classes of the 32 bytes where each starts ([`level32`])
    /// while they fit them with decimals of at most eight bytes (USD-M's and COIN-M's; the
    /// frame's last bytes are read from a zero-padded copy); from the first that does not,
    /// from the classes of 64 bytes with decimals of up to sixteen ([`level64`]: spot's eight
    /// fraction digits); from the first that fits neither, the rest go through
    /// [`levels_scan`].
    #[inline(always)]
    pub(super) fn direct_levels(
        &mut self,
        out: &mut Vec<Level>,
        price_scale: u8,
        qty_scale: u8,
    ) -> Option<()> {
        out.clear();
        let b = self.b;
        self.lit_n(b"[")?;
        if self.lit_n(b"]").is_some() {
            return Some(());
        }
        let (i, closed) = levels32(b, self.i, out, price_scale, qty_scale);
        if closed {
            self.i = i;
            return Some(());
        }
        let (i, closed) = levels64(b, i, out, price_scale, qty_scale);
        if closed {
            self.i = i;
            return Some(());
        }
        self.i = levels_scan(b, i, out, price_scale, qty_scale)?;
        Some(())
    }
}

/// The levels from `b[i..]` (a level's `[`) pushed onto `out` while each is read by
/// [`level32`]: returns where it stopped and whether that is past the array's closing `]`
/// (else `b[i..]` is the first level it did not read). Out of line, so the loop keeps its
/// values in registers instead of sharing them with the whole frame's walk.
#[inline(never)]
fn levels32(
    b: &[u8],
    mut i: usize,
    out: &mut Vec<Level>,
    price_scale: u8,
    qty_scale: u8,
) -> (usize, bool) {
    if price_scale > MAX_SCALE || qty_scale > MAX_SCALE {
        return (i, false);
    }
    loop {
        let whole = b.get(i..).and_then(<[u8]>::first_chunk::<48>);
        let got = match whole {
            Some(w) => level32(w, price_scale, qty_scale),
            None => {
                // The frame's last bytes: the same read over a copy padded with zeros, which
                // match none of the bytes a level needs, so a level that does not end within
                // the frame fails its checks as it would have failed them.
                let Some(pad) = padded_tail::<48>(b, i) else {
                    return (i, false);
                };
                level32(&pad, price_scale, qty_scale)
            }
        };
        let Some((level, used, more)) = got else {
            return (i, false);
        };
        out.push(level);
        i += used;
        if !more {
            return (i, true);
        }
    }
}

/// `b[i..]` (fewer than `N` bytes, `N <= 64`) followed by zeros, as `N` bytes; `None` past the
/// frame's end. Copied from the frame's last 64 bytes as a block of fixed size (a few vector
/// moves), not by a copy of the remainder's own length (a call to `memcpy`); frames shorter
/// than that are copied byte for byte.
#[inline(always)]
fn padded_tail<const N: usize>(b: &[u8], i: usize) -> Option<[u8; N]> {
    let mut tail = [0u8; 128];
    let base = b.len().saturating_sub(64);
    match b.get(base..).and_then(|t| <&[u8; 64]>::try_from(t).ok()) {
        Some(last) => *tail.first_chunk_mut::<64>()? = *last,
        None => tail.get_mut(..b.len())?.copy_from_slice(b),
    }
    let at = i.checked_sub(base)?;
    if at > b.len() - base {
        return None;
    }
    tail.get(at..at + N)?.try_into().ok()
}

/// [`levels32`] with [`level64`]: levels of up to 64 bytes with decimals of up to sixteen.
///
/// The same loop as `levels32`'s, written out: one generic loop for both (a const window size
/// and the level reader as a parameter) made `levels32` compile to ~23 more instructions a
/// level (depth20 5,183 -> 5,624 instructions a frame).
#[inline(never)]
fn levels64(
    b: &[u8],
    mut i: usize,
    out: &mut Vec<Level>,
    price_scale: u8,
    qty_scale: u8,
) -> (usize, bool) {
    if price_scale > MAX_SCALE || qty_scale > MAX_SCALE {
        return (i, false);
    }
    loop {
        let got = match b.get(i..i + 80).and_then(|w| <&[u8; 80]>::try_from(w).ok()) {
            Some(w) => level64(w, price_scale, qty_scale),
            None => {
                // As in `levels32`: the frame's last bytes from a copy padded with zeros.
                let rest = b.get(i..).unwrap_or_default();
                let mut pad = [0u8; 80];
                let Some(head) = pad.get_mut(..rest.len()) else {
                    return (i, false);
                };
                head.copy_from_slice(rest);
                level64(&pad, price_scale, qty_scale)
            }
        };
        let Some((level, used, more)) = got else {
            return (i, false);
        };
        out.push(level);
        i += used;
        if !more {
            return (i, true);
        }
    }
}

/// The levels from `b[i..]` (a level's `[`) to the array's closing `]`, pushed onto `out`;
/// returns the index after that `]`. The closing quotes are found from a bitmap of the
/// quotes in 64-byte blocks, built from eight independent words, so the cursor moves by a
/// bit scan per string instead of a byte-dependent chain; the decimals by the 16-byte tier.
#[inline(never)]
fn levels_scan(
    b: &[u8],
    mut i: usize,
    out: &mut Vec<Level>,
    price_scale: u8,
    qty_scale: u8,
) -> Option<usize> {
    let mut quotes = Quotes::new(b, i);
    loop {
        // `["` price `","` qty `"]`
        if b.get(i..i + 2)? != b"[\"" {
            return None;
        }
        let ps = i + 2;
        let pe = quotes.next(ps)?;
        if b.get(pe..pe + 3)? != b"\",\"" {
            return None;
        }
        let qs = pe + 3;
        let qe = quotes.next(qs)?;
        let price = fixed_fast(b, ps, pe, price_scale)?;
        let qty = fixed_fast(b, qs, qe, qty_scale)?;
        out.push(Level {
            price: Price(price),
            qty: Qty(qty),
        });
        match b.get(qe + 1..qe + 3)? {
            b"]," => i = qe + 3,
            b"]]" => return Some(qe + 3),
            _ => return None,
        }
    }
}

/// One level, `["price","qty"]` followed by `,` or `]`, at the start of `w`, read from the
/// byte classes of its first 32 bytes: the quotes give both strings' ends, and
/// [`two_decimals`] reads the strings (the last sixteen bytes of `w` are only read to fill a
/// decimal's word). Returns the level, the bytes it used with the byte that follows it, and
/// whether that byte was `,` (another level follows). `None` when the level or that byte is
/// not within the 32 bytes, or anything is off the strict spelling.
#[inline(always)]
fn level32(w: &[u8; 48], price_scale: u8, qty_scale: u8) -> Option<(Level, usize, bool)> {
    let c = tape_simd::classify32(w.first_chunk::<32>()?);
    // Two bytes compared as one 16-bit word.
    let pair = |i: usize| u16::from_le_bytes([w[i], w[i + 1]]);
    let word = |p: &[u8; 2]| u16::from_le_bytes(*p);
    // `["`: the price's opening quote is byte 1, its closing one the next quote.
    if pair(0) != word(b"[\"") {
        return None;
    }
    // `& 31` / `& 63` below only bound the indices for the compiler (no bounds branches);
    // a missing quote (32 trailing zeros) still fails the checks that follow.
    let pe = (c.quote & !0b11).trailing_zeros() as usize & 31;
    // `","` after the price (its first quote is `pe`); then the quantity's closing quote,
    // `]`, and `,` or `]`.
    let qs = pe + 3;
    if qs > 31 || pair(pe + 1) != word(b",\"") {
        return None;
    }
    let qe = (qs + (c.quote >> qs).trailing_zeros() as usize) & 63;
    if qe > 29 {
        return None;
    }
    let more = match pair(qe + 1) {
        x if x == word(b"],") => true,
        x if x == word(b"]]") => false,
        _ => return None,
    };
    let (price, qty) = two_decimals(c.dot, w, pe, qe, price_scale, qty_scale)?;
    Some((
        Level {
            price: Price(price),
            qty: Qty(qty),
        },
        qe + 3,
        more,
    ))
}

/// A level's price and quantity: the strings `w[2..pe]` and `w[pe + 3..qe]` (`qe < 32`, the
/// bytes between them `","`) at scales `ps` and `qs`.
///
/// With SSSE3, when each string has exactly one dot and at most eight digits, at most `scale`
/// of them after the dot, and is not the dot alone: both are gathered by byte shuffles
/// straight into their fixed-point places ([`place`]: each digit goes to the lane of its power
/// of ten, the dot is skipped, places the string has no digit for are zero), checked to be
/// digits and converted in one vector register ([`tape_simd::digits8x2`]). The dots' mask is
/// the only class needed. Anything else (no dot, a longer fraction, more digits) is read by
/// [`dec_in`].
#[inline(always)]
fn two_decimals(
    dot: u32,
    w: &[u8; 48],
    pe: usize,
    qe: usize,
    ps: u8,
    qs: u8,
) -> Option<(i64, i64)> {
    #[cfg(all(target_arch = "x86_64", target_feature = "ssse3"))]
    {
        // The first dot is taken as the price's and the second as the quantity's. Nothing
        // else is checked here, as nothing else is needed: each string's digits before and
        // after its dot are counted from those places (wrapping, so a dot that is not inside
        // its string gives a count [`place`] refuses), and the shuffle names every byte of
        // the string but that dot, so a second dot or any other byte fails the digit check.
        let q0 = pe + 3;
        let d1 = dot.trailing_zeros() as usize;
        let d2 = (dot & dot.wrapping_sub(1)).trailing_zeros() as usize;
        let (pp, qp) = (PLACES.get(usize::from(ps)), PLACES.get(usize::from(qs)));
        if let (Some((cp, mp)), Some((cq, mq))) = (
            pp.and_then(|pp| place(0, pp, d1.wrapping_sub(2), pe.wrapping_sub(d1 + 1))),
            qp.and_then(|qp| place(1, qp, d2.wrapping_sub(q0), qe.wrapping_sub(d2 + 1))),
        ) {
            // `& 31`: `q0 < qe < 32`, said to the compiler (no bounds branch).
            let q0 = q0 & 31;
            if let Some((pv, qv)) = tape_simd::digits8x2(
                w[2..18].try_into().ok()?,
                cp,
                w[q0..q0 + 16].try_into().ok()?,
                cq,
            ) {
                return Some((
                    i64::from(pv).checked_mul(mp)?,
                    i64::from(qv).checked_mul(mq)?,
                ));
            }
        }
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "ssse3")))]
    let _ = dot;
    two_dec_in(w, pe, qe, ps, qs)
}

/// Where [`tape_simd::digits8x2`] puts a decimal of `int` digits, a dot and `frac` digits at
/// the scale of `places` (its row of [`PLACES`]): its shuffle control in [`FIXED`] (half 0:
/// the first value, 1: the second) and the power of ten the gathered value is then multiplied
/// by. `None` when the string does not fit: more than eight digits, or a fraction longer than
/// its lanes. The dot alone is refused by its shuffle control, which names the dot.
#[cfg(all(target_arch = "x86_64", target_feature = "ssse3"))]
#[inline(always)]
fn place(
    half: usize,
    places: &[Place; 9],
    int: usize,
    frac: usize,
) -> Option<(&'static [u8; 16], i64)> {
    let p = places.get(int)?;
    if frac > usize::from(p.lanes) {
        return None;
    }
    // `& 1023`: the table's rows are padded to 1024, so the index needs no bounds branch
    // (`base + frac <= 728` already).
    let row = if half == 0 { &FIXED[0] } else { &FIXED[1] };
    Some((&row[(usize::from(p.base) + frac) & 1023], p.mult))
}

/// How a decimal with a given number of integer digits is placed at a scale, [`PLACES`]`[scale][int]`:
/// the eight lanes hold the value times `10^lanes`, `lanes` the scale or, when the integer
/// digits leave fewer lanes, all that is left (`8 - int`); `mult` makes up the difference (1
/// at USD-M's and COIN-M's scales, so the value is exact as gathered). `base` is the first
/// of its [`FIXED`] entries, one per fraction length `0..=lanes`.
#[cfg(all(target_arch = "x86_64", target_feature = "ssse3"))]
#[derive(Clone, Copy)]
struct Place {
    mult: i64,
    base: u16,
    lanes: u8,
}

/// [`Place`] of every scale (`0..=MAX_SCALE`) and integer length (`0..=8`).
#[cfg(all(target_arch = "x86_64", target_feature = "ssse3"))]
static PLACES: [[Place; 9]; MAX_SCALE as usize + 1] = places::<9>();

/// [`Place`] of every scale and integer length `0..N` over `N - 1` lanes: [`PLACES`] (8) and
/// [`PLACES16`] (16), whose shuffle tables' rows are `(lanes * N + int) * N + frac`.
#[cfg(all(target_arch = "x86_64", target_feature = "ssse3"))]
const fn places<const N: usize>() -> [[Place; N]; MAX_SCALE as usize + 1] {
    let none = Place {
        mult: 0,
        base: 0,
        lanes: 0,
    };
    let mut t = [[none; N]; MAX_SCALE as usize + 1];
    let mut scale = 0;
    while scale <= MAX_SCALE as usize {
        let mut int = 0;
        while int < N {
            let over = (int + scale).saturating_sub(N - 1);
            let lanes = scale - over;
            t[scale][int] = Place {
                mult: crate::fixed::POW10[over],
                base: ((lanes * N + int) * N) as u16,
                lanes: lanes as u8,
            };
            int += 1;
        }
        scale += 1;
    }
    t
}

/// [`two_decimals`] by [`dec_in`], each on its own. It classifies the window again rather
/// than take the caller's classes: with SSSE3 the hot path needs only the quotes and dots, so
/// the digit and zero masks are computed here, on the cold path, and nowhere else.
#[cfg_attr(
    all(target_arch = "x86_64", target_feature = "ssse3"),
    cold,
    inline(never)
)]
#[cfg_attr(
    not(all(target_arch = "x86_64", target_feature = "ssse3")),
    inline(always)
)]
fn two_dec_in(w: &[u8; 48], pe: usize, qe: usize, ps: u8, qs: u8) -> Option<(i64, i64)> {
    let c = tape_simd::classify32(w.first_chunk::<32>()?);
    let w40 = w.first_chunk::<40>()?;
    Some((
        dec_in(&c, w40, 2, pe, ps)?,
        dec_in(&c, w40, pe + 3, qe, qs)?,
    ))
}

/// Shuffle controls for [`tape_simd::digits8x2`], `[half][(lanes * 9 + int) * 9 + frac]`: a
/// decimal string of `int` digits, a dot and `frac` digits (`int <= 8 - lanes`,
/// `frac <= lanes`), read from its first byte, put as its value times `10^lanes` in eight
/// lanes, most significant first: lanes `0..8` (half 0) or `8..16` (half 1). Integer digit
/// `k` goes to the lane of `10^(int - 1 - k + lanes)`, fraction digit `m` (byte `int + 1 + m`)
/// to that of `10^(lanes - 1 - m)`; every other lane is 0x80 (a zero digit), and no lane
/// names the dot's byte, except in the dot alone's (`int` and `frac` 0), where one names it so
/// that the digit check refuses it. Entries outside those bounds are never read; each half
/// is padded from 729 to 1024 entries so that an index masked to ten bits needs no bounds
/// branch.
#[cfg(all(target_arch = "x86_64", target_feature = "ssse3"))]
static FIXED: [[[u8; 16]; 1024]; 2] = {
    let mut t = [[[0x80u8; 16]; 1024]; 2];
    let mut half = 0;
    while half < 2 {
        let mut lanes = 0;
        while lanes <= 8 {
            let mut int = 0;
            while int + lanes <= 8 {
                let mut frac = 0;
                while frac <= lanes {
                    let e = &mut t[half][(lanes * 9 + int) * 9 + frac];
                    if int + frac == 0 {
                        // "." alone: one lane names the dot, which fails the digit check.
                        e[half * 8] = 0;
                    }
                    // The lane of 10^x is 7 - x (most significant first).
                    let mut k = 0;
                    while k < int {
                        e[half * 8 + 8 - lanes - int + k] = k as u8;
                        k += 1;
                    }
                    let mut m = 0;
                    while m < frac {
                        e[half * 8 + 8 - lanes + m] = (int + 1 + m) as u8;
                        m += 1;
                    }
                    frac += 1;
                }
                int += 1;
            }
            lanes += 1;
        }
        half += 1;
    }
    t
};

/// [`level32`] over the byte classes of 64 bytes, with decimals of up to sixteen bytes
/// ([`dec16_in`]): spot's levels (`["61800.20000000","0.00162000"]`, ~34 bytes). The last
/// sixteen bytes of `w` are only read to fill a decimal's word.
#[inline(always)]
fn level64(w: &[u8; 80], price_scale: u8, qty_scale: u8) -> Option<(Level, usize, bool)> {
    let (lo, hi) = classify64(w)?;
    let quote = u64::from(lo.quote) | u64::from(hi.quote) << 32;
    let dot = u64::from(lo.dot) | u64::from(hi.dot) << 32;
    if w[0] != b'[' || quote & 0b10 == 0 {
        return None;
    }
    // `& 63` / `& 127` below only bound the indices for the compiler; a missing quote (64
    // trailing zeros) still fails the checks that follow.
    let pe = (quote & !0b11).trailing_zeros() as usize & 63;
    let qs = pe + 3;
    if qs > 63 || w[pe + 1] != b',' || (quote >> (pe + 2)) & 1 == 0 {
        return None;
    }
    let qe = (qs + (quote >> qs).trailing_zeros() as usize) & 127;
    if qe > 61 || w[qe + 1] != b']' {
        return None;
    }
    let more = match w[qe + 2] {
        b',' => true,
        b']' => false,
        _ => return None,
    };
    let (price, qty) = two_decimals16(dot, w, pe, qe, price_scale, qty_scale)?;
    Some((
        Level {
            price: Price(price),
            qty: Qty(qty),
        },
        qe + 3,
        more,
    ))
}

/// The byte classes of `w`'s first 64 bytes, as two halves.
#[inline(always)]
fn classify64(w: &[u8; 80]) -> Option<(tape_simd::Classes, tape_simd::Classes)> {
    let lo = tape_simd::classify32(w.first_chunk::<32>()?);
    let hi = tape_simd::classify32(w[32..].first_chunk::<32>()?);
    Some((lo, hi))
}

/// A spot level's price and quantity: the strings `w[2..pe]` and `w[pe + 3..qe]` (`qe < 62`,
/// the bytes between them `","`) at scales `ps` and `qs`, as [`two_decimals`] reads USD-M's
/// but over sixteen lanes: with SSSE3, when each string has exactly one dot, at most sixteen
/// digits, at most `scale` of them after the dot, fits in sixteen bytes and is not the dot
/// alone, each is gathered by one byte shuffle straight into its fixed-point places
/// ([`place16`], [`FIXED16`]), checked to be digits and converted ([`tape_simd::gather16`]).
/// Anything else goes to [`dec16_in`], as before.
#[inline(always)]
fn two_decimals16(
    dot: u64,
    w: &[u8; 80],
    pe: usize,
    qe: usize,
    ps: u8,
    qs: u8,
) -> Option<(i64, i64)> {
    #[cfg(all(target_arch = "x86_64", target_feature = "ssse3"))]
    {
        // As in `two_decimals`: the first dot is the price's and the second the quantity's;
        // a dot outside its string gives a (wrapped) count `place16` refuses, and the
        // shuffle names every byte of the string but that dot, so any other byte fails the
        // digit check.
        let q0 = pe + 3;
        let d1 = dot.trailing_zeros() as usize;
        let d2 = (dot & dot.wrapping_sub(1)).trailing_zeros() as usize;
        let (pp, qp) = (PLACES16.get(usize::from(ps)), PLACES16.get(usize::from(qs)));
        if let (Some((cp, mp)), Some((cq, mq))) = (
            pp.and_then(|pp| place16(pp, d1.wrapping_sub(2), pe.wrapping_sub(d1 + 1))),
            qp.and_then(|qp| place16(qp, d2.wrapping_sub(q0), qe.wrapping_sub(d2 + 1))),
        ) {
            // `& 63`: `q0 < qe < 62`, said to the compiler (no bounds branch).
            let q0 = q0 & 63;
            let p = tape_simd::gather16(w[2..18].try_into().ok()?, cp);
            let q = tape_simd::gather16(w[q0..q0 + 16].try_into().ok()?, cq);
            if let (Some(p), Some(q)) = (p, q) {
                // Both below 10^16: they fit an i64; only the rescale can overflow.
                return Some(((p as i64).checked_mul(mp)?, (q as i64).checked_mul(mq)?));
            }
        }
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "ssse3")))]
    let _ = dot;
    two_dec16_in(w, pe, qe, ps, qs)
}

/// [`two_decimals16`] by [`dec16_in`], each on its own, from the window's classes taken
/// again (with SSSE3 the hot path needs only the quotes and dots).
#[cfg_attr(
    all(target_arch = "x86_64", target_feature = "ssse3"),
    cold,
    inline(never)
)]
#[cfg_attr(
    not(all(target_arch = "x86_64", target_feature = "ssse3")),
    inline(always)
)]
fn two_dec16_in(w: &[u8; 80], pe: usize, qe: usize, ps: u8, qs: u8) -> Option<(i64, i64)> {
    let (lo, hi) = classify64(w)?;
    let digit = u64::from(lo.digit) | u64::from(hi.digit) << 32;
    let dot = u64::from(lo.dot) | u64::from(hi.dot) << 32;
    Some((
        dec16_in(digit, dot, w, 2, pe, ps)?,
        dec16_in(digit, dot, w, pe + 3, qe, qs)?,
    ))
}

/// [`place`] over sixteen lanes: the shuffle control in [`FIXED16`] for a decimal of `int`
/// digits, a dot and `frac` digits at the scale of `places` (its row of [`PLACES16`]), and
/// the power of ten to multiply by. `None` when it does not fit: more than sixteen digits, or
/// a fraction longer than its lanes.
#[cfg(all(target_arch = "x86_64", target_feature = "ssse3"))]
#[inline(always)]
fn place16(places: &[Place; 17], int: usize, frac: usize) -> Option<(&'static [u8; 16], i64)> {
    let p = places.get(int)?;
    if frac > usize::from(p.lanes) {
        return None;
    }
    // `& 8191`: the table is padded to 8192 rows (`base + frac <= 4912` already).
    Some((&FIXED16[(usize::from(p.base) + frac) & 8191], p.mult))
}

/// [`PLACES`] over sixteen lanes: `[scale][int]` for `int <= 16`; `lanes` is the scale or,
/// when the integer digits leave fewer, `16 - int`; `base` is the first of its [`FIXED16`]
/// rows, `(lanes * 17 + int) * 17`.
#[cfg(all(target_arch = "x86_64", target_feature = "ssse3"))]
static PLACES16: [[Place; 17]; MAX_SCALE as usize + 1] = places::<17>();

/// Shuffle controls for [`tape_simd::gather16`], `[(lanes * 17 + int) * 17 + frac]`, as
/// [`FIXED`]'s over sixteen lanes: a decimal string of `int` digits, a dot and `frac` digits
/// (`int <= 16 - lanes`, `frac <= lanes`) put as its value times `10^lanes`, most significant
/// first; integer digit `k` to the lane of `10^(int - 1 - k + lanes)`, fraction digit `m`
/// (byte `int + 1 + m`) to that of `10^(lanes - 1 - m)`, every other lane 0x80 (a zero).
/// Two shapes get a lane naming the dot instead, so that the digit check refuses them: the
/// dot alone, and strings of seventeen bytes (`int + frac == 16` with a fraction), whose last
/// digit is past the sixteen bytes read (`pshufb` would read byte 16 as byte 0). Padded from
/// 4,913 to 8,192 rows so that an index masked to thirteen bits needs no bounds branch.
#[cfg(all(target_arch = "x86_64", target_feature = "ssse3"))]
static FIXED16: [[u8; 16]; 8192] = {
    let mut t = [[0x80u8; 16]; 8192];
    let mut lanes = 0;
    while lanes <= 16 {
        let mut int = 0;
        while int + lanes <= 16 {
            let mut frac = 0;
            while frac <= lanes {
                let e = &mut t[(lanes * 17 + int) * 17 + frac];
                // The lane of 10^x is 15 - x (most significant first).
                let mut k = 0;
                while k < int {
                    e[16 - lanes - int + k] = k as u8;
                    k += 1;
                }
                let mut m = 0;
                while m < frac {
                    e[16 - lanes + m] = (int + 1 + m) as u8;
                    m += 1;
                }
                if int + frac == 0 {
                    // "." alone: one lane names the dot (byte 0).
                    e[0] = 0;
                } else if int + frac == 16 && frac > 0 {
                    // Seventeen bytes: the lane of the last digit names the dot (byte `int`).
                    e[15] = int as u8;
                }
                frac += 1;
            }
            int += 1;
        }
        lanes += 1;
    }
    t
};

/// The positions of `"` in a frame, 64 bytes at a time.
struct Quotes<'a> {
    b: &'a [u8],
    base: usize,
    mask: u64,
}

impl<'a> Quotes<'a> {
    #[inline(always)]
    fn new(b: &'a [u8], base: usize) -> Self {
        Quotes {
            b,
            base,
            mask: quotes64(b, base),
        }
    }

    /// The first quote at or after `from`, if the frame has one. Callers only move forward
    /// (`from >= base`).
    #[inline(always)]
    fn next(&mut self, from: usize) -> Option<usize> {
        let rel = from.checked_sub(self.base)?;
        if rel >= 64 {
            self.base = from;
            self.mask = quotes64(self.b, from);
        }
        let m = self.mask & (u64::MAX << (from - self.base));
        if m != 0 {
            return Some(self.base + m.trailing_zeros() as usize);
        }
        // None in the rest of this block: the blocks after it.
        loop {
            self.base += 64;
            if self.base >= self.b.len() {
                return None;
            }
            self.mask = quotes64(self.b, self.base);
            if self.mask != 0 {
                return Some(self.base + self.mask.trailing_zeros() as usize);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixed::parse_fixed;
    use proptest::prelude::*;

    /// A decimal string as Binance writes one (digits, a dot, digits), or near it: no dot, a
    /// second dot, a sign, leading zeros, the dot alone, an empty side.
    fn decimal() -> impl Strategy<Value = String> {
        (
            "[0-9]{0,10}",
            prop_oneof![
                6 => Just("."),
                1 => Just(""),
                1 => Just(".."),
            ],
            "[0-9]{0,10}",
            prop_oneof![8 => Just(""), 1 => Just("-"), 1 => Just("x")],
        )
            .prop_map(|(int, dot, frac, junk)| format!("{junk}{int}{dot}{frac}"))
    }

    /// What the levels are by [`parse_fixed`]: `None` from the first level it rejects.
    fn expected(levels: &[(String, String)], ps: u8, qs: u8) -> Vec<Option<(i64, i64)>> {
        levels
            .iter()
            .map(|(p, q)| {
                Some((
                    parse_fixed(p.as_bytes(), ps).ok()?,
                    parse_fixed(q.as_bytes(), qs).ok()?,
                ))
            })
            .collect()
    }

    /// [`decimal`] with up to seventeen digits a side: spot's decimals and past them.
    fn decimal16() -> impl Strategy<Value = String> {
        (
            "[0-9]{0,17}",
            prop_oneof![
                6 => Just("."),
                1 => Just(""),
                1 => Just(".."),
            ],
            "[0-9]{0,17}",
            prop_oneof![8 => Just(""), 1 => Just("-"), 1 => Just("x")],
        )
            .prop_map(|(int, dot, frac, junk)| format!("{junk}{int}{dot}{frac}"))
    }

    /// `levels32`'s and `levels64`'s signature.
    type LevelReader = fn(&[u8], usize, &mut Vec<Level>, u8, u8) -> (usize, bool);

    /// A level reader (`levels32`, `levels64`) over `levels` as an array between `lead` bytes
    /// and `trail` closing braces: every level read equals `parse_fixed`'s reading, a closed
    /// array was read whole, and with SSSE3 every leading level of the shuffle route's shape
    /// (one dot, at most `digits` digits, a fraction within the scale, the level within
    /// `window` bytes) was read.
    fn check_reader(
        read: LevelReader,
        levels: &[(String, String)],
        (ps, qs): (u8, u8),
        (lead, trail): (usize, usize),
        (digits, window): (usize, usize),
    ) -> Result<(), TestCaseError> {
        let body = levels
            .iter()
            .map(|(p, q)| format!(r#"["{p}","{q}"]"#))
            .collect::<Vec<_>>()
            .join(",");
        let frame = format!("{}[{body}]{}", "x".repeat(lead), "}".repeat(trail));
        let mut out = Vec::new();
        let (end, closed) = read(frame.as_bytes(), lead + 1, &mut out, ps, qs);
        let want = expected(levels, ps, qs);
        for (k, got) in out.iter().enumerate() {
            prop_assert_eq!(Some((got.price.0, got.qty.0)), want[k], "level {}", k);
        }
        if closed {
            prop_assert_eq!(out.len(), levels.len());
            prop_assert_eq!(end, lead + 2 + body.len());
        }
        let simple = |s: &str, scale: u8| {
            let Some((int, frac)) = s.split_once('.') else {
                return false;
            };
            let all_digits = |t: &str| t.bytes().all(|c| c.is_ascii_digit());
            all_digits(int)
                && all_digits(frac)
                && (1..=digits).contains(&(int.len() + frac.len()))
                && frac.len() <= usize::from(scale)
        };
        if cfg!(all(target_arch = "x86_64", target_feature = "ssse3")) {
            let took = levels
                .iter()
                .zip(&want)
                .take_while(|((p, q), w)| {
                    simple(p, ps) && simple(q, qs) && p.len() + q.len() + 8 <= window && w.is_some()
                })
                .count();
            prop_assert!(
                out.len() >= took,
                "read {} of {} simple levels",
                out.len(),
                took
            );
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 20000, ..ProptestConfig::default() })]

        /// [`levels64`] as [`levels32_reads_what_parse_fixed_reads`] checks `levels32`: every
        /// level read equals `parse_fixed`'s reading, at every scale; and every level whose
        /// strings have one dot, fit sixteen bytes and keep their fraction within the scale
        /// (the sixteen-lane shuffle route) is read.
        #[test]
        fn levels64_reads_what_parse_fixed_reads(
            levels in proptest::collection::vec((decimal16(), decimal16()), 1..5),
            ps in 0u8..=18,
            qs in 0u8..=18,
            lead in 0usize..80,
            trail in 0usize..100,
        ) {
            check_reader(levels64, &levels, (ps, qs), (lead, trail), (15, 64))?;
        }

        /// Every level [`levels32`] reads equals `parse_fixed`'s reading of its strings, at
        /// every scale, wherever the array sits in the frame (its last bytes read padded);
        /// and it reads every level whose strings have one dot and at most eight digits
        /// with a fraction within the scale (the shuffle route), so a route that silently
        /// stopped taking them fails here.
        #[test]
        fn levels32_reads_what_parse_fixed_reads(
            levels in proptest::collection::vec((decimal(), decimal()), 1..5),
            ps in 0u8..=18,
            qs in 0u8..=18,
            lead in 0usize..80,
            trail in 0usize..80,
        ) {
            check_reader(levels32, &levels, (ps, qs), (lead, trail), (8, 32))?;
        }
    }
}
