//! Latency of every stage in HdrHistograms: cumulative for `/status` and `/metrics`, and
//! per-interval for HdrHistogram interval logs (`--latency-log`), readable by the standard
//! HdrHistogram log tools (HistogramLogProcessor, hdr-plot, ...).
//!
//! Values are nanoseconds. Recording is an array index and a counter increment; nothing
//! here reads a clock: callers pass durations and `now`.

use std::io::Write;

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
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

    /// Writes the interval histograms since the last call to `log` (one entry per stage,
    /// tagged with its name) and starts new intervals. `start_s` and `duration_s` are the
    /// interval's start (seconds since the log's base time) and length.
    ///
    /// # Errors
    /// Write or serialization failures.
    pub fn write_interval(
        &mut self,
        log: &mut LatencyLog,
        start_s: f64,
        duration_s: f64,
    ) -> std::io::Result<()> {
        log.write(&self.interval, start_s, duration_s)?;
        for h in &mut self.interval {
            h.reset();
        }
        Ok(())
    }
}

/// An HdrHistogram interval log file (format "1.3", V2 compressed histograms).
pub struct LatencyLog {
    out: std::io::BufWriter<std::fs::File>,
    serializer: V2DeflateSerializer,
}

impl std::fmt::Debug for LatencyLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyLog").finish_non_exhaustive()
    }
}

impl LatencyLog {
    /// Creates the log and writes its header; `base_time_s` is the Unix time the intervals
    /// are relative to.
    ///
    /// # Errors
    /// The file cannot be created or written.
    pub fn create(path: &std::path::Path, base_time_s: f64) -> std::io::Result<LatencyLog> {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        writeln!(
            out,
            "#[tape latency log: stages tagged by name, values in ns]"
        )?;
        writeln!(out, "#[BaseTime: {base_time_s:.3} (seconds since epoch)]")?;
        writeln!(out, "#[StartTime: {base_time_s:.3} (seconds since epoch)]")?;
        writeln!(
            out,
            "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
        )?;
        out.flush()?;
        Ok(LatencyLog {
            out,
            serializer: V2DeflateSerializer::new(),
        })
    }

    fn write(
        &mut self,
        hists: &[Histogram<u64>],
        start_s: f64,
        duration_s: f64,
    ) -> std::io::Result<()> {
        let mut w = IntervalLogWriterBuilder::new()
            .with_max_value_divisor(1.0)
            .begin_log_with(&mut self.out, &mut self.serializer)
            .map_err(std::io::Error::other)?;
        for (stage, h) in LatencyStage::ALL.iter().zip(hists) {
            let tag = Tag::new(stage.as_str()).expect("stage names are valid tags");
            w.write_histogram(
                h,
                std::time::Duration::from_secs_f64(start_s.max(0.0)),
                std::time::Duration::from_secs_f64(duration_s.max(0.0)),
                Some(tag),
            )
            .map_err(std::io::Error::other)?;
        }
        self.out.flush()
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

    #[test]
    fn interval_log_round_trips_through_the_hdrhistogram_reader() {
        use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lat.hlog");
        let mut log = LatencyLog::create(&path, 1_700_000_000.0).unwrap();
        let mut l = Latency::default();
        l.record(LatencyStage::Decode, 500);
        l.record(LatencyStage::Decode, 700);
        l.write_interval(&mut log, 0.0, 1.0).unwrap();
        l.record(LatencyStage::Fanout, 900);
        l.write_interval(&mut log, 1.0, 1.0).unwrap();
        drop(log);
        let text = std::fs::read(&path).unwrap();
        let mut seen = Vec::new();
        for e in IntervalLogIterator::new(&text) {
            if let LogEntry::Interval(h) = e.unwrap() {
                seen.push((h.tag().map(|t| t.as_str().to_owned()), h.start_timestamp()));
            }
        }
        assert_eq!(seen.len(), 2 * LatencyStage::ALL.len());
        assert_eq!(seen[0].0.as_deref(), Some("decode"));
        // Decoding the histograms themselves proves the payload is standard V2.
        let mut decoded = 0;
        for e in IntervalLogIterator::new(&text) {
            if let LogEntry::Interval(h) = e.unwrap() {
                let bytes = base64_decode(h.encoded_histogram());
                let mut d = hdrhistogram::serialization::Deserializer::new();
                let hist: Histogram<u64> = d.deserialize(&mut &bytes[..]).unwrap();
                decoded += hist.len();
            }
        }
        assert_eq!(decoded, 3);
    }

    fn base64_decode(s: &str) -> Vec<u8> {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = Vec::new();
        let (mut acc, mut bits) = (0u32, 0u32);
        for c in s.bytes().filter(|c| *c != b'=') {
            let v = A.iter().position(|a| *a == c).unwrap() as u32;
            acc = (acc << 6) | v;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        }
        out
    }
}
