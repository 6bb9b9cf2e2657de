//! The edge's [`Feed`]: the origin's records, in order, from the NATS thread.
//!
//! It applies a record only when [`Continuity`] says it is the next one of the run; a gap
//! asks the thread for the log again from the needed record. Its state (`LogStatus`) is
//! node-local, never in the engine (the digest must stay the origin's):
//!
//! - `connecting`: never heard the origin yet;
//! - `catching_up`: behind the origin's last heartbeat since a start, a gap or a reconnect;
//!   live again once it applied what that heartbeat announced;
//! - `nats_down`, `origin_silent` (no heartbeat for `origin_timeout`), `truncated` (the
//!   stream no longer holds the records it needs: it stays stale until the origin starts a
//!   new run), `log_error` (the thread ended).
//!
//! While not `live`, the hub serves every book as a stale `status` with the state as reason.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use crossbeam_channel::{Receiver, TryRecvError};
use mio::{Registry, Token, Waker};
use tape_core::input::SourceId;
use tape_core::output::VenueCommand;
use tape_core::server::LogStatus;
use tokio::sync::mpsc;

use super::continuity::{Continuity, Verdict};
use super::edge_thread::{follow, Ctl, Item};
use super::wire::WireRecord;
use super::NatsConfig;
use crate::node::{Feed, FeedPoll, FeedRecord, WallClock};

/// Records the NATS thread may have queued for the engine.
const CHANNEL: usize = 65_536;

/// Client commands waiting for the origin's answer at most; one more is answered 4031 at
/// once (a slow or gone origin, each command waiting up to 3 s, must not grow memory).
const MAX_FORWARDING: usize = 1024;

/// Counters of `/status`.
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    records: u64,
    duplicates: u64,
    gaps: u64,
    bad_messages: u64,
    heartbeats: u64,
    disconnects: u64,
    forwarded: u64,
    forward_failed: u64,
}

/// An edge: the origin's log as a feed.
pub struct EdgeFeed {
    cfg: NatsConfig,
    token: Token,
    rx: Option<Receiver<Item>>,
    ctl: Option<mpsc::UnboundedSender<Ctl>>,
    fwd: Option<mpsc::UnboundedSender<Bytes>>,
    cont: Continuity,
    /// The record handed out last (its payload is lent to the caller).
    cur: Bytes,
    /// The first record of a new run, handed out after the `Restarted`.
    after_restart: Option<Bytes>,
    /// The start asked of the thread after a gap, until the record comes.
    requested: Option<u64>,
    connected: bool,
    ever_connected: bool,
    /// The origin's last heartbeat: run, seq, when (ns).
    heartbeat: Option<(u64, u64, u64)>,
    /// Live once this seq of the origin's run is applied (`None`: live).
    target: Option<u64>,
    truncated: Option<(u64, u64)>,
    thread_gone: bool,
    last_error: String,
    counters: Counters,
    /// Client records (local connection ids) the origin did not take, with why: each
    /// client is answered (`Hub::refuse_forwarded`).
    refused: VecDeque<(Vec<u8>, String)>,
    /// Commands sent to the NATS thread and not answered yet (at most [`MAX_FORWARDING`]:
    /// the thread sends one at a time, so a slow origin would otherwise pile them up).
    forwarding: usize,
    status: LogStatus,
    changed: bool,
    now: u64,
    /// When the last record was applied (or the last restart asked), ns.
    progress_ns: u64,
    /// The oldest heartbeat whose seq is not applied yet: (seq, when heard). Still not
    /// applied after `origin_timeout`, the edge is too slow: `catching_up`.
    unapplied: Option<(u64, u64)>,
}

impl std::fmt::Debug for EdgeFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeFeed")
            .field("url", &self.cfg.url)
            .field("state", &self.status.state)
            .field("applied", &self.cont.applied())
            .finish_non_exhaustive()
    }
}

impl EdgeFeed {
    /// An edge following `cfg`'s stream; its waker uses `token`. The thread starts with
    /// [`Feed::start`].
    pub fn new(cfg: NatsConfig, token: Token) -> EdgeFeed {
        EdgeFeed {
            cfg,
            token,
            rx: None,
            ctl: None,
            fwd: None,
            cont: Continuity::new(),
            cur: Bytes::new(),
            after_restart: None,
            requested: None,
            connected: false,
            ever_connected: false,
            heartbeat: None,
            target: Some(u64::MAX),
            truncated: None,
            thread_gone: false,
            last_error: String::new(),
            counters: Counters::default(),
            refused: VecDeque::new(),
            forwarding: 0,
            status: LogStatus {
                role: "edge",
                state: "connecting",
                reason: "waiting for the origin's log".into(),
                ..LogStatus::default()
            },
            changed: true,
            now: 0,
            progress_ns: 0,
            unapplied: None,
        }
    }

    fn spawn(&mut self, registry: &Registry) -> std::io::Result<()> {
        let waker = Arc::new(Waker::new(registry, self.token)?);
        let (tx, rx) = crossbeam_channel::bounded(CHANNEL);
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
        let (fwd_tx, fwd_rx) = mpsc::unbounded_channel();
        let rt = super::runtime()?;
        let cfg = self.cfg.clone();
        std::thread::Builder::new()
            .name("tape-nats-edge".into())
            .spawn(move || rt.block_on(follow(cfg, tx, waker, ctl_rx, fwd_rx)))?;
        self.rx = Some(rx);
        self.ctl = Some(ctl_tx);
        self.fwd = Some(fwd_tx);
        Ok(())
    }

    /// Behind: live again once what the origin announced next is applied.
    fn fall_behind(&mut self) {
        if self.target.is_none() {
            self.target = Some(u64::MAX);
        }
    }

    fn ask_from(&mut self, from: u64) {
        self.fall_behind();
        if self.requested != Some(from) {
            self.requested = Some(from);
            if let Some(c) = &self.ctl {
                let _ = c.send(Ctl::From(from));
            }
        }
    }

    /// Takes one item that is not a record to apply; returns the record body to hand out.
    fn take(&mut self, item: Item) -> Option<(Bytes, bool)> {
        match item {
            Item::Record(b) => {
                let (run, seq) = match WireRecord::decode(&b) {
                    Ok(r) => (r.run, r.seq),
                    Err(e) => {
                        self.counters.bad_messages += 1;
                        self.last_error = e.to_string();
                        return None;
                    }
                };
                match self.cont.check(run, seq) {
                    Verdict::Apply => {
                        self.progress_ns = self.now;
                        self.requested = None;
                        self.counters.records += 1;
                        Some((b, false))
                    }
                    Verdict::NewRun => {
                        self.progress_ns = self.now;
                        self.requested = None;
                        self.truncated = None;
                        // A later run gets a fresh hub: it hears the state again.
                        self.changed = true;
                        self.counters.records += 1;
                        self.fall_behind();
                        Some((b, true))
                    }
                    Verdict::Duplicate => {
                        self.counters.duplicates += 1;
                        None
                    }
                    Verdict::Gap { from, got } => {
                        if self.requested != Some(from) {
                            self.counters.gaps += 1;
                            self.last_error = format!(
                                "gap in the origin's log: needed seq {from}, got {got} (run {run})"
                            );
                        }
                        self.ask_from(from);
                        None
                    }
                }
            }
            Item::Heartbeat { run, seq } => {
                self.counters.heartbeats += 1;
                self.heartbeat = Some((run, seq, self.now));
                if self.unapplied.is_none() && seq > self.cont.applied() {
                    self.unapplied = Some((seq, self.now));
                }
                if self.target == Some(u64::MAX) {
                    self.target = Some(seq);
                }
                if self.cont.run().is_some_and(|r| r != run) {
                    // The origin started a new run and its first records did not come live.
                    self.ask_from(1);
                }
                None
            }
            Item::Nats(up) => {
                if !up && self.connected {
                    self.counters.disconnects += 1;
                }
                self.connected = up;
                self.ever_connected |= up;
                if !up {
                    self.fall_behind();
                }
                None
            }
            Item::Truncated { want, first } => {
                self.truncated = Some((want, first));
                None
            }
            Item::Error(e) => {
                self.last_error = e;
                None
            }
            Item::Forwarded(Ok(())) => {
                self.forwarding = self.forwarding.saturating_sub(1);
                self.counters.forwarded += 1;
                None
            }
            Item::Forwarded(Err((body, why))) => {
                self.forwarding = self.forwarding.saturating_sub(1);
                self.counters.forward_failed += 1;
                self.last_error = format!("a client's command did not reach the origin: {why}");
                if let Some(rec) = super::command::local_record(self.cfg.edge_id, &body) {
                    self.refused.push_back((rec, why));
                }
                None
            }
        }
    }

    /// Recomputes the state; marks it changed for the hub.
    fn evaluate(&mut self, now: u64) {
        let timeout = self.cfg.origin_timeout.as_nanos() as u64;
        let silent = self
            .heartbeat
            .is_none_or(|(_, _, at)| now.saturating_sub(at) > timeout);
        if silent && self.heartbeat.is_some() {
            self.fall_behind();
        }
        match self.unapplied {
            Some((seq, _)) if self.cont.applied() >= seq => self.unapplied = None,
            Some((seq, at)) if self.target.is_none() && now.saturating_sub(at) > timeout => {
                // Live, but what the origin announced that long ago is still not applied.
                self.last_error = format!(
                    "slow: seq {seq} announced {} ms ago is not applied yet (applied {})",
                    now.saturating_sub(at) / 1_000_000,
                    self.cont.applied()
                );
                self.unapplied = None;
                self.fall_behind();
            }
            _ => {}
        }
        if let (Some(t), Some((run, _, _))) = (self.target, self.heartbeat) {
            if t != u64::MAX && self.cont.run() == Some(run) && self.cont.applied() >= t {
                self.target = None;
            }
        }
        let origin = self.heartbeat.map_or(0, |(_, s, _)| s);
        if self.target.is_some()
            && self.connected
            && !silent
            && origin > self.cont.applied()
            && now.saturating_sub(self.progress_ns) > 2 * timeout
        {
            // Behind and nothing arrives (a consumer that did not survive a reconnect):
            // ask for the log again from the next record.
            self.progress_ns = now;
            self.requested = None;
            self.ask_from(self.cont.next());
        }
        let (state, reason): (&'static str, String) = if self.thread_gone {
            ("log_error", self.last_error.clone())
        } else if !self.connected && !self.ever_connected {
            ("connecting", format!("connecting to {}", self.cfg.url))
        } else if !self.connected {
            ("nats_down", format!("not connected to {}", self.cfg.url))
        } else if let Some((want, first)) = self.truncated {
            (
                "truncated",
                format!(
                    "stream {} starts at {first}, this edge needs {want}: the records are older \
                     than the stream keeps (nats.max_age / nats.max_bytes)",
                    self.cfg.stream
                ),
            )
        } else if self.heartbeat.is_none() {
            ("connecting", "no heartbeat from the origin yet".into())
        } else if silent {
            ("origin_silent", "no heartbeat from the origin".into())
        } else if self.target.is_some() {
            ("catching_up", self.last_error.clone())
        } else {
            ("live", String::new())
        };
        if state != self.status.state {
            self.status = LogStatus {
                role: "edge",
                state,
                reason,
                applied: self.cont.applied(),
                origin,
                since_ns: now,
            };
            self.changed = true;
        } else {
            self.status.applied = self.cont.applied();
            self.status.origin = origin;
        }
    }
}

impl Feed for EdgeFeed {
    fn start(&mut self, registry: &Registry, clock: &WallClock) {
        self.now = clock.now();
        if let Err(e) = self.spawn(registry) {
            self.thread_gone = true;
            self.last_error = format!("cannot start the NATS thread: {e}");
        }
    }

    fn owns(&self, token: Token) -> bool {
        token == self.token
    }

    fn drive(&mut self, _registry: &Registry, clock: &WallClock) {
        self.now = clock.now();
        self.evaluate(self.now);
    }

    fn poll(&mut self, now: u64) -> std::io::Result<FeedPoll<'_>> {
        self.now = now;
        if let Some(b) = self.after_restart.take() {
            self.cur = b;
            return Ok(self.handed());
        }
        loop {
            let Some(rx) = &self.rx else {
                return Ok(FeedPoll::NotBefore(u64::MAX));
            };
            match rx.try_recv() {
                Ok(item) => match self.take(item) {
                    Some((b, true)) => {
                        self.after_restart = Some(b);
                        return Ok(FeedPoll::Restarted);
                    }
                    Some((b, false)) => {
                        self.cur = b;
                        return Ok(self.handed());
                    }
                    None => {}
                },
                Err(TryRecvError::Empty) => return Ok(FeedPoll::NotBefore(u64::MAX)),
                Err(TryRecvError::Disconnected) => {
                    self.rx = None;
                    self.thread_gone = true;
                    return Ok(FeedPoll::NotBefore(u64::MAX));
                }
            }
        }
    }

    fn next_deadline(&self) -> u64 {
        // Re-evaluate silence about every 100 ms.
        self.now.saturating_add(100_000_000)
    }

    /// The origin's log waits in the stream while this edge cannot journal (its own
    /// `feed.record` is full): skipping a record would make this engine another one.
    fn can_wait(&self) -> bool {
        true
    }

    /// An edge has no venue: only the origin talks to it.
    fn handle_venue_command(&mut self, _cmd: VenueCommand) {}

    fn close(&mut self, _registry: &Registry, _clock: &WallClock) {
        self.rx = None;
        self.ctl = None;
        self.fwd = None;
    }

    fn forwards_client_records(&self) -> Option<u32> {
        Some(self.cfg.edge_id)
    }

    fn forward_client_record(&mut self, kind: u16, payload: &[u8]) {
        if self.forwarding >= MAX_FORWARDING {
            self.counters.forward_failed += 1;
            let why = format!(
                "{MAX_FORWARDING} commands already wait for the origin's answer; it was not sent"
            );
            self.refused.push_back((payload.to_vec(), why));
            return;
        }
        match super::command::encode(self.cfg.edge_id, kind, payload) {
            Ok(body) => {
                let sent = self
                    .fwd
                    .as_ref()
                    .is_some_and(|f| f.send(Bytes::from(body)).is_ok());
                if sent {
                    self.forwarding += 1;
                } else {
                    self.counters.forward_failed += 1;
                    let why = "the edge's NATS thread is not running; it was not sent".to_owned();
                    self.refused.push_back((payload.to_vec(), why));
                }
            }
            Err(e) => {
                self.counters.forward_failed += 1;
                self.last_error = e.to_string();
                self.refused
                    .push_back((payload.to_vec(), format!("it cannot be forwarded ({e})")));
            }
        }
    }

    fn take_refused_command(&mut self) -> Option<(Vec<u8>, String)> {
        self.refused.pop_front()
    }

    fn take_log_status(&mut self) -> Option<LogStatus> {
        std::mem::take(&mut self.changed).then(|| self.status.clone())
    }

    fn origin_run(&self) -> Option<u64> {
        self.cont.run()
    }

    fn nats_json(&self) -> Option<serde_json::Value> {
        let c = &self.counters;
        Some(serde_json::json!({
            "role": "edge",
            "url": self.cfg.url,
            "subject": self.cfg.subject,
            "stream": self.cfg.stream,
            "state": self.status.state,
            "reason": self.status.reason,
            "since_ns": self.status.since_ns,
            "run": self.cont.run(),
            "applied": self.cont.applied(),
            "origin": self.heartbeat.map_or(0, |(_, s, _)| s),
            "connected": self.connected,
            "records": c.records,
            "duplicates": c.duplicates,
            "gaps": c.gaps,
            "bad_messages": c.bad_messages,
            "heartbeats": c.heartbeats,
            "disconnects": c.disconnects,
            "edge_id": self.cfg.edge_id,
            "forwarded": c.forwarded,
            "forward_failed": c.forward_failed,
            "last_error": self.last_error,
        }))
    }
}

impl EdgeFeed {
    fn handed(&self) -> FeedPoll<'_> {
        match WireRecord::decode(&self.cur) {
            Ok(r) => FeedPoll::Record(FeedRecord {
                recv: r.recv,
                source: SourceId(r.source),
                kind: r.kind,
                payload: Cow::Borrowed(r.payload),
            }),
            // Checked when it was taken.
            Err(_) => FeedPoll::NotBefore(u64::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn body(run: u64, seq: u64) -> Bytes {
        let mut b = Vec::new();
        WireRecord {
            run,
            seq,
            journal_seq: seq,
            recv: seq,
            source: 0,
            kind: 2,
            payload: b"{}",
        }
        .encode_into(&mut b);
        Bytes::from(b)
    }

    fn state(f: &mut EdgeFeed, now: u64) -> &'static str {
        f.now = now;
        f.evaluate(now);
        f.status.state
    }

    #[test]
    fn states_follow_nats_the_heartbeat_and_the_records() {
        let mut f = EdgeFeed::new(NatsConfig::default(), Token(1));
        assert_eq!(state(&mut f, S), "connecting");
        assert!(f.take_log_status().is_some());
        f.take(Item::Nats(true));
        assert_eq!(state(&mut f, S), "connecting");
        f.take(Item::Heartbeat { run: 5, seq: 3 });
        assert_eq!(state(&mut f, S), "catching_up");
        assert!(matches!(f.take(Item::Record(body(5, 1))), Some((_, true))));
        assert!(matches!(f.take(Item::Record(body(5, 2))), Some((_, false))));
        assert_eq!(
            state(&mut f, S),
            "catching_up",
            "seq 3 announced, 2 applied"
        );
        assert!(f.take(Item::Record(body(5, 3))).is_some());
        assert_eq!(state(&mut f, S), "live");
        let s = f.take_log_status().expect("changed");
        assert_eq!((s.state, s.applied, s.origin), ("live", 3, 3));
        assert!(f.take_log_status().is_none(), "reported once");

        // A gap: nothing applied, the log asked again from 4.
        assert!(f.take(Item::Record(body(5, 6))).is_none());
        assert_eq!(f.requested, Some(4));
        assert_eq!(f.counters.gaps, 1);
        assert_eq!(state(&mut f, S), "catching_up");
        assert!(f.take(Item::Record(body(5, 4))).is_some());
        f.take(Item::Heartbeat { run: 5, seq: 4 });
        assert_eq!(state(&mut f, S), "live");

        // NATS down, then back: behind until what the next heartbeat says is applied.
        f.take(Item::Nats(false));
        assert_eq!(state(&mut f, S), "nats_down");
        f.take(Item::Nats(true));
        assert_eq!(state(&mut f, S), "catching_up");
        f.take(Item::Heartbeat { run: 5, seq: 5 });
        assert!(f.take(Item::Record(body(5, 5))).is_some());
        assert_eq!(state(&mut f, S), "live");

        // Silence from the origin.
        assert_eq!(state(&mut f, 10 * S), "origin_silent");
        f.take(Item::Truncated { want: 6, first: 9 });
        f.now = 10 * S;
        f.take(Item::Heartbeat { run: 5, seq: 9 });
        assert_eq!(state(&mut f, 10 * S), "truncated");
    }

    #[test]
    fn a_new_run_is_followed_from_its_first_record() {
        let mut f = EdgeFeed::new(NatsConfig::default(), Token(1));
        f.take(Item::Nats(true));
        assert!(f.take(Item::Record(body(5, 1))).is_some());
        // The origin restarted: its heartbeat names another run; the log is asked from 1.
        f.take(Item::Heartbeat { run: 6, seq: 2 });
        assert_eq!(f.requested, Some(1));
        assert!(
            f.take(Item::Record(body(6, 2))).is_none(),
            "not before seq 1"
        );
        assert!(matches!(f.take(Item::Record(body(6, 1))), Some((_, true))));
        assert_eq!(f.origin_run(), Some(6));
    }

    #[test]
    fn a_slow_edge_says_so() {
        let mut f = EdgeFeed::new(NatsConfig::default(), Token(1));
        f.take(Item::Nats(true));
        f.now = S;
        f.take(Item::Heartbeat { run: 5, seq: 1 });
        f.take(Item::Record(body(5, 1)));
        assert_eq!(state(&mut f, S), "live");
        f.take(Item::Heartbeat { run: 5, seq: 100 });
        for t in 2..=4 {
            f.now = t * S;
            f.take(Item::Heartbeat {
                run: 5,
                seq: 100 * t,
            });
        }
        assert_eq!(state(&mut f, 4 * S + 1), "catching_up");
        assert!(f.last_error.starts_with("slow"), "{}", f.last_error);
    }

    #[test]
    fn foreign_bodies_are_counted_never_applied() {
        let mut f = EdgeFeed::new(NatsConfig::default(), Token(1));
        assert!(f.take(Item::Record(Bytes::from_static(b"hello"))).is_none());
        assert_eq!(f.counters.bad_messages, 1);
        assert_eq!(f.cont.applied(), 0);
    }

    /// Commands wait for the origin one at a time; past the bound each is answered at once
    /// instead of piling up, and an answer makes room again.
    #[test]
    fn commands_waiting_for_the_origin_are_bounded_and_each_is_answered() {
        use tape_core::desk::{ClientOp, ClientRecord};
        use tape_core::input::RecordKind;
        let kind = RecordKind::Client as u16;
        let rec = |conn| ClientRecord::encode(ClientOp::Command, conn, "alice", b"{\"id\":1}");
        let mut f = EdgeFeed::new(NatsConfig::default(), Token(1));
        f.forward_client_record(kind, &rec(3));
        let (back, why) = f
            .take_refused_command()
            .expect("no thread: answered at once");
        assert_eq!(back, rec(3));
        assert!(why.contains("not running"), "{why}");

        let (tx, mut rx) = mpsc::unbounded_channel();
        f.fwd = Some(tx);
        for conn in 0..MAX_FORWARDING as u64 {
            f.forward_client_record(kind, &rec(conn));
        }
        assert!(f.take_refused_command().is_none());
        f.forward_client_record(kind, &rec(9));
        let (back, why) = f.take_refused_command().expect("over the bound");
        assert_eq!(back, rec(9));
        assert!(why.contains("already wait"), "{why}");

        // The origin answers one (not taken): its client is answered, and there is room.
        let first = rx.try_recv().unwrap();
        f.take(Item::Forwarded(Err((first, "refused: busy".into()))));
        let (back, why) = f.take_refused_command().expect("the refused one");
        assert_eq!(back, rec(0), "the hub's own record, connection id local");
        assert_eq!(why, "refused: busy");
        f.forward_client_record(kind, &rec(9));
        assert!(f.take_refused_command().is_none(), "room again");
        assert_eq!(f.forwarding, MAX_FORWARDING);
        assert_eq!(f.counters.forward_failed, 3);
    }
}
