//! `tape loadgen`: many WebSocket clients on one thread, measuring tick-to-client latency.
//!
//! N client connections (default 100) run on a single `mio::Poll` with non-blocking sockets:
//! TCP connect, optional rustls, and the client handshake (tape-node's `Dial`) are resumed
//! across `WouldBlock`. At most `connect_batch` handshakes are in flight at once, so the server's
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
//! Messages are checked without parsing JSON, and gaps are counted per stream: see [`scan`]
//! and [`SeqState`] (`envelope`).
//!
//! One idea per file: `config` (the flags), `client` (one connection's state machine and the
//! counters all of them share), `envelope` (reading a message's envelope, `seq` continuity),
//! `report` (the report, the latency log, CPU time); this file is the run loop.

mod client;
mod config;
mod envelope;
mod report;

use std::io::{self, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use rustls::pki_types::ServerName;
use tape_core::metrics::MAX_LATENCY_NS;
use tape_node::live::{client_tls_config, DialTarget, WsUrl};
use tungstenite::protocol::WebSocketConfig;

pub use config::LoadgenConfig;
pub use envelope::{scan, Envelope, SeqCheck, SeqState};
pub use report::{thread_cpu_ns, LatencySummary, LoadgenReport};

use client::{Conn, Shared};
use config::validate;
use report::IntervalLog;

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
    let target = DialTarget {
        url: cfg.url.clone(),
        tls,
        user_agent: None,
        config: WebSocketConfig::default().read_buffer_size(16 * 1024),
    };
    let subscribe = serde_json::json!({"type": "subscribe", "id": 1,
        "channels": cfg.channels, "symbols": cfg.symbols})
    .to_string();
    let report = LoadgenReport::new(cfg.url.clone(), cfg.clients, hist);
    let mut sh = Shared::new(target, subscribe, report);
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
            let mut c = Conn::new(now + cfg.connect_timeout);
            let token = Token(conns.len());
            match TcpStream::connect(addr).and_then(|mut s| {
                poll.registry()
                    .register(&mut s, token, Interest::READABLE | Interest::WRITABLE)
                    .map(|()| s)
            }) {
                Ok(s) => {
                    let target = sh.target.clone();
                    c.dial(s, &target, &mut sh);
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
                    if c.is_dialing() {
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
                if c.handshake_overdue(now) {
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
