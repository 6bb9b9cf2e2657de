//! The sans-IO side of a venue link: the pure decisions the node's io code acts on.
//!
//! - `backoff`: reconnect delays, exponential with full jitter (seeded, so replayable).
//! - `snapshot`: Binance's REST depth URLs and the [`SnapshotScheduler`] (dedupe, per-venue
//!   rate limit, backoff, expiry).

mod backoff;
mod snapshot;

pub use backoff::Backoff;
pub use snapshot::{
    depth_url, SchedulerConfig, SchedulerCounters, SnapshotRequest, SnapshotScheduler,
};
