//! tape's sans-IO core.
//!
//! Bytes and `now` go in, events come out: nothing in this crate reads a clock, a socket, a
//! file or an environment variable, which is what makes a journal replay bit-exact. The
//! compiler holds it to that: this crate depends on no socket, TLS, HTTP or channel crate; the
//! io layer that drives it is `tape-node`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod account;
pub mod auth;
pub mod book;
pub mod decode;
pub mod desk;
pub mod engine;
pub mod fixed;
pub mod input;
pub mod instrument;
pub mod link;
pub mod metrics;
pub mod msg;
pub mod output;
pub mod record;
pub mod server;
pub mod sign;
pub mod ticker;
pub mod venue;
pub mod wire;
