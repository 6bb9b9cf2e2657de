//! Test harness for `tape_node::net`: runs a `NetServer` loop on a background thread (the
//! server itself is single-threaded; only the tests use threads) and gives the test thread
//! bounded waits on what the server saw.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Registry, Token, Waker};
use tape_node::net::{NetConfig, NetEvent, NetServer, NetStats};
use tungstenite::protocol::WebSocket;

/// Every wait in these tests gives up after this long.
pub const WAIT: Duration = Duration::from_secs(10);

const WAKER: Token = Token(0);
const FIRST_TOKEN: usize = 1;

type Job = Box<dyn FnOnce(&mut NetServer, &Registry) + Send>;
type Watch = (Box<dyn Fn(&NetServer) -> bool + Send>, Sender<()>);
/// Runs on the server thread for every event, before the test sees it.
pub type Handler = Box<dyn FnMut(&mut NetServer, &Registry, &NetEvent) + Send>;

/// A running server loop.
pub struct Harness {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    jobs: Sender<Job>,
    watches: Sender<Watch>,
    events: Receiver<NetEvent>,
    thread: Option<JoinHandle<()>>,
}

/// The default handler: `/status` answers 200 JSON, any other HTTP request 404.
pub fn http_handler() -> Handler {
    Box::new(|server, registry, ev| {
        if let NetEvent::Http { conn, path, .. } = ev {
            if path == "/status" {
                server.respond_http(registry, *conn, 200, "application/json", b"{\"ok\":true}");
            } else {
                server.respond_http(registry, *conn, 404, "text/plain", b"not found");
            }
        }
    })
}

/// [`http_handler`] plus: every client text message is sent back prefixed with `echo:`.
pub fn echo_handler() -> Handler {
    let mut http = http_handler();
    Box::new(move |server, registry, ev| {
        if let NetEvent::Text { conn, text } = ev {
            server.send(registry, *conn, format!("echo:{}", text.as_str()).into());
        }
        http(server, registry, ev);
    })
}

impl Harness {
    /// Binds on 127.0.0.1:0 and starts the loop.
    pub fn start(cfg: NetConfig, mut handler: Handler) -> Harness {
        let mut poll = Poll::new().expect("poll");
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).expect("waker"));
        let mut server = NetServer::bind(
            "127.0.0.1:0".parse().unwrap(),
            cfg,
            poll.registry(),
            FIRST_TOKEN,
        )
        .expect("bind");
        let addr = server.local_addr();
        let stop = Arc::new(AtomicBool::new(false));
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let (ev_tx, ev_rx) = mpsc::channel();
        let (watch_tx, watch_rx) = mpsc::channel::<Watch>();
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            let mut events = Events::with_capacity(256);
            let mut out = Vec::new();
            let mut watching: Vec<Watch> = Vec::new();
            while !stop2.load(Ordering::Relaxed) {
                poll.poll(&mut events, Some(Duration::from_millis(20)))
                    .expect("poll");
                let now = start.elapsed().as_nanos() as u64;
                for event in events.iter() {
                    if server.owns(event.token()) {
                        server.handle_event(poll.registry(), event, now, &mut out);
                    }
                }
                while let Ok(job) = job_rx.try_recv() {
                    job(&mut server, poll.registry());
                }
                server.tick(poll.registry(), now, &mut out);
                for ev in out.drain(..) {
                    handler(&mut server, poll.registry(), &ev);
                    let _ = ev_tx.send(ev);
                }
                watching.extend(watch_rx.try_iter());
                watching.retain(|(cond, done)| !(cond(&server) && done.send(()).is_ok()));
            }
        });
        Harness {
            addr,
            stop,
            waker,
            jobs: job_tx,
            watches: watch_tx,
            events: ev_rx,
            thread: Some(thread),
        }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Runs `f` on the server thread and returns its result.
    pub fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut NetServer, &Registry) -> R + Send + 'static,
    ) -> R {
        let (tx, rx) = mpsc::channel();
        self.jobs
            .send(Box::new(move |s, r| {
                let _ = tx.send(f(s, r));
            }))
            .expect("server thread gone");
        self.waker.wake().expect("wake");
        rx.recv_timeout(WAIT).expect("server thread did not answer")
    }

    /// The server's counters now.
    pub fn stats(&self) -> NetStats {
        self.run(|s, _| s.stats().clone())
    }

    /// Waits (bounded) for the first event matching `pred`, skipping others.
    pub fn wait_event(&self, what: &str, mut pred: impl FnMut(&NetEvent) -> bool) -> NetEvent {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(ev) if pred(&ev) => return ev,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!("timed out waiting for {what}"),
                Err(RecvTimeoutError::Disconnected) => panic!("server thread gone"),
            }
        }
    }

    /// Waits (bounded) until `cond` holds on the server thread (checked once per loop turn).
    pub fn wait_until(&self, what: &str, cond: impl Fn(&NetServer) -> bool + Send + 'static) {
        let (tx, rx) = mpsc::channel();
        self.watches
            .send((Box::new(cond), tx))
            .expect("server thread gone");
        self.waker.wake().expect("wake");
        if rx.recv_timeout(WAIT).is_err() {
            panic!("timed out waiting for {what}");
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A blocking TCP client with bounded reads.
pub fn tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_write_timeout(Some(WAIT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Sends a raw request and reads the whole response (the server closes after it).
pub fn http_exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = tcp(addr);
    s.write_all(request).unwrap();
    read_to_close(&mut s)
}

/// Reads until EOF (or a reset after some bytes), bounded by the read timeout.
pub fn read_to_close(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("reading the response: {e} (got {buf:?})"),
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// A connected tungstenite client on `path` (e.g. `/ws`).
pub fn ws_client(addr: SocketAddr, path: &str) -> WebSocket<TcpStream> {
    let (ws, resp) =
        tungstenite::client(format!("ws://{addr}{path}"), tcp(addr)).expect("ws handshake");
    assert_eq!(resp.status(), 101);
    ws
}

/// A masked client text frame (RFC 6455 5.2), for hand-written exchanges.
pub fn masked_text_frame(payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut f = vec![0x81, 0x80 | payload.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// A valid upgrade request head for `path`.
pub fn upgrade_request(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// Reads a response head byte by byte (so nothing after it is consumed).
pub fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut b).expect("reading a response head");
        assert_eq!(n, 1, "EOF inside a response head: {head:?}");
        head.push(b[0]);
    }
    String::from_utf8(head).unwrap()
}
