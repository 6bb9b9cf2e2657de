//! Fan-out cost per delivered frame: one trade published to N subscribers.
//!
//! * `fanout/hub/N`: the sans-IO protocol hub alone: the event is serialized once and its
//!   bytes handed to each of N subscribers' outboxes, then taken out again (`poll_transmit`).
//! * `fanout/socket/N`: the same plus the real transport: every message framed and written
//!   to N loopback WebSocket connections (`write` syscalls included), drained by a client
//!   thread on the other core. This is the server CPU per delivered frame.
//!
//! * `fanout/history/{on,off}`: one trade published to one subscriber with the stream's
//!   `resume` history kept (the default budgets; the ring at its steady size) or turned off:
//!   the difference is what keeping history costs per published message.
//!
//! Throughput is counted in delivered frames, so criterion's time per element is the cost per
//! delivered frame.

use std::hint::black_box;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mio::{Events, Poll};
use tape_core::engine::{Engine, EngineConfig};
use tape_core::fixed::{Price, Qty};
use tape_core::input::Nanos;
use tape_core::instrument::{InstrumentId, Market};
use tape_core::msg::Trade;
use tape_core::output::{Event, Output};
use tape_core::server::{ConnId, HistoryBudget, HistoryConfig, Hub, HubConfig};
use tape_node::net::{NetConfig, NetEvent, NetServer, SendResult};
use tungstenite::{Message, WebSocket};

const SUBSCRIBE: &str = r#"{"type":"subscribe","channels":["trades"],"symbols":["usdm:BTCUSDT"]}"#;

fn engine() -> Engine {
    Engine::new(EngineConfig {
        instruments: vec![(Market::UsdM, "BTCUSDT".into(), 2, 3)],
        ..EngineConfig::default()
    })
    .expect("engine")
}

fn trade(i: u64) -> Output {
    Output {
        recv: Nanos(1_723_161_256_000_000_000 + i),
        event: Event::Trade(Trade {
            instrument: InstrumentId(0),
            event_time_ms: 1_723_161_256_322,
            trade_time_ms: 1_723_161_256_322,
            trade_id: 5_266_583_935 + i,
            price: Price(6_180_030 + (i % 7) as i64),
            qty: Qty(6),
            buyer_is_maker: i.is_multiple_of(2),
            buyer_order_id: None,
            seller_order_id: None,
            is_market: true,
        }),
    }
}

/// A hub with `conns` subscribed to BTCUSDT trades, their replies drained.
fn hub_with(conns: impl IntoIterator<Item = ConnId>, engine: &Engine) -> Hub {
    let conns: Vec<ConnId> = conns.into_iter().collect();
    let mut hub = Hub::new(HubConfig {
        max_connections: conns.len() + 1,
        outbound_queue: 1024,
        ..HubConfig::default()
    });
    for &c in &conns {
        assert!(hub.handle_open(Nanos(1), c, ""));
        hub.handle_text(Nanos(1), c, SUBSCRIBE, engine);
        while hub.poll_transmit(Nanos(1), c, engine).is_some() {}
    }
    hub
}

fn hub_only(c: &mut Criterion) {
    let engine = engine();
    let mut g = c.benchmark_group("fanout/hub");
    for n in [100usize, 1000] {
        let mut hub = hub_with((0..n).map(ConnId), &engine);
        let mut i = 0;
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                i += 1;
                hub.handle_output(&trade(i), &engine);
                while let Some(conn) = hub.poll_ready() {
                    while let Some(m) = hub.poll_transmit(Nanos(2), conn, &engine) {
                        black_box(m);
                    }
                }
            })
        });
    }
    g.finish();
}

fn history(c: &mut Criterion) {
    let engine = engine();
    let mut g = c.benchmark_group("fanout/history");
    g.throughput(Throughput::Elements(1));
    let off = HistoryBudget::new(0, 0);
    for (name, history) in [
        ("on", HistoryConfig::default()),
        (
            "off",
            HistoryConfig {
                trades: off,
                bbo: off,
                ticker: off,
                book: off,
                private: off,
            },
        ),
    ] {
        let mut hub = Hub::new(HubConfig {
            outbound_queue: 1024,
            history,
            ..HubConfig::default()
        });
        assert!(hub.handle_open(Nanos(1), ConnId(0), ""));
        hub.handle_text(Nanos(1), ConnId(0), SUBSCRIBE, &engine);
        let mut i = 0;
        let mut publish = |hub: &mut Hub| {
            i += 1;
            hub.handle_output(&trade(i), &engine);
            while let Some(conn) = hub.poll_ready() {
                while let Some(m) = hub.poll_transmit(Nanos(2), conn, &engine) {
                    black_box(m);
                }
            }
        };
        // Fill the ring to its steady size first: no allocation per message after that.
        for _ in 0..10_000 {
            publish(&mut hub);
        }
        g.bench_function(name, |b| b.iter(|| publish(&mut hub)));
    }
    g.finish();
}

/// N real loopback clients, drained by one thread; returns the stop flag and its handle.
fn clients(
    n: usize,
    net: &mut NetServer,
    poll: &mut Poll,
) -> (Arc<AtomicBool>, std::thread::JoinHandle<u64>, Vec<ConnId>) {
    let addr = net.local_addr();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let socks: Vec<WebSocket<TcpStream>> = (0..n)
            .map(|_| {
                let s = TcpStream::connect(addr).expect("connect");
                let (ws, _) = tungstenite::client(format!("ws://{addr}/ws"), s).expect("handshake");
                ws
            })
            .collect();
        tx.send(socks).ok();
    });
    let mut events = Events::with_capacity(1024);
    let mut out = Vec::new();
    let mut open = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let socks = loop {
        assert!(Instant::now() < deadline, "clients did not connect");
        poll.poll(&mut events, Some(Duration::from_millis(5)))
            .expect("poll");
        for ev in events.iter() {
            net.handle_event(poll.registry(), ev, 0, &mut out);
        }
        for e in out.drain(..) {
            if let NetEvent::Open { conn, .. } = e {
                open.push(ConnId(conn.0));
            }
        }
        if open.len() == n {
            if let Ok(s) = rx.try_recv() {
                break s;
            }
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let reader = std::thread::spawn(move || {
        let mut socks = socks;
        for ws in &socks {
            ws.get_ref().set_nonblocking(true).expect("nonblocking");
        }
        let mut got = 0u64;
        while !stop2.load(Ordering::Relaxed) {
            for ws in &mut socks {
                while let Ok(m) = ws.read() {
                    if matches!(m, Message::Text(_)) {
                        got += 1;
                    }
                }
            }
        }
        got
    });
    (stop, reader, open)
}

/// As the engine loop does: move the hub's messages to the socket until either runs dry.
fn transmit(hub: &mut Hub, net: &mut NetServer, poll: &Poll, engine: &Engine, conn: ConnId) {
    let nc = tape_node::net::SocketId(conn.0);
    while !net.write_pending(nc) {
        let Some(m) = hub.poll_transmit(Nanos(2), conn, engine) else {
            break;
        };
        if net.send(poll.registry(), nc, m) != SendResult::Sent {
            break;
        }
    }
}

fn socket(c: &mut Criterion) {
    let engine = engine();
    let mut g = c.benchmark_group("fanout/socket");
    g.measurement_time(Duration::from_secs(4));
    for n in [100usize, 1000] {
        let mut poll = Poll::new().expect("poll");
        let mut net = NetServer::bind(
            "127.0.0.1:0".parse().expect("addr"),
            NetConfig {
                max_sockets: n + 8,
                ..NetConfig::default()
            },
            poll.registry(),
            0,
        )
        .expect("bind");
        let (stop, reader, conns) = clients(n, &mut net, &mut poll);
        // The real connections subscribe in the hub directly (hub ids = transport ids).
        let mut hub = hub_with(conns, &engine);
        let mut events = Events::with_capacity(1024);
        let mut out = Vec::new();
        let mut i = 0;
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                i += 1;
                hub.handle_output(&trade(i), &engine);
                while let Some(conn) = hub.poll_ready() {
                    transmit(&mut hub, &mut net, &poll, &engine, conn);
                }
                poll.poll(&mut events, Some(Duration::ZERO)).expect("poll");
                for ev in events.iter() {
                    net.handle_event(poll.registry(), ev, 0, &mut out);
                }
                for e in out.drain(..) {
                    if let NetEvent::Writable { conn } = e {
                        transmit(&mut hub, &mut net, &poll, &engine, ConnId(conn.0));
                    }
                }
            })
        });
        stop.store(true, Ordering::Relaxed);
        let _ = reader.join();
    }
    g.finish();
}

criterion_group!(benches, hub_only, history, socket);
criterion_main!(benches);
