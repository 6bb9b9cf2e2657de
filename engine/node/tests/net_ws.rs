//! `tape_node::net` over real loopback sockets: HTTP routing, the opening handshake, messages
//! both ways, pings, close handshakes and limits.

mod net_support;

use std::io::{Read, Write};
use std::net::Shutdown;

use net_support::*;
use tape_node::net::{NetConfig, NetEvent, SendResult, SocketId};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocket};
use tungstenite::{Error as WsError, Message};

fn open_conn(h: &Harness) -> SocketId {
    match h.wait_event("Open", |e| matches!(e, NetEvent::Open { .. })) {
        NetEvent::Open { conn, .. } => conn,
        _ => unreachable!(),
    }
}

fn closed_event(h: &Harness, id: SocketId) -> (Option<u16>, String) {
    match h.wait_event(
        "Closed",
        |e| matches!(e, NetEvent::Closed { conn, .. } if *conn == id),
    ) {
        NetEvent::Closed { code, reason, .. } => (code, reason),
        _ => unreachable!(),
    }
}

/// Reads until a close frame arrives (skipping data), then lets tungstenite finish the
/// handshake; returns the server's close frame.
fn read_close<S: std::io::Read + std::io::Write>(ws: &mut WebSocket<S>) -> Option<CloseFrame> {
    loop {
        match ws.read() {
            Ok(Message::Close(frame)) => {
                // Drive the reply out and wait for the server to end the connection.
                loop {
                    match ws.read() {
                        Err(WsError::ConnectionClosed) | Err(WsError::AlreadyClosed) => break,
                        Err(WsError::Io(_)) | Err(WsError::Protocol(_)) => break,
                        Ok(_) => {}
                        Err(e) => panic!("after close: {e}"),
                    }
                }
                return frame;
            }
            Ok(_) => {}
            Err(e) => panic!("waiting for a close frame: {e}"),
        }
    }
}

#[test]
fn text_messages_flow_both_ways() {
    let h = Harness::start(NetConfig::default(), echo_handler());
    let mut ws = ws_client(h.addr(), "/ws?token=t0k");
    let (id, query, peer) = match h.wait_event("Open", |e| matches!(e, NetEvent::Open { .. })) {
        NetEvent::Open {
            conn, query, peer, ..
        } => (conn, query, peer),
        _ => unreachable!(),
    };
    assert_eq!(query, "token=t0k");
    assert_eq!(peer, ws.get_ref().local_addr().unwrap());

    ws.send(Message::text("hello")).unwrap();
    match h.wait_event("Text", |e| matches!(e, NetEvent::Text { .. })) {
        NetEvent::Text { conn, text } => {
            assert_eq!(conn, id);
            assert_eq!(text.as_str(), "hello");
        }
        _ => unreachable!(),
    }
    assert_eq!(ws.read().unwrap(), Message::text("echo:hello"));

    // A server-initiated send, with the caller holding the id.
    let res = h.run(move |s, r| s.send(r, id, "pushed".into()));
    assert_eq!(res, SendResult::Sent);
    assert_eq!(ws.read().unwrap(), Message::text("pushed"));
    assert!(h.run(move |s, _| s.last_heard(id)).is_some());

    ws.send(Message::binary(vec![1, 2, 3])).unwrap();
    h.wait_event("Binary", |e| matches!(e, NetEvent::Binary { len: 3, .. }));

    ws.close(None).unwrap();
    let (code, _) = closed_event(&h, id);
    assert_eq!(code, None, "a close frame without a code");
    h.wait_until("all sockets gone", |s| s.connection_count() == 0);
    // A dead id is refused, never routed to another connection.
    assert_eq!(
        h.run(move |s, r| s.send(r, id, "late".into())),
        SendResult::Closed
    );
    let st = h.stats();
    assert_eq!((st.upgrades, st.messages_in, st.messages_out), (1, 2, 2));
}

/// `queue` frames a message without writing it; `flush` writes the whole burst. Loopback TCP
/// delivers a `write` into the receiver's buffer before the call returns, so if `queue`
/// wrote, the client would already hold the bytes when the job returns.
#[test]
fn queued_messages_wait_for_the_flush_and_go_out_as_one_burst() {
    let h = Harness::start(NetConfig::default(), echo_handler());
    let mut ws = ws_client(h.addr(), "/ws");
    let id = open_conn(&h);
    let queued = h.run(move |s, r| {
        (0..50)
            .map(|i| s.queue(r, id, format!("m{i}").into()))
            .filter(|res| *res == SendResult::Sent)
            .count()
    });
    assert_eq!(queued, 50);
    ws.get_ref().set_nonblocking(true).unwrap();
    let mut probe = [0u8; 1];
    match ws.get_ref().peek(&mut probe) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("queued messages reached the socket before the flush: {other:?}"),
    }
    ws.get_ref().set_nonblocking(false).unwrap();
    assert_eq!(h.run(move |s, r| s.flush(r, id)), SendResult::Sent);
    for i in 0..50 {
        assert_eq!(ws.read().unwrap(), Message::text(format!("m{i}")));
    }
    assert_eq!(h.stats().messages_out, 50);
}

/// `send_buffer_bytes` sets `SO_SNDBUF` on accepted sockets (a fresh loopback socket starts
/// at the kernel's 16 KiB default and grows only as data flows).
#[test]
fn send_buffer_cap_is_applied_to_accepted_sockets() {
    let h = Harness::start(
        NetConfig {
            send_buffer_bytes: 96 * 1024,
            ..NetConfig::default()
        },
        echo_handler(),
    );
    let _ws = ws_client(h.addr(), "/ws");
    let id = open_conn(&h);
    let size = h
        .run(move |s, _| s.socket_send_buffer(id))
        .expect("an open connection");
    // Linux doubles the value for its bookkeeping; never less than asked (below wmem_max).
    assert!(
        (96 * 1024..=2 * 96 * 1024).contains(&size),
        "SO_SNDBUF {size}"
    );
}

#[test]
fn http_requests_are_routed_to_the_caller() {
    let h = Harness::start(NetConfig::default(), http_handler());
    let resp = http_exchange(
        h.addr(),
        b"GET /status?verbose=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer abc\r\n\r\n",
    );
    assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
    assert!(resp.contains("Content-Length: 11\r\n"), "{resp}");
    assert!(resp.contains("Connection: close\r\n"), "{resp}");
    assert!(resp.ends_with("\r\n\r\n{\"ok\":true}"), "{resp}");
    match h.wait_event("Http", |e| matches!(e, NetEvent::Http { .. })) {
        NetEvent::Http {
            method,
            path,
            query,
            authorization,
            ..
        } => {
            assert_eq!(method, "GET");
            assert_eq!(path, "/status");
            assert_eq!(query, "verbose=1");
            assert_eq!(authorization.as_deref(), Some("Bearer abc"));
        }
        _ => unreachable!(),
    }

    let resp = http_exchange(h.addr(), b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(resp.starts_with("HTTP/1.1 404 Not Found\r\n"), "{resp}");
    assert!(resp.ends_with("not found"), "{resp}");

    // HEAD: same length header, no body.
    let resp = http_exchange(h.addr(), b"HEAD /status HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        resp.contains("Content-Length: 11\r\n") && resp.ends_with("\r\n\r\n"),
        "{resp}"
    );

    // A request followed by pipelined garbage still gets exactly one answer.
    let resp = http_exchange(
        h.addr(),
        b"GET /status HTTP/1.1\r\n\r\n\x00\x01garbage\r\n\r\n",
    );
    assert_eq!(resp.matches("HTTP/1.1").count(), 1, "{resp}");
    h.wait_until("all sockets gone", |s| s.connection_count() == 0);
    assert_eq!(h.stats().http_requests, 4);
}

#[test]
fn bad_requests_and_bad_upgrades_get_400_or_431() {
    let cfg = NetConfig {
        max_http_request_bytes: 1024,
        ..NetConfig::default()
    };
    let h = Harness::start(cfg, http_handler());
    let no_key = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                  Sec-WebSocket-Version: 13\r\n\r\n";
    let resp = http_exchange(h.addr(), no_key.as_bytes());
    assert!(resp.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{resp}");
    assert!(resp.contains("Sec-WebSocket-Key"), "{resp}");

    let v8 = upgrade_request("/ws").replace("Version: 13", "Version: 8");
    let resp = http_exchange(h.addr(), v8.as_bytes());
    assert!(resp.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{resp}");
    assert!(resp.contains("Sec-WebSocket-Version: 13\r\n"), "{resp}");

    // Without "Upgrade: websocket" it is an ordinary request, for the caller to answer.
    let plain = http_exchange(h.addr(), b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(plain.starts_with("HTTP/1.1 404 "), "{plain}");
    let no_conn = "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    let resp = http_exchange(h.addr(), no_conn.as_bytes());
    assert!(resp.starts_with("HTTP/1.1 400 "), "{resp}");

    let garbage = http_exchange(h.addr(), b"\x16\x03\x01\x02\x00garbage\r\n\r\n");
    assert!(garbage.starts_with("HTTP/1.1 400 "), "{garbage}");

    let mut big = b"GET /status HTTP/1.1\r\nX-Pad: ".to_vec();
    big.resize(2048, b'a');
    let resp = http_exchange(h.addr(), &big);
    assert!(resp.starts_with("HTTP/1.1 431 "), "{resp}");

    let st = h.stats();
    assert_eq!(
        (st.handshake_failures, st.upgrades, st.http_requests),
        (5, 0, 1)
    );
    // The loop still serves.
    let _ws = ws_client(h.addr(), "/ws");
}

#[test]
fn head_split_across_segments_and_pipelined_frame() {
    let h = Harness::start(NetConfig::default(), echo_handler());
    let req = upgrade_request("/ws");
    let (a, rest) = req.as_bytes().split_at(10);
    let (b, c) = rest.split_at(40);
    let mut s = tcp(h.addr());
    let mut sent = 0u64;
    for part in [a, b] {
        s.write_all(part).unwrap();
        sent += part.len() as u64;
        // The server has read this much and is waiting for the rest of the head.
        h.wait_until("partial head read", move |srv| srv.stats().bytes_in >= sent);
    }
    // The last piece arrives together with a frame sent before the 101 was seen.
    let mut tail = c.to_vec();
    tail.extend_from_slice(&masked_text_frame(b"early"));
    s.write_all(&tail).unwrap();
    let head = read_head(&mut s);
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    assert!(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    open_conn(&h);
    h.wait_event(
        "Text early",
        |e| matches!(e, NetEvent::Text { text, .. } if text.as_str() == "early"),
    );
    let mut ws = WebSocket::from_raw_socket(s, Role::Client, None);
    assert_eq!(ws.read().unwrap(), Message::text("echo:early"));
}

#[test]
fn oversized_message_closes_with_1009() {
    let cfg = NetConfig {
        max_message_bytes: 1024,
        ..NetConfig::default()
    };
    let h = Harness::start(cfg, echo_handler());
    let mut ws = ws_client(h.addr(), "/ws");
    let id = open_conn(&h);
    ws.send(Message::text("x".repeat(2000))).unwrap();
    let frame = read_close(&mut ws).expect("a close frame");
    assert_eq!(frame.code, CloseCode::Size);
    assert_eq!(closed_event(&h, id).0, Some(1009));
    assert_eq!(h.stats().protocol_errors, 1);
    // After a protocol error the server lingers until the client's EOF (or the deadline).
    drop(ws);
    h.wait_until("socket gone", |s| s.connection_count() == 0);
}

#[test]
fn client_ping_gets_pong_and_server_ping_reaches_client() {
    let h = Harness::start(NetConfig::default(), echo_handler());
    let mut ws = ws_client(h.addr(), "/ws");
    let id = open_conn(&h);
    ws.send(Message::Ping(b"abc".to_vec().into())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Pong(b"abc".to_vec().into()));
    h.run(move |s, r| s.ping(r, id));
    assert!(matches!(ws.read().unwrap(), Message::Ping(_)));
}

#[test]
fn server_close_carries_code_and_reason() {
    let h = Harness::start(NetConfig::default(), echo_handler());
    let mut ws = ws_client(h.addr(), "/ws");
    let id = open_conn(&h);
    h.run(move |s, r| s.close(r, id, 4010, "slow consumer"));
    assert_eq!(
        h.run(move |s, r| s.send(r, id, "x".into())),
        SendResult::Closed
    );
    let frame = read_close(&mut ws).expect("a close frame");
    assert_eq!(u16::from(frame.code), 4010);
    assert_eq!(frame.reason.as_str(), "slow consumer");
    assert_eq!(
        closed_event(&h, id),
        (Some(4010), "slow consumer".to_owned())
    );
    h.wait_until("socket gone", |s| s.connection_count() == 0);
}

#[test]
fn client_close_and_abrupt_disconnect_both_report_closed() {
    let h = Harness::start(NetConfig::default(), echo_handler());
    let mut ws = ws_client(h.addr(), "/ws");
    let id = open_conn(&h);
    ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    }))
    .unwrap();
    assert_eq!(closed_event(&h, id), (Some(1000), "bye".to_owned()));

    let ws2 = ws_client(h.addr(), "/ws");
    let id2 = open_conn(&h);
    ws2.get_ref().shutdown(Shutdown::Both).unwrap();
    assert_eq!(closed_event(&h, id2).0, None);
    h.wait_until("sockets gone", |s| s.connection_count() == 0);
}

#[test]
fn unanswered_handshake_and_close_time_out() {
    let cfg = NetConfig {
        // Long enough for a real handshake on a loaded CI machine, short enough to wait out.
        handshake_timeout_ns: 1_000_000_000,
        close_timeout_ns: 100_000_000,
        ..NetConfig::default()
    };
    let h = Harness::start(cfg, echo_handler());
    // Connects and never sends a request: dropped at the handshake deadline.
    let mut idle = tcp(h.addr());
    assert_eq!(read_to_close(&mut idle), "");
    // A client that never answers our close frame: dropped at the closing deadline.
    let _ws = ws_client(h.addr(), "/ws");
    let id = open_conn(&h);
    h.run(move |s, r| s.close(r, id, 1000, "done"));
    assert_eq!(closed_event(&h, id).0, Some(1000));
    h.wait_until("sockets gone", |s| s.connection_count() == 0);
    let st = h.stats();
    assert_eq!((st.timeouts, st.handshake_failures), (2, 1));
}

#[test]
fn shutdown_closes_every_websocket_with_1001() {
    let h = Harness::start(NetConfig::default(), echo_handler());
    let mut a = ws_client(h.addr(), "/ws");
    let mut b = ws_client(h.addr(), "/ws");
    open_conn(&h);
    open_conn(&h);
    h.run(|s, r| s.shutdown(r));
    for ws in [&mut a, &mut b] {
        assert_eq!(read_close(ws).expect("close frame").code, CloseCode::Away);
    }
    h.wait_until("sockets gone", |s| s.connection_count() == 0);
    assert_eq!(h.stats().accepted, 2);
}

#[test]
fn echo_endpoint_echoes_text_and_binary_silently() {
    let cfg = NetConfig {
        echo_path: Some("/echo".into()),
        ..NetConfig::default()
    };
    let h = Harness::start(cfg, http_handler());
    let mut ws = ws_client(h.addr(), "/echo");
    ws.send(Message::text("héllo")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("héllo"));
    let big = vec![7u8; 300_000];
    ws.send(Message::binary(big.clone())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::binary(big));
    ws.close(None).unwrap();
    assert!(read_close(&mut ws).is_none());
    h.wait_until("socket gone", |s| s.connection_count() == 0);
    // The caller saw none of it.
    let st = h.stats();
    assert_eq!((st.upgrades, st.messages_in, st.messages_out), (1, 2, 2));
}

#[test]
fn prefix_paths_upgrade_and_abort_drops_without_a_close_frame() {
    let cfg = NetConfig {
        ws_path: "/stream".into(),
        ws_path_prefix: Some("/ws/".into()),
        ..NetConfig::default()
    };
    let h = Harness::start(cfg, echo_handler());
    let mut ws = ws_client(h.addr(), "/ws/btcusdt@trade");
    let id = match h.wait_event("Open", |e| matches!(e, NetEvent::Open { .. })) {
        NetEvent::Open { conn, path, .. } => {
            assert_eq!(path, "/ws/btcusdt@trade");
            conn
        }
        _ => unreachable!(),
    };
    // Outside the prefix an upgrade request is plain HTTP for the caller.
    let resp = http_exchange(h.addr(), upgrade_request("/wsx").as_bytes());
    assert!(resp.starts_with("HTTP/1.1 404"), "{resp}");

    h.run(move |s, r| s.abort(r, id));
    assert_eq!(closed_event(&h, id), (None, "aborted".to_owned()));
    match ws.read() {
        Err(WsError::Protocol(_)) | Err(WsError::Io(_)) => {}
        other => panic!("expected an abrupt end, got {other:?}"),
    }
    h.wait_until("sockets gone", |s| s.connection_count() == 0);
}

#[test]
fn extra_response_headers_are_sanitised() {
    let handler: Handler = Box::new(|s, r, ev| {
        if let NetEvent::Http { conn, .. } = ev {
            s.respond_http_with(
                r,
                *conn,
                503,
                "application/json",
                &[("Retry-After", "1"), ("X-Evil", "a\r\nSet-Cookie: x")],
                b"{}",
            );
        }
    });
    let h = Harness::start(NetConfig::default(), handler);
    let resp = http_exchange(h.addr(), b"GET /depth HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        resp.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{resp}"
    );
    assert!(resp.contains("\r\nRetry-After: 1\r\n"), "{resp}");
    assert!(resp.contains("\r\nX-Evil: aSet-Cookie: x\r\n"), "{resp}");
    assert!(resp.ends_with("\r\n\r\n{}"), "{resp}");
}

/// The opening of a masked binary frame announcing `len` payload bytes (64-bit length form),
/// followed by `sent` of them: a message the client starts and never finishes.
fn unfinished_frame(len: u64, sent: usize) -> Vec<u8> {
    let mask = [0x0a, 0x0b, 0x0c, 0x0d];
    let mut f = vec![0x82, 0x80 | 127];
    f.extend_from_slice(&len.to_be_bytes());
    f.extend_from_slice(&mask);
    f.extend((0..sent).map(|i| 0x55 ^ mask[i % 4]));
    f
}

/// A raw WebSocket on the client endpoint (handshake done by hand, nothing else read).
fn raw_ws(addr: std::net::SocketAddr) -> std::net::TcpStream {
    let mut s = tcp(addr);
    s.write_all(upgrade_request("/ws").as_bytes()).unwrap();
    assert!(read_head(&mut s).starts_with("HTTP/1.1 101"));
    s
}

/// Many slow senders each holding a large unfinished message cannot pin memory without bound:
/// the connection that takes the total over `max_partial_bytes` is closed with 1008, the
/// others keep theirs, and a closed connection gives its share back.
#[test]
fn unfinished_messages_share_a_global_budget() {
    const KIB: usize = 1024;
    let h = Harness::start(
        NetConfig {
            max_message_bytes: 128 * KIB,
            max_partial_bytes: 200 * KIB,
            ..NetConfig::default()
        },
        echo_handler(),
    );
    let mut held = Vec::new();
    for i in 0..2 {
        let mut s = raw_ws(h.addr());
        s.write_all(&unfinished_frame(100 * KIB as u64, 80 * KIB))
            .unwrap();
        let want = (i + 1) * 80 * KIB;
        h.wait_until("the partial bytes to be counted", move |srv| {
            srv.stats().partial_bytes >= want
        });
        held.push(s);
    }
    // The third takes the total over 200 KiB: it is the one closed, with 1008.
    let mut third = raw_ws(h.addr());
    third
        .write_all(&unfinished_frame(100 * KIB as u64, 80 * KIB))
        .unwrap();
    let mut close = [0u8; 4];
    third.read_exact(&mut close).unwrap();
    assert_eq!(close[0], 0x88, "a close frame");
    assert_eq!(u16::from_be_bytes([close[2], close[3]]), 1008);
    h.wait_until("the refusal to be counted", |srv| {
        srv.stats().partial_budget_closed == 1
    });
    let s = h.stats();
    assert!(s.partial_bytes <= 200 * KIB, "{}", s.partial_bytes);
    // The two within the budget are still open: finishing their message works.
    // Closing one gives its share back, so a newcomer fits again.
    drop(held.pop());
    h.wait_until("the closed connection's share to go", move |srv| {
        srv.stats().partial_bytes <= 80 * KIB + 4 * KIB
    });
    let mut fourth = raw_ws(h.addr());
    fourth
        .write_all(&unfinished_frame(100 * KIB as u64, 80 * KIB))
        .unwrap();
    h.wait_until("the newcomer's partial bytes", |srv| {
        srv.stats().partial_bytes >= 160 * KIB
    });
    assert_eq!(h.stats().partial_budget_closed, 1);
}

/// A handler that detaches every request on `/detach` and answers it itself through the
/// detached socket, saying whether the request was a valid upgrade and whether a second
/// detach found anything.
fn detach_handler() -> Handler {
    Box::new(|server, registry, ev| {
        let NetEvent::Http {
            conn,
            path,
            ws_accept,
            ..
        } = ev
        else {
            return;
        };
        if path != "/detach" {
            server.respond_http(registry, *conn, 404, "text/plain", b"not found");
            return;
        }
        let mut sock = server.detach(registry, *conn).expect("detachable");
        let again = server.detach(registry, *conn).is_some();
        let body = format!("accept={ws_accept:?} again={again}");
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        sock.write_all(resp.as_bytes()).unwrap();
    })
}

#[test]
fn a_connection_awaiting_its_answer_can_be_detached() {
    let h = Harness::start(NetConfig::default(), detach_handler());
    let resp = http_exchange(h.addr(), b"GET /detach HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(resp.ends_with("accept=None again=false"), "{resp}");
    // A valid upgrade on a path the server does not upgrade itself carries its accept key
    // (RFC 6455's example).
    let resp = http_exchange(
        h.addr(),
        b"GET /detach HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    assert!(
        resp.ends_with("accept=Some(\"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\") again=false"),
        "{resp}"
    );
    // The server forgot them: no socket counted, no Closed event owed.
    h.wait_until("detached sockets are not counted", |s| {
        s.connection_count() == 0
    });
    assert_eq!(h.stats().http_requests, 2);
}
