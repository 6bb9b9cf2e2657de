//! [`VenueLink`]: the decisions of one venue connection, without the connection.
//!
//! The node's io code (resolver thread, non-blocking TCP, rustls, the tungstenite handshake)
//! only reports what happened (`handle_connected`, `handle_frame`, `handle_closed`) and obeys
//! what the link asks for ([`LinkAction`]). The link decides everything that used to be spread
//! over the io code: when an attempt has taken too long, when a quiet connection gets a ping,
//! when it counts as stalled, how long to back off before the next attempt, when the backoff
//! starts over, and which [`LinkEvent`]s the journal sees in which order. Time only enters as
//! `now`, so tests drive it with a virtual clock and replay stays exact, as quinn-proto does for
//! a QUIC connection.

use std::collections::VecDeque;

use super::Backoff;
use crate::venue::LinkEvent;

/// When a connection has proved itself healthy enough to start the backoff over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthyAfter {
    /// The connection must have been up this long, ns.
    pub up_ns: u64,
    /// And must have delivered at least one data frame (a market-data link that connects but
    /// never streams is refusing us in all but name; an order link is quiet by nature).
    pub needs_data: bool,
}

/// Timings of a [`VenueLink`]; every duration is in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkConfig {
    /// From the start of an attempt to an open WebSocket.
    pub connect_timeout_ns: u64,
    /// Silence after which a ping goes out (keeps NAT and proxies awake, proves the path).
    pub ping_after_ns: u64,
    /// Silence after which the connection is declared stalled and dropped.
    pub stall_timeout_ns: u64,
    /// When the backoff starts over.
    pub healthy_after: HealthyAfter,
}

/// What the link asks its io code to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkAction {
    /// Start a connection attempt (resolve, TCP, TLS, handshake). Report the outcome with
    /// [`VenueLink::handle_connected`] or [`VenueLink::handle_closed`].
    Connect,
    /// Send a WebSocket ping on the open connection.
    SendPing,
    /// Drop the connection or attempt now, without reporting it back: the link has already
    /// counted it as down.
    Close {
        /// Why, for logs (the journal gets it through [`LinkAction::Journal`]).
        reason: String,
    },
    /// Journal this event (as a link record of the venue's source) at `at`.
    Journal {
        /// The `now` of the input that caused it.
        at: u64,
        /// The event.
        event: LinkEvent,
    },
    /// The link went down: requests tied to this connection (REST snapshots whose diffs the
    /// next connection will not continue) are void. The next connection's diffs ask again.
    CancelSnapshots,
}

/// Where the link stands. Transitions consume the old phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not started yet.
    Idle,
    /// An attempt is under way and must be open by `deadline`.
    Connecting { deadline: u64 },
    /// The WebSocket is open.
    Open {
        opened_at: u64,
        /// Last data frame (or the opening).
        last_rx: u64,
        /// A ping went out in the current silence.
        pinged: bool,
        /// A data frame arrived on this connection.
        data_seen: bool,
    },
    /// Backing off: the next attempt starts at `until`.
    Waiting { until: u64 },
    /// Closed by tape; terminal.
    Closed,
}

/// The sans-IO state machine of one venue connection: inputs `handle_*(now, ..)`, outputs
/// [`poll_action`](Self::poll_action) and [`poll_timeout`](Self::poll_timeout).
#[derive(Debug, Clone)]
pub struct VenueLink {
    url: String,
    config: LinkConfig,
    backoff: Backoff,
    phase: Phase,
    actions: VecDeque<LinkAction>,
}

impl VenueLink {
    /// An idle link to `url` (journaled in `connecting` events); nothing happens before
    /// [`start`](Self::start).
    pub fn new(url: impl Into<String>, config: LinkConfig, backoff: Backoff) -> VenueLink {
        VenueLink {
            url: url.into(),
            config,
            backoff,
            phase: Phase::Idle,
            actions: VecDeque::new(),
        }
    }

    /// The first attempt starts now. Does nothing unless idle.
    pub fn start(&mut self, now: u64) {
        if self.phase == Phase::Idle {
            self.connect(now);
        }
    }

    /// The io finished the handshake: the WebSocket is open. Ignored unless connecting.
    pub fn handle_connected(&mut self, now: u64) {
        self.phase = match self.phase {
            Phase::Connecting { .. } => {
                self.journal(now, LinkEvent::Up);
                Phase::Open {
                    opened_at: now,
                    last_rx: now,
                    pinged: false,
                    data_seen: false,
                }
            }
            other => other,
        };
    }

    /// A data frame (text or binary) arrived. Control frames do not count: a venue that
    /// answers pings but sends nothing is stalled.
    pub fn handle_frame(&mut self, now: u64) {
        if let Phase::Open {
            last_rx,
            pinged,
            data_seen,
            ..
        } = &mut self.phase
        {
            *last_rx = now.max(*last_rx);
            *pinged = false;
            *data_seen = true;
        }
    }

    /// The io lost the connection or the attempt by itself (refused, reset, closed by the
    /// venue, handshake failed, ...), and has released it. Ignored unless connecting or open.
    pub fn handle_closed(&mut self, now: u64, reason: impl Into<String>) {
        if matches!(self.phase, Phase::Connecting { .. } | Phase::Open { .. }) {
            self.down(now, reason.into(), false);
        }
    }

    /// Fires whatever is due at `now`: the connect timeout, the quiet ping, the stall timeout,
    /// the next attempt.
    pub fn handle_timeout(&mut self, now: u64) {
        match self.phase {
            Phase::Idle | Phase::Closed => {}
            Phase::Connecting { deadline } => {
                if now >= deadline {
                    let ms = self.config.connect_timeout_ns / 1_000_000;
                    self.down(now, format!("connect timeout after {ms} ms"), true);
                }
            }
            Phase::Open {
                last_rx, pinged, ..
            } => {
                let silent = now.saturating_sub(last_rx);
                if silent >= self.config.stall_timeout_ns {
                    let ms = silent / 1_000_000;
                    self.down(now, format!("stalled: nothing received for {ms} ms"), true);
                } else if silent >= self.config.ping_after_ns && !pinged {
                    if let Phase::Open { pinged, .. } = &mut self.phase {
                        *pinged = true;
                    }
                    self.actions.push_back(LinkAction::SendPing);
                }
            }
            Phase::Waiting { until } => {
                if now >= until {
                    self.connect(now);
                }
            }
        }
    }

    /// Closes for good (shutdown): an open connection or attempt goes down with
    /// `closed by tape`, without a backoff; a pending retry is dropped silently.
    pub fn close(&mut self, now: u64) {
        let old = std::mem::replace(&mut self.phase, Phase::Closed);
        if matches!(old, Phase::Connecting { .. } | Phase::Open { .. }) {
            let reason = String::from("closed by tape");
            self.actions.push_back(LinkAction::Close {
                reason: reason.clone(),
            });
            self.journal(now, LinkEvent::Down { reason });
        }
    }

    /// The earliest `now` at which [`handle_timeout`](Self::handle_timeout) has something to
    /// do; `None` when idle or closed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        match self.phase {
            Phase::Idle | Phase::Closed => None,
            Phase::Connecting { deadline } => Some(deadline),
            Phase::Open {
                last_rx, pinged, ..
            } => {
                let stall = last_rx.saturating_add(self.config.stall_timeout_ns);
                if pinged {
                    Some(stall)
                } else {
                    Some(stall.min(last_rx.saturating_add(self.config.ping_after_ns)))
                }
            }
            Phase::Waiting { until } => Some(until),
        }
    }

    /// The next thing the io must do. Call until `None` after every input.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<LinkAction> {
        self.actions.pop_front()
    }

    /// True while the WebSocket is open.
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open { .. })
    }

    /// True while an attempt is under way (between `Connect` and open or down).
    pub fn is_connecting(&self) -> bool {
        matches!(self.phase, Phase::Connecting { .. })
    }

    /// When the next attempt starts, while backing off.
    pub fn next_attempt(&self) -> Option<u64> {
        match self.phase {
            Phase::Waiting { until } => Some(until),
            _ => None,
        }
    }

    /// The backoff (its attempt count and ceiling), for status and tests.
    pub fn backoff(&self) -> &Backoff {
        &self.backoff
    }

    /// The URL journaled in `connecting` events.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn connect(&mut self, now: u64) {
        self.journal(
            now,
            LinkEvent::Connecting {
                url: self.url.clone(),
            },
        );
        self.actions.push_back(LinkAction::Connect);
        self.phase = Phase::Connecting {
            deadline: now.saturating_add(self.config.connect_timeout_ns),
        };
    }

    /// The connection or attempt is over: journal why, void its snapshots, back off. `close`
    /// when the link (not the io) ended it, so the io must drop it.
    fn down(&mut self, now: u64, reason: String, close: bool) {
        if let Phase::Open {
            opened_at,
            data_seen,
            ..
        } = self.phase
        {
            // Checked when it matters (the next delay) rather than on a timer: the connection
            // was up without a break from `opened_at` to `now`.
            let healthy = self.config.healthy_after;
            if now.saturating_sub(opened_at) >= healthy.up_ns && (data_seen || !healthy.needs_data)
            {
                self.backoff.reset();
            }
        }
        if close {
            self.actions.push_back(LinkAction::Close {
                reason: reason.clone(),
            });
        }
        self.journal(now, LinkEvent::Down { reason });
        self.actions.push_back(LinkAction::CancelSnapshots);
        let delay = self.backoff.next_delay_ns();
        self.journal(
            now,
            LinkEvent::Backoff {
                attempt: self.backoff.attempt(),
                delay_ms: delay / 1_000_000,
            },
        );
        self.phase = Phase::Waiting {
            until: now.saturating_add(delay),
        };
    }

    fn journal(&mut self, at: u64, event: LinkEvent) {
        self.actions.push_back(LinkAction::Journal { at, event });
    }
}
