//! Counters of the client protocol, for `/status` and `/metrics`.

use std::collections::BTreeMap;

use super::conn::ConnCounters;
use super::ConnId;

/// Connections closed by the hub, by cause.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Disconnects {
    /// Refused at open: too many connections (4003).
    pub too_many_connections: u64,
    /// Slow consumers (4010), including clients that let their replies pile up.
    pub slow: u64,
    /// Heartbeat timeouts (4011).
    pub heartbeat: u64,
    /// Too many bad requests in a row (1008).
    pub too_many_errors: u64,
}

/// What `resume` requests did, stream by stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResumeStats {
    /// Streams replayed from history.
    pub resumed: u64,
    /// Streams that got a fresh subscription's state instead (`too_old`, `resynced`,
    /// `restarted`).
    pub fresh: u64,
    /// Messages replayed.
    pub replayed: u64,
}

/// One connection's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnStats {
    /// The connection.
    pub conn: ConnId,
    /// Streams it subscribes to.
    pub subscriptions: usize,
    /// Channel messages (and owed snapshots) queued now.
    pub queued: usize,
    /// Replies queued now.
    pub queued_replies: usize,
    /// Conflated messages held in slots now.
    pub slots: usize,
    /// True while it is behind (see `slow_client_timeout_ns`).
    pub behind: bool,
    /// True once a close was decided.
    pub closing: bool,
    /// Running counters.
    pub counters: ConnCounters,
}

/// A snapshot of the hub's figures. Maps are ordered, so the output is deterministic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HubStats {
    /// Open connections (refused and closing ones excluded).
    pub connections: usize,
    /// Subscriptions by channel name, over all connections.
    pub subscriptions: BTreeMap<&'static str, usize>,
    /// Requests received (text and binary frames).
    pub requests: u64,
    /// Channel messages serialized (each once, however many subscribers).
    pub published: u64,
    /// Channel messages queued to subscribers (one per subscriber).
    pub delivered: u64,
    /// Messages handed to the transport (channel messages, snapshots and replies).
    pub transmitted: u64,
    /// Error replies by code.
    pub errors: BTreeMap<u16, u64>,
    /// Trades dropped for slow clients.
    pub trades_dropped: u64,
    /// `bbo`/`ticker` messages replaced and `book` streams folded into a fresh snapshot.
    pub conflated: u64,
    /// Connections closed by the hub.
    pub disconnects: Disconnects,
    /// `resume` outcomes.
    pub resumes: ResumeStats,
    /// Every connection still known, in id order.
    pub per_connection: Vec<ConnStats>,
}

/// The sessions' running counters (`published` is counted by the streams).
#[derive(Debug, Clone, Default)]
pub(crate) struct Counters {
    pub requests: u64,
    pub delivered: u64,
    pub transmitted: u64,
    pub errors: BTreeMap<u16, u64>,
    pub trades_dropped: u64,
    pub conflated: u64,
    pub disconnects: Disconnects,
    pub resumes: ResumeStats,
}
