//! One venue WebSocket connection on the engine's mio loop: resolve (on a helper thread, so
//! DNS never blocks the loop), non-blocking TCP connect to each address in turn, the shared
//! [`Dial`] (rustls, tape's client handshake resumed across `WouldBlock`), then frames on a
//! [`ClientWs`] until the venue closes, the socket fails, or the core's
//! [`VenueLink`](tape_core::link::VenueLink) drops it.
//!
//! The connection itself keeps no timer and makes no decision: it reports what happened
//! (opened, frame, lost) through [`WsSink`], and its owner feeds that to the link and carries
//! out what the link asks for (connect, ping, close).

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use crossbeam_channel::{Receiver, TryRecvError};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::Message;

use super::dial::{ClientWs, Dial, DialError, DialStep, DialTarget};
use super::handshake::HandshakeError;

/// A `ws://` or `wss://` URL, split for connecting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUrl {
    /// `wss://`.
    pub tls: bool,
    /// Host name or IP literal (without brackets).
    pub host: String,
    /// Port (default 443 / 80).
    pub port: u16,
    /// The whole URL as given.
    pub url: String,
}

impl WsUrl {
    /// Parses `ws[s]://host[:port]/path?query` (with the snapshot client's parser, so both
    /// accept the same hosts and ports).
    ///
    /// # Errors
    /// A message naming what is wrong.
    pub fn parse(url: &str) -> Result<WsUrl, String> {
        let schemes = [("wss://", 443), ("ws://", 80)];
        let parts = super::url::parse(url, &schemes, "not a ws:// or wss:// URL")
            .map_err(|reason| format!("{url:?}: {reason}"))?;
        Ok(WsUrl {
            tls: parts.scheme == 0,
            host: parts.host.to_owned(),
            port: parts.port,
            url: url.to_owned(),
        })
    }
}

/// Where a connection attempt stands.
enum Phase {
    Closed,
    Resolving(Receiver<io::Result<Vec<SocketAddr>>>),
    /// TCP, TLS, the WebSocket handshake; `rest` are the addresses to try if TCP fails.
    Dialing {
        dial: Dial,
        rest: Vec<SocketAddr>,
    },
    Open(Box<ClientWs>),
}

/// Settings of one connection (its timings belong to the link).
#[derive(Clone)]
pub(crate) struct WsOptions {
    pub tls: Arc<rustls::ClientConfig>,
    /// Largest frame or message accepted from the venue.
    pub max_frame_bytes: usize,
}

/// What a connection hands to its owner.
pub(crate) trait WsSink {
    /// The clock, ns (read per frame, so each gets its own receive time).
    fn now(&mut self) -> u64;
    /// A frame (text or binary) received at `recv`.
    fn frame(&mut self, recv: u64, payload: Vec<u8>);
    /// The WebSocket handshake completed at `now`.
    fn opened(&mut self, now: u64);
    /// The attempt or connection ended by itself at `now` (the socket is already released).
    fn lost(&mut self, now: u64, reason: String);
}

/// One venue connection.
pub(crate) struct WsConn {
    url: WsUrl,
    token: Token,
    opts: WsOptions,
    phase: Phase,
    /// The venue's close frame, if one came.
    close_reason: Option<String>,
    /// Raw bytes and frames received over the connection's life.
    pub frames: u64,
    pub bytes: u64,
}

impl WsConn {
    pub(crate) fn new(url: WsUrl, token: Token, opts: WsOptions) -> WsConn {
        WsConn {
            url,
            token,
            opts,
            phase: Phase::Closed,
            close_reason: None,
            frames: 0,
            bytes: 0,
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open(_))
    }

    /// Starts an attempt (the link asked for it): name resolution begins (an IP literal needs
    /// none). `wake` is called by the resolver thread when it is done.
    pub(crate) fn connect(
        &mut self,
        registry: &Registry,
        sink: &mut impl WsSink,
        wake: impl Fn() + Send + 'static,
    ) {
        self.close_reason = None;
        let host = self.url.host.clone();
        let port = self.url.port;
        if let Ok(ip) = host.parse::<std::net::IpAddr>() {
            self.start_tcp(registry, sink, vec![SocketAddr::new(ip, port)]);
            return;
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        let spawned = std::thread::Builder::new()
            .name("tape-resolve".into())
            .spawn(move || {
                let r = (host.as_str(), port)
                    .to_socket_addrs()
                    .map(|a| a.collect::<Vec<_>>());
                let _ = tx.send(r);
                wake();
            });
        match spawned {
            Ok(_) => self.phase = Phase::Resolving(rx),
            Err(e) => self.fail(registry, sink, format!("cannot start resolver: {e}")),
        }
    }

    fn start_tcp(
        &mut self,
        registry: &Registry,
        sink: &mut impl WsSink,
        mut addrs: Vec<SocketAddr>,
    ) {
        addrs.reverse(); // pop() takes them in resolver order
        let mut last_err = String::from("no address");
        while let Some(addr) = addrs.pop() {
            match TcpStream::connect(addr) {
                Ok(mut sock) => {
                    if let Err(e) = registry.register(
                        &mut sock,
                        self.token,
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        last_err = format!("register: {e}");
                        continue;
                    }
                    let target = DialTarget {
                        url: self.url.url.clone(),
                        tls: self
                            .url
                            .tls
                            .then(|| (self.opts.tls.clone(), self.url.host.clone())),
                        user_agent: Some(concat!("tape/", env!("CARGO_PKG_VERSION"))),
                        config: WebSocketConfig::default()
                            .max_message_size(Some(self.opts.max_frame_bytes))
                            .max_frame_size(Some(self.opts.max_frame_bytes)),
                    };
                    let dial = Dial::new(sock, target);
                    self.phase = Phase::Dialing { dial, rest: addrs };
                    return;
                }
                Err(e) => last_err = format!("connect {addr}: {e}"),
            }
        }
        self.fail(registry, sink, last_err);
    }

    /// Drives the connection after a readiness event for its token, a wake-up, or a timer.
    pub(crate) fn progress(&mut self, registry: &Registry, sink: &mut impl WsSink) {
        loop {
            match std::mem::replace(&mut self.phase, Phase::Closed) {
                Phase::Closed => return,
                Phase::Resolving(rx) => match rx.try_recv() {
                    Ok(Ok(addrs)) => self.start_tcp(registry, sink, addrs),
                    Ok(Err(e)) => {
                        let reason = format!("resolve {}: {e}", self.url.host);
                        return self.fail(registry, sink, reason);
                    }
                    Err(TryRecvError::Empty) => {
                        self.phase = Phase::Resolving(rx);
                        return;
                    }
                    Err(TryRecvError::Disconnected) => {
                        return self.fail(registry, sink, "resolver thread died".into())
                    }
                },
                Phase::Dialing { dial, rest } => match dial.advance() {
                    DialStep::Pending(dial) => {
                        self.phase = Phase::Dialing { dial, rest };
                        return;
                    }
                    DialStep::Open(ws) => {
                        let now = sink.now();
                        sink.opened(now);
                        self.phase = Phase::Open(ws);
                    }
                    DialStep::Failed(e, sock) => {
                        if let Some(mut sock) = sock {
                            let _ = registry.deregister(&mut sock);
                        }
                        let reason = match e {
                            DialError::Refused(e) => {
                                let reason =
                                    format!("connect {}:{}: {e}", self.url.host, self.url.port);
                                if rest.is_empty() {
                                    return self.fail(registry, sink, reason);
                                }
                                self.start_tcp(registry, sink, rest.into_iter().rev().collect());
                                continue;
                            }
                            DialError::Connect(e) => format!("connect: {e}"),
                            DialError::ServerName(e) => format!("server name: {e}"),
                            DialError::Tls(e) => format!("tls: {e}"),
                            DialError::Request(e) => format!("request: {e}"),
                            DialError::Handshake(HandshakeError::Refused(status)) => {
                                format!("handshake refused: HTTP {status}")
                            }
                            DialError::Handshake(e) => format!("handshake: {e}"),
                        };
                        return self.fail(registry, sink, reason);
                    }
                },
                Phase::Open(mut ws) => {
                    let result = self.read_all(&mut ws, sink);
                    match result {
                        Ok(()) => {
                            self.phase = Phase::Open(ws);
                            return;
                        }
                        Err(reason) => {
                            let _ = registry.deregister(ws.socket());
                            return self.down(sink, reason);
                        }
                    }
                }
            }
        }
    }

    /// Reads every frame available; answers pings (tungstenite queues the pong, the flush
    /// sends it). `Err` is the reason the connection is over.
    fn read_all(&mut self, ws: &mut ClientWs, sink: &mut impl WsSink) -> Result<(), String> {
        loop {
            match ws.read() {
                Ok(msg) => {
                    let now = sink.now();
                    // Only data frames reach the sink (and the link): a venue that answers
                    // pings but sends nothing is stalled.
                    match msg {
                        Message::Text(t) => {
                            self.frames += 1;
                            self.bytes += t.len() as u64;
                            sink.frame(now, Vec::from(t.as_str().as_bytes()));
                        }
                        Message::Binary(b) => {
                            self.frames += 1;
                            self.bytes += b.len() as u64;
                            sink.frame(now, b.to_vec());
                        }
                        Message::Close(frame) => {
                            self.close_reason = Some(match frame {
                                Some(f) => {
                                    format!("closed by venue: {} {}", u16::from(f.code), f.reason)
                                }
                                None => "closed by venue".to_owned(),
                            });
                        }
                        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                    }
                }
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Err(self
                        .close_reason
                        .take()
                        .unwrap_or_else(|| "closed".to_owned()));
                }
                Err(e) => {
                    let why = match self.close_reason.take() {
                        Some(r) => format!("{r} ({e})"),
                        None => describe(&e),
                    };
                    return Err(why);
                }
            }
        }
        match ws.flush() {
            Ok(()) => Ok(()),
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(describe(&e)),
        }
    }

    /// Sends a ping on an open connection (the link found it quiet). A full socket keeps it
    /// queued in tungstenite; any other failure loses the connection.
    pub(crate) fn send_ping(&mut self, registry: &Registry, sink: &mut impl WsSink) {
        let Phase::Open(ws) = &mut self.phase else {
            return;
        };
        match ws.send(Message::Ping(Default::default())) {
            Ok(()) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => {
                let reason = describe(&e);
                self.abort(registry);
                self.down(sink, reason);
            }
        }
    }

    /// Drops the connection (or attempt) now, without reporting it: the link asked for it.
    pub(crate) fn abort(&mut self, registry: &Registry) {
        match std::mem::replace(&mut self.phase, Phase::Closed) {
            Phase::Closed | Phase::Resolving(_) => {}
            Phase::Dialing { mut dial, .. } => {
                let _ = registry.deregister(dial.socket());
            }
            Phase::Open(mut ws) => {
                let _ = registry.deregister(ws.socket());
            }
        }
    }

    /// Sends one text frame on an open connection. A full socket keeps it queued in
    /// tungstenite (flushed on the next readiness event); `Err` is why it cannot be sent.
    pub(crate) fn send_text(&mut self, text: &str) -> Result<(), String> {
        let Phase::Open(ws) = &mut self.phase else {
            return Err("not connected".into());
        };
        match ws.send(Message::text(text)) {
            Ok(()) => Ok(()),
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(describe(&e)),
        }
    }

    /// Says goodbye before a shutdown: a close frame if open (best effort; the link's `Close`
    /// then drops the socket).
    pub(crate) fn send_close_frame(&mut self) {
        if let Phase::Open(ws) = &mut self.phase {
            let _ = ws.close(None);
            let _ = ws.flush();
        }
    }

    fn fail(&mut self, _registry: &Registry, sink: &mut impl WsSink, reason: String) {
        self.phase = Phase::Closed;
        self.down(sink, reason);
    }

    fn down(&mut self, sink: &mut impl WsSink, reason: String) {
        self.phase = Phase::Closed;
        let now = sink.now();
        sink.lost(now, reason);
    }
}

fn describe(e: &tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Io(io) => format!("io: {io}"),
        tungstenite::Error::Tls(t) => format!("tls: {t}"),
        tungstenite::Error::Capacity(c) => format!("frame too large: {c}"),
        tungstenite::Error::Protocol(p) => format!("protocol: {p}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = WsUrl::parse("wss://fstream.binance.com/stream?streams=a/b").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port),
            (true, "fstream.binance.com", 443)
        );
        let u = WsUrl::parse("ws://127.0.0.1:9443/stream").unwrap();
        assert_eq!((u.tls, u.host.as_str(), u.port), (false, "127.0.0.1", 9443));
        let u = WsUrl::parse("wss://[::1]:8443/stream").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 8443));
        for bad in [
            "https://x/",
            "wss://",
            "wss://:1/",
            "wss://h:0/",
            "wss://h:99999/",
            "wss://u@h/",
            "wss://[::1/",
        ] {
            assert!(WsUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
