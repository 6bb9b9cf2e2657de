//! Engine outputs to channel messages: sequencing, change detection, serialization once,
//! fan-out to subscribers in [`ConnId`](super::ConnId) order.
//!
//! `seq` counts the messages published on one (channel, instrument) stream, starting at 1:
//! every `update`, every published `status`, and the `snapshot` broadcast when a book
//! (re)syncs. Messages sent to one client only (initial state, `get_book`, a snapshot after
//! conflation) carry the stream's current `seq` without advancing it.

use tungstenite::Utf8Bytes;

use super::messages::{self, Head};
use super::streams::LastBbo;
use super::view::MarketView;
use super::{Channel, Hub, StreamKey};
use crate::book::{BookEvent, ResyncReason};
use crate::input::Nanos;
use crate::instrument::InstrumentId;
use crate::msg::Level;
use crate::output::{Event, Output};

impl Hub {
    /// Publishes one engine output to the subscribers of its stream. Call it for every
    /// output, in order, right after the record that produced it (see the module docs).
    pub fn handle_output(&mut self, out: &Output, view: &(impl MarketView + ?Sized)) {
        let recv = out.recv;
        match &out.event {
            Event::Private(m) => self.on_private(m),
            Event::Book(ev) => self.on_book(recv, ev, view),
            Event::Bbo(b) => {
                let key = StreamKey::new(Channel::Bbo, b.instrument);
                let seq = self.streams.bump(key);
                let ts = self.streams.last_event_ms(b.instrument);
                let last = LastBbo::Quote {
                    bbo: *b,
                    seq,
                    ts,
                    recv,
                };
                self.streams.set_bbo(b.instrument, last);
                if self.streams.wants(key) {
                    let msg = self.last_bbo(b.instrument, view);
                    self.publish(key, seq, msg, recv);
                }
            }
            Event::Trade(t) => {
                let key = StreamKey::new(Channel::Trades, t.instrument);
                if let Some(h) = self.head(key, "update", t.event_time_ms, recv, view) {
                    let msg = messages::trade(&mut self.json, &h, t);
                    self.publish(key, h.seq, Some(msg), recv);
                }
            }
            Event::AggTrade(t) => {
                let key = StreamKey::new(Channel::Trades, t.instrument);
                if let Some(h) = self.head(key, "update", t.event_time_ms, recv, view) {
                    let msg = messages::agg_trade(&mut self.json, &h, t);
                    self.publish(key, h.seq, Some(msg), recv);
                }
            }
            Event::Ticker(t) => {
                let key = StreamKey::new(Channel::Ticker, t.instrument);
                if let Some(seq) = self.streams.set_ticker(t, recv) {
                    if self.streams.wants(key) {
                        let msg = self.last_ticker(t.instrument, view);
                        self.publish(key, seq, msg, recv);
                    }
                }
            }
            Event::Venue(v) => self.on_venue(recv, v),
            Event::BookTicker(_) | Event::Error(_) => {}
        }
    }

    /// A venue's status changed: publish it on the `status` channel (latest wins when a
    /// client is behind).
    fn on_venue(&mut self, recv: Nanos, v: &crate::venue::VenueStatus) {
        let json = &mut self.json;
        let (key, msg) = self.streams.publish_venue(v.source.0 as usize, |seq| {
            messages::venue_status(json, seq, recv, v)
        });
        let subs = self.streams.subscribers(key);
        if subs.is_empty() {
            return;
        }
        // A status subscriber gets the stream's entry on the venue's first message.
        self.sessions.register_status(subs, key);
        self.sessions.fan_out(subs, key, &msg, recv, None);
        self.streams.count_published();
    }

    fn on_book(&mut self, recv: Nanos, ev: &BookEvent, view: &(impl MarketView + ?Sized)) {
        let id = ev.instrument();
        match *ev {
            BookEvent::LevelChanged {
                side, price, qty, ..
            } => self.streams.book_change(id, (side, Level { price, qty })),
            BookEvent::Applied {
                final_update_id,
                event_time_ms,
                ..
            } => {
                if self
                    .streams
                    .book_applied(id, event_time_ms, recv)
                    .is_empty()
                {
                    return;
                }
                let key = StreamKey::new(Channel::Book, id);
                if let Some(h) = self.head(key, "update", event_time_ms, recv, view) {
                    let changes = self.streams.book_changes(id);
                    let msg = messages::book_update(&mut self.json, &h, final_update_id, changes);
                    self.publish(key, h.seq, Some(msg), recv);
                }
                self.streams.clear_changes(id);
            }
            BookEvent::Synced { last_update_id, .. } => {
                self.streams.book_synced(id, recv);
                self.broadcast_snapshot(id, last_update_id, recv, view);
            }
            BookEvent::Gap { .. } => self.announce_stale(id, "gap", recv, view),
            BookEvent::Crossed { .. } => self.announce_stale(id, "crossed", recv, view),
            BookEvent::ResyncRequested { reason, .. } => match reason {
                // Initial: never synced, nothing was live. Gap, Crossed: announced above.
                ResyncReason::Initial | ResyncReason::Gap | ResyncReason::Crossed => {
                    self.streams.clear_changes(id)
                }
                ResyncReason::StaleSnapshot
                | ResyncReason::BufferOverflow
                | ResyncReason::Disconnected => {
                    self.announce_stale(id, reason.as_str(), recv, view)
                }
            },
            BookEvent::StaleSnapshot { .. } | BookEvent::BufferOverflow { .. } => {
                self.streams.clear_changes(id)
            }
        }
    }

    /// Advances the stream's `seq` and returns the envelope head for its next message, or
    /// `None` when nobody subscribes (nothing is serialized then).
    fn head<'e>(
        &mut self,
        key: StreamKey,
        kind: &'static str,
        ts: u64,
        recv: Nanos,
        view: &'e (impl MarketView + ?Sized),
    ) -> Option<Head<'e>> {
        let seq = self.streams.bump(key);
        if !self.streams.wants(key) {
            return None;
        }
        Some(Head {
            kind,
            id: None,
            channel: key.channel,
            inst: view.registry().get(key.instrument),
            seq,
            ts,
            recv,
        })
    }

    /// Records a message published with `seq` in the stream's history and queues it to the
    /// stream's subscribers.
    fn publish(&mut self, key: StreamKey, seq: u64, msg: Option<Utf8Bytes>, recv: Nanos) {
        let Some(msg) = msg else { return };
        self.streams.record(key, seq, Some(&msg));
        self.send(key, msg, recv, None);
    }

    /// Queues a published message to the stream's subscribers.
    pub(super) fn send(
        &mut self,
        key: StreamKey,
        msg: Utf8Bytes,
        recv: Nanos,
        depth: Option<usize>,
    ) {
        let subs = self.streams.subscribers(key);
        if subs.is_empty() {
            return;
        }
        self.sessions.fan_out(subs, key, &msg, recv, depth);
        self.streams.count_published();
    }

    /// The book (re)synced: every subscriber gets a snapshot at its depth, serialized once
    /// per distinct depth.
    fn broadcast_snapshot(
        &mut self,
        id: InstrumentId,
        update_id: u64,
        recv: Nanos,
        view: &(impl MarketView + ?Sized),
    ) {
        let key = StreamKey::new(Channel::Book, id);
        let Some(h) = self.head(key, "snapshot", 0, recv, view) else {
            return;
        };
        // Snapshots are per depth: the history keeps a marker (a resume across it resyncs).
        self.streams.record(key, h.seq, None);
        let Some(book) = view.book(id) else { return };
        let mut depths = std::mem::take(&mut self.depths);
        self.streams.book_depths(id, &mut depths);
        for &d in &depths {
            let msg = messages::book_snapshot(&mut self.json, &h, update_id, book.book(), d);
            self.send(key, msg, recv, Some(d));
        }
        self.depths = depths;
    }

    /// Publishes a stale `status` on the book and bbo streams, once per out-of-sync episode.
    fn announce_stale(
        &mut self,
        id: InstrumentId,
        reason: &'static str,
        recv: Nanos,
        view: &(impl MarketView + ?Sized),
    ) {
        if !self.streams.book_stale(id, reason) {
            return;
        }
        let book = StreamKey::new(Channel::Book, id);
        if let Some(h) = self.head(book, "status", 0, recv, view) {
            let msg = messages::status(&mut self.json, &h, reason);
            self.publish(book, h.seq, Some(msg), recv);
        }
        let bbo = StreamKey::new(Channel::Bbo, id);
        let seq = self.streams.bump(bbo);
        self.streams
            .set_bbo(id, LastBbo::Stale { seq, reason, recv });
        if self.streams.wants(bbo) {
            let msg = self.last_bbo(id, view);
            self.publish(bbo, seq, msg, recv);
        }
    }

    /// The last message published on `id`'s bbo stream, serialized on first need.
    pub(super) fn last_bbo(
        &mut self,
        id: InstrumentId,
        view: &(impl MarketView + ?Sized),
    ) -> Option<Utf8Bytes> {
        let inst = view.registry().get(id);
        let json = &mut self.json;
        self.streams.last_bbo(id, |last| match last {
            LastBbo::Quote { bbo, seq, ts, recv } => {
                let h = Head {
                    kind: "update",
                    id: None,
                    channel: Channel::Bbo,
                    inst,
                    seq,
                    ts,
                    recv,
                };
                messages::bbo(json, &h, &bbo)
            }
            LastBbo::Stale { seq, reason, recv } => {
                let h = Head {
                    kind: "status",
                    id: None,
                    channel: Channel::Bbo,
                    inst,
                    seq,
                    ts: 0,
                    recv,
                };
                messages::status(json, &h, reason)
            }
        })
    }

    /// The last message published on `id`'s ticker stream, serialized on first need.
    pub(super) fn last_ticker(
        &mut self,
        id: InstrumentId,
        view: &(impl MarketView + ?Sized),
    ) -> Option<Utf8Bytes> {
        let inst = view.registry().get(id);
        let json = &mut self.json;
        self.streams.last_ticker(id, |t, seq, recv| {
            let h = Head {
                kind: "update",
                id: None,
                channel: Channel::Ticker,
                inst,
                seq,
                ts: t.event_time_ms,
                recv,
            };
            messages::ticker(json, &h, t)
        })
    }
}
