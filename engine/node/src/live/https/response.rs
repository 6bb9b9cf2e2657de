//! Reading one HTTP/1.1 response off a blocking connection: the bounded head parser, the body
//! framings (length, chunked with extensions and trailers, until close) and the decision
//! whether the connection may be reused. Every parser returns `Ok(None)` on short input and
//! consumes nothing, so the same code serves one-byte reads and whole responses.

use std::io::{self, Write};

use httparse::Status;

use super::error::Req;
use super::{HttpError, Transport};

/// Bytes a response head (status line and headers) may take.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Header lines a response head or a chunked trailer may carry.
pub(super) const MAX_HEADERS: usize = 64;
/// Bytes a chunk-size line (size and extensions) may take.
const MAX_CHUNK_LINE_BYTES: usize = 4 * 1024;
/// Bytes asked of the socket per read.
const READ_CHUNK_BYTES: usize = 16 * 1024;

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

/// A connection with its receive buffer.
pub(super) struct Conn {
    pub(super) io: Box<dyn Transport>,
    buf: Vec<u8>,
    /// Start of the unconsumed bytes in `buf`.
    pos: usize,
    /// Bytes received for the current request; a reused connection that fails at 0 is retried.
    pub(super) received: usize,
}

impl Conn {
    pub(super) fn new(io: Box<dyn Transport>) -> Conn {
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
pub(super) fn exchange(
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::time::{Duration, Instant};

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
