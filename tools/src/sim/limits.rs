//! The WebSocket API's rate limits, counted as Binance counts them: request weight and
//! placed orders per fixed interval (a `1 MINUTE` window starts every minute, `10 SECOND`
//! at :00, :10, ..., `1 DAY` at 00:00 UTC), reported in every response's `rateLimits`.
//! A request over a limit gets 429 (`-1003` weight, `-1015` orders) with `retryAfter`; a
//! further violation before that time bans the address: 418 with `-1003` until the ban ends.

use std::fmt;

use tape_core::instrument::Market;

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// `REQUEST_WEIGHT`: the weight of every request (per IP on Binance; the sim counts one
    /// address per listener).
    RequestWeight,
    /// `ORDERS`: orders placed (per account).
    Orders,
}

/// The unit of a limit's interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Second,
    Minute,
    Hour,
    Day,
}

impl Interval {
    fn ms(self) -> u64 {
        match self {
            Interval::Second => 1_000,
            Interval::Minute => 60_000,
            Interval::Hour => 3_600_000,
            Interval::Day => 86_400_000,
        }
    }

    fn wire(self) -> &'static str {
        match self {
            Interval::Second => "SECOND",
            Interval::Minute => "MINUTE",
            Interval::Hour => "HOUR",
            Interval::Day => "DAY",
        }
    }
}

/// One rate limit, as Binance's `exchangeInfo` and `rateLimits` describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub kind: LimitKind,
    pub interval: Interval,
    /// The interval is `interval_num` units long (`10 SECOND`).
    pub interval_num: u32,
    /// Most weight or orders per interval.
    pub limit: u32,
}

impl RateLimit {
    /// Request weight per `num` `interval`s.
    pub fn weight(limit: u32, num: u32, interval: Interval) -> RateLimit {
        RateLimit {
            kind: LimitKind::RequestWeight,
            interval,
            interval_num: num.max(1),
            limit,
        }
    }

    /// Orders per `num` `interval`s.
    pub fn orders(limit: u32, num: u32, interval: Interval) -> RateLimit {
        RateLimit {
            kind: LimitKind::Orders,
            interval,
            interval_num: num.max(1),
            limit,
        }
    }

    /// Binance's limits of `market`'s WebSocket API: spot 6000 weight a minute, 50 orders
    /// per 10 s and 160 000 a day; USD-M 2400 weight a minute, 300 orders per 10 s and 1200
    /// a minute; COIN-M 2400 weight and 1200 orders a minute.
    pub fn binance(market: Market) -> Vec<RateLimit> {
        use Interval::{Day, Minute, Second};
        match market {
            Market::Spot => vec![
                RateLimit::orders(50, 10, Second),
                RateLimit::orders(160_000, 1, Day),
                RateLimit::weight(6000, 1, Minute),
            ],
            Market::UsdM => vec![
                RateLimit::orders(300, 10, Second),
                RateLimit::orders(1200, 1, Minute),
                RateLimit::weight(2400, 1, Minute),
            ],
            Market::CoinM => vec![
                RateLimit::orders(1200, 1, Minute),
                RateLimit::weight(2400, 1, Minute),
            ],
        }
    }

    fn window_ms(&self) -> u64 {
        self.interval
            .ms()
            .saturating_mul(u64::from(self.interval_num))
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.interval_num, self.interval.wire())
    }
}

/// Why a request was refused: HTTP-like status, Binance code and message, and when to retry
/// (epoch ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub status: u16,
    pub code: i32,
    pub msg: String,
    pub retry_after_ms: u64,
}

/// One listener's counters.
#[derive(Debug)]
pub(crate) struct Limiter {
    limits: Vec<RateLimit>,
    /// Per limit: start of its current window (epoch ms) and the count in it.
    counts: Vec<(u64, u64)>,
    ban_ms: u64,
    banned_until_ms: u64,
    /// A 429 was answered: a further violation before this bans.
    warned_until_ms: u64,
}

impl Limiter {
    pub(crate) fn new(limits: Vec<RateLimit>, ban_ms: u64) -> Limiter {
        let counts = vec![(0, 0); limits.len()];
        Limiter {
            limits,
            counts,
            ban_ms,
            banned_until_ms: 0,
            warned_until_ms: 0,
        }
    }

    /// Starts new windows where `now_ms` left the old ones.
    fn roll(&mut self, now_ms: u64) {
        for (l, (start, count)) in self.limits.iter().zip(&mut self.counts) {
            let w = l.window_ms().max(1);
            let s = now_ms - now_ms % w;
            if s != *start {
                *start = s;
                *count = 0;
            }
        }
    }

    /// Adds `weight` to the weight counters (also for connecting, which costs weight).
    pub(crate) fn charge(&mut self, now_ms: u64, weight: u64) {
        self.roll(now_ms);
        for (l, (_, count)) in self.limits.iter().zip(&mut self.counts) {
            if l.kind == LimitKind::RequestWeight {
                *count = count.saturating_add(weight);
            }
        }
    }

    /// A request of `weight` that would place `orders` orders: its weight is counted, then
    /// it is refused when the address is banned, a weight limit is exceeded, or the orders
    /// would exceed an order limit.
    pub(crate) fn admit(&mut self, now_ms: u64, weight: u64, orders: u64) -> Result<(), Refusal> {
        self.roll(now_ms);
        if now_ms < self.banned_until_ms {
            return Err(self.banned());
        }
        self.charge(now_ms, weight);
        let over = self
            .limits
            .iter()
            .zip(&self.counts)
            .find(|(l, (_, count))| match l.kind {
                LimitKind::RequestWeight => *count > u64::from(l.limit),
                LimitKind::Orders => {
                    orders > 0 && count.saturating_add(orders) > u64::from(l.limit)
                }
            });
        let Some((l, (start, _))) = over else {
            return Ok(());
        };
        let retry_after_ms = start.saturating_add(l.window_ms());
        if now_ms < self.warned_until_ms {
            self.banned_until_ms = now_ms.saturating_add(self.ban_ms);
            return Err(self.banned());
        }
        self.warned_until_ms = retry_after_ms;
        let (code, msg) = match l.kind {
            LimitKind::RequestWeight => (
                -1003,
                format!(
                    "Too much request weight used; current limit is {} request weight per {l}. \
                     Please use WebSocket Streams for live updates to avoid polling the API.",
                    l.limit
                ),
            ),
            LimitKind::Orders => (
                -1015,
                format!(
                    "Too many new orders; current limit is {} orders per {l}.",
                    l.limit
                ),
            ),
        };
        Err(Refusal {
            status: 429,
            code,
            msg,
            retry_after_ms,
        })
    }

    fn banned(&self) -> Refusal {
        Refusal {
            status: 418,
            code: -1003,
            msg: format!(
                "Way too much request weight used; IP banned until {}. Please use WebSocket \
                 Streams for live updates to avoid bans.",
                self.banned_until_ms
            ),
            retry_after_ms: self.banned_until_ms,
        }
    }

    /// Counts `n` orders placed.
    pub(crate) fn placed(&mut self, now_ms: u64, n: u64) {
        self.roll(now_ms);
        for (l, (_, count)) in self.limits.iter().zip(&mut self.counts) {
            if l.kind == LimitKind::Orders {
                *count = count.saturating_add(n);
            }
        }
    }

    /// The `rateLimits` array: the order limits (for requests that place orders) and the
    /// weight limits, with their current counts.
    pub(crate) fn json(&self, with_orders: bool) -> String {
        let mut out = String::from("[");
        for (l, (_, count)) in self.limits.iter().zip(&self.counts) {
            if l.kind == LimitKind::Orders && !with_orders {
                continue;
            }
            if out.len() > 1 {
                out.push(',');
            }
            let kind = match l.kind {
                LimitKind::RequestWeight => "REQUEST_WEIGHT",
                LimitKind::Orders => "ORDERS",
            };
            out.push_str(&format!(
                "{{\"rateLimitType\":\"{kind}\",\"interval\":\"{}\",\"intervalNum\":{},\
                 \"limit\":{},\"count\":{count}}}",
                l.interval.wire(),
                l.interval_num,
                l.limit
            ));
        }
        out.push(']');
        out
    }
}

/// Appends `,"rateLimits":LIMITS` to a response object.
pub(crate) fn with_rate_limits(mut reply: String, limits: &str) -> String {
    if reply.ends_with('}') {
        reply.pop();
        reply.push_str(",\"rateLimits\":");
        reply.push_str(limits);
        reply.push('}');
    }
    reply
}

/// The answer to a refused request: `{"id":ID,"status":S,"error":{"code":C,"msg":M,
/// "data":{"serverTime":T,"retryAfter":R}}}`.
pub(crate) fn refusal_reply(id: &str, r: &Refusal, server_ms: u64) -> String {
    let msg = serde_json::to_string(&r.msg).unwrap_or_default();
    format!(
        "{{\"id\":{id},\"status\":{},\"error\":{{\"code\":{},\"msg\":{msg},\"data\":\
         {{\"serverTime\":{server_ms},\"retryAfter\":{}}}}}}}",
        r.status, r.code, r.retry_after_ms
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000; // a whole day boundary is not needed: windows align

    #[test]
    fn weight_over_the_limit_is_429_then_418() {
        let mut l = Limiter::new(vec![RateLimit::weight(10, 1, Interval::Minute)], 120_000);
        let start = T0 - T0 % 60_000;
        assert_eq!(l.admit(start + 1, 6, 0), Ok(()));
        assert_eq!(l.json(false), "[{\"rateLimitType\":\"REQUEST_WEIGHT\",\"interval\":\"MINUTE\",\"intervalNum\":1,\"limit\":10,\"count\":6}]");
        let r = l.admit(start + 2, 6, 0).unwrap_err();
        assert_eq!(
            (r.status, r.code, r.retry_after_ms),
            (429, -1003, start + 60_000)
        );
        assert!(
            r.msg
                .contains("current limit is 10 request weight per 1 MINUTE"),
            "{}",
            r.msg
        );
        let r = l.admit(start + 3, 1, 0).unwrap_err();
        assert_eq!(
            (r.status, r.code, r.retry_after_ms),
            (418, -1003, start + 3 + 120_000)
        );
        // Banned even in the next window, until the ban ends.
        assert_eq!(l.admit(start + 60_001, 1, 0).unwrap_err().status, 418);
        assert_eq!(l.admit(start + 3 + 120_000, 1, 0), Ok(()));
    }

    #[test]
    fn orders_count_only_when_placed_and_windows_reset() {
        let mut l = Limiter::new(
            vec![
                RateLimit::orders(2, 10, Interval::Second),
                RateLimit::weight(100, 1, Interval::Minute),
            ],
            60_000,
        );
        let start = T0 - T0 % 60_000;
        for i in 0..2 {
            assert_eq!(l.admit(start + i, 1, 1), Ok(()));
            l.placed(start + i, 1);
        }
        let r = l.admit(start + 5, 1, 1).unwrap_err();
        assert_eq!(
            (r.status, r.code, r.retry_after_ms),
            (429, -1015, start + 10_000)
        );
        assert_eq!(
            r.msg,
            "Too many new orders; current limit is 2 orders per 10 SECOND."
        );
        // Not an order: fine while the order limit is exhausted.
        assert_eq!(l.admit(start + 6, 1, 0), Ok(()));
        assert!(l.json(true).starts_with("[{\"rateLimitType\":\"ORDERS\",\"interval\":\"SECOND\",\"intervalNum\":10,\"limit\":2,\"count\":2}"));
        // The next 10-second window.
        assert_eq!(l.admit(start + 10_000, 1, 1), Ok(()));
    }

    #[test]
    fn replies_carry_retry_after_and_limits() {
        let r = Refusal {
            status: 429,
            code: -1015,
            msg: "m".into(),
            retry_after_ms: 7,
        };
        let v: serde_json::Value =
            serde_json::from_str(&with_rate_limits(refusal_reply("\"x\"", &r, 5), "[]")).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"id":"x","status":429,"error":{"code":-1015,"msg":"m",
                "data":{"serverTime":5,"retryAfter":7}},"rateLimits":[]})
        );
        assert_eq!(RateLimit::binance(Market::Spot).len(), 3);
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the traffic, admitted orders never exceed an order limit within its
        /// window, refusals always name a later retry time, and nothing panics.
        #[test]
        fn admitted_orders_stay_within_the_limit(
            steps in proptest::collection::vec((0u64..3_000, 0u64..4, 0u64..2), 1..200),
        ) {
            let mut l = Limiter::new(
                vec![RateLimit::orders(3, 1, Interval::Second), RateLimit::weight(10, 1, Interval::Second)],
                1_500,
            );
            let mut now = 1_700_000_000_000u64;
            for (dt, weight, orders) in steps {
                now += dt;
                match l.admit(now, weight, orders) {
                    Ok(()) => {
                        l.placed(now, orders);
                        prop_assert!(l.counts[0].1 <= 3, "{:?}", l.counts);
                    }
                    Err(r) => {
                        prop_assert!(r.retry_after_ms > now);
                        prop_assert!(matches!((r.status, r.code), (429, -1003 | -1015) | (418, -1003)));
                    }
                }
            }
        }
    }
}
