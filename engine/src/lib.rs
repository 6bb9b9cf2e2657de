//! tape's sans-IO core.
//!
//! Bytes and `now` go in, events come out: nothing in this crate's core reads a clock, a
//! socket, a file or an environment variable, which is what makes a journal replay bit-exact.
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
pub mod live;
pub mod metrics;
pub mod msg;
pub mod net;
pub mod node;
pub mod output;
pub mod server;
pub mod ticker;
pub mod venue;
