//! The snapshot client against real loopback servers (plain and TLS): keep-alive reuse, the
//! stale-connection retry, chunked bodies split across writes, typed peer faults, timeouts.

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
    let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\nabc\r\n";
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
