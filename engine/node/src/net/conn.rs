//! One connection's state machine: request head, upgrade, WebSocket, lingering close.
//!
//! Every entry point is re-entrant and tolerates spurious readiness: each call does whatever
//! the current phase can do now (read until `WouldBlock`, flush until `WouldBlock`) and the
//! owner re-registers mio interest from [`Conn::interest`] afterwards.

mod ws;

use std::io::{self, Read, Write};
use std::mem;
use std::net::SocketAddr;

use mio::Interest;

use super::http::{self, HeadParse, RequestHead, UpgradeError};
use super::{NetConfig, NetEvent, NetStats, SocketId};
use crate::transport::Transport;
use ws::Ws;

/// Largest close reason a close frame can carry (125 minus the code).
const MAX_CLOSE_REASON_BYTES: usize = 123;

/// Which WebSocket endpoint a connection upgraded on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `ws_path`: messages go to the caller.
    Client,
    /// `echo_path`: messages are echoed here, the caller sees nothing.
    Echo,
}

/// What a connection needs from its owner while it runs.
pub(crate) struct Env<'a> {
    pub cfg: &'a NetConfig,
    pub stats: &'a mut NetStats,
    pub out: &'a mut Vec<NetEvent>,
    pub now: u64,
}

/// What the owner must do with the connection after a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Keep it; re-register interest if it changed.
    Keep,
    /// Deregister and drop the socket (any `Closed` has been emitted).
    Remove,
}

/// Internal control flow between phases.
enum Next {
    /// Nothing more to do until the next readiness event.
    Wait,
    /// The phase changed (or wants another pass): run again.
    Again,
    /// Done, but the peer may still be sending (an HTTP body, frames after a protocol error):
    /// report, shut our side, and linger until its EOF so it reads everything before any RST.
    Drain,
    /// The close handshake completed: nothing more will arrive, so shut our side and drop.
    Finish,
    /// Drop the socket now.
    Remove,
}

enum Phase {
    /// Reading the request head, bounded by `max_http_request_bytes`.
    Head { buf: Vec<u8> },
    /// A [`NetEvent::Http`] is out; waiting for `respond_http`.
    AwaitResponse { head_only: bool },
    /// Writing the 101; the WebSocket starts when it is all out.
    Upgrading {
        out: Vec<u8>,
        pos: usize,
        leftover: Vec<u8>,
        endpoint: Endpoint,
        path: String,
        query: String,
    },
    /// Writing an HTTP response, then lingering.
    Responding { out: Vec<u8>, pos: usize },
    /// A WebSocket, open or in its close handshake.
    Ws(Box<Ws>),
    /// Shutting our side (TLS close_notify, TCP FIN). With `linger`, then discard input until
    /// the peer closes or the deadline passes, so the peer reads everything before any RST.
    Draining { shut: bool, linger: bool },
}

/// One accepted socket and where it is in its life.
pub(crate) struct Conn {
    pub id: SocketId,
    pub peer: SocketAddr,
    pub io: Transport,
    /// The interest currently registered with mio.
    pub registered: Interest,
    /// When this connection is dropped unless it progresses (ns; 0 = never).
    pub deadline: u64,
    /// When it was accepted (ns): the handshake deadline counts from here.
    pub accepted_at: u64,
    /// Counted in the server's handshaking pool and per-address table (the server clears it
    /// when the connection leaves its handshake, so each is uncounted exactly once).
    pub in_pool: bool,
    /// No byte has arrived yet: the deadline is the (short) first-byte one.
    awaiting_first_byte: bool,
    phase: Phase,
    last_heard: u64,
    /// True between `Open` and `Closed`.
    open: bool,
    /// Code and reason for the `Closed` event, once known.
    close: Option<(Option<u16>, String)>,
}

impl Conn {
    /// A socket accepted at `now`: its first byte is due within `first_byte_timeout_ns`, its
    /// request head within `handshake_timeout_ns`.
    pub(crate) fn new(
        id: SocketId,
        peer: SocketAddr,
        io: Transport,
        now: u64,
        cfg: &NetConfig,
    ) -> Self {
        let first = cfg.first_byte_timeout_ns.min(cfg.handshake_timeout_ns);
        Conn {
            id,
            peer,
            io,
            registered: Interest::READABLE,
            deadline: now.saturating_add(first),
            accepted_at: now,
            in_pool: false,
            awaiting_first_byte: true,
            phase: Phase::Head { buf: Vec::new() },
            last_heard: 0,
            open: false,
            close: None,
        }
    }

    /// The interest this connection needs now: always readable, writable while output waits.
    pub(crate) fn interest(&self) -> Interest {
        let write = self.io.wants_write()
            || match &self.phase {
                Phase::Upgrading { .. } | Phase::Responding { .. } => true,
                Phase::Ws(ws) => ws.pending,
                Phase::Draining { shut, .. } => !shut,
                Phase::Head { .. } | Phase::AwaitResponse { .. } => false,
            };
        if write {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        }
    }

    /// True until the opening handshake is done (or an HTTP request is answered): what the
    /// handshaking pool and the per-address limit count.
    pub(crate) fn is_handshaking(&self) -> bool {
        matches!(
            self.phase,
            Phase::Head { .. } | Phase::AwaitResponse { .. } | Phase::Upgrading { .. }
        )
    }

    /// Bytes of an unfinished WebSocket message this connection holds (0 outside a
    /// WebSocket).
    pub(crate) fn partial_bytes(&self) -> usize {
        match &self.phase {
            Phase::Ws(ws) => ws.partial,
            _ => 0,
        }
    }

    /// Last time bytes arrived on an established WebSocket.
    pub(crate) fn last_heard(&self) -> Option<u64> {
        matches!(self.phase, Phase::Ws(_)).then_some(self.last_heard)
    }

    /// True while a plain (not TLS) connection waits for the answer to its HTTP request: the
    /// only state in which [`super::NetServer::detach`] hands its socket over.
    pub(crate) fn detachable(&self) -> bool {
        matches!(self.phase, Phase::AwaitResponse { .. }) && !self.io.is_tls()
    }

    /// The socket, for a connection being detached.
    pub(crate) fn into_socket(self) -> mio::net::TcpStream {
        self.io.into_socket()
    }

    /// True while a send on a client WebSocket waits for the socket.
    pub(crate) fn write_pending(&self) -> bool {
        matches!(&self.phase, Phase::Ws(ws) if ws.pending)
    }

    /// Does whatever the connection can do now. Call on every readiness event (spurious ones
    /// included) and after any state change.
    pub(crate) fn drive(&mut self, env: &mut Env) -> Step {
        loop {
            let next = match self.phase {
                Phase::Head { .. } => self.read_head(env),
                Phase::AwaitResponse { .. } => Next::Wait,
                Phase::Upgrading { .. } => self.write_upgrade(env),
                Phase::Responding { .. } => self.write_response(env),
                Phase::Ws(_) => self.drive_ws(env),
                Phase::Draining { .. } => self.linger(),
            };
            match next {
                Next::Wait => break,
                Next::Again => {}
                Next::Drain => self.enter_draining(env, true),
                Next::Finish => self.enter_draining(env, false),
                Next::Remove => return self.remove(env),
            }
        }
        // TLS records queued by reads (handshake flights, alerts) go out now if they can.
        match self.io.flush() {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => {
                self.count_io_error(env);
                self.remove(env)
            }
            _ => Step::Keep,
        }
    }

    /// The deadline passed: count it and report. The owner drops the socket.
    pub(crate) fn expire(&mut self, env: &mut Env) {
        env.stats.timeouts += 1;
        if self.awaiting_first_byte && matches!(self.phase, Phase::Head { .. }) {
            env.stats.first_byte_timeouts += 1;
        }
        if matches!(
            self.phase,
            Phase::Head { .. } | Phase::AwaitResponse { .. } | Phase::Upgrading { .. }
        ) {
            env.stats.handshake_failures += 1;
        }
        self.set_close(None, "timed out");
        self.report_closed(env);
    }

    /// Emits `Closed` if still owed; the owner drops the socket after this.
    pub(crate) fn remove(&mut self, env: &mut Env) -> Step {
        self.set_close(None, "connection dropped");
        self.report_closed(env);
        Step::Remove
    }

    /// Drops the socket without any goodbye (fault injection); the owner removes it.
    pub(crate) fn abort(&mut self, env: &mut Env) -> Step {
        self.set_close(None, "aborted");
        self.report_closed(env);
        Step::Remove
    }

    /// Answers a pending [`NetEvent::Http`]; ignored in any other phase.
    pub(crate) fn respond(
        &mut self,
        status: u16,
        content_type: &str,
        extra_headers: &str,
        body: &[u8],
        env: &mut Env,
    ) -> Step {
        let Phase::AwaitResponse { head_only } = self.phase else {
            return Step::Keep;
        };
        self.phase = Phase::Responding {
            out: http::response(status, content_type, body, head_only, extra_headers),
            pos: 0,
        };
        self.deadline = env.now.saturating_add(env.cfg.close_timeout_ns);
        self.drive(env)
    }

    fn read_head(&mut self, env: &mut Env) -> Next {
        let max = env.cfg.max_http_request_bytes;
        let Phase::Head { buf } = &mut self.phase else {
            return Next::Remove;
        };
        loop {
            let room = max.saturating_sub(buf.len());
            if room == 0 {
                return self.refuse(env, 431, "request head too large", "");
            }
            let start = buf.len();
            buf.resize(start + room.min(4096), 0);
            let res = self.io.read(&mut buf[start..]);
            buf.truncate(start + *res.as_ref().unwrap_or(&0));
            // Raw bytes count (a TLS ClientHello yields no plaintext yet): the peer is alive,
            // so it gets the rest of the handshake time, counted from accept.
            if self.awaiting_first_byte && self.io.bytes_in > 0 {
                self.awaiting_first_byte = false;
                self.deadline = self
                    .accepted_at
                    .saturating_add(env.cfg.handshake_timeout_ns);
            }
            match res {
                // Gone before a complete request: nothing to answer.
                Ok(0) => return Next::Remove,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Wait,
                Err(_) => {
                    self.count_io_error(env);
                    return Next::Remove;
                }
            }
            match http::parse_head(buf) {
                HeadParse::Partial => {}
                HeadParse::TooLarge => return self.refuse(env, 431, "too many headers", ""),
                HeadParse::Invalid(reason) => return self.refuse(env, 400, &reason, ""),
                HeadParse::Complete(head) => {
                    let leftover = buf[head.len..].to_vec();
                    return self.route(env, head, leftover);
                }
            }
        }
    }

    fn route(&mut self, env: &mut Env, head: RequestHead, leftover: Vec<u8>) -> Next {
        // Only a request asking for a WebSocket is a handshake (valid or not); a plain GET on
        // the WebSocket path goes to the caller like any other request (e.g. for a 426).
        let endpoint = if !head.upgrade_websocket {
            None
        } else if head.path == env.cfg.ws_path
            || (env.cfg.ws_path_prefix.as_deref()).is_some_and(|p| head.path.starts_with(p))
        {
            Some(Endpoint::Client)
        } else if env.cfg.echo_path.as_deref() == Some(head.path.as_str()) {
            Some(Endpoint::Echo)
        } else {
            None
        };
        let Some(endpoint) = endpoint else {
            // Anything after the head (a body, pipelined requests) is ignored: the response
            // closes the connection.
            env.stats.http_requests += 1;
            self.phase = Phase::AwaitResponse {
                head_only: head.method == "HEAD",
            };
            let ws_accept = head
                .upgrade_websocket
                .then(|| http::accept_upgrade(&head).ok())
                .flatten();
            env.out.push(NetEvent::Http {
                conn: self.id,
                method: head.method,
                path: head.path,
                query: head.query,
                authorization: head.authorization,
                host: head.host,
                ws_accept,
            });
            return Next::Wait;
        };
        match http::accept_upgrade(&head) {
            Ok(accept) => {
                self.phase = Phase::Upgrading {
                    out: http::switching_protocols(&accept),
                    pos: 0,
                    leftover,
                    endpoint,
                    path: head.path,
                    query: head.query,
                };
                Next::Again
            }
            Err(e) => {
                let extra = if e == UpgradeError::BadVersion {
                    "Sec-WebSocket-Version: 13\r\n"
                } else {
                    ""
                };
                self.refuse(env, 400, e.reason(), extra)
            }
        }
    }

    /// Answers a bad request ourselves and closes.
    fn refuse(&mut self, env: &mut Env, status: u16, reason: &str, extra: &str) -> Next {
        env.stats.handshake_failures += 1;
        let body = format!("{reason}\n");
        self.phase = Phase::Responding {
            out: http::response(
                status,
                "text/plain; charset=utf-8",
                body.as_bytes(),
                false,
                extra,
            ),
            pos: 0,
        };
        Next::Again
    }

    fn write_upgrade(&mut self, env: &mut Env) -> Next {
        let Phase::Upgrading { out, pos, .. } = &mut self.phase else {
            return Next::Remove;
        };
        match write_out(&mut self.io, out, pos) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Wait,
            Err(_) => {
                self.count_io_error(env);
                return Next::Remove;
            }
        }
        let Phase::Upgrading {
            leftover,
            endpoint,
            path,
            query,
            ..
        } = mem::replace(
            &mut self.phase,
            Phase::Draining {
                shut: false,
                linger: false,
            },
        )
        else {
            return Next::Remove;
        };
        // Frames the client sent right behind its request are already in `leftover`.
        self.phase = Phase::Ws(Box::new(Ws::new(leftover, endpoint, env.cfg)));
        self.deadline = 0;
        self.last_heard = env.now;
        env.stats.upgrades += 1;
        if endpoint == Endpoint::Client {
            self.open = true;
            env.out.push(NetEvent::Open {
                conn: self.id,
                path,
                query,
                peer: self.peer,
            });
        }
        Next::Again
    }

    fn write_response(&mut self, env: &mut Env) -> Next {
        let Phase::Responding { out, pos } = &mut self.phase else {
            return Next::Remove;
        };
        match write_out(&mut self.io, out, pos) {
            Ok(()) => Next::Drain,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Next::Wait,
            Err(_) => {
                self.count_io_error(env);
                Next::Remove
            }
        }
    }

    fn enter_draining(&mut self, env: &mut Env, linger: bool) {
        self.set_close(None, "closed");
        self.report_closed(env);
        self.phase = Phase::Draining {
            shut: false,
            linger,
        };
        self.deadline = env.now.saturating_add(env.cfg.close_timeout_ns);
    }

    fn linger(&mut self) -> Next {
        let Phase::Draining { shut, linger } = &mut self.phase else {
            return Next::Remove;
        };
        if !*shut {
            match self.io.close_write() {
                Ok(()) => *shut = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return Next::Remove,
            }
        }
        if *shut && !*linger {
            // Everything we sent is in the kernel and nothing is left unread: a plain close
            // delivers it (no RST).
            return Next::Remove;
        }
        match self.io.discard_input() {
            Ok(false) => Next::Wait,
            // EOF (the peer has everything and closed) or an error: done either way.
            Ok(true) | Err(_) => Next::Remove,
        }
    }

    fn set_close(&mut self, code: Option<u16>, reason: &str) {
        if self.close.is_none() {
            self.close = Some((code, reason.to_owned()));
        }
    }

    fn report_closed(&mut self, env: &mut Env) {
        if mem::take(&mut self.open) {
            let (code, reason) = self.close.clone().unwrap_or_default();
            env.out.push(NetEvent::Closed {
                conn: self.id,
                code,
                reason,
            });
        }
    }

    fn count_io_error(&self, env: &mut Env) {
        if self.io.tls_failed() {
            env.stats.tls_errors += 1;
        } else {
            env.stats.io_errors += 1;
        }
    }
}

/// Writes `out[*pos..]` and pushes it through TLS; `WouldBlock` keeps the position.
fn write_out(io: &mut Transport, out: &[u8], pos: &mut usize) -> io::Result<()> {
    while *pos < out.len() {
        match io.write(&out[*pos..])? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => *pos += n,
        }
    }
    io.flush()
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::truncate_utf8;

    #[test]
    fn close_reasons_are_cut_on_char_boundaries() {
        assert_eq!(truncate_utf8("abc", 123), "abc");
        assert_eq!(truncate_utf8("ééé", 3), "é");
        assert_eq!(truncate_utf8(&"x".repeat(200), 123).len(), 123);
    }
}
