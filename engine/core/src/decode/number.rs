//! A fast path for [`parse_fixed`] on the decimal strings Binance actually sends.
//!
//! `parse_fixed` checks for overflow on every digit, one byte at a time; it was the largest
//! single cost of a depth frame after the scan. Two faster tiers come first, each answering
//! only when its result is certainly `parse_fixed`'s `Ok`, and deferring everything else
//! (signs, errors, long numbers) to the next:
//!
//! 1. [`wide`]: decimals of at most 16 bytes read as one 16-byte word (SWAR): one pass finds
//!    the dot and any other non-digit, the dot is shifted out, and the digits kept (all the
//!    integer ones and the fraction up to the scale; the rest must be zeros) are converted
//!    eight at a time. It needs 16 readable bytes from the start of the string, which the
//!    frame around it provides (the bytes past the string are masked off).
//! 2. [`narrow`]: a byte loop for unsigned decimals of at most 19 bytes with at most 18
//!    significant digits, which cannot overflow until the final rescale.
//!
//! The fast path's scanner also reads decimals and integers while it tokenizes:
//! [`scan_dec`] takes an unsigned decimal string up to its closing quote into a [`Dec`] (all
//! digits, fraction length) before the instrument's scale is known, [`Dec::at`] scales it, and
//! [`scan_uint`] reads a JSON integer eight digits at a time. [`quotes64`] maps the quotes of 64
//! bytes at once, for the depth level scan.
//!
//! Proptests check all tiers against `parse_fixed` on every input, at every scale.

use crate::fixed::{parse_fixed, pow10, FixedError, MAX_SCALE};

/// [`parse_fixed`], faster on the common case and identical in every result. For a bare
/// string (the tape path's), which has no frame around it for the 16-byte tier.
#[inline]
pub(super) fn fixed(s: &[u8], scale: u8) -> Result<i64, FixedError> {
    match narrow(s, scale) {
        Some(v) => Ok(v),
        None => parse_fixed(s, scale),
    }
}

/// [`parse_fixed`] of `b[start..end]`, identical in every result. The bytes after the range
/// are only read to fill a 16-byte word (and masked off), so a caller holding the whole
/// frame avoids copies.
#[inline(always)]
pub(super) fn fixed_in(b: &[u8], start: usize, end: usize, scale: u8) -> Result<i64, FixedError> {
    if let Some(v) = wide(b, start, end, scale) {
        return Ok(v);
    }
    fixed_slow(b.get(start..end).unwrap_or_default(), scale)
}

#[inline(never)]
fn fixed_slow(s: &[u8], scale: u8) -> Result<i64, FixedError> {
    fixed(s, scale)
}

const ONES: u128 = 0x0101_0101_0101_0101_0101_0101_0101_0101;
const ZEROS: u128 = ONES * b'0' as u128;
const HI: u128 = ONES * 0x80;

/// Eight digit values (0..=9, first digit in the lowest byte) as an integer.
#[inline(always)]
fn eight(v: u64) -> u64 {
    let v = v.wrapping_mul(2561) >> 8;
    let v = (v & 0x00ff_00ff_00ff_00ff).wrapping_mul(6_553_601) >> 16;
    (v & 0x0000_ffff_0000_ffff).wrapping_mul(42_949_672_960_001) >> 32
}

/// The low `n` bytes of a 16-byte word (`n <= 16`).
#[inline(always)]
fn low_bytes(n: usize) -> u128 {
    if n >= 16 {
        u128::MAX
    } else {
        (1u128 << (8 * n)) - 1
    }
}

/// `parse_fixed(b[start..end], scale)` when the 16-byte tier can say it is certainly `Ok`;
/// `None` leaves the string to `parse_fixed`.
#[inline(always)]
pub(super) fn fixed_fast(b: &[u8], start: usize, end: usize, scale: u8) -> Option<i64> {
    wide(b, start, end, scale)
}

/// One bit per byte of `w` that is a `"`, the first byte in bit 0.
#[inline(always)]
fn quote_bits(w: u64) -> u64 {
    const LOW7: u64 = ONES8 * 0x7f;
    let x = w ^ (ONES8 * u64::from(b'"'));
    // High bit of each byte of x that is zero, exactly (no borrow between bytes).
    let z = !(((x & LOW7).wrapping_add(LOW7)) | x) & (ONES8 * 0x80);
    // Gather the eight high bits, byte k's into bit k.
    z.wrapping_mul(0x0002_0408_1020_4081) >> 56
}

/// One bit per `"` in `b[base..base + 64]` (bytes past the end of `b` are no quote). Eight
/// independent words: no dependency chain through the bytes.
#[inline(always)]
pub(super) fn quotes64(b: &[u8], base: usize) -> u64 {
    let mut m = 0;
    let mut k = 0;
    while k < 8 {
        m |= quote_bits(load8(b, base + 8 * k)) << (8 * k);
        k += 1;
    }
    m
}

/// Tier 1: `Some` only when the result is certainly what `parse_fixed` returns as `Ok`.
#[inline(always)]
fn wide(b: &[u8], start: usize, end: usize, scale: u8) -> Option<i64> {
    let len = end.checked_sub(start)?;
    if len <= 8 {
        return wide8(b, start, len, scale);
    }
    if len > 16 || scale > MAX_SCALE {
        return None;
    }
    let inside = low_bytes(len);
    // Digit values where the bytes are digits; the string's first byte is the lowest.
    let t = window16(b, start, end)? ^ ZEROS;
    // High bit of each byte that is not 0..=9 (digits give t <= 9, t + 0x76 <= 0x7f). A
    // carry out of a byte happens only for t >= 0x8a, which is flagged by its own high bit,
    // so the lowest flag is exact, and so is the next one above a '.' (t = 0x1e, no carry).
    let nd = (t.wrapping_add(ONES * 0x76) | t) & HI & inside;
    let (digits, int_digits, frac) = if nd == 0 {
        (t, len, 0)
    } else {
        let dot = (nd.trailing_zeros() / 8) as usize;
        // The one non-digit must be a '.' ('.' ^ '0' = 0x1e).
        if (t >> (8 * dot)) as u8 != 0x1e || nd & (nd - 1) != 0 {
            return None;
        }
        let frac = (len - 1 - dot).min(usize::from(scale));
        // Digits past the scale must be zeros; anything else is parse_fixed's error to name.
        if t & inside & !low_bytes(dot + 1 + frac) != 0 {
            return None;
        }
        // Shift the dot out: the kept digits become contiguous.
        let below = low_bytes(dot);
        ((t & below) | ((t >> 8) & !below), dot, frac)
    };
    let kept = int_digits + frac;
    if kept == 0 {
        // "." alone, or ".000" at scale 0: parse_fixed's to judge.
        return None;
    }
    // Left-align the kept digits; the bytes shifted in are zero digits in front.
    let acc = sixteen(digits << (8 * (16 - kept)));
    // acc < 10^16 fits an i64; only the rescale can overflow.
    (acc as i64).checked_mul(pow10(scale - frac as u8))
}

const ONES8: u64 = 0x0101_0101_0101_0101;

/// The string `b[start..end]` (1 to 16 bytes) in the low bytes of a 16-byte word, read from
/// its start, or near the end of `b` from its end (then shifted down); the bytes above it
/// are whatever follows, to be masked.
#[inline(always)]
fn window16(b: &[u8], start: usize, end: usize) -> Option<u128> {
    if let Some(w) = b.get(start..start + 16) {
        return Some(u128::from_le_bytes(w.try_into().ok()?));
    }
    let w: [u8; 16] = b.get(end.checked_sub(16)?..end)?.try_into().ok()?;
    Some(u128::from_le_bytes(w) >> (8 * (16 - (end - start))))
}

/// [`window16`] for 1 to 8 bytes.
#[inline(always)]
fn window8(b: &[u8], start: usize, len: usize) -> Option<u64> {
    if let Some(w) = b.get(start..start + 8) {
        return Some(u64::from_le_bytes(w.try_into().ok()?));
    }
    let end = start + len;
    let w: [u8; 8] = b.get(end.checked_sub(8)?..end)?.try_into().ok()?;
    Some(u64::from_le_bytes(w) >> (8 * (8 - len)))
}

/// [`wide`] for strings of at most 8 bytes, in one 8-byte word: the same steps, with no
/// 128-bit shifts (most depth levels' prices and quantities).
#[inline(always)]
fn wide8(b: &[u8], start: usize, len: usize, scale: u8) -> Option<i64> {
    if len == 0 || scale > MAX_SCALE {
        return None;
    }
    // The low k bytes, 1 <= k <= 8.
    let low = |k: usize| u64::MAX >> (64 - 8 * k);
    let inside = low(len);
    let t = window8(b, start, len)? ^ (ONES8 * u64::from(b'0'));
    let nd = non_digits(t) & inside;
    let (digits, int_digits, frac) = if nd == 0 {
        (t, len, 0)
    } else {
        let dot = (nd.trailing_zeros() / 8) as usize;
        if (t >> (8 * dot)) as u8 != 0x1e || nd & (nd - 1) != 0 {
            return None;
        }
        let frac = (len - 1 - dot).min(usize::from(scale));
        if t & inside & !low(dot + 1 + frac) != 0 {
            return None;
        }
        // dot < len <= 8, so the shift is at most 56.
        let below = (1u64 << (8 * dot)) - 1;
        ((t & below) | ((t >> 8) & !below), dot, frac)
    };
    let kept = int_digits + frac;
    if kept == 0 {
        return None;
    }
    let acc = eight(digits << (8 * (8 - kept)));
    (acc as i64).checked_mul(pow10(scale - frac as u8))
}

/// `10^k` for `k` in `0..=19` (all that fit a `u64`).
const POW10_U64: [u64; 20] = {
    let mut t = [1u64; 20];
    let mut k = 1;
    while k < 20 {
        t[k] = t[k - 1] * 10;
        k += 1;
    }
    t
};

/// An unsigned decimal string as the fast path scans it, before the instrument's scale is
/// known: every digit as one integer (`m`) and how many of them follow the dot (`frac`).
/// [`Dec::at`] turns it into `parse_fixed`'s result at a scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Dec {
    /// Every digit, integer and fraction, as one integer.
    pub(super) m: u64,
    /// Digits after the dot (at most 19).
    pub(super) frac: u8,
}

impl Dec {
    /// `parse_fixed(s, scale)` when it is certainly `Ok`; `None` leaves the string to it
    /// (digits past the scale that are not zeros, overflow, a scale past [`MAX_SCALE`]). For
    /// a [`scan_dec`] result that is exactly `parse_fixed`: `Some(v)` for `Ok(v)`, `None`
    /// for an error.
    #[inline(always)]
    pub(super) fn at(self, scale: u8) -> Option<i64> {
        if scale > MAX_SCALE {
            return None;
        }
        let v = if self.frac <= scale {
            // scale - frac <= 18.
            self.m
                .checked_mul(POW10_U64[usize::from(scale - self.frac)])?
        } else {
            // Digits past the scale must all be zeros: parse_fixed skips those and fails on
            // any other. `frac <= 19` for a scanned decimal.
            let d = *POW10_U64.get(usize::from(self.frac - scale))?;
            if !self.m.is_multiple_of(d) {
                return None;
            }
            self.m / d
        };
        i64::try_from(v).ok()
    }
}

/// Eight bytes of `b` from `i`, zero bytes past its end (a zero is no digit, dot or quote).
#[inline(always)]
pub(super) fn load8(b: &[u8], i: usize) -> u64 {
    if let Some(w) = b.get(i..i + 8) {
        let mut a = [0u8; 8];
        a.copy_from_slice(w);
        return u64::from_le_bytes(a);
    }
    let mut a = [0u8; 8];
    if let Some(rest) = b.get(i..) {
        a[..rest.len()].copy_from_slice(rest);
    }
    u64::from_le_bytes(a)
}

/// High bit of each byte of `t` (a word XOR `'0'`s) that is not a digit; the lowest one is
/// exact (a carry out of a byte only comes from a byte that is flagged itself, see `wide`).
#[inline(always)]
fn non_digits(t: u64) -> u64 {
    (t.wrapping_add(ONES8 * 0x76) | t) & (ONES8 * 0x80)
}

/// The `k` (0..=8) lowest digit values of `t` as an integer.
#[inline(always)]
fn low_digits(t: u64, k: usize) -> u64 {
    if k == 0 {
        return 0;
    }
    // Left-aligned, with zero digits shifted in front.
    eight(t << (8 * (8 - k)))
}

/// Scans a string body at `b[i..]` (its opening quote consumed) that is an unsigned decimal,
/// digits with at most one dot and at least one digit, up to its closing quote. Returns the
/// [`Dec`] and the index just past the closing quote, or `None` for any other string (signs,
/// exponents, escapes, more than 19 digits, no digit): the caller then scans it as a plain
/// string and leaves it to `parse_fixed`.
///
/// The usual shapes (at most 8 integer digits, at most 16 fraction digits) take two or three
/// eight-byte words with no loop; everything else goes to [`scan_dec_long`].
#[inline(always)]
pub(super) fn scan_dec(b: &[u8], i: usize) -> Option<(Dec, usize)> {
    let zeros = ONES8 * u64::from(b'0');
    let t = load8(b, i) ^ zeros;
    let nd = non_digits(t);
    if nd == 0 {
        return scan_dec_long(b, i);
    }
    // The first non-digit, at p < 8: the closing quote or the dot.
    let p = (nd.trailing_zeros() / 8) as usize;
    let int = low_digits(t, p);
    match (t >> (8 * p)) as u8 ^ b'0' {
        b'"' if p > 0 => return Some((Dec { m: int, frac: 0 }, i + p + 1)),
        b'.' => {}
        _ => return None,
    }
    // The fraction, from f: up to 8 digits in one word, or 8 and up to 8 more.
    let f = i + p + 1;
    let t = load8(b, f) ^ zeros;
    let nd = non_digits(t);
    let (frac, q, end) = if nd != 0 {
        let q = (nd.trailing_zeros() / 8) as usize;
        (low_digits(t, q), q, f + q)
    } else if b.get(f + 8) == Some(&b'"') {
        // Exactly eight (spot's prices and quantities): the quote needs no third word, and
        // p + 8 < 16 digits always fit.
        (eight(t), 8, f + 8)
    } else {
        let t2 = load8(b, f + 8) ^ zeros;
        let nd2 = non_digits(t2);
        if nd2 == 0 {
            return scan_dec_long(b, i);
        }
        let r = (nd2.trailing_zeros() / 8) as usize;
        if p + 8 + r > 19 {
            return scan_dec_long(b, i);
        }
        (
            eight(t) * POW10_U64[r] + low_digits(t2, r),
            8 + r,
            f + 8 + r,
        )
    };
    // The byte after the fraction's digits must close the string, and "." alone is no number.
    if *b.get(end)? != b'"' || p + q == 0 {
        return None;
    }
    // At most 8 + 16 digits here, and more than 19 went to scan_dec_long.
    Some((
        Dec {
            m: int * POW10_U64[q] + frac,
            frac: q as u8,
        },
        end + 1,
    ))
}

/// An unsigned JSON integer at `b[i..]`: digits up to the first non-digit, at most 19 of
/// them (below `u64::MAX`), and a leading `0` is the whole number (what follows it is the
/// caller's next token to judge). Returns the value and the index after its last digit.
/// Eight digits per step instead of one.
///
/// With sixteen bytes readable at `i`, a run shorter than that (every timestamp and update id
/// Binance sends: 13 digits) is read by [`tape_simd::leading_digits16`], one vector step.
#[inline(always)]
pub(super) fn scan_uint(b: &[u8], i: usize) -> Option<(u64, usize)> {
    if let Some(w) = b.get(i..i + 16).and_then(|w| <&[u8; 16]>::try_from(w).ok()) {
        let (k, v) = tape_simd::leading_digits16(w);
        match k {
            0 => return None,
            _ if w[0] == b'0' => return Some((0, i + 1)),
            16 => {}
            _ => return Some((v, i + k)),
        }
    }
    let zeros = ONES8 * u64::from(b'0');
    let t = load8(b, i) ^ zeros;
    let nd = non_digits(t);
    let k = (nd.trailing_zeros() / 8) as usize;
    match k {
        0 => None,
        _ if t & 0xff == 0 => Some((0, i + 1)),
        8 => {
            let t1 = load8(b, i + 8) ^ zeros;
            let r = (non_digits(t1).trailing_zeros() / 8) as usize;
            let head = eight(t);
            if r < 8 {
                return Some((head * POW10_U64[r] + low_digits(t1, r), i + 8 + r));
            }
            let t2 = load8(b, i + 16) ^ zeros;
            let r = (non_digits(t2).trailing_zeros() / 8) as usize;
            if r > 3 {
                return None;
            }
            // At most 19 digits: below 10^19, no overflow.
            let v = (head * 100_000_000 + eight(t1)) * POW10_U64[r] + low_digits(t2, r);
            Some((v, i + 16 + r))
        }
        _ => Some((low_digits(t, k), i + k)),
    }
}

/// [`scan_dec`] for any length, eight bytes at a time.
#[inline(never)]
fn scan_dec_long(b: &[u8], mut i: usize) -> Option<(Dec, usize)> {
    let zeros = ONES8 * u64::from(b'0');
    let mut m: u64 = 0;
    let mut digits: usize = 0;
    let mut dot: Option<usize> = None;
    loop {
        let t = load8(b, i) ^ zeros;
        let k = (non_digits(t).trailing_zeros() / 8) as usize;
        if k > 0 {
            digits += k;
            if digits > 19 {
                return None;
            }
            // m * 10^k < 10^19 fits.
            m = m * POW10_U64[k] + low_digits(t, k);
            i += k;
            if k == 8 {
                continue;
            }
        }
        match *b.get(i)? {
            b'.' if dot.is_none() => {
                dot = Some(digits);
                i += 1;
            }
            b'"' => break,
            _ => return None,
        }
    }
    if digits == 0 {
        return None;
    }
    let frac = digits - dot.unwrap_or(digits);
    Some((
        Dec {
            m,
            frac: frac as u8,
        },
        i + 1,
    ))
}

/// `parse_fixed(w[s..e], scale)` when it is certainly `Ok`, read from the byte classes `c` of
/// the window `w` (`s < e <= 32`): the string must be at most eight bytes of digits with at
/// most one dot (digits past the scale must be zeros). `None` leaves the string to
/// [`fixed_fast`] and `parse_fixed`.
///
/// The classes answer in a few mask operations what [`wide8`] finds with byte arithmetic:
/// where the dot is, that nothing else is there, and that the digits past the scale are
/// zeros. The 40-byte window lets the string's eight-byte word be read without a bounds
/// branch.
#[inline(always)]
pub(super) fn dec_in(
    c: &tape_simd::Classes,
    w: &[u8; 40],
    s: usize,
    e: usize,
    scale: u8,
) -> Option<i64> {
    let len = e.wrapping_sub(s);
    if len.wrapping_sub(1) >= 8 || scale > MAX_SCALE {
        return None;
    }
    // `s < 32` already; the mask lets the compiler see `s + 8 <= 39` (no bounds branch).
    let s = s & 31;
    let range = (((1u64 << len) - 1) << s) as u32;
    let dots = c.dot & range;
    if (c.digit | dots) & range != range || dots & dots.wrapping_sub(1) != 0 {
        return None;
    }
    let word: [u8; 8] = w[s..s + 8].try_into().ok()?;
    let t = u64::from_le_bytes(word) ^ (ONES8 * u64::from(b'0'));
    if dots == 0 {
        // An integer: every byte a digit.
        let acc = eight(t << (8 * (8 - len)));
        return (acc as i64).checked_mul(pow10(scale));
    }
    // The dot's place in the string and the fraction's length after it.
    let dot = (dots >> s).trailing_zeros() as usize;
    let frac = len - 1 - dot;
    if frac > usize::from(scale) || len == 1 {
        // Digits past the scale (they must be zeros), or "." alone.
        return dec_past_scale(t, len, dot, scale);
    }
    // Shift the dot out: the `len - 1` digits become contiguous in the low bytes, and the
    // shift into `eight` drops the window's bytes past them (dot < len <= 8).
    let below = (1u64 << (8 * dot)) - 1;
    let digits = (t & below) | ((t >> 8) & !below);
    let acc = eight(digits << (8 * (9 - len)));
    (acc as i64).checked_mul(pow10(scale - frac as u8))
}

/// [`dec_in`] for decimals of up to sixteen bytes (spot's: eight fraction digits), from the
/// digit and dot classes of a 64-byte window as 64-bit masks; `e <= 64`. The 80-byte window
/// lets the string's 16-byte word be read without a bounds branch. A fraction longer than the
/// scale goes to [`wide`] (cold), which judges the zeros past it.
#[inline(always)]
pub(super) fn dec16_in(
    digit: u64,
    dot: u64,
    w: &[u8; 80],
    s: usize,
    e: usize,
    scale: u8,
) -> Option<i64> {
    let len = e.wrapping_sub(s);
    if len.wrapping_sub(1) >= 16 || e > 64 || scale > MAX_SCALE {
        return None;
    }
    // `s < 64` already; the mask lets the compiler see `s + 16 <= 79` (no bounds branch).
    let s = s & 63;
    let range = ((1u64 << len) - 1) << s;
    let dots = dot & range;
    if (digit | dots) & range != range || dots & dots.wrapping_sub(1) != 0 {
        return None;
    }
    let word: [u8; 16] = w[s..s + 16].try_into().ok()?;
    let t = u128::from_le_bytes(word) ^ ZEROS;
    if dots == 0 {
        // An integer: every byte a digit; the shift drops the window's bytes past them.
        return (sixteen(t << (8 * (16 - len))) as i64).checked_mul(pow10(scale));
    }
    let dot = (dots >> s).trailing_zeros() as usize;
    let frac = len - 1 - dot;
    if frac > usize::from(scale) || len == 1 {
        return dec16_past_scale(w, s, s + len, scale);
    }
    // Shift the dot out: the `len - 1` digits become contiguous in the low bytes.
    let below = low_bytes(dot);
    let digits = (t & below) | ((t >> 8) & !below);
    (sixteen(digits << (8 * (17 - len))) as i64).checked_mul(pow10(scale - frac as u8))
}

/// [`dec16_in`]'s decimals with more fraction digits than the scale, or "." alone.
#[inline(never)]
#[cold]
fn dec16_past_scale(w: &[u8; 80], s: usize, e: usize, scale: u8) -> Option<i64> {
    wide(w, s, e, scale)
}

/// The value of sixteen digit bytes (0..=9 each), the most significant lowest.
#[inline(always)]
fn sixteen(x: u128) -> u64 {
    // One vector step with SSSE3 (two SWAR `eight`s were ~25 instructions).
    tape_simd::digits16(&x.to_le_bytes())
}

/// [`dec_in`] for a string of `len` bytes (`t`: its word less `'0'` per byte) whose dot at
/// `dot` is followed by more fraction digits than `scale`, or that is the dot alone.
#[inline(never)]
#[cold]
fn dec_past_scale(t: u64, len: usize, dot: usize, scale: u8) -> Option<i64> {
    let frac = (len - 1 - dot).min(usize::from(scale));
    let kept = dot + frac;
    if kept == 0 {
        // "." alone, or ".000" at scale 0: parse_fixed's to judge.
        return None;
    }
    // parse_fixed skips zeros past the scale and fails on any other digit.
    let inside = u64::MAX >> (64 - 8 * len);
    if t & inside & !(u64::MAX >> (64 - 8 * (kept + 1))) != 0 {
        return None;
    }
    let below = (1u64 << (8 * dot)) - 1;
    let digits = (t & below) | ((t >> 8) & !below);
    let acc = eight(digits << (8 * (8 - kept)));
    (acc as i64).checked_mul(pow10(scale - frac as u8))
}

/// Tier 2: `Some` only when the result is certainly what `parse_fixed` returns as `Ok`.
#[inline]
fn narrow(s: &[u8], scale: u8) -> Option<i64> {
    // 19 digits stay below u64::MAX (1.8e19), so the accumulator cannot overflow.
    if s.len() > 19 || scale > MAX_SCALE {
        return None;
    }
    let mut acc: u64 = 0;
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        acc = acc * 10 + u64::from(d);
        i += 1;
    }
    let int_digits = i;
    let mut frac: u8 = 0;
    if i < s.len() {
        if s[i] != b'.' {
            return None;
        }
        i += 1;
        while frac < scale {
            let Some(&c) = s.get(i) else { break };
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            acc = acc * 10 + u64::from(d);
            frac += 1;
            i += 1;
        }
        // Digits past the scale must be zeros; anything else is parse_fixed's error to name.
        if s[i..].iter().any(|&c| c != b'0') {
            return None;
        }
    }
    let digits = int_digits + usize::from(frac);
    if digits == 0 || digits > 18 {
        return None;
    }
    // acc < 10^18 fits an i64; only the rescale can overflow.
    (acc as i64).checked_mul(pow10(scale - frac))
}
#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fast_path_takes_binance_strings() {
        for (s, scale, want) in [
            ("61837.63000000", 8, 6_183_763_000_000),
            ("61837.63000000", 2, 6_183_763),
            ("61800.20", 2, 6_180_020),
            ("0.014", 3, 14),
            ("1001", 0, 1001),
            ("0.00000000", 8, 0),
            ("1114009857.57893810", 8, 111_400_985_757_893_810),
            ("1.", 2, 100),
            (".5", 2, 50),
        ] {
            assert_eq!(narrow(s.as_bytes(), scale), Some(want), "{s}");
            let framed = format!("{s}\"]]}}}}________________");
            assert_eq!(
                wide(framed.as_bytes(), 0, s.len(), scale),
                (s.len() <= 16).then_some(want),
                "{s}"
            );
            assert_eq!(fixed(s.as_bytes(), scale), Ok(want), "{s}");
        }
    }

    #[test]
    fn leaves_the_rest_to_parse_fixed() {
        for (s, scale) in [
            ("-1.5", 2),
            ("1.234", 2),
            ("", 2),
            (".", 2),
            ("1e5", 2),
            ("1.2.3", 8),
            ("12345678901234567890", 0),
            ("9999999999999999999", 0),
            ("100000000000", 8),
            ("1", 19),
        ] {
            assert_eq!(narrow(s.as_bytes(), scale), None, "{s}");
            let framed = format!("{s}\"]]}}}}________________");
            assert_eq!(wide(framed.as_bytes(), 0, s.len(), scale), None, "{s}");
            assert_eq!(fixed(s.as_bytes(), scale), parse_fixed(s.as_bytes(), scale));
        }
    }

    #[test]
    fn quote_masks_are_exact() {
        let mut b = vec![b'x'; 80];
        for at in [0, 1, 7, 8, 9, 31, 63, 64, 70] {
            b[at] = b'"';
        }
        // Bytes that differ from '"' by one bit, or carry into a neighbour, are no quote.
        b[2] = b'"' ^ 0x80;
        b[3] = b'#';
        b[4] = 0;
        b[5] = 0xff;
        let want = |base: usize| {
            (0..64).fold(0u64, |m, k| {
                m | (u64::from(b.get(base + k) == Some(&b'"')) << k)
            })
        };
        for base in 0..b.len() {
            assert_eq!(quotes64(&b, base), want(base), "base {base}");
        }
    }

    /// The byte loop `scan_uint` replaces: the reference it is checked against.
    fn uint_loop(b: &[u8], mut i: usize) -> Option<(u64, usize)> {
        let first = b.get(i)?.wrapping_sub(b'0');
        if first > 9 {
            return None;
        }
        i += 1;
        if first == 0 {
            return Some((0, i));
        }
        let (mut v, mut digits) = (u64::from(first), 1);
        while let Some(&c) = b.get(i) {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            digits += 1;
            if digits > 19 {
                return None;
            }
            v = v * 10 + u64::from(d);
            i += 1;
        }
        Some((v, i))
    }

    /// What a class-mask tier must do with `s` at `scale`, given its answer `got`: an answer
    /// is parse_fixed's `Ok`, and a plain decimal of at most `max_len` bytes that parse_fixed
    /// takes with a digit kept is answered.
    fn tier_agrees_with_parse_fixed(
        s: &[u8],
        scale: u8,
        got: Option<i64>,
        max_len: usize,
    ) -> Result<(), TestCaseError> {
        let want = parse_fixed(s, scale);
        if let Some(v) = got {
            prop_assert_eq!(Ok(v), want);
        }
        let plain = s.iter().all(|&b| b.is_ascii_digit() || b == b'.')
            && s.iter().filter(|&&b| b == b'.').count() <= 1;
        let int = s.iter().position(|&b| b == b'.').unwrap_or(s.len());
        let kept = int + (s.len() - int).saturating_sub(1).min(usize::from(scale));
        if plain && !s.is_empty() && s.len() <= max_len && kept > 0 && want.is_ok() {
            prop_assert_eq!(got, want.ok());
        }
        Ok(())
    }

    fn decimalish() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop::sample::select(vec![
                b'0', b'0', b'0', b'1', b'5', b'9', b'.', b'.', b'-', b'e', b' ',
            ]),
            0..24,
        )
    }

    /// Digit strings of any length with signs, dots and garbage mixed in.
    fn digitish() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                8 => b'0'..=b'9',
                2 => Just(b'0'),
                1 => Just(b'.'),
                1 => Just(b'-'),
                1 => any::<u8>(),
            ],
            0..40,
        )
    }

    /// A decimal as Binance writes it: integer digits, maybe a fraction, maybe trailing zeros.
    fn binance_like() -> impl Strategy<Value = Vec<u8>> {
        (
            proptest::collection::vec(b'0'..=b'9', 0..21),
            proptest::option::of(proptest::collection::vec(b'0'..=b'9', 0..21)),
            0usize..12,
        )
            .prop_map(|(int, frac, zeros)| {
                let mut s = int;
                if let Some(f) = frac {
                    s.push(b'.');
                    s.extend(f);
                    s.extend(std::iter::repeat_n(b'0', zeros));
                }
                s
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn agrees_with_parse_fixed(s in decimalish(), scale in 0u8..21) {
            prop_assert_eq!(fixed(&s, scale), parse_fixed(&s, scale));
        }

        #[test]
        fn agrees_on_formatted_values(m in any::<i64>(), written in 0u8..=18, scale in 0u8..=18) {
            let s = crate::fixed::Scaled(m, written).to_string();
            prop_assert_eq!(fixed(s.as_bytes(), scale), parse_fixed(s.as_bytes(), scale));
        }

        /// Every scale, arbitrary digit strings with signs and garbage, on their own and
        /// inside arbitrary surrounding bytes (which the eight-byte loads read and must
        /// ignore).
        #[test]
        fn agrees_on_any_bytes_in_any_frame(
            s in prop_oneof![digitish(), binance_like()],
            before in proptest::collection::vec(any::<u8>(), 0..12),
            after in proptest::collection::vec(any::<u8>(), 0..24),
            scale in 0u8..=20,
        ) {
            let want = parse_fixed(&s, scale);
            prop_assert_eq!(fixed(&s, scale), want);
            let mut frame = before.clone();
            frame.extend_from_slice(&s);
            frame.extend_from_slice(&after);
            let (start, end) = (before.len(), before.len() + s.len());
            prop_assert_eq!(fixed_in(&frame, start, end, scale), want);
            // At the very end of a frame, read backwards.
            frame.truncate(end);
            prop_assert_eq!(fixed_in(&frame, start, end, scale), want);
        }

        /// The scan-then-scale tier: where `scan_dec` takes a string followed by its closing
        /// quote, `Dec::at` is exactly `parse_fixed` at every scale, `Ok` and `Err` alike, and
        /// the scan ends just past the quote; it takes every plain decimal of <= 19 digits.
        #[test]
        fn scanned_decimals_agree_with_parse_fixed(
            s in prop_oneof![digitish(), binance_like(), decimalish()],
            before in proptest::collection::vec(any::<u8>(), 0..12),
            after in proptest::collection::vec(any::<u8>(), 0..12),
        ) {
            // The string's own bytes never hold its closing quote.
            let s: Vec<u8> = s.into_iter().map(|c| if c == b'"' { b'x' } else { c }).collect();
            let mut frame = before.clone();
            frame.extend_from_slice(&s);
            frame.push(b'"');
            frame.extend_from_slice(&after);
            let plain = s.iter().filter(|c| c.is_ascii_digit()).count();
            let dots = s.iter().filter(|&&c| c == b'.').count();
            let simple = s.iter().all(|&c| c.is_ascii_digit() || c == b'.');
            match scan_dec(&frame, before.len()) {
                Some((d, end)) => {
                    prop_assert_eq!(end, before.len() + s.len() + 1);
                    for scale in 0..=20u8 {
                        prop_assert_eq!(d.at(scale).ok_or(()), parse_fixed(&s, scale).map_err(|_| ()));
                    }
                }
                None => prop_assert!(!simple || dots > 1 || plain == 0 || plain > 19),
            }
            // Without the closing quote (the frame ends), the scan never takes it.
            prop_assert!(scan_dec(&frame[..before.len() + s.len()], before.len()).is_none());
        }

        /// Exactly eight fraction digits (spot's prices and quantities, which `scan_dec`
        /// closes without a third word) after up to nine integer digits, before any bytes:
        /// the scan ends just past the quote and scales exactly like `parse_fixed`, and a
        /// ninth fraction digit or a missing quote is never taken for eight.
        #[test]
        fn eight_fraction_digits_agree_with_parse_fixed(
            int in proptest::collection::vec(b'0'..=b'9', 0..10),
            frac in proptest::collection::vec(b'0'..=b'9', 8..=8),
            close in prop::sample::select(vec![b'"', b'"', b'"', b'0', b'7', b'.', b'x']),
            before in proptest::collection::vec(any::<u8>(), 0..4),
            after in proptest::collection::vec(any::<u8>(), 0..12),
        ) {
            let mut s = int.clone();
            s.push(b'.');
            s.extend_from_slice(&frac);
            let mut frame = before.clone();
            frame.extend_from_slice(&s);
            frame.push(close);
            frame.extend_from_slice(&after);
            let got = scan_dec(&frame, before.len());
            if close == b'"' {
                let (d, end) = got.expect("a plain decimal of at most 17 digits scans");
                prop_assert_eq!(end, before.len() + s.len() + 1);
                for scale in 0..=20u8 {
                    prop_assert_eq!(d.at(scale).ok_or(()), parse_fixed(&s, scale).map_err(|_| ()));
                }
            } else if let Some((d, end)) = got {
                // Only a longer decimal closed later: never the eight digits alone.
                prop_assert!(close.is_ascii_digit());
                let q = before.len() + s.len() + 1
                    + frame[before.len() + s.len() + 1..].iter().position(|&c| c == b'"').unwrap();
                prop_assert_eq!(end, q + 1);
                let whole = &frame[before.len()..q];
                for scale in 0..=20u8 {
                    prop_assert_eq!(d.at(scale).ok_or(()), parse_fixed(whole, scale).map_err(|_| ()));
                }
            }
        }

        /// `scan_uint` is the byte loop, on digit runs of every length, at the end of the
        /// frame or before anything.
        #[test]
        fn scanned_integers_agree_with_the_byte_loop(
            s in prop_oneof![digitish(), proptest::collection::vec(b'0'..=b'9', 0..24)],
            before in proptest::collection::vec(any::<u8>(), 0..4),
            after in proptest::collection::vec(any::<u8>(), 0..12),
        ) {
            let mut frame = before.clone();
            frame.extend_from_slice(&s);
            prop_assert_eq!(scan_uint(&frame, before.len()), uint_loop(&frame, before.len()));
            frame.extend_from_slice(&after);
            prop_assert_eq!(scan_uint(&frame, before.len()), uint_loop(&frame, before.len()));
        }

        /// The class-mask tier: inside any 40-byte window, at any place, wherever it answers
        /// it answers exactly parse_fixed's `Ok`, at every scale; and it takes every plain
        /// decimal of at most eight bytes that parse_fixed takes with a digit kept.
        #[test]
        fn class_masks_agree_with_parse_fixed(
            s in prop_oneof![digitish(), binance_like(), decimalish()],
            fill in proptest::array::uniform32(any::<u8>()),
            at in 0usize..32,
        ) {
            let mut w = [0u8; 40];
            w[..32].copy_from_slice(&fill);
            w[32..].copy_from_slice(&fill[..8]);
            let end = (at + s.len()).min(32);
            let s = &s[..end - at];
            w[at..end].copy_from_slice(s);
            let c = tape_simd::classify32(w.first_chunk::<32>().expect("40 >= 32"));
            for scale in 0..=20u8 {
                tier_agrees_with_parse_fixed(s, scale, dec_in(&c, &w, at, end, scale), 8)?;
            }
        }

        /// The 64-byte class-mask tier, as the one above: wherever it answers it answers
        /// parse_fixed's `Ok`, at every scale and place; it takes every plain decimal of at
        /// most sixteen bytes that parse_fixed takes with a digit kept.
        #[test]
        fn wide_class_masks_agree_with_parse_fixed(
            s in prop_oneof![digitish(), binance_like(), decimalish()],
            fill in proptest::collection::vec(any::<u8>(), 80),
            at in 0usize..64,
        ) {
            let mut w = [0u8; 80];
            w.copy_from_slice(&fill);
            let end = (at + s.len()).min(64);
            let s = &s[..end - at];
            w[at..end].copy_from_slice(s);
            let lo = tape_simd::classify32(w[..32].try_into().expect("32 bytes"));
            let hi = tape_simd::classify32(w[32..64].try_into().expect("32 bytes"));
            let digit = u64::from(lo.digit) | u64::from(hi.digit) << 32;
            let dot = u64::from(lo.dot) | u64::from(hi.dot) << 32;
            for scale in 0..=20u8 {
                tier_agrees_with_parse_fixed(s, scale, dec16_in(digit, dot, &w, at, end, scale), 16)?;
            }
        }

        /// Every scale 0..=18 for every Binance-shaped decimal, exhaustively over the scales.
        #[test]
        fn agrees_at_every_scale(s in binance_like(), pad in 0usize..9) {
            let mut frame = vec![b'"'; pad];
            frame.extend_from_slice(&s);
            frame.extend_from_slice(b"\"]]}}\"]]}}\"]]}}\"]]}}");
            for scale in 0..=MAX_SCALE {
                let want = parse_fixed(&s, scale);
                prop_assert_eq!(fixed(&s, scale), want);
                prop_assert_eq!(fixed_in(&frame, pad, pad + s.len(), scale), want);
                // The string last in its frame: read backwards from its end.
                let last = [vec![b'"'; 16], s.clone()].concat();
                prop_assert_eq!(fixed_in(&last, 16, last.len(), scale), want);
                // Each tier, where it answers, answers exactly parse_fixed's Ok.
                if let Some(v) = wide(&frame, pad, pad + s.len(), scale) {
                    prop_assert_eq!(Ok(v), want);
                }
                if let Some(v) = narrow(&s, scale) {
                    prop_assert_eq!(Ok(v), want);
                }
                // The wide tier takes every plain decimal of <= 16 bytes that fits.
                if s.len() <= 16 && s.iter().any(u8::is_ascii_digit) && want.is_ok() {
                    let int = s.iter().position(|&c| c == b'.').unwrap_or(s.len());
                    let kept = int + (s.len() - int).saturating_sub(1).min(usize::from(scale));
                    if kept > 0 {
                        prop_assert!(wide(&frame, pad, pad + s.len(), scale).is_some());
                        prop_assert_eq!(wide(&last, 16, last.len(), scale).map(Ok), Some(want));
                    }
                }
            }
        }
    }
}
