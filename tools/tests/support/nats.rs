//! What the NATS tests share: a real nats-server, an origin and edges, their `/status`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tape_tools::config::{Config, FeedKind};

use super::private::http_get;
use super::{root, start, Server};

pub const WAIT: Duration = Duration::from_secs(60);

/// A nats-server with JetStream on a free loopback port and a temporary store; killed on drop.
pub struct Nats {
    child: Option<Child>,
    pub port: u16,
    store: tempfile::TempDir,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Nats {
    pub fn start() -> Nats {
        let mut n = Nats {
            child: None,
            port: free_port(),
            store: tempfile::tempdir().unwrap(),
        };
        n.spawn();
        n
    }

    pub fn spawn(&mut self) {
        let bin = std::env::var("NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
        let child = Command::new(&bin)
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{bin}: {e} (install nats-server or set NATS_SERVER)"));
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server does not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Records in the bundled session.
pub fn session_records() -> u64 {
    let mut r = tape_journal::JournalReader::open(root().join("fixtures/session")).unwrap();
    let mut n = 0;
    while let Some(rec) = r.next() {
        rec.unwrap();
        n += 1;
    }
    n
}

/// The origin: the bundled session once at `speed`, journaled into `record`, publishing.
pub fn origin(url: &str, speed: u32, record: &Path) -> Server {
    origin_with(url, speed, record, |_| {})
}

/// [`origin`] with more settings.
pub fn origin_with(url: &str, speed: u32, record: &Path, edit: impl FnOnce(&mut Config)) -> Server {
    let url = url.to_owned();
    let record = record.to_owned();
    start(move |c| {
        edit(c);
        c.feed.speed = speed;
        c.feed.repeat = false;
        c.feed.record = record.display().to_string();
        c.nats.enabled = true;
        c.nats.url = url;
    })
}

/// An edge following `url`; returns once it knows the instruments (it applied records).
pub fn edge(url: &str) -> Server {
    edge_with(url, |_| {})
}

/// [`edge`] with more settings.
pub fn edge_with(url: &str, edit: impl FnOnce(&mut Config)) -> Server {
    let url = url.to_owned();
    start(move |c| {
        edit(c);
        c.feed.source = FeedKind::Nats;
        c.nats.url = url;
    })
}

pub fn status(addr: SocketAddr) -> Value {
    http_get(addr, "/status", None).1
}

pub fn digest(addr: SocketAddr) -> String {
    status(addr)["feed"]["digest"].as_str().unwrap().to_owned()
}

/// Polls `/status` until `pred` holds (bounded).
pub fn wait_status(addr: SocketAddr, what: &str, mut pred: impl FnMut(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let s = status(addr);
        if pred(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{what}: {}", s["nats"]);
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the origin published the whole session and JetStream took it.
pub fn origin_done(addr: SocketAddr, records: u64) {
    wait_status(addr, "origin publishes the session", |s| {
        s["nats"]["acked"] == records
    });
}

/// Waits until an edge applied `records` and is live.
pub fn edge_done(addr: SocketAddr, records: u64) -> Value {
    wait_status(addr, "edge applies the session and is live", |s| {
        s["nats"]["applied"] == records && s["nats"]["state"] == "live"
    })
}
