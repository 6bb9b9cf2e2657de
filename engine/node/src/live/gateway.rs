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
use tape_core::link::Backoff;
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

struct GwSink<'a, C: FnMut() -> u64> {
    clock: &'a mut C,
    queue: &'a mut VecDeque<LiveRecord>,
    outstanding: &'a mut BTreeSet<u64>,
    up: bool,
    down: Option<String>,
}

impl<C: FnMut() -> u64> WsSink for GwSink<'_, C> {
    fn now(&mut self) -> u64 {
        (self.clock)()
    }
    fn frame(&mut self, recv: u64, payload: Vec<u8>) {
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
    fn link(&mut self, _recv: u64, ev: LinkEvent) {
        match ev {
            LinkEvent::Up => self.up = true,
            LinkEvent::Down { reason } => self.down = Some(reason),
            _ => {}
        }
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
    backoff: Backoff,
    next_attempt: u64,
    outstanding: BTreeSet<u64>,
    io: GatewayIo,
}

impl OrderGateway {
    pub(crate) fn new(
        url: &str,
        token: Token,
        opts: WsOptions,
        backoff: Backoff,
    ) -> Result<OrderGateway, String> {
        let parsed = WsUrl::parse(url)?;
        Ok(OrderGateway {
            conn: WsConn::new(parsed, token, opts),
            backoff,
            next_attempt: 0,
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
        self.next_attempt.min(self.conn.next_deadline())
    }

    fn drive<C: FnMut() -> u64>(
        &mut self,
        registry: &Registry,
        clock: &mut C,
        queue: &mut VecDeque<LiveRecord>,
        f: impl FnOnce(&mut WsConn, &mut GwSink<'_, C>),
    ) {
        let mut sink = GwSink {
            clock: &mut *clock,
            queue: &mut *queue,
            outstanding: &mut self.outstanding,
            up: false,
            down: None,
        };
        f(&mut self.conn, &mut sink);
        let (up, mut down) = (sink.up, sink.down.take());
        if up {
            self.io.connects += 1;
            // Every report of the venue account from now on, in the API's own envelope.
            let sub = r#"{"id":"tape-subscribe","method":"userDataStream.subscribe"}"#;
            if let Err(e) = self.conn.send_text(sub) {
                self.conn.abort(registry, &mut NullSink(clock), e.clone());
                down = Some(e);
            }
        }
        if let Some(reason) = down {
            let now = clock();
            for id in std::mem::take(&mut self.outstanding) {
                self.io.failed += 1;
                queue.push_back(LiveRecord {
                    recv: now,
                    source: GATEWAY_SOURCE,
                    kind: RecordKind::GatewayFrame as u16,
                    payload: failure(id, &format!("connection lost ({reason})")),
                });
            }
            self.io.last_down = reason;
            self.next_attempt = now.saturating_add(self.backoff.next_delay_ns());
        } else if self.conn.is_open() && self.backoff.attempt() > 0 {
            self.backoff.reset();
        }
    }

    /// Connects when due (at once the first time, then after the backoff).
    pub(crate) fn poll<C: FnMut() -> u64>(
        &mut self,
        registry: &Registry,
        now: u64,
        clock: &mut C,
        queue: &mut VecDeque<LiveRecord>,
        wake: impl Fn() + Send + 'static,
    ) {
        if now >= self.next_attempt {
            self.next_attempt = u64::MAX;
            self.drive(registry, clock, queue, |c, s| c.connect(registry, s, wake));
        } else if now >= self.conn.next_deadline() {
            self.drive(registry, clock, queue, |c, s| c.on_timer(registry, s));
        }
    }

    pub(crate) fn progress<C: FnMut() -> u64>(
        &mut self,
        registry: &Registry,
        clock: &mut C,
        queue: &mut VecDeque<LiveRecord>,
    ) {
        self.drive(registry, clock, queue, |c, s| c.progress(registry, s));
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

    pub(crate) fn close<C: FnMut() -> u64>(&mut self, registry: &Registry, clock: &mut C) {
        self.next_attempt = u64::MAX;
        self.conn.close(registry, &mut NullSink(clock));
    }
}

/// A sink for events nobody needs (a close at shutdown, an abort right after connecting).
struct NullSink<'a, C: FnMut() -> u64>(&'a mut C);

impl<C: FnMut() -> u64> WsSink for NullSink<'_, C> {
    fn now(&mut self) -> u64 {
        (self.0)()
    }
    fn frame(&mut self, _recv: u64, _payload: Vec<u8>) {}
    fn link(&mut self, _recv: u64, _ev: LinkEvent) {}
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
