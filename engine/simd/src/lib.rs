//! Byte classes of a 32-byte window, one bit per byte, for the decoders' fast path.
//!
//! `tape-core` forbids `unsafe`, and on stable Rust an SSE2 intrinsic can only be called from
//! a function compiled for SSE2 or through `unsafe`. This crate is that boundary and nothing
//! else: [`classify32`] compares 32 bytes against the four classes the depth-level scanner
//! needs (quote, digit, dot, the digit zero) with eight SSE2 compares and returns the masks.
//! What the masks mean, and every decision taken from them, stays in `tape-core`.
//!
//! SSE2 is part of the `x86_64` baseline: every CPU that runs an `x86_64` binary has it, and
//! the compiler enables it for the whole build (`cfg(target_feature = "sse2")`), so there is no
//! runtime detection and no other path on `x86_64`. Elsewhere, or built without SSE2, the same
//! function is a byte loop ([`classify32_portable`]); a proptest holds the two equal on every
//! input.
//!
//! [`string_stops16`] finds where a plain JSON string's run stops in 16 bytes (SSE2, as
//! [`classify32`]).
//!
//! [`digits8x2`] gathers and converts a depth level's two decimals with SSSE3 byte shuffles,
//! [`gather16`] one decimal of up to sixteen digits (spot's levels), [`leading_digits16`] an
//! integer of up to sixteen digits (exchange timestamps, update ids), [`digits16`] sixteen
//! digit values.
//! SSSE3 is not in the `x86_64` baseline but in x86-64-v2, which the workspace builds for
//! (`.cargo/config.toml`); again no runtime detection, and without the feature (RUSTFLAGS that
//! replace the workspace's) byte loops ([`digits8x2_portable`], [`leading_digits16_portable`]),
//! held equal by proptests.

#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

/// One bit per byte of a 32-byte window: byte `k` is bit `k`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Classes {
    /// `"`
    pub quote: u32,
    /// `0` to `9`
    pub digit: u32,
    /// `.`
    pub dot: u32,
    /// `0`
    pub zero: u32,
}

/// The classes of the 32 bytes of `w`.
#[inline(always)]
pub fn classify32(w: &[u8; 32]) -> Classes {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        sse2::classify32(w)
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        classify32_portable(w)
    }
}

/// [`classify32`] one byte at a time: the reference the SSE2 version is tested against, and
/// the implementation on targets without SSE2.
#[inline]
pub fn classify32_portable(w: &[u8; 32]) -> Classes {
    let mut c = Classes {
        quote: 0,
        digit: 0,
        dot: 0,
        zero: 0,
    };
    for (k, &x) in w.iter().enumerate() {
        let bit = 1u32 << k;
        if x == b'"' {
            c.quote |= bit;
        }
        if x.is_ascii_digit() {
            c.digit |= bit;
        }
        if x == b'.' {
            c.dot |= bit;
        }
        if x == b'0' {
            c.zero |= bit;
        }
    }
    c
}

/// One bit per byte of `w` (byte `k` is bit `k`) that ends a plain JSON string's run: `"`,
/// `\\`, a control byte (below 0x20) or a non-ASCII byte (0x80 and up). With SSE2 three
/// compares and one `pmovmskb`; elsewhere [`string_stops16_portable`], which a proptest
/// holds equal to it.
#[inline(always)]
pub fn string_stops16(w: &[u8; 16]) -> u32 {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        sse2::string_stops16(w)
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        string_stops16_portable(w)
    }
}

/// [`string_stops16`] one byte at a time.
#[inline]
pub fn string_stops16_portable(w: &[u8; 16]) -> u32 {
    w.iter().enumerate().fold(0, |m, (k, &c)| {
        if c == b'"' || c == b'\\' || !(0x20..0x80).contains(&c) {
            m | 1 << k
        } else {
            m
        }
    })
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[allow(unsafe_code)]
mod sse2 {
    use super::Classes;
    use core::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8,
        _mm_or_si128, _mm_set1_epi8, _mm_sub_epi8,
    };

    /// The four masks of 16 bytes, as `u16`s in `u32`s.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn half(w: &[u8; 16]) -> [u32; 4] {
        // SAFETY: `w` is 16 readable bytes, exactly what an unaligned 16-byte load reads;
        // `_mm_loadu_si128` has no alignment requirement.
        let v = unsafe { _mm_loadu_si128(w.as_ptr().cast::<__m128i>()) };
        let mask = |m: __m128i| _mm_movemask_epi8(m) as u32 & 0xffff;
        let quote = mask(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8)));
        let dot = mask(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'.' as i8)));
        let zero = mask(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'0' as i8)));
        // Byte - '0' (wrapping) is 0..=9 exactly for a digit: an unsigned min with 9 leaves
        // those, and only those, unchanged.
        let d = _mm_sub_epi8(v, _mm_set1_epi8(b'0' as i8));
        let digit = mask(_mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(9)), d));
        [quote, digit, dot, zero]
    }

    #[inline(always)]
    pub(super) fn string_stops16(w: &[u8; 16]) -> u32 {
        // SAFETY: `w` is 16 readable bytes, exactly what an unaligned 16-byte load reads;
        // `_mm_loadu_si128` has no alignment requirement. The intrinsics need SSE2, which this
        // module is compiled for, and only compute on registers.
        unsafe {
            let v = _mm_loadu_si128(w.as_ptr().cast::<__m128i>());
            let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
            let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
            // Signed: below 0x20 is a control byte (0x00..0x20) or a negative one (0x80..).
            let outside = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), outside)) as u32 & 0xffff
        }
    }

    #[inline(always)]
    pub(super) fn classify32(w: &[u8; 32]) -> Classes {
        let (lo, hi) = w.split_at(16);
        let (Ok(lo), Ok(hi)) = (<&[u8; 16]>::try_from(lo), <&[u8; 16]>::try_from(hi)) else {
            unreachable!("32 bytes split at 16 are two halves of 16")
        };
        // SAFETY: `half` only requires SSE2, which this module is compiled for (its
        // `cfg(target_feature = "sse2")`): the whole build assumes it, so every CPU that
        // runs this code has it.
        let (a, b) = unsafe { (half(lo), half(hi)) };
        Classes {
            quote: a[0] | b[0] << 16,
            digit: a[1] | b[1] << 16,
            dot: a[2] | b[2] << 16,
            zero: a[3] | b[3] << 16,
        }
    }
}

/// The values of two runs of ASCII digits gathered by byte shuffles: lane `j` of `ctl_a`
/// (`j < 8`) names the byte of `a` that is the `j`-th digit, most significant first, of the
/// first value, and lane `j` of `ctl_b` (`8 <= j < 16`) the byte of `b` for the second; a lane
/// with its high bit set is a zero digit. Lanes `8..16` of `ctl_a` and `0..8` of `ctl_b`
/// must have the high bit set. `None` if a named byte is not a digit (`b'0'..=b'9'`).
///
/// With SSSE3 (`cfg(target_feature = "ssse3")`: the build targets x86-64-v2) this is two
/// `pshufb`, a digit check and three multiply-adds, ~15 instructions for both values;
/// elsewhere the byte loop [`digits8x2_portable`], which a proptest holds equal to it.
#[inline(always)]
pub fn digits8x2(
    a: &[u8; 16],
    ctl_a: &[u8; 16],
    b: &[u8; 16],
    ctl_b: &[u8; 16],
) -> Option<(u32, u32)> {
    #[cfg(all(target_arch = "x86_64", target_feature = "ssse3"))]
    {
        ssse3::digits8x2(a, ctl_a, b, ctl_b)
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "ssse3")))]
    {
        digits8x2_portable(a, ctl_a, b, ctl_b)
    }
}

/// [`digits8x2`] one byte at a time: the reference, and the implementation without SSSE3.
#[inline]
pub fn digits8x2_portable(
    a: &[u8; 16],
    ctl_a: &[u8; 16],
    b: &[u8; 16],
    ctl_b: &[u8; 16],
) -> Option<(u32, u32)> {
    // As `pshufb`: a lane with the high bit set is zero, else the byte its low four bits name.
    let lane = |src: &[u8; 16], c: u8| {
        if c & 0x80 != 0 {
            Some(0)
        } else {
            Some(src[usize::from(c & 15)].wrapping_sub(b'0')).filter(|&d| d <= 9)
        }
    };
    let mut x = 0u32;
    let mut y = 0u32;
    for j in 0..8 {
        x = x * 10 + u32::from(lane(a, ctl_a[j])?);
        y = y * 10 + u32::from(lane(b, ctl_b[8 + j])?);
    }
    Some((x, y))
}

/// The leading run of ASCII digits of `w`: how many bytes it is (0 to 16) and its value.
///
/// With SSSE3 one digit check, a `pshufb` that right-aligns the run (zeroing the bytes after
/// it) and three multiply-adds, ~20 instructions for an exchange timestamp's 13 digits;
/// elsewhere the byte loop [`leading_digits16_portable`], which a proptest holds equal to it.
#[inline(always)]
pub fn leading_digits16(w: &[u8; 16]) -> (usize, u64) {
    #[cfg(all(target_arch = "x86_64", target_feature = "ssse3"))]
    {
        ssse3::leading_digits16(w)
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "ssse3")))]
    {
        leading_digits16_portable(w)
    }
}

/// [`leading_digits16`] one byte at a time: the reference, and the implementation without
/// SSSE3.
#[inline]
pub fn leading_digits16_portable(w: &[u8; 16]) -> (usize, u64) {
    let mut v = 0u64;
    for (k, &c) in w.iter().enumerate() {
        if !c.is_ascii_digit() {
            return (k, v);
        }
        // At most 16 digits: below 10^16, no overflow.
        v = v * 10 + u64::from(c - b'0');
    }
    (16, v)
}

/// Sixteen bytes of `w` gathered by the shuffle control `ctl` into sixteen digit lanes, most
/// significant first (a lane of `ctl` with its high bit set is a zero digit, else it names
/// the byte `ctl & 15` of `w`), checked to be ASCII digits and converted: `None` if a named
/// byte is not a digit. Below 10^16.
///
/// With SSSE3 one `pshufb`, one digit check and three multiply-adds; elsewhere
/// [`gather16_portable`], which a proptest holds equal to it.
#[inline(always)]
pub fn gather16(w: &[u8; 16], ctl: &[u8; 16]) -> Option<u64> {
    #[cfg(all(target_arch = "x86_64", target_feature = "ssse3"))]
    {
        ssse3::gather16(w, ctl)
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "ssse3")))]
    {
        gather16_portable(w, ctl)
    }
}

/// [`gather16`] one lane at a time: the reference, and the implementation without SSSE3.
#[inline]
pub fn gather16_portable(w: &[u8; 16], ctl: &[u8; 16]) -> Option<u64> {
    let mut v = 0u64;
    for &c in ctl {
        let d = if c & 0x80 != 0 {
            0
        } else {
            Some(w[usize::from(c & 15)].wrapping_sub(b'0')).filter(|&d| d <= 9)?
        };
        v = v * 10 + u64::from(d);
    }
    Some(v)
}

/// The value of sixteen digit values (`0..=9` each, not ASCII), the most significant first:
/// below 10^16. Bytes above 9 are the caller's to rule out.
///
/// With SSSE3 three multiply-adds (~8 instructions); elsewhere [`digits16_portable`], which a
/// proptest holds equal to it.
#[inline(always)]
pub fn digits16(d: &[u8; 16]) -> u64 {
    #[cfg(all(target_arch = "x86_64", target_feature = "ssse3"))]
    {
        ssse3::digits16(d)
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "ssse3")))]
    {
        digits16_portable(d)
    }
}

/// [`digits16`] one value at a time (wrapping, so any bytes give a result): the reference,
/// and the implementation without SSSE3.
#[inline]
pub fn digits16_portable(d: &[u8; 16]) -> u64 {
    d.iter()
        .fold(0u64, |v, &x| v.wrapping_mul(10).wrapping_add(u64::from(x)))
}

#[cfg(all(target_arch = "x86_64", target_feature = "ssse3"))]
#[allow(unsafe_code)]
mod ssse3 {
    use core::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_cvtsi128_si64, _mm_loadu_si128, _mm_madd_epi16,
        _mm_maddubs_epi16, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_packs_epi32,
        _mm_set1_epi16, _mm_set1_epi32, _mm_set1_epi8, _mm_shuffle_epi8, _mm_sub_epi8,
    };

    #[inline(always)]
    pub(super) fn digits8x2(
        a: &[u8; 16],
        ctl_a: &[u8; 16],
        b: &[u8; 16],
        ctl_b: &[u8; 16],
    ) -> Option<(u32, u32)> {
        let load = |x: &[u8; 16]| {
            // SAFETY: `x` is 16 readable bytes, what an unaligned 16-byte load reads;
            // `_mm_loadu_si128` has no alignment requirement.
            unsafe { _mm_loadu_si128(x.as_ptr().cast::<__m128i>()) }
        };
        let (a, ctl_a, b, ctl_b) = (load(a), load(ctl_a), load(b), load(ctl_b));
        // SAFETY: these intrinsics need SSE2 and SSSE3, which this module is compiled for
        // (its `cfg(target_feature = "ssse3")`): the whole build assumes them, so every CPU
        // that runs this code has them. They only compute on registers.
        let (digits, v) = unsafe {
            // Byte - '0' (wrapping), then the digits into lanes 0..8 (first value) and 8..16
            // (second), most significant first; zero lanes are 0. Every lane a digit value
            // (<= 9) exactly when every named byte was a digit.
            let zero = _mm_set1_epi8(b'0' as i8);
            let d = _mm_or_si128(
                _mm_shuffle_epi8(_mm_sub_epi8(a, zero), ctl_a),
                _mm_shuffle_epi8(_mm_sub_epi8(b, zero), ctl_b),
            );
            (digit_mask(d), two_eights(d))
        };
        (digits & 0xffff == 0xffff).then_some((v as u32, (v >> 32) as u32))
    }

    /// One bit per lane of `d` (bytes minus `'0'`) that is a digit value, `0..=9`.
    #[inline(always)]
    fn digit_mask(d: __m128i) -> u32 {
        // SAFETY: SSE2 intrinsics on registers; the build assumes SSE2 (x86_64's baseline).
        unsafe { _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(9)), d)) as u32 }
    }

    /// Sixteen digit values, most significant first, as the value of lanes `0..8` (low half)
    /// and of lanes `8..16` (high half).
    #[inline(always)]
    fn two_eights(d: __m128i) -> u64 {
        // SAFETY: these intrinsics need SSE2 and SSSE3, which this module is compiled for
        // (its `cfg(target_feature = "ssse3")`), and only compute on registers.
        unsafe {
            // Pairs (10, 1), then quads (100, 1): four-digit groups in i32 lanes.
            let p = _mm_maddubs_epi16(d, _mm_set1_epi16(0x010a));
            let q = _mm_madd_epi16(p, _mm_set1_epi32(0x0001_0064));
            // Four groups (each <= 9999) to i16, then (10000, 1): the two values.
            let r = _mm_madd_epi16(_mm_packs_epi32(q, q), _mm_set1_epi32(0x0001_2710));
            _mm_cvtsi128_si64(r) as u64
        }
    }

    /// Sixteen digit values, most significant first, as one value (below 10^16).
    #[inline(always)]
    fn sixteen(d: __m128i) -> u64 {
        let x = two_eights(d);
        (x & 0xffff_ffff) * 100_000_000 + (x >> 32)
    }

    /// Shuffle controls, `[k]`: the first `k` bytes moved to the last `k` lanes, every other
    /// lane 0x80 (zero).
    static RIGHT: [[u8; 16]; 17] = {
        let mut t = [[0x80u8; 16]; 17];
        let mut k = 0;
        while k <= 16 {
            let mut j = 0;
            while j < k {
                t[k][16 - k + j] = j as u8;
                j += 1;
            }
            k += 1;
        }
        t
    };

    #[inline(always)]
    pub(super) fn leading_digits16(w: &[u8; 16]) -> (usize, u64) {
        // SAFETY: `w` is 16 readable bytes, what an unaligned 16-byte load reads;
        // `_mm_loadu_si128` has no alignment requirement.
        let v = unsafe { _mm_loadu_si128(w.as_ptr().cast::<__m128i>()) };
        // SAFETY: an SSE2 intrinsic on registers; the build assumes SSE2 (x86_64's baseline).
        let d = unsafe { _mm_sub_epi8(v, _mm_set1_epi8(b'0' as i8)) };
        // The run's length: the digit mask's trailing ones (bit 16 stops a run of all 16).
        let k = (!digit_mask(d) | 1 << 16).trailing_zeros() as usize;
        let ctl = &RIGHT[k];
        // SAFETY: `ctl` is 16 readable bytes; `pshufb` needs SSSE3, which this module is
        // compiled for (its `cfg(target_feature = "ssse3")`), and only computes on registers.
        let d = unsafe { _mm_shuffle_epi8(d, _mm_loadu_si128(ctl.as_ptr().cast::<__m128i>())) };
        (k, sixteen(d))
    }

    #[inline(always)]
    pub(super) fn gather16(w: &[u8; 16], ctl: &[u8; 16]) -> Option<u64> {
        let load = |x: &[u8; 16]| {
            // SAFETY: `x` is 16 readable bytes, what an unaligned 16-byte load reads;
            // `_mm_loadu_si128` has no alignment requirement.
            unsafe { _mm_loadu_si128(x.as_ptr().cast::<__m128i>()) }
        };
        // SAFETY: SSE2 and SSSE3 intrinsics on registers; this module is compiled for them
        // (its `cfg(target_feature = "ssse3")`).
        let d = unsafe {
            _mm_shuffle_epi8(_mm_sub_epi8(load(w), _mm_set1_epi8(b'0' as i8)), load(ctl))
        };
        (digit_mask(d) & 0xffff == 0xffff).then(|| sixteen(d))
    }

    #[inline(always)]
    pub(super) fn digits16(d: &[u8; 16]) -> u64 {
        // SAFETY: `d` is 16 readable bytes, what an unaligned 16-byte load reads;
        // `_mm_loadu_si128` has no alignment requirement.
        sixteen(unsafe { _mm_loadu_si128(d.as_ptr().cast::<__m128i>()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_depth_level_classifies_as_expected() {
        let w: &[u8; 32] = br#"["61780.70","0.088"],["1000.00","#;
        let c = classify32(w);
        assert_eq!(c, classify32_portable(w));
        assert_eq!(c.quote.count_ones(), 6);
        assert_eq!(c.quote & 0b11, 0b10);
        assert_eq!(c.dot.count_ones(), 3);
        assert_eq!(c.digit & 0b1111_1100, 0b0111_1100);
        // Every byte of every class, the bytes around '0' and '9' included.
        let all: Vec<u8> = (0..=255).collect();
        for chunk in all.chunks(32) {
            let w: [u8; 32] = chunk.try_into().expect("256 splits into 32s");
            assert_eq!(classify32(&w), classify32_portable(&w));
        }
    }

    /// Control lanes for `digits8x2`: the string's bytes `0..len` right-aligned in lanes
    /// `base..base + 8` (skipping `skip`, a dot), high bit elsewhere.
    fn ctl(len: usize, skip: Option<usize>, base: usize) -> [u8; 16] {
        let mut c = [0x80u8; 16];
        let kept: Vec<u8> = (0..len as u8)
            .filter(|&k| Some(usize::from(k)) != skip)
            .collect();
        for (m, &k) in kept.iter().enumerate() {
            c[base + 8 - kept.len() + m] = k;
        }
        c
    }

    #[test]
    fn two_decimals_gather_into_their_values() {
        let a = *b"61780.70\",\"0.088";
        let b = *b"0.0881234\"]]\0\0\0\0";
        let got = digits8x2(&a, &ctl(8, Some(5), 0), &b, &ctl(9, Some(1), 8));
        // "61780.70" -> 6178070; "0.0881234" -> 881234.
        assert_eq!(got, Some((6_178_070, 881_234)));
        assert_eq!(
            digits8x2_portable(&a, &ctl(8, Some(5), 0), &b, &ctl(9, Some(1), 8)),
            got
        );
        let nines = *b"99999999........";
        assert_eq!(
            digits8x2(&nines, &ctl(8, None, 0), &nines, &ctl(8, None, 8)),
            Some((99_999_999, 99_999_999))
        );
        // A dot, a sign, a quote where a digit is named: no value.
        for bad in [b'.', b'-', b'"', b'/', b':', 0, 0xff] {
            let mut x = nines;
            x[3] = bad;
            assert_eq!(
                digits8x2(&x, &ctl(8, None, 0), &nines, &ctl(8, None, 8)),
                None
            );
            assert_eq!(
                digits8x2(&nines, &ctl(8, None, 0), &x, &ctl(8, None, 8)),
                None
            );
            assert_eq!(
                digits8x2_portable(&x, &ctl(8, None, 0), &nines, &ctl(8, None, 8)),
                None
            );
        }
    }

    proptest! {
        #[test]
        fn shuffled_digits_agree_with_the_byte_loop(
            a in proptest::array::uniform16(prop_oneof![8 => b'0'..=b'9', 1 => any::<u8>()]),
            b in proptest::array::uniform16(prop_oneof![8 => b'0'..=b'9', 1 => any::<u8>()]),
            ca in proptest::array::uniform8(prop_oneof![0u8..16, Just(0x80u8), 0x80u8..=0xff]),
            cb in proptest::array::uniform8(prop_oneof![0u8..16, Just(0x80u8), 0x80u8..=0xff]),
        ) {
            let mut ctl_a = [0x80u8; 16];
            ctl_a[..8].copy_from_slice(&ca);
            let mut ctl_b = [0x80u8; 16];
            ctl_b[8..].copy_from_slice(&cb);
            prop_assert_eq!(
                digits8x2(&a, &ctl_a, &b, &ctl_b),
                digits8x2_portable(&a, &ctl_a, &b, &ctl_b)
            );
        }

        #[test]
        fn leading_digits_agree_with_the_byte_loop(
            w in proptest::array::uniform16(prop_oneof![8 => b'0'..=b'9', 1 => any::<u8>()]),
            run in 0usize..=16,
        ) {
            // A run of `run` digits (any digits), then whatever the bytes were.
            let mut w = w;
            for c in w.iter_mut().take(run) {
                if !c.is_ascii_digit() {
                    *c = b'0' + *c % 10;
                }
            }
            prop_assert_eq!(leading_digits16(&w), leading_digits16_portable(&w));
        }

        #[test]
        fn gathered_sixteen_agree_with_the_lane_loop(
            w in proptest::array::uniform16(prop_oneof![8 => b'0'..=b'9', 1 => any::<u8>()]),
            ctl in proptest::array::uniform16(prop_oneof![4 => 0u8..16, 1 => Just(0x80u8), 1 => any::<u8>()]),
        ) {
            prop_assert_eq!(gather16(&w, &ctl), gather16_portable(&w, &ctl));
        }

        #[test]
        fn sixteen_digit_values_agree_with_the_loop(
            d in proptest::array::uniform16(0u8..=9),
        ) {
            prop_assert_eq!(digits16(&d), digits16_portable(&d));
        }

        #[test]
        fn string_stops_agree_with_the_byte_loop(
            w in proptest::array::uniform16(prop_oneof![
                4 => b'a'..=b'z',
                1 => Just(b'"'),
                1 => Just(b'\\'),
                1 => any::<u8>(),
            ]),
        ) {
            prop_assert_eq!(string_stops16(&w), string_stops16_portable(&w));
        }

        #[test]
        fn sse2_and_portable_agree(w in proptest::array::uniform32(any::<u8>())) {
            prop_assert_eq!(classify32(&w), classify32_portable(&w));
        }

        #[test]
        fn they_agree_on_json_like_bytes(
            w in proptest::array::uniform32(prop::sample::select(b"0123456789.\"[],/:-+eE \x00\xff".to_vec()))
        ) {
            prop_assert_eq!(classify32(&w), classify32_portable(&w));
        }
    }
}
