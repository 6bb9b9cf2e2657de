//! Where the node's records come from, behind one interface: [`Feed`].
//!
//! A journal replayed against the wall clock ([`ReplayFeed`]) and the live venue connections
//! ([`LiveFeed`]) differ in everything but their output: records `(receive time, source, kind,
//! bytes)` for the journal and the engine. The loop drives either through [`Feed`]: socket
//! events and timers in, due records out through [`Feed::poll`], the engine's venue commands
//! back through [`Feed::handle_venue_command`].

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use mio::{Registry, Token};

use super::WallClock;
use crate::live::{GatewayIo, LiveFeed, VenueIo};
use tape_core::input::SourceId;
use tape_core::output::VenueCommand;
use tape_journal::{JournalError, JournalReader};

/// One input ready for the journal and the engine.
#[derive(Debug)]
pub struct FeedRecord<'a> {
    /// Receive time, ns since the epoch: stamped when a live record was read, or the poll
    /// time of a replayed one (it is being received again now).
    pub recv: u64,
    /// Source id.
    pub source: SourceId,
    /// Record kind as journaled (an unknown one is the engine's to reject, as on replay).
    pub kind: u16,
    /// Raw bytes: lent by a replay, owned by a live record.
    pub payload: Cow<'a, [u8]>,
}

/// What [`Feed::poll`] found.
#[derive(Debug)]
pub enum FeedPoll<'a> {
    /// A record due now.
    Record(FeedRecord<'a>),
    /// Nothing is due before this wall-clock time, ns (`u64::MAX`: until a socket event).
    NotBefore(u64),
    /// The journal ended and a new pass begins: the engine should start from a clean state.
    Restarted,
    /// The feed ended for good.
    Finished,
}

/// A source of records for the node loop (quinn-proto style: `handle_*` in, `poll` out).
///
/// The io-facing methods default to nothing, for feeds without sockets.
pub trait Feed {
    /// Starts connecting (once).
    fn start(&mut self, _registry: &Registry, _clock: &WallClock) {}

    /// True when a mio token belongs to this feed.
    fn owns(&self, _token: Token) -> bool {
        false
    }

    /// A readiness event for a token the feed [`owns`](Feed::owns).
    fn handle_event(&mut self, _registry: &Registry, _token: Token, _clock: &WallClock) {}

    /// Runs the feed's io and timers that are not driven by socket events (reconnects,
    /// pings, snapshot results); called once per loop iteration before [`Feed::poll`].
    fn drive(&mut self, _registry: &Registry, _clock: &WallClock) {}

    /// The next record due at `now`, or when one will be.
    ///
    /// # Errors
    /// A source that can no longer be read (a damaged journal).
    fn poll(&mut self, now: u64) -> std::io::Result<FeedPoll<'_>>;

    /// The earliest time [`Feed::drive`] has something to do (`u64::MAX`: none).
    fn next_deadline(&self) -> u64 {
        u64::MAX
    }

    /// A command from the engine for the venue (an order, a snapshot request).
    fn handle_venue_command(&mut self, cmd: VenueCommand);

    /// Stops the feed: connections close and their last records (`down`) stay queued for
    /// [`Feed::poll`]; a replay ends.
    fn close(&mut self, registry: &Registry, clock: &WallClock);

    /// Passes started (replay).
    fn passes(&self) -> u64 {
        0
    }

    /// Whether the records queued when the feed starts (a live feed's source definitions)
    /// are applied before the first client message, so every configured symbol is known to
    /// the first subscriber. A replay paces its records and says no.
    fn defines_before_serving(&self) -> bool {
        false
    }

    /// The node was asked to stop: true when the feed has work to finish first (the order
    /// gateway's `cancel_on_shutdown`); the node keeps running until
    /// [`Feed::stop_drained`] or a grace period, then calls [`Feed::close`].
    fn begin_stop(&mut self, _now: u64) -> bool {
        false
    }

    /// The work [`Feed::begin_stop`] started is done.
    fn stop_drained(&self) -> bool {
        true
    }

    /// Whether the feed can hold its records while the node cannot journal them (a journal
    /// being replayed can; a live venue cannot: its records are read as they come).
    fn can_wait(&self) -> bool {
        false
    }

    /// The node skipped records it could not journal: start the state they fed over (live:
    /// drop and reconnect every venue connection, so books resync from fresh snapshots).
    fn resync(&mut self, _registry: &Registry, _clock: &WallClock) {}

    /// io figures per venue connection, for `/status`.
    fn venue_io(&self) -> Vec<VenueIo> {
        Vec::new()
    }

    /// io figures of the order gateway, if there is one.
    fn gateway_io(&self) -> Option<GatewayIo> {
        None
    }

    /// An edge's replicated log changed state since the last call (for the hub).
    fn take_log_status(&mut self) -> Option<tape_core::server::LogStatus> {
        None
    }

    /// An edge's origin run (the hub serves it under the origin's run id).
    fn origin_run(&self) -> Option<u64> {
        None
    }

    /// An edge: its id (its clients' records are forwarded to the origin, not applied here).
    fn forwards_client_records(&self) -> Option<u32> {
        None
    }

    /// An edge: sends a client record of its hub to the origin.
    fn forward_client_record(&mut self, _kind: u16, _payload: &[u8]) {}

    /// An edge: a forwarded client record the origin did not take (or may not have), its
    /// connection id local, and why; the hub answers its client.
    fn take_refused_command(&mut self) -> Option<(Vec<u8>, String)> {
        None
    }

    /// An edge's NATS figures for `/status`.
    fn nats_json(&self) -> Option<serde_json::Value> {
        None
    }
}

impl Feed for LiveFeed {
    fn resync(&mut self, registry: &Registry, clock: &WallClock) {
        let reason = "tape resyncs: inputs arrived while it could not journal them";
        self.reconnect_all(registry, &mut || clock.now(), reason);
    }

    fn start(&mut self, registry: &Registry, clock: &WallClock) {
        LiveFeed::start(self, registry, &mut || clock.now());
    }

    fn owns(&self, token: Token) -> bool {
        LiveFeed::owns(self, token)
    }

    fn handle_event(&mut self, registry: &Registry, token: Token, clock: &WallClock) {
        LiveFeed::handle_event(self, registry, token, &mut || clock.now());
    }

    fn drive(&mut self, registry: &Registry, clock: &WallClock) {
        LiveFeed::poll(self, registry, clock.now(), &mut || clock.now());
    }

    fn poll(&mut self, _now: u64) -> std::io::Result<FeedPoll<'_>> {
        // Records carry the time they were read off the socket (or the snapshot thread).
        Ok(match self.pop() {
            Some(r) => FeedPoll::Record(FeedRecord {
                recv: r.recv,
                source: SourceId(r.source),
                kind: r.kind,
                payload: Cow::Owned(r.payload),
            }),
            None => FeedPoll::NotBefore(u64::MAX),
        })
    }

    fn next_deadline(&self) -> u64 {
        LiveFeed::next_deadline(self)
    }

    fn handle_venue_command(&mut self, cmd: VenueCommand) {
        match cmd {
            // Sent now; a failure comes back as a record.
            VenueCommand::Order { recv, json, .. } => self.send_order(recv.0, &json),
            VenueCommand::Snapshot {
                recv,
                market,
                symbol,
                ..
            } => self.want_snapshot(recv.0, market, &symbol),
        }
    }

    fn close(&mut self, registry: &Registry, clock: &WallClock) {
        // The venues' `down` records are journaled and applied like any other.
        self.close_all(registry, &mut || clock.now());
    }

    fn begin_stop(&mut self, now: u64) -> bool {
        LiveFeed::begin_stop(self, now)
    }

    fn defines_before_serving(&self) -> bool {
        true
    }

    fn stop_drained(&self) -> bool {
        LiveFeed::stop_drained(self)
    }

    fn venue_io(&self) -> Vec<VenueIo> {
        LiveFeed::venue_io(self)
    }

    fn gateway_io(&self) -> Option<GatewayIo> {
        LiveFeed::gateway_io(self)
    }
}

/// Replays a journal against the wall clock.
pub struct ReplayFeed {
    dir: PathBuf,
    reader: JournalReader,
    speed: u32,
    repeat: bool,
    /// The next record, copied out of the map (the reader lends it only until the next call).
    next: Option<(u64, u32, u16)>,
    buf: Vec<u8>,
    /// Wall-clock ns at which the first record of this pass is due.
    epoch_wall: Option<u64>,
    /// Recorded receive time of the first record of this pass.
    epoch_rec: u64,
    passes: u64,
    records: u64,
    done: bool,
    /// `buf` holds a record the caller may still be reading; load the next one first.
    handed_out: bool,
}

impl std::fmt::Debug for ReplayFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayFeed")
            .field("dir", &self.dir)
            .field("passes", &self.passes)
            .field("records", &self.records)
            .finish_non_exhaustive()
    }
}

impl ReplayFeed {
    /// Opens the journal in `dir`. `speed`: 1 = recorded pace, N = N times faster, 0 = as
    /// fast as possible.
    ///
    /// # Errors
    /// The journal cannot be opened, or holds no record.
    pub fn open(dir: &Path, speed: u32, repeat: bool) -> Result<ReplayFeed, JournalError> {
        let reader = JournalReader::open(dir)?;
        let mut feed = ReplayFeed {
            dir: dir.to_owned(),
            reader,
            speed,
            repeat,
            next: None,
            buf: Vec::with_capacity(1 << 16),
            epoch_wall: None,
            epoch_rec: 0,
            passes: 1,
            records: 0,
            done: false,
            handed_out: false,
        };
        feed.load_next()?;
        if feed.next.is_none() {
            return Err(JournalError::SeqOutOfRange {
                seq: 0,
                dir: dir.to_owned(),
            });
        }
        Ok(feed)
    }

    fn load_next(&mut self) -> Result<(), JournalError> {
        self.next = match self.reader.next() {
            Some(Ok(r)) => {
                self.buf.clear();
                self.buf.extend_from_slice(r.payload);
                Some((r.recv_ns, r.source, r.kind))
            }
            Some(Err(e)) => return Err(e),
            None => None,
        };
        Ok(())
    }

    /// The record due at `now` (wall-clock ns), or when the next one is due.
    ///
    /// # Errors
    /// A journal that became unreadable (damage found while reading).
    pub fn poll_journal(&mut self, now: u64) -> Result<FeedPoll<'_>, JournalError> {
        if self.done {
            return Ok(FeedPoll::Finished);
        }
        if self.handed_out {
            // The caller is done with the record handed out last time: read the next one.
            self.handed_out = false;
            self.load_next()?;
        }
        let Some((recv, source, kind)) = self.next else {
            if !self.repeat {
                self.done = true;
                return Ok(FeedPoll::Finished);
            }
            self.reader = JournalReader::open(&self.dir)?;
            self.load_next()?;
            self.epoch_wall = None;
            self.passes += 1;
            return Ok(FeedPoll::Restarted);
        };
        let epoch_wall = *self.epoch_wall.get_or_insert_with(|| {
            self.epoch_rec = recv;
            now
        });
        if self.speed > 0 {
            let offset = recv.saturating_sub(self.epoch_rec) / u64::from(self.speed);
            let due = epoch_wall.saturating_add(offset);
            if due > now {
                return Ok(FeedPoll::NotBefore(due));
            }
        }
        self.handed_out = true;
        self.records += 1;
        Ok(FeedPoll::Record(FeedRecord {
            recv: now,
            source: SourceId(source),
            kind,
            payload: Cow::Borrowed(&self.buf),
        }))
    }

    /// Records handed out so far (all passes).
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Passes started (1 for the first).
    pub fn passes(&self) -> u64 {
        self.passes
    }
}

impl Feed for ReplayFeed {
    fn can_wait(&self) -> bool {
        true
    }

    fn poll(&mut self, now: u64) -> std::io::Result<FeedPoll<'_>> {
        self.poll_journal(now)
            .map_err(|e| std::io::Error::other(e.to_string()))
    }

    /// A replay has no venue: its answers to these commands are in the journal already.
    fn handle_venue_command(&mut self, _cmd: VenueCommand) {}

    fn close(&mut self, _registry: &Registry, _clock: &WallClock) {
        self.done = true;
    }

    fn passes(&self) -> u64 {
        ReplayFeed::passes(self)
    }
}
