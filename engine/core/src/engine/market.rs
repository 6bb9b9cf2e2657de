//! Market data into books: websocket frames and REST snapshots are decoded, applied to each
//! instrument's [`BookSync`], and the book's events and changed top ([`Bbo`]) go out.

use crate::book::{BookEvent, BookSync, SyncLimits};
use crate::decode::{DecodeCtx, Decoder};
use crate::input::{Nanos, SourceId};
use crate::instrument::{InstrumentId, Market, Registry};
use crate::msg::{DepthSnapshot, MarketMsg};
use crate::output::{Bbo, Error, Event, VenueCommand};

use super::sources::{self, Source};
use super::{Engine, Probe, Stage};

impl Engine {
    /// The book of an instrument, if any depth data was seen for it.
    pub fn book(&self, id: InstrumentId) -> Option<&BookSync> {
        self.books.get(id.0 as usize)?.as_ref()
    }

    /// All books, in instrument order.
    pub fn books(&self) -> impl Iterator<Item = &BookSync> {
        self.books.iter().flatten()
    }

    /// The source whose diffs feed an instrument's book, if any.
    pub fn book_source(&self, id: InstrumentId) -> Option<SourceId> {
        self.book_source
            .get(id.0 as usize)
            .filter(|s| **s != u32::MAX)
            .map(|s| SourceId(*s))
    }

    pub(super) fn handle_frame<P: Probe>(
        &mut self,
        now: Nanos,
        source_id: SourceId,
        payload: &[u8],
        probe: &mut P,
    ) -> Result<(), Error> {
        let (market, _) = self.source_info(source_id)?;
        let ctx = DecodeCtx {
            market,
            auto_register: self.cfg.auto_register,
        };
        // The decoder is taken out while its message is applied (the message borrows its
        // level buffers, applying borrows the engine); it is only ever absent in here.
        let mut decoder = self.decoder.take().unwrap_or_default();
        let res = match decoder.decode_frame(payload, ctx, &mut self.registry) {
            Ok(msg) => {
                probe.mark(Stage::Decoded);
                self.apply_frame(now, source_id, market, msg);
                probe.mark(Stage::Applied);
                Ok(())
            }
            Err(err) => Err(Error::Decode { source_id, err }),
        };
        self.decoder = Some(decoder);
        res
    }

    /// Applies a decoded frame from `source_id` (a source on `market`).
    #[inline(always)]
    pub(super) fn apply_frame(
        &mut self,
        now: Nanos,
        source_id: SourceId,
        market: Market,
        msg: MarketMsg<'_>,
    ) {
        let source = source_id.0;
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
                self.exchange_ticker_seen(t.instrument);
                self.emit(now, Event::Ticker(t));
            }
            MarketMsg::Unknown => {}
        }
    }

    pub(super) fn handle_snapshot<P: Probe>(
        &mut self,
        now: Nanos,
        source: SourceId,
        payload: &[u8],
        probe: &mut P,
    ) -> Result<(), Error> {
        let mut decoder = self.decoder.take().unwrap_or_default();
        let res = decode_snapshot(&mut decoder, &self.registry, &self.sources, source, payload)
            .map(|(market, snap)| {
                probe.mark(Stage::Decoded);
                self.apply_snapshot(now, market, &snap);
                probe.mark(Stage::Applied);
            });
        self.decoder = Some(decoder);
        res
    }

    /// Applies a decoded REST snapshot (from a source on `market`).
    pub(super) fn apply_snapshot(&mut self, now: Nanos, market: Market, snap: &DepthSnapshot<'_>) {
        let id = snap.instrument;
        self.stats.messages.0[1] += 1;
        let book = book_slot(&mut self.books, id, market, &self.cfg.sync_limits);
        book.on_snapshot(snap, &mut self.book_events);
        self.flush_book_events(now, id);
        self.desk_book(now, id);
    }

    /// Moves the book's events to the output queue, then a [`Bbo`] if the top changed.
    pub(super) fn flush_book_events(&mut self, now: Nanos, id: InstrumentId) {
        let mut events = std::mem::take(&mut self.book_events);
        let mut sync_changed = false;
        for ev in events.drain(..) {
            if let BookEvent::LevelChanged {
                instrument,
                side,
                price,
                qty,
            } = ev
            {
                // The hot case (one per changed level): nothing to check here.
                self.emit_level_changed(now, instrument, side, price, qty);
                continue;
            }
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

/// Decodes a REST snapshot from `source`, which must name its instrument. Shared by
/// [`Engine::handle_snapshot`] and [`super::Intake`], so both decode and fail alike.
pub(super) fn decode_snapshot<'d>(
    decoder: &'d mut Decoder,
    registry: &Registry,
    sources: &[Option<Source>],
    source: SourceId,
    payload: &[u8],
) -> Result<(Market, DepthSnapshot<'d>), Error> {
    let (market, instrument) = sources::info(sources, source)?;
    let id = instrument.ok_or(Error::SnapshotWithoutSymbol(source))?;
    decoder
        .decode_snapshot(payload, id, registry)
        .map(|snap| (market, snap))
        .map_err(|err| Error::Decode {
            source_id: source,
            err,
        })
}
