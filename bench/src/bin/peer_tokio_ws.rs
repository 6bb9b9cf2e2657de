//! A peer for the latency lab: the minimal WebSocket broadcast server a user would write with
//! tokio and tokio-tungstenite, fed by the same recorded session as tape
//! ([`tape_bench::fanout_peer`] describes what it does and does not do).
//!
//!     peer_tokio_ws --listen 127.0.0.1:PORT --journal DIR [--speed N] [--seconds S] [--capacity C]
//!
//! The first line on stdout is `peer serving ws://ADDR/ws` (with the bound address, so
//! `--listen 127.0.0.1:0` works). After S seconds (default 10) it prints one JSON line (the
//! [`tape_bench::fanout_peer::PeerReport`]) and exits 0. Bad arguments or an unreadable
//! journal exit 2 or 1 with a one-line message on stderr.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tape_bench::fanout_peer::{serve, PeerOptions};

const USAGE: &str =
    "usage: peer_tokio_ws --listen ADDR --journal DIR [--speed N] [--seconds S] [--capacity C]";

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<(PeerOptions, u64), String> {
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
    let opts = PeerOptions {
        listen: listen.ok_or("--listen is required")?,
        journal: journal.ok_or("--journal is required")?,
        speed,
        capacity,
    };
    Ok((opts, seconds))
}

fn main() -> std::process::ExitCode {
    let (opts, seconds) = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("peer_tokio_ws: {e}\n{USAGE}");
            return std::process::ExitCode::from(2);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let timer = Arc::clone(&stop);
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(seconds));
        timer.store(true, Ordering::Relaxed);
    });
    let res = serve(&opts, &stop, |addr| {
        let mut out = std::io::stdout().lock();
        // A closed stdout only loses the address line; the server still runs its course.
        let _ = writeln!(out, "peer serving ws://{addr}/ws");
        let _ = out.flush();
    });
    match res.and_then(|r| serde_json::to_string(&r).map_err(|e| e.to_string())) {
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
