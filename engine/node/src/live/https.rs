//! A small blocking HTTP/1.1 GET client for REST snapshots, run on a helper thread.
//!
//! Bounded everywhere: a connect timeout per resolved address, one deadline per request that
//! bounds every read and write, a bounded response head and a caller-set body limit. One idle
//! connection per (scheme, host, port) is kept for reuse; a reused connection that fails before
//! the first response byte (the server closed it while idle) is retried once on a fresh one.
//! No compression, redirects or proxies. Name resolution uses the system resolver, which has no
//! timeout of its own.
//!
//! One idea per file: this one is the client (connecting, TLS, the idle-connection pool and
//! the retry); `request` is the URL and the request head, `response` reads one response
//! (head, framing, chunked decoding) and `error` words what went wrong.

mod error;
mod request;
mod response;
#[cfg(test)]
mod tests;

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};

pub use error::HttpError;
pub use request::{Scheme, Url};
pub use response::{HttpResponse, MAX_HEAD_BYTES};

use error::Req;
use response::{exchange, Conn};

/// A byte stream whose blocking reads and writes can be bounded.
// Not `crate::transport::Transport`: this client blocks on a std socket with a per-request
// deadline (socket timeouts, rustls' `StreamOwned`), that one never blocks on a mio socket.
trait Transport: Read + Write + Send {
    fn set_timeout(&mut self, limit: Duration) -> io::Result<()>;
}

impl Transport for TcpStream {
    fn set_timeout(&mut self, limit: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(limit))?;
        self.set_write_timeout(Some(limit))
    }
}

impl Transport for StreamOwned<ClientConnection, TcpStream> {
    fn set_timeout(&mut self, limit: Duration) -> io::Result<()> {
        self.sock.set_timeout(limit)
    }
}

/// A blocking HTTP/1.1 GET client with one kept-alive connection per (scheme, host, port).
pub struct HttpClient {
    tls: Arc<rustls::ClientConfig>,
    connect_timeout: Duration,
    request_timeout: Duration,
    idle: Vec<(Scheme, String, Conn)>,
    connections_opened: u64,
}

impl HttpClient {
    /// A client using `tls` for `https` URLs. `connect_timeout` bounds each TCP connect attempt;
    /// `request_timeout` bounds a whole [`get`](Self::get), connecting included.
    pub fn new(
        tls: Arc<rustls::ClientConfig>,
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> HttpClient {
        HttpClient {
            tls,
            connect_timeout,
            request_timeout,
            idle: Vec::new(),
            connections_opened: 0,
        }
    }

    /// TCP connections opened so far (a measure of keep-alive reuse).
    pub fn connections_opened(&self) -> u64 {
        self.connections_opened
    }

    /// Fetches `url`, accepting at most `max_body_bytes` of body.
    ///
    /// # Errors
    /// [`HttpError`]; a non-2xx status is not an error.
    pub fn get(&mut self, url: &str, max_body_bytes: usize) -> Result<HttpResponse, HttpError> {
        let url = Url::parse(url)?;
        let r = Req {
            peer: url.host_port(),
            deadline: Instant::now()
                .checked_add(self.request_timeout)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400)),
            limit_ms: u64::try_from(self.request_timeout.as_millis()).unwrap_or(u64::MAX),
        };
        let request = url.request_head();
        let idle = (self.idle.iter()).position(|(s, p, _)| *s == url.scheme && *p == r.peer);
        let (mut conn, mut reused) = match idle {
            Some(i) => (self.idle.swap_remove(i).2, true),
            None => (self.connect(&url, &r)?, false),
        };
        loop {
            match exchange(&mut conn, &request, &r, max_body_bytes) {
                Ok((response, keep)) => {
                    if keep {
                        self.idle.push((url.scheme, r.peer, conn));
                    }
                    return Ok(response);
                }
                // Closed while idle (nothing received, time left): once more on a fresh one.
                Err(e)
                    if reused && conn.received == 0 && !matches!(e, HttpError::Timeout { .. }) =>
                {
                    conn = self.connect(&url, &r)?;
                    reused = false;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn connect(&mut self, url: &Url, r: &Req) -> Result<Conn, HttpError> {
        let resolve_error = |message: String| HttpError::Resolve {
            host: url.host.clone(),
            message,
        };
        let addrs: Vec<SocketAddr> = (url.host.as_str(), url.port)
            .to_socket_addrs()
            .map_err(|e| resolve_error(e.to_string()))?
            .collect();
        let mut last = resolve_error("no addresses".to_owned());
        let mut tcp = None;
        for addr in addrs {
            let limit = r.remaining("connecting")?.min(self.connect_timeout);
            match TcpStream::connect_timeout(&addr, limit) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => {
                    last = HttpError::Connect {
                        peer: r.peer.clone(),
                        message: format!("{addr}: {e}"),
                    }
                }
            }
        }
        let tcp = tcp.ok_or(last)?;
        // Best effort: only latency depends on it.
        let _ = tcp.set_nodelay(true);
        self.connections_opened += 1;
        match url.scheme {
            Scheme::Http => Ok(Conn::new(Box::new(tcp))),
            Scheme::Https => Ok(Conn::new(Box::new(self.handshake(url, tcp, r)?))),
        }
    }

    fn handshake(
        &self,
        url: &Url,
        tcp: TcpStream,
        r: &Req,
    ) -> Result<StreamOwned<ClientConnection, TcpStream>, HttpError> {
        let during = "the TLS handshake";
        let tls_error = |message: String| HttpError::Tls {
            peer: r.peer.clone(),
            during,
            message,
        };
        let name = match url.host.parse::<IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => {
                ServerName::try_from(url.host.clone()).map_err(|e| tls_error(e.to_string()))?
            }
        };
        let conn =
            ClientConnection::new(self.tls.clone(), name).map_err(|e| tls_error(e.to_string()))?;
        let mut s = StreamOwned::new(conn, tcp);
        while s.conn.is_handshaking() {
            s.set_timeout(r.remaining(during)?)
                .map_err(|e| r.io(e, during))?;
            match s.conn.complete_io(&mut s.sock) {
                Ok((0, 0)) => return Err(tls_error("connection closed".to_owned())),
                Ok(_) => {}
                Err(e) => return Err(r.io(e, during)),
            }
        }
        Ok(s)
    }
}
