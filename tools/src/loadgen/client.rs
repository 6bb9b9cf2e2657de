//! One load client's state machine on the shared mio loop: dialing (tape-node's [`Dial`]),
//! subscribing, reading and checking every message, the polite close; and [`Shared`], the
//! settings, counters and histograms all connections of a run write into.

use std::collections::HashMap;
use std::io;
use std::time::Instant;

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::Registry;
use tape_core::metrics::MAX_LATENCY_NS;
use tape_node::live::{ClientWs, Dial, DialError, DialStep, DialTarget};
use tape_node::node::WallClock;
use tungstenite::Message;

use super::envelope::{scan, Envelope, SeqCheck, SeqState};
use super::report::LoadgenReport;

/// Distinct streams tracked (over all connections); more count as bad messages.
const MAX_STREAMS: usize = 1024;
/// Distinct failure reasons kept for the report.
const MAX_ERRORS: usize = 8;

enum Phase {
    /// TCP, TLS and the WebSocket handshake (tape-node's client [`Dial`]).
    Dialing(Dial),
    Open(Box<ClientWs>),
    Done,
}

/// One client connection.
pub(super) struct Conn {
    phase: Phase,
    /// When the handshake must be done by.
    deadline: Instant,
    /// The loadgen sent its close frame.
    closing: bool,
    /// The server's close frame came.
    closed_by_server: bool,
    acked: bool,
    pub(super) opened: bool,
    pub(super) window_messages: u64,
    /// By stream id.
    seqs: Vec<SeqState>,
}

/// Everything connections share: settings, counters, histograms.
pub(super) struct Shared {
    /// What every connection dials.
    pub(super) target: DialTarget,
    /// The node's clock: `recv_ns` in messages is a reading of the same kind, so latency is
    /// the difference of two comparable readings.
    pub(super) clock: WallClock,
    pub(super) subscribe: String,
    pub(super) measuring: bool,
    pub(super) pending: usize,
    pub(super) open: usize,
    pub(super) streams: HashMap<String, usize>,
    pub(super) key: String,
    pub(super) hist: Histogram<u64>,
    pub(super) interval: Histogram<u64>,
    pub(super) r: LoadgenReport,
}

fn is_would_block(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(io) if io.kind() == io::ErrorKind::WouldBlock)
}

impl Shared {
    /// Nothing connected or counted yet; every connection dials `target` and sends `subscribe`.
    pub(super) fn new(target: DialTarget, subscribe: String, report: LoadgenReport) -> Shared {
        let hist = report.histogram.clone();
        Shared {
            target,
            clock: WallClock::default(),
            subscribe,
            measuring: false,
            pending: 0,
            open: 0,
            streams: HashMap::new(),
            key: String::new(),
            interval: hist.clone(),
            r: report,
            hist,
        }
    }

    pub(super) fn note(&mut self, what: String) {
        if self.r.errors.len() < MAX_ERRORS && !self.r.errors.contains(&what) {
            self.r.errors.push(what);
        }
    }

    fn stream_id(&mut self, e: &Envelope<'_>) -> Option<usize> {
        self.key.clear();
        for part in [e.channel, e.market, e.symbol, e.venue] {
            self.key.push_str(part.unwrap_or(""));
            self.key.push('\0');
        }
        if let Some(&id) = self.streams.get(self.key.as_str()) {
            return Some(id);
        }
        let id = self.streams.len();
        (id < MAX_STREAMS).then(|| {
            self.streams.insert(self.key.clone(), id);
            id
        })
    }

    /// One text message that arrived at `arrival` (ns since the epoch).
    fn on_text(&mut self, c: &mut Conn, text: &str, arrival: u64) {
        if self.measuring {
            self.r.messages += 1;
            self.r.bytes += text.len() as u64;
            c.window_messages += 1;
        }
        let Some(env) = scan(text) else {
            self.r.bad_messages += 1;
            return;
        };
        match env.kind {
            "subscribed" if !c.acked => {
                c.acked = true;
                self.r.subscribed += 1;
            }
            "error" => {
                self.r.error_replies += 1;
                let cut = (0..=text.len().min(200))
                    .rev()
                    .find(|i| text.is_char_boundary(*i))
                    .unwrap_or(0);
                self.note(format!("server error: {}", &text[..cut]));
            }
            _ if env.is_stream() => {
                let (Some(_), Some(seq), Some(recv)) = (env.channel, env.seq, env.recv_ns) else {
                    self.r.bad_messages += 1;
                    return;
                };
                if self.measuring {
                    let ns = arrival.saturating_sub(recv).clamp(1, MAX_LATENCY_NS);
                    self.hist.saturating_record(ns);
                    self.interval.saturating_record(ns);
                }
                let Some(id) = self.stream_id(&env) else {
                    self.r.bad_messages += 1;
                    return;
                };
                if c.seqs.len() <= id {
                    c.seqs.resize(id + 1, SeqState::default());
                }
                match c.seqs[id].check(seq, env.kind == "update") {
                    SeqCheck::Ok => {}
                    SeqCheck::Gap { missed, first } => {
                        self.r.gaps += 1;
                        self.r.missed += missed;
                        self.r.gap_streams += u64::from(first);
                    }
                    SeqCheck::Regression => self.r.seq_regressions += 1,
                }
            }
            _ => {}
        }
    }
}

impl Conn {
    /// A connection that must finish its handshake by `deadline`; not dialing yet.
    pub(super) fn new(deadline: Instant) -> Conn {
        Conn {
            phase: Phase::Done,
            deadline,
            closing: false,
            closed_by_server: false,
            acked: false,
            opened: false,
            window_messages: 0,
            seqs: Vec::new(),
        }
    }

    /// Starts dialing `target` over `sock`, a connect already under way and registered.
    pub(super) fn dial(&mut self, sock: TcpStream, target: &DialTarget, sh: &mut Shared) {
        self.phase = Phase::Dialing(Dial::new(sock, target.clone()));
        sh.pending += 1;
    }

    /// Still in TCP, TLS or the WebSocket handshake.
    pub(super) fn is_dialing(&self) -> bool {
        matches!(self.phase, Phase::Dialing(_))
    }

    /// Past its handshake deadline at `now` while still dialing.
    pub(super) fn handshake_overdue(&self, now: Instant) -> bool {
        self.is_dialing() && now >= self.deadline
    }

    /// A handshake that did not complete.
    pub(super) fn fail(&mut self, sh: &mut Shared, why: String) {
        self.phase = Phase::Done;
        sh.pending -= 1;
        sh.r.connections_failed += 1;
        sh.note(why);
    }

    /// Drives the connection after a readiness event.
    pub(super) fn drive(&mut self, reg: &Registry, sh: &mut Shared) {
        loop {
            match std::mem::replace(&mut self.phase, Phase::Done) {
                Phase::Done => return,
                Phase::Dialing(dial) => match dial.advance() {
                    DialStep::Pending(dial) => {
                        self.phase = Phase::Dialing(dial);
                        return;
                    }
                    DialStep::Open(mut ws) => {
                        sh.pending -= 1;
                        sh.open += 1;
                        sh.r.connections_ok += 1;
                        self.opened = true;
                        match ws.send(Message::text(sh.subscribe.clone())) {
                            Ok(()) => {}
                            Err(e) if is_would_block(&e) => {}
                            Err(e) => {
                                sh.open -= 1;
                                sh.r.connections_lost += 1;
                                sh.r.io_errors += 1;
                                return sh.note(format!("subscribe: {e}"));
                            }
                        }
                        self.phase = Phase::Open(ws);
                    }
                    DialStep::Failed(e, _sock) => {
                        let why = match e {
                            DialError::Refused(e) | DialError::Connect(e) => {
                                format!("connect: {e}")
                            }
                            DialError::ServerName(e) => format!("server name: {e}"),
                            DialError::Tls(e) => format!("tls: {e}"),
                            DialError::Request(e) => format!("request: {e}"),
                            DialError::Handshake(e) => format!("handshake: {e}"),
                        };
                        return self.fail(sh, why);
                    }
                },
                Phase::Open(mut ws) => {
                    if self.read_all(&mut ws, sh) {
                        self.phase = Phase::Open(ws);
                    } else {
                        let _ = reg.deregister(ws.socket());
                        sh.open -= 1;
                        if !self.closing {
                            sh.r.connections_lost += 1;
                        }
                    }
                    return;
                }
            }
        }
    }

    /// Reads every available message and flushes; false when the connection is over.
    fn read_all(&mut self, ws: &mut ClientWs, sh: &mut Shared) -> bool {
        loop {
            match ws.read() {
                Ok(Message::Text(t)) => {
                    let now = sh.clock.now();
                    sh.on_text(self, t.as_str(), now);
                }
                Ok(Message::Binary(_)) => sh.r.bad_messages += 1,
                Ok(Message::Close(frame)) => {
                    if !self.closing && !self.closed_by_server {
                        let code = frame.map_or(1005, |f| u16::from(f.code));
                        *sh.r.closes.entry(code).or_default() += 1;
                    }
                    self.closed_by_server = true;
                }
                Ok(_) => {}
                Err(e) if is_would_block(&e) => break,
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return false
                }
                Err(e) => return self.io_error(sh, &e),
            }
        }
        match ws.flush() {
            Ok(()) => true,
            Err(e) if is_would_block(&e) => true,
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => false,
            Err(e) => self.io_error(sh, &e),
        }
    }

    /// Counts a socket failure (unless it came after a close frame); always false.
    fn io_error(&mut self, sh: &mut Shared, e: &tungstenite::Error) -> bool {
        if !self.closing && !self.closed_by_server {
            sh.r.io_errors += 1;
            sh.note(format!("io: {e}"));
        }
        false
    }

    /// Starts the polite close (the server's close frame ends it).
    pub(super) fn close(&mut self, reg: &Registry, sh: &mut Shared) {
        if let Phase::Open(ws) = &mut self.phase {
            self.closing = true;
            match ws.close(None) {
                Ok(()) => {}
                Err(e) if is_would_block(&e) => {}
                Err(_) => {
                    let _ = reg.deregister(ws.socket());
                    self.phase = Phase::Done;
                    sh.open -= 1;
                }
            }
        }
    }
}
