//! An edge's replicated log, as its clients see it: the `log` entry of the `status` channel,
//! and every book served as a stale `status` while the log is not live.
//!
//! This is node-local state, like the journal's entry: it never enters the engine or its
//! digest (an edge's digest must equal the origin's), and it does not advance any stream's
//! `seq` (an edge's `seq`s must equal the origin's, so a client can move between them). A
//! book subscriber is told through the one-client path that carries the stream's current
//! `seq` without advancing it (the fresh snapshot after conflation): a stale `status` when
//! the log stops being live, a fresh `snapshot` when it is live again. A `bbo` subscriber
//! likewise gets a stale `status` at the stream's current `seq`, then the last `bbo` again.

use super::messages::{self, Head};
use super::view::MarketView;
use super::ConnId;
use super::{Channel, Hub, StreamKey};
use crate::desk::{ClientOp, ClientRecord};
use crate::input::Nanos;
use crate::instrument::InstrumentId;
use crate::wire::request::{self, request_id};
use crate::wire::{JsonBuf, CLOSE_TRY_AGAIN_LATER, E_ORIGIN_UNAVAILABLE};
use tungstenite::Utf8Bytes;

/// Where a node's replicated log stands: an edge's copy of the origin's log, or the
/// origin's publication of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogStatus {
    /// `edge` or `origin`. Only an edge's books depend on the log: an origin's stay live
    /// whatever its publication does.
    pub role: &'static str,
    /// `live`, or why not. An edge: `connecting`, `catching_up`, `nats_down`,
    /// `origin_silent`, `truncated` (the records it needs are older than the stream keeps),
    /// `log_error`. An origin: `connecting`, `no_stream` (JetStream refuses the run's stream:
    /// records held until it takes it), `nats_down` (records held until NATS is back),
    /// `given_up` (see docs/scale-out.md).
    pub state: &'static str,
    /// What happened, for people.
    pub reason: String,
    /// An edge: the origin's last record it applied (its seq in the origin's run); an origin:
    /// the last record NATS acknowledged.
    pub applied: u64,
    /// An edge: the origin's last record it heard of; an origin: the last it published.
    pub origin: u64,
    /// When the state began, ns since the epoch.
    pub since_ns: u64,
}

impl LogStatus {
    /// True when the node serves its books as live (an origin always does).
    pub fn is_live(&self) -> bool {
        self.state == "live" || self.role != "edge"
    }
}

impl Hub {
    /// The node's replicated log changed state: publishes the `log` entry of the `status`
    /// channel, and when the log stops (or starts) being live, sends every `book` subscriber
    /// a stale `status` with the state as its reason (or a fresh snapshot), at the stream's
    /// current `seq`. While not live, `subscribe` and `get_book` answer with that `status`.
    pub fn set_log_status(
        &mut self,
        now: Nanos,
        status: &LogStatus,
        view: &(impl MarketView + ?Sized),
    ) {
        let json = &mut self.json;
        let (key, msg) = self
            .streams
            .publish_log(|seq| log_status(json, seq, now, status));
        let subs = self.streams.subscribers(key);
        if !subs.is_empty() {
            self.sessions.register_status(subs, key);
            self.sessions.fan_out(subs, key, &msg, now, None);
            self.streams.count_published();
        }
        let stale = (!status.is_live()).then_some(status.state);
        if stale == self.feed_stale {
            return;
        }
        self.feed_stale = stale;
        for inst in self.streams.watched(Channel::Book) {
            let key = StreamKey::new(Channel::Book, inst);
            let slots: Vec<usize> = self
                .streams
                .subscribers(key)
                .iter()
                .map(|s| s.slot)
                .collect();
            for slot in slots {
                self.sessions.want_snapshot(slot, key);
            }
        }
        for inst in self.streams.watched(Channel::Bbo) {
            if let Some(msg) = self.bbo_now(now, inst, view) {
                self.send(StreamKey::new(Channel::Bbo, inst), msg, now, None);
            }
        }
    }

    /// What a `bbo` subscriber is told now: the last `bbo`, or while the log is not live a
    /// stale `status` at the stream's current `seq`.
    pub(super) fn bbo_now(
        &mut self,
        now: Nanos,
        inst: InstrumentId,
        view: &(impl MarketView + ?Sized),
    ) -> Option<Utf8Bytes> {
        let Some(reason) = self.feed_stale else {
            return self.last_bbo(inst, view);
        };
        let key = StreamKey::new(Channel::Bbo, inst);
        let h = Head {
            kind: "status",
            id: None,
            channel: Channel::Bbo,
            inst: view.registry().get(inst),
            seq: self.streams.head_seq(key),
            ts: 0,
            recv: now,
        };
        Some(messages::status(&mut self.json, &h, reason))
    }

    /// Why every book is stale on this node, if it is (see [`Hub::set_log_status`]).
    pub fn feed_stale(&self) -> Option<&'static str> {
        self.feed_stale
    }

    /// An edge: a client record of this hub (from [`Hub::poll_record`], its connection id
    /// local) that the origin did not take, or whose outcome the edge cannot know (`why`
    /// says which). Its connection is told, so no request goes unanswered: an order, publish
    /// or private subscription gets error 4031 with the request's `id`; a login the origin
    /// did not take closes the connection with 1013 (the origin's desk does not know the
    /// session, so nothing private would reach it); a logout needs nothing. A record that does
    /// not parse, or a connection already gone, is ignored (false).
    pub fn refuse_forwarded(&mut self, record: &[u8], why: &str) -> bool {
        let Ok(r) = ClientRecord::parse(record) else {
            return false;
        };
        let Some(idx) = usize::try_from(r.conn)
            .ok()
            .and_then(|c| self.sessions.live(ConnId(c)))
        else {
            return false;
        };
        match r.op {
            ClientOp::Command | ClientOp::Subscribe => {
                let id =
                    request::read(r.body, |o| o.ok().and_then(|o| request_id(o).ok())).flatten();
                let msg = format!("origin unavailable: {why}");
                self.fail(idx, id.as_deref(), E_ORIGIN_UNAVAILABLE, &msg);
            }
            ClientOp::Login => {
                let reason = format!("the origin did not take this session's login: {why}");
                self.close(idx, CLOSE_TRY_AGAIN_LATER, reason, true);
            }
            ClientOp::Logout => return false,
        }
        true
    }
}

fn log_status(j: &mut JsonBuf, seq: u64, now: Nanos, s: &LogStatus) -> Utf8Bytes {
    j.clear();
    j.raw("{\"type\":\"update\",\"channel\":\"status\",\"venue\":\"log\",\"seq\":");
    j.u64(seq);
    j.raw(",\"ts\":0,\"recv_ns\":");
    j.u64(now.0);
    j.raw(",\"data\":{\"role\":");
    j.string(s.role);
    j.raw(",\"state\":");
    j.string(s.state);
    j.raw(",\"reason\":");
    j.string(&s.reason);
    j.raw(",\"applied\":");
    j.u64(s.applied);
    j.raw(",\"origin\":");
    j.u64(s.origin);
    j.raw(",\"since_ns\":");
    j.u64(s.since_ns);
    j.raw("}}");
    j.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::HubConfig;

    #[test]
    fn log_status_is_published_and_freezes_books_without_touching_seq() {
        let mut hub = Hub::new(HubConfig::default());
        let view = crate::engine::Engine::new(crate::engine::EngineConfig::default()).unwrap();
        assert_eq!(hub.feed_stale(), None);
        let s = LogStatus {
            role: "edge",
            state: "catching_up",
            reason: "gap".into(),
            applied: 3,
            origin: 9,
            since_ns: 1,
        };
        hub.set_log_status(Nanos(5), &s, &view);
        assert_eq!(hub.feed_stale(), Some("catching_up"));
        let (_, m) = hub.streams.venue_statuses().last().expect("log entry");
        let v: &str = m.as_str();
        assert!(v.contains("\"venue\":\"log\",\"seq\":1"), "{v}");
        assert!(v.contains("\"state\":\"catching_up\""), "{v}");
        hub.set_log_status(Nanos(6), &LogStatus { state: "live", ..s }, &view);
        assert_eq!(hub.feed_stale(), None);
        let (_, m) = hub.streams.venue_statuses().last().expect("log entry");
        assert!(m.as_str().contains("\"seq\":2"));
        // An origin's publication never freezes its books.
        hub.set_log_status(
            Nanos(7),
            &LogStatus {
                role: "origin",
                state: "nats_down",
                ..LogStatus::default()
            },
            &view,
        );
        assert_eq!(hub.feed_stale(), None);
    }
}
