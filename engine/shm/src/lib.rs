//! tape's shared-memory publication: the engine's books and accounts, readable by colocated
//! processes without a system call, a copy through the kernel or a lock.
//!
//! The engine thread writes, after the journal append and the apply of each input, into
//! memory-mapped files in one directory (`/dev/shm/tape` unless configured):
//!
//! * `market.shm`: a directory of instruments and, per instrument, its top of book, the first
//!   N levels per side, the last trade, the 24h ticker, the book's sync state and update id
//!   and the receive time of the input that produced each;
//! * `user-NAME.shm`, per user of the trading desk: portfolio summary, positions, open
//!   orders; its mode (and group) let only the accounts the config names open it, so the
//!   kernel, not a convention, keeps other users out.
//!
//! Every record is a seqlock (one writer, any number of readers; the writer never waits, a
//! reader retries while a write overlaps its copy): see the `shared` module's protocol and
//! `docs/shm.md` for the layout, every field's offset and type, and the read protocol with
//! its memory ordering, for readers in any language (`tape_shm.h` for C,
//! `examples/shm_reader.py` for Python).
//!
//! * [`Reader`] and [`UserReader`]: the safe reading API (`Reader::open`, `bbo`, `levels`,
//!   `wait_change`, ...).
//! * [`ShmDir`], [`MarketWriter`], [`UserWriter`]: the writer (`tape-node` turns the engine's
//!   outputs into these calls; each write is a few stores into the map, no system call, no
//!   allocation).
//! * [`layout`]: offsets, sizes, codes and the records' plain values, defined once.
//!
//! `unsafe` lives in one module, `shared` (the mappings and their view as atomic words),
//! with its contract in its `# Safety` section.
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(target_endian = "big")]
compile_error!(
    "the shared-memory layout is little-endian; tape-shm builds for little-endian targets only"
);

#[cfg(not(target_pointer_width = "64"))]
compile_error!("tape-shm needs native 8-byte atomics (a 64-bit target)");

mod error;
pub mod layout;
mod options;
mod reader;
#[allow(unsafe_code)]
mod shared;
mod writer;

pub use error::{OpenError, OptionsError, ReadError, ShmError};
pub use layout::{
    BookState, Dec, Depth, DepthHead, InstrumentKey, Level, MarketCode, Order, OrderId, Portfolio,
    Position, Symbol, Ticker, Top, Trade,
};
pub use options::{
    check_mode, check_user, parse_mode, resolve_group, resolve_group_in, MarketOptions,
    UserOptions, DEFAULT_LEVELS, DEFAULT_MARKET_MODE, DEFAULT_MAX_INSTRUMENTS, DEFAULT_MAX_ORDERS,
    DEFAULT_MAX_POSITIONS, DEFAULT_USER_MODE,
};
pub use reader::{Instrument, Reader, UserReader, WriterStatus, STALL_TIMEOUT};
pub use writer::{MarketWriter, ShmDir, Slot, UserWriter};

/// The default directory: tmpfs, so the files live in memory only.
pub const DEFAULT_DIR: &str = "/dev/shm/tape";
