//! `tape_node::net` under load: a client that stops reading, many concurrent clients, the
//! socket cap.

mod net_support;

use std::io::Read;

use net_support::*;
use tape_node::net::{NetConfig, NetEvent, SendResult, SocketId};
use tungstenite::Message;

fn open_conn(h: &Harness) -> SocketId {
    match h.wait_event("Open", |e| matches!(e, NetEvent::Open { .. })) {
        NetEvent::Open { conn, .. } => conn,
        _ => unreachable!(),
    }
}

#[test]
fn stalled_reader_is_refused_and_others_are_still_served() {
    let cfg = NetConfig {
        write_buffer_limit: 256 * 1024,
        // The drained client never answers our close frame: don't wait long for it.
        close_timeout_ns: 200_000_000,
        ..NetConfig::default()
    };
    let h = Harness::start(cfg, echo_handler());
    let stalled = ws_client(h.addr(), "/ws");
    let id = open_conn(&h);
    // Fill the kernel buffers and then ours: bounded memory means Refused, never growth.
    let (results, pending) = h.run(move |s, r| {
        let msg: tungstenite::Utf8Bytes = "x".repeat(16 * 1024).into();
        let mut results = Vec::new();
        for _ in 0..100_000 {
            let res = s.send(r, id, msg.clone());
            results.push(res);
            if res == SendResult::Refused {
                break;
            }
        }
        (results, s.write_pending(id))
    });
    assert_eq!(
        results.last(),
        Some(&SendResult::Refused),
        "{} sends",
        results.len()
    );
    assert!(results.contains(&SendResult::Buffered));
    assert!(pending);
    assert_eq!(h.stats().send_refused, 1);

    // Another client is served normally meanwhile.
    let mut other = ws_client(h.addr(), "/ws");
    other.send(Message::text("ping")).unwrap();
    assert_eq!(other.read().unwrap(), Message::text("echo:ping"));

    // The stalled client drains: the server reports Writable.
    let drain = std::thread::spawn(move || {
        let mut s = stalled.get_ref().try_clone().unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0usize;
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n;
        }
        total
    });
    h.wait_event(
        "Writable",
        |e| matches!(e, NetEvent::Writable { conn } if *conn == id),
    );
    assert!(!h.run(move |s, _| s.write_pending(id)));
    h.run(move |s, r| s.close(r, id, 1000, "bye"));
    let total = drain.join().unwrap();
    let sent = results
        .iter()
        .filter(|r| **r != SendResult::Refused)
        .count();
    assert!(
        total >= sent * 16 * 1024,
        "{total} bytes for {sent} messages"
    );
}

#[test]
fn two_hundred_clients_each_get_their_message() {
    const N: usize = 200;
    let h = Harness::start(NetConfig::default(), echo_handler());
    let mut clients: Vec<_> = (0..N).map(|_| ws_client(h.addr(), "/ws")).collect();
    let mut ids = Vec::with_capacity(N);
    for _ in 0..N {
        ids.push(open_conn(&h));
    }
    // Map each client to its id: the client's local address is the server's peer address.
    let ids_for_server = ids.clone();
    let results = h.run(move |s, r| {
        ids_for_server
            .iter()
            .map(|id| s.send(r, *id, format!("to:{}", id.0).into()))
            .collect::<Vec<_>>()
    });
    assert!(
        results.iter().all(|r| *r == SendResult::Sent),
        "{results:?}"
    );
    let mut got: Vec<String> = clients
        .iter_mut()
        .map(|c| match c.read().unwrap() {
            Message::Text(t) => t.as_str().to_owned(),
            other => panic!("{other:?}"),
        })
        .collect();
    let mut want: Vec<String> = ids.iter().map(|id| format!("to:{}", id.0)).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(h.run(|s, _| s.connection_count()), N);
    assert_eq!(h.stats().upgrades, N as u64);
}

#[test]
fn sockets_over_the_cap_are_dropped_and_counted() {
    let cfg = NetConfig {
        max_sockets: 2,
        ..NetConfig::default()
    };
    let h = Harness::start(cfg, echo_handler());
    let _a = ws_client(h.addr(), "/ws");
    let _b = ws_client(h.addr(), "/ws");
    let mut c = tcp(h.addr());
    assert_eq!(read_to_close(&mut c), "");
    let st = h.stats();
    assert_eq!((st.accepted, st.rejected_over_cap, st.upgrades), (3, 1, 2));
    assert_eq!(h.run(|s, _| s.connection_count()), 2);
}
