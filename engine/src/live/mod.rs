//! Live exchange feeds: the io layer that connects tape to a venue.
//!
//! Like `net`, this is io code around the sans-IO core: it owns sockets, threads and the
//! clock, and turns what it receives into journal records `(recv time, source, kind, bytes)`
//! that go through the journal and then the [`Engine`](crate::engine::Engine), exactly as a
//! replay would feed them.
//!
//! - `tls`: the rustls client configuration (webpki roots plus an optional extra CA file).

mod tls;

pub use tls::{client_tls_config, ClientTlsError};
