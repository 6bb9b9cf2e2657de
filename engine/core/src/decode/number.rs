//! A fast path for [`parse_fixed`] on the decimal strings Binance actually sends.
//!
//! `parse_fixed` checks for overflow on every digit; measured at ~13 ns per string it was
//! the largest cost of a depth frame after simd-json itself (two strings per level). The
//! fast path handles unsigned decimals of at most 19 bytes with at most 18 significant digits
//! (every price and quantity in the captures), which cannot overflow until the final
//! rescale, and defers everything else (signs, errors, long strings) to `parse_fixed`. A
//! proptest checks the two agree on every input.

use crate::fixed::{parse_fixed, pow10, FixedError, MAX_SCALE};

/// [`parse_fixed`], faster on the common case and identical in every result.
#[inline]
pub(super) fn fixed(s: &[u8], scale: u8) -> Result<i64, FixedError> {
    match fast(s, scale) {
        Some(v) => Ok(v),
        None => parse_fixed(s, scale),
    }
}

/// `Some` only when the result is certainly what `parse_fixed` returns as `Ok`.
#[inline]
fn fast(s: &[u8], scale: u8) -> Option<i64> {
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
            assert_eq!(fast(s.as_bytes(), scale), Some(want), "{s}");
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
            assert_eq!(fast(s.as_bytes(), scale), None, "{s}");
            assert_eq!(fixed(s.as_bytes(), scale), parse_fixed(s.as_bytes(), scale));
        }
    }

    fn decimalish() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop::sample::select(vec![
                b'0', b'0', b'0', b'1', b'5', b'9', b'.', b'.', b'-', b'e', b' ',
            ]),
            0..24,
        )
    }

    proptest! {
        #[test]
        fn agrees_with_parse_fixed(s in decimalish(), scale in 0u8..21) {
            prop_assert_eq!(fixed(&s, scale), parse_fixed(&s, scale));
        }

        #[test]
        fn agrees_on_formatted_values(m in any::<i64>(), written in 0u8..=18, scale in 0u8..=18) {
            let s = crate::fixed::Scaled(m, written).to_string();
            prop_assert_eq!(fixed(s.as_bytes(), scale), parse_fixed(s.as_bytes(), scale));
        }
    }
}
