//! Shared by the integration tests: the repository root and a node on a background thread.
#![allow(dead_code)] // each test binary uses a different part

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tape_tools::config::Config;
use tape_tools::run::node_config;

const WAIT: Duration = Duration::from_secs(20);

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A node on a background thread; stopped and joined on drop.
pub struct Server {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<std::io::Result<()>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.join()
                .expect("node thread")
                .expect("node loop ends cleanly");
        }
    }
}

pub fn start(edit: impl FnOnce(&mut Config)) -> Server {
    let mut cfg = Config::default();
    cfg.server.listen = "127.0.0.1:0".into();
    cfg.server.status_interval_secs = 0;
    cfg.feed.journal = root().join("fixtures/session").display().to_string();
    cfg.feed.speed = 20;
    edit(&mut cfg);
    cfg.validate().unwrap();
    let ncfg = node_config(&cfg).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let s2 = Arc::clone(&stop);
    let handle = std::thread::spawn(move || {
        let mut node = tape_node::node::Node::bind(ncfg)?;
        tx.send(node.local_addr().expect("listening")).unwrap();
        node.run(&s2, 0, |_| {})
    });
    let addr = rx.recv_timeout(WAIT).expect("node binds");
    Server {
        addr,
        stop,
        handle: Some(handle),
    }
}

/// `GET target` with `Connection: close` over an open stream (plain or TLS): the status and
/// the body. The stream's read timeout bounds the wait.
pub fn http_get(mut s: impl std::io::Read + std::io::Write, target: &str) -> (u16, String) {
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response");
    (head[9..12].parse().unwrap(), body.to_owned())
}
