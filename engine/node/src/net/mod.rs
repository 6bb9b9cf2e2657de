//! A non-blocking WebSocket + HTTP/1.1 server transport driven from a caller-owned mio `Poll`.
//!
//! This is the I/O edge of the engine, not part of its sans-IO core: the engine thread owns a
//! `mio::Poll`, hands every event whose token [`NetServer::owns`] to
//! [`NetServer::handle_event`], calls [`NetServer::tick`] once per loop iteration, and acts on
//! the [`NetEvent`]s that come out. There is no thread per client and no call here ever blocks.
//!
//! What lives where:
//! - `http`: request-head parsing (httparse, bounded) and response bytes, sans-IO.
//! - `crate::transport` (shared with the venue clients): the byte stream, plain TCP or rustls
//!   over TCP, non-blocking `Read`/`Write`.
//! - `conn`: one connection's state machine (head, upgrade, WebSocket, lingering close).
//! - `server`: accepting, tokens, connection ids, deadlines and the public API.
//! - `tls`: loading a rustls server configuration from PEM files.
//!
//! Every connection's failure closes that connection only and is counted in [`NetStats`].

mod conn;
// Public (and hidden from the docs) only so the fuzz target `tools/fuzz` `http_head` can
// reach the head parser; not an API.
#[doc(hidden)]
pub mod http;
mod server;
mod tls;

pub use server::NetServer;
pub use tls::{load_tls_config, TlsConfigError};

use std::net::SocketAddr;
use std::sync::Arc;

/// Nanoseconds in a second, for the timeouts in [`NetConfig`].
pub const NS_PER_SEC: u64 = 1_000_000_000;

/// Identifies one client socket for as long as it lives; never reused for a later one. (The
/// hub has its own [`tape_core::server::ConnId`] for the session on it; the node maps them.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SocketId(pub usize);

/// Configuration of a [`NetServer`].
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Path of the client WebSocket endpoint (`/ws`).
    pub ws_path: String,
    /// Upgrade requests on any path starting with this prefix are client WebSockets too (e.g.
    /// `/ws/` for streams named in the path); [`NetEvent::Open`] carries the full path.
    pub ws_path_prefix: Option<String>,
    /// Path of an echo WebSocket endpoint on the same stack (for Autobahn); `None` disables it.
    /// Echo connections are served internally and produce no [`NetEvent`]s.
    pub echo_path: Option<String>,
    /// Hard cap on open sockets (any phase). Connections beyond it are accepted and dropped at
    /// once, counted in [`NetStats::rejected_over_cap`].
    pub max_sockets: usize,
    /// Largest WebSocket message (and frame) accepted on `ws_path`; bigger closes with 1009.
    pub max_message_bytes: usize,
    /// Largest message (and frame) accepted on the echo endpoint.
    pub echo_max_message_bytes: usize,
    /// Largest HTTP request head; bigger is answered with 431 and closed.
    pub max_http_request_bytes: usize,
    /// Bytes a connection may hold in user space, unsent, before [`NetServer::send`] refuses.
    pub write_buffer_limit: usize,
    /// `SO_SNDBUF` of every accepted socket, bytes; 0 leaves the kernel's auto-tuning. A cap
    /// keeps a slow client's backlog out of the kernel (where it can only age) and in the
    /// caller's queue (where, for tape's hub, it is conflated): on loopback the auto-tuned
    /// buffer grows to megabytes, seconds of messages for a client that reads slowly.
    pub send_buffer_bytes: usize,
    /// Time from accept to a complete upgrade (or an HTTP response) before the socket is dropped.
    pub handshake_timeout_ns: u64,
    /// Time from accept to the first byte before the socket is dropped: an idle socket costs a
    /// slot and a file descriptor, and a real client sends at once, so this is much shorter
    /// than `handshake_timeout_ns`.
    pub first_byte_timeout_ns: u64,
    /// Sockets still in their handshake (request head, awaiting an HTTP answer, writing the
    /// 101) at most, all addresses together. A new one beyond it evicts the oldest, so a flood
    /// of sockets that never finish cannot keep new clients out; completed connections are
    /// not in this pool. Counted in [`NetStats::handshakes_evicted`].
    pub max_handshaking: usize,
    /// Sockets in their handshake from one IP address at most; a new one beyond it is closed
    /// at once (no byte is read), counted in [`NetStats::rejected_per_ip`]. 0 = no limit.
    pub max_handshaking_per_ip: usize,
    /// Exempt loopback peers (127.0.0.0/8, ::1) from `max_handshaking_per_ip` and
    /// `max_anonymous_per_ip`, for a local proxy that funnels every client through one address.
    pub per_ip_exempt_loopback: bool,
    /// Open WebSocket sessions that have not authenticated, from one IP address, at most; one
    /// more is closed with 4003 at once (enforced by the node, which sees both the address and
    /// the session). A session that authenticates stops counting. 0 = no limit.
    pub max_anonymous_per_ip: usize,
    /// Bytes of unfinished WebSocket messages held across all connections at most. A
    /// connection whose unfinished message would take the total beyond it is closed (1008),
    /// counted in [`NetStats::partial_budget_closed`]: many slow senders each holding a large
    /// partial message cannot pin memory without bound.
    pub max_partial_bytes: usize,
    /// Time a closing connection (close handshake, flushing a response, lingering close) may
    /// take before the socket is dropped.
    pub close_timeout_ns: u64,
    /// Serve TLS (`wss://`, `https://`) with this configuration.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            ws_path: "/ws".to_owned(),
            ws_path_prefix: None,
            echo_path: None,
            max_sockets: 1024,
            max_message_bytes: 64 * 1024,
            // Autobahn 9.x sends 16 MiB messages; leave room for frame overhead.
            echo_max_message_bytes: 16 * 1024 * 1024 + 64 * 1024,
            max_http_request_bytes: 8 * 1024,
            write_buffer_limit: 1024 * 1024,
            send_buffer_bytes: 0,
            handshake_timeout_ns: 10 * NS_PER_SEC,
            first_byte_timeout_ns: 2 * NS_PER_SEC,
            max_handshaking: 512,
            max_handshaking_per_ip: 64,
            per_ip_exempt_loopback: false,
            max_anonymous_per_ip: 256,
            max_partial_bytes: 64 * 1024 * 1024,
            close_timeout_ns: 5 * NS_PER_SEC,
            tls: None,
        }
    }
}

/// Something the caller has to know or act on. Produced by [`NetServer::handle_event`] and
/// [`NetServer::tick`].
#[derive(Debug, Clone, PartialEq)]
pub enum NetEvent {
    /// A complete HTTP request that is not a WebSocket handshake on `ws_path`/`echo_path`
    /// (including a plain `GET` on `ws_path`, and an upgrade request on any other path).
    /// Answer it with [`NetServer::respond_http`]; the connection is closed after the response
    /// (or dropped at the handshake deadline if it never comes).
    Http {
        /// The connection to answer on.
        conn: SocketId,
        /// Request method (`GET`, `HEAD`, ...).
        method: String,
        /// Path without the query.
        path: String,
        /// Raw query string after `?`, empty if none.
        query: String,
        /// The `Authorization` header, if any.
        authorization: Option<String>,
        /// The `Host` header, if any.
        host: Option<String>,
        /// `Sec-WebSocket-Accept` for a valid WebSocket upgrade request on a path the server
        /// does not upgrade itself (e.g. `/replay`): the caller may [`NetServer::detach`] the
        /// socket and complete the handshake elsewhere. `None` for any other request.
        ws_accept: Option<String>,
    },
    /// A WebSocket connection on `ws_path` (or under `ws_path_prefix`) completed its opening
    /// handshake.
    Open {
        /// The new connection.
        conn: SocketId,
        /// The request path (`ws_path`, or a path under `ws_path_prefix`).
        path: String,
        /// Raw query string of the upgrade request (e.g. `token=...`).
        query: String,
        /// The peer's address.
        peer: SocketAddr,
    },
    /// A complete text message from a client.
    Text {
        /// The sender.
        conn: SocketId,
        /// The message; shares tungstenite's receive buffer, no copy.
        text: tungstenite::Utf8Bytes,
    },
    /// A complete binary message from a client (the client protocol is text-only).
    Binary {
        /// The sender.
        conn: SocketId,
        /// Message length in bytes.
        len: usize,
    },
    /// A connection that had unsent data buffered (a `send` returned
    /// [`SendResult::Buffered`] or [`SendResult::Refused`]) has now flushed all of it.
    Writable {
        /// The connection.
        conn: SocketId,
    },
    /// An [`NetEvent::Open`]ed connection is gone; emitted exactly once per `Open`.
    Closed {
        /// The connection; its id is dead from now on.
        conn: SocketId,
        /// The close code: the peer's when the peer closed, ours when we closed or failed the
        /// connection (1009, 1002, 1007, ...), `None` when it was dropped without one.
        code: Option<u16>,
        /// The matching reason, or what went wrong.
        reason: String,
    },
}

/// What [`NetServer::send`] did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendResult {
    /// All of it is in the kernel.
    Sent,
    /// Accepted, but part of it (or earlier data) waits in user space: expect
    /// [`NetEvent::Writable`] when it drains.
    Buffered,
    /// Over `write_buffer_limit`: nothing was queued. The connection stays open.
    Refused,
    /// No such open WebSocket connection (closed, closing, unknown, or not a WebSocket).
    Closed,
}

/// Counters since [`NetServer::bind`]. Plain data: copy it into metrics as needed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Sockets accepted (including those dropped over the cap).
    pub accepted: u64,
    /// Sockets dropped at accept because `max_sockets` were open.
    pub rejected_over_cap: u64,
    /// Sockets closed at accept because their address had `max_handshaking_per_ip` sockets
    /// in their handshake.
    pub rejected_per_ip: u64,
    /// Sockets in their handshake dropped to make room in the `max_handshaking` pool.
    pub handshakes_evicted: u64,
    /// Sockets dropped because no byte arrived within `first_byte_timeout_ns` (also in
    /// `timeouts` and `handshake_failures`).
    pub first_byte_timeouts: u64,
    /// Bytes of unfinished WebSocket messages held now, all connections (a gauge).
    pub partial_bytes: usize,
    /// Connections closed (1008) because their unfinished message went over
    /// `max_partial_bytes` together with everyone else's.
    pub partial_budget_closed: u64,
    /// `accept` failures other than `WouldBlock` (e.g. out of file descriptors).
    pub accept_errors: u64,
    /// Non-upgrade HTTP requests delivered as [`NetEvent::Http`].
    pub http_requests: u64,
    /// Successful WebSocket upgrades (client and echo endpoints).
    pub upgrades: u64,
    /// Malformed or oversized request heads, refused upgrades (400/431) and handshake timeouts.
    pub handshake_failures: u64,
    /// WebSocket protocol violations: bad frames, invalid UTF-8, messages over the limit.
    pub protocol_errors: u64,
    /// Connections failed by TLS (handshake failure, bad records).
    pub tls_errors: u64,
    /// Connections dropped on an I/O error (reset, broken pipe, EOF without a close frame).
    pub io_errors: u64,
    /// Connections dropped at a handshake or closing deadline.
    pub timeouts: u64,
    /// [`NetServer::send`] calls answered [`SendResult::Refused`].
    pub send_refused: u64,
    /// WebSocket data messages received.
    pub messages_in: u64,
    /// WebSocket data messages queued for sending (including echoes).
    pub messages_out: u64,
    /// Raw socket bytes read (TLS records included).
    pub bytes_in: u64,
    /// Raw socket bytes written (TLS records included).
    pub bytes_out: u64,
}
