//! The handshake limits of `NetServer` over real loopback sockets: the bounded handshake pool
//! evicts its oldest, the per-address limit closes the newcomer, and an idle socket is dropped
//! at the first-byte deadline while one that spoke keeps the full handshake time.

mod net_support;

use std::io::Write;

use net_support::{http_handler, read_to_close, tcp, Harness};
use tape_node::net::{NetConfig, NS_PER_SEC};

const STATUS: &[u8] = b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n";

fn accepted(h: &Harness, n: u64) {
    h.wait_until("accept", move |s| s.stats().accepted == n);
}

#[test]
fn a_full_handshake_pool_evicts_its_oldest_and_serves_the_newcomer() {
    let cfg = NetConfig {
        max_handshaking: 2,
        max_handshaking_per_ip: 0,
        ..NetConfig::default()
    };
    let h = Harness::start(cfg, http_handler());
    let mut oldest = tcp(h.addr());
    accepted(&h, 1);
    let mut second = tcp(h.addr());
    accepted(&h, 2);
    let mut newcomer = tcp(h.addr());
    // The oldest is closed without a word; the others are still there.
    assert_eq!(read_to_close(&mut oldest), "");
    newcomer.write_all(STATUS).unwrap();
    assert!(read_to_close(&mut newcomer).starts_with("HTTP/1.1 200"));
    second.write_all(STATUS).unwrap();
    assert!(read_to_close(&mut second).starts_with("HTTP/1.1 200"));
    assert_eq!(h.stats().handshakes_evicted, 1);
}

#[test]
fn one_address_over_its_handshake_limit_is_closed_at_once() {
    let cfg = NetConfig {
        max_handshaking_per_ip: 2,
        ..NetConfig::default()
    };
    let h = Harness::start(cfg, http_handler());
    let mut a = tcp(h.addr());
    let _b = tcp(h.addr());
    accepted(&h, 2);
    let mut c = tcp(h.addr());
    assert_eq!(read_to_close(&mut c), "");
    let st = h.stats();
    assert_eq!((st.accepted, st.rejected_per_ip), (3, 1));
    // The ones within the limit are served.
    a.write_all(STATUS).unwrap();
    assert!(read_to_close(&mut a).starts_with("HTTP/1.1 200"));
    // A finished handshake frees its place: the address may open another.
    let mut d = tcp(h.addr());
    d.write_all(STATUS).unwrap();
    assert!(read_to_close(&mut d).starts_with("HTTP/1.1 200"));
}

#[test]
fn loopback_can_be_exempt_from_the_per_address_limit() {
    let cfg = NetConfig {
        max_handshaking_per_ip: 1,
        per_ip_exempt_loopback: true,
        ..NetConfig::default()
    };
    let h = Harness::start(cfg, http_handler());
    let _a = tcp(h.addr());
    accepted(&h, 1);
    let mut b = tcp(h.addr());
    b.write_all(STATUS).unwrap();
    assert!(read_to_close(&mut b).starts_with("HTTP/1.1 200"));
    assert_eq!(h.stats().rejected_per_ip, 0);
}

#[test]
fn an_idle_socket_is_dropped_at_the_first_byte_deadline_but_a_talking_one_is_not() {
    let cfg = NetConfig {
        first_byte_timeout_ns: NS_PER_SEC / 5,
        handshake_timeout_ns: 10 * NS_PER_SEC,
        ..NetConfig::default()
    };
    let h = Harness::start(cfg, http_handler());
    let mut talking = tcp(h.addr());
    talking.write_all(&STATUS[..1]).unwrap();
    let mut idle = tcp(h.addr());
    // Bounded by the read timeout (10 s), far beyond the 200 ms deadline.
    assert_eq!(read_to_close(&mut idle), "");
    let st = h.stats();
    assert_eq!((st.first_byte_timeouts, st.timeouts), (1, 1));
    // Past the first-byte deadline, the one that spoke still has its handshake time.
    talking.write_all(&STATUS[1..]).unwrap();
    assert!(read_to_close(&mut talking).starts_with("HTTP/1.1 200"));
}
