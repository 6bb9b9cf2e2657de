//! The simulator's WebSocket API over loopback: real sockets, real TLS, blocking tungstenite
//! clients; every user-data event is decoded by the engine's own decoder. Orders are placed
//! on a finished timeline (static books) or before the timeline starts, so every fill is
//! deterministic. Every wait is bounded; every sim stops when its handle drops.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rustls::{ClientConfig, ClientConnection, StreamOwned};
use rustls_pki_types::ServerName;
use serde_json::{json, Value};
use support::{next_text, root};
use tape_core::account::event::{ExecutionReport, UserEvent};
use tape_core::account::kinds::ExecType;
use tape_core::account::{Money, OrderStatus, UserDataDecoder};
use tape_core::engine::{Engine, EngineConfig};
use tape_core::fixed::{parse_fixed, write_fixed, Price, Qty};
use tape_core::input::{Nanos, RecordKind, SourceDef, SourceId};
use tape_core::instrument::{Market, Registry};
use tape_tools::sim::{SimAuth, SimConfig, SimHandle, SimStats, VenueSim};
use tungstenite::{Message, WebSocket};

const WAIT: Duration = Duration::from_secs(15);

// ---- clients (the minimum of venue_sim.rs) -------------------------------------------------

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
        speed: 0,
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
    tape_node::live::client_tls_config(false, Some(ca)).unwrap()
}

impl Sim {
    fn stream(&self, market: Market) -> Box<dyn Io> {
        let addr = self.handle.endpoint(market).expect("market served").addr;
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(WAIT)).unwrap();
        match &self.tls {
            None => Box::new(tcp),
            Some(cfg) => {
                let name = ServerName::try_from("localhost").unwrap();
                Box::new(StreamOwned::new(
                    ClientConnection::new(cfg.clone(), name).unwrap(),
                    tcp,
                ))
            }
        }
    }

    fn ws(&self, market: Market, path: &str) -> Ws {
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        let (ws, resp) =
            tungstenite::client(format!("{scheme}://localhost{path}"), self.stream(market))
                .expect("ws handshake");
        assert_eq!(resp.status(), 101);
        ws
    }

    /// A WebSocket API connection at the endpoint's advertised URL.
    fn api(&self, market: Market) -> Ws {
        let url = &self.handle.endpoint(market).unwrap().api_url;
        let path = &url[url.find("/ws-").expect("an API path")..];
        self.ws(market, path)
    }

    /// `GET target`: status and body.
    fn get(&self, market: Market, target: &str) -> (u16, String) {
        support::http_get(self.stream(market), target)
    }

    /// The top `n` `(price, qty)` mantissas of one side of the sim's REST snapshot.
    fn top(&self, market: Market, side: &str, scales: (u8, u8)) -> Vec<(i64, i64)> {
        let path = match market {
            Market::Spot => "/api/v3/depth",
            Market::UsdM => "/fapi/v1/depth",
            Market::CoinM => "/dapi/v1/depth",
        };
        let (status, body) = self.get(market, &format!("{path}?symbol=BTCUSDT&limit=5"));
        assert_eq!(status, 200, "{body}");
        parse(&body)[side]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| (fixed(&l[0], scales.0), fixed(&l[1], scales.1)))
            .collect()
    }

    fn wait_stats(&self, what: &str, cond: impl Fn(&SimStats) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !cond(&self.handle.stats()) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::yield_now();
        }
    }

    /// Starts the timeline with a stream client that subscribes to nothing, and waits for the
    /// end of the journal: from then on the books are the journal's final books.
    fn play_to_end(&self) -> Ws {
        let ws = self.ws(Market::Spot, "/ws");
        self.wait_stats("the end of the journal", |s| s.finished);
        ws
    }
}

fn parse(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

fn fixed(v: &Value, scale: u8) -> i64 {
    parse_fixed(v.as_str().unwrap().as_bytes(), scale).unwrap()
}

fn text(mantissa: i64, scale: u8) -> String {
    let mut s = String::new();
    write_fixed(&mut s, mantissa, scale).unwrap();
    s
}

/// Sends `req` and reads up to its response; user-data events that arrive first are kept in
/// `events`.
fn call(ws: &mut Ws, req: Value, events: &mut Vec<String>) -> Value {
    ws.send(Message::text(req.to_string())).unwrap();
    read_response(ws, &req["id"], events)
}

/// Reads up to the response to `id`, keeping events in `events`; the response's
/// `rateLimits` (every answer carries them) is checked for its shape and removed.
fn read_response(ws: &mut Ws, id: &Value, events: &mut Vec<String>) -> Value {
    loop {
        let t = next_text(ws);
        let mut v = parse(&t);
        if v.get("subscriptionId").is_some() {
            events.push(t);
        } else {
            assert_eq!(&v["id"], id, "{t}");
            let limits = v.as_object_mut().and_then(|o| o.remove("rateLimits"));
            let limits = limits.unwrap_or_else(|| panic!("no rateLimits: {t}"));
            assert!(
                limits.as_array().is_some_and(|a| a
                    .iter()
                    .any(|l| l["rateLimitType"] == "REQUEST_WEIGHT" && l["count"].is_u64())),
                "{t}"
            );
            return v;
        }
    }
}

/// Reads events until `n` have been collected in `events`.
fn read_events(ws: &mut Ws, events: &mut Vec<String>, n: usize) {
    while events.len() < n {
        let t = next_text(ws);
        assert!(
            parse(&t).get("subscriptionId").is_some(),
            "not an event: {t}"
        );
        events.push(t);
    }
}

fn subscribe(ws: &mut Ws) -> u64 {
    let r = call(
        ws,
        json!({"id": "sub", "method": "userDataStream.subscribe"}),
        &mut Vec::new(),
    );
    assert_eq!(r["status"], 200, "{r}");
    r["result"]["subscriptionId"].as_u64().unwrap()
}

/// Decodes frames exactly as received (envelope and all) with the engine's decoder.
fn decode(market: Market, scales: (u8, u8), frames: &[String]) -> Vec<UserEvent> {
    let mut reg = Registry::default();
    reg.register(market, "BTCUSDT", scales.0, scales.1).unwrap();
    let mut dec = UserDataDecoder::new();
    frames
        .iter()
        .map(|f| {
            dec.decode(f.as_bytes(), market, &reg)
                .unwrap_or_else(|e| panic!("{e}: {f}"))
        })
        .collect()
}

fn exec(ev: &UserEvent) -> &ExecutionReport {
    match ev {
        UserEvent::Execution(r) => r,
        other => panic!("not an execution report: {other:?}"),
    }
}

/// `n / d` for positive numbers, rounded half up.
fn div_half_up(n: i128, d: i128) -> i128 {
    (n + d / 2) / d
}

/// The fee of a fill: the notional `price × qty` (at `raw_scale`) as 8-decimal money, then
/// `bps / 10 000` of it, each rounded half up (everything here is positive).
fn fee(price: i64, qty: i64, raw_scale: u32, bps: i128) -> Money {
    let raw = i128::from(price) * i128::from(qty);
    let notional = if raw_scale >= 8 {
        div_half_up(raw, 10i128.pow(raw_scale - 8))
    } else {
        raw * 10i128.pow(8 - raw_scale)
    };
    Money(i64::try_from(div_half_up(notional * bps, 10_000)).unwrap())
}

// ---- the journal, read independently of the sim --------------------------------------------

struct Journal {
    first_ms: u64,
    /// Latest `E` of any spot depth frame: the spot listener's clock at the end.
    spot_end_ms: u64,
    /// Spot BTCUSDT: the lowest best ask of the synced book after a depth frame, and the
    /// spot clock when it first appeared.
    min_ask: (i64, u64),
}

fn journal() -> &'static Journal {
    static J: OnceLock<Journal> = OnceLock::new();
    J.get_or_init(|| {
        let mut reader =
            tape_journal::JournalReader::open(root().join("fixtures/session")).unwrap();
        let mut engine = Engine::new(EngineConfig::default()).unwrap();
        let mut markets = std::collections::BTreeMap::new();
        let (mut first_ms, mut clock, mut min_ask) = (None, 0, (i64::MAX, 0));
        while let Some(rec) = reader.next() {
            let rec = rec.unwrap();
            first_ms.get_or_insert(rec.recv_ns / 1_000_000);
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
                continue;
            }
            if rec.kind != RecordKind::WsFrame as u16 || markets[&rec.source] != Market::Spot {
                continue;
            }
            let v = parse(std::str::from_utf8(rec.payload).unwrap());
            if v["data"]["e"] != "depthUpdate" {
                continue;
            }
            clock = clock.max(v["data"]["E"].as_u64().unwrap());
            if v["data"]["s"] != "BTCUSDT" {
                continue;
            }
            let id = engine.registry().lookup(Market::Spot, b"BTCUSDT").unwrap();
            let book = engine.book(id).unwrap();
            if let Some(ask) = book.book().best_ask().filter(|_| book.is_synced()) {
                if ask.price.0 < min_ask.0 {
                    min_ask = (ask.price.0, clock);
                }
            }
        }
        Journal {
            first_ms: first_ms.unwrap(),
            spot_end_ms: clock,
            min_ask,
        }
    })
}

// ---- tests ---------------------------------------------------------------------------------

#[test]
fn market_order_fills_level_by_level_and_every_event_decodes() {
    let sim = start(|_| {});
    let mut api = sim.api(Market::Spot);
    assert_eq!(subscribe(&mut api), 0);
    let _stream = sim.play_to_end();
    let asks = sim.top(Market::Spot, "asks", (8, 8));
    let (a0, a1) = (asks[0], asks[1]);
    let half = (a1.1 / 2).max(1);
    let qty = a0.1 + half;
    let mut events = Vec::new();
    let r = call(
        &mut api,
        json!({"id": 1, "method": "order.place", "params": {
            "symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": text(qty, 8),
            "newClientOrderId": "t-mkt-1", "apiKey": "k", "timestamp": 1, "signature": "x"}}),
        &mut events,
    );
    assert_eq!(r["status"], 200, "{r}");
    let res = &r["result"];
    assert_eq!(
        (&res["status"], &res["executedQty"], &res["clientOrderId"]),
        (&json!("FILLED"), &json!(text(qty, 8)), &json!("t-mkt-1"))
    );
    assert_eq!(res["fills"].as_array().unwrap().len(), 2, "{res}");
    read_events(&mut api, &mut events, 4);
    let ev = decode(Market::Spot, (8, 8), &events);
    let end = journal().spot_end_ms;
    let summary: Vec<_> = ev[..3]
        .iter()
        .map(exec)
        .map(|r| {
            (
                r.exec_type,
                r.status,
                r.last_price,
                r.last_qty,
                r.cum_qty,
                r.event_time_ms,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                ExecType::New,
                OrderStatus::New,
                Price(0),
                Qty(0),
                Qty(0),
                end
            ),
            (
                ExecType::Trade,
                OrderStatus::PartiallyFilled,
                Price(a0.0),
                Qty(a0.1),
                Qty(a0.1),
                end
            ),
            (
                ExecType::Trade,
                OrderStatus::Filled,
                Price(a1.0),
                Qty(half),
                Qty(qty),
                end
            ),
        ]
    );
    let last = exec(&ev[2]);
    assert_eq!(last.fee, fee(a1.0, half, 16, 4));
    assert_eq!(last.fee_asset.unwrap().as_str(), "USDT");
    assert!(!last.is_maker && last.client_order_id.as_str() == "t-mkt-1");
    let UserEvent::AccountPosition(bal) = &ev[3] else {
        panic!("{:?}", ev[3])
    };
    let assets: Vec<_> = bal.balances.iter().map(|b| b.asset.as_str()).collect();
    assert_eq!(assets, ["BTC", "USDT"]);
    sim.wait_stats("the counters", |s| {
        (s.orders_placed, s.fills, s.api_clients, s.bad_requests) == (1, 2, 1, 0)
    });
}

#[test]
fn futures_orders_rest_cancel_and_fill_on_every_subscribed_connection() {
    let sim = start(|c| c.tls = false);
    let (mut api, mut watcher) = (sim.api(Market::UsdM), sim.api(Market::UsdM));
    let (s1, s2) = (subscribe(&mut api), subscribe(&mut watcher));
    assert_ne!(s1, s2);
    let _stream = sim.play_to_end();
    let bids = sim.top(Market::UsdM, "bids", (2, 3));
    let far = bids[0].0 / 2;
    let mut events = Vec::new();
    let r = call(
        &mut api,
        json!({"id": "rest", "method": "order.place", "params": {
            "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
            "quantity": "0.010", "price": text(far, 2), "newClientOrderId": "far-1",
            "reduceOnly": false}}),
        &mut events,
    );
    assert_eq!(
        (&r["status"], &r["result"]["status"]),
        (&json!(200), &json!("NEW")),
        "{r}"
    );
    let order_id = r["result"]["orderId"].as_u64().unwrap();
    let r = call(
        &mut api,
        json!({"id": "cxl", "method": "order.cancel", "params": {
            "symbol": "BTCUSDT", "origClientOrderId": "far-1"}}),
        &mut events,
    );
    assert_eq!(r["result"]["status"], "CANCELED", "{r}");
    assert_eq!(r["result"]["orderId"], order_id);
    let r = call(
        &mut api,
        json!({"id": "again", "method": "order.cancel", "params": {
            "symbol": "BTCUSDT", "orderId": order_id}}),
        &mut events,
    );
    assert_eq!(
        r,
        json!({"id": "again", "status": 400, "error": {"code": -2011, "msg": "Unknown order sent."}})
    );
    // Sell exactly the best bid's quantity: one taker fill at its price.
    let (bid, bid_qty) = bids[0];
    let r = call(
        &mut api,
        json!({"id": 9, "method": "order.place", "params": {
            "symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": text(bid_qty, 3)}}),
        &mut events,
    );
    assert_eq!(r["result"]["status"], "FILLED", "{r}");
    assert_eq!(r["result"]["avgPrice"], text(bid, 2));
    // NEW + CANCELED, then NEW + TRADE + ACCOUNT_UPDATE.
    read_events(&mut api, &mut events, 5);
    let mut seen = Vec::new();
    read_events(&mut watcher, &mut seen, 5);
    let strip = |frames: &[String]| -> Vec<Value> {
        frames.iter().map(|f| parse(f)["event"].clone()).collect()
    };
    assert_eq!(strip(&seen), strip(&events), "the account is shared");
    assert!(seen.iter().all(|f| parse(f)["subscriptionId"] == s2));
    let ev = decode(Market::UsdM, (2, 3), &events);
    let kinds: Vec<_> = ev[..4]
        .iter()
        .map(exec)
        .map(|r| (r.exec_type, r.status, r.client_order_id.as_str().to_owned()))
        .collect();
    assert_eq!(
        kinds,
        [
            (ExecType::New, OrderStatus::New, "far-1".to_owned()),
            (
                ExecType::Canceled,
                OrderStatus::Canceled,
                "far-1".to_owned()
            ),
            (
                ExecType::New,
                OrderStatus::New,
                format!("sim-{}", order_id + 1)
            ),
            (
                ExecType::Trade,
                OrderStatus::Filled,
                format!("sim-{}", order_id + 1)
            ),
        ]
    );
    let fill = exec(&ev[3]);
    assert_eq!((fill.last_price, fill.last_qty), (Price(bid), Qty(bid_qty)));
    assert_eq!(fill.fee, fee(bid, bid_qty, 5, 4));
    let UserEvent::AccountUpdate(au) = &ev[4] else {
        panic!("{:?}", ev[4])
    };
    assert_eq!(au.positions[0].amount, Qty(-bid_qty));
    assert_eq!(au.positions[0].entry_price, Price(bid));
    assert_eq!(au.balances[0].asset.as_str(), "USDT");
}

#[test]
fn resting_limit_order_fills_when_the_stream_crosses_it() {
    let j = journal();
    let (price, cross_ms) = j.min_ask;
    assert!(cross_ms > j.first_ms, "the crossing is inside the session");
    let sim = start(|_| {});
    let mut api = sim.api(Market::Spot);
    subscribe(&mut api);
    // Placed before the timeline starts: no book yet, so it rests.
    let mut events = Vec::new();
    let r = call(
        &mut api,
        json!({"id": 1, "method": "order.place", "params": {
            "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
            "quantity": "0.00100000", "price": text(price, 8), "newClientOrderId": "dip"}}),
        &mut events,
    );
    assert_eq!(r["result"]["status"], "NEW", "{r}");
    read_events(&mut api, &mut events, 1);
    let _stream = sim.ws(Market::Spot, "/ws");
    read_events(&mut api, &mut events, 3);
    let ev = decode(Market::Spot, (8, 8), &events);
    assert_eq!(exec(&ev[0]).event_time_ms, j.first_ms);
    let fill = exec(&ev[1]);
    assert_eq!(
        (
            fill.exec_type,
            fill.status,
            fill.last_price,
            fill.last_qty,
            fill.is_maker
        ),
        (
            ExecType::Trade,
            OrderStatus::Filled,
            Price(price),
            Qty(100_000),
            true
        )
    );
    assert_eq!(fill.event_time_ms, cross_ms);
    assert_eq!(fill.fee, fee(price, 100_000, 16, 2));
    assert!(matches!(ev[2], UserEvent::AccountPosition(_)));
}

#[test]
fn bad_requests_get_binance_errors_and_the_connection_keeps_working() {
    let sim = start(|c| c.tls = false);
    let mut api = sim.api(Market::CoinM);
    let mut err = |req: &str| {
        api.send(Message::text(req)).unwrap();
        let v = parse(&next_text(&mut api));
        assert_eq!(v["status"], 400, "{v}");
        (v["id"].clone(), v["error"]["code"].as_i64().unwrap())
    };
    let place =
        |params: &str| format!(r#"{{"id":"p","method":"order.place","params":{{{params}}}}}"#);
    assert_eq!(err("{nope"), (Value::Null, -1135));
    assert_eq!(err(r#"{"id":5,"method":"order.amend"}"#), (json!(5), -1020));
    assert_eq!(err(r#"{"id":6,"params":{}}"#), (json!(6), -1102));
    assert_eq!(
        err(&place(r#""side":"BUY","type":"MARKET","quantity":"1""#)),
        (json!("p"), -1102)
    );
    assert_eq!(
        err(&place(
            r#""symbol":"DOGEUSD_PERP","side":"BUY","type":"MARKET","quantity":"1""#
        )),
        (json!("p"), -1121)
    );
    assert_eq!(
        err(&place(
            r#""symbol":"btc usd","side":"BUY","type":"MARKET","quantity":"1""#
        )),
        (json!("p"), -1100)
    );
    assert_eq!(
        err(&place(
            r#""symbol":"BTCUSD_PERP","side":"BUY","type":"MARKET","quantity":"0.5""#
        )),
        (json!("p"), -1111)
    );
    assert_eq!(
        err(r#"{"id":7,"method":"order.cancel","params":{"symbol":"BTCUSD_PERP","orderId":42}}"#),
        (json!(7), -2011)
    );
    api.send(Message::binary(vec![0u8, 159, 146, 150])).unwrap();
    let v = parse(&next_text(&mut api));
    assert_eq!(
        (v["id"].clone(), v["error"]["code"].clone()),
        (Value::Null, json!(-1135))
    );
    // Still serving.
    let pong = call(
        &mut api,
        json!({"id": 8, "method": "ping"}),
        &mut Vec::new(),
    );
    assert_eq!(pong, json!({"id": 8, "status": 200, "result": {}}));
    subscribe(&mut api);
    let again = call(
        &mut api,
        json!({"id": 9, "method": "userDataStream.subscribe"}),
        &mut Vec::new(),
    );
    assert_eq!(again["error"]["code"], -2035);
    // Another market's API path is refused; a plain GET is told to upgrade.
    let mut wrong = sim.ws(Market::CoinM, "/ws-api/v3");
    match wrong.read() {
        Ok(Message::Close(Some(c))) => assert_eq!(u16::from(c.code), 1008),
        other => panic!("expected a 1008 close, got {other:?}"),
    }
    assert_eq!(sim.get(Market::CoinM, "/ws-dapi/v1").0, 426);
    let (status, body) = sim.get(Market::CoinM, "/sim/stats");
    assert_eq!(status, 200);
    let stats = parse(&body);
    // 12 requests, 10 refused; plus the wrong path and the plain GET.
    assert_eq!(stats["api_requests"], 12, "{body}");
    assert_eq!(stats["bad_requests"], 12, "{body}");
    assert_eq!(stats["api_clients"], 1, "{body}");
}
