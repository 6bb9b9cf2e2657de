//! The order gateway: one WebSocket to a venue's order API (Binance's WebSocket API shape,
//! as the venue simulator serves it), on the engine's mio loop.
//!
//! The desk renders `order.place` / `order.cancel` requests; [`OrderGateway::send`] writes
//! them. Everything that comes back (responses, user-data events after the
//! `userDataStream.subscribe` sent on every connect) becomes a
//! [`RecordKind::GatewayFrame`] record for the journal and then the engine. A request that
//! cannot be sent, or is outstanding when the connection drops, is answered here with an error
//! response in the venue's shape, also journaled, so the desk rejects the order and a replay
//! does the same. (An order the venue did accept before the drop stays live there; tape does
//! not reconcile it after reconnecting: its later reports are counted as invalid transitions.)

use std::collections::{BTreeSet, VecDeque};

use mio::{Registry, Token};

use super::feed::LiveRecord;
use super::ws::{WsConn, WsOptions, WsSink, WsUrl};
use tape_core::input::{RecordKind, GATEWAY_SOURCE};
use tape_core::link::{Backoff, LinkAction, LinkConfig, VenueLink};
use tape_core::venue::LinkEvent;

/// The request id the desk put first in a request (`{"id":N,...`).
fn request_id(json: &str) -> Option<u64> {
    let rest = json.strip_prefix("{\"id\":")?;
    let end = rest.find(|c: char| !c.is_ascii_digit())?;
    rest[..end].parse().ok()
}

fn failure(id: u64, reason: &str) -> Vec<u8> {
    let mut msg = String::new();
    tape_core::wire::json::escape_json_string(&mut msg, &format!("order gateway: {reason}"));
    format!("{{\"id\":{id},\"status\":503,\"error\":{{\"code\":-1001,\"msg\":{msg}}}}}")
        .into_bytes()
}

/// Feeds what the connection reports to the link; the link's actions wait in `todo` until the
/// connection is free again (the gateway journals no link records: its frames tell the story).
struct GwSink<'a, C: FnMut() -> u64> {
    clock: &'a mut C,
    queue: &'a mut VecDeque<LiveRecord>,
    outstanding: &'a mut BTreeSet<u64>,
    link: &'a mut VenueLink,
    todo: &'a mut VecDeque<LinkAction>,
}

impl<C: FnMut() -> u64> GwSink<'_, C> {
    fn pump(&mut self) {
        while let Some(action) = self.link.poll_action() {
            self.todo.push_back(action);
        }
    }
}

impl<C: FnMut() -> u64> WsSink for GwSink<'_, C> {
    fn now(&mut self) -> u64 {
        (self.clock)()
    }
    fn frame(&mut self, recv: u64, payload: Vec<u8>) {
        self.link.handle_frame(recv);
        if let Some(id) = std::str::from_utf8(&payload).ok().and_then(request_id) {
            self.outstanding.remove(&id);
        }
        self.queue.push_back(LiveRecord {
            recv,
            source: GATEWAY_SOURCE,
            kind: RecordKind::GatewayFrame as u16,
            payload,
        });
    }
    fn opened(&mut self, now: u64) {
        self.link.handle_connected(now);
        self.pump();
    }
    fn lost(&mut self, now: u64, reason: String) {
        self.link.handle_closed(now, reason);
        self.pump();
    }
}

/// Counters of the order gateway, for `/status`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GatewayIo {
    /// The order API URL.
    pub url: String,
    /// True while connected.
    pub connected: bool,
    /// Connections opened.
    pub connects: u64,
    /// Requests written.
    pub sent: u64,
    /// Requests answered with a failure here (not connected, dropped while outstanding).
    pub failed: u64,
    /// The last reason the connection went down.
    pub last_down: String,
}

/// The connection to the venue's order API.
pub(crate) struct OrderGateway {
    conn: WsConn,
    link: VenueLink,
    /// The first poll starts the link.
    started: bool,
    outstanding: BTreeSet<u64>,
    io: GatewayIo,
}

impl OrderGateway {
    pub(crate) fn new(
        url: &str,
        token: Token,
        opts: WsOptions,
        link: LinkConfig,
        backoff: Backoff,
    ) -> Result<OrderGateway, String> {
        let parsed = WsUrl::parse(url)?;
        Ok(OrderGateway {
            conn: WsConn::new(parsed, token, opts),
            link: VenueLink::new(url, link, backoff),
            started: false,
            outstanding: BTreeSet::new(),
            io: GatewayIo {
                url: url.to_owned(),
                ..GatewayIo::default()
            },
        })
    }

    /// The error record for a request when no gateway is configured (`recv` is set by the
    /// caller).
    pub(crate) fn unconfigured_failure(json: &str) -> Option<LiveRecord> {
        request_id(json).map(|id| LiveRecord {
            recv: 0,
            source: GATEWAY_SOURCE,
            kind: RecordKind::GatewayFrame as u16,
            payload: failure(id, "no order gateway is configured"),
        })
    }

    pub(crate) fn io(&self) -> GatewayIo {
        let mut io = self.io.clone();
        io.connected = self.conn.is_open();
        io
    }

    pub(crate) fn next_deadline(&self) -> u64 {
        if !self.started {
            return 0;
        }
        self.link.poll_timeout().unwrap_or(u64::MAX)
    }

    fn drive<C: FnMut() -> u64>(
        &mut self,
        clock: &mut C,
        queue: &mut VecDeque<LiveRecord>,
        todo: &mut VecDeque<LinkAction>,
        f: impl FnOnce(&mut WsConn, &mut GwSink<'_, C>),
    ) {
        let mut sink = GwSink {
            clock: &mut *clock,
            queue: &mut *queue,
            outstanding: &mut self.outstanding,
            link: &mut self.link,
            todo,
        };
        f(&mut self.conn, &mut sink);
    }

    /// Carries out what the link asks for, after the connection call that caused it.
    fn obey<C: FnMut() -> u64>(
        &mut self,
        registry: &Registry,
        clock: &mut C,
        queue: &mut VecDeque<LiveRecord>,
        mut todo: VecDeque<LinkAction>,
        wake: &(impl Fn() + Send + Clone + 'static),
    ) {
        while let Some(action) = todo.pop_front().or_else(|| self.link.poll_action()) {
            match action {
                LinkAction::Connect => {
                    let wake = wake.clone();
                    self.drive(clock, queue, &mut todo, |c, s| c.connect(registry, s, wake));
                }
                LinkAction::SendPing => {
                    self.drive(clock, queue, &mut todo, |c, s| c.send_ping(registry, s));
                }
                LinkAction::Close { .. } => self.conn.abort(registry),
                LinkAction::Journal {
                    event: LinkEvent::Up,
                    ..
                } => {
                    self.io.connects += 1;
                    // Every report of the venue account from now on, in the API's own envelope.
                    let sub = r#"{"id":"tape-subscribe","method":"userDataStream.subscribe"}"#;
                    if let Err(e) = self.conn.send_text(sub) {
                        self.conn.abort(registry);
                        let now = clock();
                        self.link.handle_closed(now, e);
                    }
                }
                LinkAction::Journal {
                    at,
                    event: LinkEvent::Down { reason },
                } => {
                    for id in std::mem::take(&mut self.outstanding) {
                        self.io.failed += 1;
                        queue.push_back(LiveRecord {
                            recv: at,
                            source: GATEWAY_SOURCE,
                            kind: RecordKind::GatewayFrame as u16,
                            payload: failure(id, &format!("connection lost ({reason})")),
                        });
                    }
                    self.io.last_down = reason;
                }
                LinkAction::Journal { .. } | LinkAction::CancelSnapshots => {}
            }
        }
    }

    /// Connects when due (at once the first time, then after the backoff), and runs the
    /// link's timers.
    pub(crate) fn poll<C: FnMut() -> u64>(
        &mut self,
        registry: &Registry,
        now: u64,
        clock: &mut C,
        queue: &mut VecDeque<LiveRecord>,
        wake: impl Fn() + Send + Clone + 'static,
    ) {
        if !self.started {
            self.started = true;
            self.link.start(clock());
        } else if self.link.poll_timeout().is_some_and(|t| now >= t) {
            self.link.handle_timeout(clock());
        }
        self.obey(registry, clock, queue, VecDeque::new(), &wake);
    }

    pub(crate) fn progress<C: FnMut() -> u64>(
        &mut self,
        registry: &Registry,
        clock: &mut C,
        queue: &mut VecDeque<LiveRecord>,
        wake: impl Fn() + Send + Clone + 'static,
    ) {
        let mut todo = VecDeque::new();
        self.drive(clock, queue, &mut todo, |c, s| c.progress(registry, s));
        self.obey(registry, clock, queue, todo, &wake);
    }

    /// Writes one request; a failure is answered at once with a journaled error response.
    pub(crate) fn send(&mut self, now: u64, json: &str, queue: &mut VecDeque<LiveRecord>) {
        let id = request_id(json);
        let res = self.conn.send_text(json);
        match (res, id) {
            (Ok(()), Some(id)) => {
                self.io.sent += 1;
                self.outstanding.insert(id);
            }
            (Ok(()), None) => self.io.sent += 1,
            (Err(reason), Some(id)) => {
                self.io.failed += 1;
                queue.push_back(LiveRecord {
                    recv: now,
                    source: GATEWAY_SOURCE,
                    kind: RecordKind::GatewayFrame as u16,
                    payload: failure(id, &reason),
                });
            }
            (Err(_), None) => self.io.failed += 1,
        }
    }

    /// Shutdown: a close frame, then the socket goes; requests still outstanding get no
    /// answer (the node is stopping).
    pub(crate) fn close<C: FnMut() -> u64>(&mut self, registry: &Registry, clock: &mut C) {
        self.started = true;
        self.conn.send_close_frame();
        self.link.close(clock());
        while let Some(action) = self.link.poll_action() {
            if let LinkAction::Close { .. } = action {
                self.conn.abort(registry);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_and_failures() {
        assert_eq!(request_id(r#"{"id":42,"method":"order.place"}"#), Some(42));
        assert_eq!(request_id(r#"{"id":"x"}"#), None);
        assert_eq!(request_id("garbage"), None);
        let f: serde_json::Value =
            serde_json::from_slice(&failure(7, "not \"connected\"")).unwrap();
        assert_eq!(f["id"], 7);
        assert_eq!(f["status"], 503);
        assert!(f["error"]["msg"]
            .as_str()
            .unwrap()
            .contains("not \"connected\""));
    }
}
