//! REST depth snapshots: Binance's URLs and a sans-IO scheduler that decides when to ask.
//!
//! The engine thread owns a [`SnapshotScheduler`] (pure state, `now` passed in) and the node's
//! fetcher thread: it calls [`SnapshotScheduler::want`] when a book needs a snapshot, hands each
//! [`SnapshotScheduler::poll_request`] to the fetcher, and feeds every finished fetch back through
//! [`SnapshotScheduler::on_result`].

use std::collections::{BTreeMap, VecDeque};

use crate::instrument::Market;

/// The Binance REST depth-snapshot URL for `symbol` (upper-cased, as the REST API wants it).
/// `rest_base` is the scheme and host, e.g. `https://fapi.binance.com`; one trailing `/` is
/// tolerated.
pub fn depth_url(market: Market, rest_base: &str, symbol: &str, limit: u32) -> String {
    let base = rest_base.strip_suffix('/').unwrap_or(rest_base);
    let path = match market {
        Market::Spot => "/api/v3/depth",
        Market::UsdM => "/fapi/v1/depth",
        Market::CoinM => "/dapi/v1/depth",
    };
    let symbol = symbol.to_ascii_uppercase();
    format!("{base}{path}?symbol={symbol}&limit={limit}")
}

/// [`SnapshotScheduler`] tuning; every duration is in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// Minimum time between two request starts on one venue.
    pub min_interval_ns: u64,
    /// Requests one venue may have in flight at once (0 counts as 1).
    pub max_in_flight_per_venue: usize,
    /// Delay before the first retry of a failed key; doubles per consecutive failure.
    pub retry_initial_ns: u64,
    /// Cap on the doubling delay (a server's `Retry-After` may exceed it).
    pub retry_max_ns: u64,
    /// An in-flight request older than this counts as failed.
    pub timeout_ns: u64,
}

/// What the scheduler has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedulerCounters {
    /// Requests handed out.
    pub requested: u64,
    /// Results reported as successes.
    pub succeeded: u64,
    /// Failures, timeouts included.
    pub failed: u64,
    /// Requests handed out that were retries of a failed one.
    pub retried: u64,
    /// In-flight requests expired by `timeout_ns`.
    pub timed_out: u64,
    /// Requests that had to wait for their venue's rate limit (interval or `Retry-After`).
    pub rate_limited_waits: u64,
}

/// A request the scheduler allows now: fetch the snapshot of `key` from `venue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotRequest {
    /// The venue index (rate-limit domain).
    pub venue: usize,
    /// The REST source id.
    pub key: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Pending { not_before: u64 },
    InFlight { since: u64 },
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    venue: usize,
    phase: Phase,
    /// Consecutive failures, for the backoff.
    failures: u32,
}

#[derive(Debug, Clone, Copy, Default)]
struct Venue {
    in_flight: usize,
    /// Earliest start of the next request: last start plus the interval, or a `Retry-After`.
    next_start: u64,
}

/// Decides when to send snapshot requests: dedupe per key, a per-venue interval between request
/// starts and cap on requests in flight, FIFO order, exponential backoff on failure and expiry
/// of requests that never answer. Sans-IO: every time is a `now` in nanoseconds from the caller.
///
/// Results are matched by key alone: a result for a key that is not in flight (cancelled, or
/// already expired and waiting to retry) is ignored. Polling costs O(keys): a busy-polling
/// caller polls when `now` reaches [`poll_timeout`](Self::poll_timeout) or after
/// [`want`](Self::want) / [`on_result`](Self::on_result), not on every loop iteration.
#[derive(Debug, Clone)]
pub struct SnapshotScheduler {
    config: SchedulerConfig,
    entries: BTreeMap<u32, Entry>,
    /// Pending keys in the order they became pending.
    queue: VecDeque<u32>,
    venues: BTreeMap<usize, Venue>,
    counters: SchedulerCounters,
}

impl SnapshotScheduler {
    /// An idle scheduler.
    pub fn new(config: SchedulerConfig) -> SnapshotScheduler {
        SnapshotScheduler {
            config,
            entries: BTreeMap::new(),
            queue: VecDeque::new(),
            venues: BTreeMap::new(),
            counters: SchedulerCounters::default(),
        }
    }

    /// Asks for a snapshot of `key` on `venue`. Returns `false` (and changes nothing) if the key
    /// is already pending or in flight.
    pub fn want(&mut self, now: u64, venue: usize, key: u32) -> bool {
        if self.entries.contains_key(&key) {
            return false;
        }
        let phase = Phase::Pending { not_before: now };
        let entry = Entry {
            venue,
            phase,
            failures: 0,
        };
        self.entries.insert(key, entry);
        self.queue.push_back(key);
        true
    }

    /// Forgets `key` (its connection went down, say); a late result for it is ignored. Returns
    /// whether it was pending or in flight.
    pub fn cancel(&mut self, key: u32) -> bool {
        let Some(entry) = self.entries.remove(&key) else {
            return false;
        };
        match entry.phase {
            Phase::Pending { .. } => self.queue.retain(|k| *k != key),
            Phase::InFlight { .. } => self.release(entry.venue),
        }
        true
    }

    /// The next request allowed at `now`, oldest pending key first; expires overdue requests
    /// first. Call until `None`.
    #[must_use]
    pub fn poll_request(&mut self, now: u64) -> Option<SnapshotRequest> {
        self.handle_timeout(now);
        let cap = self.config.max_in_flight_per_venue.max(1);
        let index = self.queue.iter().position(|key| {
            let Some(e) = self.entries.get(key) else {
                return false;
            };
            let v = self.venues.get(&e.venue).copied().unwrap_or_default();
            matches!(e.phase, Phase::Pending { not_before } if not_before <= now)
                && v.in_flight < cap
                && v.next_start <= now
        })?;
        let key = self.queue.remove(index)?;
        let entry = self.entries.get_mut(&key)?;
        let Phase::Pending { not_before } = entry.phase else {
            return None;
        };
        let venue = self.venues.entry(entry.venue).or_default();
        if venue.next_start > not_before {
            self.counters.rate_limited_waits += 1;
        }
        venue.in_flight += 1;
        venue.next_start = now.saturating_add(self.config.min_interval_ns);
        if entry.failures > 0 {
            self.counters.retried += 1;
        }
        entry.phase = Phase::InFlight { since: now };
        self.counters.requested += 1;
        Some(SnapshotRequest {
            venue: entry.venue,
            key,
        })
    }

    /// Reports the outcome of `key`'s request. A success makes the key idle; a failure schedules
    /// a retry after `retry_initial_ns · 2^(failures-1)` capped at `retry_max_ns`, but no sooner
    /// than `retry_after_ns`, which also holds back every request to the venue (a 429 or 418
    /// from Binance limits the whole IP). Returns `false` if the key was not in flight.
    pub fn on_result(&mut self, now: u64, key: u32, ok: bool, retry_after_ns: Option<u64>) -> bool {
        let Some(entry) = self.entries.get(&key).copied() else {
            return false;
        };
        if !matches!(entry.phase, Phase::InFlight { .. }) {
            return false;
        }
        self.release(entry.venue);
        if ok {
            self.entries.remove(&key);
            self.counters.succeeded += 1;
        } else {
            self.fail(now, key, retry_after_ns);
        }
        true
    }

    /// Counts every request in flight for `timeout_ns` or longer as failed, so a hung fetch never
    /// wedges a book. [`poll_request`](Self::poll_request) calls this itself.
    pub fn handle_timeout(&mut self, now: u64) {
        let timeout = self.config.timeout_ns;
        let expired: Vec<(u32, usize)> = self
            .entries
            .iter()
            .filter(|(_, e)| {
                matches!(e.phase, Phase::InFlight { since } if since.saturating_add(timeout) <= now)
            })
            .map(|(key, e)| (*key, e.venue))
            .collect();
        for (key, venue) in expired {
            self.release(venue);
            self.counters.timed_out += 1;
            self.fail(now, key, None);
        }
    }

    /// The earliest time at which [`poll_request`](Self::poll_request) may hand out a request or
    /// expire one (at or before `now` if it can already); `None` when nothing is pending or in
    /// flight, or everything pending waits for a result.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        let cap = self.config.max_in_flight_per_venue.max(1);
        self.entries
            .values()
            .filter_map(|e| match e.phase {
                Phase::InFlight { since } => Some(since.saturating_add(self.config.timeout_ns)),
                Phase::Pending { not_before } => {
                    let v = self.venues.get(&e.venue).copied().unwrap_or_default();
                    (v.in_flight < cap).then_some(not_before.max(v.next_start))
                }
            })
            .min()
    }

    /// Whether `key` is pending or in flight.
    pub fn is_tracked(&self, key: u32) -> bool {
        self.entries.contains_key(&key)
    }

    /// Requests in flight on `venue`.
    pub fn in_flight(&self, venue: usize) -> usize {
        self.venues.get(&venue).map_or(0, |v| v.in_flight)
    }

    /// The counters so far.
    pub fn counters(&self) -> SchedulerCounters {
        self.counters
    }

    fn release(&mut self, venue: usize) {
        if let Some(v) = self.venues.get_mut(&venue) {
            v.in_flight = v.in_flight.saturating_sub(1);
        }
    }

    /// Puts an in-flight key back in the queue after its backoff.
    fn fail(&mut self, now: u64, key: u32, retry_after_ns: Option<u64>) {
        let Some(entry) = self.entries.get_mut(&key) else {
            return;
        };
        self.counters.failed += 1;
        entry.failures = entry.failures.saturating_add(1);
        let factor = 1u64.checked_shl(entry.failures - 1).unwrap_or(u64::MAX);
        let backoff = self.config.retry_initial_ns.saturating_mul(factor);
        let delay = backoff
            .min(self.config.retry_max_ns)
            .max(retry_after_ns.unwrap_or(0));
        entry.phase = Phase::Pending {
            not_before: now.saturating_add(delay),
        };
        if let Some(ra) = retry_after_ns {
            let venue = self.venues.entry(entry.venue).or_default();
            venue.next_start = venue.next_start.max(now.saturating_add(ra));
        }
        self.queue.push_back(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: u64 = 1_000_000;
    fn config() -> SchedulerConfig {
        SchedulerConfig {
            min_interval_ns: 100 * MS,
            max_in_flight_per_venue: 2,
            retry_initial_ns: 1_000 * MS,
            retry_max_ns: 8_000 * MS,
            timeout_ns: 10_000 * MS,
        }
    }

    fn req(venue: usize, key: u32) -> Option<SnapshotRequest> {
        Some(SnapshotRequest { venue, key })
    }

    #[test]
    fn urls() {
        assert_eq!(
            depth_url(Market::Spot, "https://api.binance.com", "btcusdt", 1000),
            "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000"
        );
        assert_eq!(
            depth_url(Market::UsdM, "https://fapi.binance.com/", "ETHUSDT", 500),
            "https://fapi.binance.com/fapi/v1/depth?symbol=ETHUSDT&limit=500"
        );
        assert_eq!(
            depth_url(Market::CoinM, "http://127.0.0.1:9", "btcusd_perp", 100),
            "http://127.0.0.1:9/dapi/v1/depth?symbol=BTCUSD_PERP&limit=100"
        );
    }

    #[test]
    fn dedupe_fifo_interval_and_cap() {
        let mut s = SnapshotScheduler::new(config());
        assert!(s.want(0, 0, 7) && s.want(0, 0, 8) && s.want(0, 0, 9) && s.want(0, 1, 1));
        assert!(!s.want(0, 0, 7));
        assert_eq!(s.poll_request(0), req(0, 7));
        assert_eq!(s.poll_request(0), req(1, 1)); // venue 0 waits for its interval
        assert!(!s.want(0, 0, 7)); // in flight: still deduped
        assert_eq!(s.poll_request(0), None);
        assert_eq!(s.poll_timeout(), Some(100 * MS));
        assert_eq!(s.poll_request(100 * MS), req(0, 8));
        assert_eq!(s.poll_timeout(), Some(10_000 * MS)); // venue 0 at its cap of 2
        assert_eq!(s.poll_request(500 * MS), None);
        assert!(s.on_result(500 * MS, 7, true, None));
        assert!(!s.is_tracked(7) && !s.on_result(500 * MS, 7, true, None));
        assert_eq!(s.poll_request(500 * MS), req(0, 9));
        let c = s.counters();
        assert_eq!((c.requested, c.succeeded, c.rate_limited_waits), (4, 1, 2));
    }

    #[test]
    fn backoff_doubles_to_the_cap_with_retry_after_as_floor() {
        let mut s = SnapshotScheduler::new(config());
        s.want(0, 0, 1);
        let mut now = 0;
        for expected in [1_000, 2_000, 4_000, 8_000, 8_000] {
            assert_eq!(s.poll_request(now), req(0, 1));
            assert!(s.on_result(now, 1, false, None));
            assert_eq!(s.poll_timeout(), Some(now + expected * MS));
            assert_eq!(s.poll_request(now + expected * MS - 1), None);
            now += expected * MS;
        }
        // A Retry-After beyond the cap wins, and holds back the whole venue.
        assert_eq!(s.poll_request(now), req(0, 1));
        assert!(s.on_result(now, 1, false, Some(30_000 * MS)));
        s.want(now, 0, 2);
        assert_eq!(s.poll_timeout(), Some(now + 30_000 * MS));
        assert_eq!(s.poll_request(now + 30_000 * MS), req(0, 1));
        assert!(s.on_result(now + 30_000 * MS, 1, true, None));
        let c = s.counters();
        assert_eq!((c.failed, c.retried, c.succeeded), (6, 6, 1));
        assert_eq!(c.rate_limited_waits, 0);
        // Key 2 waited for the venue's Retry-After.
        assert_eq!(s.poll_request(now + 30_100 * MS), req(0, 2));
        assert_eq!(s.counters().rate_limited_waits, 1);
    }

    #[test]
    fn hung_requests_expire_and_cancel_forgets() {
        let mut s = SnapshotScheduler::new(config());
        s.want(0, 0, 1);
        s.want(0, 0, 2);
        assert_eq!(s.poll_request(0), req(0, 1));
        assert_eq!(s.poll_timeout(), Some(100 * MS));
        assert!(s.cancel(2) && !s.cancel(2));
        assert_eq!(s.poll_timeout(), Some(10_000 * MS));
        assert_eq!(s.poll_request(10_000 * MS), None); // expired, now backing off
        assert_eq!((s.in_flight(0), s.counters().timed_out), (0, 1));
        assert!(!s.on_result(10_001 * MS, 1, true, None)); // the late answer is ignored
        assert_eq!(s.poll_request(11_000 * MS), req(0, 1));
        assert!(s.cancel(1));
        assert_eq!((s.in_flight(0), s.poll_timeout()), (0, None));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Want(usize, u32),
        Cancel(u32),
        Advance(u64),
        Poll,
        Finish(usize, bool, Option<u64>),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..3usize, 0..8u32).prop_map(|(v, k)| Op::Want(v, k)),
            (0..8u32).prop_map(Op::Cancel),
            (0..300 * MS).prop_map(Op::Advance),
            Just(Op::Poll),
            (
                any::<usize>(),
                any::<bool>(),
                proptest::option::of(0..500 * MS)
            )
                .prop_map(|(i, ok, ra)| Op::Finish(i, ok, ra)),
        ]
    }

    proptest! {
        #[test]
        fn never_exceeds_limits_nor_loses_a_key(ops in proptest::collection::vec(op(), 0..200)) {
            let cfg = config();
            let mut s = SnapshotScheduler::new(cfg);
            let (mut now, mut wanted, mut handed) = (0u64, std::collections::BTreeSet::new(), Vec::new());
            let mut last_start: BTreeMap<usize, u64> = BTreeMap::new();
            let mut poll = |s: &mut SnapshotScheduler, now: u64, handed: &mut Vec<u32>| {
                while let Some(r) = s.poll_request(now) {
                    if let Some(t) = last_start.insert(r.venue, now) {
                        assert!(now - t >= cfg.min_interval_ns, "venue {} started twice within the interval", r.venue);
                    }
                    assert!(s.in_flight(r.venue) <= cfg.max_in_flight_per_venue);
                    handed.push(r.key);
                }
            };
            for op in ops {
                match op {
                    Op::Want(v, k) => { s.want(now, v, k); wanted.insert(k); }
                    Op::Cancel(k) => { s.cancel(k); wanted.remove(&k); }
                    Op::Advance(dt) => now += dt,
                    Op::Poll => poll(&mut s, now, &mut handed),
                    Op::Finish(i, ok, ra) if !handed.is_empty() => {
                        let key = handed.remove(i % handed.len());
                        if s.on_result(now, key, ok, ra) && ok { wanted.remove(&key); }
                    }
                    Op::Finish(..) => {}
                }
                for k in 0..8 { prop_assert_eq!(s.is_tracked(k), wanted.contains(&k)); }
            }
            // Liveness: with time passing and every request succeeding, every wanted key is served.
            for _ in 0..100 {
                let Some(t) = s.poll_timeout() else { break };
                now = now.max(t);
                poll(&mut s, now, &mut handed);
                for key in handed.drain(..) {
                    if s.on_result(now, key, true, None) { wanted.remove(&key); }
                }
            }
            prop_assert!(wanted.is_empty(), "never served: {:?}", wanted);
        }
    }
}
