//! `tape run` with `server.tls_cert`/`tls_key`: wss:// subscriptions and https:// status
//! through a rustls client that trusts only the test's self-signed certificate.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{ClientConfig, ClientConnection, StreamOwned};
use rustls_pki_types::ServerName;
use tape_tools::config::Config;
use tungstenite::Message;

const WAIT: Duration = Duration::from_secs(20);

fn client_config(cert: &std::path::Path) -> Arc<ClientConfig> {
    // The same trust set-up as tape's own venue client.
    tape_node::live::client_tls_config(false, Some(cert)).unwrap()
}

fn tls(
    addr: std::net::SocketAddr,
    cfg: &Arc<ClientConfig>,
) -> StreamOwned<ClientConnection, TcpStream> {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let conn =
        ClientConnection::new(cfg.clone(), ServerName::try_from("localhost").unwrap()).unwrap();
    StreamOwned::new(conn, tcp)
}

#[test]
fn wss_and_https_from_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let conf = dir.path().join("tape.toml");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    std::fs::write(
        &conf,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ntls_cert = {:?}\ntls_key = {:?}\nstatus_interval_secs = 0\n[feed]\njournal = {:?}\nspeed = 20\n\
             [replay]\npublic = true\njournals = [{{ name = \"s\", dir = {:?} }}]\n",
            cert.display().to_string(),
            key.display().to_string(),
            root.join("fixtures/session").display().to_string(),
            root.join("fixtures/session").display().to_string()
        ),
    )
    .unwrap();
    let cfg = Config::load(&conf).unwrap();
    let ncfg = tape_tools::run::node_config(&cfg).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let s2 = Arc::clone(&stop);
    let node = std::thread::spawn(move || {
        let mut node = tape_node::node::Node::bind(ncfg).unwrap();
        tx.send(node.local_addr().expect("listening")).unwrap();
        node.run(&s2, 0, |_| {})
    });
    let addr = rx.recv_timeout(WAIT).unwrap();
    let client = client_config(&cert);

    // https:// status
    let mut s = tls(addr, &client);
    write!(
        s,
        "GET /status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    let _ = s.read_to_string(&mut body); // the server ends with close_notify or a FIN
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("\"latency_ns\""), "{body}");

    // Replay is not served over TLS (its socket would move to a thread without its TLS
    // state): refused clearly.
    let mut s = tls(addr, &client);
    write!(
        s,
        "GET /replay.ndjson?journal=s&channels=trades HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    assert!(body.starts_with("HTTP/1.1 501"), "{body}");
    assert!(body.contains("not served over TLS"), "{body}");

    // wss:// subscription with market data
    let (mut ws, _) = tungstenite::client("wss://localhost/ws", tls(addr, &client)).unwrap();
    ws.send(Message::text(
        r#"{"type":"subscribe","id":1,"channels":["bbo"],"symbols":["spot:BTCUSDT"]}"#,
    ))
    .unwrap();
    let deadline = Instant::now() + WAIT;
    let mut got_data = false;
    while !got_data {
        assert!(Instant::now() < deadline, "no data over wss");
        if let Message::Text(t) = ws.read().unwrap() {
            let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
            got_data = v["channel"] == "bbo";
        }
    }
    // A plain-text client on the TLS port is refused without harming the server.
    let mut plain = TcpStream::connect(addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = plain.write_all(b"GET /status HTTP/1.1\r\n\r\n");
    let mut buf = [0u8; 64];
    let n = plain.read(&mut buf).unwrap_or(0);
    assert!(!String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    stop.store(true, Ordering::Relaxed);
    drop(ws);
    node.join().unwrap().unwrap();
}
