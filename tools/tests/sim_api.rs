//! The simulator's WebSocket API beyond placing orders, over loopback: queries, futures
//! listen keys and `/private` streams, rate limits, and the API faults. Plain sockets,
//! blocking tungstenite clients with read timeouts; every wait is bounded and every sim
//! stops when its handle drops.

mod support;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{next_text, root};
use tape_core::instrument::Market;
use tape_tools::sim::{
    Fault, Interval, RateLimit, SimAuth, SimConfig, SimHandle, SimStats, VenueSim,
};
use tungstenite::{Message, WebSocket};

const WAIT: Duration = Duration::from_secs(15);

type Ws = WebSocket<TcpStream>;

struct Sim {
    handle: SimHandle,
    _dir: tempfile::TempDir,
}

fn start(tweak: impl FnOnce(&mut SimConfig)) -> Sim {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SimConfig {
        journal: root().join("fixtures/session"),
        cert_dir: dir.path().join("certs"),
        repeat: false,
        speed: 0,
        tls: false,
        // Signing is sim_auth.rs's subject; these tests are about what the methods answer.
        auth: SimAuth::Lenient,
        ..SimConfig::default()
    };
    tweak(&mut cfg);
    Sim {
        handle: VenueSim::start(cfg).expect("sim starts"),
        _dir: dir,
    }
}

impl Sim {
    fn ws(&self, market: Market, path: &str) -> Ws {
        let addr = self.handle.endpoint(market).expect("market served").addr;
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(WAIT)).unwrap();
        let (ws, resp) =
            tungstenite::client(format!("ws://localhost{path}"), tcp).expect("ws handshake");
        assert_eq!(resp.status(), 101);
        ws
    }

    fn api(&self, market: Market) -> Ws {
        let path = match market {
            Market::Spot => "/ws-api/v3",
            Market::UsdM => "/ws-fapi/v1",
            Market::CoinM => "/ws-dapi/v1",
        };
        self.ws(market, path)
    }

    fn wait_stats(&self, what: &str, cond: impl Fn(&SimStats) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !cond(&self.handle.stats()) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::yield_now();
        }
    }

    /// Injects `fault` and waits until the sim thread has applied it.
    fn fault(&self, fault: Fault) {
        let before = self.handle.stats().faults_applied;
        self.handle.inject(fault);
        self.wait_stats("the fault", |s| s.faults_applied > before);
    }

    /// Plays the journal to its end: the books are then the final, static ones.
    fn play_to_end(&self) -> Ws {
        let ws = self.ws(Market::Spot, "/ws");
        self.wait_stats("the end of the journal", |s| s.finished);
        ws
    }
}

fn parse(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

/// Sends `req` and returns its answer, skipping user-data events.
fn call(ws: &mut Ws, req: Value) -> Value {
    ws.send(Message::text(req.to_string())).unwrap();
    loop {
        let v = parse(&next_text(ws));
        if v.get("subscriptionId").is_none() {
            assert_eq!(v["id"], req["id"], "{v}");
            return v;
        }
    }
}

fn ok(v: &Value) -> &Value {
    assert_eq!(v["status"], 200, "{v}");
    &v["result"]
}

/// A far-from-market GTC buy that rests whatever the book.
fn resting_buy(id: &str, symbol: &str, qty: &str, cid: &str) -> Value {
    json!({"id": id, "method": "order.place", "params": {
        "symbol": symbol, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
        "quantity": qty, "price": "1.00", "newClientOrderId": cid}})
}

/// The close frame that ends `ws` (skipping text frames), or a panic.
fn close_code(ws: &mut Ws) -> u16 {
    loop {
        match ws.read() {
            Ok(Message::Close(Some(c))) => return u16::from(c.code),
            Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

#[test]
fn spot_queries_follow_an_order_from_place_to_cancel_and_fills_show_in_the_balances() {
    let sim = start(|_| {});
    let _stream = sim.play_to_end();
    let mut api = sim.api(Market::Spot);
    let placed = call(&mut api, resting_buy("p", "BTCUSDT", "0.00100000", "far"));
    let order_id = ok(&placed)["orderId"].as_u64().unwrap();
    let open = call(
        &mut api,
        json!({"id": "o", "method": "openOrders.status",
        "params": {"symbol": "BTCUSDT"}}),
    );
    let open = ok(&open).as_array().unwrap().clone();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(
        (
            &open[0]["orderId"],
            &open[0]["clientOrderId"],
            &open[0]["status"]
        ),
        (&json!(order_id), &json!("far"), &json!("NEW"))
    );
    let st = call(
        &mut api,
        json!({"id": "s", "method": "order.status",
        "params": {"symbol": "BTCUSDT", "orderId": order_id}}),
    );
    assert_eq!(ok(&st)["status"], "NEW");
    assert_eq!(ok(&st)["isWorking"], true);
    let c = call(
        &mut api,
        json!({"id": "c", "method": "order.cancel",
        "params": {"symbol": "BTCUSDT", "origClientOrderId": "far"}}),
    );
    assert_eq!(ok(&c)["status"], "CANCELED");
    let st = call(
        &mut api,
        json!({"id": "s2", "method": "order.status",
        "params": {"symbol": "BTCUSDT", "origClientOrderId": "far"}}),
    );
    assert_eq!(
        (&ok(&st)["status"], &ok(&st)["orderId"]),
        (&json!("CANCELED"), &json!(order_id))
    );
    let none = call(&mut api, json!({"id": "o2", "method": "openOrders.status"}));
    assert_eq!(ok(&none), &json!([]));
    let unknown = call(
        &mut api,
        json!({"id": "u", "method": "order.status",
        "params": {"symbol": "BTCUSDT", "orderId": 999_999}}),
    );
    assert_eq!(
        (&unknown["status"], &unknown["error"]),
        (
            &json!(400),
            &json!({"code": -2013, "msg": "Order does not exist."})
        )
    );
    // A market buy moves both balances of the symbol.
    let before = call(&mut api, json!({"id": "a", "method": "account.status"}));
    let bought = call(
        &mut api,
        json!({"id": "m", "method": "order.place", "params": {
        "symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.00100000"}}),
    );
    assert_eq!(ok(&bought)["status"], "FILLED", "{bought}");
    let spent = ok(&bought)["cummulativeQuoteQty"]
        .as_str()
        .unwrap()
        .to_owned();
    let after = call(&mut api, json!({"id": "a2", "method": "account.status"}));
    let balance = |v: &Value, asset: &str| -> String {
        ok(v)["balances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["asset"] == asset)
            .unwrap_or_else(|| panic!("no {asset} in {v}"))["free"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(balance(&before, "BTC"), "1000000.00000000");
    assert_eq!(balance(&after, "BTC"), "1000000.00100000");
    let usdt = |s: &str| tape_core::fixed::parse_fixed(s.as_bytes(), 8).unwrap();
    assert!(
        usdt(&balance(&after, "USDT")) < usdt(&balance(&before, "USDT")) - usdt(&spent) + 1,
        "the quote balance paid the notional and a fee: {after}"
    );
    assert_eq!(ok(&after)["accountType"], "SPOT");
    let weight = &after["rateLimits"][0];
    assert_eq!(
        (&weight["rateLimitType"], &weight["limit"]),
        (&json!("REQUEST_WEIGHT"), &json!(6000))
    );
}

#[test]
fn a_futures_fill_shows_in_account_position_and_balance() {
    let sim = start(|_| {});
    let _stream = sim.play_to_end();
    let mut api = sim.api(Market::UsdM);
    let flat = call(
        &mut api,
        json!({"id": 1, "method": "account.position",
        "params": {"symbol": "BTCUSDT"}}),
    );
    assert_eq!(
        ok(&flat)[0]["positionAmt"]
            .as_str()
            .unwrap()
            .trim_end_matches('0'),
        "0."
    );
    let sold = call(
        &mut api,
        json!({"id": 2, "method": "order.place", "params": {
        "symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.010"}}),
    );
    assert_eq!(ok(&sold)["status"], "FILLED", "{sold}");
    let pos = call(
        &mut api,
        json!({"id": 3, "method": "account.position",
        "params": {"symbol": "BTCUSDT"}}),
    );
    let p = &ok(&pos)[0];
    assert_eq!(
        (&p["symbol"], &p["positionAmt"]),
        (&json!("BTCUSDT"), &json!("-0.010"))
    );
    assert_eq!(p["entryPrice"], ok(&sold)["avgPrice"]);
    assert_eq!(p["positionSide"], "BOTH");
    let st = call(
        &mut api,
        json!({"id": 4, "method": "order.status", "params": {
        "symbol": "BTCUSDT", "orderId": ok(&sold)["orderId"]}}),
    );
    assert_eq!(
        (&ok(&st)["status"], &ok(&st)["executedQty"]),
        (&json!("FILLED"), &json!("0.010"))
    );
    let bal = call(&mut api, json!({"id": 5, "method": "account.balance"}));
    let usdt = &ok(&bal)[0];
    assert_eq!(usdt["asset"], "USDT");
    assert!(
        usdt["balance"].as_str().unwrap().starts_with("99999"),
        "the fee came off the wallet: {usdt}"
    );
    // Weight per the futures limits.
    assert_eq!(bal["rateLimits"][0]["limit"], 2400);
}

#[test]
fn a_listen_key_streams_user_data_on_private_until_it_expires() {
    let sim = start(|_| {});
    let mut spot = sim.api(Market::Spot);
    let gone = call(
        &mut spot,
        json!({"id": 1, "method": "userDataStream.start"}),
    );
    assert_eq!(
        gone["error"]["code"], -1020,
        "spot has no listen keys: {gone}"
    );
    let mut api = sim.api(Market::UsdM);
    let started = call(
        &mut api,
        json!({"id": 1, "method": "userDataStream.start",
        "params": {"apiKey": "k"}}),
    );
    let key = ok(&started)["listenKey"].as_str().unwrap().to_owned();
    assert_eq!(key.len(), 64);
    let again = call(&mut api, json!({"id": 2, "method": "userDataStream.ping"}));
    assert_eq!(ok(&again)["listenKey"], key.as_str());
    let mut raw = sim.ws(Market::UsdM, &format!("/private/ws/{key}"));
    let mut wrapped = sim.ws(Market::UsdM, &format!("/private/stream?listenKey={key}"));
    let mut bad = sim.ws(Market::UsdM, "/private/ws/nosuchkey");
    assert_eq!(close_code(&mut bad), 1008);
    let placed = call(&mut api, resting_buy("p", "BTCUSDT", "0.010", "pk"));
    ok(&placed);
    let ev = parse(&next_text(&mut raw));
    assert_eq!(
        (&ev["e"], &ev["o"]["c"], &ev["o"]["X"]),
        (&json!("ORDER_TRADE_UPDATE"), &json!("pk"), &json!("NEW"))
    );
    assert!(ev["E"].is_u64() && ev["T"].is_u64(), "{ev}");
    let w = parse(&next_text(&mut wrapped));
    assert_eq!((&w["stream"], &w["data"]), (&json!(key), &ev));
    sim.fault(Fault::ExpireListenKey);
    let exp = parse(&next_text(&mut raw));
    assert_eq!(
        (&exp["e"], &exp["listenKey"]),
        (&json!("listenKeyExpired"), &json!(key))
    );
    // A string, as Binance documents this event's `E`.
    assert!(
        exp["E"].as_str().is_some_and(|e| e.parse::<u64>().is_ok()),
        "{exp}"
    );
    assert_eq!(close_code(&mut raw), 1000);
    let w = parse(&next_text(&mut wrapped));
    assert_eq!(w["data"]["e"], "listenKeyExpired");
    assert_eq!(close_code(&mut wrapped), 1000);
    // The key is gone: ping fails, and a new start makes a new key.
    let ping = call(&mut api, json!({"id": 3, "method": "userDataStream.ping"}));
    assert_eq!(
        ping["error"],
        json!({"code": -1125, "msg": "This listenKey does not exist."})
    );
    let fresh = call(&mut api, json!({"id": 4, "method": "userDataStream.start"}));
    assert_ne!(ok(&fresh)["listenKey"], key.as_str());
}

#[test]
fn a_listen_key_not_pinged_expires_by_itself() {
    let sim = start(|c| c.listen_key_validity = Duration::from_millis(1500));
    let mut api = sim.api(Market::UsdM);
    let started = call(&mut api, json!({"id": 1, "method": "userDataStream.start"}));
    let key = ok(&started)["listenKey"].as_str().unwrap().to_owned();
    let mut private = sim.ws(Market::UsdM, &format!("/private/ws?listenKey={key}"));
    let exp = parse(&next_text(&mut private));
    assert_eq!(exp["e"], "listenKeyExpired");
    assert_eq!(close_code(&mut private), 1000);
}

#[test]
fn a_tiny_order_limit_answers_429_then_bans_with_418() {
    support::clear_of_day_boundary(Duration::from_secs(60));
    let sim = start(|c| {
        c.rate_limits = Some(vec![
            RateLimit::orders(1, 1, Interval::Day),
            RateLimit::weight(1000, 1, Interval::Day),
        ]);
    });
    let mut api = sim.api(Market::Spot);
    let first = call(&mut api, resting_buy("1", "BTCUSDT", "0.00100000", "a"));
    ok(&first);
    assert_eq!(
        first["rateLimits"],
        json!([
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 1, "count": 1},
            // Connecting costs 2, the order 1.
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "DAY", "intervalNum": 1, "limit": 1000, "count": 3}
        ])
    );
    let second = call(&mut api, resting_buy("2", "BTCUSDT", "0.00100000", "b"));
    assert_eq!(second["status"], 429, "{second}");
    assert_eq!(second["error"]["code"], -1015);
    assert_eq!(
        second["error"]["msg"],
        "Too many new orders; current limit is 1 orders per 1 DAY."
    );
    let retry = second["error"]["data"]["retryAfter"].as_u64().unwrap();
    assert_eq!(retry % 86_400_000, 0, "the next UTC day");
    assert_eq!(second["rateLimits"][0]["count"], 1);
    assert_eq!(second["rateLimits"][1]["count"], 4);
    // Not an order: still served.
    let status = call(
        &mut api,
        json!({"id": "q", "method": "openOrders.status",
        "params": {"returnRateLimits": false}}),
    );
    assert_eq!(ok(&status).as_array().unwrap().len(), 1);
    assert!(status.get("rateLimits").is_none(), "{status}");
    // Trying again before retryAfter bans the address.
    let third = call(&mut api, resting_buy("3", "BTCUSDT", "0.00100000", "c"));
    assert_eq!(
        (&third["status"], &third["error"]["code"]),
        (&json!(418), &json!(-1003)),
        "{third}"
    );
    let until = third["error"]["data"]["retryAfter"].as_u64().unwrap();
    assert!(third["error"]["msg"]
        .as_str()
        .unwrap()
        .contains(&until.to_string()));
    let ping = call(&mut api, json!({"id": "p", "method": "ping"}));
    assert_eq!(ping["status"], 418, "banned for everything: {ping}");
    sim.wait_stats("the refusals counted", |s| s.api_rate_limited == 3);
}

#[test]
fn drop_api_closes_api_connections_while_the_order_keeps_resting() {
    let sim = start(|_| {});
    let mut stream = sim.ws(Market::Spot, "/ws");
    let mut api = sim.api(Market::Spot);
    let placed = call(&mut api, resting_buy("p", "BTCUSDT", "0.00100000", "stay"));
    ok(&placed);
    sim.fault(Fault::DropApi);
    match api.read() {
        Err(_) | Ok(Message::Close(None)) => {}
        other => panic!("expected the connection to end without a close frame, got {other:?}"),
    }
    // Streams stay up; a new API connection finds the order still resting.
    assert_eq!(sim.handle.stats().clients, 1);
    stream
        .send(Message::text(r#"{"id":1,"method":"LIST_SUBSCRIPTIONS"}"#))
        .unwrap();
    assert_eq!(
        parse(&next_text(&mut stream)),
        json!({"result": [], "id": 1})
    );
    let mut again = sim.api(Market::Spot);
    let open = call(
        &mut again,
        json!({"id": "o", "method": "openOrders.status"}),
    );
    let open = ok(&open).as_array().unwrap().clone();
    assert_eq!(open.len(), 1);
    assert_eq!(
        (&open[0]["clientOrderId"], &open[0]["status"]),
        (&json!("stay"), &json!("NEW"))
    );
}

#[test]
fn mute_api_leaves_a_request_unanswered_but_carries_it_out() {
    let sim = start(|_| {});
    let mut api = sim.api(Market::UsdM);
    sim.fault(Fault::MuteApi(1));
    api.send(Message::text(
        resting_buy("lost", "BTCUSDT", "0.010", "silent").to_string(),
    ))
    .unwrap();
    // The next answer on the connection is the ping's: the order's never comes.
    let pong = call(&mut api, json!({"id": "ping", "method": "ping"}));
    ok(&pong);
    let st = call(
        &mut api,
        json!({"id": "s", "method": "order.status",
        "params": {"symbol": "BTCUSDT", "origClientOrderId": "silent"}}),
    );
    assert_eq!(ok(&st)["status"], "NEW", "the unanswered order was placed");
    assert_eq!(sim.handle.stats().api_unanswered, 1);
}
