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

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[allow(unsafe_code)]
mod sse2 {
    use super::Classes;
    use core::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_set1_epi8,
        _mm_sub_epi8,
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

    proptest! {
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
