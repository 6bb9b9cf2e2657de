//! `tape loadgen`: many WebSocket clients on one thread, measuring tick-to-client latency.
//!
//! N client connections (default 100) run on a single `mio::Poll` with non-blocking sockets:
//! TCP connect, optional rustls, and the client handshake (tape-node's `Dial`) are resumed across
//! `WouldBlock`. At most `connect_batch` handshakes are in flight at once, so the server's
//! accept backlog is never overrun, and each has a deadline; a failure is counted, never fatal.
//! Every connection sends one `subscribe` and then only reads.
//!
//! Timeline: connect every client (reading the ones already open), then `warmup` (initial
//! snapshots and replayed state carry old `recv_ns`; excluded from the histogram), then the
//! measured window of `duration`, then a polite close (close frame, wait for the server's,
//! bounded by `close_timeout`).
//!
//! Latency is `arrival_ns - recv_ns`, where `arrival_ns` is this host's wall clock (ns since
//! the Unix epoch, the clock the engine stamps `recv_ns` with) read **once per message**, right
//! after tungstenite hands the message over. It so includes the client's own queueing (time
//! spent on messages ahead of it in the same read), which is what a real single-threaded
//! client would see; the loadgen's CPU time is reported so a saturated client shows.
//!
//! Messages are not parsed as JSON: [`scan`] finds the envelope fields (`type`, `channel`,
//! `market`, `symbol`, `venue`, `seq`, `recv_ns`) by substring search in the part before
//! `"data":`. The server writes that envelope first and in fixed form, so this is exact for
//! tape's messages, costs O(header) instead of O(message) (a 1000-level book snapshot would
//! otherwise dominate the client's CPU and the loadgen would measure itself), and allocates
//! nothing. It is not a validator: anything without a readable envelope counts as a bad message.
//!
//! Gaps: per (connection, channel, market, symbol, venue) stream, after the first message,
//! an `update` must carry the previous `seq` + 1. A jump is a gap of `seq - prev - 1` missed
//! messages: the server conflated or dropped them for a slow consumer. A `snapshot` or `status`
//! may repeat the current `seq` (initial state) but a jump there is also a gap (a `book`
//! conflated into a fresh snapshot). A `seq` that goes backwards is a regression.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Registry, Token};
use rustls::pki_types::ServerName;
use serde::Serialize;
use tape_core::metrics::MAX_LATENCY_NS;
use tape_node::live::{client_tls_config, WsUrl};
use tape_node::live::{ClientWs, Dial, DialError, DialStep, DialTarget};
use tape_node::node::WallClock;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::Message;

/// Distinct streams tracked (over all connections); more count as bad messages.
const MAX_STREAMS: usize = 1024;
/// Distinct failure reasons kept for the report.
const MAX_ERRORS: usize = 8;

/// What to run; also the `tape loadgen` flags. `Default` is the flags' defaults.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadgenConfig {
    /// Server WebSocket URL (ws:// or wss://).
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    pub url: String,
    /// Client connections.
    #[arg(long, default_value_t = 100)]
    pub clients: usize,
    /// Channels to subscribe, comma-separated (bbo, trades, ticker, book, status).
    #[arg(long, value_delimiter = ',', default_value = "bbo,trades,book")]
    pub channels: Vec<String>,
    /// Symbols, comma-separated; a bare symbol names every market listing it.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "BTCUSDT,ETHUSDT,BTCUSD_PERP"
    )]
    pub symbols: Vec<String>,
    /// Measured seconds, after the warm-up.
    #[arg(long, default_value = "10", value_parser = parse_secs)]
    pub duration: Duration,
    /// Seconds excluded from the measurement once every client has connected or failed.
    #[arg(long, default_value = "1", value_parser = parse_secs)]
    pub warmup: Duration,
    /// CA certificate (PEM) to trust for wss://; without one, the webpki roots.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 64)]
    pub connect_batch: usize,
    /// Seconds each connection's TCP + TLS + WebSocket handshake may take.
    #[arg(long, default_value = "10", value_parser = parse_secs)]
    pub connect_timeout: Duration,
    /// Seconds the final close handshakes may take.
    #[arg(long, default_value = "2", value_parser = parse_secs)]
    pub close_timeout: Duration,
    /// Write an HdrHistogram interval log (V2, values in ns) of the measured window.
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Seconds per interval of the log.
    #[arg(long, default_value = "1", value_parser = parse_secs)]
    pub interval: Duration,
}

impl Default for LoadgenConfig {
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            cfg: LoadgenConfig,
        }
        // No arguments: every flag has a default, so this cannot fail.
        <Defaults as clap::Parser>::parse_from(["loadgen"]).cfg
    }
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s.parse().map_err(|e| format!("{s:?}: {e}"))?;
    Duration::try_from_secs_f64(v).map_err(|e| format!("{s:?}: {e}"))
}

/// Latency percentiles, ns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LatencySummary {
    /// Samples (messages with a `recv_ns` in the measured window).
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest sample.
    pub max: u64,
}

impl LatencySummary {
    /// The summary of a histogram.
    pub fn of(h: &Histogram<u64>) -> LatencySummary {
        let q = |q| h.value_at_quantile(q);
        let (p50, p90, p99, p999) = (q(0.5), q(0.9), q(0.99), q(0.999));
        LatencySummary {
            count: h.len(),
            p50,
            p90,
            p99,
            p999,
            max: h.max(),
        }
    }
}

/// The outcome of a run. Rates, bytes, messages and latency cover the measured window;
/// connection, gap, error and close counts cover the whole run.
#[derive(Debug, Clone, Serialize)]
pub struct LoadgenReport {
    /// Server URL.
    pub url: String,
    /// Connections asked for.
    pub clients: usize,
    /// WebSocket handshakes completed.
    pub connections_ok: u64,
    /// Connections that failed before their handshake completed (or timed out).
    pub connections_failed: u64,
    /// Open connections that ended before the loadgen closed them.
    pub connections_lost: u64,
    /// Connections whose `subscribe` was acknowledged.
    pub subscribed: u64,
    /// Length of the measured window, s.
    pub measured_secs: f64,
    /// Text messages received in the window.
    pub messages: u64,
    /// `messages` per second.
    pub messages_per_sec: f64,
    /// Payload bytes of those messages.
    pub bytes: u64,
    /// `bytes` per second.
    pub bytes_per_sec: f64,
    /// Fewest messages any open connection got in the window.
    pub conn_messages_min: u64,
    /// Most messages any connection got in the window.
    pub conn_messages_max: u64,
    /// Streams (per connection) with at least one gap.
    pub gap_streams: u64,
    /// `seq` jumps.
    pub gaps: u64,
    /// Messages missed in those jumps.
    pub missed: u64,
    /// `seq` going backwards (or an `update` repeating one).
    pub seq_regressions: u64,
    /// Messages without a readable envelope, binary frames.
    pub bad_messages: u64,
    /// `error` replies from the server.
    pub error_replies: u64,
    /// Close frames the server sent first, by code.
    pub closes: BTreeMap<u16, u64>,
    /// Sockets that failed (including resets without a close frame) while open.
    pub io_errors: u64,
    /// The first few distinct failure reasons and error replies.
    pub errors: Vec<String>,
    /// `arrival - recv_ns` in the window.
    pub latency_ns: LatencySummary,
    /// CPU time of the loadgen thread during the window, s.
    pub cpu_secs: f64,
    /// That, in percent of one core.
    pub cpu_pct: f64,
    /// Every latency sample of the window, ns.
    #[serde(skip)]
    pub histogram: Histogram<u64>,
}

/// Envelope fields of one server message, found by [`scan`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// `type`: `update`, `snapshot`, `status`, `subscribed`, `error`, `pong`, ...
    pub kind: &'a str,
    /// `channel`.
    pub channel: Option<&'a str>,
    /// `market`.
    pub market: Option<&'a str>,
    /// `symbol`.
    pub symbol: Option<&'a str>,
    /// `venue` (status channel).
    pub venue: Option<&'a str>,
    /// `seq`.
    pub seq: Option<u64>,
    /// `recv_ns`.
    pub recv_ns: Option<u64>,
}

impl Envelope<'_> {
    /// A channel message (`update`, `snapshot`, `status`).
    pub fn is_stream(&self) -> bool {
        matches!(self.kind, "update" | "snapshot" | "status")
    }
}

/// The envelope of `msg` by substring search in the part before `"data":` (see the module
/// docs for why); `None` if it is not an object with a string `type`. Never panics.
pub fn scan(msg: &str) -> Option<Envelope<'_>> {
    if !msg.trim_start().starts_with('{') {
        return None;
    }
    let head = msg.find("\"data\":").map_or(msg, |i| &msg[..i]);
    Some(Envelope {
        kind: str_field(head, "\"type\":")?,
        channel: str_field(head, "\"channel\":"),
        market: str_field(head, "\"market\":"),
        symbol: str_field(head, "\"symbol\":"),
        venue: str_field(head, "\"venue\":"),
        seq: num_field(head, "\"seq\":"),
        recv_ns: num_field(head, "\"recv_ns\":"),
    })
}

/// The value after the first `key` (`"name":`), whitespace skipped.
fn value<'a>(head: &'a str, key: &str) -> Option<&'a str> {
    let at = head.find(key)? + key.len();
    head.get(at..).map(str::trim_start)
}

/// A string value without escapes.
fn str_field<'a>(head: &'a str, key: &str) -> Option<&'a str> {
    let v = value(head, key)?.strip_prefix('"')?;
    let s = &v[..v.find('"')?];
    (!s.contains('\\')).then_some(s)
}

/// An unsigned integer value that fits 64 bits.
fn num_field(head: &str, key: &str) -> Option<u64> {
    let v = value(head, key)?;
    let digits = v.bytes().take_while(u8::is_ascii_digit);
    let mut n = 0u64;
    let mut any = false;
    for d in digits {
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        any = true;
    }
    any.then_some(n)
}

/// Where a stream's `seq` stands on one connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqState {
    last: u64,
    seen: bool,
    gapped: bool,
}

/// What one `seq` told about its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqCheck {
    /// In order (or the first message seen).
    Ok,
    /// A jump: this many messages were missed; `first` if the stream had no gap before.
    Gap {
        /// Messages missed.
        missed: u64,
        /// The stream's first gap.
        first: bool,
    },
    /// Backwards, or an `update` repeating the previous `seq`.
    Regression,
}

impl SeqState {
    /// Checks and records `seq` of an `update` (`update` = true) or a `snapshot`/`status`.
    pub fn check(&mut self, seq: u64, update: bool) -> SeqCheck {
        let prev = std::mem::replace(&mut self.last, seq);
        if !std::mem::replace(&mut self.seen, true) {
            return SeqCheck::Ok;
        }
        let Some(next) = prev.checked_add(1) else {
            return SeqCheck::Regression; // nothing can follow u64::MAX
        };
        if seq == next || (seq == prev && !update) {
            SeqCheck::Ok
        } else if seq > next {
            let first = !std::mem::replace(&mut self.gapped, true);
            SeqCheck::Gap {
                missed: seq - next,
                first,
            }
        } else {
            SeqCheck::Regression
        }
    }
}

enum Phase {
    /// TCP, TLS and the WebSocket handshake (tape-node's client [`Dial`]).
    Dialing(Dial),
    Open(Box<ClientWs>),
    Done,
}

/// One client connection.
struct Conn {
    phase: Phase,
    /// When the handshake must be done by.
    deadline: Instant,
    /// The loadgen sent its close frame.
    closing: bool,
    /// The server's close frame came.
    closed_by_server: bool,
    acked: bool,
    opened: bool,
    window_messages: u64,
    /// By stream id.
    seqs: Vec<SeqState>,
}

/// Everything connections share: settings, counters, histograms.
struct Shared {
    /// What every connection dials.
    target: DialTarget,
    /// The node's clock: `recv_ns` in messages is a reading of the same kind, so latency is
    /// the difference of two comparable readings.
    clock: WallClock,
    subscribe: String,
    measuring: bool,
    pending: usize,
    open: usize,
    streams: HashMap<String, usize>,
    key: String,
    hist: Histogram<u64>,
    interval: Histogram<u64>,
    r: LoadgenReport,
}

fn is_would_block(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(io) if io.kind() == io::ErrorKind::WouldBlock)
}

impl Shared {
    fn note(&mut self, what: String) {
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
    /// A handshake that did not complete.
    fn fail(&mut self, sh: &mut Shared, why: String) {
        self.phase = Phase::Done;
        sh.pending -= 1;
        sh.r.connections_failed += 1;
        sh.note(why);
    }

    /// Drives the connection after a readiness event.
    fn drive(&mut self, reg: &Registry, sh: &mut Shared) {
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
    fn close(&mut self, reg: &Registry, sh: &mut Shared) {
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

/// CPU time of the calling thread, ns: `/proc/thread-self/schedstat` (ns), else
/// `/proc/thread-self/stat` utime + stime (ticks of 10 ms).
pub fn thread_cpu_ns() -> Option<u64> {
    if let Ok(s) = std::fs::read_to_string("/proc/thread-self/schedstat") {
        if let Some(ns) = s.split_whitespace().next().and_then(|v| v.parse().ok()) {
            return Some(ns);
        }
    }
    let s = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let mut f = s.get(s.rfind(')')? + 1..)?.split_whitespace().skip(11);
    let ticks: u64 = f.next()?.parse::<u64>().ok()? + f.next()?.parse::<u64>().ok()?;
    Some(ticks * 10_000_000)
}

/// An HdrHistogram interval log (format 1.3, V2 compressed histograms, ns).
struct IntervalLog {
    out: io::BufWriter<std::fs::File>,
    ser: V2DeflateSerializer,
}

impl IntervalLog {
    fn create(path: &std::path::Path, base_s: f64) -> io::Result<IntervalLog> {
        let mut out = io::BufWriter::new(std::fs::File::create(path)?);
        writeln!(out, "#[tape loadgen: arrival - recv_ns, values in ns]")?;
        writeln!(out, "#[BaseTime: {base_s:.3} (seconds since epoch)]")?;
        writeln!(out, "#[StartTime: {base_s:.3} (seconds since epoch)]")?;
        writeln!(out, "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"")?;
        Ok(IntervalLog {
            out,
            ser: V2DeflateSerializer::new(),
        })
    }

    fn write(&mut self, h: &Histogram<u64>, start: Duration, len: Duration) -> io::Result<()> {
        IntervalLogWriterBuilder::new()
            .with_max_value_divisor(1.0)
            .begin_log_with(&mut self.out, &mut self.ser)?
            .write_histogram(h, start, len, None)
            .map_err(io::Error::other)?;
        self.out.flush()
    }
}

fn validate(cfg: &LoadgenConfig) -> Result<()> {
    let week = Duration::from_secs(7 * 86_400);
    if !(1..=100_000).contains(&cfg.clients) {
        bail!("clients must be 1 to 100000");
    }
    if cfg.duration.is_zero() || cfg.duration > week {
        bail!("duration must be above 0 and at most a week");
    }
    if cfg.warmup > week || cfg.connect_timeout.is_zero() || cfg.interval.is_zero() {
        bail!("warmup must be at most a week, connect timeout and interval above 0");
    }
    if cfg.connect_batch == 0 || cfg.channels.is_empty() {
        bail!("connect batch and channels must not be empty");
    }
    Ok(())
}

/// Runs the load: connects, warms up, measures, closes. `stop` ends the run early (the
/// report covers what was measured).
///
/// # Errors
/// Bad settings, an unresolvable host, an unreadable CA file, a poll or log failure.
/// Connection failures are counted, not errors.
pub fn run(cfg: &LoadgenConfig, stop: &AtomicBool) -> Result<LoadgenReport> {
    validate(cfg)?;
    let url = WsUrl::parse(&cfg.url).map_err(anyhow::Error::msg)?;
    let addr: SocketAddr = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .with_context(|| format!("resolve {}", url.host))?
        .next()
        .with_context(|| format!("{} has no address", url.host))?;
    let tls = if url.tls {
        let c = client_tls_config(cfg.ca.is_none(), cfg.ca.as_deref())?;
        ServerName::try_from(url.host.clone()).context("TLS server name")?;
        Some((c, url.host.clone()))
    } else {
        None
    };
    let hist = Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)?;
    let mut sh = Shared {
        target: DialTarget {
            url: cfg.url.clone(),
            tls,
            user_agent: None,
            config: WebSocketConfig::default().read_buffer_size(16 * 1024),
        },
        clock: WallClock::default(),
        subscribe: serde_json::json!({"type": "subscribe", "id": 1,
            "channels": cfg.channels, "symbols": cfg.symbols})
        .to_string(),
        measuring: false,
        pending: 0,
        open: 0,
        streams: HashMap::new(),
        key: String::new(),
        interval: hist.clone(),
        r: LoadgenReport {
            url: cfg.url.clone(),
            clients: cfg.clients,
            connections_ok: 0,
            connections_failed: 0,
            connections_lost: 0,
            subscribed: 0,
            measured_secs: 0.0,
            messages: 0,
            messages_per_sec: 0.0,
            bytes: 0,
            bytes_per_sec: 0.0,
            conn_messages_min: 0,
            conn_messages_max: 0,
            gap_streams: 0,
            gaps: 0,
            missed: 0,
            seq_regressions: 0,
            bad_messages: 0,
            error_replies: 0,
            closes: BTreeMap::new(),
            io_errors: 0,
            errors: Vec::new(),
            latency_ns: LatencySummary::default(),
            cpu_secs: 0.0,
            cpu_pct: 0.0,
            histogram: hist.clone(),
        },
        hist,
    };
    let mut poll = Poll::new().context("poll")?;
    let mut events = Events::with_capacity(1024);
    let mut conns: Vec<Conn> = Vec::with_capacity(cfg.clients);
    let mut log = None;
    // Stage boundaries: warm-up end, measured window [start, end), close deadline.
    let mut warm_end: Option<Instant> = None;
    let mut window: Option<(Instant, Instant, u64)> = None; // start, end, cpu at start
    let mut measured: Option<(Duration, u64)> = None; // length, cpu
    let mut close_by: Option<Instant> = None;
    let mut next_log = Instant::now();
    let mut next_deadline_scan = Instant::now();
    loop {
        let now = Instant::now();
        let stopping = stop.load(Ordering::Relaxed);
        // Open more connections while the batch has room.
        while close_by.is_none() && !stopping && conns.len() < cfg.clients {
            if sh.pending >= cfg.connect_batch {
                break;
            }
            let mut c = Conn {
                phase: Phase::Done,
                deadline: now + cfg.connect_timeout,
                closing: false,
                closed_by_server: false,
                acked: false,
                opened: false,
                window_messages: 0,
                seqs: Vec::new(),
            };
            let token = Token(conns.len());
            match TcpStream::connect(addr).and_then(|mut s| {
                poll.registry()
                    .register(&mut s, token, Interest::READABLE | Interest::WRITABLE)
                    .map(|()| s)
            }) {
                Ok(s) => {
                    c.phase = Phase::Dialing(Dial::new(s, sh.target.clone()));
                    sh.pending += 1;
                }
                Err(e) => {
                    sh.r.connections_failed += 1;
                    sh.note(format!("connect: {e}"));
                }
            }
            conns.push(c);
        }
        if close_by.is_none() {
            if warm_end.is_none() && conns.len() == cfg.clients && sh.pending == 0 {
                warm_end = Some(now + cfg.warmup);
            }
            if window.is_none() && warm_end.is_some_and(|w| now >= w) && !stopping {
                window = Some((now, now + cfg.duration, thread_cpu_ns().unwrap_or(0)));
                sh.measuring = true;
                next_log = now + cfg.interval;
                if let Some(p) = &cfg.log {
                    let base = sh.clock.now() as f64 / 1e9;
                    log = Some(IntervalLog::create(p, base).context("latency log")?);
                }
            }
            if let (Some((start, _, _)), Some(l)) = (window, log.as_mut()) {
                if now >= next_log {
                    let from = next_log - cfg.interval;
                    l.write(&sh.interval, from - start, cfg.interval)?;
                    sh.interval.reset();
                    next_log += cfg.interval;
                }
            }
            if stopping || window.is_some_and(|(_, end, _)| now >= end) {
                // End of the window: the last partial log interval, then close every connection.
                if let Some((start, _, cpu0)) = window {
                    let cpu = thread_cpu_ns().unwrap_or(0).saturating_sub(cpu0);
                    measured = Some((now - start, cpu));
                    // The trailing partial interval, if it holds samples.
                    if let (Some(l), false) = (log.as_mut(), sh.interval.is_empty()) {
                        let from = next_log - cfg.interval;
                        l.write(
                            &sh.interval,
                            from - start,
                            now.saturating_duration_since(from),
                        )?;
                    }
                }
                sh.measuring = false;
                close_by = Some(now + cfg.close_timeout);
                for c in &mut conns {
                    if matches!(c.phase, Phase::Dialing(_)) {
                        c.fail(&mut sh, "stopped before the handshake finished".into());
                    }
                    c.close(poll.registry(), &mut sh);
                }
            }
        }
        if close_by.is_some_and(|by| sh.open == 0 || now >= by) {
            break;
        }
        if now >= next_deadline_scan && sh.pending > 0 {
            next_deadline_scan = now + Duration::from_millis(50);
            for c in &mut conns {
                if now >= c.deadline && matches!(c.phase, Phase::Dialing(_)) {
                    let ms = cfg.connect_timeout.as_millis();
                    c.fail(&mut sh, format!("handshake timeout after {ms} ms"));
                }
            }
        }
        match poll.poll(&mut events, Some(Duration::from_millis(20))) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("poll"),
        }
        for ev in &events {
            if let Some(c) = conns.get_mut(ev.token().0) {
                c.drive(poll.registry(), &mut sh);
            }
        }
    }
    let mut r = sh.r;
    if let Some((len, cpu)) = measured {
        let secs = len.as_secs_f64().max(1e-9);
        r.measured_secs = len.as_secs_f64();
        r.messages_per_sec = r.messages as f64 / secs;
        r.bytes_per_sec = r.bytes as f64 / secs;
        r.cpu_secs = cpu as f64 / 1e9;
        r.cpu_pct = 100.0 * r.cpu_secs / secs;
    }
    let opened = conns.iter().filter(|c| c.opened).map(|c| c.window_messages);
    r.conn_messages_min = opened.clone().min().unwrap_or(0);
    r.conn_messages_max = opened.max().unwrap_or(0);
    r.latency_ns = LatencySummary::of(&sh.hist);
    r.histogram = sh.hist;
    Ok(r)
}

impl std::fmt::Display for LoadgenReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let us = |ns: u64| ns as f64 / 1e3;
        writeln!(f, "tape loadgen: {} clients on {}", self.clients, self.url)?;
        writeln!(
            f,
            "  connections  {} ok, {} failed, {} lost, {} subscribed",
            self.connections_ok, self.connections_failed, self.connections_lost, self.subscribed
        )?;
        writeln!(
            f,
            "  messages     {} in {:.1} s ({:.1}/s), {} bytes ({:.1} MB/s), per connection {}..{}",
            self.messages,
            self.measured_secs,
            self.messages_per_sec,
            self.bytes,
            self.bytes_per_sec / 1e6,
            self.conn_messages_min,
            self.conn_messages_max
        )?;
        writeln!(
            f,
            "  gaps         {} streams, {} jumps, {} messages missed; {} seq regressions",
            self.gap_streams, self.gaps, self.missed, self.seq_regressions
        )?;
        let closes: Vec<String> = self
            .closes
            .iter()
            .map(|(c, n)| format!("{c} x{n}"))
            .collect();
        writeln!(
            f,
            "  errors       {} bad messages, {} error replies, {} io errors; closes by server: {}",
            self.bad_messages,
            self.error_replies,
            self.io_errors,
            if closes.is_empty() {
                "none".into()
            } else {
                closes.join(", ")
            }
        )?;
        for e in &self.errors {
            writeln!(f, "               {e}")?;
        }
        let l = &self.latency_ns;
        writeln!(
            f,
            "  latency us   n={} p50 {:.1} p90 {:.1} p99 {:.1} p99.9 {:.1} max {:.1}",
            l.count,
            us(l.p50),
            us(l.p90),
            us(l.p99),
            us(l.p999),
            us(l.max)
        )?;
        write!(
            f,
            "  loadgen cpu  {:.2} s ({:.1}% of one core)",
            self.cpu_secs, self.cpu_pct
        )
    }
}

/// Runs `tape loadgen` (SIGINT/SIGTERM end it early) and prints the report.
///
/// # Errors
/// What [`run`] refuses, no connection at all, stdout failures.
pub fn cli(cfg: &LoadgenConfig, json: bool) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("install signal handler")?;
    }
    let r = run(cfg, &stop)?;
    let mut out = io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, &r)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{r}")?;
    }
    if r.connections_ok == 0 {
        bail!(
            "no connection succeeded: {}",
            r.errors.first().map_or("", String::as_str)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn scans_the_protocol_documents_messages() {
        let m = r#"{"type":"update","channel":"bbo","market":"usdm","symbol":"BTCUSDT","seq":812,"ts":1723161262573,"recv_ns":1723161262601234567,"data":{"bid":"61800.20","bid_qty":"2.507","ask":"61800.30","ask_qty":"2.510","spread":"0.10","update_id":5123108265240}}"#;
        let e = scan(m).unwrap();
        assert_eq!(
            e,
            Envelope {
                kind: "update",
                channel: Some("bbo"),
                market: Some("usdm"),
                symbol: Some("BTCUSDT"),
                venue: None,
                seq: Some(812),
                recv_ns: Some(1723161262601234567),
            }
        );
        assert!(e.is_stream());
        let m = r#"{"type":"snapshot","channel":"book","market":"usdm","symbol":"BTCUSDT","seq":4410,"ts":1723161262573,"recv_ns":1723161262601234567,"data":{"update_id":5123108265240,"bids":[["61800.20","2.507"]],"asks":[["61800.30","2.510"]]}}"#;
        let e = scan(m).unwrap();
        assert_eq!(
            (e.kind, e.channel, e.seq),
            ("snapshot", Some("book"), Some(4410))
        );
        let m = r#"{"type":"status","channel":"book","market":"spot","symbol":"BTCUSDT","seq":4412,"ts":0,"recv_ns":1723161262611234567,"data":{"stale":true,"reason":"gap"}}"#;
        assert_eq!(scan(m).unwrap().seq, Some(4412));
        let m = r#"{"type":"update","channel":"status","venue":"binance-usdm","market":"usdm","seq":7,"ts":0,"recv_ns":1763895712000000000,"data":{"state":"live","reason":"closed by venue: 1001 going away","seq":99}}"#;
        let e = scan(m).unwrap();
        assert_eq!(
            (e.venue, e.symbol, e.seq),
            (Some("binance-usdm"), None, Some(7))
        );
        let m = r#"{"type":"subscribed","id":1,"subscriptions":[{"channel":"bbo","market":"spot","symbol":"BTCUSDT"}]}"#;
        assert_eq!(scan(m).unwrap().kind, "subscribed");
        let m = r#"{"type":"error","code":4004,"message":"invalid message: expected a JSON object with a \"type\"","id":7}"#;
        assert_eq!(scan(m).unwrap().kind, "error");
        // Not an envelope, an escaped type, a seq that overflows 64 bits, no digits.
        for bad in [
            "",
            "[1]",
            "null",
            r#"{"id":1}"#,
            r#"{"type":"a\"b"}"#,
            r#"{"type":5}"#,
        ] {
            assert!(scan(bad).is_none(), "{bad}");
        }
        let m = r#"{"type":"update","seq":99999999999999999999,"recv_ns":-1}"#;
        assert_eq!(
            (scan(m).unwrap().seq, scan(m).unwrap().recv_ns),
            (None, None)
        );
    }

    #[test]
    fn defaults_are_the_cli_defaults() {
        let c = LoadgenConfig::default();
        assert_eq!((c.clients, c.connect_batch), (100, 64));
        assert_eq!(c.channels, ["bbo", "trades", "book"]);
        assert_eq!(c.symbols, ["BTCUSDT", "ETHUSDT", "BTCUSD_PERP"]);
        assert_eq!(
            (c.duration, c.warmup),
            (Duration::from_secs(10), Duration::from_secs(1))
        );
        assert_eq!(parse_secs("0.25"), Ok(Duration::from_millis(250)));
        assert!(parse_secs("-1").is_err() && parse_secs("inf").is_err());
    }

    #[test]
    fn seq_continuity() {
        let mut s = SeqState::default();
        assert_eq!(s.check(10, false), SeqCheck::Ok); // first: initial snapshot
        assert_eq!(s.check(10, false), SeqCheck::Ok); // a repeated snapshot
        assert_eq!(s.check(11, true), SeqCheck::Ok);
        assert_eq!(
            s.check(14, true),
            SeqCheck::Gap {
                missed: 2,
                first: true
            }
        );
        assert_eq!(
            s.check(20, false),
            SeqCheck::Gap {
                missed: 5,
                first: false
            }
        );
        assert_eq!(s.check(20, true), SeqCheck::Regression);
        assert_eq!(s.check(3, false), SeqCheck::Regression);
        assert_eq!(s.check(4, true), SeqCheck::Ok);
        assert_eq!(
            s.check(u64::MAX, true),
            SeqCheck::Gap {
                missed: u64::MAX - 5,
                first: false
            }
        );
        assert_eq!(s.check(u64::MAX, true), SeqCheck::Regression);
    }

    #[test]
    fn reads_this_threads_cpu_time() {
        let a = thread_cpu_ns().unwrap();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_add(std::hint::black_box(i));
        }
        assert!(x > 0);
        assert!(thread_cpu_ns().unwrap() >= a);
    }

    proptest! {
        #[test]
        fn scan_never_panics(s in any::<String>()) {
            let _ = scan(&s);
        }

        #[test]
        fn scan_never_panics_on_near_envelopes(
            s in r#"\{("(type|seq|recv_ns|channel|data|symbol)":?[" 0-9a-z\\{]{0,6}){0,8}"#,
        ) {
            if let Some(e) = scan(&s) {
                prop_assert!(!e.kind.contains('"'));
            }
        }
    }
}
