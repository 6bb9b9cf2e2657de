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
    /// JetStream's file storage limit (`max_file_store`); `None`: the server's default,
    /// three quarters of the disk's free space when it starts.
    pub max_file_store: Option<u64>,
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
        Nats::start_with(None)
    }

    /// A nats-server whose JetStream may keep at most `max_file_store` bytes on file.
    pub fn start_with(max_file_store: Option<u64>) -> Nats {
        let mut n = Nats {
            child: None,
            port: free_port(),
            store: tempfile::tempdir().unwrap(),
            max_file_store,
        };
        n.spawn();
        n
    }

    pub fn spawn(&mut self) {
        let bin = std::env::var("NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
        let mut cmd = Command::new(&bin);
        cmd.args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string()]);
        let data = self.store.path().join("data");
        match self.max_file_store {
            // No command-line flag sets the limit: a configuration file does.
            Some(max) => {
                let conf = self.store.path().join("nats.conf");
                let jetstream = format!(
                    "jetstream {{ store_dir: {:?}, max_file_store: {max} }}\n",
                    data.display().to_string()
                );
                std::fs::write(&conf, jetstream).unwrap();
                cmd.arg("-c").arg(conf);
            }
            None => {
                cmd.arg("-sd").arg(data);
            }
        }
        let child = cmd
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
        // The default, 8 GiB, is more than JetStream reserves on a host with under ~11 GiB
        // of free disk (its default limit is three quarters of that): JetStream would refuse
        // the stream. The session's stream takes ~3 MB.
        c.nats.max_mib = 64;
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
