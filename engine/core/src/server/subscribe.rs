//! Subscription requests and book snapshots for one client.

use tungstenite::Utf8Bytes;

use super::conn::{Snap, Sub};
use super::messages::{self, Head};
use super::streams::{status_key, Subscriber};
use super::view::MarketView;
use super::{Channel, Hub, StreamKey};
use crate::input::Nanos;
use crate::instrument::InstrumentId;
use crate::wire::E_TOO_MANY_SUBS;

impl Hub {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn subscribe(
        &mut self,
        now: Nanos,
        idx: usize,
        id: Option<&str>,
        channels: &[Channel],
        instruments: &[InstrumentId],
        depth: Option<usize>,
        status: bool,
        view: &(impl MarketView + ?Sized),
    ) {
        let depth = depth.unwrap_or(self.config().default_book_depth);
        let c = self.sessions.conn(idx);
        let held = c.subs.len();
        let mut new = 0usize;
        for &ch in channels {
            for &inst in instruments {
                new += usize::from(!c.subs.contains_key(&StreamKey::new(ch, inst)));
            }
        }
        let max = self.config().max_subscriptions;
        if held + new > max {
            let msg = format!(
                "too many subscriptions: {held} held + {new} new is over the limit of {max}"
            );
            return self.fail(idx, id, E_TOO_MANY_SUBS, &msg);
        }
        let registry = view.registry();
        let pairs = channels
            .iter()
            .flat_map(|&ch| instruments.iter().map(move |&i| (ch, registry.get(i))));
        let run = self.config().run_id;
        let reply = messages::subscriptions(&mut self.json, "subscribed", id, pairs, status, run);
        self.sessions.clear_errors(idx);
        if !self.reply(idx, reply) {
            return;
        }
        for &ch in channels {
            for &inst in instruments {
                self.subscribe_one(now, idx, StreamKey::new(ch, inst), depth, view);
            }
        }
        if status {
            self.subscribe_status(now, idx);
        }
    }

    /// Subscribes to every venue's `status` stream, now and later; the last status of each
    /// known venue follows as initial state.
    fn subscribe_status(&mut self, now: Nanos, idx: usize) {
        let conn = self.sessions.conn(idx).id;
        if !self.streams.subscribe_status(conn, idx) {
            return; // already subscribed: no new initial state
        }
        for (key, msg) in self.streams.venue_statuses() {
            self.sessions.push(idx, key, msg, now, true);
        }
    }

    /// Subscribes the connection in `idx` to `key` (not yet subscribed) without initial
    /// state: what follows is the stream's next message (`resume` replayed the rest).
    pub(super) fn subscribe_quiet(&mut self, idx: usize, key: StreamKey, depth: usize) {
        let c = self.sessions.conn_mut(idx);
        let conn = c.id;
        c.subs.insert(
            key,
            Sub {
                depth,
                slot: None,
                snap: Snap::None,
            },
        );
        let s = Subscriber {
            conn,
            slot: idx,
            depth,
        };
        self.streams.subscribe(key, s);
    }

    pub(super) fn subscribe_one(
        &mut self,
        now: Nanos,
        idx: usize,
        key: StreamKey,
        depth: usize,
        view: &(impl MarketView + ?Sized),
    ) {
        let c = self.sessions.conn_mut(idx);
        let conn = c.id;
        match c.subs.get_mut(&key) {
            None => self.subscribe_quiet(idx, key, depth),
            Some(sub) if key.channel == Channel::Book && sub.depth != depth => {
                sub.depth = depth;
                self.streams.set_depth(key, conn, depth);
            }
            // Already subscribed: listed in the reply, no new initial state.
            Some(_) => return,
        }
        let initial = match key.channel {
            Channel::Bbo => self.bbo_now(now, key.instrument, view),
            Channel::Ticker => self.last_ticker(key.instrument, view),
            Channel::Trades | Channel::Status => None,
            Channel::Book => {
                self.sessions.want_snapshot(idx, key);
                None
            }
        };
        if let Some(msg) = initial {
            self.sessions.push(idx, key, &msg, now, false);
        }
    }

    pub(super) fn unsubscribe(
        &mut self,
        idx: usize,
        id: Option<&str>,
        channels: &[Channel],
        instruments: &[InstrumentId],
        status: bool,
        view: &(impl MarketView + ?Sized),
    ) {
        let conn = self.sessions.conn(idx).id;
        if status {
            let c = self.sessions.conn_mut(idx);
            let keys: Vec<StreamKey> = c
                .subs
                .keys()
                .filter(|k| k.channel == Channel::Status)
                .copied()
                .collect();
            for key in keys {
                c.unsubscribe(key);
            }
            self.streams.unsubscribe(status_key(0), conn);
        }
        for &ch in channels {
            for &inst in instruments {
                let key = StreamKey::new(ch, inst);
                if self.sessions.conn_mut(idx).unsubscribe(key) {
                    self.streams.unsubscribe(key, conn);
                }
            }
        }
        let registry = view.registry();
        let pairs = channels
            .iter()
            .flat_map(|&ch| instruments.iter().map(move |&i| (ch, registry.get(i))));
        let run = self.config().run_id;
        let reply = messages::subscriptions(&mut self.json, "unsubscribed", id, pairs, status, run);
        self.succeed(idx, reply);
    }

    /// A snapshot of `inst`'s book as it is now (or a stale `status` if it is not in sync),
    /// carrying the stream's current `seq`.
    pub(super) fn book_now(
        &mut self,
        now: Nanos,
        inst: InstrumentId,
        depth: usize,
        id: Option<&str>,
        view: &(impl MarketView + ?Sized),
    ) -> Utf8Bytes {
        let book = self.streams.book_head(inst);
        let instrument = view.registry().get(inst);
        let mut head = Head {
            kind: "snapshot",
            id,
            channel: Channel::Book,
            inst: instrument,
            seq: book.seq,
            ts: book.ts,
            recv: book.recv,
        };
        match view.book(inst) {
            Some(b) if b.is_synced() && self.feed_stale.is_none() => {
                let update_id = b.last_update_id().unwrap_or(0);
                messages::book_snapshot(&mut self.json, &head, update_id, b.book(), depth)
            }
            _ => {
                head.kind = "status";
                head.ts = 0;
                head.recv = now;
                let reason = self.feed_stale.or(book.stale).unwrap_or("initial");
                messages::status(&mut self.json, &head, reason)
            }
        }
    }
}
