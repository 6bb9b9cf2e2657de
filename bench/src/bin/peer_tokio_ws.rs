//! A peer for the latency lab: the minimal WebSocket broadcast server a user would write with
//! tokio and tokio-tungstenite, fed by the same recorded session as tape.
//!
//!     peer_tokio_ws --listen 127.0.0.1:PORT --journal DIR [--speed N] [--seconds S] [--capacity C]
//!
//! It replays the `ws_frame` records (kind 2) of a tape journal at the recorded pace × N
//! (N = 0: as fast as possible), stamps each frame with `recv_ns` (wall clock, ns since the
//! Unix epoch, read when the frame is taken in, after waiting until it is due) and broadcasts
//!
//!     {"type":"update","channel":"raw","seq":N,"recv_ns":T,"data":<the frame bytes verbatim>}
//!
//! to every connected client through one `tokio::sync::broadcast` channel: the envelope is
//! built once and shared by all receivers. Each client has its own task that writes every
//! message it has been sent so far into the socket's buffer and flushes once (one `write` per
//! burst, as tape does). A receiver that falls more than `--capacity` messages behind loses
//! the oldest ones; those are counted as lagged drops, this peer's equivalent of tape's
//! conflation. Anything a client sends (a `subscribe`, say) is read and ignored.
//!
//! **This peer does much less than tape per input**: it does not decode the frame, keeps no
//! book, derives no BBO or statistics, has no per-channel subscriptions and journals nothing;
//! it only wraps the venue's bytes and forwards them. It is the baseline of "just
//! forward it", not an equivalent of tape. Everything runs on one `current_thread` runtime,
//! like tape's single engine thread; tokio's timer has millisecond resolution, so at the
//! recorded pace frames due within the same millisecond go out together.
//!
//! The first line on stdout is `peer serving ws://ADDR/ws` (with the bound address, so
//! `--listen 127.0.0.1:0` works). After S seconds (default 10) it prints one JSON line and
//! exits 0: `broadcast` (messages sent into the channel), `delivered` (messages flushed to
//! client sockets), `lagged` (messages dropped for slow receivers), `clients`, `skipped`
//! (ws_frame records that are not UTF-8, not sent), `cpu_ns` (the process's utime + stime
//! from `/proc/self/stat`) and `cpu_ns_per_delivered`. Bad arguments or an unreadable
//! journal exit 2 or 1 with a one-line message on stderr.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tape_engine::input::RecordKind;
use tape_engine::node::WallClock;
use tape_journal::JournalReader;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

const USAGE: &str =
    "usage: peer_tokio_ws --listen ADDR --journal DIR [--speed N] [--seconds S] [--capacity C]";

/// Command-line settings.
#[derive(Debug)]
struct Args {
    listen: SocketAddr,
    journal: PathBuf,
    speed: u32,
    seconds: u64,
    capacity: usize,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut listen, mut journal) = (None, None);
    let (mut speed, mut seconds, mut capacity) = (1u32, 10u64, 1024usize);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let bad = |v: &str| format!("{flag}: invalid value {v:?}");
        match flag.as_str() {
            "--listen" => {
                let v = value()?;
                listen = Some(v.parse::<SocketAddr>().map_err(|_| bad(&v))?);
            }
            "--journal" => journal = Some(PathBuf::from(value()?)),
            "--speed" => {
                let v = value()?;
                speed = v.parse().map_err(|_| bad(&v))?;
            }
            "--seconds" => {
                let v = value()?;
                seconds = v.parse().map_err(|_| bad(&v))?;
            }
            "--capacity" => {
                let v = value()?;
                capacity = v
                    .parse()
                    .ok()
                    .filter(|c| (1..=1 << 24).contains(c))
                    .ok_or_else(|| bad(&v))?;
            }
            _ => return Err(format!("unknown argument {flag:?}")),
        }
    }
    Ok(Args {
        listen: listen.ok_or("--listen is required")?,
        journal: journal.ok_or("--journal is required")?,
        speed,
        seconds,
        capacity,
    })
}

/// Counters shared by the replay and the client tasks.
#[derive(Debug, Default)]
struct Counters {
    broadcast: AtomicU64,
    delivered: AtomicU64,
    lagged: AtomicU64,
    clients: AtomicU64,
    skipped: AtomicU64,
}

/// The process's user + system CPU time in ns, from `/proc/self/stat` (fields 14 and 15, in
/// clock ticks of `USER_HZ`, which Linux fixes at 100 for `/proc`).
fn process_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11); // field 3 is the first after ')'
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) * (1_000_000_000 / 100))
}

/// Replays the journal's ws_frame records into the channel, paced, until it ends.
async fn replay(
    mut reader: JournalReader,
    speed: u32,
    tx: broadcast::Sender<Utf8Bytes>,
    counters: Arc<Counters>,
) -> Result<(), String> {
    let clock = WallClock::default();
    let ws_frame = RecordKind::WsFrame as u16;
    let mut epoch: Option<(Instant, u64)> = None;
    let mut seq = 0u64;
    let mut frame = String::with_capacity(1 << 12);
    loop {
        // Copy what is needed out of the mapped record before any await.
        let recorded = match reader.next() {
            None => return Ok(()),
            Some(Err(e)) => return Err(format!("damaged journal: {e}")),
            Some(Ok(r)) if r.kind != ws_frame => continue,
            Some(Ok(r)) => match std::str::from_utf8(r.payload) {
                Ok(text) => {
                    frame.clear();
                    frame.push_str(text);
                    r.recv_ns
                }
                Err(_) => {
                    counters.skipped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            },
        };
        let (start, first) = *epoch.get_or_insert((Instant::now(), recorded));
        let due = (speed > 0).then(|| {
            start + Duration::from_nanos(recorded.saturating_sub(first) / u64::from(speed))
        });
        match due {
            Some(due) if due > Instant::now() => tokio::time::sleep_until(due).await,
            // Let the client tasks run between frames even when nothing has to wait.
            _ => tokio::task::yield_now().await,
        }
        let recv_ns = clock.now();
        seq += 1;
        let mut msg = String::with_capacity(frame.len() + 96);
        // Writing into a String cannot fail.
        let _ = write!(
            msg,
            r#"{{"type":"update","channel":"raw","seq":{seq},"recv_ns":{recv_ns},"data":{frame}}}"#
        );
        counters.broadcast.fetch_add(1, Ordering::Relaxed);
        // No receiver is not an error: the message is simply not delivered to anyone.
        let _ = tx.send(Utf8Bytes::from(msg));
    }
}

/// One client: the handshake, then every broadcast message until the socket fails.
async fn serve_client(
    stream: TcpStream,
    mut rx: broadcast::Receiver<Utf8Bytes>,
    counters: Arc<Counters>,
) {
    stream.set_nodelay(true).ok();
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    counters.clients.fetch_add(1, Ordering::Relaxed);
    let (mut sink, mut source) = ws.split();
    // The reader: drains and ignores what the client sends (tungstenite answers pings when
    // the writer next flushes); ends on close or error.
    let reader = async move { while let Some(Ok(_)) = source.next().await {} };
    let writer = async move {
        loop {
            let first = match rx.recv().await {
                Ok(m) => m,
                Err(RecvError::Lagged(n)) => {
                    counters.lagged.fetch_add(n, Ordering::Relaxed);
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            if sink.feed(Message::Text(first)).await.is_err() {
                return;
            }
            let mut burst = 1u64;
            loop {
                match rx.try_recv() {
                    Ok(m) => {
                        if sink.feed(Message::Text(m)).await.is_err() {
                            return;
                        }
                        burst += 1;
                    }
                    Err(TryRecvError::Lagged(n)) => {
                        counters.lagged.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
            counters.delivered.fetch_add(burst, Ordering::Relaxed);
        }
    };
    tokio::select! {
        () = reader => {}
        () = writer => {}
    }
}

async fn run(args: Args) -> Result<serde_json::Value, String> {
    let reader = JournalReader::open(&args.journal)
        .map_err(|e| format!("{}: cannot open journal: {e}", args.journal.display()))?;
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("local address: {e}"))?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "peer serving ws://{addr}/ws").map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
    }
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let (tx, _) = broadcast::channel::<Utf8Bytes>(args.capacity);
    let counters = Arc::new(Counters::default());
    let accept_tx = tx.clone();
    let accept_counters = Arc::clone(&counters);
    tokio::spawn(async move {
        loop {
            // A failed accept (e.g. out of descriptors) is retried after a pause.
            match listener.accept().await {
                Ok((stream, _)) => {
                    let rx = accept_tx.subscribe();
                    tokio::spawn(serve_client(stream, rx, Arc::clone(&accept_counters)));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    });
    tokio::select! {
        res = replay(reader, args.speed, tx, Arc::clone(&counters)) => {
            res?;
            tokio::time::sleep_until(deadline).await;
        }
        () = tokio::time::sleep_until(deadline) => {}
    }
    let delivered = counters.delivered.load(Ordering::Relaxed);
    let cpu_ns = process_cpu_ns();
    Ok(serde_json::json!({
        "peer": "tokio-tungstenite",
        "speed": args.speed,
        "seconds": args.seconds,
        "capacity": args.capacity,
        "clients": counters.clients.load(Ordering::Relaxed),
        "broadcast": counters.broadcast.load(Ordering::Relaxed),
        "delivered": delivered,
        "lagged": counters.lagged.load(Ordering::Relaxed),
        "skipped": counters.skipped.load(Ordering::Relaxed),
        "cpu_ns": cpu_ns,
        "cpu_ns_per_delivered": cpu_ns.filter(|_| delivered > 0).map(|c| c / delivered),
    }))
}

fn main() -> std::process::ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("peer_tokio_ws: {e}\n{USAGE}");
            return std::process::ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("peer_tokio_ws: runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let res = rt.block_on(run(args));
    // Drop the client tasks without waiting for their sockets.
    rt.shutdown_background();
    match res {
        Ok(report) => {
            println!("{report}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("peer_tokio_ws: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
