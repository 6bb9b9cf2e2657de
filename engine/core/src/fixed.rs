//! Fixed-point numbers parsed straight from Binance's decimal strings, never through `f64`.
//!
//! A [`Price`] or [`Qty`] is an integer mantissa; its scale (number of decimal places) belongs
//! to the instrument (see [`crate::instrument::Instrument`]). A [`Decimal`] carries its own
//! scale and is used for statistics whose magnitude does not fit an instrument's scale
//! (24h volumes, percentages).

use std::fmt;

/// The largest scale any fixed-point value may have (10^18 still fits an `i64`).
pub const MAX_SCALE: u8 = 18;

/// A price mantissa at its instrument's price scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Price(pub i64);

/// A quantity mantissa at its instrument's quantity scale. Zero in a depth update deletes a level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Qty(pub i64);

impl Qty {
    /// The zero quantity.
    pub const ZERO: Qty = Qty(0);

    /// True when this quantity deletes a level.
    #[inline]
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

/// A decimal with its own scale, exactly as written (`"-0.123"` is mantissa -123, scale 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Decimal {
    /// The digits as an integer.
    pub mantissa: i64,
    /// How many of those digits are after the decimal point.
    pub scale: u8,
}

/// Why a decimal string could not be turned into a fixed-point value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FixedError {
    /// Empty, or not of the form `-?digits(.digits)?`.
    #[error("not a decimal number")]
    Syntax,
    /// The value does not fit an `i64` mantissa at the requested scale.
    #[error("decimal out of range")]
    Overflow,
    /// Non-zero digits beyond the instrument's scale would be lost.
    #[error("decimal has more precision than scale {scale}")]
    Precision {
        /// The scale that was asked for.
        scale: u8,
    },
}

pub(crate) const POW10: [i64; 19] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
    10_000_000_000,
    100_000_000_000,
    1_000_000_000_000,
    10_000_000_000_000,
    100_000_000_000_000,
    1_000_000_000_000_000,
    10_000_000_000_000_000,
    100_000_000_000_000_000,
    1_000_000_000_000_000_000,
];

/// 10^`scale` as an `i64`.
///
/// # Panics
/// When `scale > MAX_SCALE`; scales come from the instrument registry, which enforces that.
#[inline]
pub fn pow10(scale: u8) -> i64 {
    POW10[scale as usize]
}

/// Parses `-?digits(.digits)?` into a mantissa at `scale` decimal places.
///
/// Trailing zeros past `scale` are accepted (`"1.50000000"` at scale 2 is 150); any other
/// digit past `scale` is an error, never silently rounded.
///
/// # Errors
/// [`FixedError::Syntax`] for anything that is not a plain decimal, [`FixedError::Overflow`]
/// when the result does not fit, [`FixedError::Precision`] when digits would be lost.
#[inline]
pub fn parse_fixed(s: &[u8], scale: u8) -> Result<i64, FixedError> {
    if scale > MAX_SCALE {
        return Err(FixedError::Overflow);
    }
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() {
        return Err(FixedError::Syntax);
    }
    // The magnitude is accumulated unsigned so `i64::MIN` (magnitude 2^63) parses too.
    let mut acc: u64 = 0;
    let mut frac_digits: u8 = 0;
    let mut seen_dot = false;
    let mut seen_digit = false;
    for &c in digits {
        match c {
            b'0'..=b'9' => {
                seen_digit = true;
                let d = u64::from(c - b'0');
                if seen_dot {
                    if frac_digits >= scale {
                        if d != 0 {
                            return Err(FixedError::Precision { scale });
                        }
                        continue;
                    }
                    frac_digits += 1;
                }
                acc = acc
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(d))
                    .ok_or(FixedError::Overflow)?;
            }
            b'.' if !seen_dot => seen_dot = true,
            _ => return Err(FixedError::Syntax),
        }
    }
    if !seen_digit {
        return Err(FixedError::Syntax);
    }
    let acc = acc
        .checked_mul(pow10(scale - frac_digits).unsigned_abs())
        .ok_or(FixedError::Overflow)?;
    signed(neg, acc)
}

/// A sign and a magnitude as an `i64` (`-2^63` included), or [`FixedError::Overflow`].
#[inline]
pub(crate) fn signed(neg: bool, magnitude: u64) -> Result<i64, FixedError> {
    if neg {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
    .ok_or(FixedError::Overflow)
}

/// Parses a decimal keeping exactly the scale it was written with.
///
/// # Errors
/// [`FixedError::Syntax`] or [`FixedError::Overflow`] (more than 18 significant digits, or
/// more than [`MAX_SCALE`] decimal places).
pub fn parse_decimal(s: &[u8]) -> Result<Decimal, FixedError> {
    let scale = match s.iter().position(|&c| c == b'.') {
        Some(dot) => s.len() - dot - 1,
        None => 0,
    };
    if scale > MAX_SCALE as usize {
        return Err(FixedError::Overflow);
    }
    let scale = scale as u8;
    Ok(Decimal {
        mantissa: parse_fixed(s, scale)?,
        scale,
    })
}

/// Writes `mantissa` at `scale` as a decimal string with exactly `scale` fraction digits
/// (`i64::MIN` included: the magnitude is taken unsigned).
pub fn write_fixed(f: &mut impl fmt::Write, mantissa: i64, scale: u8) -> fmt::Result {
    let neg = mantissa < 0;
    let abs = mantissa.unsigned_abs();
    if scale > MAX_SCALE {
        // Never produced by tape (scales are checked where instruments are added), but
        // rendering must not panic: every digit is a fraction digit, zero-padded.
        if neg {
            f.write_char('-')?;
        }
        return write!(f, "0.{abs:0width$}", width = usize::from(scale));
    }
    let p = pow10(scale).unsigned_abs();
    if neg {
        f.write_char('-')?;
    }
    if scale == 0 {
        write!(f, "{abs}")
    } else {
        write!(f, "{}.{:0width$}", abs / p, abs % p, width = scale as usize)
    }
}

/// A value shown at a scale, for `Display` (`Scaled(price.0, inst.price_scale)`).
#[derive(Debug, Clone, Copy)]
pub struct Scaled(pub i64, pub u8);

impl fmt::Display for Scaled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_fixed(f, self.0, self.1)
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_fixed(f, self.mantissa, self.scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_binance_strings() {
        assert_eq!(parse_fixed(b"61837.63000000", 8), Ok(6_183_763_000_000));
        assert_eq!(parse_fixed(b"61800.20", 2), Ok(6_180_020));
        assert_eq!(parse_fixed(b"0.014", 3), Ok(14));
        assert_eq!(parse_fixed(b"1001", 0), Ok(1001));
        assert_eq!(parse_fixed(b"0.00000000", 8), Ok(0));
        assert_eq!(parse_fixed(b"-0.123", 3), Ok(-123));
        assert_eq!(parse_fixed(b"1.5", 8), Ok(150_000_000));
        assert_eq!(parse_fixed(b"12", 2), Ok(1200));
        assert_eq!(parse_fixed(b"1.50000000", 2), Ok(150));
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(parse_fixed(b"", 2), Err(FixedError::Syntax));
        assert_eq!(parse_fixed(b"-", 2), Err(FixedError::Syntax));
        assert_eq!(parse_fixed(b".", 2), Err(FixedError::Syntax));
        assert_eq!(parse_fixed(b"1.2.3", 2), Err(FixedError::Syntax));
        assert_eq!(parse_fixed(b"1e5", 2), Err(FixedError::Syntax));
        assert_eq!(parse_fixed(b" 1", 2), Err(FixedError::Syntax));
        assert_eq!(parse_fixed(b"--1", 2), Err(FixedError::Syntax));
        assert_eq!(
            parse_fixed(b"1.234", 2),
            Err(FixedError::Precision { scale: 2 })
        );
        assert_eq!(
            parse_fixed(b"99999999999999999999", 0),
            Err(FixedError::Overflow)
        );
        assert_eq!(parse_fixed(b"100000000000", 8), Err(FixedError::Overflow));
        assert_eq!(parse_fixed(b"1", 19), Err(FixedError::Overflow));
        assert_eq!(parse_fixed(b"-9223372036854775808", 0), Ok(i64::MIN));
        assert_eq!(
            parse_fixed(b"-9223372036854775809", 0),
            Err(FixedError::Overflow)
        );
        assert_eq!(
            parse_fixed(b"9223372036854775808", 0),
            Err(FixedError::Overflow)
        );
        assert_eq!(
            parse_fixed(b"-0.000000000000000001", 18),
            Ok(-1),
            "smallest magnitude at the largest scale"
        );
    }

    #[test]
    fn decimal_keeps_written_scale() {
        assert_eq!(
            parse_decimal(b"-2.510"),
            Ok(Decimal {
                mantissa: -2510,
                scale: 3
            })
        );
        assert_eq!(parse_decimal(b"-2.510").unwrap().to_string(), "-2.510");
        assert_eq!(Scaled(6_180_020, 2).to_string(), "61800.20");
        assert_eq!(Scaled(-5, 3).to_string(), "-0.005");
        assert_eq!(Scaled(1001, 0).to_string(), "1001");
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..32), scale in 0u8..24) {
            let _ = parse_fixed(&bytes, scale);
            let _ = parse_decimal(&bytes);
        }

        #[test]
        fn extremes_round_trip_at_every_scale(
            m in prop_oneof![
                Just(i64::MIN), Just(i64::MIN + 1), Just(i64::MAX), Just(i64::MAX - 1),
                Just(0i64), Just(1i64), Just(-1i64),
            ],
            scale in 0u8..=18,
        ) {
            let s = Scaled(m, scale).to_string();
            prop_assert_eq!(parse_fixed(s.as_bytes(), scale), Ok(m), "{}", s);
            prop_assert_eq!(crate::account::money::parse_rounded(s.as_bytes(), scale), Ok(m));
            // One more unit in the last place is out of range, never a wrap.
            if m == i64::MAX || m == i64::MIN {
                let mag = i128::from(m).unsigned_abs() + 1;
                let sign = if m < 0 { "-" } else { "" };
                let p = 10u128.pow(u32::from(scale));
                let text = if scale == 0 {
                    format!("{sign}{mag}")
                } else {
                    format!("{sign}{}.{:0w$}", mag / p, mag % p, w = usize::from(scale))
                };
                prop_assert_eq!(parse_fixed(text.as_bytes(), scale), Err(FixedError::Overflow));
            }
        }

        #[test]
        fn written_above_max_scale_never_panics(m in any::<i64>(), scale in 19u8..=u8::MAX) {
            let s = Scaled(m, scale).to_string();
            prop_assert_eq!(s.split('.').nth(1).map(str::len), Some(usize::from(scale)));
        }

        #[test]
        fn round_trips(m in any::<i64>(), scale in 0u8..=18) {
            let s = Scaled(m, scale).to_string();
            prop_assert_eq!(parse_fixed(s.as_bytes(), scale), Ok(m));
        }
    }
}
