//! Subscription requests and book snapshots for one client.

use tungstenite::Utf8Bytes;

use super::conn::{Snap, Sub};
use super::hub::slot;
use super::messages::{self, Head};
use super::publish::{inst_of, Subscriber};
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
        let depth = depth.unwrap_or(self.cfg.default_book_depth);
        let c = self.conn_mut(idx);
        let held = c.subs.len();
        let mut new = 0usize;
        for &ch in channels {
            for &inst in instruments {
                new += usize::from(!c.subs.contains_key(&StreamKey::new(ch, inst)));
            }
        }
        let max = self.cfg.max_subscriptions;
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
        let reply = messages::subscriptions(&mut self.json, "subscribed", id, pairs, status);
        self.conn_mut(idx).consecutive_errors = 0;
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
        let conn = self.conn_mut(idx).id;
        match self.status_subs.binary_search_by_key(&conn, |s| s.conn) {
            Ok(_) => return, // already subscribed: no new initial state
            Err(pos) => self.status_subs.insert(
                pos,
                Subscriber {
                    conn,
                    slot: idx,
                    depth: 0,
                },
            ),
        }
        for src in 0..self.venues.len() {
            let Some((_, msg)) = self.venues[src].clone() else {
                continue;
            };
            let key = status_key(src);
            let (conns, _, mut sh) = self.split();
            let c = conns[idx].as_mut().expect("known connection");
            c.subs.entry(key).or_insert_with(status_sub);
            c.push(key, &msg, now, &mut sh);
        }
    }

    fn subscribe_one(
        &mut self,
        now: Nanos,
        idx: usize,
        key: StreamKey,
        depth: usize,
        view: &(impl MarketView + ?Sized),
    ) {
        let c = slot(&mut self.conns, idx);
        let conn = c.id;
        match c.subs.get_mut(&key) {
            None => {
                c.subs.insert(
                    key,
                    Sub {
                        depth,
                        slot: None,
                        snap: Snap::None,
                    },
                );
                let list = &mut inst_of(&mut self.insts, key.instrument).subs[key.channel.index()];
                let pos = list
                    .binary_search_by_key(&conn, |s| s.conn)
                    .unwrap_or_else(|p| p);
                list.insert(
                    pos,
                    Subscriber {
                        conn,
                        slot: idx,
                        depth,
                    },
                );
                self.sub_counts[key.channel.index()] += 1;
            }
            Some(sub) if key.channel == Channel::Book && sub.depth != depth => {
                sub.depth = depth;
                let list = &mut inst_of(&mut self.insts, key.instrument).subs[key.channel.index()];
                if let Ok(pos) = list.binary_search_by_key(&conn, |s| s.conn) {
                    list[pos].depth = depth;
                }
            }
            // Already subscribed: listed in the reply, no new initial state.
            Some(_) => return,
        }
        let initial = match key.channel {
            Channel::Bbo => self.last_bbo(key.instrument, view),
            Channel::Ticker => self.last_ticker(key.instrument, view),
            Channel::Trades | Channel::Status => None,
            Channel::Book => {
                let (conns, _, sh) = self.split();
                let c = conns[idx].as_mut().expect("known connection");
                c.want_snapshot(key, sh.cap, sh.ready);
                None
            }
        };
        if let Some(msg) = initial {
            let (conns, _, mut sh) = self.split();
            conns[idx]
                .as_mut()
                .expect("known connection")
                .push(key, &msg, now, &mut sh);
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
        if status {
            let c = self.conn_mut(idx);
            let conn = c.id;
            let keys: Vec<StreamKey> = c
                .subs
                .keys()
                .filter(|k| k.channel == Channel::Status)
                .copied()
                .collect();
            for key in keys {
                self.conn_mut(idx).unsubscribe(key);
            }
            self.remove_subscriber(status_key(0), conn);
        }
        for &ch in channels {
            for &inst in instruments {
                let key = StreamKey::new(ch, inst);
                let c = self.conn_mut(idx);
                let conn = c.id;
                if c.unsubscribe(key) {
                    self.remove_subscriber(key, conn);
                }
            }
        }
        let registry = view.registry();
        let pairs = channels
            .iter()
            .flat_map(|&ch| instruments.iter().map(move |&i| (ch, registry.get(i))));
        let reply = messages::subscriptions(&mut self.json, "unsubscribed", id, pairs, status);
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
        let st = inst_of(&mut self.insts, inst);
        let (seq, ts, recv, stale) = (
            st.seq[Channel::Book.index()],
            st.last_event_ms,
            st.book_recv,
            st.stale,
        );
        let instrument = view.registry().get(inst);
        let mut head = Head {
            kind: "snapshot",
            id,
            channel: Channel::Book,
            inst: instrument,
            seq,
            ts,
            recv,
        };
        match view.book(inst) {
            Some(b) if b.is_synced() => {
                let update_id = b.last_update_id().unwrap_or(0);
                messages::book_snapshot(&mut self.json, &head, update_id, b.book(), depth)
            }
            _ => {
                head.kind = "status";
                head.ts = 0;
                head.recv = now;
                messages::status(&mut self.json, &head, stale.unwrap_or("initial"))
            }
        }
    }
}

/// The `status` stream of venue source `src`.
pub(super) fn status_key(src: usize) -> StreamKey {
    StreamKey::new(Channel::Status, InstrumentId(src as u32))
}

/// A connection's entry for a `status` stream.
pub(super) fn status_sub() -> Sub {
    Sub {
        depth: 0,
        slot: None,
        snap: Snap::None,
    }
}
