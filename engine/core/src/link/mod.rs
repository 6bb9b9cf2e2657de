//! The sans-IO side of a venue link: the pure decisions the node's io code acts on.
//!
//! - `backoff`: reconnect delays, exponential with full jitter (seeded, so replayable).
//! - `snapshot`: Binance's REST depth URLs and the [`SnapshotScheduler`] (dedupe, per-venue
//!   rate limit, backoff, expiry).
//! - `venue`: the [`VenueLink`] state machine of one venue connection (phases, connect
//!   timeout, ping after quiet, stall, reconnect with [`Backoff`], the journaled link events).

mod backoff;
mod snapshot;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_util;
mod venue;

pub use backoff::Backoff;
pub use snapshot::{
    depth_url, SchedulerConfig, SchedulerCounters, SnapshotRequest, SnapshotScheduler,
};
pub use venue::{HealthyAfter, LinkAction, LinkConfig, VenueLink};
