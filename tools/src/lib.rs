//! The library behind the `tape` binary: import, synth, replay, dump, verify, the venue
//! simulator, the client load generator and the shared-memory reader, usable from tests and
//! benchmarks.
#![deny(unsafe_code)]

pub mod alloc;
pub mod config;
pub mod dump;
pub mod import;
pub mod loadgen;
mod pipeline;
pub mod replay;
pub mod run;
pub mod shm_read;
pub mod sim;
pub mod synth;
