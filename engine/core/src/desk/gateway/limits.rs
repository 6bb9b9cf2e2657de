//! The venue's rate limits, as its responses report them (`rateLimits`), so the desk refuses
//! an order locally before the venue would, and stops after a 429 (until `retryAfter`) or a
//! 418 (an IP ban).
//!
//! Binance counts in fixed windows (`interval` × `intervalNum`: 10 s, 1 min, 1 day) aligned
//! to its clock. Each response carries the counts after the request; between responses the
//! desk counts its own orders. A window that has rolled over (by the receive time of the
//! inputs, the only clock the core has) starts from zero.

use serde_json::Value;

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LimitKind {
    /// `REQUEST_WEIGHT`.
    RequestWeight,
    /// `ORDERS`.
    Orders,
    /// `RAW_REQUESTS`.
    RawRequests,
}

impl LimitKind {
    fn parse(s: &str) -> Option<LimitKind> {
        match s {
            "REQUEST_WEIGHT" => Some(LimitKind::RequestWeight),
            "ORDERS" => Some(LimitKind::Orders),
            "RAW_REQUESTS" => Some(LimitKind::RawRequests),
            _ => None,
        }
    }

    /// Binance's name.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::RequestWeight => "REQUEST_WEIGHT",
            LimitKind::Orders => "ORDERS",
            LimitKind::RawRequests => "RAW_REQUESTS",
        }
    }
}

/// One limit and its count in the current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// What it counts.
    pub kind: LimitKind,
    /// The window, ms.
    pub window_ms: u64,
    /// Most allowed per window.
    pub limit: u64,
    /// Counted in the window `window` (as last reported, plus tape's own orders since).
    pub count: u64,
    /// Index of the window the count belongs to (`now_ms / window_ms`).
    pub window: u64,
}

/// Why an order may not go out now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocked {
    /// One more would exceed this limit in its window.
    Limit(RateLimit),
    /// The venue said 429: nothing until `until_ms`.
    Backoff {
        /// When sending may resume, ms (receive-time clock).
        until_ms: u64,
    },
    /// The venue said 418 (banned) until `until_ms`.
    Banned {
        /// When the ban ends, ms (`u64::MAX` when the venue did not say).
        until_ms: u64,
    },
}

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Blocked::Limit(l) => write!(
                f,
                "venue rate limit: {} {}/{} per {} ms reached",
                l.kind.as_str(),
                l.count,
                l.limit,
                l.window_ms
            ),
            Blocked::Backoff { until_ms } => {
                write!(
                    f,
                    "venue rate limit: the venue answered 429, retry after {until_ms} ms"
                )
            }
            Blocked::Banned { until_ms } => write!(
                f,
                "venue rate limit: the venue banned this IP (418) until {until_ms} ms"
            ),
        }
    }
}

/// Binance's interval names in ms.
fn interval_ms(interval: &str, num: u64) -> Option<u64> {
    let unit = match interval {
        "SECOND" => 1_000,
        "MINUTE" => 60_000,
        "HOUR" => 3_600_000,
        "DAY" => 86_400_000,
        _ => return None,
    };
    num.checked_mul(unit).filter(|&w| w > 0)
}

/// The venue's limits as last seen.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    limits: Vec<RateLimit>,
    /// 429: no order before this (ms).
    backoff_until_ms: u64,
    /// 418: no request before this (ms).
    banned_until_ms: u64,
}

/// Most limits tracked (Binance sends two or three).
const MAX_LIMITS: usize = 16;

impl Limits {
    /// The limits known so far.
    pub fn all(&self) -> &[RateLimit] {
        &self.limits
    }

    /// Takes the counts of a response's `rateLimits` array (malformed entries are skipped).
    pub fn observe(&mut self, now_ms: u64, rate_limits: &Value) {
        let Some(list) = rate_limits.as_array() else {
            return;
        };
        for e in list {
            let (Some(kind), Some(interval), Some(num), Some(limit), Some(count)) = (
                e.get("rateLimitType")
                    .and_then(Value::as_str)
                    .and_then(LimitKind::parse),
                e.get("interval").and_then(Value::as_str),
                e.get("intervalNum").and_then(Value::as_u64),
                e.get("limit").and_then(Value::as_u64),
                e.get("count").and_then(Value::as_u64),
            ) else {
                continue;
            };
            let Some(window_ms) = interval_ms(interval, num) else {
                continue;
            };
            let window = now_ms / window_ms;
            let entry = RateLimit {
                kind,
                window_ms,
                limit,
                count,
                window,
            };
            let at = self
                .limits
                .iter()
                .position(|l| l.kind == kind && l.window_ms == window_ms);
            match at {
                Some(i) => self.limits[i] = entry,
                None if self.limits.len() < MAX_LIMITS => self.limits.push(entry),
                None => {}
            }
        }
    }

    /// A 429: orders wait until `until_ms`.
    pub fn too_many(&mut self, until_ms: u64) {
        self.backoff_until_ms = self.backoff_until_ms.max(until_ms);
    }

    /// A 418: nothing goes out until `until_ms`.
    pub fn banned(&mut self, until_ms: u64) {
        self.banned_until_ms = self.banned_until_ms.max(until_ms);
    }

    /// Whether a request of `kind`s may go out at `now_ms` (an order counts against
    /// [`LimitKind::Orders`] and the request limits; a query against the request limits).
    ///
    /// # Errors
    /// What blocks it.
    pub fn check(&self, now_ms: u64, order: bool) -> Result<(), Blocked> {
        if now_ms < self.banned_until_ms {
            return Err(Blocked::Banned {
                until_ms: self.banned_until_ms,
            });
        }
        if order && now_ms < self.backoff_until_ms {
            return Err(Blocked::Backoff {
                until_ms: self.backoff_until_ms,
            });
        }
        for l in &self.limits {
            if l.kind == LimitKind::Orders && !order {
                continue;
            }
            if now_ms / l.window_ms != l.window {
                continue;
            }
            if l.count.saturating_add(1) > l.limit {
                return Err(Blocked::Limit(*l));
            }
        }
        Ok(())
    }

    /// Counts one request tape sends (weight 1 for the request limits; one order).
    pub fn count(&mut self, now_ms: u64, order: bool) {
        for l in &mut self.limits {
            if l.kind == LimitKind::Orders && !order {
                continue;
            }
            let w = now_ms / l.window_ms;
            if w != l.window {
                l.window = w;
                l.count = 0;
            }
            l.count = l.count.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(orders_10s: u64, count: u64) -> Value {
        serde_json::json!([
            {"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":6000,"count":12},
            {"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":orders_10s,"count":count},
            {"rateLimitType":"ORDERS","interval":"DAY","intervalNum":1,"limit":200000,"count":count},
            {"rateLimitType":"bogus"},
            "not an object"
        ])
    }

    #[test]
    fn the_next_order_over_a_limit_is_blocked_until_the_window_rolls() {
        let mut l = Limits::default();
        let t = 1_000_000; // ms, the start of a 10 s window
        l.observe(t, &limits(3, 2));
        assert_eq!(l.all().len(), 3);
        assert_eq!(l.check(t, true), Ok(()));
        l.count(t, true);
        match l.check(t + 1, true) {
            Err(Blocked::Limit(x)) => {
                assert_eq!(
                    (x.kind, x.window_ms, x.limit, x.count),
                    (LimitKind::Orders, 10_000, 3, 3)
                )
            }
            other => panic!("{other:?}"),
        }
        // Queries do not count against ORDERS.
        assert_eq!(l.check(t + 1, false), Ok(()));
        // The next 10 s window starts from zero.
        assert_eq!(l.check(t + 10_000, true), Ok(()));
    }

    #[test]
    fn a_429_blocks_orders_and_a_418_everything_until_their_time() {
        let mut l = Limits::default();
        l.too_many(5_000);
        assert!(matches!(
            l.check(4_999, true),
            Err(Blocked::Backoff { until_ms: 5_000 })
        ));
        assert_eq!(l.check(4_999, false), Ok(()));
        assert_eq!(l.check(5_000, true), Ok(()));
        l.banned(9_000);
        assert!(matches!(l.check(8_000, false), Err(Blocked::Banned { .. })));
        assert_eq!(l.check(9_000, false), Ok(()));
    }

    #[test]
    fn absurd_intervals_are_ignored() {
        let mut l = Limits::default();
        l.observe(
            0,
            &serde_json::json!([{"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":0,"limit":1,"count":1},
            {"rateLimitType":"ORDERS","interval":"DAY","intervalNum":u64::MAX,"limit":1,"count":1}]),
        );
        assert!(l.all().is_empty());
    }
}
