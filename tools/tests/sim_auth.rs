//! The simulator's strict WebSocket API authentication over loopback: requests signed by this
//! test with `tape_core::sign` (whose rule is checked against Binance's documented examples
//! and an independent verifier in its own tests), the wall clock for timestamps, and every
//! refusal with Binance's code and status. Bounded waits; the sim stops when its handle drops.

mod support;

use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};
use support::{next_text, root};
use tape_core::instrument::Market;
use tape_core::sign::{payload_of, Ed25519Key, HmacKey, Signer};
use tape_tools::sim::{ApiKeys, SimAuth, SimConfig, SimHandle, VenueSim};
use tungstenite::{Message, WebSocket};

const WAIT: Duration = Duration::from_secs(15);
const HMAC_KEY: &str = "hmacKey1";
const HMAC_SECRET: &[u8] = b"a-secret-of-the-hmac-key";
const ED_KEY: &str = "edKey1";

fn ed() -> Ed25519Key {
    Ed25519Key::from_seed(&[5; 32])
}

fn hmac() -> Signer {
    Signer::Hmac(HmacKey::new(HMAC_SECRET))
}

struct Sim {
    handle: SimHandle,
    _dir: tempfile::TempDir,
}

fn start(auth: SimAuth) -> Sim {
    let dir = tempfile::tempdir().unwrap();
    let handle = VenueSim::start(SimConfig {
        journal: root().join("fixtures/session"),
        cert_dir: dir.path().join("certs"),
        repeat: false,
        tls: false,
        auth,
        ..SimConfig::default()
    })
    .expect("sim starts");
    Sim { handle, _dir: dir }
}

fn strict() -> Sim {
    let keys = ApiKeys::new()
        .with_hmac(HMAC_KEY, HMAC_SECRET)
        .unwrap()
        .with_ed25519(ED_KEY, ed().public())
        .unwrap();
    start(SimAuth::Strict(keys))
}

type Ws = WebSocket<TcpStream>;

impl Sim {
    fn api(&self) -> Ws {
        let e = self.handle.endpoint(Market::Spot).unwrap();
        let tcp = TcpStream::connect(e.addr).unwrap();
        tcp.set_read_timeout(Some(WAIT)).unwrap();
        let (ws, _) = tungstenite::client(e.api_url.as_str(), tcp).expect("ws handshake");
        ws
    }
}

fn call(ws: &mut Ws, id: u64, method: &str, params: Map<String, Value>) -> Value {
    ws.send(Message::text(
        json!({"id": id, "method": method, "params": params}).to_string(),
    ))
    .unwrap();
    loop {
        let v: Value = serde_json::from_str(&next_text(ws)).unwrap();
        if v.get("subscriptionId").is_none() {
            assert_eq!(v["id"], json!(id), "{v}");
            return v;
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

/// `params` with `signature` added: the payload of every parameter as sent.
fn signed(mut params: Map<String, Value>, signer: &Signer) -> Map<String, Value> {
    let pairs: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().map_or_else(|| v.to_string(), str::to_owned),
            )
        })
        .collect();
    params.insert("signature".into(), signer.sign(&payload_of(&pairs)).into());
    params
}

fn order(id: &str) -> Map<String, Value> {
    obj(
        json!({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
               "quantity": "0.00100000", "price": "1.00", "newClientOrderId": id}),
    )
}

fn with(mut p: Map<String, Value>, extra: Value) -> Map<String, Value> {
    p.extend(obj(extra));
    p
}

fn error(v: &Value) -> (u64, i64, String) {
    (
        v["status"].as_u64().unwrap_or(0),
        v["error"]["code"].as_i64().unwrap_or(0),
        v["error"]["msg"].as_str().unwrap_or("").to_owned(),
    )
}

#[test]
fn signed_orders_pass_and_bad_ones_get_binances_errors() {
    let sim = strict();
    let mut ws = sim.api();
    let ts = now_ms();

    let p = signed(
        with(
            order("hmac-1"),
            json!({"apiKey": HMAC_KEY, "timestamp": ts}),
        ),
        &hmac(),
    );
    let r = call(&mut ws, 1, "order.place", p);
    assert_eq!(
        (&r["status"], &r["result"]["status"]),
        (&json!(200), &json!("NEW")),
        "{r}"
    );

    let ed_signer = Signer::Ed25519(ed());
    let p = signed(
        with(
            order("ed-1"),
            json!({"apiKey": ED_KEY, "timestamp": ts, "recvWindow": 10000}),
        ),
        &ed_signer,
    );
    let r = call(&mut ws, 2, "order.place", p);
    assert_eq!(r["status"], 200, "{r}");

    // A signature by the wrong secret.
    let p = signed(
        with(order("bad-1"), json!({"apiKey": HMAC_KEY, "timestamp": ts})),
        &Signer::Hmac(HmacKey::new(b"not the secret")),
    );
    let r = call(&mut ws, 3, "order.place", p);
    assert_eq!(
        error(&r),
        (
            400,
            -1022,
            "Signature for this request is not valid.".into()
        ),
        "{r}"
    );

    // A correct signature over a stale timestamp.
    let p = signed(
        with(
            order("old-1"),
            json!({"apiKey": HMAC_KEY, "timestamp": ts - 60_000}),
        ),
        &hmac(),
    );
    let r = call(&mut ws, 4, "order.place", p);
    assert_eq!(
        error(&r),
        (
            400,
            -1021,
            "Timestamp for this request is outside of the recvWindow.".into()
        ),
        "{r}"
    );

    // An unknown key, and no key at all.
    let p = signed(
        with(order("who-1"), json!({"apiKey": "nobody", "timestamp": ts})),
        &hmac(),
    );
    let r = call(&mut ws, 5, "order.place", p);
    assert_eq!((error(&r).0, error(&r).1), (401, -2015), "{r}");
    let r = call(
        &mut ws,
        6,
        "order.place",
        with(order("none-1"), json!({"timestamp": ts})),
    );
    assert_eq!(error(&r).1, -1102, "{r}");

    // Public methods need nothing; `time` is the wall clock.
    let r = call(&mut ws, 7, "time", Map::new());
    let server = r["result"]["serverTime"].as_u64().unwrap();
    assert!(server.abs_diff(now_ms()) < 60_000, "{r}");

    // The sim publishes its counters at the end of each loop turn; the `time` round trip
    // above came after the turns that counted these.
    let s = sim.handle.stats();
    assert_eq!((s.orders_placed, s.auth_refused), (2, 4), "{s:?}");
}

#[test]
fn session_logon_lets_requests_leave_out_key_and_signature() {
    let sim = strict();
    let mut ws = sim.api();
    let ts = now_ms();

    // Before logon: an unsigned order and the logon's own subscription are refused.
    let r = call(
        &mut ws,
        1,
        "order.place",
        with(order("pre-1"), json!({"timestamp": ts})),
    );
    assert_eq!(error(&r).1, -1102, "{r}");
    let r = call(&mut ws, 2, "userDataStream.subscribe", Map::new());
    assert_eq!((error(&r).0, error(&r).1), (401, -1002), "{r}");

    // An HMAC key cannot log on.
    let r = call(
        &mut ws,
        3,
        "session.logon",
        signed(obj(json!({"apiKey": HMAC_KEY, "timestamp": ts})), &hmac()),
    );
    assert_eq!(error(&r).1, -1022, "{r}");

    let logon = signed(
        obj(json!({"apiKey": ED_KEY, "timestamp": ts})),
        &Signer::Ed25519(ed()),
    );
    let r = call(&mut ws, 4, "session.logon", logon);
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["result"]["apiKey"], ED_KEY, "{r}");
    assert!(r["result"]["authorizedSince"].as_u64().is_some(), "{r}");
    assert_eq!(r["result"]["userDataStream"], false, "{r}");

    // Now a timestamp is all an order needs; without one it is refused.
    let r = call(
        &mut ws,
        5,
        "order.place",
        with(order("on-1"), json!({"timestamp": now_ms()})),
    );
    assert_eq!(
        (&r["status"], &r["result"]["status"]),
        (&json!(200), &json!("NEW")),
        "{r}"
    );
    let r = call(&mut ws, 6, "order.place", order("on-2"));
    assert_eq!(error(&r).1, -1102, "{r}");

    let r = call(&mut ws, 7, "userDataStream.subscribe", Map::new());
    assert_eq!(r["status"], 200, "{r}");
    let r = call(&mut ws, 8, "session.status", Map::new());
    assert_eq!(
        (&r["result"]["apiKey"], &r["result"]["userDataStream"]),
        (&json!(ED_KEY), &json!(true)),
        "{r}"
    );

    // Logout forgets the key and ends the logon's subscription.
    let r = call(&mut ws, 9, "session.logout", Map::new());
    assert_eq!(
        (&r["result"]["apiKey"], &r["result"]["userDataStream"]),
        (&Value::Null, &json!(false)),
        "{r}"
    );
    let r = call(
        &mut ws,
        10,
        "order.place",
        with(order("off-1"), json!({"timestamp": now_ms()})),
    );
    assert_eq!(error(&r).1, -1102, "{r}");

    // A subscription by signature needs no logon (and survives none).
    let p = signed(
        obj(json!({"apiKey": HMAC_KEY, "timestamp": now_ms()})),
        &hmac(),
    );
    let r = call(&mut ws, 11, "userDataStream.subscribe.signature", p);
    assert_eq!(r["status"], 200, "{r}");
    assert!(r["result"]["subscriptionId"].as_u64().is_some(), "{r}");
}

#[test]
fn lenient_mode_checks_nothing_and_the_default_refuses_everyone() {
    let sim = start(SimAuth::Lenient);
    let mut ws = sim.api();
    let r = call(&mut ws, 1, "order.place", order("l-1"));
    assert_eq!(r["status"], 200, "{r}");
    let r = call(&mut ws, 2, "userDataStream.subscribe", Map::new());
    assert_eq!(r["status"], 200, "{r}");
    drop(ws);
    drop(sim);

    // `SimConfig::default()` is strict with no keys.
    let sim = start(SimConfig::default().auth);
    let mut ws = sim.api();
    let p = signed(
        with(
            order("d-1"),
            json!({"apiKey": HMAC_KEY, "timestamp": now_ms()}),
        ),
        &hmac(),
    );
    let r = call(&mut ws, 1, "order.place", p);
    assert_eq!((error(&r).0, error(&r).1), (401, -2015), "{r}");
}
