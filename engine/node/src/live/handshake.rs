//! tape's side of the client WebSocket opening handshake (RFC 6455 §4.1): the upgrade request,
//! the `101` response checked, and the bytes that came in behind the response head handed
//! back, so the frames can run on a [`WebSocketContext`](tungstenite::protocol::WebSocketContext)
//! that is kept apart from the stream, as the server side (`net::conn`) does.
//!
//! tungstenite's own `ClientHandshake` ends in a `WebSocket<S>` that owns both the stream and
//! the leftover bytes, so protocol state and socket could not be taken apart (no way to get the
//! socket back on failure, no way to hold the context next to a stream the caller owns).
//!
//! [`ClientHandshake::advance`] resumes across `WouldBlock` like tungstenite's handshake
//! machine: it writes what is left of the request, then reads until the response head is
//! complete; on short input it keeps what it has and asks to be called again. The response
//! check itself is the pure [`parse_response`], which consumes nothing until the head is whole.

use std::io::{self, Read, Write};

use tungstenite::handshake::client::generate_key;
use tungstenite::handshake::derive_accept_key;

/// Largest response head accepted. A venue's 101 is a few hundred bytes; this bounds what a
/// misbehaving server can make us buffer before the handshake fails.
pub const MAX_RESPONSE_HEAD_BYTES: usize = 8 * 1024;
/// Most response header lines accepted (httparse needs a fixed array).
const MAX_RESPONSE_HEADERS: usize = 64;
/// One read from the stream while waiting for the head.
const READ_CHUNK_BYTES: usize = 4 * 1024;

/// Why the opening handshake failed. Peer faults ([`Refused`](Self::Refused), the header
/// checks) are apart from the transport's (`Io`, `Closed`) and the caller's (`Request`).
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The URL cannot make an upgrade request.
    #[error("bad request URL: {0}")]
    Request(String),
    /// The socket failed.
    #[error("io: {0}")]
    Io(#[from] io::Error),
    /// The server closed the connection before the response head was complete.
    #[error("connection closed during the handshake")]
    Closed,
    /// The response head passed [`MAX_RESPONSE_HEAD_BYTES`].
    #[error("response head larger than {MAX_RESPONSE_HEAD_BYTES} bytes")]
    HeadTooLarge,
    /// The response is not HTTP/1.x.
    #[error("malformed response: {0}")]
    Malformed(httparse::Error),
    /// The server answered, but not with `101 Switching Protocols`.
    #[error("HTTP {0}")]
    Refused(u16),
    /// No `Upgrade: websocket` header.
    #[error("response lacks Upgrade: websocket")]
    NoUpgrade,
    /// No `Connection: Upgrade` header.
    #[error("response lacks Connection: Upgrade")]
    NoConnectionUpgrade,
    /// `Sec-WebSocket-Accept` missing or not derived from our key.
    #[error("Sec-WebSocket-Accept does not match the key")]
    AcceptMismatch,
    /// The server chose a subprotocol we never offered.
    #[error("server chose a subprotocol that was not requested")]
    UnrequestedSubprotocol,
}

/// A client handshake in progress: the request still to write, then the response head so far.
#[derive(Debug)]
pub struct ClientHandshake {
    request: Vec<u8>,
    written: usize,
    /// The `Sec-WebSocket-Accept` the server must answer with.
    accept: String,
    /// Response bytes read so far (head, then possibly the first frames).
    input: Vec<u8>,
}

impl ClientHandshake {
    /// A handshake for `url` (`ws://` or `wss://`) with a fresh random key.
    ///
    /// # Errors
    /// [`HandshakeError::Request`] when the URL does not parse.
    pub fn new(url: &str, user_agent: Option<&str>) -> Result<ClientHandshake, HandshakeError> {
        ClientHandshake::with_key(url, user_agent, &generate_key())
    }

    /// As [`new`](Self::new) with a given `Sec-WebSocket-Key` (tests need a known one).
    ///
    /// # Errors
    /// [`HandshakeError::Request`] when the URL does not parse.
    pub fn with_key(
        url: &str,
        user_agent: Option<&str>,
        key: &str,
    ) -> Result<ClientHandshake, HandshakeError> {
        let parts = super::url::parse(url, &[("wss://", 443), ("ws://", 80)], "not a ws URL")
            .map_err(|e| HandshakeError::Request(format!("{url:?}: {e}")))?;
        // Byte for byte what tungstenite's client wrote before (its header map lowercases the
        // extra names), so venues see no difference.
        let mut request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n",
            parts.target, parts.authority
        );
        if let Some(ua) = user_agent {
            request.push_str(&format!("user-agent: {ua}\r\n"));
        }
        request.push_str("\r\n");
        Ok(ClientHandshake {
            request: request.into_bytes(),
            written: 0,
            accept: derive_accept_key(key.as_bytes()),
            input: Vec::new(),
        })
    }

    /// The request bytes (for tests and logs).
    pub fn request(&self) -> &[u8] {
        &self.request
    }

    /// Goes as far as `stream` allows: `Ok(Some(leftover))` when the server accepted, with the
    /// bytes that followed the response head (the first frames, to be fed to the context
    /// before the stream); `Ok(None)` when the stream would block (call again on the next
    /// readiness event).
    ///
    /// # Errors
    /// Why the handshake failed; the stream is not to be used for a WebSocket afterwards.
    pub fn advance<S: Read + Write>(
        &mut self,
        stream: &mut S,
    ) -> Result<Option<Vec<u8>>, HandshakeError> {
        while self.written < self.request.len() {
            match stream.write(&self.request[self.written..]) {
                Ok(0) => return Err(HandshakeError::Closed),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        // Every call until the response is in, not once: over TLS the request waits in rustls
        // until the TLS handshake completes (inside the reads below) and its records may meet
        // a full socket then; the next writable event lands here and pushes them on.
        match stream.flush() {
            Ok(()) => {}
            // Reading must go on regardless: readiness is edge-triggered, so input left
            // unread now would never be announced again.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e.into()),
        }
        let mut chunk = [0u8; READ_CHUNK_BYTES];
        loop {
            match stream.read(&mut chunk) {
                Ok(0) => return Err(HandshakeError::Closed),
                Ok(n) => {
                    self.input.extend_from_slice(&chunk[..n]);
                    if let Some(head) = parse_response(&self.input, &self.accept)? {
                        return Ok(Some(self.input.split_off(head)));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Checks a response head against the accept key we expect: `Ok(None)` while `input` holds
/// only part of the head, `Ok(Some(len))` when the first `len` bytes are an accepting head.
///
/// # Errors
/// The first thing wrong with the response.
pub fn parse_response(input: &[u8], accept: &str) -> Result<Option<usize>, HandshakeError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(input).map_err(HandshakeError::Malformed)? {
        httparse::Status::Partial if input.len() > MAX_RESPONSE_HEAD_BYTES => {
            return Err(HandshakeError::HeadTooLarge)
        }
        httparse::Status::Partial => return Ok(None),
        httparse::Status::Complete(len) if len > MAX_RESPONSE_HEAD_BYTES => {
            return Err(HandshakeError::HeadTooLarge)
        }
        httparse::Status::Complete(len) => len,
    };
    let code = resp.code.unwrap_or_default();
    if code != 101 {
        return Err(HandshakeError::Refused(code));
    }
    let header = |name: &str| {
        resp.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    if !header("Upgrade").is_some_and(|v| v.eq_ignore_ascii_case(b"websocket")) {
        return Err(HandshakeError::NoUpgrade);
    }
    // RFC 6455 asks for a token list that includes "Upgrade", not for the bare word.
    let has_upgrade_token = |v: &[u8]| {
        v.split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"upgrade"))
    };
    if !header("Connection").is_some_and(has_upgrade_token) {
        return Err(HandshakeError::NoConnectionUpgrade);
    }
    if header("Sec-WebSocket-Accept") != Some(accept.as_bytes()) {
        return Err(HandshakeError::AcceptMismatch);
    }
    // We offer no subprotocol, so any choice of one is the server's mistake.
    if header("Sec-WebSocket-Protocol").is_some() {
        return Err(HandshakeError::UnrequestedSubprotocol);
    }
    Ok(Some(len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use tungstenite::client::IntoClientRequest;

    /// The RFC 6455 §1.3 example: this key must be answered with this accept.
    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    fn good_head() -> String {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {ACCEPT}\r\n\r\n"
        )
    }

    /// A scripted stream: writes are collected, reads come from `reads` one entry per call
    /// (`None` = `WouldBlock`, an empty chunk = EOF); running out of script is `WouldBlock`.
    /// `writes` limits successive writes (`None` = `WouldBlock`); after it, writes take all.
    #[derive(Default)]
    struct Script {
        written: Vec<u8>,
        reads: VecDeque<Option<Vec<u8>>>,
        writes: VecDeque<Option<usize>>,
        /// Successive flush results (`false` = `WouldBlock`); after it, flushes succeed.
        flushes: VecDeque<bool>,
        flushed: usize,
    }

    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.reads.pop_front() {
                Some(Some(bytes)) => {
                    assert!(
                        bytes.len() <= buf.len(),
                        "script chunk larger than the read"
                    );
                    buf[..bytes.len()].copy_from_slice(&bytes);
                    Ok(bytes.len())
                }
                Some(None) | None => Err(io::ErrorKind::WouldBlock.into()),
            }
        }
    }

    impl Write for Script {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = match self.writes.pop_front() {
                Some(None) => return Err(io::ErrorKind::WouldBlock.into()),
                Some(Some(n)) => n.min(buf.len()),
                None => buf.len(),
            };
            self.written.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            self.flushed += 1;
            match self.flushes.pop_front() {
                Some(false) => Err(io::ErrorKind::WouldBlock.into()),
                _ => Ok(()),
            }
        }
    }

    fn handshake() -> ClientHandshake {
        ClientHandshake::with_key("ws://venue.test:9443/ws?streams=a@depth", None, KEY).unwrap()
    }

    #[test]
    fn the_rfc_example_key_derives_the_rfc_example_accept() {
        assert_eq!(handshake().accept, ACCEPT);
    }

    #[test]
    fn the_request_is_byte_for_byte_what_tungstenite_sent() {
        let url = "wss://fstream.example:9443/stream?streams=btcusdt@depth";
        let ours = ClientHandshake::with_key(url, Some("tape/9"), KEY).unwrap();
        let mut req = url.into_client_request().unwrap();
        req.headers_mut()
            .insert("Sec-WebSocket-Key", KEY.parse().unwrap());
        req.headers_mut()
            .insert("User-Agent", "tape/9".parse().unwrap());
        let (theirs, _) = tungstenite::handshake::client::generate_request(req).unwrap();
        assert_eq!(
            String::from_utf8_lossy(ours.request()),
            String::from_utf8_lossy(&theirs)
        );
    }

    #[test]
    fn a_good_101_opens_with_nothing_left_over() {
        let mut s = Script::default();
        s.reads.push_back(Some(good_head().into_bytes()));
        let mut hs = handshake();
        let leftover = hs.advance(&mut s).unwrap().expect("open");
        assert!(leftover.is_empty());
        assert_eq!(s.written, hs.request());
        assert!(s
            .written
            .starts_with(b"GET /ws?streams=a@depth HTTP/1.1\r\nHost: venue.test:9443\r\n"));
    }

    #[test]
    fn frame_bytes_right_after_the_head_are_handed_back() {
        // A text frame "hi" from the server, in the same read as the head.
        let frame = [0x81, 0x02, b'h', b'i'];
        let mut bytes = good_head().into_bytes();
        bytes.extend_from_slice(&frame);
        let mut s = Script::default();
        s.reads.push_back(Some(bytes));
        let leftover = handshake().advance(&mut s).unwrap().expect("open");
        assert_eq!(leftover, frame);
        // And the context built from them reads the frame before touching the stream.
        let mut ctx = tungstenite::protocol::WebSocketContext::from_partially_read(
            leftover,
            tungstenite::protocol::Role::Client,
            None,
        );
        let msg = ctx.read(&mut s).unwrap();
        assert_eq!(msg, tungstenite::Message::text("hi"));
    }

    #[test]
    fn a_response_split_byte_by_byte_resumes_across_would_block() {
        let head = good_head().into_bytes();
        let frame = [0x81, 0x01, b'x'];
        let mut s = Script {
            // The request goes out in two writes with a WouldBlock between them.
            writes: [Some(5), None].into(),
            ..Script::default()
        };
        // Each response byte arrives alone and is followed by WouldBlock.
        for b in head.iter().chain(&frame) {
            s.reads.push_back(Some(vec![*b]));
            s.reads.push_back(None);
        }
        let mut hs = handshake();
        let mut calls = 0;
        let leftover = loop {
            calls += 1;
            assert!(calls <= head.len() + 1, "advance made no progress");
            if let Some(leftover) = hs.advance(&mut s).unwrap() {
                break leftover;
            }
        };
        // One call for the blocked write, then one per head byte (the last one opens).
        assert_eq!(calls, head.len() + 1);
        assert_eq!(s.written, hs.request());
        // Nothing past the head was taken: the frame is still in the stream, whole, and the
        // context reads it from there, also across WouldBlock.
        assert!(leftover.is_empty());
        let mut ctx = tungstenite::protocol::WebSocketContext::from_partially_read(
            leftover,
            tungstenite::protocol::Role::Client,
            None,
        );
        let msg = loop {
            match ctx.read(&mut s) {
                Ok(m) => break m,
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(msg, tungstenite::Message::text("x"));
    }

    #[test]
    fn a_blocked_flush_still_reads_and_is_retried() {
        let mut s = Script {
            flushes: [false, false].into(),
            ..Script::default()
        };
        s.reads.push_back(None);
        s.reads.push_back(Some(good_head().into_bytes()));
        let mut hs = handshake();
        // First call: flush blocks, yet the read is attempted (and blocks too).
        assert!(hs.advance(&mut s).unwrap().is_none());
        assert_eq!((s.flushed, s.reads.len()), (1, 1));
        // Second call: the flush is tried again, still blocks, and the head is read.
        assert!(hs.advance(&mut s).unwrap().is_some());
        assert_eq!(s.flushed, 2);
    }

    #[test]
    fn a_wrong_accept_key_fails() {
        let head = good_head().replace(ACCEPT, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        let err = parse_response(head.as_bytes(), ACCEPT).unwrap_err();
        assert!(matches!(err, HandshakeError::AcceptMismatch), "{err}");
        // Missing altogether is the same mistake.
        let head = good_head().replace(&format!("Sec-WebSocket-Accept: {ACCEPT}\r\n"), "");
        let err = parse_response(head.as_bytes(), ACCEPT).unwrap_err();
        assert!(matches!(err, HandshakeError::AcceptMismatch), "{err}");
    }

    #[test]
    fn a_non_101_status_is_a_refusal_with_its_code() {
        let head = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
        let mut s = Script::default();
        s.reads.push_back(Some(head.to_vec()));
        let err = handshake().advance(&mut s).unwrap_err();
        assert!(matches!(err, HandshakeError::Refused(403)), "{err}");
        // A 200 that looks like an upgrade otherwise is still not one.
        let head = good_head().replace("101 Switching Protocols", "200 OK");
        let err = parse_response(head.as_bytes(), ACCEPT).unwrap_err();
        assert!(matches!(err, HandshakeError::Refused(200)), "{err}");
    }

    #[test]
    fn missing_upgrade_or_connection_headers_fail() {
        let head = good_head().replace("Upgrade: websocket\r\n", "Upgrade: h2c\r\n");
        let err = parse_response(head.as_bytes(), ACCEPT).unwrap_err();
        assert!(matches!(err, HandshakeError::NoUpgrade), "{err}");
        let head = good_head().replace("Connection: Upgrade\r\n", "Connection: close\r\n");
        let err = parse_response(head.as_bytes(), ACCEPT).unwrap_err();
        assert!(matches!(err, HandshakeError::NoConnectionUpgrade), "{err}");
        // A token list and odd case are fine.
        let head = good_head()
            .replace("Connection: Upgrade", "connection: keep-alive, UPGRADE")
            .replace("Upgrade: websocket", "upgrade: WebSocket");
        assert_eq!(
            parse_response(head.as_bytes(), ACCEPT).unwrap(),
            Some(head.len())
        );
    }

    #[test]
    fn an_unrequested_subprotocol_fails() {
        let head = good_head().replace("\r\n\r\n", "\r\nSec-WebSocket-Protocol: chat\r\n\r\n");
        let err = parse_response(head.as_bytes(), ACCEPT).unwrap_err();
        assert!(
            matches!(err, HandshakeError::UnrequestedSubprotocol),
            "{err}"
        );
    }

    #[test]
    fn an_oversized_head_fails_whether_complete_or_not() {
        let filler = format!("X-Pad: {}\r\n", "p".repeat(MAX_RESPONSE_HEAD_BYTES));
        // Never ending: fails once more than the bound is buffered, over several reads.
        let open_ended = format!("HTTP/1.1 101 Switching Protocols\r\n{filler}");
        let mut s = Script::default();
        for chunk in open_ended.as_bytes().chunks(READ_CHUNK_BYTES) {
            s.reads.push_back(Some(chunk.to_vec()));
        }
        let err = handshake().advance(&mut s).unwrap_err();
        assert!(matches!(err, HandshakeError::HeadTooLarge), "{err}");
        // Complete in one read but over the bound.
        let whole = good_head().replace("\r\n\r\n", &format!("\r\n{filler}\r\n"));
        let err = parse_response(whole.as_bytes(), ACCEPT).unwrap_err();
        assert!(matches!(err, HandshakeError::HeadTooLarge), "{err}");
    }

    #[test]
    fn partial_input_consumes_nothing_and_eof_before_the_head_fails() {
        let head = good_head();
        for cut in 0..head.len() {
            assert_eq!(
                parse_response(&head.as_bytes()[..cut], ACCEPT).unwrap(),
                None
            );
        }
        let mut s = Script::default();
        s.reads.push_back(Some(head.as_bytes()[..10].to_vec()));
        s.reads.push_back(Some(Vec::new()));
        let err = handshake().advance(&mut s).unwrap_err();
        assert!(matches!(err, HandshakeError::Closed), "{err}");
    }

    #[test]
    fn garbage_instead_of_http_is_malformed() {
        let err = parse_response(b"SSH-2.0-OpenSSH\r\n\r\n", ACCEPT).unwrap_err();
        assert!(matches!(err, HandshakeError::Malformed(_)), "{err}");
    }
}
