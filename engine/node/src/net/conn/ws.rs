//! The WebSocket phase of a connection: reading frames until `WouldBlock`, echoing, sending,
//! close handshakes in both directions, and failing the connection on protocol errors.

use std::io;
use std::mem;

use tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tungstenite::protocol::{CloseFrame, Message, Role, WebSocketConfig, WebSocketContext};

use super::{truncate_utf8, Conn, Endpoint, Env, Next, Phase, Step, MAX_CLOSE_REASON_BYTES};
use crate::net::{NetConfig, NetEvent, NetStats, SendResult};
use crate::transport::Transport;

/// Read buffer of a client-endpoint connection; small because the client protocol is small.
const CLIENT_READ_BUFFER_BYTES: usize = 8 * 1024;
/// Read buffer of an echo connection; Autobahn pushes megabytes through it.
const ECHO_READ_BUFFER_BYTES: usize = 64 * 1024;

pub(super) struct Ws {
    pub(super) ctx: WebSocketContext,
    pub(super) endpoint: Endpoint,
    /// Output waits in user space (tungstenite's or rustls' buffer).
    pub(super) pending: bool,
    /// A close frame was sent or received: no data messages either way any more.
    pub(super) closing: bool,
    /// The input is no longer trusted (protocol error): flush our close frame, then linger.
    pub(super) failing: bool,
    /// Echo only: a message waiting for room in the write buffer; reading pauses meanwhile.
    pub(super) stash: Option<Message>,
    /// Bytes read on this WebSocket so far (the transport's own counter is handed to the
    /// server's statistics after every event, so it cannot be the reference).
    total: u64,
    /// `total` minus the transport's counter at the start of the current read pass.
    base: u64,
    /// `total` when the last whole message (or control frame) came out of the reader:
    /// everything read since belongs to a message not finished yet.
    mark: u64,
    /// Bytes of that unfinished message, as counted in [`NetStats::partial_bytes`].
    pub(super) partial: usize,
}

impl Ws {
    /// A WebSocket on `endpoint` whose first bytes (sent right behind the request) are
    /// `leftover`.
    pub(super) fn new(leftover: Vec<u8>, endpoint: Endpoint, cfg: &NetConfig) -> Ws {
        // The bytes sent right behind the request start the first message.
        let leftover_len = leftover.len() as u64;
        Ws {
            ctx: WebSocketContext::from_partially_read(
                leftover,
                Role::Server,
                Some(ws_config(cfg, endpoint)),
            ),
            endpoint,
            pending: false,
            closing: false,
            failing: false,
            stash: None,
            total: leftover_len,
            base: 0,
            mark: 0,
            partial: 0,
        }
    }
}

impl Conn {
    /// Queues a text message on an open client WebSocket and tries to flush it.
    pub(crate) fn send(&mut self, msg: Message, env: &mut Env) -> (SendResult, Step) {
        match self.queue(msg, env) {
            (SendResult::Sent, Step::Keep) => self.flush_ws(env),
            other => other,
        }
    }

    /// Frames a text message into the connection's write buffer without writing to the
    /// socket (tungstenite may still write if its buffer passes its own threshold); a later
    /// [`Conn::flush_ws`] sends everything queued with as few syscalls as possible.
    /// `Sent` here means "queued".
    pub(crate) fn queue(&mut self, msg: Message, env: &mut Env) -> (SendResult, Step) {
        let Phase::Ws(ws) = &mut self.phase else {
            return (SendResult::Closed, Step::Keep);
        };
        if ws.endpoint != Endpoint::Client || ws.closing || !self.open {
            return (SendResult::Closed, Step::Keep);
        }
        match ws.ctx.write(&mut self.io, msg) {
            Ok(()) => {}
            Err(WsError::WriteBufferFull(_)) => {
                env.stats.send_refused += 1;
                ws.pending = true;
                return (SendResult::Refused, Step::Keep);
            }
            Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return (SendResult::Closed, self.fail_now(env, e)),
        }
        env.stats.messages_out += 1;
        (SendResult::Sent, Step::Keep)
    }

    /// Writes whatever is queued: `Sent` when all of it reached the kernel, `Buffered` when
    /// the socket is full (a `Writable` event follows when it drains).
    pub(crate) fn flush_ws(&mut self, env: &mut Env) -> (SendResult, Step) {
        let Phase::Ws(ws) = &mut self.phase else {
            return (SendResult::Closed, Step::Keep);
        };
        match ws.ctx.flush(&mut self.io) {
            Ok(()) => {
                // Whoever saw Buffered/Refused earlier is waiting for this.
                if mem::take(&mut ws.pending) {
                    env.out.push(NetEvent::Writable { conn: self.id });
                }
                (SendResult::Sent, Step::Keep)
            }
            Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                ws.pending = true;
                (SendResult::Buffered, Step::Keep)
            }
            Err(e) => (SendResult::Closed, self.fail_now(env, e)),
        }
    }

    /// Sends a WebSocket ping (heartbeat). A full write buffer skips it: the peer is behind.
    pub(crate) fn ping(&mut self, env: &mut Env) -> Step {
        let Phase::Ws(ws) = &mut self.phase else {
            return Step::Keep;
        };
        if ws.closing {
            return Step::Keep;
        }
        match ws
            .ctx
            .write(&mut self.io, Message::Ping(Default::default()))
        {
            Ok(()) | Err(WsError::WriteBufferFull(_)) => {}
            Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return self.fail_now(env, e),
        }
        self.drive(env)
    }

    /// Starts the WebSocket close handshake with `code`; a connection that is not a WebSocket
    /// yet is dropped instead (nothing was promised to it).
    pub(crate) fn close(&mut self, code: u16, reason: &str, env: &mut Env) -> Step {
        match &mut self.phase {
            Phase::Ws(ws) if !ws.closing => {
                let reason = truncate_utf8(reason, MAX_CLOSE_REASON_BYTES);
                self.close = Some((Some(code), reason.to_owned()));
                ws.closing = true;
                ws.stash = None;
                self.deadline = env.now.saturating_add(env.cfg.close_timeout_ns);
                let frame = CloseFrame {
                    code: code.into(),
                    reason: reason.into(),
                };
                match ws.ctx.close(&mut self.io, Some(frame)) {
                    Ok(()) => {}
                    Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return self.fail_now(env, e),
                }
                self.drive(env)
            }
            Phase::Head { .. } | Phase::AwaitResponse { .. } | Phase::Upgrading { .. } => {
                self.remove(env)
            }
            _ => Step::Keep,
        }
    }

    pub(super) fn drive_ws(&mut self, env: &mut Env) -> Next {
        let before = self.io.bytes_in;
        if let Phase::Ws(ws) = &mut self.phase {
            ws.base = ws.total.wrapping_sub(before);
        }
        let res = self.pump_ws(env);
        if self.io.bytes_in != before {
            self.last_heard = env.now;
        }
        let next = match res {
            Ok(next) => next,
            Err(e) => self.on_ws_error(env, e),
        };
        if self.over_partial_budget(env) {
            env.stats.partial_budget_closed += 1;
            return self.fail(
                env,
                1008,
                "server busy: too many bytes of unfinished messages; send smaller messages",
            );
        }
        next
    }

    /// Accounts this connection's unfinished message in the shared gauge; true when the total
    /// is over the budget and this connection holds part of it (it is the one to close: the
    /// others were within the budget when they read).
    fn over_partial_budget(&mut self, env: &mut Env) -> bool {
        let Phase::Ws(ws) = &mut self.phase else {
            return false;
        };
        ws.total = ws.base.wrapping_add(self.io.bytes_in);
        // A failing connection reads nothing more into a message: its share is released.
        let partial = if ws.failing {
            0
        } else {
            usize::try_from(ws.total.saturating_sub(ws.mark)).unwrap_or(usize::MAX)
        };
        env.stats.partial_bytes = env
            .stats
            .partial_bytes
            .saturating_sub(ws.partial)
            .saturating_add(partial);
        ws.partial = partial;
        let over = partial > 0 && env.stats.partial_bytes > env.cfg.max_partial_bytes;
        if over {
            // This one is closed: give its share back now, not when the socket goes.
            env.stats.partial_bytes -= partial;
            ws.partial = 0;
        }
        over
    }

    /// Echo retry, read until `WouldBlock`, flush.
    // tungstenite's error is large; it only travels on the cold failure path.
    #[allow(clippy::result_large_err)]
    fn pump_ws(&mut self, env: &mut Env) -> Result<Next, WsError> {
        let Conn {
            id,
            io,
            phase,
            open,
            close,
            deadline,
            ..
        } = self;
        let Phase::Ws(ws) = phase else {
            return Ok(Next::Remove);
        };
        if let Some(msg) = ws.stash.take() {
            let was_pending = ws.pending;
            echo(ws, io, msg, env.stats)?;
            if ws.stash.is_some() && !was_pending {
                // It does not fit even in an empty buffer: it never will.
                return Err(too_big());
            }
        }
        while !ws.failing && ws.stash.is_none() {
            let read = ws.ctx.read(io);
            if read.is_ok() {
                // A whole message or control frame: what was read up to here is consumed.
                ws.mark = ws.base.wrapping_add(io.bytes_in);
            }
            match read {
                Ok(Message::Text(text)) => {
                    env.stats.messages_in += 1;
                    match ws.endpoint {
                        Endpoint::Client if !ws.closing => {
                            env.out.push(NetEvent::Text { conn: *id, text })
                        }
                        Endpoint::Client => {}
                        Endpoint::Echo => echo(ws, io, Message::Text(text), env.stats)?,
                    }
                }
                Ok(Message::Binary(data)) => {
                    env.stats.messages_in += 1;
                    match ws.endpoint {
                        Endpoint::Client if !ws.closing => env.out.push(NetEvent::Binary {
                            conn: *id,
                            len: data.len(),
                        }),
                        Endpoint::Client => {}
                        Endpoint::Echo => echo(ws, io, Message::Binary(data), env.stats)?,
                    }
                }
                Ok(Message::Close(frame)) => {
                    // Either the peer starts the close handshake (tungstenite queues the echo
                    // of its frame) or it answers ours; the next read finishes the handshake.
                    if !ws.closing {
                        ws.closing = true;
                        ws.stash = None;
                        *close = Some(match frame {
                            Some(f) => (Some(f.code.into()), f.reason.to_string()),
                            None => (None, String::new()),
                        });
                    }
                    if mem::take(open) {
                        let (code, reason) = close.clone().unwrap_or_default();
                        env.out.push(NetEvent::Closed {
                            conn: *id,
                            code,
                            reason,
                        });
                    }
                    *deadline = env.now.saturating_add(env.cfg.close_timeout_ns);
                }
                // Pings are answered by tungstenite (flushed below); pongs only prove liveness.
                Ok(_) => {}
                Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        match ws.ctx.flush(io) {
            Ok(()) => {
                if mem::take(&mut ws.pending) && *open && !ws.closing {
                    env.out.push(NetEvent::Writable { conn: *id });
                }
            }
            Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => ws.pending = true,
            Err(e) => return Err(e),
        }
        Ok(if ws.failing && !ws.pending {
            Next::Drain
        } else if ws.stash.is_some() && !ws.pending {
            // Everything flushed: the stashed echo fits now, and reading resumes behind it.
            Next::Again
        } else {
            Next::Wait
        })
    }

    fn on_ws_error(&mut self, env: &mut Env, err: WsError) -> Next {
        match err {
            // The close handshake is complete and our last frame is written.
            WsError::ConnectionClosed | WsError::AlreadyClosed => Next::Finish,
            WsError::Capacity(_) => self.fail(env, 1009, "message too big"),
            WsError::Utf8(_) => self.fail(env, 1007, "invalid UTF-8"),
            WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
                env.stats.io_errors += 1;
                self.set_close(None, "connection closed without a close frame");
                Next::Remove
            }
            WsError::Protocol(p) => self.fail(env, 1002, &p.to_string()),
            WsError::Io(e) => {
                self.count_io_error(env);
                self.set_close(None, &e.to_string());
                Next::Remove
            }
            other => {
                env.stats.io_errors += 1;
                self.set_close(None, &other.to_string());
                Next::Remove
            }
        }
    }

    /// Fails the WebSocket: close frame with `code`, no more reading, then linger.
    fn fail(&mut self, env: &mut Env, code: u16, reason: &str) -> Next {
        env.stats.protocol_errors += 1;
        let reason = truncate_utf8(reason, MAX_CLOSE_REASON_BYTES);
        let Phase::Ws(ws) = &mut self.phase else {
            return Next::Remove;
        };
        let already_closing = mem::replace(&mut ws.closing, true);
        ws.failing = true;
        ws.stash = None;
        if !already_closing {
            self.close = Some((Some(code), reason.to_owned()));
        }
        self.deadline = env.now.saturating_add(env.cfg.close_timeout_ns);
        self.report_closed(env);
        let Phase::Ws(ws) = &mut self.phase else {
            return Next::Remove;
        };
        if ws.ctx.can_write() {
            let frame = CloseFrame {
                code: code.into(),
                reason: reason.to_owned().into(),
            };
            match ws.ctx.close(&mut self.io, Some(frame)) {
                Ok(()) | Err(WsError::ConnectionClosed) => {}
                Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return Next::Remove,
            }
        }
        Next::Again
    }

    /// Handles an error from an API call (send/ping/close) with the full machinery.
    fn fail_now(&mut self, env: &mut Env, err: WsError) -> Step {
        match self.on_ws_error(env, err) {
            Next::Remove => self.remove(env),
            Next::Drain => {
                self.enter_draining(env, true);
                self.drive(env)
            }
            Next::Finish => {
                self.enter_draining(env, false);
                self.drive(env)
            }
            Next::Again | Next::Wait => self.drive(env),
        }
    }
}

/// Echoes one message; a full write buffer stashes it (and pauses reading) instead.
#[allow(clippy::result_large_err)]
fn echo(
    ws: &mut Ws,
    io: &mut Transport,
    msg: Message,
    stats: &mut NetStats,
) -> Result<(), WsError> {
    if !ws.ctx.can_write() {
        return Ok(());
    }
    match ws.ctx.write(io, msg) {
        Ok(()) => {}
        Err(WsError::WriteBufferFull(msg)) => {
            ws.stash = Some(msg);
            return Ok(());
        }
        Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => ws.pending = true,
        Err(e) => return Err(e),
    }
    stats.messages_out += 1;
    Ok(())
}

fn too_big() -> WsError {
    WsError::Capacity(CapacityError::MessageTooLong {
        size: 0,
        max_size: 0,
    })
}

/// Queued frames are written to the socket once they pass this many bytes, even before the
/// flush: large enough for any normal burst, small enough to keep each `write` cache-friendly.
const WRITE_BATCH_BYTES: usize = 64 * 1024;

/// tungstenite limits for an endpoint.
///
/// Frames collect in the connection's write buffer until [`Conn::flush_ws`] (or the end of a
/// read pass) writes them, so a burst of queued messages costs one `write` instead of one per
/// message; only a burst past [`WRITE_BATCH_BYTES`] is written in several pieces. Every path
/// that queues a frame flushes before it returns to the loop, so nothing waits in the buffer
/// for a later event. The write buffer cap is the back-pressure bound.
fn ws_config(cfg: &NetConfig, endpoint: Endpoint) -> WebSocketConfig {
    let (max_message, read_buffer, write_limit) = match endpoint {
        Endpoint::Client => (
            cfg.max_message_bytes,
            CLIENT_READ_BUFFER_BYTES,
            cfg.write_buffer_limit,
        ),
        // An echo must always fit in an empty buffer, or the connection would stall.
        Endpoint::Echo => (
            cfg.echo_max_message_bytes,
            ECHO_READ_BUFFER_BYTES,
            cfg.write_buffer_limit
                .max(cfg.echo_max_message_bytes.saturating_add(64)),
        ),
    };
    WebSocketConfig::default()
        .read_buffer_size(read_buffer)
        // tungstenite needs the cap above the batching threshold.
        .write_buffer_size(WRITE_BATCH_BYTES.min(write_limit / 2))
        .max_write_buffer_size(write_limit.max(1))
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
}
