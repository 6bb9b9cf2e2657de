//! Test support: a loopback HTTP/HTTPS server on a thread and a self-signed TLS pair.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rustls::StreamOwned;

/// A server-side stream (plain or TLS) for test handlers.
pub(crate) trait Rw: Read + Write {}
impl<T: Read + Write> Rw for T {}

/// A one-connection-at-a-time loopback server; dropping it stops and joins its thread.
pub(crate) struct Server {
    pub addr: SocketAddr,
    pub accepts: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves each accepted connection with `handler(connection index, stream)`.
    pub(crate) fn start(
        tls: Option<Arc<rustls::ServerConfig>>,
        handler: impl Fn(usize, &mut dyn Rw) + Send + 'static,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accepts = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s) = (accepts.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for tcp in listener.incoming() {
                let Ok(mut tcp) = tcp else { continue };
                if s.load(SeqCst) {
                    break;
                }
                let i = a.fetch_add(1, SeqCst);
                tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                tcp.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
                tcp.set_nodelay(true).unwrap();
                match &tls {
                    None => handler(i, &mut tcp),
                    Some(cfg) => {
                        let conn = rustls::ServerConnection::new(cfg.clone()).unwrap();
                        handler(i, &mut StreamOwned::new(conn, tcp));
                    }
                }
            }
        });
        Server {
            addr,
            accepts,
            stop,
            thread: Some(thread),
        }
    }

    pub(crate) fn url(&self, scheme: &str, target: &str) -> String {
        format!("{scheme}://{}{target}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request head; `None` at end of stream or error.
pub(crate) fn read_request(s: &mut dyn Rw) -> Option<String> {
    let (mut buf, mut chunk) = (Vec::new(), [0u8; 1024]);
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut chunk).ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(buf).ok()
}

/// A server config for a self-signed "localhost"/127.0.0.1 certificate, and a client config
/// trusting it (kept in the returned temp dir).
pub(crate) fn tls_pair() -> (
    Arc<rustls::ServerConfig>,
    Arc<rustls::ClientConfig>,
    tempfile::TempDir,
) {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let ck = rcgen::generate_simple_self_signed(names).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let server = crate::net::load_tls_config(&cert, &key).unwrap();
    let client = crate::live::client_tls_config(false, Some(&cert)).unwrap();
    (server, client, dir)
}
