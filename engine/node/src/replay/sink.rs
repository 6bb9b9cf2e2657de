//! The replay's two wire formats over a non-blocking socket: WebSocket text frames
//! (tungstenite's `WebSocketContext`, as the live server) and NDJSON lines in HTTP/1.1 chunks.
//!
//! Both queue a batch of messages, then [`Sink::flush`] writes until the socket would block;
//! the worker produces the next batch only once everything is out, so a slow reader holds at
//! most one batch in user space.

use std::io::{self, Read, Write};

use mio::net::TcpStream;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Message, Role, WebSocketConfig, WebSocketContext};
use tungstenite::Utf8Bytes;

/// Largest client message read on a replay WebSocket (requests are small).
const MAX_CLIENT_MESSAGE_BYTES: usize = 64 * 1024;

/// What the client sent, as far as the worker cares.
pub(super) enum Incoming {
    /// A request.
    Text(String),
    /// A binary message of this many bytes (the protocol has none; the hub refuses it).
    Binary(usize),
    /// Nothing more now.
    Nothing,
    /// The client is gone or closed (or broke the protocol): stop.
    Gone,
}

/// Where the replay's messages go.
pub(super) enum Sink {
    /// A WebSocket after its `101`.
    Ws {
        ctx: Box<WebSocketContext>,
        pending: bool,
    },
    /// A chunked NDJSON response after its head.
    Ndjson {
        out: Vec<u8>,
        pos: usize,
        chunk: Vec<u8>,
    },
}

impl Sink {
    /// A WebSocket; the `101` (already queued by the caller in `head`) goes first.
    pub(super) fn websocket() -> Sink {
        let cfg = WebSocketConfig::default()
            .max_message_size(Some(MAX_CLIENT_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_CLIENT_MESSAGE_BYTES));
        Sink::Ws {
            ctx: Box::new(WebSocketContext::new(Role::Server, Some(cfg))),
            pending: false,
        }
    }

    /// An NDJSON body (the head is written by the caller).
    pub(super) fn ndjson() -> Sink {
        Sink::Ndjson {
            out: Vec::new(),
            pos: 0,
            chunk: Vec::new(),
        }
    }

    /// Queues one message.
    pub(super) fn push(&mut self, sock: &mut TcpStream, msg: Utf8Bytes) -> io::Result<()> {
        match self {
            Sink::Ws { ctx, pending } => match ctx.write(sock, Message::Text(msg)) {
                Ok(()) => Ok(()),
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    *pending = true;
                    Ok(())
                }
                Err(e) => Err(io::Error::other(e)),
            },
            Sink::Ndjson { chunk, .. } => {
                chunk.extend_from_slice(msg.as_bytes());
                chunk.push(b'\n');
                Ok(())
            }
        }
    }

    /// Writes what is queued until done (true) or the socket would block (false: wait for
    /// writable and call again).
    pub(super) fn flush(&mut self, sock: &mut TcpStream) -> io::Result<bool> {
        match self {
            Sink::Ws { ctx, pending } => match ctx.flush(sock) {
                Ok(()) => {
                    *pending = false;
                    Ok(true)
                }
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    *pending = true;
                    Ok(false)
                }
                Err(e) => Err(io::Error::other(e)),
            },
            Sink::Ndjson { out, pos, chunk } => {
                if !chunk.is_empty() {
                    if *pos == out.len() {
                        out.clear();
                        *pos = 0;
                    }
                    out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    out.append(chunk);
                    out.extend_from_slice(b"\r\n");
                }
                write_out(sock, out, pos)
            }
        }
    }

    /// Reads what the client sent: a request, nothing, or its end.
    pub(super) fn read(&mut self, sock: &mut TcpStream) -> Incoming {
        match self {
            Sink::Ws { ctx, .. } => loop {
                match ctx.read(sock) {
                    Ok(Message::Text(t)) => return Incoming::Text(t.as_str().to_owned()),
                    // Pings are answered by tungstenite (queued; the next flush sends it).
                    Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
                    Ok(Message::Binary(b)) => return Incoming::Binary(b.len()),
                    Ok(Message::Close(_)) => return Incoming::Gone,
                    Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                        return Incoming::Nothing
                    }
                    Err(_) => return Incoming::Gone,
                }
            },
            // The request was all; anything more is ignored until the client closes.
            Sink::Ndjson { .. } => {
                let mut buf = [0u8; 4096];
                loop {
                    match sock.read(&mut buf) {
                        Ok(0) => return Incoming::Gone,
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            return Incoming::Nothing
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => return Incoming::Gone,
                    }
                }
            }
        }
    }

    /// Queues the end: a close frame with `code`/`reason`, or the last chunk.
    pub(super) fn finish(&mut self, sock: &mut TcpStream, code: u16, reason: &str) {
        match self {
            Sink::Ws { ctx, .. } => {
                let frame = CloseFrame {
                    code: CloseCode::from(code),
                    reason: reason.into(),
                };
                let _ = ctx.close(sock, Some(frame));
            }
            Sink::Ndjson { out, pos, .. } => {
                if *pos == out.len() {
                    out.clear();
                    *pos = 0;
                }
                out.extend_from_slice(b"0\r\n\r\n");
            }
        }
    }
}

/// Writes `out[*pos..]` until done (true) or `WouldBlock` (false).
pub(super) fn write_out(sock: &mut TcpStream, out: &[u8], pos: &mut usize) -> io::Result<bool> {
    while *pos < out.len() {
        match sock.write(&out[*pos..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *pos += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// A complete `Connection: close` HTTP response (for refusals the worker itself decides).
pub(super) fn http_error(status: u16, reason: &str) -> Vec<u8> {
    crate::net::http::response(
        status,
        "text/plain; charset=utf-8",
        format!("{reason}\n").as_bytes(),
        false,
        "",
    )
}
