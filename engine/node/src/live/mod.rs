//! Live exchange feeds: the io layer that connects tape to a venue.
//!
//! Like `net`, this is io code around the sans-IO core: it owns sockets, threads and the
//! clock, and turns what it receives into journal records `(recv time, source, kind, bytes)`
//! that go through the journal and then the [`Engine`](tape_core::engine::Engine), exactly as a
//! replay would feed them.
//!
//! - `url`: the one URL parser of the `ws`/`wss` and `http`/`https` clients.
//! - `tls`: the rustls client configuration (webpki roots plus an optional extra CA file).
//! - `https`: a small blocking HTTP/1.1 GET client (keep-alive, chunked, bounded everywhere).
//! - `snapshot`: the [`SnapshotFetcher`] helper thread (REST depth snapshots off the engine
//!   thread) that wakes the engine's mio poll; what to fetch when is decided by the core's
//!   [`SnapshotScheduler`](tape_core::link::SnapshotScheduler).
//! - `handshake`: tape's side of the client WebSocket opening handshake (request, `101`
//!   checks, the bytes behind the head handed back), resumable across `WouldBlock`.
//! - `dial`: a client WebSocket from a connecting TCP socket to open (TLS, handshake), then
//!   frames on a `WebSocketContext` kept apart from the stream; shared with `tape loadgen`.
//! - `ws`: one venue WebSocket connection on the engine's mio loop (resolve, TCP, TLS,
//!   handshake, frames); it keeps no timers and makes no decisions.
//! - `gateway`: the order gateway, one WebSocket to a venue's order API.
//! - `route`: USD-M's routed endpoints (`/public`, `/market`): which stream goes where.
//! - `spec`: [`VenueSpec`] and [`LiveConfig`], what the feed connects to and how.
//! - `feed`: [`LiveFeed`], every venue connection with its snapshots, as a queue of journal
//!   records for the node.
//!
//! When to connect, time out, ping, call a connection stalled, back off and what link records
//! to journal is decided by the core's [`VenueLink`](tape_core::link::VenueLink), one per
//! connection; `feed` and `gateway` feed it what `ws` reports and carry out its actions.

mod dial;
mod feed;
mod gateway;
mod handshake;
mod https;
mod route;
mod snapshot;
mod spec;
#[cfg(test)]
mod testing;
mod tls;
mod url;
mod ws;

pub use dial::{ClientWs, Dial, DialError, DialStep, DialTarget, Stream as ClientStream};
pub use feed::{LiveConfig, LiveFeed, LiveRecord, VenueIo, VenueSpec};
pub use gateway::{Credentials, GatewayIo, GatewayOptions};
pub use handshake::{
    ClientHandshake, HandshakeError, MAX_RESPONSE_HEAD_BYTES as MAX_WS_RESPONSE_HEAD_BYTES,
};
pub use https::{HttpClient, HttpError, HttpResponse, Scheme, Url, MAX_HEAD_BYTES};
pub use route::{routed_stream_url, stream_kind, usdm_base, Endpoint, Routes, UsdmBase};
pub use snapshot::{FetcherOptions, SnapshotDone, SnapshotFetcher, SnapshotJob, FETCH_QUEUE_LEN};
pub use spec::ConnSpec;
pub use tls::{client_tls_config, ClientTlsError};
pub use ws::WsUrl;
