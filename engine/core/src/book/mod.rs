//! L2 order books and Binance depth synchronisation.
//!
//! [`OrderBook`] is one instrument's price ladder; [`BookSync`] bridges a REST snapshot to the
//! diff stream with Binance's spot or futures rules and reports [`BookEvent`]s.

mod event;
mod ladder;
mod sync;

pub use event::{encode_book_event, BookEvent, ResyncReason};
pub use ladder::{LevelChange, LevelIter, OrderBook};
pub use sync::{
    BookSync, SyncLimits, SyncState, SyncStats, DEFAULT_MAX_BUFFERED_EVENTS,
    DEFAULT_MAX_BUFFERED_LEVELS,
};

#[cfg(test)]
mod tests;
