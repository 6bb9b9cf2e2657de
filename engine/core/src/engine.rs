//! The engine state machine: journal records in, [`Output`]s out.
//!
//! Live mode and replay both call [`Engine::handle_record`] with the record's receive time;
//! the engine never reads a clock, so the same records always give the same outputs (and the
//! same [`Digest`]).

use std::collections::{BTreeMap, VecDeque};

use crate::book::{BookEvent, BookSync, SyncLimits};
use crate::decode::{DecodeCtx, Decoder};
use crate::desk::{Desk, DeskError, DeskOutput, DeskSetup, SetupError};
use crate::fixed::{Price, Qty};
use crate::input::{Nanos, RecordKind, SourceDef, SourceId, MAX_SOURCES};
use crate::instrument::{InstrumentId, Market, Registry};
use crate::msg::{BookTicker, Level, MarketMsg};
use crate::output::{Bbo, Digest, Error, Event, Output, VenueCommand};
use crate::ticker::TradeStats;
use crate::venue::{LinkEvent, VenueStatus};

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
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            auto_register: true,
            derive_tickers: true,
            sync_limits: SyncLimits::default(),
            instruments: Vec::new(),
            max_queued_outputs: 1 << 20,
        }
    }
}

/// Counters for the replay summary and `/status`. Maps are ordered so output is deterministic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Records handled, all kinds.
    pub records: u64,
    /// Decoded messages by kind (`depth`, `snapshot`, `trade`, ...).
    pub messages: MessageCounts,
    /// Errors by code.
    pub errors: BTreeMap<&'static str, u64>,
    /// Outputs produced: client outputs and venue orders (the digest counts both, as venue
    /// orders were client outputs once), not snapshot requests.
    pub outputs: u64,
    /// Outputs dropped because the caller did not drain the queue.
    pub outputs_dropped: u64,
    /// Venue commands dropped because the caller did not drain their queue.
    pub venue_commands_dropped: u64,
    /// bookTicker oracle checks: a bookTicker whose `u` equals the book's last applied id.
    pub bbo_checks: u64,
    /// Of those, how many disagreed with the book's top.
    pub bbo_mismatches: u64,
}

/// Names of the message kinds counted in [`MessageCounts`], in index order.
pub const MESSAGE_KINDS: [&str; 8] = [
    "depth",
    "snapshot",
    "trade",
    "agg_trade",
    "book_ticker",
    "ticker",
    "mini_ticker",
    "unknown",
];

/// Decoded messages by kind: a fixed array, so counting costs an increment on the hot path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageCounts([u64; MESSAGE_KINDS.len()]);

impl MessageCounts {
    /// `(kind, count)` for every kind seen at least once, in [`MESSAGE_KINDS`] order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        MESSAGE_KINDS
            .iter()
            .zip(self.0.iter())
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| (*k, *n))
    }

    /// The count for one kind name.
    pub fn get(&self, kind: &str) -> u64 {
        MESSAGE_KINDS
            .iter()
            .position(|k| *k == kind)
            .map_or(0, |i| self.0[i])
    }
}

/// How many bookTickers per instrument may wait for the book to catch up with them.
pub const MAX_PENDING_ORACLE: usize = 64;

struct Source {
    def: SourceDef,
    /// For snapshot sources: the instrument their symbol names.
    instrument: Option<InstrumentId>,
}

/// The engine: decoders, registry, books, counters and the output queue.
pub struct Engine {
    cfg: EngineConfig,
    registry: Registry,
    decoder: Decoder,
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
            decoder: Decoder::new(),
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

    /// The next output for clients, oldest first.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The next command for a venue connection (an order to send, a snapshot to fetch),
    /// oldest first. The io layer drains it after every input, like [`Engine::poll_output`].
    #[must_use]
    pub fn poll_venue_command(&mut self) -> Option<VenueCommand> {
        self.venue_out.pop_front()
    }

    /// The running digest over every output produced so far.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// Counters.
    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// The instrument registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The book of an instrument, if any depth data was seen for it.
    pub fn book(&self, id: InstrumentId) -> Option<&BookSync> {
        self.books.get(id.0 as usize)?.as_ref()
    }

    /// All books, in instrument order.
    pub fn books(&self) -> impl Iterator<Item = &BookSync> {
        self.books.iter().flatten()
    }

    /// The status of every venue connection seen in link records, in source order.
    pub fn venues(&self) -> impl Iterator<Item = &VenueStatus> {
        self.venues.iter().flatten()
    }

    /// The trading desk, if the journal set one up.
    pub fn desk(&self) -> Option<&Desk> {
        self.desk.as_deref()
    }

    /// The trading desk, mutably (for rendering snapshots; queries change no state).
    pub fn desk_mut(&mut self) -> Option<&mut Desk> {
        self.desk.as_deref_mut()
    }

    /// A desk setup: creates the desk (a second, identical setup is a no-op; a different one
    /// is refused, as the accounts already exist).
    fn handle_desk_setup(&mut self, payload: &[u8]) -> Result<(), Error> {
        let setup = DeskSetup::parse(payload).map_err(|e| Error::Desk(e.into()))?;
        match &self.desk {
            Some(d) if *d.setup() == setup => Ok(()),
            Some(_) => Err(Error::Desk(DeskError::Setup(SetupError::Syntax(
                "a different desk setup is already in force".into(),
            )))),
            None => {
                let desk = Desk::new(setup).map_err(|e| Error::Desk(e.into()))?;
                self.desk = Some(Box::new(desk));
                Ok(())
            }
        }
    }

    fn handle_client(&mut self, now: Nanos, payload: &[u8]) -> Result<(), Error> {
        let desk = self
            .desk
            .as_deref_mut()
            .ok_or(Error::Desk(DeskError::NoDesk))?;
        let res = desk
            .handle_client(now, payload, &self.registry)
            .map_err(Error::Desk);
        self.flush_desk(now);
        res
    }

    fn handle_gateway_frame(&mut self, now: Nanos, payload: &[u8]) -> Result<(), Error> {
        let desk = self
            .desk
            .as_deref_mut()
            .ok_or(Error::Desk(DeskError::NoDesk))?;
        desk.handle_gateway_frame(now, payload, &self.registry);
        self.flush_desk(now);
        Ok(())
    }

    fn flush_desk(&mut self, now: Nanos) {
        while let Some(m) = self.desk.as_deref_mut().and_then(Desk::poll_output) {
            match m {
                DeskOutput::Private(m) => self.emit(now, Event::Private(m)),
                DeskOutput::VenueOrder { user, json } => {
                    // In the digest at the same point, with the same encoding, as when venue
                    // orders were client outputs: pinned digests stay valid.
                    self.digest.update_venue_order(now, &user, &json);
                    self.stats.outputs += 1;
                    self.emit_venue(VenueCommand::Order {
                        recv: now,
                        user,
                        json,
                    });
                }
            }
        }
    }

    fn emit_venue(&mut self, cmd: VenueCommand) {
        if self.venue_out.len() >= self.cfg.max_queued_outputs {
            self.venue_out.pop_front();
            self.stats.venue_commands_dropped += 1;
        }
        self.venue_out.push_back(cmd);
    }

    /// The source whose diffs feed an instrument's book, if any.
    pub fn book_source(&self, id: InstrumentId) -> Option<SourceId> {
        self.book_source
            .get(id.0 as usize)
            .filter(|s| **s != u32::MAX)
            .map(|s| SourceId(*s))
    }

    /// The definition of a source, if it was declared.
    pub fn source(&self, id: SourceId) -> Option<&SourceDef> {
        Some(&self.sources.get(id.0 as usize)?.as_ref()?.def)
    }

    fn define_source(&mut self, source: SourceId, payload: &[u8]) -> Result<(), Error> {
        let bad = |message: String| Error::BadSourceDef {
            source_id: source,
            message,
        };
        if source.0 >= MAX_SOURCES {
            return Err(bad(format!("source id above {}", MAX_SOURCES - 1)));
        }
        let def = SourceDef::parse(payload).map_err(|e| bad(e.to_string()))?;
        let registered = match (&def.symbol, def.scales) {
            (Some(sym), Some((ps, qs))) => Some(self.registry.register(def.market, sym, ps, qs)),
            (Some(sym), None) => Some(self.registry.lookup_or_register(def.market, sym.as_bytes())),
            (None, _) => None,
        };
        let instrument = registered.transpose().map_err(|err| Error::Registry {
            source_id: source,
            err,
        })?;
        let idx = source.0 as usize;
        if self.sources.len() <= idx {
            self.sources.resize_with(idx + 1, || None);
        }
        if let Some(old) = &self.sources[idx] {
            if old.def != def {
                return Err(bad("redefined with a different meaning".into()));
            }
        }
        self.sources[idx] = Some(Source { def, instrument });
        Ok(())
    }

    fn source_info(&self, source: SourceId) -> Result<(Market, Option<InstrumentId>), Error> {
        match self.sources.get(source.0 as usize) {
            Some(Some(s)) => Ok((s.def.market, s.instrument)),
            _ => Err(Error::UnknownSource(source)),
        }
    }

    fn handle_frame<P: Probe>(
        &mut self,
        now: Nanos,
        source_id: SourceId,
        payload: &[u8],
        probe: &mut P,
    ) -> Result<(), Error> {
        let (market, _) = self.source_info(source_id)?;
        let source = source_id.0;
        let ctx = DecodeCtx {
            market,
            auto_register: self.cfg.auto_register,
        };
        let msg = self
            .decoder
            .decode_frame(payload, ctx, &mut self.registry)
            .map_err(|err| Error::Decode { source_id, err })?;
        probe.mark(Stage::Decoded);
        self.stats.messages.0[msg_kind(&msg)] += 1;
        match msg {
            MarketMsg::Depth(d) => {
                let id = d.instrument;
                let idx = id.0 as usize;
                if self.book_source.len() <= idx {
                    self.book_source.resize(idx + 1, u32::MAX);
                }
                let previous = std::mem::replace(&mut self.book_source[idx], source);
                let book = book_slot(&mut self.books, id, market, &self.cfg.sync_limits);
                book.on_diff(&d, &mut self.book_events);
                self.flush_book_events(now, id);
                self.desk_book(now, id);
                if previous != source {
                    self.refresh_venue(now, previous);
                    self.refresh_venue(now, source);
                }
            }
            MarketMsg::Snapshot(s) => {
                // The decoder never yields snapshots from frames; handled for completeness.
                let id = s.instrument;
                let book = book_slot(&mut self.books, id, market, &self.cfg.sync_limits);
                book.on_snapshot(&s, &mut self.book_events);
                self.flush_book_events(now, id);
            }
            MarketMsg::Trade(t) => {
                self.emit(now, Event::Trade(t));
                self.derive_ticker(now, &t);
                self.desk_trade(now, t.instrument, t.price, t.qty);
            }
            MarketMsg::AggTrade(t) => {
                self.emit(now, Event::AggTrade(t));
                let as_trade = crate::msg::Trade {
                    instrument: t.instrument,
                    event_time_ms: t.event_time_ms,
                    trade_time_ms: t.trade_time_ms,
                    trade_id: t.agg_id,
                    price: t.price,
                    qty: t.qty,
                    buyer_is_maker: t.buyer_is_maker,
                    buyer_order_id: None,
                    seller_order_id: None,
                    is_market: true,
                };
                self.derive_ticker(now, &as_trade);
                self.desk_trade(now, t.instrument, t.price, t.qty);
            }
            MarketMsg::BookTicker(t) => {
                self.check_oracle(&t);
                self.emit(now, Event::BookTicker(t));
            }
            MarketMsg::Ticker(t) => {
                let idx = t.instrument.0 as usize;
                if self.has_exchange_ticker.len() <= idx {
                    self.has_exchange_ticker.resize(idx + 1, false);
                }
                self.has_exchange_ticker[idx] = true;
                if let Some(slot) = self.trade_stats.get_mut(idx) {
                    *slot = None;
                }
                self.emit(now, Event::Ticker(t));
            }
            MarketMsg::Unknown => {}
        }
        probe.mark(Stage::Applied);
        Ok(())
    }

    /// A book changed: the desk's marks, triggers and paper venue follow it while it is synced.
    fn desk_book(&mut self, now: Nanos, id: InstrumentId) {
        let Some(desk) = self.desk.as_deref_mut() else {
            return;
        };
        if let Some(b) = self.books[id.0 as usize].as_ref().filter(|b| b.is_synced()) {
            desk.on_book(now, id, b.book(), &self.registry);
            self.flush_desk(now);
        }
    }

    fn desk_trade(&mut self, now: Nanos, id: InstrumentId, price: Price, qty: Qty) {
        if let Some(desk) = self.desk.as_deref_mut() {
            desk.on_trade(now, id, Level { price, qty }, &self.registry);
            self.flush_desk(now);
        }
    }

    /// Rolling 24h statistics from trades, for instruments with no exchange ticker stream.
    fn derive_ticker(&mut self, now: Nanos, t: &crate::msg::Trade) {
        let idx = t.instrument.0 as usize;
        if !self.cfg.derive_tickers || self.has_exchange_ticker.get(idx).copied().unwrap_or(false) {
            return;
        }
        if self.trade_stats.len() <= idx {
            self.trade_stats.resize_with(idx + 1, || None);
        }
        let inst = self.registry.get(t.instrument);
        let stats = self.trade_stats[idx].get_or_insert_with(TradeStats::default);
        if let Some(ticker) = stats.on_trade(t, inst) {
            self.emit(now, Event::Ticker(ticker));
        }
    }

    fn handle_snapshot<P: Probe>(
        &mut self,
        now: Nanos,
        source: SourceId,
        payload: &[u8],
        probe: &mut P,
    ) -> Result<(), Error> {
        let (market, instrument) = self.source_info(source)?;
        let id = instrument.ok_or(Error::SnapshotWithoutSymbol(source))?;
        let snap = self
            .decoder
            .decode_snapshot(payload, id, &self.registry)
            .map_err(|err| Error::Decode {
                source_id: source,
                err,
            })?;
        probe.mark(Stage::Decoded);
        self.stats.messages.0[1] += 1;
        let book = book_slot(&mut self.books, id, market, &self.cfg.sync_limits);
        book.on_snapshot(&snap, &mut self.book_events);
        self.flush_book_events(now, id);
        self.desk_book(now, id);
        probe.mark(Stage::Applied);
        Ok(())
    }

    /// A connection changed state. `down` clears every book it fed, so nothing stale is ever
    /// served as live; they sync again from scratch when frames flow again.
    fn handle_link(
        &mut self,
        now: Nanos,
        source_id: SourceId,
        payload: &[u8],
    ) -> Result<(), Error> {
        self.source_info(source_id)?;
        let ev = LinkEvent::parse(payload).map_err(|err| Error::BadLink { source_id, err })?;
        let source = source_id.0;
        let idx = source as usize;
        if self.venues.len() <= idx {
            self.venues.resize_with(idx + 1, || None);
        }
        if self.venues[idx].is_none() {
            let def = &self.sources[idx]
                .as_ref()
                .expect("source_info checked it")
                .def;
            self.venues[idx] = Some(VenueStatus::new(source_id, def.name.clone(), def.market));
        }
        // The venue is down before its books are cleared, so the clearing itself reports no
        // intermediate state.
        self.venues[idx]
            .as_mut()
            .expect("just set")
            .on_link(now.0, &ev);
        if matches!(ev, LinkEvent::Down { .. }) {
            for idx in 0..self.book_source.len() {
                if self.book_source[idx] != source {
                    continue;
                }
                let Some(Some(book)) = self.books.get_mut(idx) else {
                    continue;
                };
                book.reset();
                if let Some(q) = self.pending_oracle.get_mut(idx) {
                    q.clear();
                }
                let instrument = book.instrument();
                self.book_events.push(BookEvent::ResyncRequested {
                    instrument,
                    reason: crate::book::ResyncReason::Disconnected,
                });
                self.flush_book_events(now, instrument);
            }
        }
        let (books, synced) = self.count_books(source);
        let v = self.venues[idx].as_mut().expect("just set");
        v.on_books(now.0, books, synced);
        let out = Event::Venue(v.clone());
        self.emit(now, out);
        Ok(())
    }

    /// (books fed by `source`, how many of them are synced).
    fn count_books(&self, source: u32) -> (u32, u32) {
        let (mut books, mut synced) = (0, 0);
        for (idx, s) in self.book_source.iter().enumerate() {
            if *s == source {
                books += 1;
                if let Some(Some(b)) = self.books.get(idx) {
                    synced += u32::from(b.is_synced());
                }
            }
        }
        (books, synced)
    }

    /// Re-counts the books of a venue connection; emits its status if that changed it.
    fn refresh_venue(&mut self, now: Nanos, source: u32) {
        if !matches!(self.venues.get(source as usize), Some(Some(_))) {
            return;
        }
        let (books, synced) = self.count_books(source);
        let v = self.venues[source as usize].as_mut().expect("checked");
        if v.on_books(now.0, books, synced) {
            let out = Event::Venue(v.clone());
            self.emit(now, out);
        }
    }

    /// Moves the book's events to the output queue, then a [`Bbo`] if the top changed.
    fn flush_book_events(&mut self, now: Nanos, id: InstrumentId) {
        let mut events = std::mem::take(&mut self.book_events);
        let mut sync_changed = false;
        for ev in events.drain(..) {
            if let BookEvent::ResyncRequested { instrument, reason } = ev {
                if reason != crate::book::ResyncReason::Disconnected {
                    let inst = self.registry.get(instrument);
                    let cmd = VenueCommand::Snapshot {
                        recv: now,
                        instrument,
                        market: inst.market,
                        symbol: inst.symbol.clone(),
                    };
                    self.emit_venue(cmd);
                }
            }
            sync_changed |= matches!(
                ev,
                BookEvent::Synced { .. }
                    | BookEvent::Gap { .. }
                    | BookEvent::Crossed { .. }
                    | BookEvent::StaleSnapshot { .. }
                    | BookEvent::ResyncRequested { .. }
            );
            self.emit(now, Event::Book(ev));
        }
        self.book_events = events;
        if sync_changed && !self.venues.is_empty() {
            if let Some(&src) = self.book_source.get(id.0 as usize) {
                self.refresh_venue(now, src);
            }
        }
        let Some(Some(book)) = self.books.get(id.0 as usize) else {
            return;
        };
        let idx = id.0 as usize;
        if self.last_bbo.len() <= idx {
            self.last_bbo.resize(idx + 1, None);
        }
        let bbo = if book.is_synced() {
            Some(Bbo {
                instrument: id,
                update_id: book.last_update_id().unwrap_or(0),
                bid: book.book().best_bid(),
                ask: book.book().best_ask(),
            })
        } else {
            None
        };
        let changed = match (&self.last_bbo[idx], &bbo) {
            (Some(a), Some(b)) => a.bid != b.bid || a.ask != b.ask,
            (None, Some(_)) => true,
            _ => false,
        };
        self.last_bbo[idx] = bbo;
        if let (true, Some(b)) = (changed, bbo) {
            self.emit(now, Event::Bbo(b));
        }
        self.check_pending_oracle(id);
    }

    /// The exchange's bookTicker is an independent oracle for the book: when its `u` equals
    /// an applied depth id, the tops must agree exactly. A bookTicker often arrives a few
    /// frames before the depth event with the same `u` (separate streams), so those ahead of
    /// the book wait in a small bounded queue.
    fn check_oracle(&mut self, t: &BookTicker) {
        let idx = t.instrument.0 as usize;
        let Some(Some(book)) = self.books.get(idx) else {
            return;
        };
        let last = book.last_update_id();
        if book.is_synced() && last == Some(t.update_id) {
            self.compare_oracle(t);
        } else if last.is_none_or(|u| t.update_id > u) {
            if self.pending_oracle.len() <= idx {
                self.pending_oracle.resize_with(idx + 1, VecDeque::new);
            }
            let q = &mut self.pending_oracle[idx];
            if q.back().is_some_and(|b| b.update_id >= t.update_id) {
                return; // out of order: not an oracle we can place
            }
            if q.len() == MAX_PENDING_ORACLE {
                q.pop_front();
            }
            q.push_back(*t);
        }
    }

    /// Checks the waiting bookTickers the book has now caught up with.
    fn check_pending_oracle(&mut self, id: InstrumentId) {
        let idx = id.0 as usize;
        let Some(Some(book)) = self.books.get(idx) else {
            return;
        };
        let Some(last) = book.last_update_id().filter(|_| book.is_synced()) else {
            return;
        };
        let Some(q) = self.pending_oracle.get_mut(idx) else {
            return;
        };
        let mut hit = None;
        while let Some(front) = q.front() {
            if front.update_id > last {
                break;
            }
            let t = q.pop_front().expect("front exists");
            if t.update_id == last {
                hit = Some(t);
            }
        }
        if let Some(t) = hit {
            self.compare_oracle(&t);
        }
    }

    fn compare_oracle(&mut self, t: &BookTicker) {
        let Some(Some(book)) = self.books.get(t.instrument.0 as usize) else {
            return;
        };
        self.stats.bbo_checks += 1;
        let (bid, ask) = (book.book().best_bid(), book.book().best_ask());
        let agree = bid.is_some_and(|b| b.price == t.bid_price && b.qty == t.bid_qty)
            && ask.is_some_and(|a| a.price == t.ask_price && a.qty == t.ask_qty);
        if !agree {
            self.stats.bbo_mismatches += 1;
        }
    }

    fn emit(&mut self, now: Nanos, event: Event) {
        let out = Output { recv: now, event };
        self.digest.update(&out);
        self.stats.outputs += 1;
        if self.out.len() >= self.cfg.max_queued_outputs {
            self.out.pop_front();
            self.stats.outputs_dropped += 1;
        }
        self.out.push_back(out);
    }
}

fn book_slot<'a>(
    books: &'a mut Vec<Option<BookSync>>,
    id: InstrumentId,
    market: Market,
    limits: &SyncLimits,
) -> &'a mut BookSync {
    let idx = id.0 as usize;
    if books.len() <= idx {
        books.resize_with(idx + 1, || None);
    }
    books[idx].get_or_insert_with(|| BookSync::new(id, market, *limits))
}

/// Index into [`MESSAGE_KINDS`].
fn msg_kind(m: &MarketMsg<'_>) -> usize {
    match m {
        MarketMsg::Depth(_) => 0,
        MarketMsg::Snapshot(_) => 1,
        MarketMsg::Trade(_) => 2,
        MarketMsg::AggTrade(_) => 3,
        MarketMsg::BookTicker(_) => 4,
        MarketMsg::Ticker(t) if t.mini => 6,
        MarketMsg::Ticker(_) => 5,
        MarketMsg::Unknown => 7,
    }
}
