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
    /// The origin's last heartbeat: run, seq, when (ns).
    heartbeat: Option<(u64, u64, u64)>,
    /// Live once this seq of the origin's run is applied (`None`: live).
    target: Option<u64>,
    truncated: Option<(u64, u64)>,
    thread_gone: bool,
    last_error: String,
    counters: Counters,
    status: LogStatus,
    changed: bool,
    now: u64,
    /// When the last record was applied (or the last restart asked), ns.
    progress_ns: u64,
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
            heartbeat: None,
            target: Some(u64::MAX),
            truncated: None,
            thread_gone: false,
            last_error: String::new(),
            counters: Counters::default(),
            status: LogStatus {
                state: "connecting",
                reason: "waiting for the origin's log".into(),
                ..LogStatus::default()
            },
            changed: true,
            now: 0,
            progress_ns: 0,
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
                self.counters.forwarded += 1;
                None
            }
            Item::Forwarded(Err(e)) => {
                self.counters.forward_failed += 1;
                self.last_error = format!("a client's command did not reach the origin: {e}");
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
        match super::command::encode(self.cfg.edge_id, kind, payload) {
            Ok(body) => {
                if let Some(f) = &self.fwd {
                    let _ = f.send(Bytes::from(body));
                }
            }
            Err(e) => {
                self.counters.forward_failed += 1;
                self.last_error = e.to_string();
            }
        }
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
