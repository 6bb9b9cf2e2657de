//! tape's io layer: everything that touches a socket, a thread, a file or the clock, driving the
//! sans-IO core (`tape-core`).
//!
//! - `net`: the client-facing WebSocket/HTTP/TLS transport on mio.
//! - `live`: venue connections (TLS WebSocket client, REST snapshot fetcher thread, order
//!   gateway) as a queue of journal records.
//! - `node`: the engine thread's mio loop that journals each input, hands it to the core and
//!   writes what the core produces.
//! - `replay`: replay on demand (`/replay`, `/replay.ndjson`), one thread per session.
//! - `shm`: the shared-memory publication (`tape-shm`'s files) fed from the engine's outputs.
//! - `latency_log`: HdrHistogram interval logs of the stage histograms.
//! - `transport`: the non-blocking byte stream (TCP, or rustls over it) under both the
//!   server's connections and the venue/loadgen client WebSockets.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod latency_log;
pub mod live;
pub mod nats;
pub mod net;
pub mod node;
pub mod replay;
pub mod shm;
mod transport;
