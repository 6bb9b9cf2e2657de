//! The fan-out peer of the latency lab: the minimal WebSocket broadcast server a user would
//! write with tokio and tokio-tungstenite, fed by the same recorded session as tape.
//!
//! It replays the `ws_frame` records (kind 2) of a tape journal at the recorded pace × N
//! (N = 0: as fast as possible), stamps each frame with `recv_ns` (wall clock, ns since the
//! Unix epoch) when it takes the frame in, and broadcasts
//!
//! ```text
//! {"type":"update","channel":"raw","seq":N,"recv_ns":T,"data":<the frame bytes verbatim>}
//! ```
//!
//! to every connected client through one `tokio::sync::broadcast` channel: the envelope is
//! built once and shared by all receivers. Each client has its own task that writes every
//! message it has been sent so far into the socket's buffer and flushes once (one `write` per
//! burst, as tape does). A receiver that falls more than `capacity` messages behind loses
//! the oldest ones; those are counted as lagged drops, this peer's equivalent of tape's
//! conflation. Anything a client sends (a `subscribe`, say) is read and ignored.
//!
//! **Ingest works like a socket reader.** When the replay task runs, it takes in every frame
//! that is due (at most [`INGEST_BATCH`], tape's feed batch), stamping each as it takes it,
//! and only then yields to the client tasks. A frame that is due while the thread is busy
//! with clients waits unstamped, as bytes wait in a socket buffer until a server reads them;
//! tape's live path stamps at the socket read the same way. How far behind its schedule the
//! ingest ended is reported (`ingest_lag_ns`), so a peer that keeps its latency low by falling
//! behind on input shows it.
//!
//! **This peer does much less than tape per input**: it does not decode the frame, keeps no
//! book, derives no BBO or statistics, has no per-channel subscriptions, reads its input from
//! a file instead of a TLS socket and journals nothing; it only wraps the venue's bytes and
//! forwards them. It is the baseline of "just forward it", not an equivalent of tape.
//! Everything runs on one `current_thread` runtime, like tape's single engine thread.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tape_core::input::RecordKind;
use tape_journal::JournalReader;
use tape_node::node::WallClock;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// Frames taken in per turn of the replay task before it lets the clients run; the same as
/// tape's feed batch (`tape_node::node::FEED_BATCH`).
pub const INGEST_BATCH: usize = tape_node::node::FEED_BATCH;

/// How often the server looks at its stop flag.
const STOP_POLL: Duration = Duration::from_millis(5);

/// What to serve.
#[derive(Debug, Clone)]
pub struct PeerOptions {
    /// Address to bind (port 0 picks one).
    pub listen: SocketAddr,
    /// The journal whose `ws_frame` records are broadcast.
    pub journal: PathBuf,
    /// 1 = recorded pace, N = N times faster, 0 = as fast as possible.
    pub speed: u32,
    /// Messages a receiver may fall behind before it loses the oldest.
    pub capacity: usize,
}

/// What the peer did, over its whole run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PeerReport {
    /// Always `"tokio-tungstenite"`.
    pub peer: &'static str,
    /// Pace.
    pub speed: u32,
    /// Broadcast channel capacity.
    pub capacity: usize,
    /// WebSocket clients that completed the handshake.
    pub clients: u64,
    /// Messages sent into the broadcast channel (frames taken in).
    pub broadcast: u64,
    /// Messages flushed to client sockets.
    pub delivered: u64,
    /// Messages dropped for receivers that fell more than `capacity` behind.
    pub lagged: u64,
    /// `ws_frame` records that are not UTF-8 (not sent).
    pub skipped: u64,
    /// How far behind its schedule the ingest was when the run ended, ns (0 when the
    /// journal ran out or the ingest kept up).
    pub ingest_lag_ns: u64,
    /// Wall time served, ns.
    pub wall_ns: u64,
    /// CPU time of the server thread (the whole runtime), ns.
    pub cpu_ns: u64,
    /// `cpu_ns / delivered`.
    pub cpu_ns_per_delivered: Option<u64>,
}

/// Counters shared by the replay and the client tasks.
#[derive(Debug, Default)]
struct Counters {
    broadcast: AtomicU64,
    delivered: AtomicU64,
    lagged: AtomicU64,
    clients: AtomicU64,
    skipped: AtomicU64,
    lag_ns: AtomicU64,
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
    let mut taken = 0usize;
    loop {
        // Copy what is needed out of the mapped record before any await.
        let recorded = match reader.next() {
            None => {
                counters.lag_ns.store(0, Ordering::Relaxed);
                return Ok(());
            }
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
        if speed > 0 {
            let due =
                start + Duration::from_nanos(recorded.saturating_sub(first) / u64::from(speed));
            let now = Instant::now();
            if due > now {
                // Caught up: whatever was taken in goes out while we wait.
                taken = 0;
                counters.lag_ns.store(0, Ordering::Relaxed);
                tokio::time::sleep_until(due).await;
            } else {
                let lag = u64::try_from((now - due).as_nanos()).unwrap_or(u64::MAX);
                counters.lag_ns.store(lag, Ordering::Relaxed);
            }
        }
        if taken >= INGEST_BATCH {
            // A full batch: let the client tasks write it before taking in more.
            taken = 0;
            tokio::task::yield_now().await;
        }
        taken += 1;
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

/// Serves until `stop` is set, on a `current_thread` runtime on the calling thread; `ready`
/// gets the bound address once clients may connect. Client tasks are dropped, not waited for.
///
/// # Errors
/// An unreadable or damaged journal, a bind failure, a runtime that cannot start.
pub fn serve(
    opts: &PeerOptions,
    stop: &AtomicBool,
    ready: impl FnOnce(SocketAddr),
) -> Result<PeerReport, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let cpu0 = tape_tools::loadgen::thread_cpu_ns().unwrap_or(0);
    let t0 = std::time::Instant::now();
    let counters = Arc::new(Counters::default());
    let res = rt.block_on(run(opts, stop, ready, Arc::clone(&counters)));
    let cpu_ns = tape_tools::loadgen::thread_cpu_ns()
        .unwrap_or(0)
        .saturating_sub(cpu0);
    let wall_ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
    // Drop the client tasks without waiting for their sockets.
    rt.shutdown_background();
    res?;
    let delivered = counters.delivered.load(Ordering::Relaxed);
    Ok(PeerReport {
        peer: "tokio-tungstenite",
        speed: opts.speed,
        capacity: opts.capacity,
        clients: counters.clients.load(Ordering::Relaxed),
        broadcast: counters.broadcast.load(Ordering::Relaxed),
        delivered,
        lagged: counters.lagged.load(Ordering::Relaxed),
        skipped: counters.skipped.load(Ordering::Relaxed),
        ingest_lag_ns: counters.lag_ns.load(Ordering::Relaxed),
        wall_ns,
        cpu_ns,
        cpu_ns_per_delivered: (delivered > 0).then(|| cpu_ns / delivered),
    })
}

async fn run(
    opts: &PeerOptions,
    stop: &AtomicBool,
    ready: impl FnOnce(SocketAddr),
    counters: Arc<Counters>,
) -> Result<(), String> {
    let reader = JournalReader::open(&opts.journal)
        .map_err(|e| format!("{}: cannot open journal: {e}", opts.journal.display()))?;
    let listener = TcpListener::bind(opts.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", opts.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("local address: {e}"))?;
    let (tx, _) = broadcast::channel::<Utf8Bytes>(opts.capacity);
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
    ready(addr);
    let stopped = async {
        while !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(STOP_POLL).await;
        }
    };
    tokio::pin!(stopped);
    tokio::select! {
        res = replay(reader, opts.speed, tx, Arc::clone(&counters)) => {
            res?;
            stopped.await;
        }
        () = &mut stopped => {}
    }
    Ok(())
}
