//! A replay session's thread: its socket on its own mio `Poll`, the journal, the pace.
//!
//! The loop, every pass: read the client (requests go to the private hub), write what the hub
//! has; if the socket has not taken everything yet, wait for it (the replay holds still: this
//! is how `speed=0` follows the reader); otherwise apply the next due records (at most
//! [`BATCH`]) and write their messages. It ends at `to` or the journal's end (close 1000, or
//! the last chunk), when the client goes, or when the node stops (close 1001).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use tape_core::engine::EngineConfig;
use tape_core::input::RecordKind;
use tape_core::server::HubConfig;
use tape_journal::JournalReader;

use super::session::Session;
use super::sink::{http_error, write_out, Incoming, Sink};
use super::{ReplayParams, ReplayWire, Shared};

/// Records applied between two writes when not paced (the live loop's `FEED_BATCH`).
const BATCH: usize = 64;
/// Longest single wait, so the stop flag is seen.
const MAX_WAIT: Duration = Duration::from_millis(100);
/// How long a WebSocket client has to send its first request (unless the query subscribed).
const FIRST_REQUEST_WAIT: Duration = Duration::from_secs(10);
/// How long the response head, and the goodbye at the end, may take to write.
const WRITE_WAIT: Duration = Duration::from_secs(10);
/// How long the client has to answer our close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// Records applied silently (before `from`) between two looks at the client: one that left
/// ends the session without the rest of the silent pass.
const SILENT_CHECK_EVERY: u64 = 4096;
/// How long a client may leave written messages unread before its session ends (it holds
/// one of `replay.max_sessions` meanwhile).
const STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Requests kept from the silent pass at most.
const MAX_EARLY_REQUESTS: usize = 64;

const SOCK: Token = Token(0);

/// Everything a session needs, moved onto its thread.
pub(super) struct Job {
    pub sock: TcpStream,
    pub wire: ReplayWire,
    pub params: ReplayParams,
    pub dir: PathBuf,
    pub engine: EngineConfig,
    pub hub: HubConfig,
    pub auth: Option<tape_core::auth::AuthConfig>,
    pub nice: i32,
    pub shared: Arc<Shared>,
}

/// Why the replay ended.
enum End {
    /// Close with this code and reason (1000 done, 1001 node stopping, 1011 journal damage).
    Close(u16, String),
    /// The client went away: nothing more to say.
    Gone,
}

struct Worker {
    poll: Poll,
    events: Events,
    sock: TcpStream,
    sink: Sink,
    session: Session,
    reader: JournalReader,
    params: ReplayParams,
    shared: Arc<Shared>,
    /// The next record, copied out of the reader: (recv, source, kind) and `buf`.
    next: Option<(u64, u32, u16)>,
    buf: Vec<u8>,
    started: Instant,
    /// (wall ns since `started`, recorded ns) of the first streamed record.
    epoch: Option<(u64, u64)>,
    /// Requests that arrived during the silent pass, handled once the session opens.
    early: Vec<String>,
    /// When the socket last took everything written (the stall clock).
    drained_at: Instant,
}

/// Serves one replay to its end. Never panics on the client's or the journal's account.
pub(super) fn run(job: Job) {
    // Per-thread nice (Linux applies PRIO_PROCESS with pid 0 to the calling thread only): the
    // live engine thread keeps the CPU whenever it wants it. Best effort.
    let _ = rustix::process::setpriority_process(None, job.nice.clamp(0, 19));
    let Job {
        mut sock,
        wire,
        params,
        dir,
        engine,
        hub,
        auth,
        shared,
        ..
    } = job;
    let Ok(poll) = Poll::new() else { return };
    if poll
        .registry()
        .register(&mut sock, SOCK, Interest::READABLE | Interest::WRITABLE)
        .is_err()
    {
        return;
    }
    let mut events = Events::with_capacity(8);
    let mut poll = poll;
    let reader = match JournalReader::open(&dir) {
        Ok(r) => r,
        Err(e) => {
            shared.journal_errors.fetch_add(1, Ordering::Relaxed);
            let msg = format!("journal {} cannot be read: {e}", params.journal);
            write_all(&mut sock, &mut poll, &mut events, &http_error(500, &msg));
            return;
        }
    };
    let session = match Session::new(&engine, &hub, auth.as_ref()) {
        Ok(s) => s,
        Err(e) => {
            write_all(&mut sock, &mut poll, &mut events, &http_error(500, &e));
            return;
        }
    };
    let (head, sink) = match wire {
        ReplayWire::WebSocket { accept } => (
            crate::net::http::switching_protocols(&accept),
            Sink::websocket(),
        ),
        ReplayWire::Ndjson => (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n\
              Transfer-Encoding: chunked\r\nCache-Control: no-store\r\n\
              X-Content-Type-Options: nosniff\r\nConnection: close\r\nServer: tape\r\n\r\n"
                .to_vec(),
            Sink::ndjson(),
        ),
    };
    if !write_all(&mut sock, &mut poll, &mut events, &head) {
        return;
    }
    let mut w = Worker {
        poll,
        events,
        sock,
        sink,
        session,
        reader,
        params,
        shared,
        next: None,
        buf: Vec::new(),
        started: Instant::now(),
        epoch: None,
        early: Vec::new(),
        drained_at: Instant::now(),
    };
    match w.serve() {
        End::Close(code, reason) => w.goodbye(code, &reason),
        // The answer to its close frame, if it sent one, queued by tungstenite.
        End::Gone => {
            let _ = w.sink.flush(&mut w.sock);
        }
    }
    w.session.close();
}

impl Worker {
    fn serve(&mut self) -> End {
        // Up to `from`, silently: the books sync exactly as they did live. Definitions (source
        // definitions, the desk setup) right at `from` go first too, so a replay from a
        // journal's start knows its instruments when the client subscribes.
        let mut silent = 0u64;
        loop {
            let peeked = self.peek();
            let definition = self.next.is_some_and(|(_, _, kind)| {
                kind == RecordKind::SourceDef as u16 || kind == RecordKind::DeskSetup as u16
            });
            match peeked {
                Err(end) => return end,
                Ok(Some(recv)) if recv < self.params.from_ns || definition => {
                    self.apply_next();
                    silent += 1;
                    if silent.is_multiple_of(SILENT_CHECK_EVERY) {
                        if self.stopping() {
                            return End::Close(1001, "server shutting down".into());
                        }
                        if let Some(end) = self.hold_requests() {
                            return end;
                        }
                    }
                }
                Ok(_) => break,
            }
        }
        self.session.open(&self.params.open_query());
        let early = std::mem::take(&mut self.early);
        for r in &early {
            self.request(r);
        }
        match self.params.subscribe.clone() {
            Some(sub) => self.request(&sub),
            None if matches!(self.sink, Sink::Ws { .. }) && early.is_empty() => {
                if let Some(end) = self.first_request() {
                    return end;
                }
            }
            None => {}
        }
        loop {
            if self.stopping() {
                return End::Close(1001, "server shutting down".into());
            }
            if let Some(end) = self.read_client() {
                return end;
            }
            if let Some(end) = self.write_out_all() {
                return end;
            }
            if matches!(self.sink, Sink::Ws { pending: true, .. }) || !self.drained() {
                // Hold still until the client has read what it has; one that reads nothing
                // for STALL_TIMEOUT gives its slot back.
                if self.drained_at.elapsed() > STALL_TIMEOUT {
                    return End::Gone;
                }
                self.wait(MAX_WAIT);
                continue;
            }
            self.drained_at = Instant::now();
            let mut applied = 0;
            while applied < BATCH {
                let recv = match self.peek() {
                    Err(end) => return end,
                    Ok(None) => return End::Close(1000, "replay finished: end of journal".into()),
                    Ok(Some(r)) if r > self.params.to_ns => {
                        return End::Close(1000, "replay finished: reached to".into())
                    }
                    Ok(Some(r)) => r,
                };
                let due = self.due(recv);
                let now = self.wall();
                if due > now {
                    if applied == 0 {
                        self.wait(Duration::from_nanos(due - now).min(MAX_WAIT));
                    }
                    break;
                }
                self.apply_next();
                applied += 1;
            }
        }
    }

    /// A WebSocket client that subscribed by no query parameter: streaming starts with its
    /// first request, so no message is lost to a client still sending it.
    fn first_request(&mut self) -> Option<End> {
        let deadline = Instant::now() + FIRST_REQUEST_WAIT;
        loop {
            match self.sink.read(&mut self.sock) {
                Incoming::Text(t) => {
                    self.request(&t);
                    return None;
                }
                Incoming::Binary(n) => self.session.binary(n),
                Incoming::Gone => return Some(End::Gone),
                Incoming::Nothing => {}
            }
            let _ = self.sink.flush(&mut self.sock);
            if self.stopping() {
                return Some(End::Close(1001, "server shutting down".into()));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Some(End::Close(1008, "no request: send a subscribe".into()));
            }
            self.wait(left.min(MAX_WAIT));
        }
    }

    /// During the silent pass: keeps what the client sent for later; `Some` when it left.
    fn hold_requests(&mut self) -> Option<End> {
        // Beyond a few, the client's requests wait in its socket (the hub's request budget
        // would refuse them anyway).
        while self.early.len() < MAX_EARLY_REQUESTS {
            match self.sink.read(&mut self.sock) {
                Incoming::Text(t) => self.early.push(t),
                // An empty request: refused (4004) once the session opens, as a binary
                // message is.
                Incoming::Binary(_) => self.early.push(String::new()),
                Incoming::Nothing => return None,
                Incoming::Gone => return Some(End::Gone),
            }
        }
        None
    }

    fn request(&mut self, text: &str) {
        if let Some(err) = self.session.request(text) {
            let _ = self.sink.push(&mut self.sock, err.into());
        }
    }

    /// Handles everything the client sent; `Some` when it is gone.
    fn read_client(&mut self) -> Option<End> {
        loop {
            match self.sink.read(&mut self.sock) {
                Incoming::Text(t) => self.request(&t),
                Incoming::Binary(n) => self.session.binary(n),
                Incoming::Nothing => return None,
                Incoming::Gone => return Some(End::Gone),
            }
        }
    }

    /// Moves the hub's messages into the sink and writes them; `Some` when the socket failed.
    fn write_out_all(&mut self) -> Option<End> {
        let (sink, sock) = (&mut self.sink, &mut self.sock);
        let mut failed = false;
        self.session
            .transmit(|m| failed |= sink.push(sock, m).is_err());
        match (failed, self.sink.flush(&mut self.sock)) {
            (false, Ok(_)) => None,
            _ => Some(End::Gone),
        }
    }

    /// True when the NDJSON sink has written everything (a WebSocket says so by `pending`).
    fn drained(&mut self) -> bool {
        match &mut self.sink {
            Sink::Ndjson { out, pos, .. } => *pos == out.len(),
            Sink::Ws { .. } => true,
        }
    }

    /// The next record's receive time, reading it into `next` if needed; `Ok(None)` at the end.
    fn peek(&mut self) -> Result<Option<u64>, End> {
        if self.next.is_none() {
            match self.reader.next() {
                None => return Ok(None),
                Some(Err(e)) => {
                    self.shared.journal_errors.fetch_add(1, Ordering::Relaxed);
                    let mut reason = format!("journal damaged: {e}");
                    reason.truncate(100);
                    return Err(End::Close(1011, reason));
                }
                Some(Ok(r)) => {
                    self.buf.clear();
                    self.buf.extend_from_slice(r.payload);
                    self.next = Some((r.recv_ns, r.source, r.kind));
                }
            }
        }
        Ok(self.next.map(|(recv, _, _)| recv))
    }

    fn apply_next(&mut self) {
        if let Some((recv, source, kind)) = self.next.take() {
            self.session.apply(recv, source, kind, &self.buf);
        }
    }

    /// Wall time (ns since the session started) at which a record received at `recv` is due.
    fn due(&mut self, recv: u64) -> u64 {
        let speed = u64::from(self.params.speed);
        if speed == 0 {
            return 0;
        }
        let (wall0, rec0) = *self.epoch.get_or_insert((self.wall(), recv));
        wall0.saturating_add(recv.saturating_sub(rec0) / speed)
    }

    fn wall(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn stopping(&self) -> bool {
        self.shared.stop.load(Ordering::Acquire)
    }

    fn wait(&mut self, timeout: Duration) {
        let _ = self.poll.poll(&mut self.events, Some(timeout));
    }

    /// The end: everything queued, then the close frame or the last chunk, written within a
    /// bounded time; a WebSocket then waits briefly for the client's close.
    fn goodbye(&mut self, code: u16, reason: &str) {
        let _ = self.write_out_all();
        self.sink.finish(&mut self.sock, code, reason);
        let deadline = Instant::now() + WRITE_WAIT;
        loop {
            match self.sink.flush(&mut self.sock) {
                Ok(true) => break,
                Ok(false) if Instant::now() < deadline => self.wait(MAX_WAIT),
                _ => return,
            }
        }
        if matches!(self.sink, Sink::Ws { .. }) {
            let deadline = Instant::now() + CLOSE_WAIT;
            while Instant::now() < deadline {
                match self.sink.read(&mut self.sock) {
                    Incoming::Gone => break,
                    Incoming::Nothing => self.wait(MAX_WAIT),
                    _ => {}
                }
            }
            let _ = self.sink.flush(&mut self.sock);
        }
        let _ = self.sock.shutdown(std::net::Shutdown::Write);
    }
}

/// Writes all of `bytes` within [`WRITE_WAIT`]; false if the socket failed or timed out.
fn write_all(sock: &mut TcpStream, poll: &mut Poll, events: &mut Events, bytes: &[u8]) -> bool {
    let deadline = Instant::now() + WRITE_WAIT;
    let mut pos = 0;
    loop {
        match write_out(sock, bytes, &mut pos) {
            Ok(true) => return true,
            Ok(false) if Instant::now() < deadline => {
                let _ = poll.poll(events, Some(MAX_WAIT));
            }
            _ => return false,
        }
    }
}
