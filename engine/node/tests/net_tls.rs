//! `tape_node::net` with TLS: a self-signed certificate made with rcgen, a rustls client, and
//! the config loader's errors.

mod net_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use net_support::*;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use tape_node::net::{load_tls_config, NetConfig, NetEvent, TlsConfigError};
use tungstenite::Message;

struct Pki {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
}

fn self_signed() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    Pki {
        _dir: dir,
        cert,
        key,
    }
}

fn client_config(cert: &Path) -> Arc<ClientConfig> {
    // The same trust set-up as tape's own venue client.
    tape_node::live::client_tls_config(false, Some(cert)).unwrap()
}

fn tls_stream(
    addr: SocketAddr,
    cfg: &Arc<ClientConfig>,
) -> StreamOwned<ClientConnection, TcpStream> {
    let conn =
        ClientConnection::new(cfg.clone(), ServerName::try_from("localhost").unwrap()).unwrap();
    StreamOwned::new(conn, tcp(addr))
}

fn tls_harness(pki: &Pki) -> Harness {
    let cfg = NetConfig {
        tls: Some(load_tls_config(&pki.cert, &pki.key).expect("load_tls_config")),
        ..NetConfig::default()
    };
    Harness::start(cfg, echo_handler())
}

#[test]
fn wss_messages_and_https_status() {
    let pki = self_signed();
    let h = tls_harness(&pki);
    let ccfg = client_config(&pki.cert);

    let (mut ws, resp) =
        tungstenite::client("wss://localhost/ws", tls_stream(h.addr(), &ccfg)).expect("wss");
    assert_eq!(resp.status(), 101);
    let id = match h.wait_event("Open", |e| matches!(e, NetEvent::Open { .. })) {
        NetEvent::Open { conn, .. } => conn,
        _ => unreachable!(),
    };
    for i in 0..50 {
        ws.send(Message::text(format!("m{i}"))).unwrap();
        assert_eq!(ws.read().unwrap(), Message::text(format!("echo:m{i}")));
    }
    // A message bigger than one TLS record, pushed by the server.
    let big = "y".repeat(100_000);
    let big2 = big.clone();
    h.run(move |s, r| s.send(r, id, big2.into()));
    assert_eq!(ws.read().unwrap(), Message::text(big));

    let mut https = tls_stream(h.addr(), &ccfg);
    https
        .write_all(b"GET /status HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut resp = Vec::new();
    // The server ends with close_notify, so this is a clean EOF.
    https.read_to_end(&mut resp).unwrap();
    let resp = String::from_utf8(resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
    assert!(resp.ends_with("{\"ok\":true}"), "{resp}");

    ws.close(None).unwrap();
    h.wait_event(
        "Closed",
        |e| matches!(e, NetEvent::Closed { conn, .. } if *conn == id),
    );
    assert_eq!(h.stats().tls_errors, 0);
}

#[test]
fn plaintext_on_the_tls_port_is_a_tls_error_not_a_crash() {
    let pki = self_signed();
    let h = tls_harness(&pki);
    let resp = http_exchange(h.addr(), b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(!resp.contains("HTTP/1.1"), "no plaintext answer: {resp:?}");
    h.wait_until("tls error counted", |s| s.stats().tls_errors == 1);
    // The loop still serves TLS clients.
    let ccfg = client_config(&pki.cert);
    let (mut ws, _) =
        tungstenite::client("wss://localhost/ws", tls_stream(h.addr(), &ccfg)).expect("wss");
    ws.send(Message::text("still here")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("echo:still here"));
}

#[test]
fn untrusted_client_fails_the_handshake_and_is_counted() {
    let pki = self_signed();
    let h = tls_harness(&pki);
    // The client trusts a different certificate: it aborts the handshake with an alert.
    let other = self_signed();
    let ccfg = client_config(&other.cert);
    let err = tungstenite::client("wss://localhost/ws", tls_stream(h.addr(), &ccfg));
    assert!(err.is_err());
    h.wait_until("tls error counted", |s| s.stats().tls_errors == 1);
    h.wait_until("socket gone", |s| s.connection_count() == 0);
}

#[test]
fn load_tls_config_errors_name_the_file() {
    let pki = self_signed();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "this is not PEM\n").unwrap();
    let broken = dir.path().join("broken.pem");
    std::fs::write(&broken, "-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap();

    let err = load_tls_config(&missing, &pki.key).unwrap_err();
    assert!(
        matches!(&err, TlsConfigError::Read { path, kind: std::io::ErrorKind::NotFound, .. } if *path == missing),
        "{err:?}"
    );
    assert!(err.to_string().contains("missing.pem"), "{err}");

    let err = load_tls_config(&garbage, &pki.key).unwrap_err();
    assert_eq!(
        err,
        TlsConfigError::NoCertificate {
            path: garbage.clone()
        }
    );
    assert!(err.to_string().contains("garbage.pem"), "{err}");

    let err = load_tls_config(&broken, &pki.key).unwrap_err();
    assert!(
        matches!(&err, TlsConfigError::BadPem { path, .. } if *path == broken),
        "{err:?}"
    );

    let err = load_tls_config(&pki.cert, &garbage).unwrap_err();
    assert_eq!(
        err,
        TlsConfigError::NoPrivateKey {
            path: garbage.clone()
        }
    );

    // A key that doesn't match the certificate.
    let other = self_signed();
    let err = load_tls_config(&pki.cert, &other.key).unwrap_err();
    assert!(matches!(err, TlsConfigError::Rejected { .. }), "{err:?}");
}
