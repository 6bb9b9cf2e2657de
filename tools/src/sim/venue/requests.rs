//! What clients ask of the venue: Binance's WebSocket subscription requests and the HTTP
//! endpoints (REST depth, `/sim/fault`, `/sim/stats`).

use tape_core::instrument::Market;
use tape_node::live::{Endpoint, Routes};
use tape_node::net::SocketId;

use super::api::api_path;
use super::{Client, Phase, Venue, POLICY};
use crate::sim::fault::Fault;
use crate::sim::rest::{self, Reply};
use crate::sim::timeline::{stream_key, Timeline};

/// Most streams one connection may name (Binance: 1024).
const MAX_STREAMS: usize = 1024;

impl Venue {
    /// A connection opened: `/stream?streams=a/b` (combined), `/ws/a/b` or `/ws` (raw), or the
    /// market's WebSocket API path. On USD-M these may sit under a routed endpoint
    /// (`/public/stream`, `/market/ws/a/b`, ...): see [`split_route`].
    pub(super) fn on_open(&mut self, li: usize, conn: SocketId, path: &str, query: &str, now: u64) {
        if path == api_path(self.listeners[li].market) {
            self.on_api_open(li, conn, now);
            return;
        }
        if self.on_private_open(li, conn, path, query, now) {
            return;
        }
        if path.starts_with("/ws-") {
            self.stats.bad_requests += 1;
            let reg = self.poll.registry();
            self.listeners[li].net.close(
                reg,
                conn,
                POLICY,
                "Invalid request: no WebSocket API at this path on this market",
            );
            return;
        }
        let (route, path) = split_route(self.listeners[li].market, path);
        let names: Option<Vec<String>> = if path == "/stream" {
            Some(
                query
                    .split('&')
                    .filter_map(|kv| kv.strip_prefix("streams="))
                    .flat_map(|v| v.split('/'))
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            )
        } else if path == "/ws" {
            Some(Vec::new())
        } else {
            path.strip_prefix("/ws/").map(|rest| {
                rest.split('/')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
        };
        let reg = self.poll.registry();
        let l = &mut self.listeners[li];
        let Some(names) =
            names.filter(|n| n.len() <= MAX_STREAMS && n.iter().all(|s| valid_name(s)))
        else {
            self.stats.bad_requests += 1;
            l.net
                .close(reg, conn, POLICY, "Invalid request: bad stream name");
            return;
        };
        let keys = delivered_keys(&self.tl, route, &names);
        l.clients.insert(
            conn,
            Client {
                raw: path != "/stream",
                names,
                keys,
                route,
                opened_ns: now,
                touched: false,
                api: None,
            },
        );
        self.stats.clients_total += 1;
        if self.phase == Phase::Waiting {
            self.start_pass(now);
        }
    }

    /// Binance's live subscription requests: `SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`
    /// (or, on a WebSocket API connection, an API request).
    pub(super) fn on_text(&mut self, li: usize, conn: SocketId, text: &str) {
        use serde_json::Value;
        if self.is_api(li, conn) {
            self.on_api_text(li, conn, text);
            return;
        }
        let reg = self.poll.registry();
        let l = &mut self.listeners[li];
        let Some(client) = l.clients.get_mut(&conn) else {
            return;
        };
        let reply = match serde_json::from_str::<Value>(text) {
            Err(e) => Err((3, format!("Invalid JSON: {e}"), Value::Null)),
            Ok(req) => {
                let id = req.get("id").cloned().unwrap_or(Value::Null);
                let params: Option<Vec<&str>> = match req.get("params") {
                    None => Some(Vec::new()),
                    Some(Value::Array(a)) => a.iter().map(Value::as_str).collect(),
                    Some(_) => None,
                };
                match (req.get("method").and_then(Value::as_str), params) {
                    _ if !(id.is_u64() || id.is_null() || id.is_string()) => Err((
                        2,
                        "Invalid request: request ID must be an unsigned integer".into(),
                        Value::Null,
                    )),
                    (Some(m @ ("SUBSCRIBE" | "UNSUBSCRIBE")), Some(p))
                        if p.iter().all(|s| valid_name(s))
                            && client.names.len() + p.len() <= MAX_STREAMS =>
                    {
                        for name in p {
                            let key = stream_key(name);
                            client.names.retain(|n| stream_key(n) != key);
                            if m == "SUBSCRIBE" {
                                client.names.push(name.to_owned());
                            }
                        }
                        client.keys = delivered_keys(&self.tl, client.route, &client.names);
                        Ok(serde_json::json!({ "result": null, "id": id }))
                    }
                    (Some("LIST_SUBSCRIPTIONS"), _) => {
                        Ok(serde_json::json!({ "result": client.names, "id": id }))
                    }
                    (Some("SUBSCRIBE" | "UNSUBSCRIBE"), _) => Err((
                        2,
                        "Invalid request: invalid stream names in params".into(),
                        id,
                    )),
                    _ => Err((
                        2,
                        "Invalid request: unknown method, expected one of SUBSCRIBE, \
                         UNSUBSCRIBE, LIST_SUBSCRIPTIONS"
                            .into(),
                        id,
                    )),
                }
            }
        };
        let reply = match reply {
            Ok(v) => v.to_string(),
            Err((code, msg, id)) => {
                self.stats.bad_requests += 1;
                error_reply(code, &msg, &id)
            }
        };
        l.net.send(reg, conn, reply.into());
    }

    pub(super) fn route(
        &mut self,
        li: usize,
        method: &str,
        path: &str,
        query: &str,
        now: u64,
    ) -> Reply {
        let market = self.listeners[li].market;
        if path == rest::depth_path(market) {
            if method != "GET" && method != "HEAD" {
                return Reply::error(405, -1000, "Only GET is supported.");
            }
            return self.depth(li, query);
        }
        match path {
            "/sim/fault" => self.http_fault(li, query, now),
            "/sim/stats" => {
                self.refresh_stats();
                Reply::json(serde_json::to_string(&self.stats).unwrap_or_default())
            }
            p if matches!(split_route(market, p).1, "/stream" | "/ws") => {
                Reply::text(426, "WebSocket upgrade required\n")
            }
            p if p == api_path(market) => Reply::text(426, "WebSocket upgrade required\n"),
            p if split_route(market, p).1.starts_with("/ws/") => {
                Reply::text(426, "WebSocket upgrade required\n")
            }
            _ => Reply::text(404, "not found\n"),
        }
    }

    fn depth(&mut self, li: usize, query: &str) -> Reply {
        let req = match rest::parse_depth_query(query) {
            Ok(r) => r,
            Err(reply) => return reply,
        };
        let l = &mut self.listeners[li];
        let Some(sym) = self.tl.symbol_id(l.market, &req.symbol) else {
            return Reply::error(400, -1121, "Invalid symbol.");
        };
        if l.refuse_left > 0 {
            l.refuse_left -= 1;
            self.stats.snapshots_refused += 1;
            return Reply::unavailable("snapshot refused (injected fault)");
        }
        let reg = self.engine.registry();
        let synced = reg
            .lookup(l.market, req.symbol.as_bytes())
            .and_then(|id| Some((id, self.engine.book(id)?)))
            .filter(|(_, book)| book.is_synced());
        let Some((id, book)) = synced else {
            self.stats.snapshots_refused += 1;
            return Reply::unavailable("snapshot not available yet");
        };
        self.stats.snapshots_served += 1;
        Reply::json(rest::depth_body(
            l.market,
            reg.get(id),
            book,
            self.last_depth_ms[sym],
            req.limit,
        ))
    }

    /// `GET /sim/fault?kind=KIND[&market=MARKET|all]`; the listener's own market by default.
    fn http_fault(&mut self, li: usize, query: &str, now: u64) -> Reply {
        let mut scope = Some(self.listeners[li].market);
        let mut kind = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("kind", v)) => kind = Some(v),
                Some(("market", "all")) => scope = None,
                Some(("market", m)) => match Market::parse(m) {
                    Some(m) => scope = Some(m),
                    None => return Reply::text(400, "unknown market (spot, usdm, coinm, all)\n"),
                },
                _ => return Reply::text(400, "expected kind=KIND[&market=MARKET|all]\n"),
            }
        }
        let fault = match kind.map(str::parse::<Fault>) {
            Some(Ok(f)) => f,
            Some(Err(e)) => return Reply::text(400, format!("{e}\n")),
            None => return Reply::text(400, "missing kind=KIND\n"),
        };
        self.apply(scope, fault, now);
        let on = scope.map_or("all markets", Market::as_str);
        Reply::text(200, format!("ok: {fault} on {on}\n"))
    }
}

/// A stream path's endpoint class and the path below it. USD-M routes by path: `/public/..`
/// and `/market/..` deliver their own class's streams, and a path without one (`/stream`,
/// `/ws`: the legacy endpoints) delivers `/public`'s only. Streams of the other class are
/// accepted and listed but never delivered, as Binance does. Other markets do not route.
pub(super) fn split_route(market: Market, path: &str) -> (Option<Endpoint>, &str) {
    if market != Market::UsdM {
        return (None, path);
    }
    for e in Endpoint::ALL {
        let rest = path
            .strip_prefix('/')
            .and_then(|p| p.strip_prefix(e.as_str()))
            .filter(|r| r.starts_with('/'));
        if let Some(rest) = rest {
            return (Some(e), rest);
        }
    }
    (Some(Endpoint::Public), path)
}

/// The keys of the `names` a connection of class `route` is sent: those with frames in the
/// timeline that Binance's table routes to its class.
fn delivered_keys(tl: &Timeline, route: Option<Endpoint>, names: &[String]) -> Vec<u32> {
    let table = Routes::default();
    names
        .iter()
        .filter(|n| route.is_none_or(|r| table.endpoint(n) == r))
        .filter_map(|n| tl.key_id(n))
        .collect()
}

/// A stream name a client may ask for: 1 to 100 of `[A-Za-z0-9@_!.-]`.
fn valid_name(s: &str) -> bool {
    (1..=100).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"@_!.-".contains(&c))
}

/// `{"error":{"code":C,"msg":M},"id":ID}`, Binance's answer to a bad WebSocket request.
pub(super) fn error_reply(code: i32, msg: &str, id: &serde_json::Value) -> String {
    serde_json::json!({ "error": { "code": code, "msg": msg }, "id": id }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_are_checked() {
        assert!(valid_name("btcusdt@depth@100ms"));
        assert!(valid_name("!ticker@arr"));
        for bad in ["", "a b", "a\"b", "a/b", &"x".repeat(101)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn usdm_paths_route_and_others_do_not() {
        let (p, m) = (Some(Endpoint::Public), Some(Endpoint::Market));
        for (path, want) in [
            ("/public/stream", (p, "/stream")),
            ("/market/stream", (m, "/stream")),
            ("/market/ws/btcusdt@aggTrade", (m, "/ws/btcusdt@aggTrade")),
            ("/public/ws", (p, "/ws")),
            ("/stream", (p, "/stream")),
            ("/ws/btcusdt@depth", (p, "/ws/btcusdt@depth")),
            ("/publicx/stream", (p, "/publicx/stream")),
            ("/market", (p, "/market")),
        ] {
            assert_eq!(split_route(Market::UsdM, path), want, "{path}");
        }
        for market in [Market::Spot, Market::CoinM] {
            assert_eq!(
                split_route(market, "/market/stream"),
                (None, "/market/stream")
            );
        }
    }

    #[test]
    fn errors_are_binance_shaped() {
        let v: serde_json::Value =
            serde_json::from_str(&error_reply(2, "Invalid \"x\"", &serde_json::json!(5))).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error": {"code": 2, "msg": "Invalid \"x\""}, "id": 5})
        );
    }
}
