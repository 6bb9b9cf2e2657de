//! The venue simulator over loopback: real sockets, real TLS (a rustls client trusting the
//! written `cert.pem`), blocking tungstenite clients. Every wait is bounded; every sim stops
//! when its handle drops.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rustls::{ClientConfig, ClientConnection, StreamOwned};
use rustls_pki_types::ServerName;
use serde_json::value::RawValue;
use support::{next_text, root};
use tape_core::book::{BookSync, SyncLimits};
use tape_core::decode::{DecodeCtx, Decoder};
use tape_core::engine::{Engine, EngineConfig};
use tape_core::input::{Nanos, RecordKind, SourceDef, SourceId};
use tape_core::instrument::{Market, Registry};
use tape_core::msg::{Level, MarketMsg, Side};
use tape_tools::sim::{Fault, SimAuth, SimConfig, SimHandle, VenueSim};
use tungstenite::{Message, WebSocket};

const WAIT: Duration = Duration::from_secs(15);

// ---- the journal, read independently of the sim --------------------------------------------

/// The best 5 bids and asks of a book.
type Top = (Vec<Level>, Vec<Level>);

/// One ws frame of the bundled session.
struct JFrame {
    recv_ns: u64,
    market: Market,
    /// Lower-case stream name without the depth speed.
    key: String,
    payload: String,
}

struct Session {
    first_ns: u64,
    frames: Vec<JFrame>,
    /// Per (market, symbol): update id -> top 5 levels per side of the replayed book.
    tops: BTreeMap<(Market, String), BTreeMap<u64, Top>>,
}

fn key_of(stream: &str) -> String {
    let s = stream.to_ascii_lowercase();
    match s.rsplit_once('@') {
        Some((head, speed)) if head.contains('@') && speed.ends_with("ms") => head.to_owned(),
        _ => s,
    }
}

fn session() -> &'static Session {
    static S: OnceLock<Session> = OnceLock::new();
    S.get_or_init(|| {
        let mut reader =
            tape_journal::JournalReader::open(root().join("fixtures/session")).unwrap();
        let mut markets = BTreeMap::new();
        let mut engine = Engine::new(EngineConfig::default()).unwrap();
        let mut frames = Vec::new();
        let mut tops: BTreeMap<_, BTreeMap<_, _>> = BTreeMap::new();
        let mut first_ns = None;
        while let Some(rec) = reader.next() {
            let rec = rec.unwrap();
            first_ns.get_or_insert(rec.recv_ns);
            engine
                .handle_stored(
                    Nanos(rec.recv_ns),
                    SourceId(rec.source),
                    rec.kind,
                    rec.payload,
                )
                .ok();
            while engine.poll_output().is_some() {}
            while engine.poll_venue_command().is_some() {}
            if rec.kind == RecordKind::SourceDef as u16 {
                markets.insert(rec.source, SourceDef::parse(rec.payload).unwrap().market);
            } else if rec.kind == RecordKind::WsFrame as u16 {
                let text = String::from_utf8(rec.payload.to_vec()).unwrap();
                let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                frames.push(JFrame {
                    recv_ns: rec.recv_ns,
                    market: markets[&rec.source],
                    key: key_of(v["stream"].as_str().unwrap()),
                    payload: text,
                });
            }
            for (market, sym) in [(Market::Spot, "BTCUSDT"), (Market::UsdM, "BTCUSDT")] {
                let Some(id) = engine.registry().lookup(market, sym.as_bytes()) else {
                    continue;
                };
                let Some(book) = engine.book(id).filter(|b| b.is_synced()) else {
                    continue;
                };
                tops.entry((market, sym.to_owned()))
                    .or_default()
                    .entry(book.last_update_id().unwrap())
                    .or_insert_with(|| top5(book));
            }
        }
        Session {
            first_ns: first_ns.unwrap(),
            frames,
            tops,
        }
    })
}

fn top5(book: &BookSync) -> Top {
    let mut bids = Vec::new();
    let mut asks = Vec::new();
    book.book().top_n(Side::Bid, 5, &mut bids);
    book.book().top_n(Side::Ask, 5, &mut asks);
    (bids, asks)
}

/// Recorded frames of `market` on the given stream keys, in journal order.
fn expected(market: Market, keys: &[&str]) -> Vec<&'static JFrame> {
    session()
        .frames
        .iter()
        .filter(|f| f.market == market && keys.contains(&f.key.as_str()))
        .collect()
}

// ---- clients -------------------------------------------------------------------------------

trait Io: Read + Write + Send {}
impl<T: Read + Write + Send> Io for T {}
type Ws = WebSocket<Box<dyn Io>>;

struct Sim {
    handle: SimHandle,
    tls: Option<Arc<ClientConfig>>,
    _dir: tempfile::TempDir,
}

fn start(tweak: impl FnOnce(&mut SimConfig)) -> Sim {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SimConfig {
        journal: root().join("fixtures/session"),
        cert_dir: dir.path().join("certs"),
        repeat: false,
        // tape's order gateway does not sign requests yet: the sim checks none.
        auth: SimAuth::Lenient,
        ..SimConfig::default()
    };
    tweak(&mut cfg);
    let handle = VenueSim::start(cfg).expect("sim starts");
    let tls = handle.ca_path().map(client_config);
    Sim {
        handle,
        tls,
        _dir: dir,
    }
}

fn client_config(ca: &Path) -> Arc<ClientConfig> {
    // The same trust set-up as tape's own venue client.
    tape_node::live::client_tls_config(false, Some(ca)).unwrap()
}

impl Sim {
    fn addr(&self, market: Market) -> SocketAddr {
        self.handle.endpoint(market).expect("market served").addr
    }

    fn stream(&self, market: Market) -> Box<dyn Io> {
        let tcp = TcpStream::connect(self.addr(market)).unwrap();
        tcp.set_read_timeout(Some(WAIT)).unwrap();
        match &self.tls {
            None => Box::new(tcp),
            Some(cfg) => {
                // Spot by name, the others by IP, to prove both SANs.
                let name = if market == Market::Spot {
                    "localhost"
                } else {
                    "127.0.0.1"
                };
                let conn = ClientConnection::new(cfg.clone(), ServerName::try_from(name).unwrap())
                    .unwrap();
                Box::new(StreamOwned::new(conn, tcp))
            }
        }
    }

    /// A WebSocket client on `path` (e.g. `/stream?streams=a/b`).
    fn ws(&self, market: Market, path: &str) -> Ws {
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        let (ws, resp) =
            tungstenite::client(format!("{scheme}://localhost{path}"), self.stream(market))
                .expect("ws handshake");
        assert_eq!(resp.status(), 101);
        ws
    }

    /// `GET target`: status, head, body.
    fn get(&self, market: Market, target: &str) -> (u16, String, String) {
        let mut s = self.stream(market);
        write!(
            s,
            "GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw); // ends with close_notify + FIN
        let text = String::from_utf8(raw).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").expect("a response");
        let status = head[9..12].parse().unwrap();
        (status, head.to_owned(), body.to_owned())
    }

    fn depth(&self, market: Market, query: &str) -> (u16, String, String) {
        let path = match market {
            Market::Spot => "/api/v3/depth",
            Market::UsdM => "/fapi/v1/depth",
            Market::CoinM => "/dapi/v1/depth",
        };
        self.get(market, &format!("{path}?{query}"))
    }

    /// Waits (bounded) until the sim's counters satisfy `cond`.
    fn wait_stats(&self, what: &str, cond: impl Fn(&tape_tools::sim::SimStats) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !cond(&self.handle.stats()) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::yield_now();
        }
    }
}

/// Reads until the server closes; returns the close frame and the texts before it.
fn read_to_close(ws: &mut Ws) -> (Option<(u16, String)>, Vec<String>) {
    let mut texts = Vec::new();
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => texts.push(t.as_str().to_owned()),
            Ok(Message::Close(c)) => {
                return (c.map(|c| (u16::from(c.code), c.reason.to_string())), texts)
            }
            Ok(_) => {}
            Err(e) => panic!("expected a close frame, got {e}"),
        }
    }
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

// ---- streams -------------------------------------------------------------------------------

#[test]
fn combined_streams_carry_the_recorded_bytes_in_order() {
    let sim = start(|c| c.speed = 0);
    let mut ws = sim.ws(
        Market::Spot,
        "/stream?streams=btcusdt@depth@100ms/ethusdt@trade/BTCUSDT@bookTicker",
    );
    let want = expected(
        Market::Spot,
        &["btcusdt@depth", "ethusdt@trade", "btcusdt@bookticker"],
    );
    assert!(want.len() > 1000, "{}", want.len());
    for (i, f) in want.iter().enumerate() {
        assert_eq!(next_text(&mut ws), f.payload, "frame {i}");
    }
    sim.wait_stats("the end of the journal", |s| s.finished);
    let st = sim.handle.stats();
    assert_eq!(
        (st.passes, st.position, st.frames_sent),
        (1, st.records, want.len() as u64)
    );
}

#[test]
fn raw_streams_carry_the_bare_events() {
    let sim = start(|c| {
        c.speed = 0;
        c.tls = false;
    });
    let mut ws = sim.ws(Market::CoinM, "/ws/btcusd_perp@trade/btcusd_perp@depth@0ms");
    for f in expected(Market::CoinM, &["btcusd_perp@trade", "btcusd_perp@depth"]) {
        #[derive(serde::Deserialize)]
        struct Wrapped<'a> {
            #[serde(borrow)]
            data: &'a RawValue,
        }
        let w: Wrapped<'_> = serde_json::from_str(&f.payload).unwrap();
        assert_eq!(next_text(&mut ws), w.data.get());
    }
    // Live subscription requests work on the same connection.
    ws.send(Message::text(r#"{"method":"LIST_SUBSCRIPTIONS","id":7}"#))
        .unwrap();
    assert_eq!(
        json(&next_text(&mut ws)),
        json(r#"{"result":["btcusd_perp@trade","btcusd_perp@depth@0ms"],"id":7}"#)
    );
    ws.send(Message::text(
        r#"{"method":"UNSUBSCRIBE","params":["btcusd_perp@trade"],"id":8}"#,
    ))
    .unwrap();
    assert_eq!(json(&next_text(&mut ws)), json(r#"{"result":null,"id":8}"#));
    ws.send(Message::text("{nope")).unwrap();
    assert_eq!(json(&next_text(&mut ws))["error"]["code"], 3);
    ws.send(Message::text(
        r#"{"method":"SUBSCRIBE","params":["a b"],"id":9}"#,
    ))
    .unwrap();
    assert_eq!(json(&next_text(&mut ws))["error"]["code"], 2);
}

/// Frames of `want` on a USD-M connection on `path`, in order; then, once the journal ended,
/// that nothing else was sent. The streams it also names but may not deliver (`others`) have
/// frames interleaved with `want`'s, so a wrong delivery would show up among them.
fn usdm_delivers_only(path: &str, want: &[&str], others: &[&str], raw: bool) {
    let sim = start(|c| {
        c.speed = 0;
        c.tls = false;
    });
    let want = expected(Market::UsdM, want);
    let other = expected(Market::UsdM, others);
    assert!(want.len() > 100 && !other.is_empty(), "{path}");
    assert!(
        other[0].recv_ns < want.last().unwrap().recv_ns,
        "{path}: the other class's frames come before the last delivered one"
    );
    let mut ws = sim.ws(Market::UsdM, path);
    for (i, f) in want.iter().enumerate() {
        let got = next_text(&mut ws);
        if raw {
            assert_eq!(json(&got), json(&f.payload)["data"], "{path}: frame {i}");
        } else {
            assert_eq!(got, f.payload, "{path}: frame {i}");
        }
    }
    sim.wait_stats("the end of the journal", |s| s.finished);
    assert_eq!(
        sim.handle.stats().frames_sent,
        want.len() as u64,
        "{path}: nothing but its own class"
    );
    // Both classes' streams were accepted and are listed.
    ws.send(Message::text(r#"{"method":"LIST_SUBSCRIPTIONS","id":1}"#))
        .unwrap();
    let listed = json(&next_text(&mut ws))["result"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(listed, 2, "{path}");
}

#[test]
fn usdm_public_delivers_book_data_and_silently_not_trades() {
    usdm_delivers_only(
        "/public/stream?streams=btcusdt@trade/btcusdt@bookTicker",
        &["btcusdt@bookticker"],
        &["btcusdt@trade"],
        false,
    );
}

#[test]
fn usdm_market_delivers_trades_and_silently_not_book_data() {
    usdm_delivers_only(
        "/market/stream?streams=btcusdt@trade/btcusdt@bookTicker",
        &["btcusdt@trade"],
        &["btcusdt@bookticker"],
        false,
    );
    usdm_delivers_only(
        "/market/ws/btcusdt@depth@0ms/btcusdt@trade",
        &["btcusdt@trade"],
        &["btcusdt@depth"],
        true,
    );
}

#[test]
fn usdm_legacy_paths_deliver_only_public_streams() {
    usdm_delivers_only(
        "/stream?streams=btcusdt@trade/btcusdt@depth@0ms",
        &["btcusdt@depth"],
        &["btcusdt@trade"],
        false,
    );
    usdm_delivers_only(
        "/ws/btcusdt@trade/btcusdt@bookTicker",
        &["btcusdt@bookticker"],
        &["btcusdt@trade"],
        true,
    );
}

#[test]
fn usdm_subscribe_on_a_routed_connection_follows_its_class_and_other_markets_do_not_route() {
    let sim = start(|c| {
        c.speed = 0;
        c.tls = false;
    });
    // Spot and COIN-M serve no routed paths.
    for m in [Market::Spot, Market::CoinM] {
        assert_eq!(sim.get(m, "/market/stream").0, 404, "{m:?}");
    }
    assert_eq!(sim.get(Market::UsdM, "/market/stream").0, 426);
    assert_eq!(sim.get(Market::UsdM, "/public/ws/btcusdt@depth").0, 426);
    let refused = tungstenite::client(
        "ws://localhost/market/stream?streams=btcusdt@trade",
        sim.stream(Market::Spot),
    );
    match refused {
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r))) => {
            assert_eq!(r.status(), 404);
        }
        other => panic!("spot has no /market: {:?}", other.map(|(_, r)| r.status())),
    }
    // Nor does USD-M serve a path that is neither routed nor a stream path.
    let mut ws = sim.ws(Market::UsdM, "/market/x");
    assert_eq!(read_to_close(&mut ws).0.map(|c| c.0), Some(1008));
    // SUBSCRIBE on /market: the book stream is accepted, the trades come, the book does not.
    let mut ws = sim.ws(Market::UsdM, "/market/stream");
    ws.send(Message::text(
        r#"{"method":"SUBSCRIBE","params":["btcusdt@bookTicker","btcusdt@trade"],"id":1}"#,
    ))
    .unwrap();
    assert_eq!(json(&next_text(&mut ws)), json(r#"{"result":null,"id":1}"#));
    let trades = expected(Market::UsdM, &["btcusdt@trade"]);
    let got = json(&next_text(&mut ws));
    assert_eq!(got["stream"], "btcusdt@trade", "{got}");
    // Every later frame is a trade, up to the journal's last one.
    let last = json(&trades.last().unwrap().payload);
    loop {
        let f = json(&next_text(&mut ws));
        assert_eq!(f["stream"], "btcusdt@trade", "{f}");
        if f == last {
            break;
        }
    }
}

#[test]
fn drop_market_drops_only_the_usdm_market_connections() {
    let sim = start(|c| c.speed = 5);
    let mut public = sim.ws(Market::UsdM, "/public/stream?streams=btcusdt@bookTicker");
    let mut legacy = sim.ws(Market::UsdM, "/stream?streams=btcusdt@bookTicker");
    let mut market = sim.ws(Market::UsdM, "/market/stream?streams=btcusdt@trade");
    next_text(&mut public);
    next_text(&mut legacy);
    next_text(&mut market);
    sim.handle.inject_on(
        Market::UsdM,
        Fault::DropEndpoint(tape_node::live::Endpoint::Market),
    );
    loop {
        match market.read() {
            Ok(Message::Close(c)) => panic!("a close frame: {c:?}"),
            Ok(_) => {}
            Err(tungstenite::Error::Io(_)) | Err(tungstenite::Error::Protocol(_)) => break,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    sim.wait_stats("the drop", |s| s.faults_applied == 1 && s.clients == 2);
    // The public and legacy connections (all that is left) keep streaming.
    let sent = sim.handle.stats().frames_sent;
    sim.wait_stats("frames after the drop", |s| s.frames_sent > sent + 10);
    next_text(&mut public);
    next_text(&mut legacy);
}

// ---- REST snapshots ------------------------------------------------------------------------

/// Fetches a snapshot at some stream position and checks that it, plus the diffs that follow
/// on the stream, syncs a fresh book whose top matches the venue's at every update id.
fn snapshot_bridges_the_stream(sim: &Sim, market: Market, stream: &str, scales: (u8, u8)) {
    let symbol = "BTCUSDT";
    let tops = &session().tops[&(market, symbol.to_owned())];
    let mut reg = Registry::default();
    let id = reg.register(market, symbol, scales.0, scales.1).unwrap();
    let mut dec = Decoder::new();
    let mut book = BookSync::new(id, market, SyncLimits::default());
    let mut events = Vec::new();
    let ctx = DecodeCtx {
        market,
        auto_register: false,
    };
    let mut ws = sim.ws(
        market,
        &format!("/stream?streams={stream}/btcusdt@bookTicker"),
    );
    let (mut snapshot_at, mut checked) = (None, 0);
    let deadline = Instant::now() + WAIT;
    while checked < 30 {
        assert!(Instant::now() < deadline, "{market}: no sync");
        let frame = next_text(&mut ws);
        match dec.decode_frame(frame.as_bytes(), ctx, &mut reg).unwrap() {
            MarketMsg::Depth(d) => {
                book.on_diff(&d, &mut events);
                // The sim's snapshot is consistent with its stream: it must bridge first time.
                assert_eq!(book.stats().stale_snapshots, 0, "{market}: {events:?}");
                if book.is_synced() {
                    let u = book.last_update_id().unwrap();
                    assert_eq!(top5(&book), tops[&u], "{market}: top at u={u}");
                    checked += 1;
                }
            }
            // The exchange's bookTicker is an oracle whenever it shares the book's update id.
            MarketMsg::BookTicker(t)
                if book.is_synced() && book.last_update_id() == Some(t.update_id) =>
            {
                let (bid, ask) = (
                    book.book().best_bid().unwrap(),
                    book.book().best_ask().unwrap(),
                );
                assert_eq!(
                    (bid.price, bid.qty, ask.price, ask.qty),
                    (t.bid_price, t.bid_qty, t.ask_price, t.ask_qty)
                );
            }
            _ => {}
        }
        if snapshot_at.is_none() {
            let (status, head, body) = sim.depth(market, "symbol=BTCUSDT&limit=5000");
            if status == 503 {
                assert!(head.contains("\r\nRetry-After: 1"), "{head}");
                assert_eq!(json(&body)["code"], -1003);
                continue;
            }
            assert_eq!(status, 200, "{body}");
            let snap = dec.decode_snapshot(body.as_bytes(), id, &reg).unwrap();
            let u = snap.last_update_id;
            assert_eq!(snap.event_time_ms.is_some(), market.is_futures());
            let (bids, asks) = &tops[&u];
            assert_eq!((&snap.bids[..5], &snap.asks[..5]), (&bids[..], &asks[..]));
            book.on_snapshot(&snap, &mut events);
            snapshot_at = Some(u);
        }
    }
    assert!(book.stats().gaps == 0 && snapshot_at.is_some());
}

/// The late USD-M client often fetches its snapshot before the next diff exists, so the
/// snapshot's `lastUpdateId` is the `pu` of the first diff it can see (`U > L`): this test
/// pins that such a snapshot bridges (see `BookSync`), instead of being called stale forever.
#[test]
fn snapshots_are_503_before_sync_then_bridge_the_stream() {
    // 3x keeps the session (~9 s) running while the second client joins, even on a loaded
    // machine; at 10x it could end first and the late client would get nothing.
    let sim = start(|c| c.speed = 3);
    // Before the timeline starts nothing is synced.
    let (status, head, body) = sim.depth(Market::Spot, "symbol=BTCUSDT");
    assert_eq!(status, 503, "{body}");
    assert!(head.contains("\r\nRetry-After: 1"), "{head}");
    assert_eq!(
        json(&body),
        json(r#"{"code":-1003,"msg":"snapshot not available yet"}"#)
    );
    snapshot_bridges_the_stream(&sim, Market::Spot, "btcusdt@depth@100ms", (8, 8));
    // A client joining later starts at the current position, like at a real venue.
    snapshot_bridges_the_stream(&sim, Market::UsdM, "btcusdt@depth@0ms", (2, 3));
    let st = sim.handle.stats();
    assert!(
        st.snapshots_served >= 2 && st.snapshots_refused >= 1,
        "{st:?}"
    );
}

#[test]
fn bad_requests_get_binance_errors_and_the_sim_survives() {
    let sim = start(|c| {
        c.tls = false;
        c.speed = 0;
    });
    let err = |market, q: &str| {
        let (status, _, body) = sim.depth(market, q);
        (status, json(&body)["code"].as_i64().unwrap())
    };
    assert_eq!(err(Market::Spot, "symbol=DOGEUSDT"), (400, -1121));
    assert_eq!(err(Market::CoinM, "symbol=BTCUSDT"), (400, -1121));
    assert_eq!(err(Market::Spot, ""), (400, -1102));
    assert_eq!(err(Market::Spot, "symbol=BTCUSDT&limit=x"), (400, -1100));
    assert_eq!(err(Market::Spot, "symbol=BTCUSDT&evil=1"), (400, -1100));
    assert_eq!(
        sim.get(Market::Spot, "/fapi/v1/depth?symbol=BTCUSDT").0,
        404
    );
    assert_eq!(sim.get(Market::Spot, "/stream").0, 426);
    assert_eq!(sim.get(Market::Spot, "/sim/fault?kind=explode").0, 400);
    // Garbage on the socket and an oversized head: answered by the transport, counted.
    for junk in [
        &b"\x16\x03\x01\x00\xff garbage\r\n\r\n"[..],
        &[b'A'; 20_000][..],
    ] {
        let mut s = TcpStream::connect(sim.addr(Market::Spot)).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let _ = s.write_all(junk);
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        assert!(
            buf.starts_with(b"HTTP/1.1 4"),
            "{:?}",
            String::from_utf8_lossy(&buf)
        );
    }
    // A bad stream name is refused with 1008.
    let mut ws = sim.ws(Market::Spot, "/stream?streams=btc%20usdt");
    assert_eq!(read_to_close(&mut ws).0.map(|c| c.0), Some(1008));
    let (status, _, body) = sim.get(Market::Spot, "/sim/stats");
    assert_eq!(status, 200);
    assert!(json(&body)["bad_requests"].as_u64().unwrap() >= 8, "{body}");
}

// ---- faults --------------------------------------------------------------------------------

#[test]
fn drop_ends_the_connection_without_a_close_frame() {
    let sim = start(|c| c.speed = 5);
    let mut ws = sim.ws(Market::Spot, "/stream?streams=btcusdt@bookTicker");
    next_text(&mut ws);
    sim.handle.inject(Fault::Drop);
    loop {
        match ws.read() {
            Ok(Message::Close(c)) => panic!("a close frame: {c:?}"),
            Ok(_) => {}
            Err(tungstenite::Error::Io(_)) | Err(tungstenite::Error::Protocol(_)) => break,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    sim.wait_stats("the drop", |s| s.faults_applied == 1 && s.clients == 0);
}

#[test]
fn close_sends_1001_like_the_daily_disconnect() {
    let sim = start(|c| c.speed = 5);
    let mut ws = sim.ws(Market::UsdM, "/stream?streams=btcusdt@bookTicker");
    next_text(&mut ws);
    sim.handle.inject_on(Market::UsdM, Fault::Close);
    let (close, _) = read_to_close(&mut ws);
    assert_eq!(close, Some((1001, "forced disconnect".to_owned())));
}

/// `(U, u, pu)` of a depth frame.
fn ids(frame: &str) -> (u64, u64, Option<u64>) {
    let d = &json(frame)["data"];
    (
        d["U"].as_u64().unwrap(),
        d["u"].as_u64().unwrap(),
        d["pu"].as_u64(),
    )
}

#[test]
fn gaps_break_the_sequence_on_spot_and_futures() {
    let sim = start(|c| c.speed = 5);
    let mut spot = sim.ws(Market::Spot, "/stream?streams=btcusdt@depth@100ms");
    let mut usdm = sim.ws(Market::UsdM, "/stream?streams=btcusdt@depth@0ms");
    let (_, mut prev_spot, _) = ids(&next_text(&mut spot));
    let (_, mut prev_usdm, _) = ids(&next_text(&mut usdm));
    sim.handle.inject_on(Market::Spot, Fault::Gap(1));
    let (status, _, body) = sim.get(Market::UsdM, "/sim/fault?kind=gap=2");
    assert_eq!((status, body.as_str()), (200, "ok: gap=2 on usdm\n"));
    loop {
        let (first, last, _) = ids(&next_text(&mut spot));
        if first != prev_spot + 1 {
            break;
        }
        prev_spot = last;
    }
    loop {
        let (_, last, pu) = ids(&next_text(&mut usdm));
        if pu != Some(prev_usdm) {
            break;
        }
        prev_usdm = last;
    }
    sim.wait_stats("withheld frames", |s| s.frames_withheld >= 3);
}

#[test]
fn stall_sends_nothing_then_resumes_in_order() {
    let sim = start(|c| c.speed = 5);
    let mut ws = sim.ws(Market::Spot, "/stream?streams=btcusdt@bookTicker");
    next_text(&mut ws);
    let stall = Duration::from_millis(400);
    sim.handle.inject(Fault::Stall(stall));
    let (mut last, mut longest, mut prev_u) = (Instant::now(), Duration::ZERO, 0);
    let mut after = 0;
    while after < 5 {
        let u = json(&next_text(&mut ws))["data"]["u"].as_u64().unwrap();
        assert!(u > prev_u, "in order");
        prev_u = u;
        let gap = last.elapsed();
        last = Instant::now();
        if longest >= stall * 3 / 4 {
            after += 1;
        }
        longest = longest.max(gap);
    }
    assert!(longest >= stall * 3 / 4, "longest silence {longest:?}");
}

#[test]
fn malformed_and_truncated_frames_arrive_and_the_stream_goes_on() {
    let sim = start(|c| c.speed = 5);
    let mut ws = sim.ws(Market::Spot, "/stream?streams=btcusdt@bookTicker");
    next_text(&mut ws);
    sim.handle.inject(Fault::Malformed);
    sim.handle.inject(Fault::Truncate);
    let (mut broken, mut mistyped, mut cut, mut good_after) = (0, 0, 0, 0);
    while good_after < 3 {
        let text = next_text(&mut ws);
        match serde_json::from_str::<serde_json::Value>(&text) {
            Err(_) if text.contains("\"u\":") => {
                let full = expected(Market::Spot, &["btcusdt@bookticker"])
                    .into_iter()
                    .find(|f| f.payload.starts_with(&text) && f.payload != text);
                assert!(full.is_some(), "a cut recorded frame: {text}");
                cut += 1;
            }
            Err(_) => broken += 1,
            Ok(v) if v["data"]["E"].is_string() => mistyped += 1,
            Ok(_) if broken + mistyped + cut == 3 => good_after += 1,
            Ok(_) => {}
        }
    }
    assert_eq!((broken, mistyped, cut), (1, 1, 1));
    sim.wait_stats("the counters", |s| {
        (s.frames_truncated, s.faults_applied) == (1, 2)
    });
}

#[test]
fn refuse_snapshot_answers_503_then_serves_again() {
    let sim = start(|c| c.speed = 0);
    let _ws = sim.ws(Market::Spot, "/ws");
    sim.wait_stats("the end of the journal", |s| s.finished);
    assert_eq!(sim.depth(Market::Spot, "symbol=ETHUSDT&limit=5").0, 200);
    sim.handle.inject_on(Market::Spot, Fault::RefuseSnapshot(2));
    sim.wait_stats("the fault", |s| s.faults_applied == 1);
    for _ in 0..2 {
        let (status, head, body) = sim.depth(Market::Spot, "symbol=ETHUSDT");
        assert_eq!(status, 503, "{body}");
        assert!(head.contains("Retry-After: 1"));
    }
    let (status, _, body) = sim.depth(Market::Spot, "symbol=ETHUSDT&limit=5");
    assert_eq!(status, 200);
    let v = json(&body);
    assert_eq!(v["bids"].as_array().unwrap().len(), 5);
    // Only the market it was injected on.
    assert_eq!(
        sim.get(Market::UsdM, "/sim/fault?kind=refuse-snapshot").0,
        200
    );
    assert_eq!(sim.depth(Market::UsdM, "symbol=ETHUSDT").0, 503);
    assert_eq!(sim.depth(Market::UsdM, "symbol=ETHUSDT").0, 200);
    assert_eq!(sim.depth(Market::Spot, "symbol=ETHUSDT").0, 200);
}

#[test]
fn scheduled_faults_fire_at_their_timeline_offset() {
    let sim = start(|c| {
        c.speed = 0;
        c.faults = vec!["spot:close@1.5".parse().unwrap()];
    });
    let mut ws = sim.ws(Market::Spot, "/stream?streams=btcusdt@bookTicker");
    let (close, texts) = read_to_close(&mut ws);
    assert_eq!(close, Some((1001, "forced disconnect".to_owned())));
    let s = session();
    let want: Vec<_> = expected(Market::Spot, &["btcusdt@bookticker"])
        .into_iter()
        .filter(|f| f.recv_ns - s.first_ns < 1_500_000_000)
        .map(|f| f.payload.as_str())
        .collect();
    assert_eq!(texts, want);
}

#[test]
fn repeat_closes_with_1001_and_restarts_when_a_client_returns() {
    let sim = start(|c| {
        c.speed = 0;
        c.repeat = true;
        c.tls = false;
    });
    let mut ws = sim.ws(Market::CoinM, "/stream?streams=btcusd_perp@trade");
    let (close, texts) = read_to_close(&mut ws);
    assert_eq!(close, Some((1001, "venue restarting".to_owned())));
    assert_eq!(
        texts.len(),
        expected(Market::CoinM, &["btcusd_perp@trade"]).len()
    );
    sim.wait_stats("the restart", |s| s.passes == 1 && s.position == 0);
    let mut ws = sim.ws(Market::CoinM, "/stream?streams=btcusd_perp@trade");
    assert_eq!(next_text(&mut ws), texts[0]);
    sim.wait_stats("the second pass", |s| s.passes == 2);
}

#[test]
fn silent_clients_are_dropped_and_old_ones_closed() {
    let sim = start(|c| {
        c.tls = false;
        c.ping_interval = Duration::from_millis(200);
        c.max_connection_age = Some(Duration::from_millis(1500));
    });
    // A client that never answers pings: a raw socket after a hand-made upgrade.
    let mut silent = TcpStream::connect(sim.addr(Market::Spot)).unwrap();
    silent.set_read_timeout(Some(WAIT)).unwrap();
    silent
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .unwrap();
    let silent = std::thread::spawn(move || {
        let mut raw = Vec::new();
        silent.read_to_end(&mut raw).expect("EOF, not a timeout");
        raw
    });
    // A client that answers (tungstenite pongs while reading) stays until the age limit.
    let mut ws = sim.ws(Market::Spot, "/ws");
    let started = Instant::now();
    let (close, _) = read_to_close(&mut ws);
    assert_eq!(close, Some((1001, "connection age limit".to_owned())));
    assert!(started.elapsed() >= Duration::from_millis(1200));
    let raw = silent.join().unwrap();
    let frames = &raw[raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..];
    assert_eq!(frames.first(), Some(&0x89), "pinged");
    assert!(!frames.contains(&0x88), "dropped without a close frame");
    sim.wait_stats("the counters", |s| {
        (s.clients_silent, s.clients_aged_out, s.clients) == (1, 1, 0)
    });
}

#[test]
fn capture_files_are_served_directly() {
    let hft = root().join("fixtures/hftbacktest/spot_ethusdt_20240808.first1000lines.txt");
    let sim = start(|c| {
        c.journal = hft;
        c.tls = false;
        c.speed = 0;
    });
    let eps = sim.handle.endpoints();
    assert_eq!(eps.len(), 1);
    assert_eq!(
        (eps[0].market, eps[0].symbols.clone()),
        (Market::Spot, vec!["ETHUSDT".to_owned()])
    );
    assert_eq!(eps[0].scales["ETHUSDT"], (8, 8));
    assert!(eps[0].ws_url.starts_with("ws://127.0.0.1:"));

    let cf = root().join("fixtures/cryptofeed/BINANCE_FUTURES.ws.1.0");
    let sim = start(|c| {
        c.journal = cf;
        c.tls = false;
        c.speed = 0;
    });
    let ep = &sim.handle.endpoints()[0];
    assert_eq!(ep.market, Market::UsdM);
    assert!(
        ep.symbols.contains(&"SUSHIUSDT".to_owned()),
        "{:?}",
        ep.symbols
    );
    assert!(
        ep.scales.contains_key("SUSHIUSDT"),
        "snapshots from BINANCE_FUTURES.http.*"
    );
    let mut ws = sim.ws(Market::UsdM, "/stream?streams=sushiusdt@bookTicker");
    assert!(next_text(&mut ws).starts_with(r#"{"stream":"sushiusdt@bookTicker""#));
}

#[test]
fn cli_prints_endpoints_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tape"))
        .args([
            "venue-sim",
            "--exit-after",
            "1",
            "--fault",
            "drop@3",
            "--cert-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "spot ",
        "usdm ",
        "coinm",
        "wss://127.0.0.1:",
        "https://127.0.0.1:",
        "BTCUSD_PERP",
        "stopped",
    ] {
        assert!(stdout.contains(want), "{want}: {stdout}");
    }
    assert!(dir.path().join("cert.pem").is_file() && dir.path().join("key.pem").is_file());
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_tape"))
        .args(["venue-sim", "--fault", "explode@1"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}
