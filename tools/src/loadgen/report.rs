//! What a load run reports: [`LoadgenReport`] with its [`LatencySummary`] and text form, the
//! optional HdrHistogram interval log of the measured window, and the thread CPU time that shows
//! whether the loadgen itself was the bottleneck.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::time::Duration;

use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;
use serde::Serialize;

/// Latency percentiles, ns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LatencySummary {
    /// Samples (messages with a `recv_ns` in the measured window).
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest sample.
    pub max: u64,
}

impl LatencySummary {
    /// The summary of a histogram.
    pub fn of(h: &Histogram<u64>) -> LatencySummary {
        let q = |q| h.value_at_quantile(q);
        let (p50, p90, p99, p999) = (q(0.5), q(0.9), q(0.99), q(0.999));
        LatencySummary {
            count: h.len(),
            p50,
            p90,
            p99,
            p999,
            max: h.max(),
        }
    }
}

/// The outcome of a run. Rates, bytes, messages and latency cover the measured window;
/// connection, gap, error and close counts cover the whole run.
#[derive(Debug, Clone, Serialize)]
pub struct LoadgenReport {
    /// Server URL.
    pub url: String,
    /// Connections asked for.
    pub clients: usize,
    /// WebSocket handshakes completed.
    pub connections_ok: u64,
    /// Connections that failed before their handshake completed (or timed out).
    pub connections_failed: u64,
    /// Open connections that ended before the loadgen closed them.
    pub connections_lost: u64,
    /// Connections whose `subscribe` was acknowledged.
    pub subscribed: u64,
    /// Length of the measured window, s.
    pub measured_secs: f64,
    /// Text messages received in the window.
    pub messages: u64,
    /// `messages` per second.
    pub messages_per_sec: f64,
    /// Payload bytes of those messages.
    pub bytes: u64,
    /// `bytes` per second.
    pub bytes_per_sec: f64,
    /// Fewest messages any open connection got in the window.
    pub conn_messages_min: u64,
    /// Most messages any connection got in the window.
    pub conn_messages_max: u64,
    /// Streams (per connection) with at least one gap.
    pub gap_streams: u64,
    /// `seq` jumps.
    pub gaps: u64,
    /// Messages missed in those jumps.
    pub missed: u64,
    /// `seq` going backwards (or an `update` repeating one).
    pub seq_regressions: u64,
    /// Messages without a readable envelope, binary frames.
    pub bad_messages: u64,
    /// `error` replies from the server.
    pub error_replies: u64,
    /// Close frames the server sent first, by code.
    pub closes: BTreeMap<u16, u64>,
    /// Sockets that failed (including resets without a close frame) while open.
    pub io_errors: u64,
    /// The first few distinct failure reasons and error replies.
    pub errors: Vec<String>,
    /// `arrival - recv_ns` in the window.
    pub latency_ns: LatencySummary,
    /// CPU time of the loadgen thread during the window, s.
    pub cpu_secs: f64,
    /// That, in percent of one core.
    pub cpu_pct: f64,
    /// Every latency sample of the window, ns.
    #[serde(skip)]
    pub histogram: Histogram<u64>,
}

impl LoadgenReport {
    /// A report with nothing counted yet, for `clients` connections to `url`.
    pub(super) fn new(url: String, clients: usize, histogram: Histogram<u64>) -> LoadgenReport {
        LoadgenReport {
            url,
            clients,
            connections_ok: 0,
            connections_failed: 0,
            connections_lost: 0,
            subscribed: 0,
            measured_secs: 0.0,
            messages: 0,
            messages_per_sec: 0.0,
            bytes: 0,
            bytes_per_sec: 0.0,
            conn_messages_min: 0,
            conn_messages_max: 0,
            gap_streams: 0,
            gaps: 0,
            missed: 0,
            seq_regressions: 0,
            bad_messages: 0,
            error_replies: 0,
            closes: BTreeMap::new(),
            io_errors: 0,
            errors: Vec::new(),
            latency_ns: LatencySummary::default(),
            cpu_secs: 0.0,
            cpu_pct: 0.0,
            histogram,
        }
    }
}

impl std::fmt::Display for LoadgenReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let us = |ns: u64| ns as f64 / 1e3;
        writeln!(f, "tape loadgen: {} clients on {}", self.clients, self.url)?;
        writeln!(
            f,
            "  connections  {} ok, {} failed, {} lost, {} subscribed",
            self.connections_ok, self.connections_failed, self.connections_lost, self.subscribed
        )?;
        writeln!(
            f,
            "  messages     {} in {:.1} s ({:.1}/s), {} bytes ({:.1} MB/s), per connection {}..{}",
            self.messages,
            self.measured_secs,
            self.messages_per_sec,
            self.bytes,
            self.bytes_per_sec / 1e6,
            self.conn_messages_min,
            self.conn_messages_max
        )?;
        writeln!(
            f,
            "  gaps         {} streams, {} jumps, {} messages missed; {} seq regressions",
            self.gap_streams, self.gaps, self.missed, self.seq_regressions
        )?;
        let closes: Vec<String> = self
            .closes
            .iter()
            .map(|(c, n)| format!("{c} x{n}"))
            .collect();
        writeln!(
            f,
            "  errors       {} bad messages, {} error replies, {} io errors; closes by server: {}",
            self.bad_messages,
            self.error_replies,
            self.io_errors,
            if closes.is_empty() {
                "none".into()
            } else {
                closes.join(", ")
            }
        )?;
        for e in &self.errors {
            writeln!(f, "               {e}")?;
        }
        let l = &self.latency_ns;
        writeln!(
            f,
            "  latency us   n={} p50 {:.1} p90 {:.1} p99 {:.1} p99.9 {:.1} max {:.1}",
            l.count,
            us(l.p50),
            us(l.p90),
            us(l.p99),
            us(l.p999),
            us(l.max)
        )?;
        write!(
            f,
            "  loadgen cpu  {:.2} s ({:.1}% of one core)",
            self.cpu_secs, self.cpu_pct
        )
    }
}

/// CPU time of the calling thread, ns: `/proc/thread-self/schedstat` (ns), else
/// `/proc/thread-self/stat` utime + stime (ticks of 10 ms).
pub fn thread_cpu_ns() -> Option<u64> {
    if let Ok(s) = std::fs::read_to_string("/proc/thread-self/schedstat") {
        if let Some(ns) = s.split_whitespace().next().and_then(|v| v.parse().ok()) {
            return Some(ns);
        }
    }
    let s = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let mut f = s.get(s.rfind(')')? + 1..)?.split_whitespace().skip(11);
    let ticks: u64 = f.next()?.parse::<u64>().ok()? + f.next()?.parse::<u64>().ok()?;
    Some(ticks * 10_000_000)
}

/// An HdrHistogram interval log (format 1.3, V2 compressed histograms, ns).
pub(super) struct IntervalLog {
    out: io::BufWriter<std::fs::File>,
    ser: V2DeflateSerializer,
}

impl IntervalLog {
    pub(super) fn create(path: &std::path::Path, base_s: f64) -> io::Result<IntervalLog> {
        let mut out = io::BufWriter::new(std::fs::File::create(path)?);
        writeln!(out, "#[tape loadgen: arrival - recv_ns, values in ns]")?;
        writeln!(out, "#[BaseTime: {base_s:.3} (seconds since epoch)]")?;
        writeln!(out, "#[StartTime: {base_s:.3} (seconds since epoch)]")?;
        writeln!(out, "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"")?;
        Ok(IntervalLog {
            out,
            ser: V2DeflateSerializer::new(),
        })
    }

    pub(super) fn write(
        &mut self,
        h: &Histogram<u64>,
        start: Duration,
        len: Duration,
    ) -> io::Result<()> {
        IntervalLogWriterBuilder::new()
            .with_max_value_divisor(1.0)
            .begin_log_with(&mut self.out, &mut self.ser)?
            .write_histogram(h, start, len, None)
            .map_err(io::Error::other)?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_threads_cpu_time() {
        let a = thread_cpu_ns().unwrap();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_add(std::hint::black_box(i));
        }
        assert!(x > 0);
        assert!(thread_cpu_ns().unwrap() >= a);
    }
}
