//! Latency of every stage in HdrHistograms: cumulative for `/status` and `/metrics`, and
//! per-interval for the node's HdrHistogram interval logs (`--latency-log`).
//!
//! Values are nanoseconds. Recording is an array index and a counter increment; nothing
//! here reads a clock: callers pass durations and `now`.

use hdrhistogram::Histogram;

/// A measured stage of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LatencyStage {
    /// Decoding one input frame or snapshot.
    Decode,
    /// Applying it: books, derived state, engine outputs.
    Apply,
    /// Appending it to the journal.
    Journal,
    /// Turning its outputs into client messages and queueing them for every subscriber.
    Fanout,
    /// From reading the input to the write of its last message to the last subscriber.
    TickToWire,
}

impl LatencyStage {
    /// Every stage, in output order.
    pub const ALL: [LatencyStage; 5] = [
        LatencyStage::Decode,
        LatencyStage::Apply,
        LatencyStage::Journal,
        LatencyStage::Fanout,
        LatencyStage::TickToWire,
    ];

    /// Stable snake_case name (JSON keys, Prometheus labels, log tags).
    pub fn as_str(self) -> &'static str {
        match self {
            LatencyStage::Decode => "decode",
            LatencyStage::Apply => "apply",
            LatencyStage::Journal => "journal",
            LatencyStage::Fanout => "fanout",
            LatencyStage::TickToWire => "tick_to_wire",
        }
    }
}

/// Highest recordable latency: 60 s, in ns. Larger values are clamped (and still counted).
pub const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// Percentiles reported for every stage.
pub const PERCENTILES: [f64; 5] = [50.0, 90.0, 99.0, 99.9, 100.0];

/// Names of [`PERCENTILES`] in JSON keys (`p50_ns`, ..., `max_ns`).
pub const PERCENTILE_NAMES: [&str; 5] = ["p50", "p90", "p99", "p999", "max"];

/// Summary of one stage's histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StageSummary {
    /// Samples recorded.
    pub count: u64,
    /// ns at [`PERCENTILES`] (p50, p90, p99, p99.9, max).
    pub ns: [u64; 5],
}

fn new_hist() -> Histogram<u64> {
    // 3 significant digits from 1 ns to 60 s: ~30 KiB per histogram, fixed.
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).expect("static histogram bounds are valid")
}

/// Cumulative and interval histograms for every [`LatencyStage`].
pub struct Latency {
    total: Vec<Histogram<u64>>,
    interval: Vec<Histogram<u64>>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            total: LatencyStage::ALL.iter().map(|_| new_hist()).collect(),
            interval: LatencyStage::ALL.iter().map(|_| new_hist()).collect(),
        }
    }
}

impl std::fmt::Debug for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Latency").finish_non_exhaustive()
    }
}

impl Latency {
    /// Records one sample.
    #[inline]
    pub fn record(&mut self, stage: LatencyStage, ns: u64) {
        let v = ns.clamp(1, MAX_LATENCY_NS);
        let i = stage as usize;
        self.total[i].saturating_record(v);
        self.interval[i].saturating_record(v);
    }

    /// Cumulative summary of a stage.
    pub fn summary(&self, stage: LatencyStage) -> StageSummary {
        let h = &self.total[stage as usize];
        let mut ns = [0; 5];
        if !h.is_empty() {
            for (slot, p) in ns.iter_mut().zip(PERCENTILES) {
                *slot = h.value_at_percentile(p);
            }
        }
        StageSummary { count: h.len(), ns }
    }

    /// The per-stage histograms of the current interval, in [`LatencyStage::ALL`] order.
    pub fn interval(&self) -> &[Histogram<u64>] {
        &self.interval
    }

    /// Starts a new interval (after its histograms were written somewhere).
    pub fn reset_interval(&mut self) {
        for h in &mut self.interval {
            h.reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_summarises() {
        let mut l = Latency::default();
        for v in 1..=1000u64 {
            l.record(LatencyStage::Decode, v * 100);
        }
        l.record(LatencyStage::TickToWire, u64::MAX);
        let s = l.summary(LatencyStage::Decode);
        assert_eq!(s.count, 1000);
        assert!((49_900..=50_100).contains(&s.ns[0]), "{s:?}");
        assert!(s.ns[4] >= 99_900, "{s:?}");
        assert_eq!(l.summary(LatencyStage::Apply).count, 0);
        assert!(l.summary(LatencyStage::TickToWire).ns[4] >= MAX_LATENCY_NS / 2);
    }
}
