//! [`MarketView`]: the part of the engine the hub reads, and nothing more.
//!
//! The hub never changes engine state; it reads instrument metadata to name streams, live
//! books to generate snapshots, and the desk to answer `get_*`. Taking this trait instead of
//! `&Engine` keeps that dependency visible and narrow (the hub cannot reach the engine's
//! outputs or its venue side), and lets tests drive the hub from a hand-built market.

use crate::book::BookSync;
use crate::desk::Desk;
use crate::engine::Engine;
use crate::instrument::{InstrumentId, Registry};

/// Read-only market state the hub needs: instruments, books, the trading desk.
pub trait MarketView {
    /// Every instrument, for symbol lookup and naming streams.
    fn registry(&self) -> &Registry;
    /// The live book of `id` (snapshots are generated from it when they are sent).
    fn book(&self, id: InstrumentId) -> Option<&BookSync>;
    /// The trading desk, if one is configured (answers `get_orders` and friends).
    fn desk(&self) -> Option<&Desk>;
}

impl MarketView for Engine {
    fn registry(&self) -> &Registry {
        Engine::registry(self)
    }

    fn book(&self, id: InstrumentId) -> Option<&BookSync> {
        Engine::book(self, id)
    }

    fn desk(&self) -> Option<&Desk> {
        Engine::desk(self)
    }
}
