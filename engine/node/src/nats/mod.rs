//! Scale-out over NATS: the origin publishes every journal record it appends, edges apply
//! the same records to their own engine and serve their own clients (see docs/scale-out.md).
//!
//! The engine is deterministic, so replicating its input log replicates everything: an
//! edge's books, `seq`s and digest are the origin's. The NATS client (`async-nats`) runs on
//! a helper thread with a current-thread tokio runtime; the engine thread only hands records
//! over (origin: a bounded channel, `try_send`, never blocking) or takes them (edge: a
//! crossbeam channel and a mio `Waker`).
//!
//! - `wire.rs`: a record as a message body (versioned header + raw bytes).
//! - `continuity.rs`: the edge's in-order, gap-detecting check.
//! - `origin.rs`: the publisher (JetStream stream per run, acknowledged in order).
//! - `edge.rs` + `edge_thread.rs`: the edge's [`Feed`](crate::node::Feed) and its thread.
//! - `command.rs`: an edge's private commands, forwarded to the origin.

mod command;
mod continuity;
mod edge;
mod edge_thread;
mod origin;
mod wire;

pub use command::{to_global, to_local, CommandError, CONN_SHIFT, MAX_EDGE_ID};
pub use continuity::{Continuity, Verdict};
pub use edge::EdgeFeed;
pub use origin::{Command, Publisher};
pub use wire::{
    decode_heartbeat, encode_heartbeat, WireError, WireRecord, HEADER_LEN, NOT_JOURNALED,
};

use std::time::Duration;

/// The NATS side of a node, origin or edge (`[nats]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsConfig {
    /// Server URL(s), comma-separated (`nats://127.0.0.1:4222`).
    pub url: String,
    /// Subject of the records (the stream's only subject); heartbeats go to `<subject>.hb`.
    pub subject: String,
    /// The JetStream stream that keeps the records for edges that start late or miss some.
    pub stream: String,
    /// The stream keeps records at most this long (0: no age limit).
    pub max_age: Duration,
    /// ... and at most this many bytes (JetStream drops the oldest beyond).
    pub max_bytes: i64,
    /// Origin: how often it says it is alive and how far its log is.
    pub heartbeat: Duration,
    /// Edge: no heartbeat for this long and the origin counts as silent (books stale).
    pub origin_timeout: Duration,
    /// Origin: records it may hold unacknowledged (NATS down or slow) before it gives up on
    /// this run's log (said in `/status`; edges then stay stale, never wrong).
    pub max_backlog: usize,
    /// Edge: its id in 1..=[`MAX_EDGE_ID`], unique in the deployment (the prefix of its
    /// clients' connection ids at the origin; see `command.rs`).
    pub edge_id: u32,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            url: "nats://127.0.0.1:4222".into(),
            subject: "tape.log".into(),
            stream: "TAPE_LOG".into(),
            max_age: Duration::from_secs(24 * 3600),
            max_bytes: 8 << 30,
            heartbeat: Duration::from_millis(500),
            origin_timeout: Duration::from_secs(3),
            max_backlog: 4_000_000,
            edge_id: 1,
        }
    }
}

impl NatsConfig {
    /// The subject edges send their clients' commands to.
    pub fn command_subject(&self) -> String {
        format!("{}.cmd", self.subject)
    }

    /// The heartbeat subject.
    pub fn heartbeat_subject(&self) -> String {
        format!("{}.hb", self.subject)
    }
}

/// The small runtime each helper thread runs its client on.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}
