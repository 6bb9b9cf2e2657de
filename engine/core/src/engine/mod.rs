//! The engine state machine: journal records in, [`Output`]s out.
//!
//! Live mode and replay both call [`Engine::handle_record`] with the record's receive time;
//! the engine never reads a clock, so the same records always give the same outputs (and the
//! same [`Digest`]).
//!
//! The engine is split by idea; every part is an `impl Engine` block over the one struct
//! defined here, so the hot path (`handle_record` -> decode -> book apply -> outputs) is the
//! same code as before, only filed in different places:
//!
//! - this module: the [`Engine`] type, its configuration and record dispatch;
//! - `stats`: the counters behind the replay summary and `/status`;
//! - `sources`: source definitions and their lookup;
//! - `market`: frames and REST snapshots into books, and the [`Bbo`] they publish;
//! - `tickers`: rolling 24h tickers derived from trades where the exchange sends none;
//! - `oracle`: the bookTicker cross-check of each book's top;
//! - `venues`: link records into [`VenueStatus`]es;
//! - `desk`: the trading desk's setup, client records and venue orders;
//! - `intake`: the decoding half of a record on its own ([`Intake`]), for a replay that
//!   decodes on one thread and applies on another;
//! - `outputs`: the client and venue queues and the [`Digest`] over them.

mod desk;
mod intake;
mod market;
mod oracle;
mod outputs;
mod sources;
mod stats;
mod tickers;
mod venues;

use std::collections::VecDeque;

use crate::book::{BookEvent, BookSync, SyncLimits};
use crate::decode::Decoder;
use crate::desk::Desk;
use crate::input::{Nanos, RecordKind, SourceId};
use crate::instrument::{Market, Registry};
use crate::msg::BookTicker;
use crate::output::{Bbo, Digest, Error, Event, Output, VenueCommand};
use crate::ticker::TradeStats;
use crate::venue::VenueStatus;

pub use intake::{AdoptError, Intake, Intaken};
pub use oracle::MAX_PENDING_ORACLE;
pub use stats::{EngineStats, MessageCounts, OutputCounts, MESSAGE_KINDS, OUTPUT_KINDS};

use sources::Source;

/// A stage boundary inside [`Engine::handle_record_probed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The frame or snapshot has been decoded.
    Decoded,
    /// Its effects (book, outputs) have been applied.
    Applied,
}

/// Receives stage boundaries so the io layer can time them; the core itself never reads a
/// clock. [`NoProbe`] compiles to nothing.
pub trait Probe {
    /// Called once per stage boundary reached by the record being handled.
    fn mark(&mut self, stage: Stage);
}

/// A probe that records nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProbe;

impl Probe for NoProbe {
    #[inline(always)]
    fn mark(&mut self, _: Stage) {}
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Register symbols seen in frames that were not configured (with the default scale).
    pub auto_register: bool,
    /// Limits on each book's buffer of not-yet-applied diffs.
    pub sync_limits: SyncLimits,
    /// Publish rolling 24h statistics computed from trades for instruments whose feed has no
    /// exchange ticker stream.
    pub derive_tickers: bool,
    /// Instruments with explicit scales: (market, symbol, price scale, quantity scale).
    pub instruments: Vec<(Market, String, u8, u8)>,
    /// Most outputs held before the oldest are dropped (and counted); the io layer drains
    /// the queue after every input, so this only bounds a caller that forgets to.
    pub max_queued_outputs: usize,
    /// Keep outputs in the queue for [`Engine::poll_output`] (the default). When false,
    /// every output is still folded into the digest and counted
    /// ([`EngineStats::outputs_by_kind`]) but not kept: for a caller that needs only the
    /// digest and the counts (`tape replay` without `--shm`).
    pub queue_outputs: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            auto_register: true,
            derive_tickers: true,
            sync_limits: SyncLimits::default(),
            instruments: Vec::new(),
            max_queued_outputs: 1 << 20,
            queue_outputs: true,
        }
    }
}

/// The engine: decoders, registry, books, counters and the output queue.
pub struct Engine {
    cfg: EngineConfig,
    registry: Registry,
    /// Boxed and taken out while a decoded message is applied (see `handle_frame`).
    decoder: Option<Box<Decoder>>,
    sources: Vec<Option<Source>>,
    books: Vec<Option<BookSync>>,
    last_bbo: Vec<Option<Bbo>>,
    /// Per instrument: bookTickers ahead of the book (ascending `u`, at most
    /// [`MAX_PENDING_ORACLE`]), each checked when the book reaches its `u`.
    pending_oracle: Vec<VecDeque<BookTicker>>,
    /// Per instrument: trade statistics for derived tickers (`None` once the exchange's own
    /// ticker was seen, or before the first trade).
    trade_stats: Vec<Option<TradeStats>>,
    /// Per instrument: an exchange ticker stream exists, so nothing is derived.
    has_exchange_ticker: Vec<bool>,
    /// Per instrument: the source whose diffs feed its book (`u32::MAX` before any).
    book_source: Vec<u32>,
    /// Per source: the status of the connection behind it, once a link record was seen.
    venues: Vec<Option<VenueStatus>>,
    book_events: Vec<BookEvent>,
    out: VecDeque<Output>,
    /// Commands for venue connections (orders, snapshot requests), oldest first.
    venue_out: VecDeque<VenueCommand>,
    digest: Digest,
    stats: EngineStats,
    /// The trading desk, once a [`RecordKind::DeskSetup`] record created it.
    desk: Option<Box<Desk>>,
}

impl Engine {
    /// A new engine.
    ///
    /// # Errors
    /// A configured instrument that the registry refuses (bad symbol or scale, duplicate).
    pub fn new(cfg: EngineConfig) -> Result<Engine, crate::instrument::RegistryError> {
        let mut registry = Registry::default();
        for (market, symbol, ps, qs) in &cfg.instruments {
            registry.register(*market, symbol, *ps, *qs)?;
        }
        Ok(Engine {
            cfg,
            registry,
            decoder: Some(Box::default()),
            sources: Vec::new(),
            books: Vec::new(),
            last_bbo: Vec::new(),
            pending_oracle: Vec::new(),
            trade_stats: Vec::new(),
            has_exchange_ticker: Vec::new(),
            book_source: Vec::new(),
            venues: Vec::new(),
            book_events: Vec::with_capacity(4096),
            out: VecDeque::with_capacity(4096),
            venue_out: VecDeque::new(),
            digest: Digest::default(),
            stats: EngineStats::default(),
            desk: None,
        })
    }

    /// Handles one input record. Failures are counted, emitted as [`Event::Error`] and
    /// returned; the engine stays usable either way.
    ///
    /// A stored record whose kind this build does not know goes to
    /// [`Engine::handle_unknown_kind`] instead.
    ///
    /// # Errors
    /// The [`Error`] this record caused, if any.
    pub fn handle_record(
        &mut self,
        now: Nanos,
        source: SourceId,
        kind: RecordKind,
        payload: &[u8],
    ) -> Result<(), Error> {
        self.handle_record_probed(now, source, kind, payload, &mut NoProbe)
    }

    /// [`Engine::handle_record`], telling `probe` when decoding and applying end.
    ///
    /// # Errors
    /// As [`Engine::handle_record`].
    pub fn handle_record_probed<P: Probe>(
        &mut self,
        now: Nanos,
        source: SourceId,
        kind: RecordKind,
        payload: &[u8],
        probe: &mut P,
    ) -> Result<(), Error> {
        self.stats.records += 1;
        let res = match kind {
            RecordKind::SourceDef => self.define_source(source, payload),
            RecordKind::WsFrame => self.handle_frame(now, source, payload, probe),
            RecordKind::RestSnapshot => self.handle_snapshot(now, source, payload, probe),
            RecordKind::Link => self.handle_link(now, source, payload),
            RecordKind::DeskSetup => self.handle_desk_setup(payload),
            RecordKind::Client => self.handle_client(now, payload),
            RecordKind::GatewayFrame => self.handle_gateway_frame(now, payload),
            RecordKind::GatewayEvent => self.handle_gateway_event(now, payload),
        };
        if let Err(e) = &res {
            self.reject(now, e);
        }
        res
    }

    /// A stored record whose kind (`kind`, as stored) this build does not know: counted as a
    /// record and rejected as [`Error::UnknownKind`] like any bad record, so a journal
    /// written by a newer build replays with the same counts and digest everywhere.
    pub fn handle_unknown_kind(&mut self, now: Nanos, source: SourceId, kind: u16) -> Error {
        self.stats.records += 1;
        let e = Error::UnknownKind {
            source_id: source,
            kind,
        };
        self.reject(now, &e);
        e
    }

    /// Handles one record as stored in a journal (a raw kind): [`Engine::handle_record`] for
    /// a known kind, [`Engine::handle_unknown_kind`] otherwise. For journal readers.
    ///
    /// # Errors
    /// As [`Engine::handle_record`].
    pub fn handle_stored(
        &mut self,
        now: Nanos,
        source: SourceId,
        kind: u16,
        payload: &[u8],
    ) -> Result<(), Error> {
        self.handle_stored_probed(now, source, kind, payload, &mut NoProbe)
    }

    /// [`Engine::handle_stored`] with a probe (see [`Engine::handle_record_probed`]).
    ///
    /// # Errors
    /// As [`Engine::handle_record`].
    pub fn handle_stored_probed<P: Probe>(
        &mut self,
        now: Nanos,
        source: SourceId,
        kind: u16,
        payload: &[u8],
        probe: &mut P,
    ) -> Result<(), Error> {
        match RecordKind::from_u16(kind) {
            Some(k) => self.handle_record_probed(now, source, k, payload, probe),
            None => Err(self.handle_unknown_kind(now, source, kind)),
        }
    }

    fn reject(&mut self, now: Nanos, e: &Error) {
        *self.stats.errors.entry(e.code()).or_default() += 1;
        self.emit(now, Event::Error(e.clone()));
    }

    /// Counters.
    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// The instrument registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}
