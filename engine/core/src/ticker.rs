//! Rolling 24-hour statistics computed from trades, for instruments whose feed has no
//! exchange ticker stream (the bundled captures record `trade`, not `24hrTicker`).
//!
//! Time is the exchange's trade time, never a clock, so replay reproduces every value. The
//! window is 1440 one-minute buckets (memory is constant whatever the trade rate); a value is
//! published at most once per exchange second per instrument, like Binance's own ticker.

use crate::fixed::{Decimal, Price, MAX_SCALE};
use crate::instrument::Instrument;
use crate::msg::{Ticker, Trade};

const MINUTE_MS: u64 = 60_000;
const BUCKETS: usize = 1440;

/// Buckets per hour: the ring is allocated an hour at a time, when a trade first falls in it.
const HOUR: usize = 60;

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Minute index (`trade_time_ms / 60000`) + 1; 0 marks an empty bucket.
    minute_plus_one: u64,
    open: i64,
    high: i64,
    low: i64,
    close: i64,
    volume: i128,
    quote_volume: i128,
}

/// One hour of a ring: [`HOUR`] buckets.
type Hour = Box<[Bucket; HOUR]>;

/// One instrument's rolling window.
#[derive(Debug, Clone)]
pub struct TradeStats {
    /// The ring of [`BUCKETS`] buckets, an hour at a time: the hours no trade fell in are
    /// `None` (empty buckets). A new instrument's first trade builds one hour, 4.8 KB, not
    /// the whole ring's 115 KB (28 page faults), and a session of a few minutes no more.
    hours: [Option<Hour>; BUCKETS / HOUR],
    last_second: Option<u64>,
    newest_minute: u64,
    /// The oldest minute a bucket was ever opened for: no bucket before it holds anything.
    first_minute: u64,
}

impl Default for TradeStats {
    fn default() -> Self {
        TradeStats {
            hours: std::array::from_fn(|_| None),
            last_second: None,
            newest_minute: 0,
            first_minute: u64::MAX,
        }
    }
}

/// Fits an `i128` mantissa at `scale` into a [`Decimal`], dropping fraction digits (toward
/// zero) only when the value would not fit an `i64` otherwise.
fn fit(mut v: i128, mut scale: u8) -> Decimal {
    while (v > i128::from(i64::MAX) || v < i128::from(i64::MIN)) && scale > 0 {
        v /= 10;
        scale -= 1;
    }
    let mantissa = i64::try_from(v).unwrap_or(if v > 0 { i64::MAX } else { i64::MIN });
    Decimal { mantissa, scale }
}

impl TradeStats {
    /// Folds in a trade; returns a ticker when this trade opens a new exchange second.
    /// Trades older than the window's newest minute by a day or more are ignored.
    pub fn on_trade(&mut self, t: &Trade, inst: &Instrument) -> Option<Ticker> {
        let minute = t.trade_time_ms / MINUTE_MS;
        if minute.saturating_add(BUCKETS as u64) <= self.newest_minute {
            return None;
        }
        self.newest_minute = self.newest_minute.max(minute);
        self.first_minute = self.first_minute.min(minute);
        let i = (minute % BUCKETS as u64) as usize;
        let hour = self.hours[i / HOUR].get_or_insert_with(|| Box::new([Bucket::default(); HOUR]));
        let b = &mut hour[i % HOUR];
        let p = t.price.0;
        if b.minute_plus_one != minute + 1 {
            *b = Bucket {
                minute_plus_one: minute + 1,
                open: p,
                high: p,
                low: p,
                close: p,
                volume: 0,
                quote_volume: 0,
            };
        }
        b.high = b.high.max(p);
        b.low = b.low.min(p);
        b.close = p;
        b.volume = b.volume.saturating_add(i128::from(t.qty.0));
        b.quote_volume = b
            .quote_volume
            .saturating_add(i128::from(p) * i128::from(t.qty.0));

        let second = t.trade_time_ms / 1000;
        if self.last_second.is_some_and(|s| s >= second) {
            return None;
        }
        self.last_second = Some(second);
        Some(self.ticker(t, inst))
    }

    /// The buckets that can be in the window, in the ring's order: the arc from the oldest
    /// minute the window and the first trade allow to the newest (each bucket sits at its
    /// minute's index), not all 1440 (115 KB) for every ticker.
    fn window(&self) -> impl Iterator<Item = Bucket> + '_ {
        let n = BUCKETS as u64;
        let oldest = (self.newest_minute + 1).saturating_sub(n);
        let lo = oldest.max(self.first_minute.min(self.newest_minute));
        let (a, b) = ((lo % n) as usize, (self.newest_minute % n) as usize);
        // In index order, as a scan of the whole ring visits them: the saturating sums
        // below come out the same.
        let (head, tail) = if a <= b {
            (a..=b, 0..0)
        } else {
            (0..=b, a..BUCKETS)
        };
        head.chain(tail).map(|i| self.bucket(i))
    }

    /// The bucket at ring index `i` (an empty one in an hour not built).
    fn bucket(&self, i: usize) -> Bucket {
        self.hours[i / HOUR]
            .as_ref()
            .map_or_else(Bucket::default, |hour| hour[i % HOUR])
    }

    fn ticker(&self, t: &Trade, inst: &Instrument) -> Ticker {
        let oldest = (self.newest_minute + 1).saturating_sub(BUCKETS as u64);
        let (open, high, low, volume, quote) = fold(self.window(), oldest, t.price.0);
        let last = t.price.0;
        let change = last.saturating_sub(open);
        // Percent with 3 decimals, truncated toward zero: change * 100 * 1000 / open.
        let pct = if open == 0 {
            None
        } else {
            Some(fit(
                i128::from(change).saturating_mul(100_000) / i128::from(open),
                3,
            ))
        };
        let quote_scale = (inst.price_scale + inst.qty_scale).min(MAX_SCALE);
        Ticker {
            instrument: t.instrument,
            mini: false,
            event_time_ms: t.trade_time_ms,
            last: Price(last),
            open: Price(open),
            high: Price(high),
            low: Price(low),
            price_change: Price(change),
            price_change_pct: pct,
            volume: fit(volume, inst.qty_scale),
            quote_volume: fit(quote, quote_scale),
        }
    }
}

/// The window's open (the oldest live bucket's, else `last`), high, low, volume and quote
/// volume, over `buckets` (those with a minute before `oldest` are not in the window).
fn fold(
    buckets: impl Iterator<Item = Bucket>,
    oldest: u64,
    last: i64,
) -> (i64, i64, i64, i128, i128) {
    let (mut open_minute, mut open) = (u64::MAX, last);
    let (mut high, mut low) = (i64::MIN, i64::MAX);
    let (mut volume, mut quote) = (0i128, 0i128);
    for b in buckets.filter(|b| b.minute_plus_one > oldest) {
        if b.minute_plus_one < open_minute {
            open_minute = b.minute_plus_one;
            open = b.open;
        }
        high = high.max(b.high);
        low = low.min(b.low);
        volume = volume.saturating_add(b.volume);
        quote = quote.saturating_add(b.quote_volume);
    }
    (open, high, low, volume, quote)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixed::Qty;
    use crate::instrument::{InstrumentId, Market};

    fn inst() -> Instrument {
        Instrument {
            id: InstrumentId(0),
            symbol: "BTCUSDT".into(),
            market: Market::UsdM,
            price_scale: 2,
            qty_scale: 3,
        }
    }

    fn trade(ms: u64, price: i64, qty: i64) -> Trade {
        Trade {
            instrument: InstrumentId(0),
            event_time_ms: ms,
            trade_time_ms: ms,
            trade_id: ms,
            price: Price(price),
            qty: Qty(qty),
            buyer_is_maker: false,
            buyer_order_id: None,
            seller_order_id: None,
            is_market: true,
        }
    }

    #[test]
    fn once_per_second_with_window_stats() {
        let mut s = TradeStats::default();
        let i = inst();
        let t0 = 1_723_161_256_000;
        let a = s
            .on_trade(&trade(t0, 10_000, 1_000), &i)
            .expect("first trade publishes");
        assert_eq!(
            (a.open.0, a.last.0, a.high.0, a.low.0),
            (10_000, 10_000, 10_000, 10_000)
        );
        assert!(
            s.on_trade(&trade(t0 + 500, 12_000, 2_000), &i).is_none(),
            "same second"
        );
        let b = s
            .on_trade(&trade(t0 + 1_000, 9_000, 1_000), &i)
            .expect("next second");
        assert_eq!(
            (b.open.0, b.high.0, b.low.0, b.last.0),
            (10_000, 12_000, 9_000, 9_000)
        );
        assert_eq!(b.price_change.0, -1_000);
        assert_eq!(
            b.price_change_pct,
            Some(Decimal {
                mantissa: -10_000,
                scale: 3
            })
        );
        assert_eq!(
            b.volume,
            Decimal {
                mantissa: 4_000,
                scale: 3
            }
        );
        // 100.00*1.000 + 120.00*2.000 + 90.00*1.000 = 430.00000 at scale 5.
        assert_eq!(
            b.quote_volume,
            Decimal {
                mantissa: 43_000_000,
                scale: 5
            }
        );
    }

    #[test]
    fn trades_older_than_a_day_leave_the_window() {
        let mut s = TradeStats::default();
        let i = inst();
        let t0 = 1_723_161_256_000;
        s.on_trade(&trade(t0, 50_000, 1_000), &i);
        let later = s
            .on_trade(&trade(t0 + 24 * 3600 * 1000 + 60_000, 10_000, 1_000), &i)
            .unwrap();
        assert_eq!(
            (later.open.0, later.high.0, later.volume.mantissa),
            (10_000, 10_000, 1_000)
        );
        assert!(
            s.on_trade(&trade(t0, 1, 1), &i).is_none(),
            "a trade from a day ago is ignored"
        );
    }

    proptest::proptest! {
        /// The ticker reads only the ring's arc that can be in the window: it must find what
        /// a scan of all 1440 buckets finds, for trades in and out of order, across days,
        /// with any prices (the sums saturate the same way in the same order).
        #[test]
        fn the_window_arc_folds_as_the_whole_ring(
            trades in proptest::collection::vec(
                (0u64..4_000, proptest::num::i64::ANY, 0i64..1_000_000_000),
                1..120,
            ),
            start in 0u64..(u64::MAX / 60_000 - 10_000),
        ) {
            let mut s = TradeStats::default();
            let i = inst();
            for (minute, price, qty) in trades {
                let ms = (start + minute) * 60_000;
                let _ = s.on_trade(&trade(ms, price, qty), &i);
                let oldest = (s.newest_minute + 1).saturating_sub(BUCKETS as u64);
                proptest::prop_assert_eq!(
                    fold(s.window(), oldest, price),
                    fold((0..BUCKETS).map(|i| s.bucket(i)), oldest, price)
                );
            }
        }
    }

    /// The ring is built an hour at a time, where trades fall: minutes of trades in one
    /// hour build that hour alone, the next hour's trade the next, and a trade a day later
    /// lands in an hour already built (the ring's index is the minute of the day).
    #[test]
    fn the_ring_is_built_only_where_trades_fall() {
        let mut s = TradeStats::default();
        let i = inst();
        let built = |s: &TradeStats| s.hours.iter().filter(|h| h.is_some()).count();
        assert_eq!(built(&s), 0);
        let t0 = 1_700_000_000_000 / 3_600_000 * 3_600_000; // on the hour
        for minute in 0..60 {
            let _ = s.on_trade(&trade(t0 + minute * 60_000, 100, 1), &i);
        }
        assert_eq!(built(&s), 1);
        let _ = s.on_trade(&trade(t0 + 60 * 60_000, 100, 1), &i);
        assert_eq!(built(&s), 2);
        let day = s.on_trade(&trade(t0 + 24 * 3_600_000 + 30 * 60_000, 100, 1), &i);
        assert_eq!(built(&s), 2, "a day later, the same hour of the ring");
        // The window: the first day's minutes 31 to 60 (30 trades), and the new trade.
        assert_eq!(day.unwrap().volume.mantissa, 31);
    }

    #[test]
    fn hostile_trade_times_do_not_panic() {
        let mut s = TradeStats::default();
        let i = inst();
        for (ms, p) in [
            (0, 100),
            (1, i64::MAX),
            (59_999, i64::MIN),
            (u64::MAX, -1),
            (0, 0),
            (u64::MAX / 2, i64::MAX),
        ] {
            let _ = s.on_trade(&trade(ms, p, i64::MAX), &i);
        }
        let mut s = TradeStats::default();
        let t = s
            .on_trade(&trade(0, 100, 1), &i)
            .expect("first trade publishes");
        assert_eq!(t.open.0, 100);
    }

    #[test]
    fn fit_drops_digits_only_when_needed() {
        assert_eq!(
            fit(12_345, 3),
            Decimal {
                mantissa: 12_345,
                scale: 3
            }
        );
        let big = i128::from(i64::MAX) * 100 + 99;
        let d = fit(big, 4);
        assert_eq!(d.scale, 2);
        assert_eq!(d.mantissa, i64::MAX);
    }
}
