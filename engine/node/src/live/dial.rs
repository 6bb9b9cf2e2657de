//! A client WebSocket's way from a connecting TCP socket to an open WebSocket, on a mio loop:
//! the TCP connect finishing, rustls over it for `wss://`, the tungstenite client handshake
//! resumed across `WouldBlock`. Shared by the venue connections (`ws`) and `tape loadgen`,
//! which used to carry one copy each.
//!
//! [`Dial::advance`] consumes the dial and hands back the next one, the open WebSocket, or why
//! it failed together with the socket when it still exists, so the caller can deregister it.
//! The caller words the errors: a venue connection journals them, the load generator counts
//! them.

use std::io::{self, Read, Write};
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::ClientHandshake;
use tungstenite::handshake::{HandshakeError, MidHandshake};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::WebSocket;

/// The byte stream under a client WebSocket: plain TCP or rustls over TCP, non-blocking.
/// `WouldBlock` means "come back on the next readiness event"; `flush` also pushes out TLS
/// records rustls still holds.
pub enum Stream {
    /// `ws://`.
    Plain(TcpStream),
    /// `wss://`.
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    /// The socket, for (de)registration with a mio registry.
    pub fn socket(&mut self) -> &mut TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &mut s.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => {
                s.flush()?;
                // rustls keeps what the socket refused; push it out now if possible.
                while s.conn.wants_write() {
                    s.conn.write_tls(&mut s.sock)?;
                }
                Ok(())
            }
        }
    }
}

/// What to dial: the URL for the upgrade request, TLS (config and server name) for `wss://`.
#[derive(Clone)]
pub struct DialTarget {
    /// The `ws://` or `wss://` URL.
    pub url: String,
    /// For `wss://`: the client config and the host to verify.
    pub tls: Option<(Arc<rustls::ClientConfig>, String)>,
    /// A `User-Agent` header, if one should go out.
    pub user_agent: Option<&'static str>,
    /// Frame and message limits, buffers.
    pub config: WebSocketConfig,
}

/// Why a dial failed.
#[derive(Debug)]
pub enum DialError {
    /// The TCP connect failed (refused, unreachable, timed out in the kernel).
    Refused(io::Error),
    /// The socket failed otherwise while connecting.
    Connect(io::Error),
    /// The host is not a valid TLS server name.
    ServerName(String),
    /// rustls would not start a session.
    Tls(rustls::Error),
    /// The upgrade request could not be built from the URL.
    Request(tungstenite::Error),
    /// The WebSocket handshake failed (an HTTP refusal is `tungstenite::Error::Http`).
    Handshake(tungstenite::Error),
}

/// A dial in progress.
pub enum Dial {
    /// The TCP connect is under way.
    Tcp {
        /// The socket, registered by the caller for readable and writable readiness.
        sock: TcpStream,
        /// What comes next.
        target: Box<DialTarget>,
    },
    /// The TLS and WebSocket handshakes are under way.
    Handshaking(Box<MidHandshake<ClientHandshake<Stream>>>),
}

/// Where [`Dial::advance`] got to.
pub enum DialStep {
    /// Waiting for readiness.
    Pending(Dial),
    /// The WebSocket is open.
    Open(Box<WebSocket<Stream>>),
    /// Failed; the socket comes back while it exists outside tungstenite.
    Failed(DialError, Option<TcpStream>),
}

impl Dial {
    /// A dial over `sock`, a non-blocking connect already started.
    pub fn new(sock: TcpStream, target: DialTarget) -> Dial {
        Dial::Tcp {
            sock,
            target: Box::new(target),
        }
    }

    /// The socket, for deregistration.
    pub fn socket(&mut self) -> &mut TcpStream {
        match self {
            Dial::Tcp { sock, .. } => sock,
            Dial::Handshaking(mid) => mid.get_mut().get_mut().socket(),
        }
    }

    /// Goes as far as the socket allows.
    pub fn advance(self) -> DialStep {
        let mut dial = self;
        loop {
            dial = match dial {
                Dial::Tcp { sock, target } => match start(sock, *target) {
                    // The TCP connect is done: go straight on with the handshake.
                    DialStep::Pending(d @ Dial::Handshaking(_)) => d,
                    other => return other,
                },
                Dial::Handshaking(mid) => {
                    return match mid.handshake() {
                        Ok((ws, _response)) => DialStep::Open(Box::new(ws)),
                        Err(HandshakeError::Interrupted(mid)) => {
                            DialStep::Pending(Dial::Handshaking(Box::new(mid)))
                        }
                        Err(HandshakeError::Failure(e)) => {
                            DialStep::Failed(DialError::Handshake(e), None)
                        }
                    };
                }
            };
        }
    }
}

/// From a connecting socket to a started handshake, if the connect is done.
fn start(sock: TcpStream, target: DialTarget) -> DialStep {
    if let Ok(Some(e)) | Err(e) = sock.take_error() {
        return DialStep::Failed(DialError::Refused(e), Some(sock));
    }
    match sock.peer_addr() {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotConnected => {
            return DialStep::Pending(Dial::Tcp {
                sock,
                target: Box::new(target),
            });
        }
        Err(e) => return DialStep::Failed(DialError::Connect(e), Some(sock)),
    }
    let _ = sock.set_nodelay(true);
    let stream = match target.tls {
        None => Stream::Plain(sock),
        Some((config, host)) => {
            let name = match ServerName::try_from(host) {
                Ok(n) => n,
                Err(e) => {
                    return DialStep::Failed(DialError::ServerName(e.to_string()), Some(sock))
                }
            };
            match ClientConnection::new(config, name) {
                Ok(c) => Stream::Tls(Box::new(StreamOwned::new(c, sock))),
                Err(e) => return DialStep::Failed(DialError::Tls(e), Some(sock)),
            }
        }
    };
    let mut request = match target.url.as_str().into_client_request() {
        Ok(r) => r,
        Err(e) => {
            let sock = match stream {
                Stream::Plain(s) => s,
                Stream::Tls(s) => s.sock,
            };
            return DialStep::Failed(DialError::Request(e), Some(sock));
        }
    };
    if let Some(ua) = target.user_agent.and_then(|ua| ua.parse().ok()) {
        request.headers_mut().insert("User-Agent", ua);
    }
    match ClientHandshake::start(stream, request, Some(target.config)) {
        Ok(mid) => DialStep::Pending(Dial::Handshaking(Box::new(mid))),
        Err(e) => DialStep::Failed(DialError::Handshake(e), None),
    }
}
