//! HdrHistogram interval logs (`--latency-log`) of the stage histograms, readable by the
//! standard HdrHistogram log tools (HistogramLogProcessor, hdr-plot, ...).

use std::io::Write;

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;
use tape_core::metrics::{Latency, LatencyStage};

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

    /// Writes `latency`'s interval histograms (one entry per stage, tagged with its name) and
    /// starts a new interval. `start_s` and `duration_s` are the interval's start (seconds since
    /// the log's base time) and length.
    ///
    /// # Errors
    /// Write or serialization failures.
    pub fn write_interval(
        &mut self,
        latency: &mut Latency,
        start_s: f64,
        duration_s: f64,
    ) -> std::io::Result<()> {
        self.write(latency.interval(), start_s, duration_s)?;
        latency.reset_interval();
        Ok(())
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
    use tape_core::metrics::LatencyStage;

    #[test]
    fn interval_log_round_trips_through_the_hdrhistogram_reader() {
        use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lat.hlog");
        let mut log = LatencyLog::create(&path, 1_700_000_000.0).unwrap();
        let mut l = Latency::default();
        l.record(LatencyStage::Decode, 500);
        l.record(LatencyStage::Decode, 700);
        log.write_interval(&mut l, 0.0, 1.0).unwrap();
        l.record(LatencyStage::Fanout, 900);
        log.write_interval(&mut l, 1.0, 1.0).unwrap();
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
