//! The client protocol (`docs/protocol.md`) as a sans-IO state machine.
//!
//! [`Hub`] owns every client session: subscriptions, outboxes, request budgets, heartbeats.
//! The transport (sockets, TLS, WebSocket framing) lives elsewhere and drives it in the shape
//! of quinn-proto: inputs are `handle_*` calls that all take `now`, outputs are polled.
//!
//! ```text
//!   transport                         Hub                               engine
//!   ─────────                         ───                               ──────
//!   accept ───────── handle_open ──>  session
//!   text frame ───── handle_text ──>  request -> reply/error queued
//!   any frame ────── handle_heard ─>  heartbeat clock
//!                                     handle_output <── every Output, in order, right
//!                                                       after the record that caused it
//!   poll_ready ─── which conn has data?
//!   poll_transmit ─ next message (shared bytes) for that conn
//!   handle_timeout ─ Ping / Close actions (poll_timeout says when)
//!   closed ───────── handle_closed
//! ```
//!
//! The hub reads the engine only through [`MarketView`] (instruments, live books, the desk):
//! it never changes engine state, and the trait says exactly what it depends on.
//!
//! **Ordering contract.** Feed every [`Output`](crate::output::Output) to
//! [`Hub::handle_output`] right after the [`Engine::handle_record`](crate::engine::Engine)
//! call that produced it, before the next `handle_text` or `poll_transmit`: snapshots are
//! read from the engine's live books and stamped with the hub's current `seq`, which is only
//! right when the hub has seen every output the book reflects.
//!
//! Each channel message is serialized once into a [`Utf8Bytes`] and its handle cloned into
//! every subscriber's outbox (a reference-count increment and a push). Iteration that reaches
//! output (fan-out, timeouts, statistics) is in [`ConnId`] order.

mod conn;
mod history;
mod hub;
mod log_status;
mod messages;
mod private;
mod publish;
mod request;
mod resume;
mod sessions;
mod stats;
mod streams;
mod subscribe;
mod view;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_edge;
#[cfg(test)]
mod tests_private;
#[cfg(test)]
mod tests_replay;
#[cfg(test)]
mod tests_requests;
#[cfg(test)]
mod tests_resume;
#[cfg(test)]
mod tests_resume_private;
#[cfg(test)]
mod tests_util;

pub use conn::ConnCounters;
pub use history::{HistoryBudget, HistoryConfig};
pub use hub::Hub;
pub use log_status::LogStatus;
pub use private::PrivateStats;
pub use stats::{ConnStats, Disconnects, HubStats, ResumeStats};
pub use tungstenite::Utf8Bytes;
pub use view::MarketView;

use crate::instrument::InstrumentId;
use crate::wire::{
    CLOSE_HEARTBEAT_TIMEOUT, CLOSE_SLOW_CONSUMER, CLOSE_TOO_MANY_CONNECTIONS, CLOSE_TOO_MANY_ERRORS,
};

/// A client connection, as the transport numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub usize);

/// Most levels per side a book snapshot may ask for.
pub const MAX_BOOK_DEPTH: usize = 1000;

/// The node's journal as the `status` channel's `journal` entry shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalStatus {
    /// The node cannot journal: it applies no input and takes no order until it can.
    pub degraded: bool,
    /// Why (the journal's error), or what ended it.
    pub reason: String,
    /// Inputs that arrived while degraded and were neither journaled nor applied.
    pub skipped_inputs: u64,
    /// When the state began, ns since the epoch.
    pub since_ns: u64,
}

/// Limits and timers of the client protocol. Every field has the documented default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubConfig {
    /// Open connections allowed; one more gets error 4003 and close 4003. Default 1000.
    pub max_connections: usize,
    /// Largest request accepted, in bytes; larger gets error 4008. Default 64 KiB.
    pub max_message_bytes: usize,
    /// Subscriptions per connection; more gets error 4009. Default 500.
    pub max_subscriptions: usize,
    /// Request budget refill per second (token bucket); over it, error 4007. Default 20.
    pub requests_per_sec: u32,
    /// Request budget size (burst). Default 40.
    pub request_burst: u32,
    /// Bad requests in a row before close 1008. Default 10.
    pub max_errors: u32,
    /// Channel messages queued per connection before conflation. Default 100.
    pub outbound_queue: usize,
    /// Replies and errors queued per connection (a separate budget, so replies are never
    /// conflated); exceeding it closes with 4010. Default 100.
    pub max_queued_replies: usize,
    /// How long a connection may stay behind before close 4010, ns. Default 5 s.
    pub slow_client_timeout_ns: u64,
    /// Ping interval, ns; silent for two intervals closes with 4011. Zero disables
    /// heartbeats. Default 30 s.
    pub heartbeat_interval_ns: u64,
    /// Book snapshot depth when a request names none (1 to [`MAX_BOOK_DEPTH`]). Default 20.
    pub default_book_depth: usize,
    /// What each stream keeps for `resume` (see [`HistoryConfig`] for the defaults).
    pub history: HistoryConfig,
    /// This run of the node (any number that differs between runs, e.g. the start time in
    /// ns), given in `subscribed` replies: a `resume` naming another run's `seq`s gets fresh
    /// state (`restarted`) instead of another run's messages. 0: none given, none checked.
    pub run_id: u64,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            max_connections: 1000,
            max_message_bytes: 64 << 10,
            max_subscriptions: 500,
            requests_per_sec: 20,
            request_burst: 40,
            max_errors: 10,
            outbound_queue: 100,
            max_queued_replies: 100,
            slow_client_timeout_ns: 5_000_000_000,
            heartbeat_interval_ns: 30_000_000_000,
            default_book_depth: 20,
            history: HistoryConfig::default(),
            run_id: 0,
        }
    }
}

/// Something the transport must do for the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send a WebSocket ping.
    Ping(ConnId),
    /// Transmit what [`Hub::poll_transmit`] still yields for `conn` (at most the error that
    /// explains the close), then close the WebSocket with `code` and `reason`, then call
    /// [`Hub::handle_closed`].
    Close {
        /// The connection.
        conn: ConnId,
        /// WebSocket close code.
        code: u16,
        /// Human-readable reason for the close frame.
        reason: String,
    },
}

/// A data channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Channel {
    /// Best bid and ask of tape's own book.
    Bbo = 0,
    /// Every trade.
    Trades = 1,
    /// 24h statistics.
    Ticker = 2,
    /// L2 book: snapshot, then updates.
    Book = 3,
    /// Venue connection status (not per instrument: its streams are keyed by the venue's
    /// source id).
    Status = 4,
}

impl Channel {
    /// Every market-data channel (per instrument), in index order.
    pub const ALL: [Channel; 4] = [
        Channel::Bbo,
        Channel::Trades,
        Channel::Ticker,
        Channel::Book,
    ];

    /// The protocol name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Bbo => "bbo",
            Channel::Trades => "trades",
            Channel::Ticker => "ticker",
            Channel::Book => "book",
            Channel::Status => "status",
        }
    }

    /// Parses a protocol name (exact, lower case).
    pub fn parse(s: &str) -> Option<Channel> {
        match s {
            "status" => Some(Channel::Status),
            _ => Channel::ALL.into_iter().find(|c| c.as_str() == s),
        }
    }

    #[inline]
    fn index(self) -> usize {
        self as usize
    }
}

/// One stream: a channel of one instrument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct StreamKey {
    pub channel: Channel,
    pub instrument: InstrumentId,
}

impl StreamKey {
    pub(crate) fn new(channel: Channel, instrument: InstrumentId) -> Self {
        StreamKey {
            channel,
            instrument,
        }
    }
}
