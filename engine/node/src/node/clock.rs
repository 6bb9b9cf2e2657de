//! The node's one clock: wall time as ns since the Unix epoch, advancing monotonically, and the
//! stage timer that reads it between the core's stage marks.
//!
//! Every epoch timestamp in tape's io layer and tools (receive times, `recv_ns` in client
//! messages, load generators measuring tick-to-client) comes from a [`WallClock`], so two
//! readings on one machine are comparable whichever program took them.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tape_core::engine::{Probe, Stage};
use tape_core::metrics::{Latency, LatencyStage};

/// The wall clock, read as ns since the Unix epoch but advancing monotonically: the epoch is
/// read once, then `Instant` carries it, so a clock step (NTP) never makes time run backwards.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    base_unix_ns: u64,
    base: Instant,
}

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Reads of the epoch around the monotonic base closer than this are taken at once.
const BASE_READ_NS: u64 = 2_000;

impl Default for WallClock {
    /// Pairs the epoch with a monotonic base, read back to back. A thread preempted between
    /// the two reads would offset every later reading by the preemption (milliseconds on a
    /// busy host), and two programs' clocks (the engine's `recv_ns`, a client's arrival time)
    /// would then disagree by that much: so the base is read between two epoch reads, paired
    /// with their midpoint, and read again (a few times at most) while the two are far apart.
    fn default() -> Self {
        let mut best: Option<(u64, u64, Instant)> = None;
        for _ in 0..64 {
            let before = unix_ns();
            let base = Instant::now();
            let after = unix_ns();
            let gap = after.saturating_sub(before);
            if best.is_none_or(|(g, _, _)| gap < g) {
                best = Some((gap, before + gap / 2, base));
            }
            if gap <= BASE_READ_NS {
                break;
            }
        }
        let (_, base_unix_ns, base) = best.unwrap_or_else(|| (0, unix_ns(), Instant::now()));
        WallClock { base_unix_ns, base }
    }
}

impl WallClock {
    /// Now, in ns since the Unix epoch.
    #[inline]
    pub fn now(&self) -> u64 {
        self.base_unix_ns + self.base.elapsed().as_nanos() as u64
    }
}

/// Times the stages inside [`Engine::handle_record_probed`](tape_core::engine::Engine::handle_record_probed):
/// each [`Stage`] mark records the time since the previous mark (or since `start_ns`) as
/// [`LatencyStage::Decode`] or [`LatencyStage::Apply`]. `tape run`'s loop and
/// `tape replay --latency` both use it.
#[derive(Debug)]
pub struct StageTimer<'a> {
    clock: &'a WallClock,
    last: u64,
    latency: &'a mut Latency,
}

impl<'a> StageTimer<'a> {
    /// A timer whose first stage starts at `start_ns` (a [`WallClock::now`] reading).
    pub fn new(clock: &'a WallClock, start_ns: u64, latency: &'a mut Latency) -> Self {
        StageTimer {
            clock,
            last: start_ns,
            latency,
        }
    }

    /// The clock reading of the last mark (`start_ns` before any).
    pub fn last(&self) -> u64 {
        self.last
    }
}

impl Probe for StageTimer<'_> {
    fn mark(&mut self, stage: Stage) {
        let t = self.clock.now();
        let s = match stage {
            Stage::Decoded => LatencyStage::Decode,
            Stage::Applied => LatencyStage::Apply,
        };
        self.latency.record(s, t.saturating_sub(self.last));
        self.last = t;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_epoch_and_never_runs_backwards() {
        let clock = WallClock::default();
        let sys = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        let a = clock.now();
        // Within a minute of the system's epoch reading (a sanity bound, not a timing test).
        assert!(a.abs_diff(sys) < 60_000_000_000, "{a} vs {sys}");
        let b = clock.now();
        assert!(b >= a);
    }
}
