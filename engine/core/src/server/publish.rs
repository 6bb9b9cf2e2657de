//! Engine outputs to channel messages: sequencing, change detection, serialization once,
//! fan-out to subscribers in [`ConnId`] order.
//!
//! `seq` counts the messages published on one (channel, instrument) stream, starting at 1:
//! every `update`, every published `status`, and the `snapshot` broadcast when a book
//! (re)syncs. Messages sent to one client only (initial state, `get_book`, a snapshot after
//! conflation) carry the stream's current `seq` without advancing it.

use tungstenite::Utf8Bytes;

use super::conn::{Conn, Shared};
use super::messages::{self, Change, Head};
use super::view::MarketView;
use super::{Channel, ConnId, Hub, StreamKey};
use crate::book::{BookEvent, ResyncReason};
use crate::input::Nanos;
use crate::instrument::InstrumentId;
use crate::msg::{Level, Ticker};
use crate::output::{Bbo, Event, Output};

/// One subscriber of a stream.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Subscriber {
    pub conn: ConnId,
    /// The connection's slot in the hub.
    pub slot: usize,
    /// Snapshot depth (book only).
    pub depth: usize,
}

/// The last value published on the `bbo` stream.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LastBbo {
    Quote {
        bbo: Bbo,
        seq: u64,
        ts: u64,
        recv: Nanos,
    },
    Stale {
        seq: u64,
        reason: &'static str,
        recv: Nanos,
    },
}

/// The streams of one instrument.
#[derive(Debug, Default)]
pub(crate) struct InstState {
    /// Last published `seq`, by channel.
    pub seq: [u64; 4],
    /// Subscribers by channel, sorted by connection id.
    pub subs: [Vec<Subscriber>; 4],
    /// Levels changed by the diff being applied (until its `Applied`).
    pub changes: Vec<Change>,
    /// Event time of the last applied diff (0 right after a resync).
    pub last_event_ms: u64,
    /// Receive time of the input that last changed the book.
    pub book_recv: Nanos,
    /// Set when a stale `status` went out in this out-of-sync episode.
    pub stale: Option<&'static str>,
    pub bbo: Option<LastBbo>,
    /// `bbo` serialized, once needed.
    pub bbo_msg: Option<Utf8Bytes>,
    pub ticker: Option<(Ticker, u64, Nanos)>,
    pub ticker_msg: Option<Utf8Bytes>,
}

/// The state of instrument `id`, created on first use.
pub(crate) fn inst_of(insts: &mut Vec<InstState>, id: InstrumentId) -> &mut InstState {
    let i = id.0 as usize;
    if insts.len() <= i {
        insts.resize_with(i + 1, InstState::default);
    }
    &mut insts[i]
}

/// Queues `msg` to every subscriber in `subs` (with `depth`, if given).
#[inline]
fn fan_out(
    conns: &mut [Option<Conn>],
    subs: &[Subscriber],
    key: StreamKey,
    msg: &Utf8Bytes,
    now: Nanos,
    depth: Option<usize>,
    sh: &mut Shared<'_>,
) {
    for s in subs {
        if depth.is_some_and(|d| d != s.depth) {
            continue;
        }
        if let Some(c) = conns[s.slot].as_mut() {
            c.push(key, msg, now, sh);
        }
    }
}

/// Equal 24h statistics, whatever the event time.
fn same_ticker(a: &Ticker, b: &Ticker) -> bool {
    Ticker {
        event_time_ms: 0,
        ..*a
    } == Ticker {
        event_time_ms: 0,
        ..*b
    }
}

impl Hub {
    /// Publishes one engine output to the subscribers of its stream. Call it for every
    /// output, in order, right after the record that produced it (see the module docs).
    pub fn handle_output(&mut self, out: &Output, view: &(impl MarketView + ?Sized)) {
        let recv = out.recv;
        match &out.event {
            Event::Private(m) => self.on_private(m),
            Event::Book(ev) => self.on_book(recv, ev, view),
            Event::Bbo(b) => {
                let st = inst_of(&mut self.insts, b.instrument);
                let seq = bump(st, Channel::Bbo);
                st.bbo = Some(LastBbo::Quote {
                    bbo: *b,
                    seq,
                    ts: st.last_event_ms,
                    recv,
                });
                st.bbo_msg = None;
                if !st.subs[Channel::Bbo as usize].is_empty() {
                    let msg = self.last_bbo(b.instrument, view);
                    self.send(StreamKey::new(Channel::Bbo, b.instrument), msg, recv, None);
                }
            }
            Event::Trade(t) => {
                let key = StreamKey::new(Channel::Trades, t.instrument);
                if let Some(h) = self.head(key, "update", t.event_time_ms, recv, view) {
                    let msg = messages::trade(&mut self.json, &h, t);
                    self.send(key, Some(msg), recv, None);
                }
            }
            Event::AggTrade(t) => {
                let key = StreamKey::new(Channel::Trades, t.instrument);
                if let Some(h) = self.head(key, "update", t.event_time_ms, recv, view) {
                    let msg = messages::agg_trade(&mut self.json, &h, t);
                    self.send(key, Some(msg), recv, None);
                }
            }
            Event::Ticker(t) => {
                let st = inst_of(&mut self.insts, t.instrument);
                if st
                    .ticker
                    .as_ref()
                    .is_some_and(|(last, ..)| same_ticker(last, t))
                {
                    return;
                }
                let seq = bump(st, Channel::Ticker);
                st.ticker = Some((*t, seq, recv));
                st.ticker_msg = None;
                if !st.subs[Channel::Ticker as usize].is_empty() {
                    let msg = self.last_ticker(t.instrument, view);
                    self.send(
                        StreamKey::new(Channel::Ticker, t.instrument),
                        msg,
                        recv,
                        None,
                    );
                }
            }
            Event::Venue(v) => self.on_venue(recv, v),
            Event::BookTicker(_) | Event::Error(_) => {}
        }
    }

    /// A venue's status changed: publish it on the `status` channel (latest wins when a
    /// client is behind).
    fn on_venue(&mut self, recv: Nanos, v: &crate::venue::VenueStatus) {
        let src = v.source.0 as usize;
        if self.venues.len() <= src {
            self.venues.resize(src + 1, None);
        }
        let seq = self.venues[src].as_ref().map_or(0, |(s, _)| *s) + 1;
        let msg = messages::venue_status(&mut self.json, seq, recv, v);
        self.venues[src] = Some((seq, msg.clone()));
        if self.status_subs.is_empty() {
            return;
        }
        self.counters.published += 1;
        let key = super::subscribe::status_key(src);
        let subs = std::mem::take(&mut self.status_subs);
        let (conns, _, mut sh) = self.split();
        for s in &subs {
            if let Some(c) = conns[s.slot].as_mut() {
                c.subs
                    .entry(key)
                    .or_insert_with(super::subscribe::status_sub);
            }
        }
        fan_out(conns, &subs, key, &msg, recv, None, &mut sh);
        self.status_subs = subs;
    }

    fn on_book(&mut self, recv: Nanos, ev: &BookEvent, view: &(impl MarketView + ?Sized)) {
        let id = ev.instrument();
        let st = inst_of(&mut self.insts, id);
        match *ev {
            BookEvent::LevelChanged {
                side, price, qty, ..
            } => st.changes.push((side, Level { price, qty })),
            BookEvent::Applied {
                final_update_id,
                event_time_ms,
                ..
            } => {
                st.last_event_ms = event_time_ms;
                st.book_recv = recv;
                if st.changes.is_empty() {
                    return;
                }
                let key = StreamKey::new(Channel::Book, id);
                if let Some(h) = self.head(key, "update", event_time_ms, recv, view) {
                    let st = &self.insts[id.0 as usize];
                    let msg =
                        messages::book_update(&mut self.json, &h, final_update_id, &st.changes);
                    self.send(key, Some(msg), recv, None);
                }
                self.insts[id.0 as usize].changes.clear();
            }
            BookEvent::Synced { last_update_id, .. } => {
                st.changes.clear();
                st.stale = None;
                st.last_event_ms = 0;
                st.book_recv = recv;
                self.broadcast_snapshot(id, last_update_id, recv, view);
            }
            BookEvent::Gap { .. } => self.announce_stale(id, "gap", recv, view),
            BookEvent::Crossed { .. } => self.announce_stale(id, "crossed", recv, view),
            BookEvent::ResyncRequested { reason, .. } => match reason {
                // Initial: never synced, nothing was live. Gap, Crossed: announced above.
                ResyncReason::Initial | ResyncReason::Gap | ResyncReason::Crossed => {
                    st.changes.clear()
                }
                ResyncReason::StaleSnapshot
                | ResyncReason::BufferOverflow
                | ResyncReason::Disconnected => {
                    self.announce_stale(id, reason.as_str(), recv, view)
                }
            },
            BookEvent::StaleSnapshot { .. } | BookEvent::BufferOverflow { .. } => {
                st.changes.clear()
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
        let st = inst_of(&mut self.insts, key.instrument);
        let seq = bump(st, key.channel);
        if st.subs[key.channel as usize].is_empty() {
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

    /// Queues a published message to the stream's subscribers.
    fn send(&mut self, key: StreamKey, msg: Option<Utf8Bytes>, recv: Nanos, depth: Option<usize>) {
        let Some(msg) = msg else { return };
        self.counters.published += 1;
        let (conns, insts, mut sh) = self.split();
        let subs = &insts[key.instrument.0 as usize].subs[key.channel as usize];
        fan_out(conns, subs, key, &msg, recv, depth, &mut sh);
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
        let Some(book) = view.book(id) else { return };
        let mut depths = std::mem::take(&mut self.depths);
        depths.clear();
        depths.extend(
            self.insts[id.0 as usize].subs[Channel::Book as usize]
                .iter()
                .map(|s| s.depth),
        );
        depths.sort_unstable();
        depths.dedup();
        for &d in &depths {
            let msg = messages::book_snapshot(&mut self.json, &h, update_id, book.book(), d);
            self.send(key, Some(msg), recv, Some(d));
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
        let st = inst_of(&mut self.insts, id);
        st.changes.clear();
        if st.stale.is_some() {
            return;
        }
        st.stale = Some(reason);
        let book = StreamKey::new(Channel::Book, id);
        if let Some(h) = self.head(book, "status", 0, recv, view) {
            let msg = messages::status(&mut self.json, &h, reason);
            self.send(book, Some(msg), recv, None);
        }
        let st = &mut self.insts[id.0 as usize];
        let seq = bump(st, Channel::Bbo);
        st.bbo = Some(LastBbo::Stale { seq, reason, recv });
        st.bbo_msg = None;
        if !st.subs[Channel::Bbo as usize].is_empty() {
            let msg = self.last_bbo(id, view);
            self.send(StreamKey::new(Channel::Bbo, id), msg, recv, None);
        }
    }

    /// The last message published on `id`'s bbo stream, serialized on first need.
    pub(super) fn last_bbo(
        &mut self,
        id: InstrumentId,
        view: &(impl MarketView + ?Sized),
    ) -> Option<Utf8Bytes> {
        let st = inst_of(&mut self.insts, id);
        if let Some(m) = &st.bbo_msg {
            return Some(m.clone());
        }
        let inst = view.registry().get(id);
        let msg = match st.bbo? {
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
                messages::bbo(&mut self.json, &h, &bbo)
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
                messages::status(&mut self.json, &h, reason)
            }
        };
        st.bbo_msg = Some(msg.clone());
        Some(msg)
    }

    /// The last message published on `id`'s ticker stream, serialized on first need.
    pub(super) fn last_ticker(
        &mut self,
        id: InstrumentId,
        view: &(impl MarketView + ?Sized),
    ) -> Option<Utf8Bytes> {
        let st = inst_of(&mut self.insts, id);
        if let Some(m) = &st.ticker_msg {
            return Some(m.clone());
        }
        let (t, seq, recv) = st.ticker?;
        let h = Head {
            kind: "update",
            id: None,
            channel: Channel::Ticker,
            inst: view.registry().get(id),
            seq,
            ts: t.event_time_ms,
            recv,
        };
        let msg = messages::ticker(&mut self.json, &h, &t);
        st.ticker_msg = Some(msg.clone());
        Some(msg)
    }
}

fn bump(st: &mut InstState, ch: Channel) -> u64 {
    let s = &mut st.seq[ch as usize];
    *s += 1;
    *s
}
