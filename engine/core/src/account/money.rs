//! Money: balances, PnL, fees and notionals as an `i64` mantissa at [`MONEY_SCALE`].
//!
//! A price × quantity product is exact in `i128` at the "raw" scale `price_scale + qty_scale`
//! (at most 36 decimal places, and 10^36 < 2^127). It becomes [`Money`] only when it leaves the
//! account core, rounded half away from zero ([`div_round`]); running totals that must add up
//! exactly (a position's cost basis and realized PnL) stay raw.

use std::fmt;

use crate::fixed::{pow10, write_fixed, FixedError, Price, Qty};

/// Decimal places of a [`Money`] mantissa (Binance asset amounts have at most 8).
pub const MONEY_SCALE: u8 = 8;

/// Basis points in one whole (fees and trailing offsets are given in bps).
pub const BPS_PER_UNIT: i128 = 10_000;

/// An amount of some asset at [`MONEY_SCALE`]: `Money(150_000_000)` is 1.5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(pub i64);

/// Arithmetic that would leave the representable range; carries what was being computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MathError {
    /// The result does not fit its type.
    #[error("arithmetic overflow computing {context}")]
    Overflow {
        /// What was being computed (`"realized pnl"`, `"notional"`, ...).
        context: &'static str,
    },
}

/// Shorthand for the overflow error.
#[inline]
pub(crate) fn overflow(context: &'static str) -> MathError {
    MathError::Overflow { context }
}

impl Money {
    /// Zero.
    pub const ZERO: Money = Money(0);

    /// `self + o`, or an overflow error naming `context`.
    #[inline]
    pub fn add(self, o: Money, context: &'static str) -> Result<Money, MathError> {
        self.0.checked_add(o.0).map(Money).ok_or(overflow(context))
    }

    /// `self - o`, or an overflow error naming `context`.
    #[inline]
    pub fn sub(self, o: Money, context: &'static str) -> Result<Money, MathError> {
        self.0.checked_sub(o.0).map(Money).ok_or(overflow(context))
    }

    /// `-self`, or an overflow error for `i64::MIN`.
    #[inline]
    pub fn neg(self, context: &'static str) -> Result<Money, MathError> {
        self.0.checked_neg().map(Money).ok_or(overflow(context))
    }

    /// Parses a decimal string that has at most [`MONEY_SCALE`] places.
    ///
    /// # Errors
    /// As [`crate::fixed::parse_fixed`].
    pub fn parse(s: &[u8]) -> Result<Money, FixedError> {
        crate::fixed::parse_fixed(s, MONEY_SCALE).map(Money)
    }

    /// Parses a decimal string, rounding digits beyond [`MONEY_SCALE`] half away from zero.
    ///
    /// # Errors
    /// [`FixedError::Syntax`] or [`FixedError::Overflow`].
    pub fn parse_rounded(s: &[u8]) -> Result<Money, FixedError> {
        parse_rounded(s, MONEY_SCALE).map(Money)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_fixed(f, self.0, MONEY_SCALE)
    }
}

const POW10_I128: [i128; 39] = {
    let mut t = [1i128; 39];
    let mut i = 1;
    while i < 39 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// 10^`n` as an `i128`; saturates at `i128::MAX` beyond 10^38 (never reached: scales are
/// at most 18, sums of two at most 36), so it cannot panic.
#[inline]
pub fn pow10_i128(n: u8) -> i128 {
    POW10_I128.get(usize::from(n)).copied().unwrap_or(i128::MAX)
}

/// `n / d` rounded half away from zero; `None` for `d == 0` or when the quotient does not
/// fit (`i128::MIN / -1`), never a made-up value.
#[inline]
pub fn div_round(n: i128, d: i128) -> Option<i128> {
    let q = n.checked_div(d)?;
    let r = n.checked_rem(d)?;
    // |r| < |d| <= 2^127, so 2|r| < 2^128 fits u128.
    if r.unsigned_abs() * 2 >= d.unsigned_abs() {
        // r != 0 here, so |d| >= 2 and |q| <= 2^126: one step cannot overflow.
        if (n < 0) != (d < 0) {
            q.checked_sub(1)
        } else {
            q.checked_add(1)
        }
    } else {
        Some(q)
    }
}

/// price × qty, exact, at the raw scale `price_scale + qty_scale`.
#[inline]
pub fn notional_raw(price: Price, qty: Qty) -> i128 {
    i128::from(price.0) * i128::from(qty.0)
}

/// A raw-scale amount as [`Money`], rounded half away from zero.
///
/// # Errors
/// [`MathError::Overflow`] when the result does not fit.
#[inline]
pub fn raw_to_money(raw: i128, raw_scale: u8, context: &'static str) -> Result<Money, MathError> {
    let v = if raw_scale >= MONEY_SCALE {
        div_round(raw, pow10_i128(raw_scale - MONEY_SCALE)).ok_or(overflow(context))?
    } else {
        raw.checked_mul(pow10_i128(MONEY_SCALE - raw_scale))
            .ok_or(overflow(context))?
    };
    i64::try_from(v).map(Money).map_err(|_| overflow(context))
}

/// A [`Money`] amount at a raw scale (exact when `raw_scale >= MONEY_SCALE`, else rounded).
///
/// # Errors
/// [`MathError::Overflow`] when the result does not fit.
pub fn money_to_raw(m: Money, raw_scale: u8, context: &'static str) -> Result<i128, MathError> {
    if raw_scale >= MONEY_SCALE {
        i128::from(m.0)
            .checked_mul(pow10_i128(raw_scale - MONEY_SCALE))
            .ok_or(overflow(context))
    } else {
        div_round(i128::from(m.0), pow10_i128(MONEY_SCALE - raw_scale)).ok_or(overflow(context))
    }
}

/// price × qty as [`Money`] (rounded half away from zero).
///
/// # Errors
/// [`MathError::Overflow`] when the notional does not fit.
#[inline]
pub fn notional(
    price: Price,
    qty: Qty,
    price_scale: u8,
    qty_scale: u8,
) -> Result<Money, MathError> {
    // Scales are at most 18 each (the registry and `Account::add_instrument` refuse more),
    // so the sum is at most 36 and cannot wrap a u8.
    raw_to_money(
        notional_raw(price, qty),
        price_scale.saturating_add(qty_scale),
        "notional",
    )
}

/// `amount × bps / 10 000`, rounded half away from zero (fees).
///
/// # Errors
/// [`MathError::Overflow`] when the result does not fit.
pub fn apply_bps(amount: Money, bps: i64) -> Result<Money, MathError> {
    // |i64 × i64| <= 2^126: the product is exact in i128.
    let v =
        div_round(i128::from(amount.0) * i128::from(bps), BPS_PER_UNIT).ok_or(overflow("fee"))?;
    i64::try_from(v).map(Money).map_err(|_| overflow("fee"))
}

/// Parses `-?digits(.digits)?` at `scale` places, rounding extra digits half away from zero.
///
/// Used for values the venue computes itself (average and entry prices, unrealized PnL),
/// which may carry more places than the instrument's scale; prices and quantities an order
/// was placed with are parsed strictly instead.
///
/// # Errors
/// [`FixedError::Syntax`] or [`FixedError::Overflow`].
pub fn parse_rounded(s: &[u8], scale: u8) -> Result<i64, FixedError> {
    if scale > crate::fixed::MAX_SCALE {
        return Err(FixedError::Overflow);
    }
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    // Unsigned magnitude, so `i64::MIN` parses (as in `parse_fixed`).
    let mut acc: u64 = 0;
    let (mut frac, mut seen_dot, mut seen_digit, mut round_up, mut first_dropped) =
        (0u8, false, false, false, true);
    for &c in digits {
        match c {
            b'0'..=b'9' => {
                seen_digit = true;
                if seen_dot && frac >= scale {
                    if first_dropped {
                        round_up = c >= b'5';
                        first_dropped = false;
                    }
                    continue;
                }
                if seen_dot {
                    frac += 1;
                }
                acc = acc
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(u64::from(c - b'0')))
                    .ok_or(FixedError::Overflow)?;
            }
            b'.' if !seen_dot => seen_dot = true,
            _ => return Err(FixedError::Syntax),
        }
    }
    if !seen_digit {
        return Err(FixedError::Syntax);
    }
    let mut acc = acc
        .checked_mul(pow10(scale - frac).unsigned_abs())
        .ok_or(FixedError::Overflow)?;
    if round_up {
        acc = acc.checked_add(1).ok_or(FixedError::Overflow)?;
    }
    crate::fixed::signed(neg, acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(div_round(15, 10), Some(2));
        assert_eq!(div_round(14, 10), Some(1));
        assert_eq!(div_round(-15, 10), Some(-2));
        assert_eq!(div_round(-14, 10), Some(-1));
        assert_eq!(div_round(0, 7), Some(0));
        assert_eq!(div_round(7, 7), Some(1));
        assert_eq!(div_round(15, -10), Some(-2));
        assert_eq!(div_round(-15, -10), Some(2));
        assert_eq!(div_round(-14, -10), Some(1));
        assert_eq!(div_round(5, 0), None, "no quotient, not a made-up zero");
        assert_eq!(div_round(i128::MIN, -1), None, "2^127 does not fit");
        assert_eq!(div_round(i128::MIN, 1), Some(i128::MIN));
    }

    #[test]
    fn notional_and_fees() {
        // 61800.20 (scale 2) x 0.015 (scale 3) = 927.003 -> 927.00300000
        let n = notional(Price(6_180_020), Qty(15), 2, 3).unwrap();
        assert_eq!(n, Money(92_700_300_000));
        assert_eq!(n.to_string(), "927.00300000");
        // 4 bps of 927.003 = 0.3708012
        assert_eq!(apply_bps(n, 4).unwrap(), Money(37_080_120));
        // raw scale 16 -> 8 rounds: 1e-8 * 0.5 rounds away from zero
        assert_eq!(raw_to_money(50_000_000, 16, "t").unwrap(), Money(1));
        assert_eq!(raw_to_money(-50_000_000, 16, "t").unwrap(), Money(-1));
        assert_eq!(raw_to_money(49_999_999, 16, "t").unwrap(), Money(0));
        assert!(raw_to_money(i128::MAX / 2, 8, "t").is_err());
        assert_eq!(
            money_to_raw(Money(123), 10, "t").unwrap(),
            12_300,
            "exact upscale"
        );
    }

    #[test]
    fn parse_rounded_rounds_extra_digits() {
        assert_eq!(parse_rounded(b"6563.559", 2), Ok(656_356));
        assert_eq!(parse_rounded(b"6563.554", 2), Ok(656_355));
        assert_eq!(parse_rounded(b"-1.005", 2), Ok(-101));
        assert_eq!(parse_rounded(b"0", 2), Ok(0));
        assert_eq!(parse_rounded(b"12", 0), Ok(12));
        assert_eq!(parse_rounded(b"", 2), Err(FixedError::Syntax));
        assert_eq!(parse_rounded(b"1.2.3", 2), Err(FixedError::Syntax));
        assert_eq!(parse_rounded(b"-", 2), Err(FixedError::Syntax));
        assert_eq!(Money::parse_rounded(b"0.123456789"), Ok(Money(12_345_679)));
        assert_eq!(
            Money::parse(b"0.123456789"),
            Err(FixedError::Precision { scale: 8 })
        );
    }

    proptest! {
        #[test]
        fn parse_rounded_never_panics(b in proptest::collection::vec(any::<u8>(), 0..40), s in 0u8..24) {
            let _ = parse_rounded(&b, s);
        }

        #[test]
        fn div_round_never_panics_and_is_nearest(
            n in prop_oneof![Just(i128::MIN), Just(i128::MAX), Just(0i128), any::<i128>()],
            d in prop_oneof![Just(-1i128), Just(1i128), Just(0i128), Just(i128::MIN), Just(i128::MAX), any::<i128>()],
        ) {
            match div_round(n, d) {
                None => prop_assert!(d == 0 || (n == i128::MIN && d == -1)),
                Some(q) => {
                    // |n − q·d| <= |d| / 2, checked without overflow in the widest terms.
                    let t = n / d;
                    prop_assert!(q == t || q == t + 1 || q == t - 1);
                    let r = n - t * d; // exact: |r| < |d|
                    let twice = r.unsigned_abs() * 2;
                    let away = twice >= d.unsigned_abs();
                    prop_assert_eq!(q != t, away && r != 0);
                }
            }
        }

        #[test]
        fn extreme_products_are_exact_or_refused(
            p in prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(-1i64), Just(1i64), any::<i64>()],
            q in prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(-1i64), Just(1i64), any::<i64>()],
            ps in 0u8..=18, qs in 0u8..=18,
            bps in prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(10_000i64), -10_000i64..=10_000],
        ) {
            let raw = notional_raw(Price(p), Qty(q));
            prop_assert_eq!(raw, i128::from(p) * i128::from(q));
            let scale = ps + qs;
            match notional(Price(p), Qty(q), ps, qs) {
                Ok(m) => {
                    // Money back at the raw scale is within half a unit of Money of `raw`.
                    if scale >= MONEY_SCALE {
                        let back = money_to_raw(m, scale, "t").unwrap();
                        let unit = pow10_i128(scale - MONEY_SCALE);
                        prop_assert!((raw - back).unsigned_abs() * 2 <= unit.unsigned_abs());
                    } else {
                        prop_assert_eq!(i128::from(m.0), raw * pow10_i128(MONEY_SCALE - scale));
                    }
                    if let Ok(f) = apply_bps(m, bps) {
                        let exact = i128::from(m.0) * i128::from(bps);
                        prop_assert!((exact - i128::from(f.0) * 10_000).unsigned_abs() <= 5_000);
                    } else {
                        prop_assert!((i128::from(m.0) * i128::from(bps) / 10_000).unsigned_abs() >= 1u128 << 63);
                    }
                }
                Err(MathError::Overflow { context }) => {
                    prop_assert_eq!(context, "notional");
                    let unit = pow10_i128(scale.saturating_sub(MONEY_SCALE));
                    prop_assert!(scale < MONEY_SCALE || (raw / unit).unsigned_abs() >= (1u128 << 63) - 1);
                }
            }
        }

        #[test]
        fn money_ops_at_the_edges_are_checked(
            a in prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(0i64), any::<i64>()],
            b in prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(-1i64), Just(1i64), any::<i64>()],
        ) {
            let (x, y) = (Money(a), Money(b));
            prop_assert_eq!(x.add(y, "t").ok(), a.checked_add(b).map(Money));
            prop_assert_eq!(x.sub(y, "t").ok(), a.checked_sub(b).map(Money));
            prop_assert_eq!(x.neg("t").ok(), a.checked_neg().map(Money));
            for s in 0u8..=36 {
                if let Ok(r) = money_to_raw(x, s, "t") {
                    if s >= MONEY_SCALE {
                        prop_assert_eq!(raw_to_money(r, s, "t"), Ok(x), "exact round trip at {}", s);
                    }
                }
            }
        }

        #[test]
        fn parse_rounded_agrees_with_strict(m in -i64::MAX / 10..=i64::MAX / 10, s in 0u8..=8) {
            let text = crate::fixed::Scaled(m, s).to_string();
            prop_assert_eq!(parse_rounded(text.as_bytes(), s), Ok(m));
        }
    }
}
