//! A small blocking HTTP/1.1 GET client for REST snapshots, run on a helper thread.
//!
//! Bounded everywhere: a connect timeout per resolved address, one deadline per request that
//! bounds every read and write, a bounded response head and a caller-set body limit. One idle
//! connection per (scheme, host, port) is kept for reuse; a reused connection that fails before
//! the first response byte (the server closed it while idle) is retried once on a fresh one.
//! No compression, redirects or proxies. Name resolution uses the system resolver, which has no
//! timeout of its own.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use httparse::Status;
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};

/// Bytes a response head (status line and headers) may take.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Header lines a response head or a chunked trailer may carry.
const MAX_HEADERS: usize = 64;
/// Bytes a chunk-size line (size and extensions) may take.
const MAX_CHUNK_LINE_BYTES: usize = 4 * 1024;
/// Bytes asked of the socket per read.
const READ_CHUNK_BYTES: usize = 16 * 1024;

/// `http` (plain, for tests and local endpoints) or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain TCP, default port 80.
    Http,
    /// TLS, default port 443.
    Https,
}

/// An absolute `http(s)://host[:port]/path?query` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// The scheme.
    pub scheme: Scheme,
    /// A DNS name or an IP literal (IPv6 without its brackets).
    pub host: String,
    /// The port, explicit or the scheme's default.
    pub port: u16,
    /// Path and query, always starting with `/` (the fragment is dropped).
    pub target: String,
}

impl Scheme {
    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

impl Url {
    /// Parses an absolute `http://` or `https://` URL.
    ///
    /// # Errors
    /// [`HttpError::Url`] for another scheme, user info, a bad host or port, whitespace or
    /// control characters.
    pub fn parse(url: &str) -> Result<Url, HttpError> {
        let schemes = [("https://", 443), ("http://", 80)];
        let parts = super::url::parse(url, &schemes, "scheme must be http:// or https://")
            .map_err(|reason| HttpError::Url {
                url: url.to_owned(),
                reason,
            })?;
        Ok(Url {
            scheme: [Scheme::Https, Scheme::Http][parts.scheme],
            host: parts.host.to_owned(),
            port: parts.port,
            target: parts.target,
        })
    }

    /// `host:port`, with IPv6 hosts in brackets: the peer named in errors.
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    fn request_head(&self) -> Vec<u8> {
        let host = if self.port != self.scheme.default_port() {
            self.host_port()
        } else if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!(
            "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: tape/{}\r\n\
             Accept: application/json\r\nConnection: keep-alive\r\n\r\n",
            self.target,
            env!("CARGO_PKG_VERSION")
        )
        .into_bytes()
    }
}

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code (any code; the caller decides what is a success).
    pub status: u16,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// `Retry-After` in its delay-seconds form (the HTTP-date form is ignored).
    pub retry_after_secs: Option<u64>,
}

/// Why a request failed. Every message names the peer and, for transfer errors, the phase.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The URL is not one this client can fetch (caller mistake).
    #[error("invalid URL {url:?}: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The host name did not resolve.
    #[error("cannot resolve {host}: {message}")]
    Resolve {
        /// The host.
        host: String,
        /// The resolver's error.
        message: String,
    },
    /// No resolved address accepted a TCP connection.
    #[error("cannot connect to {peer}: {message}")]
    Connect {
        /// `host:port`.
        peer: String,
        /// The last address's error.
        message: String,
    },
    /// The TLS layer failed (untrusted certificate, bad record, ...).
    #[error("TLS error with {peer} during {during}: {message}")]
    Tls {
        /// `host:port`.
        peer: String,
        /// The phase.
        during: &'static str,
        /// What rustls said.
        message: String,
    },
    /// A socket error.
    #[error("I/O error with {peer} during {during}: {message}")]
    Io {
        /// `host:port`.
        peer: String,
        /// The phase.
        during: &'static str,
        /// The error kind.
        kind: io::ErrorKind,
        /// The error text.
        message: String,
    },
    /// The request deadline passed.
    #[error("request to {peer} timed out after {limit_ms} ms during {during}")]
    Timeout {
        /// `host:port`.
        peer: String,
        /// The phase.
        during: &'static str,
        /// The request deadline.
        limit_ms: u64,
    },
    /// The server sent something that is not a valid HTTP/1.x response (peer fault).
    #[error("bad response from {peer}: {reason}")]
    BadResponse {
        /// `host:port`.
        peer: String,
        /// What was wrong.
        reason: String,
    },
    /// The body is larger than the caller's limit.
    #[error("response body from {peer} exceeds the {limit}-byte limit")]
    BodyTooLarge {
        /// `host:port`.
        peer: String,
        /// The limit.
        limit: usize,
    },
}

/// A byte stream whose blocking reads and writes can be bounded.
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

/// One request's deadline and peer: the context every error carries.
struct Req {
    peer: String,
    deadline: Instant,
    limit_ms: u64,
}

impl Req {
    fn remaining(&self, during: &'static str) -> Result<Duration, HttpError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(self.timeout(during));
        }
        Ok(left)
    }

    fn timeout(&self, during: &'static str) -> HttpError {
        HttpError::Timeout {
            peer: self.peer.clone(),
            during,
            limit_ms: self.limit_ms,
        }
    }

    /// Classifies a socket error: timeouts, rustls errors (wrapped by `StreamOwned`), the rest.
    fn io(&self, e: io::Error, during: &'static str) -> HttpError {
        if matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ) {
            return self.timeout(during);
        }
        if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
            return HttpError::Tls {
                peer: self.peer.clone(),
                during,
                message: tls.to_string(),
            };
        }
        HttpError::Io {
            peer: self.peer.clone(),
            during,
            kind: e.kind(),
            message: e.to_string(),
        }
    }

    fn bad(&self, reason: String) -> HttpError {
        HttpError::BadResponse {
            peer: self.peer.clone(),
            reason,
        }
    }
}

/// A connection with its receive buffer.
struct Conn {
    io: Box<dyn Transport>,
    buf: Vec<u8>,
    /// Start of the unconsumed bytes in `buf`.
    pos: usize,
    /// Bytes received for the current request; a reused connection that fails at 0 is retried.
    received: usize,
}

impl Conn {
    fn new(io: Box<dyn Transport>) -> Conn {
        Conn {
            io,
            buf: Vec::new(),
            pos: 0,
            received: 0,
        }
    }

    /// Reads more bytes into the buffer; `Ok(0)` at end of stream.
    fn fill(&mut self, r: &Req, during: &'static str) -> Result<usize, HttpError> {
        self.buf.drain(..self.pos);
        self.pos = 0;
        let limit = r.remaining(during)?;
        self.io.set_timeout(limit).map_err(|e| r.io(e, during))?;
        let len = self.buf.len();
        self.buf.resize(len + READ_CHUNK_BYTES, 0);
        let n = loop {
            match self.io.read(&mut self.buf[len..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A TLS peer that closes without close_notify; framing still catches truncation.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break 0,
                Err(e) => {
                    self.buf.truncate(len);
                    return Err(r.io(e, during));
                }
            }
        };
        self.buf.truncate(len + n);
        self.received += n;
        Ok(n)
    }

    /// Runs `parse` on the unconsumed bytes (at most `max` of them), reading more while it
    /// returns `Ok(None)`; consumes what it reports.
    fn parse<T>(
        &mut self,
        r: &Req,
        during: &'static str,
        max: usize,
        parse: impl Fn(&[u8]) -> Result<Option<(usize, T)>, String>,
    ) -> Result<T, HttpError> {
        loop {
            let avail = &self.buf[self.pos..];
            let window = &avail[..avail.len().min(max)];
            match parse(window).map_err(|m| r.bad(format!("{m} (while {during})")))? {
                Some((n, value)) => {
                    self.pos += n.min(window.len());
                    return Ok(value);
                }
                None if window.len() >= max => {
                    return Err(r.bad(format!("{during}: more than {max} bytes")))
                }
                None if self.fill(r, during)? == 0 => {
                    return Err(r.bad(format!("connection closed during {during}")))
                }
                None => {}
            }
        }
    }

    /// Appends exactly `n` body bytes to `out`.
    fn read_exact_into(
        &mut self,
        r: &Req,
        mut n: usize,
        out: &mut Vec<u8>,
        during: &'static str,
    ) -> Result<(), HttpError> {
        loop {
            let take = n.min(self.buf.len() - self.pos);
            out.extend_from_slice(&self.buf[self.pos..self.pos + take]);
            self.pos += take;
            n -= take;
            if n == 0 {
                return Ok(());
            }
            if self.fill(r, during)? == 0 {
                return Err(r.bad(format!("connection closed {n} bytes short during {during}")));
            }
        }
    }
}

/// How the body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// The parts of a response head this client acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    status: u16,
    keep_alive: bool,
    framing: Framing,
    retry_after_secs: Option<u64>,
}

fn parse_head(buf: &[u8]) -> Result<Option<(usize, Head)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(Status::Partial) => return Ok(None),
        Ok(Status::Complete(len)) => len,
        Err(e) => return Err(format!("malformed response head: {e}")),
    };
    let (Some(version), Some(status)) = (resp.version, resp.code) else {
        return Err("incomplete status line".to_owned());
    };
    let mut head = Head {
        status,
        keep_alive: version == 1,
        framing: Framing::UntilClose,
        retry_after_secs: None,
    };
    let (mut length, mut chunked) = (None, false);
    for h in resp.headers.iter() {
        let value = std::str::from_utf8(h.value).unwrap_or_default().trim();
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let n = value
                .parse::<u64>()
                .map_err(|_| format!("invalid Content-Length {value:?}"))?;
            if length.is_some_and(|l| l != n) {
                return Err("conflicting Content-Length headers".to_owned());
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // We never offer codings (no TE, no Accept-Encoding): anything but chunked would
            // hand back bytes nobody can read.
            if !value.eq_ignore_ascii_case("chunked") {
                return Err(format!("unsupported Transfer-Encoding {value:?}"));
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case("content-encoding") {
            if !value.eq_ignore_ascii_case("identity") {
                return Err(format!("unsupported Content-Encoding {value:?}"));
            }
        } else if name.eq_ignore_ascii_case("connection") {
            if value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("close"))
            {
                head.keep_alive = false;
            }
        } else if name.eq_ignore_ascii_case("retry-after") {
            head.retry_after_secs = value.parse().ok();
        }
    }
    head.framing = match (chunked, length) {
        _ if (100..200).contains(&status) || status == 204 || status == 304 => Framing::Empty,
        (true, _) => Framing::Chunked,
        (false, Some(n)) => Framing::Length(n),
        (false, None) => Framing::UntilClose,
    };
    // RFC 9112 6.3: both headers, or a body that ends at close, end the connection.
    if head.framing == Framing::UntilClose || (chunked && length.is_some()) {
        head.keep_alive = false;
    }
    Ok(Some((len, head)))
}

fn parse_chunk_size(buf: &[u8]) -> Result<Option<(usize, u64)>, String> {
    match httparse::parse_chunk_size(buf) {
        Ok(Status::Complete(done)) => Ok(Some(done)),
        Ok(Status::Partial) => Ok(None),
        Err(_) => Err("invalid chunk size line".to_owned()),
    }
}

fn parse_crlf(buf: &[u8]) -> Result<Option<(usize, ())>, String> {
    match buf.get(..2) {
        None => Ok(None),
        Some(b"\r\n") => Ok(Some((2, ()))),
        Some(_) => Err("chunk data not followed by CRLF".to_owned()),
    }
}

fn parse_trailer(buf: &[u8]) -> Result<Option<(usize, ())>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match httparse::parse_headers(buf, &mut headers) {
        Ok(Status::Complete((n, _))) => Ok(Some((n, ()))),
        Ok(Status::Partial) => Ok(None),
        Err(e) => Err(format!("malformed chunked trailer: {e}")),
    }
}

/// Sends the request and reads one response; the flag says whether the connection is reusable.
fn exchange(
    conn: &mut Conn,
    request: &[u8],
    r: &Req,
    max_body: usize,
) -> Result<(HttpResponse, bool), HttpError> {
    conn.received = 0;
    let during = "sending the request";
    conn.io
        .set_timeout(r.remaining(during)?)
        .map_err(|e| r.io(e, during))?;
    conn.io
        .write_all(request)
        .and_then(|()| conn.io.flush())
        .map_err(|e| r.io(e, during))?;
    let head = loop {
        let head = conn.parse(r, "reading the response head", MAX_HEAD_BYTES, parse_head)?;
        match head.status {
            101 => return Err(r.bad("unexpected 101 Switching Protocols".to_owned())),
            100..=199 => {} // interim response: the real one follows
            _ => break head,
        }
    };
    let too_large = || HttpError::BodyTooLarge {
        peer: r.peer.clone(),
        limit: max_body,
    };
    let mut body = Vec::new();
    match head.framing {
        Framing::Empty => {}
        Framing::Length(n) => {
            let n = usize::try_from(n)
                .ok()
                .filter(|n| *n <= max_body)
                .ok_or_else(too_large)?;
            body.reserve_exact(n);
            conn.read_exact_into(r, n, &mut body, "reading the response body")?;
        }
        Framing::Chunked => loop {
            let size = conn.parse(
                r,
                "reading a chunk size",
                MAX_CHUNK_LINE_BYTES,
                parse_chunk_size,
            )?;
            if size == 0 {
                conn.parse(
                    r,
                    "reading the chunked trailer",
                    MAX_HEAD_BYTES,
                    parse_trailer,
                )?;
                break;
            }
            let size = usize::try_from(size)
                .ok()
                .filter(|s| body.len().saturating_add(*s) <= max_body)
                .ok_or_else(too_large)?;
            conn.read_exact_into(r, size, &mut body, "reading a chunk")?;
            conn.parse(r, "reading a chunk end", 2, parse_crlf)?;
        },
        Framing::UntilClose => loop {
            let avail = &conn.buf[conn.pos..];
            if body.len().saturating_add(avail.len()) > max_body {
                return Err(too_large());
            }
            body.extend_from_slice(avail);
            conn.pos = conn.buf.len();
            if conn.fill(r, "reading the response body until close")? == 0 {
                break;
            }
        },
    }
    // Bytes after the response mean a confused peer: don't reuse the connection.
    let keep = head.keep_alive && conn.pos == conn.buf.len();
    let response = HttpResponse {
        status: head.status,
        body,
        retry_after_secs: head.retry_after_secs,
    };
    Ok((response, keep))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::testing::{read_request, tls_pair, Server};
    use std::net::TcpListener;
    use std::sync::atomic::Ordering::SeqCst;

    fn client(timeout_ms: u64) -> HttpClient {
        let tls = crate::live::client_tls_config(true, None).unwrap();
        let t = Duration::from_millis(timeout_ms);
        HttpClient::new(tls, t, t)
    }

    const OK_HELLO: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

    #[test]
    fn url_parsing() {
        let u = Url::parse("HTTPS://fapi.binance.com/fapi/v1/depth?symbol=X#f").unwrap();
        assert_eq!((u.scheme, u.port), (Scheme::Https, 443));
        assert_eq!(
            (u.host.as_str(), u.target.as_str()),
            ("fapi.binance.com", "/fapi/v1/depth?symbol=X")
        );
        let u = Url::parse("http://[::1]:8080?q=1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.target.as_str()),
            ("::1", 8080, "/?q=1")
        );
        assert_eq!(u.host_port(), "[::1]:8080");
        assert!(String::from_utf8(u.request_head())
            .unwrap()
            .contains("Host: [::1]:8080\r\n"));
        let u = Url::parse("http://127.0.0.1").unwrap();
        assert_eq!((u.port, u.target.as_str()), (80, "/"));
        assert!(String::from_utf8(u.request_head())
            .unwrap()
            .contains("Host: 127.0.0.1\r\n"));
        for bad in [
            "ftp://x/",
            "https://",
            "https://:80/",
            "https://h:0/",
            "https://h:99999/",
            "https://u@h/",
            "https://[::1/",
            "https://[nope]/",
            "https://h/a b",
            "https://h\r\n/",
            "https://h:1:2/",
            "é",
        ] {
            assert!(
                matches!(Url::parse(bad), Err(HttpError::Url { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn content_length_and_keep_alive_reuse() {
        let server = Server::start(None, |_, s| {
            for _ in 0..2 {
                let Some(req) = read_request(s) else { return };
                assert!(
                    req.starts_with("GET /api/v3/depth?symbol=BTCUSDT HTTP/1.1\r\n"),
                    "{req}"
                );
                assert!(req.contains("\r\nUser-Agent: tape/") && !req.contains("Accept-Encoding"));
                assert!(req.contains("\r\nConnection: keep-alive\r\n"));
                s.write_all(OK_HELLO).unwrap();
            }
        });
        let mut c = client(5000);
        let url = server.url("http", "/api/v3/depth?symbol=BTCUSDT");
        for _ in 0..2 {
            let resp = c.get(&url, 100).unwrap();
            assert_eq!((resp.status, resp.body.as_slice()), (200, &b"hello"[..]));
        }
        assert_eq!(
            (server.accepts.load(SeqCst), c.connections_opened()),
            (1, 1)
        );
    }

    #[test]
    fn chunked_with_extension_and_trailer_split_across_writes() {
        let server = Server::start(None, |_, s| {
            read_request(s);
            let parts: [&[u8]; 7] = [
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                b"5;ext=\"a\"\r\nhel",
                b"lo\r",
                b"\n7\r\n, world\r\n",
                b"0\r\n",
                b"X-Trailer: yes\r\n",
                b"\r\n",
            ];
            for p in parts {
                s.write_all(p).unwrap();
                s.flush().unwrap();
            }
            read_request(s); // hold the connection until the client drops it
        });
        let resp = client(5000).get(&server.url("http", "/"), 100).unwrap();
        assert_eq!(resp.body, b"hello, world");
    }

    #[test]
    fn stale_kept_alive_connection_is_retried_once() {
        let server = Server::start(None, |_, s| {
            read_request(s);
            s.write_all(OK_HELLO).unwrap(); // then close although keep-alive was offered
        });
        let mut c = client(5000);
        let url = server.url("http", "/");
        assert_eq!(c.get(&url, 100).unwrap().body, b"hello");
        assert_eq!(c.get(&url, 100).unwrap().body, b"hello");
        assert_eq!(server.accepts.load(SeqCst), 2);
    }

    #[test]
    fn retry_after_and_read_until_close() {
        let server = Server::start(None, |i, s| {
            read_request(s);
            let reply: &[u8] = match i {
                0 => b"HTTP/1.1 503 Busy\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n",
                _ => b"HTTP/1.0 200 OK\r\n\r\nuntil close",
            };
            s.write_all(reply).unwrap();
        });
        let mut c = client(5000);
        let resp = c.get(&server.url("http", "/"), 100).unwrap();
        assert_eq!((resp.status, resp.retry_after_secs), (503, Some(7)));
        let resp = c.get(&server.url("http", "/"), 100).unwrap();
        assert_eq!(
            (resp.status, resp.body.as_slice()),
            (200, &b"until close"[..])
        );
    }

    /// Serves `reply` to every request and returns what the client made of it.
    fn fetch_raw(reply: &'static [u8], max_body: usize) -> Result<HttpResponse, HttpError> {
        let server = Server::start(None, move |_, s| {
            read_request(s);
            let _ = s.write_all(reply);
        });
        client(5000).get(&server.url("http", "/"), max_body)
    }

    #[test]
    fn peer_faults_are_typed_errors() {
        let too_large = |r| matches!(r, Err(HttpError::BodyTooLarge { limit: 4, .. }));
        assert!(too_large(fetch_raw(OK_HELLO, 4)));
        assert!(too_large(fetch_raw(b"HTTP/1.1 200 OK\r\n\r\nhello", 4)));
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\nabc\r\n";
        assert!(too_large(fetch_raw(chunked, 4)));
        let bad = |r: Result<HttpResponse, HttpError>, what: &str| match r {
            Err(HttpError::BadResponse { reason, .. }) => {
                assert!(reason.contains(what), "{reason}")
            }
            other => panic!("{other:?}"),
        };
        bad(fetch_raw(b"SSH-2.0-OpenSSH\r\n\r\n", 100), "malformed");
        bad(
            fetch_raw(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 100),
            "7 bytes short",
        );
        bad(
            fetch_raw(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                100,
            ),
            "chunk size",
        );
        bad(
            fetch_raw(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", 100),
            "Content-Length",
        );
        bad(fetch_raw(b"HTTP/1.1 200 OK\r\n", 100), "closed");
    }

    #[test]
    fn connect_refused_and_silent_server() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = client(5000).get(&format!("http://127.0.0.1:{port}/"), 100);
        assert!(matches!(err, Err(HttpError::Connect { .. })), "{err:?}");

        let server = Server::start(None, |_, s| {
            read_request(s);
            read_request(s); // never answer; returns when the client gives up
        });
        let start = Instant::now();
        let err = client(300).get(&server.url("http", "/"), 100);
        assert!(
            matches!(err, Err(HttpError::Timeout { limit_ms: 300, .. })),
            "{err:?}"
        );
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(300) && waited < Duration::from_secs(3));
    }

    #[test]
    fn https_trusted_and_untrusted() {
        let (server_tls, client_tls, _dir) = tls_pair();
        let server = Server::start(Some(server_tls.clone()), |_, s| {
            while read_request(s).is_some() {
                s.write_all(OK_HELLO).unwrap();
            }
        });
        let mut c = HttpClient::new(client_tls, Duration::from_secs(5), Duration::from_secs(5));
        for _ in 0..2 {
            assert_eq!(
                c.get(&server.url("https", "/x"), 100).unwrap().body,
                b"hello"
            );
        }
        assert_eq!(c.connections_opened(), 1);
        drop(c); // closes the kept-alive connection, so the server's handler returns
        drop(server);

        let server = Server::start(Some(server_tls), |_, s| {
            read_request(s);
        });
        let (_, other_ca, _dir2) = tls_pair();
        let mut c = HttpClient::new(other_ca, Duration::from_secs(5), Duration::from_secs(5));
        let err = c.get(&server.url("https", "/"), 100);
        assert!(matches!(err, Err(HttpError::Tls { .. })), "{err:?}");
    }

    /// Replays fixed bytes, `step` bytes per read, then end of stream.
    struct Scripted {
        data: Vec<u8>,
        step: usize,
    }

    impl Read for Scripted {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data.drain(..n);
            Ok(n)
        }
    }

    impl Write for Scripted {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Transport for Scripted {
        fn set_timeout(&mut self, _: Duration) -> io::Result<()> {
            Ok(())
        }
    }

    fn scripted(data: &[u8], step: usize) -> Result<(HttpResponse, bool), HttpError> {
        let mut conn = Conn::new(Box::new(Scripted {
            data: data.to_vec(),
            step,
        }));
        let r = Req {
            peer: "test:0".to_owned(),
            deadline: Instant::now() + Duration::from_secs(5),
            limit_ms: 5000,
        };
        exchange(&mut conn, b"", &r, 64)
    }

    #[test]
    fn one_byte_reads() {
        let data =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                     2;a=b\r\nhi\r\n0\r\nT: 1\r\n\r\n";
        let (resp, keep) = scripted(data, 1).unwrap();
        assert_eq!(
            (resp.status, resp.body.as_slice(), keep),
            (200, &b"hi"[..], true)
        );
        let (resp, keep) = scripted(b"HTTP/1.1 204 No\r\nConnection: close\r\n\r\n", 1).unwrap();
        assert_eq!((resp.status, resp.body.len(), keep), (204, 0, false));
        for coding in ["Transfer-Encoding: gzip, chunked", "Content-Encoding: gzip"] {
            let head = format!("HTTP/1.1 200 OK\r\n{coding}\r\n\r\n");
            let err = scripted(head.as_bytes(), 7);
            assert!(matches!(err, Err(HttpError::BadResponse { .. })), "{err:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_server_bytes(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
            step in 1usize..32,
        ) {
            let mut framed = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            framed.extend_from_slice(&data);
            let _ = scripted(&data, step);
            let _ = scripted(&framed, step);
        }
    }
}
