//! Connection state of a live feed, as journal records, and the venue status built from it.
//!
//! The io layer journals what happens to each exchange connection as a [`RecordKind::Link`]
//! record on the connection's source (the same source as its frames): an attempt starts, the
//! WebSocket is up, it went down (and why), the next attempt waits. The engine treats these as
//! inputs like any other: a `down` clears every book the connection fed (clients see them go
//! stale) and the venue status changes. Because they are journaled, a replay reproduces the
//! outputs of a live session with its reconnects exactly.
//!
//! [`RecordKind::Link`]: crate::input::RecordKind::Link

use crate::input::SourceId;
use crate::instrument::Market;

/// Longest reason kept from a link record (longer ones are cut at a char boundary).
pub const MAX_REASON_BYTES: usize = 200;

/// What happened to a feed connection. Journal payload: a `"type":"link"` record (see
/// [`crate::record`]), e.g. `{"v":2,"type":"link","event":"down","reason":"eof"}`; journals
/// written before version 2 hold `tape-link/1 event=...` lines, which [`LinkEvent::parse`]
/// still reads. A reason is one line of at most [`MAX_REASON_BYTES`] whichever encoding
/// carried it, so the outputs never depend on the encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// A connection attempt starts.
    Connecting {
        /// The URL being connected to.
        url: String,
    },
    /// The WebSocket handshake completed; frames follow.
    Up,
    /// The connection is gone (closed by the venue, failed, stalled, refused ...).
    Down {
        /// Why, for humans.
        reason: String,
    },
    /// The next attempt waits this long.
    Backoff {
        /// Consecutive failed attempts so far (1 for the first retry).
        attempt: u32,
        /// The delay chosen, ms.
        delay_ms: u64,
    },
}

/// Why a link record could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// A malformed `tape-link/1` line (or neither encoding).
    #[error("bad link record: {0}")]
    Legacy(&'static str),
    /// A malformed version 2 record.
    #[error("bad link record: {0}")]
    Record(#[from] crate::record::RecordError),
}

impl LinkEvent {
    /// The journal payload for this event (version 2).
    pub fn to_text(&self) -> String {
        crate::record::encode_link(self)
    }

    /// Parses an event in either encoding (version 2 or `tape-link/1`).
    ///
    /// # Errors
    /// [`LinkError`] for anything else.
    pub fn parse(payload: &[u8]) -> Result<LinkEvent, LinkError> {
        crate::record::parse_link(payload)
    }
}

/// `s` on one line (control characters become spaces), cut to at most `max` bytes.
pub(crate) fn one_line(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max));
    for c in s.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    out
}

/// Where a venue connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VenueState {
    /// An attempt is in progress (resolve, TCP, TLS, WebSocket handshake).
    Connecting,
    /// Connected, but not every book it feeds is synced yet.
    Syncing,
    /// Connected and every book it feeds is synced.
    Live,
    /// The connection is down.
    Down,
    /// Waiting before the next attempt.
    BackingOff,
}

impl VenueState {
    /// Stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            VenueState::Connecting => "connecting",
            VenueState::Syncing => "syncing",
            VenueState::Live => "live",
            VenueState::Down => "down",
            VenueState::BackingOff => "backing_off",
        }
    }

    fn code(self) -> u8 {
        match self {
            VenueState::Connecting => 0,
            VenueState::Syncing => 1,
            VenueState::Live => 2,
            VenueState::Down => 3,
            VenueState::BackingOff => 4,
        }
    }
}

/// The status of one venue connection (one WebSocket source), emitted as
/// [`Event::Venue`](crate::output::Event::Venue) whenever its state or book counts change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VenueStatus {
    /// The connection's source.
    pub source: SourceId,
    /// The source's name.
    pub name: String,
    /// Its market.
    pub market: Market,
    /// Where it stands.
    pub state: VenueState,
    /// Why it last went down (empty if never).
    pub reason: String,
    /// Connection attempts started.
    pub attempts: u64,
    /// Connections established.
    pub connects: u64,
    /// Connections lost.
    pub disconnects: u64,
    /// The current backoff delay, ms (while backing off).
    pub backoff_ms: u64,
    /// Books this connection feeds.
    pub books: u32,
    /// Of those, how many are synced.
    pub books_synced: u32,
    /// Receive time of the record that last changed `state`, ns.
    pub since_ns: u64,
    /// The last attempt's URL names streams, none of them depth (USD-M's `/market` connection,
    /// say): the connection feeds no book, so it is `Live` as soon as it is up.
    bookless: bool,
}

impl VenueStatus {
    /// A fresh status for a source that has not connected yet.
    pub fn new(source: SourceId, name: String, market: Market) -> VenueStatus {
        VenueStatus {
            source,
            name,
            market,
            state: VenueState::Down,
            reason: String::new(),
            attempts: 0,
            connects: 0,
            disconnects: 0,
            backoff_ms: 0,
            books: 0,
            books_synced: 0,
            since_ns: 0,
            bookless: false,
        }
    }

    /// Applies a link event at `now` (ns).
    pub fn on_link(&mut self, now: u64, ev: &LinkEvent) {
        let state = match ev {
            LinkEvent::Connecting { url } => {
                self.attempts += 1;
                // Stream names hold an `@` (`btcusdt@aggTrade`); a URL naming none tells nothing.
                self.bookless = url.contains('@') && !url.contains("@depth");
                VenueState::Connecting
            }
            LinkEvent::Up => {
                self.connects += 1;
                self.backoff_ms = 0;
                self.connected_state()
            }
            LinkEvent::Down { reason } => {
                if matches!(self.state, VenueState::Syncing | VenueState::Live) {
                    self.disconnects += 1;
                }
                self.reason.clone_from(reason);
                self.books_synced = 0;
                VenueState::Down
            }
            LinkEvent::Backoff { delay_ms, .. } => {
                self.backoff_ms = *delay_ms;
                VenueState::BackingOff
            }
        };
        self.set_state(now, state);
    }

    /// Updates the book counts; a connected venue is `Live` when all its books are synced.
    /// Returns true if anything changed.
    pub fn on_books(&mut self, now: u64, books: u32, synced: u32) -> bool {
        let before = (self.books, self.books_synced, self.state);
        self.books = books;
        self.books_synced = synced;
        if matches!(self.state, VenueState::Syncing | VenueState::Live) {
            let state = self.connected_state();
            self.set_state(now, state);
        }
        before != (self.books, self.books_synced, self.state)
    }

    /// A connected venue is `Live` when all its books are synced, or when it feeds none and
    /// never will (no depth stream in its URL).
    fn connected_state(&self) -> VenueState {
        let (books, synced) = (self.books, self.books_synced);
        if (books > 0 && synced == books) || (self.bookless && books == 0) {
            VenueState::Live
        } else {
            VenueState::Syncing
        }
    }

    fn set_state(&mut self, now: u64, state: VenueState) {
        if state != self.state {
            self.state = state;
            self.since_ns = now;
        }
    }

    /// Canonical encoding for output digests.
    pub(crate) fn encode(&self, out: &mut impl FnMut(&[u8])) {
        out(&self.source.0.to_le_bytes());
        out(&[self.state.code()]);
        for v in [
            self.attempts,
            self.connects,
            self.disconnects,
            self.backoff_ms,
            u64::from(self.books),
            u64::from(self.books_synced),
            self.since_ns,
        ] {
            out(&v.to_le_bytes());
        }
        out(&xxhash_rust::xxh3::xxh3_64(self.reason.as_bytes()).to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_round_trip() {
        for ev in [
            LinkEvent::Connecting {
                url: "wss://fstream.binance.com/stream?streams=btcusdt@depth@100ms".into(),
            },
            LinkEvent::Up,
            LinkEvent::Down {
                reason: "closed by venue: 1001 going away".into(),
            },
            LinkEvent::Backoff {
                attempt: 3,
                delay_ms: 2500,
            },
        ] {
            assert_eq!(LinkEvent::parse(ev.to_text().as_bytes()), Ok(ev));
        }
    }

    #[test]
    fn link_rejects_garbage_and_bounds_reasons() {
        for bad in [
            &b""[..],
            b"\xff",
            b"tape-link/1",
            b"tape-link/1 event=sideways",
            b"tape-link/1 event=up now",
            b"tape-link/1 event=down",
            b"tape-link/1 event=backoff attempt=x delay_ms=1",
            b"tape-link/1 event=backoff attempt=1",
            b"tape-link/1 event=backoff attempt=1 delay_ms=2 extra=3",
            b"tape-link/2 event=up",
        ] {
            assert!(LinkEvent::parse(bad).is_err(), "{bad:?}");
        }
        let long = "é\nx".repeat(500);
        let text = LinkEvent::Down { reason: long }.to_text();
        assert!(!text.contains('\n'));
        match LinkEvent::parse(text.as_bytes()).unwrap() {
            LinkEvent::Down { reason } => assert!(reason.len() <= MAX_REASON_BYTES),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_connection_without_depth_streams_is_live_when_up() {
        let mut s = VenueStatus::new(SourceId(1), "usdm:market".into(), Market::UsdM);
        let url = "wss://h/market/stream?streams=btcusdt@aggTrade/btcusdt@ticker".to_owned();
        s.on_link(1, &LinkEvent::Connecting { url });
        s.on_link(2, &LinkEvent::Up);
        assert_eq!((s.state, s.since_ns), (VenueState::Live, 2));
        assert!(!s.on_books(3, 0, 0));
        s.on_link(
            4,
            &LinkEvent::Down {
                reason: "eof".into(),
            },
        );
        assert_eq!((s.state, s.disconnects), (VenueState::Down, 1));
        // A connection with depth streams waits for its books, even before it has any.
        let url = "wss://h/public/stream?streams=btcusdt@depth@100ms".to_owned();
        s.on_link(5, &LinkEvent::Connecting { url });
        s.on_link(6, &LinkEvent::Up);
        assert_eq!(s.state, VenueState::Syncing);
        assert!(!s.on_books(7, 0, 0));
        assert_eq!(s.state, VenueState::Syncing);
    }

    #[test]
    fn status_follows_link_and_books() {
        let mut s = VenueStatus::new(SourceId(0), "usdm".into(), Market::UsdM);
        let depth = "wss://h/public/stream?streams=btcusdt@depth@100ms".to_owned();
        s.on_link(1, &LinkEvent::Connecting { url: depth });
        assert_eq!(s.state, VenueState::Connecting);
        s.on_link(2, &LinkEvent::Up);
        assert_eq!((s.state, s.connects), (VenueState::Syncing, 1));
        assert!(s.on_books(3, 2, 1));
        assert_eq!(s.state, VenueState::Syncing);
        assert!(s.on_books(4, 2, 2));
        assert_eq!((s.state, s.since_ns), (VenueState::Live, 4));
        assert!(!s.on_books(5, 2, 2));
        s.on_link(
            6,
            &LinkEvent::Down {
                reason: "eof".into(),
            },
        );
        assert_eq!(
            (s.state, s.disconnects, s.books_synced),
            (VenueState::Down, 1, 0)
        );
        // Book counts never make a disconnected venue live.
        s.on_books(7, 2, 2);
        assert_eq!(s.state, VenueState::Down);
        s.on_link(
            8,
            &LinkEvent::Backoff {
                attempt: 1,
                delay_ms: 700,
            },
        );
        assert_eq!((s.state, s.backoff_ms), (VenueState::BackingOff, 700));
        // A failed attempt (down without up) is not a disconnect.
        s.on_link(9, &LinkEvent::Connecting { url: "x".into() });
        s.on_link(
            10,
            &LinkEvent::Down {
                reason: "refused".into(),
            },
        );
        assert_eq!((s.attempts, s.disconnects), (2, 1));
    }
}
