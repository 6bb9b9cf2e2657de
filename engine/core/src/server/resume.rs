//! `resume`: a client that comes back names where each stream stopped (its last `seq`) and
//! gets everything published since, from the streams' histories (`history.rs`), then the
//! live messages, with no gap and no duplicate.
//!
//! Why it is exact: the hub handles a request between two engine outputs, and a stream's
//! history ends at the stream's last published `seq` (it records every message from its
//! first subscription on). So the replayed messages end where the live ones, queued after
//! them in the same FIFO, begin. A stream whose history does not reach back (or, for
//! `book`, that resynced in between) gets `"resumed":false` and what a fresh subscribe
//! sends instead, so the client always ends consistent.
//!
//! The replayed messages are queued outside the channel and reply budgets (the history
//! bounds them), so a long replay is neither conflated nor a reason to close.

use tungstenite::Utf8Bytes;

use super::history::Lookup;
use super::request::{ResumeStream, ResumeTarget};
use super::view::MarketView;
use super::{Hub, StreamKey};
use crate::auth::Role;
use crate::desk::{PrivateChannel, Snapshot};
use crate::input::Nanos;
use crate::wire::{E_INVALID, E_RESUME_AHEAD, E_TOO_MANY_SUBS};

/// What one stream of a `resume` got.
enum Outcome {
    /// Replayed from history: these messages, then live.
    Resumed(Vec<Utf8Bytes>),
    /// Not replayed (`too_old`, `resynced`): a fresh subscription's state instead.
    Fresh(&'static str),
    /// Already subscribed on this connection: nothing sent, nothing changed.
    Subscribed,
}

impl Hub {
    /// Handles a `resume` (see the module docs). The whole request is refused (nothing
    /// subscribed) for a private stream without a `viewer` session (4001/4002), a stream
    /// named twice (4004), one over the subscription cap (4009), or a `seq` ahead of its
    /// stream (4012).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn resume(
        &mut self,
        now: Nanos,
        idx: usize,
        id: Option<&str>,
        streams: &[ResumeStream],
        publishers: &[String],
        run: Option<u64>,
        text: &str,
        view: &(impl MarketView + ?Sized),
    ) {
        let user = if streams
            .iter()
            .any(|s| !matches!(s.target, ResumeTarget::Market(..)))
        {
            match self.session_with(idx, id, Role::Viewer) {
                Some(s) => Some(s.user),
                None => return,
            }
        } else {
            None
        };
        for (k, s) in streams.iter().enumerate() {
            if streams[..k].iter().any(|t| t.target == s.target) {
                let msg = format!(
                    "stream {} named twice",
                    self.stream_name(s, publishers, view)
                );
                return self.fail(idx, id, E_INVALID, &msg);
            }
        }
        let conn = self.sessions.conn(idx);
        let held = conn.subs.len();
        let new = streams
            .iter()
            .filter(|s| match s.target {
                ResumeTarget::Market(ch, i) => !conn.subs.contains_key(&StreamKey::new(ch, i)),
                ResumeTarget::Private(_) | ResumeTarget::Broadcast(..) => false,
            })
            .count();
        let max = self.config().max_subscriptions;
        if held + new > max {
            let msg = format!(
                "too many subscriptions: {held} held + {new} new is over the limit of {max}"
            );
            return self.fail(idx, id, E_TOO_MANY_SUBS, &msg);
        }
        let conn_id = conn.id;
        let mut outcomes = Vec::with_capacity(streams.len());
        for s in streams {
            let (lookup, head, subscribed) = match s.target {
                ResumeTarget::Market(ch, inst) => {
                    let key = StreamKey::new(ch, inst);
                    let subscribed = self.sessions.conn(idx).subs.contains_key(&key);
                    (
                        self.streams.lookup(key, s.seq),
                        self.streams.head_seq(key),
                        subscribed,
                    )
                }
                ResumeTarget::Private(ch) => {
                    let user = user.as_deref().unwrap_or_default();
                    let subscribed = self.private.subscribes(conn_id, ch);
                    match self.private.history.get(user) {
                        Some(h) => {
                            let (l, head) = h.lookup(ch, s.seq);
                            (l, head, subscribed)
                        }
                        None => (Lookup::Replay(Vec::new()), 0, subscribed),
                    }
                }
                ResumeTarget::Broadcast(ch, p) => {
                    let subscribed = self.private.subscribes(conn_id, ch);
                    let slot = super::private::broadcast_slot(ch).unwrap_or_default();
                    match self.private.published[slot].get(publishers[p].as_str()) {
                        Some((h, head)) => (h.lookup(s.seq, *head), *head, subscribed),
                        None => (Lookup::Replay(Vec::new()), 0, subscribed),
                    }
                }
            };
            // Numbers from another run say nothing about this one's streams.
            let this_run = self.config().run_id;
            if run.is_some_and(|r| this_run != 0 && r != this_run) {
                outcomes.push(match subscribed {
                    true => Outcome::Subscribed,
                    false => Outcome::Fresh("restarted"),
                });
                continue;
            }
            if s.seq > head {
                let msg = format!(
                    "seq {} of stream {} is ahead of the stream's last seq {head}",
                    s.seq,
                    self.stream_name(s, publishers, view)
                );
                return self.fail(idx, id, E_RESUME_AHEAD, &msg);
            }
            outcomes.push(match lookup {
                _ if subscribed => Outcome::Subscribed,
                Lookup::Replay(v) => Outcome::Resumed(v.into_iter().cloned().collect()),
                Lookup::TooOld => Outcome::Fresh("too_old"),
                Lookup::Resynced => Outcome::Fresh("resynced"),
            });
        }
        self.record_market_subscribe(idx, text);
        let reply = self.resumed_reply(id, streams, publishers, &outcomes, view);
        self.sessions.clear_errors(idx);
        if !self.reply(idx, reply) {
            return;
        }
        for (s, outcome) in streams.iter().zip(outcomes) {
            let fresh = match outcome {
                Outcome::Subscribed => continue,
                Outcome::Resumed(msgs) => {
                    self.sessions.count_resume(Some(msgs.len()));
                    for m in msgs {
                        self.sessions.push_replay(idx, m);
                    }
                    false
                }
                Outcome::Fresh(_) => {
                    self.sessions.count_resume(None);
                    true
                }
            };
            match s.target {
                ResumeTarget::Market(ch, inst) => {
                    let key = StreamKey::new(ch, inst);
                    let depth = s.depth.unwrap_or(self.config().default_book_depth);
                    if fresh {
                        self.subscribe_one(now, idx, key, depth, view);
                    } else {
                        self.subscribe_quiet(idx, key, depth);
                    }
                }
                ResumeTarget::Private(ch) => {
                    self.private.set_channels(conn_id, &[ch], true);
                    if fresh {
                        self.private_fresh(now, idx, ch, user.as_deref(), view);
                    }
                }
                // A broadcast channel has no state to send fresh.
                ResumeTarget::Broadcast(ch, _) => self.private.set_channels(conn_id, &[ch], true),
            }
        }
    }

    /// What a fresh subscription to a private channel would leave the client needing: the
    /// channel's snapshot (`get_orders`, `get_positions`, `get_portfolio`), if it has one.
    fn private_fresh(
        &mut self,
        now: Nanos,
        idx: usize,
        ch: PrivateChannel,
        user: Option<&str>,
        view: &(impl MarketView + ?Sized),
    ) {
        let what = match ch {
            PrivateChannel::Orders => Snapshot::Orders,
            PrivateChannel::Positions => Snapshot::Positions,
            PrivateChannel::Portfolio => Snapshot::Portfolio,
            _ => return,
        };
        let (Some(desk), Some(user)) = (view.desk(), user) else {
            return;
        };
        let json = desk.snapshot_json(&mut self.json, what, user, None, now, view.registry());
        if let Some(json) = json {
            self.reply(idx, Utf8Bytes::from(json));
        }
    }

    /// `channel` (and `market:symbol`) of a resume entry, for error messages.
    fn stream_name(
        &self,
        s: &ResumeStream,
        publishers: &[String],
        view: &(impl MarketView + ?Sized),
    ) -> String {
        match s.target {
            ResumeTarget::Market(ch, inst) => {
                let i = view.registry().get(inst);
                format!("{} {}:{}", ch.as_str(), i.market.as_str(), i.symbol)
            }
            ResumeTarget::Private(ch) => ch.as_str().to_owned(),
            ResumeTarget::Broadcast(ch, p) => format!("{} of {}", ch.as_str(), publishers[p]),
        }
    }

    /// `{"type":"resumed","id":..,"streams":[{"channel",("market","symbol"),"seq",
    /// "resumed",("replayed"|"reason")},...]}` in request order.
    fn resumed_reply(
        &mut self,
        id: Option<&str>,
        streams: &[ResumeStream],
        publishers: &[String],
        outcomes: &[Outcome],
        view: &(impl MarketView + ?Sized),
    ) -> Utf8Bytes {
        let run = self.config().run_id;
        let j = &mut self.json;
        j.clear();
        j.raw("{\"type\":\"resumed\"");
        if let Some(id) = id {
            j.raw(",\"id\":");
            j.raw(id);
        }
        if run != 0 {
            j.raw(",\"run\":");
            j.u64(run);
        }
        j.raw(",\"streams\":[");
        for (k, (s, o)) in streams.iter().zip(outcomes).enumerate() {
            j.raw(if k == 0 { "{" } else { ",{" });
            j.raw("\"channel\":\"");
            match s.target {
                ResumeTarget::Market(ch, inst) => {
                    let i = view.registry().get(inst);
                    j.raw(ch.as_str());
                    j.raw("\",\"market\":\"");
                    j.raw(i.market.as_str());
                    j.raw("\",\"symbol\":");
                    j.string(&i.symbol);
                }
                ResumeTarget::Private(ch) => {
                    j.raw(ch.as_str());
                    j.raw("\"");
                }
                ResumeTarget::Broadcast(ch, p) => {
                    j.raw(ch.as_str());
                    j.raw("\",\"publisher\":");
                    j.string(&publishers[p]);
                }
            }
            j.raw(",\"seq\":");
            j.u64(s.seq);
            match o {
                Outcome::Resumed(msgs) => {
                    j.raw(",\"resumed\":true,\"replayed\":");
                    j.u64(msgs.len() as u64);
                }
                Outcome::Fresh(reason) => {
                    j.raw(",\"resumed\":false,\"reason\":\"");
                    j.raw(reason);
                    j.raw("\"");
                }
                Outcome::Subscribed => j.raw(",\"resumed\":false,\"reason\":\"subscribed\""),
            }
            j.raw("}");
        }
        j.raw("]}");
        j.freeze()
    }
}
