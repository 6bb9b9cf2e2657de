//! One input's way through the node: journal, engine, shared memory and hub, client sockets,
//! timed per stage.
//!
//! [`Pipeline`] owns everything an input touches, so the loop can lend a record out of its
//! feed while the pipeline handles it: the borrows split along the struct, not by hand.

use mio::Registry;

use super::{JournalPolicy, LoopStats, OnJournalError, WallClock};
use crate::net::{NetServer, SendResult, SocketId};
use tape_core::engine::Engine;
use tape_core::input::{Nanos, SourceId};
use tape_core::metrics::{Latency, LatencyStage};
use tape_core::server::{ConnId, Hub, JournalStatus};
use tape_journal::JournalError;

use super::clock::StageTimer;

/// Most feed records handled per loop iteration, so sockets are served between batches
/// even when replaying as fast as possible.
pub const FEED_BATCH: usize = 64;

// A hub session lives exactly as long as its socket, so both ids share one number: the
// socket's (never reused, so a stale id can never name a later session).
pub(super) fn socket_of(c: ConnId) -> SocketId {
    SocketId(c.0)
}

pub(super) fn conn_of(s: SocketId) -> ConnId {
    ConnId(s.0)
}

/// Why the node cannot journal right now, and since when.
#[derive(Debug, Clone)]
pub(super) struct JournalFault {
    pub(super) since_ns: u64,
    pub(super) reason: String,
    /// Inputs neither journaled nor applied since.
    pub(super) skipped: u64,
    pub(super) next_retry_ns: u64,
}

/// What became of one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Handled {
    /// Journaled (when recording) and applied.
    Applied,
    /// Not journaled, so not applied: the journal is faulted (see [`Pipeline::fault`]).
    Skipped,
}

/// The state one input touches: journal, engine, hub, client sockets, counters.
pub(super) struct Pipeline {
    pub(super) clock: WallClock,
    pub(super) journal: Option<tape_journal::JournalWriter>,
    policy: JournalPolicy,
    /// Set while appends fail (a full disk): no input is applied until it can be journaled.
    pub(super) fault: Option<JournalFault>,
    pub(super) latency: Latency,
    pub(super) engine: Engine,
    pub(super) hub: Hub,
    pub(super) net: Option<NetServer>,
    pub(super) stats: LoopStats,
    /// Receive times of the batch's records whose messages are not written yet.
    wire: Vec<u64>,
    /// The shared-memory publication, when on.
    pub(super) shm: Option<crate::shm::Publisher>,
    /// The origin's NATS publisher (`[nats]` on a node that is not an edge).
    pub(super) nats: Option<crate::nats::Publisher>,
    /// An edge's id: a desk reply names a connection of the deployment; only this edge's
    /// own reach its hub, as local ids.
    pub(super) edge_id: Option<u32>,
}

impl Pipeline {
    pub(super) fn new(
        clock: WallClock,
        journal: Option<tape_journal::JournalWriter>,
        policy: JournalPolicy,
        engine: Engine,
        hub: Hub,
        net: Option<NetServer>,
        shm: Option<crate::shm::Publisher>,
    ) -> Pipeline {
        Pipeline {
            clock,
            journal,
            policy,
            fault: None,
            latency: Latency::default(),
            engine,
            hub,
            net,
            stats: LoopStats::default(),
            wire: Vec::with_capacity(FEED_BATCH),
            shm,
            nats: None,
            edge_id: None,
        }
    }

    /// One input: journal it (before it changes any state: a crash never leaves state the
    /// journal cannot rebuild), apply it, fan its client outputs out, timing every stage.
    /// `batched`: its messages are written with the rest of the batch by
    /// [`Pipeline::flush_wire`]; otherwise before the next input.
    ///
    /// An input that cannot be journaled is not applied: with [`OnJournalError::Degrade`] the
    /// pipeline enters a fault (see [`Pipeline::retry_journal`]) and skips inputs until the
    /// journal takes them again; with [`OnJournalError::Stop`] it is an error.
    ///
    /// The engine's venue commands stay queued for the caller, who owns the feed they go to.
    pub(super) fn handle_input(
        &mut self,
        registry: &Registry,
        t_read: u64,
        source: SourceId,
        kind: u16,
        payload: &[u8],
        batched: bool,
    ) -> std::io::Result<Handled> {
        let mut t_start = self.clock.now();
        let mut journal_seq = crate::nats::NOT_JOURNALED;
        if let Some(j) = self.journal.as_mut() {
            if let Some(f) = self.fault.as_mut() {
                f.skipped += 1;
                return Ok(Handled::Skipped);
            }
            match j.append(t_read, source.0, kind, payload) {
                Ok(seq) => journal_seq = seq,
                Err(e @ JournalError::Io { .. })
                    if self.policy.on_error == OnJournalError::Degrade =>
                {
                    self.enter_fault(t_start, e.to_string());
                    return Ok(Handled::Skipped);
                }
                Err(e) => return Err(std::io::Error::other(format!("journal: {e}"))),
            }
            let t = self.clock.now();
            self.latency
                .record(LatencyStage::Journal, t.saturating_sub(t_start));
            t_start = t;
        }
        if let Some(p) = self.nats.as_mut() {
            // Journaled (or not journaling): the record is the log's, in this order.
            p.offer(journal_seq, t_read, source.0, kind, payload);
        }
        let mut timer = StageTimer::new(&self.clock, t_start, &mut self.latency);
        // The kind as journaled: one this build does not know is rejected by the engine
        // (counted like any bad record), as it would be on replay.
        if self
            .engine
            .handle_stored_probed(Nanos(t_read), source, kind, payload, &mut timer)
            .is_err()
        {
            self.stats.record_errors += 1;
        }
        let t_applied = timer.last();
        let before = self.hub.stats_delivered();
        // Shared memory first, straight after the apply: a colocated reader sees the new top
        // of book before the hub has serialized anything for the sockets.
        if let Some(shm) = self.shm.as_mut() {
            shm.publish(&self.engine);
        }
        while let Some(out) = self.engine.poll_output() {
            match (self.edge_id, &out.event) {
                (Some(edge), tape_core::output::Event::Private(m)) if m.conn.is_some() => {
                    let mut out = out.clone();
                    if let tape_core::output::Event::Private(m) = &mut out.event {
                        // Another node's connection becomes one no session has here.
                        m.conn = m
                            .conn
                            .map(|c| crate::nats::to_local(edge, c).unwrap_or(u64::MAX));
                    }
                    self.hub.handle_output(&out, &self.engine);
                }
                _ => self.hub.handle_output(&out, &self.engine),
            }
        }
        let t_fan = self.clock.now();
        self.latency
            .record(LatencyStage::Fanout, t_fan.saturating_sub(t_applied));
        self.stats.records += 1;
        if self.hub.stats_delivered() != before {
            if batched {
                // Written with the batch's other messages, one write per client.
                self.wire.push(t_read);
                return Ok(Handled::Applied);
            }
            self.transmit_all(registry, t_fan);
            let t_wire = self.clock.now();
            self.latency
                .record(LatencyStage::TickToWire, t_wire.saturating_sub(t_read));
        }
        Ok(Handled::Applied)
    }

    fn enter_fault(&mut self, now: u64, reason: String) {
        eprintln!(
            "tape: journal degraded: {reason}; no input is applied and no order taken until it \
             can be journaled (retrying every {} ms)",
            self.policy.retry_ns / 1_000_000
        );
        self.fault = Some(JournalFault {
            since_ns: now,
            reason,
            skipped: 1,
            next_retry_ns: now.saturating_add(self.policy.retry_ns),
        });
        self.publish_journal_status(now);
    }

    /// While faulted, and when the retry is due: asks the journal to prepare the next segment.
    /// Returns true when the fault just ended (the caller resynchronises what was skipped).
    pub(super) fn retry_journal(&mut self, now: u64) -> bool {
        let due = self.fault.as_ref().is_some_and(|f| now >= f.next_retry_ns);
        let Some(j) = self.journal.as_mut().filter(|_| due) else {
            return false;
        };
        if let Err(e) = j.make_room() {
            let reason = e.to_string();
            let mut changed = false;
            if let Some(f) = self.fault.as_mut() {
                f.next_retry_ns = now.saturating_add(self.policy.retry_ns);
                changed = reason != f.reason;
                f.reason = reason;
            }
            if changed {
                self.publish_journal_status(now);
            }
            return false;
        }
        let Some(f) = self.fault.take() else {
            return false;
        };
        eprintln!(
            "tape: journal writable again after {:.1} s; {} input(s) arrived meanwhile and were \
             neither journaled nor applied",
            now.saturating_sub(f.since_ns) as f64 / 1e9,
            f.skipped
        );
        self.hub.set_journal_status(
            Nanos(now),
            &JournalStatus {
                degraded: false,
                reason: format!("recovered: {}", f.reason),
                skipped_inputs: f.skipped,
                since_ns: now,
            },
        );
        true
    }

    fn publish_journal_status(&mut self, now: u64) {
        if let Some(f) = &self.fault {
            let status = JournalStatus {
                degraded: true,
                reason: f.reason.clone(),
                skipped_inputs: f.skipped,
                since_ns: f.since_ns,
            };
            self.hub.set_journal_status(Nanos(now), &status);
        }
    }

    /// Writes what a batch's records produced: every ready client's messages, one write per
    /// client, then records each record's tick-to-wire.
    ///
    /// Batching is natural: a batch holds the records that were already waiting when the
    /// loop got to them (at most [`FEED_BATCH`]), so an idle engine writes every record at
    /// once, and a busy one amortizes the per-client write over the records that queued
    /// meanwhile instead of falling further behind at one write per record per client.
    pub(super) fn flush_wire(&mut self, registry: &Registry) {
        if self.wire.is_empty() {
            return;
        }
        let t = self.clock.now();
        self.transmit_all(registry, t);
        let t_wire = self.clock.now();
        for t_read in self.wire.drain(..) {
            self.latency
                .record(LatencyStage::TickToWire, t_wire.saturating_sub(t_read));
        }
    }

    pub(super) fn transmit_all(&mut self, registry: &Registry, now: u64) {
        while let Some(conn) = self.hub.poll_ready() {
            self.transmit(registry, now, conn);
        }
    }

    /// Moves the hub's messages for `conn` to its socket until either runs dry: all of them
    /// framed into the connection's buffer, then one flush (one syscall for the burst).
    pub(super) fn transmit(&mut self, registry: &Registry, now: u64, conn: ConnId) {
        let Some(net) = self.net.as_mut() else { return };
        let sock = socket_of(conn);
        if net.write_pending(sock) {
            return; // the socket is full; NetEvent::Writable brings us back
        }
        let mut queued = 0u64;
        while let Some(msg) = self.hub.poll_transmit(Nanos(now), conn, &self.engine) {
            match net.queue(registry, sock, msg) {
                SendResult::Sent | SendResult::Buffered => queued += 1,
                SendResult::Refused => {
                    // Over the transport's buffer limit: the message is lost for this client,
                    // counted; the hub's own bound normally keeps us far from this.
                    self.stats.send_refused += 1;
                    break;
                }
                SendResult::Closed => return,
            }
        }
        if queued > 0 {
            self.stats.sent += queued;
            let _ = net.flush(registry, sock);
        }
    }
}
