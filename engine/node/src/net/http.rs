//! HTTP/1.1 request heads and responses, sans-IO: bytes in, a parsed head or response bytes out.
//!
//! Only what the transport needs: the request line, the handful of headers that drive routing
//! and the RFC 6455 opening handshake, and minimal `Connection: close` responses.

/// Headers beyond this count make the head "too large" (431), like an oversized head.
const MAX_HEADERS: usize = 64;

/// The parts of a request head the server routes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// Bytes the head occupied, including the blank line; anything after it is body or
    /// pipelined data.
    pub len: usize,
    pub method: String,
    /// The path before any `?`.
    pub path: String,
    /// The raw query after `?` (empty if none).
    pub query: String,
    /// `1` for HTTP/1.1, `0` for HTTP/1.0.
    pub version: u8,
    pub upgrade_websocket: bool,
    pub connection_upgrade: bool,
    /// Every `Sec-WebSocket-Key` value seen (more than one is a bad request).
    pub ws_keys: Vec<String>,
    pub ws_version: Option<String>,
    pub authorization: Option<String>,
    /// The `Host` header, if any (the dashboard names it in its Content-Security-Policy).
    pub host: Option<String>,
}

/// Outcome of parsing the bytes received so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadParse {
    /// The head is not complete yet; read more.
    Partial,
    /// A complete head.
    Complete(RequestHead),
    /// Malformed (answer 400).
    Invalid(String),
    /// Too many headers (answer 431).
    TooLarge,
}

/// Parses a request head from the start of `buf`.
pub fn parse_head(buf: &[u8]) -> HeadParse {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Partial) => return HeadParse::Partial,
        Ok(httparse::Status::Complete(len)) => len,
        Err(httparse::Error::TooManyHeaders) => return HeadParse::TooLarge,
        Err(e) => return HeadParse::Invalid(format!("malformed request head: {e}")),
    };
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return HeadParse::Invalid("incomplete request line".to_owned());
    };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, q),
        None => (target, ""),
    };
    let mut head = RequestHead {
        len,
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        version,
        upgrade_websocket: false,
        connection_upgrade: false,
        ws_keys: Vec::new(),
        ws_version: None,
        authorization: None,
        host: None,
    };
    for h in req.headers.iter() {
        // Non-UTF-8 values can't be any of the headers we act on; skip them.
        let Ok(value) = std::str::from_utf8(h.value) else {
            continue;
        };
        let value = value.trim();
        let name = h.name;
        if name.eq_ignore_ascii_case("upgrade") {
            head.upgrade_websocket |= has_token(value, "websocket");
        } else if name.eq_ignore_ascii_case("connection") {
            head.connection_upgrade |= has_token(value, "upgrade");
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            head.ws_keys.push(value.to_owned());
        } else if name.eq_ignore_ascii_case("sec-websocket-version") {
            head.ws_version = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("host") {
            head.host = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("authorization") {
            // Two credentials are ambiguous (which one did a proxy check?): refuse rather
            // than pick one.
            if head.authorization.is_some() {
                return HeadParse::Invalid("more than one Authorization header".to_owned());
            }
            head.authorization = Some(value.to_owned());
        }
    }
    HeadParse::Complete(head)
}

/// True if the comma-separated header `value` contains `token` (case-insensitive).
fn has_token(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Why an opening handshake was refused (sent as the 400 body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeError {
    NotGet,
    NotHttp11,
    NoUpgradeHeader,
    NoConnectionUpgrade,
    BadVersion,
    BadKey,
}

impl UpgradeError {
    /// A one-line reason, used as the 400 body.
    pub fn reason(self) -> &'static str {
        match self {
            UpgradeError::NotGet => "WebSocket upgrade requires GET",
            UpgradeError::NotHttp11 => "WebSocket upgrade requires HTTP/1.1",
            UpgradeError::NoUpgradeHeader => "missing \"Upgrade: websocket\"",
            UpgradeError::NoConnectionUpgrade => "missing \"Connection: Upgrade\"",
            UpgradeError::BadVersion => "unsupported Sec-WebSocket-Version (expected 13)",
            UpgradeError::BadKey => "missing or invalid Sec-WebSocket-Key",
        }
    }
}

/// Validates an RFC 6455 opening handshake and returns the `Sec-WebSocket-Accept` value.
pub fn accept_upgrade(head: &RequestHead) -> Result<String, UpgradeError> {
    if head.method != "GET" {
        return Err(UpgradeError::NotGet);
    }
    if head.version != 1 {
        return Err(UpgradeError::NotHttp11);
    }
    if !head.upgrade_websocket {
        return Err(UpgradeError::NoUpgradeHeader);
    }
    if !head.connection_upgrade {
        return Err(UpgradeError::NoConnectionUpgrade);
    }
    if head.ws_version.as_deref() != Some("13") {
        return Err(UpgradeError::BadVersion);
    }
    match head.ws_keys.as_slice() {
        [key] if valid_key(key) => Ok(tungstenite::handshake::derive_accept_key(key.as_bytes())),
        _ => Err(UpgradeError::BadKey),
    }
}

/// A key is the base64 encoding of 16 bytes: 22 alphabet characters then `==`.
fn valid_key(key: &str) -> bool {
    let b = key.as_bytes();
    b.len() == 24
        && b[22..] == *b"=="
        && b[..22]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
}

/// The `101 Switching Protocols` response for an accepted upgrade.
pub(crate) fn switching_protocols(accept: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\nServer: tape\r\n\r\n"
    )
    .into_bytes()
}

/// A complete `Connection: close` response. `head_only` omits the body (answer to `HEAD`) but
/// keeps its `Content-Length`. `extra_headers` is zero or more `Name: value\r\n` lines.
pub(crate) fn response(
    status: u16,
    content_type: &str,
    body: &[u8],
    head_only: bool,
    extra_headers: &str,
) -> Vec<u8> {
    // Caller-supplied text must not be able to inject headers.
    let content_type: String = content_type.chars().filter(|c| !c.is_control()).collect();
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\nServer: tape\r\n{extra_headers}\r\n",
        reason_phrase(status),
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

/// The standard reason phrase for the statuses a market-data server uses.
pub(crate) fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPGRADE: &[u8] = b"GET /ws?token=abc HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
        Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";

    fn complete(buf: &[u8]) -> RequestHead {
        match parse_head(buf) {
            HeadParse::Complete(h) => h,
            other => panic!("expected a complete head, got {other:?}"),
        }
    }

    #[test]
    fn rfc_example_key_is_accepted() {
        let head = complete(UPGRADE);
        assert_eq!(head.len, UPGRADE.len());
        assert_eq!(head.path, "/ws");
        assert_eq!(head.query, "token=abc");
        assert_eq!(head.host.as_deref(), Some("x"));
        // The worked example in RFC 6455 section 1.3.
        assert_eq!(
            accept_upgrade(&head).as_deref(),
            Ok("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
    }

    #[test]
    fn every_prefix_is_partial() {
        for end in 0..UPGRADE.len() {
            assert_eq!(parse_head(&UPGRADE[..end]), HeadParse::Partial, "{end}");
        }
    }

    #[test]
    fn trailing_bytes_are_not_part_of_the_head() {
        let mut buf = UPGRADE.to_vec();
        buf.extend_from_slice(b"\x81\x85garbage");
        assert_eq!(complete(&buf).len, UPGRADE.len());
    }

    #[test]
    fn bad_upgrades_are_refused_with_a_reason() {
        let mut head = complete(UPGRADE);
        head.ws_version = Some("8".into());
        assert_eq!(accept_upgrade(&head), Err(UpgradeError::BadVersion));
        let mut head = complete(UPGRADE);
        head.ws_keys.clear();
        assert_eq!(accept_upgrade(&head), Err(UpgradeError::BadKey));
        let mut head = complete(UPGRADE);
        head.ws_keys.push(head.ws_keys[0].clone());
        assert_eq!(accept_upgrade(&head), Err(UpgradeError::BadKey));
        let mut head = complete(UPGRADE);
        head.ws_keys = vec!["short==".into()];
        assert_eq!(accept_upgrade(&head), Err(UpgradeError::BadKey));
        let mut head = complete(UPGRADE);
        head.method = "POST".into();
        assert_eq!(accept_upgrade(&head), Err(UpgradeError::NotGet));
        let mut head = complete(UPGRADE);
        head.connection_upgrade = false;
        assert_eq!(
            accept_upgrade(&head),
            Err(UpgradeError::NoConnectionUpgrade)
        );
    }

    #[test]
    fn garbage_is_invalid_and_many_headers_too_large() {
        assert!(matches!(
            parse_head(b"\x16\x03\x01garbage\r\n\r\n"),
            HeadParse::Invalid(_)
        ));
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse_head(&many), HeadParse::TooLarge);
    }

    #[test]
    fn two_authorization_headers_are_a_bad_request() {
        let one = b"GET /api/orders HTTP/1.1\r\nAuthorization: Bearer a\r\n\r\n";
        assert_eq!(complete(one).authorization.as_deref(), Some("Bearer a"));
        let two = b"GET /api/orders HTTP/1.1\r\nAuthorization: Bearer a\r\n\
            authorization: Bearer b\r\n\r\n";
        assert!(matches!(parse_head(two), HeadParse::Invalid(r) if r.contains("Authorization")));
    }

    #[test]
    fn responses_carry_length_and_close() {
        let r = response(404, "text/plain\r\nX-Evil: 1", b"nope", false, "");
        let text = String::from_utf8(r).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(text.contains("Content-Length: 4\r\n"));
        assert!(text.contains("Connection: close\r\n"));
        assert!(!text.contains("\r\nX-Evil"));
        assert!(text.ends_with("\r\n\r\nnope"));
        let head = response(200, "text/plain", b"body", true, "");
        assert!(String::from_utf8(head)
            .unwrap()
            .ends_with("Content-Length: 4\r\nConnection: close\r\nServer: tape\r\n\r\n"));
    }
}
