//! The library behind the `tape` binary: import, replay, dump, verify and the venue
//! simulator, usable from tests and benchmarks.
#![forbid(unsafe_code)]

pub mod config;
pub mod dump;
pub mod import;
pub mod replay;
pub mod run;
pub mod sim;
