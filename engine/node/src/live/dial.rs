//! A client WebSocket's way from a connecting TCP socket to an open WebSocket, on a mio loop:
//! the TCP connect finishing, rustls over it for `wss://`, tape's client handshake
//! ([`ClientHandshake`]) resumed across `WouldBlock`, and then [`ClientWs`]: the stream next to
//! a tungstenite [`WebSocketContext`] that holds the protocol state, the same split as the
//! server side (`net::conn`). Shared by the venue connections (`ws`) and `tape loadgen`, which
//! used to carry one copy each.
//!
//! [`Dial::advance`] consumes the dial and hands back the next one, the open WebSocket, or why
//! it failed together with the socket, so the caller can deregister it.
//! The caller words the errors: a venue connection journals them, the load generator counts
//! them.

use std::io;
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::pki_types::ServerName;
use rustls::ClientConnection;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig, WebSocketContext};
use tungstenite::Message;

use super::handshake::{ClientHandshake, HandshakeError};
use crate::transport::Transport;

/// The byte stream under a client WebSocket: the server's own [`Transport`], client side. The
/// same non-blocking TCP-or-rustls adapter serves both, so `WouldBlock`, handshake flights and
/// TLS failures behave alike in both directions.
pub type Stream = Transport;

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
    Request(String),
    /// The WebSocket handshake failed (an HTTP refusal is [`HandshakeError::Refused`]).
    Handshake(HandshakeError),
}

/// An open client WebSocket: the stream and, apart from it, the protocol state. The methods
/// are tungstenite's `WebSocket` ones, so callers read the same; the fields are public so a
/// caller can hold the socket and the context separately when it needs to.
pub struct ClientWs {
    /// Frames, buffers, close state; fed the bytes that came in behind the 101 first.
    pub ctx: WebSocketContext,
    /// The TCP or TLS stream.
    pub stream: Stream,
}

// tungstenite's error is large; it only travels on the cold failure path.
#[allow(clippy::result_large_err)]
impl ClientWs {
    /// Reads the next message (`Io(WouldBlock)` when the stream has nothing more now).
    ///
    /// # Errors
    /// As [`WebSocketContext::read`].
    pub fn read(&mut self) -> tungstenite::Result<Message> {
        self.ctx.read(&mut self.stream)
    }

    /// Queues `msg` and flushes (a full socket leaves it queued: `Io(WouldBlock)`).
    ///
    /// # Errors
    /// As [`WebSocketContext::write`] and [`WebSocketContext::flush`].
    pub fn send(&mut self, msg: Message) -> tungstenite::Result<()> {
        self.ctx.write(&mut self.stream, msg)?;
        self.ctx.flush(&mut self.stream)
    }

    /// Writes whatever is queued (pongs tungstenite answered, earlier sends).
    ///
    /// # Errors
    /// As [`WebSocketContext::flush`].
    pub fn flush(&mut self) -> tungstenite::Result<()> {
        self.ctx.flush(&mut self.stream)
    }

    /// Starts the close handshake.
    ///
    /// # Errors
    /// As [`WebSocketContext::close`].
    pub fn close(&mut self, frame: Option<CloseFrame>) -> tungstenite::Result<()> {
        self.ctx.close(&mut self.stream, frame)
    }

    /// The socket, for (de)registration with a mio registry.
    pub fn socket(&mut self) -> &mut TcpStream {
        self.stream.socket_mut()
    }
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
    Handshaking {
        /// TCP, or rustls over it (its own handshake runs inside the first reads and writes).
        stream: Stream,
        /// The upgrade request and the response so far.
        handshake: Box<ClientHandshake>,
        /// For the WebSocket once it opens.
        config: WebSocketConfig,
    },
}

/// Where [`Dial::advance`] got to.
pub enum DialStep {
    /// Waiting for readiness.
    Pending(Dial),
    /// The WebSocket is open.
    Open(Box<ClientWs>),
    /// Failed; the socket comes back so the caller can deregister it.
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
            Dial::Handshaking { stream, .. } => stream.socket_mut(),
        }
    }

    /// Goes as far as the socket allows.
    pub fn advance(self) -> DialStep {
        let mut dial = self;
        loop {
            dial = match dial {
                Dial::Tcp { sock, target } => match start(sock, *target) {
                    // The TCP connect is done: go straight on with the handshake.
                    DialStep::Pending(d @ Dial::Handshaking { .. }) => d,
                    other => return other,
                },
                Dial::Handshaking {
                    mut stream,
                    mut handshake,
                    config,
                } => {
                    return match handshake.advance(&mut stream) {
                        Ok(Some(leftover)) => DialStep::Open(Box::new(ClientWs {
                            ctx: WebSocketContext::from_partially_read(
                                leftover,
                                Role::Client,
                                Some(config),
                            ),
                            stream,
                        })),
                        Ok(None) => DialStep::Pending(Dial::Handshaking {
                            stream,
                            handshake,
                            config,
                        }),
                        Err(e) => {
                            DialStep::Failed(DialError::Handshake(e), Some(stream.into_socket()))
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
        None => Transport::plain(sock),
        Some((config, host)) => {
            let name = match ServerName::try_from(host) {
                Ok(n) => n,
                Err(e) => {
                    return DialStep::Failed(DialError::ServerName(e.to_string()), Some(sock))
                }
            };
            match ClientConnection::new(config, name) {
                Ok(c) => Transport::tls_client(sock, c),
                Err(e) => return DialStep::Failed(DialError::Tls(e), Some(sock)),
            }
        }
    };
    let handshake = match ClientHandshake::new(&target.url, target.user_agent) {
        Ok(h) => h,
        Err(e) => {
            return DialStep::Failed(
                DialError::Request(e.to_string()),
                Some(stream.into_socket()),
            )
        }
    };
    DialStep::Pending(Dial::Handshaking {
        stream,
        handshake: Box::new(handshake),
        config: target.config,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::testing::{read_request, tls_pair, Server};
    use mio::{Events, Interest, Poll, Token};
    use std::time::{Duration, Instant};
    use tungstenite::handshake::derive_accept_key;

    /// Answers the upgrade with `status`; a 101 carries the right accept key and, in the same
    /// write, a text frame "hello", so the frame arrives behind the head.
    fn venue(tls: Option<Arc<rustls::ServerConfig>>, status: &'static str) -> Server {
        Server::start(tls, move |_, s| {
            let Some(req) = read_request(s) else { return };
            let key = req
                .lines()
                .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
                .unwrap();
            let mut out = format!(
                "HTTP/1.1 {status}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {}\r\n\r\n",
                derive_accept_key(key.as_bytes())
            )
            .into_bytes();
            out.extend_from_slice(&[0x81, 0x05]);
            out.extend_from_slice(b"hello");
            let _ = s.write_all(&out);
            let _ = s.flush();
            // Hold the connection until the client is done with it.
            let _ = read_request(s);
        })
    }

    /// Dials `server` and drives the dial on a mio poll until it opens or fails (bounded).
    fn dial(server: &Server, tls: Option<Arc<rustls::ClientConfig>>) -> (Poll, DialStep) {
        let poll = Poll::new().unwrap();
        let mut sock = TcpStream::connect(server.addr).unwrap();
        poll.registry()
            .register(&mut sock, Token(0), Interest::READABLE | Interest::WRITABLE)
            .unwrap();
        let scheme = if tls.is_some() { "wss" } else { "ws" };
        let target = DialTarget {
            url: format!("{scheme}://localhost:{}/ws", server.addr.port()),
            tls: tls.map(|c| (c, "localhost".to_owned())),
            user_agent: None,
            config: WebSocketConfig::default(),
        };
        let mut step = Dial::new(sock, target).advance();
        let (mut poll, mut events) = (poll, Events::with_capacity(8));
        let deadline = Instant::now() + Duration::from_secs(10);
        while let DialStep::Pending(d) = step {
            assert!(Instant::now() < deadline, "dial did not finish");
            poll.poll(&mut events, Some(Duration::from_millis(100)))
                .unwrap();
            step = d.advance();
        }
        (poll, step)
    }

    fn first_text(poll: &mut Poll, ws: &mut ClientWs) -> String {
        let mut events = Events::with_capacity(8);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match ws.read() {
                Ok(Message::Text(t)) => return t.to_string(),
                Ok(other) => panic!("{other:?}"),
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
            assert!(Instant::now() < deadline, "no frame");
            poll.poll(&mut events, Some(Duration::from_millis(100)))
                .unwrap();
        }
    }

    #[test]
    fn ws_and_wss_open_and_read_the_frame_sent_behind_the_101() {
        let (server_tls, client_tls, _dir) = tls_pair();
        for (server_tls, client_tls) in [(None, None), (Some(server_tls), Some(client_tls))] {
            let server = venue(server_tls, "101 Switching Protocols");
            let (mut poll, step) = dial(&server, client_tls);
            let DialStep::Open(mut ws) = step else {
                panic!("did not open")
            };
            assert_eq!(first_text(&mut poll, &mut ws), "hello");
        }
    }

    #[test]
    fn a_refusal_hands_back_the_status_and_the_socket() {
        let server = venue(None, "403 Forbidden");
        let (_poll, step) = dial(&server, None);
        match step {
            DialStep::Failed(DialError::Handshake(HandshakeError::Refused(403)), Some(_)) => {}
            DialStep::Failed(e, sock) => panic!("{e:?}, socket back: {}", sock.is_some()),
            _ => panic!("did not fail"),
        }
    }
}
