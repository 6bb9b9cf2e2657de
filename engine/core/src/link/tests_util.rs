//! A [`VenueLink`] driven with virtual time and a model of its io, no sockets: the way
//! `server/tests_util.rs` drives the hub and quinn's `Pair` drives two endpoints.
//!
//! The model io holds at most one attempt or connection and checks, as each action comes out,
//! the link's contract: never a `Connect` while one is live, a `Close` or a ping only for a live
//! one, journal events in the order `connecting (up) down backoff connecting ...`, and
//! deadlines never in the past. Tests then look at what was journaled, pinged and closed.

use super::{Backoff, HealthyAfter, LinkAction, LinkConfig, SnapshotScheduler, VenueLink};
use crate::venue::LinkEvent;

pub(crate) const MS: u64 = 1_000_000;
pub(crate) const SEC: u64 = 1_000_000_000;

/// The feed's settings in tests: connect timeout 5 s, ping after 10 s, stall after 30 s,
/// backoff 1 s doubling to 8 s, healthy after 8 s up with data.
pub(crate) fn feed_config() -> LinkConfig {
    LinkConfig {
        connect_timeout_ns: 5 * SEC,
        ping_after_ns: 10 * SEC,
        stall_timeout_ns: 30 * SEC,
        healthy_after: HealthyAfter {
            up_ns: 8 * SEC,
            needs_data: true,
        },
    }
}

pub(crate) fn feed_backoff(seed: u64) -> Backoff {
    Backoff::new(SEC, 8 * SEC, seed)
}

/// The link, the model io and a virtual clock.
pub(crate) struct Harness {
    pub link: VenueLink,
    pub now: u64,
    /// Every journaled event with its time.
    pub journal: Vec<(u64, LinkEvent)>,
    /// Times of `Connect`, `SendPing`; `Close` reasons with their times.
    pub connects: Vec<u64>,
    pub pings: Vec<u64>,
    pub closes: Vec<(u64, String)>,
    /// The io holds an attempt or a connection.
    pub live: bool,
    /// `CancelSnapshots` seen.
    pub cancels: usize,
    /// A snapshot scheduler wired as `LiveFeed` wires it: asks only while open, and
    /// `CancelSnapshots` cancels `keys`.
    pub snapshots: Option<(SnapshotScheduler, Vec<u32>)>,
}

impl Harness {
    pub(crate) fn new(config: LinkConfig, backoff: Backoff) -> Harness {
        Harness {
            link: VenueLink::new("wss://venue.test/stream", config, backoff),
            now: 0,
            journal: Vec::new(),
            connects: Vec::new(),
            pings: Vec::new(),
            closes: Vec::new(),
            live: false,
            cancels: 0,
            snapshots: None,
        }
    }

    /// Starts the link at the current time.
    pub(crate) fn start(&mut self) {
        self.link.start(self.now);
        self.drain();
    }

    /// The io reports the handshake done.
    pub(crate) fn connected(&mut self) {
        assert!(self.live, "the io cannot connect without an attempt");
        self.link.handle_connected(self.now);
        self.drain();
    }

    /// A data frame arrives.
    pub(crate) fn frame(&mut self) {
        self.link.handle_frame(self.now);
        self.drain();
    }

    /// The io loses the attempt or connection by itself.
    pub(crate) fn closed(&mut self, reason: &str) {
        assert!(self.live, "nothing to lose");
        self.live = false;
        self.link.handle_closed(self.now, reason);
        self.drain();
    }

    /// Shutdown.
    pub(crate) fn close(&mut self) {
        self.link.close(self.now);
        self.drain();
    }

    /// Moves the clock forward by `dt`, firing every deadline on the way at its exact time.
    pub(crate) fn advance(&mut self, dt: u64) {
        let target = self.now.saturating_add(dt);
        let mut fired_here = 0;
        while let Some(t) = self.link.poll_timeout().filter(|t| *t <= target) {
            assert!(t >= self.now, "deadline {t} in the past (now {})", self.now);
            fired_here = if t == self.now { fired_here + 1 } else { 0 };
            assert!(fired_here < 1_000, "the link spins at {t}");
            self.now = t;
            self.link.handle_timeout(t);
            self.drain();
        }
        self.now = target;
    }

    /// Advances to the next deadline (which must exist).
    pub(crate) fn jump(&mut self) {
        let t = self.link.poll_timeout().expect("a deadline");
        self.advance(t - self.now);
    }

    /// Journaled events from index `from` on, without times.
    pub(crate) fn events_since(&self, from: usize) -> Vec<LinkEvent> {
        self.journal[from..]
            .iter()
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// The backoff delays journaled so far, ns (ms precision as journaled).
    pub(crate) fn backoffs(&self) -> Vec<(u32, u64)> {
        self.journal
            .iter()
            .filter_map(|(_, e)| match e {
                LinkEvent::Backoff { attempt, delay_ms } => Some((*attempt, *delay_ms)),
                _ => None,
            })
            .collect()
    }

    fn drain(&mut self) {
        while let Some(action) = self.link.poll_action() {
            match action {
                LinkAction::Connect => {
                    assert!(!self.live, "a second connect while one is live");
                    assert!(self.link.is_connecting());
                    self.live = true;
                    self.connects.push(self.now);
                }
                LinkAction::SendPing => {
                    assert!(
                        self.live && self.link.is_open(),
                        "ping without a connection"
                    );
                    self.pings.push(self.now);
                }
                LinkAction::Close { reason } => {
                    assert!(self.live, "close without a connection");
                    self.live = false;
                    self.closes.push((self.now, reason));
                }
                LinkAction::Journal { at, event } => {
                    assert_eq!(at, self.now, "journaled at the input's time");
                    let prev = self.journal.last().map(|(_, e)| e);
                    assert!(follows(prev, &event), "{event:?} after {prev:?}");
                    self.journal.push((at, event));
                }
                LinkAction::CancelSnapshots => {
                    assert!(!self.live, "snapshots voided while the connection lives");
                    self.cancels += 1;
                    if let Some((s, keys)) = self.snapshots.as_mut() {
                        for k in keys.iter() {
                            s.cancel(*k);
                        }
                    }
                }
            }
        }
        if let Some(t) = self.link.poll_timeout() {
            assert!(t >= self.now, "deadline {t} in the past (now {})", self.now);
        }
    }
}

/// The journal's grammar: `(connecting (up)? down backoff)* (connecting (up)? down)?`, where
/// only `closed by tape` may end without a backoff.
pub(crate) fn follows(prev: Option<&LinkEvent>, next: &LinkEvent) -> bool {
    use LinkEvent::{Backoff, Connecting, Down, Up};
    match (prev, next) {
        (None | Some(Backoff { .. }), Connecting { .. }) => true,
        (Some(Connecting { .. }), Up | Down { .. }) => true,
        (Some(Up), Down { .. }) => true,
        (Some(Down { reason }), Backoff { .. }) => reason != "closed by tape",
        _ => false,
    }
}
