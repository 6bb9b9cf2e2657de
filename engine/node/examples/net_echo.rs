//! A WebSocket echo server on `tape_node::net`, for Autobahn (`.ci/autobahn.sh`) and manual
//! poking.
//!
//! ```text
//! cargo run -p tape-node --release --example net_echo -- [PORT] [--seconds N] [--echo-path PATH]
//! ```
//!
//! Binds `127.0.0.1:PORT` (default 9001; 0 picks a free port) and prints `listening on
//! ws://ADDR`. The echo endpoint (default `/`) echoes text and binary messages; `/ws` is the
//! client endpoint, whose text messages this loop echoes through `NetServer::send`; `GET
//! /status` answers the counters, anything else 404. It stops by itself after `--seconds`
//! (default 600) with a 1001 close to every client; SIGINT/SIGTERM end it at once (their
//! default action), so it never outlives its caller.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use mio::{Events, Poll};
use tape_node::net::{NetConfig, NetEvent, NetServer};

const POLL_TIMEOUT: Duration = Duration::from_millis(50);
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

struct Args {
    port: u16,
    seconds: u64,
    echo_path: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        port: 9001,
        seconds: 600,
        echo_path: "/".to_owned(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seconds" => {
                let v = it.next().ok_or("--seconds needs a value")?;
                args.seconds = v.parse().map_err(|e| format!("--seconds {v}: {e}"))?;
            }
            "--echo-path" => args.echo_path = it.next().ok_or("--echo-path needs a value")?,
            "-h" | "--help" => {
                return Err("usage: net_echo [PORT] [--seconds N] [--echo-path PATH]".into())
            }
            port => args.port = port.parse().map_err(|e| format!("port {port}: {e}"))?,
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("net_echo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> std::io::Result<()> {
    let mut poll = Poll::new()?;
    let cfg = NetConfig {
        echo_path: Some(args.echo_path.clone()),
        ..NetConfig::default()
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    let mut server = NetServer::bind(addr, cfg, poll.registry(), 0)?;
    println!("listening on ws://{}", server.local_addr());
    std::io::stdout().flush()?;

    let start = Instant::now();
    let stop_at = start + Duration::from_secs(args.seconds);
    let mut shutdown_at: Option<Instant> = None;
    let mut events = Events::with_capacity(1024);
    let mut out = Vec::new();
    loop {
        poll.poll(&mut events, Some(POLL_TIMEOUT))?;
        let now = Instant::now();
        let now_ns = now.duration_since(start).as_nanos() as u64;
        for event in events.iter() {
            if server.owns(event.token()) {
                server.handle_event(poll.registry(), event, now_ns, &mut out);
            }
        }
        server.tick(poll.registry(), now_ns, &mut out);
        for ev in out.drain(..) {
            match ev {
                NetEvent::Http { conn, path, .. } if path == "/status" => {
                    let body = format!("{:?}\n", server.stats());
                    server.respond_http(poll.registry(), conn, 200, "text/plain", body.as_bytes());
                }
                NetEvent::Http { conn, .. } => {
                    server.respond_http(poll.registry(), conn, 404, "text/plain", b"not found\n");
                }
                NetEvent::Text { conn, text } => {
                    server.send(poll.registry(), conn, text);
                }
                _ => {}
            }
        }
        match shutdown_at {
            None if now >= stop_at => {
                server.shutdown(poll.registry());
                shutdown_at = Some(now);
            }
            Some(t) if server.connection_count() == 0 || now >= t + SHUTDOWN_GRACE => break,
            _ => {}
        }
    }
    eprintln!(
        "net_echo: stopped after {:?}: {:?}",
        start.elapsed(),
        server.stats()
    );
    Ok(())
}
