//! The WebSocket API on each listener (`/ws-api/v3`, `/ws-fapi/v1`, `/ws-dapi/v1`): requests
//! in, responses and user-data events out, over the listener's
//! [`SimAccount`](crate::sim::orders::SimAccount). Every connection of a listener shares its
//! account; events go to every connection of that listener that subscribed.

use mio::Registry;
use tape_core::book::OrderBook;
use tape_core::engine::Engine;
use tape_core::instrument::Market;
use tape_node::net::{SendResult, SocketId};

use super::{ApiSession, Client, Listener, Venue, POLICY};
use crate::sim::orders::{self, ApiError, Call, Outcome, SymbolSpec};
use crate::sim::SimStats;

/// The WebSocket API path of a market, as on Binance's API hosts.
pub(crate) fn api_path(market: Market) -> &'static str {
    match market {
        Market::Spot => "/ws-api/v3",
        Market::UsdM => "/ws-fapi/v1",
        Market::CoinM => "/ws-dapi/v1",
    }
}

/// The synced book of `spec` on `market` in the sim's engine, when the engine registered it
/// at the spec's scales.
fn synced_book<'e>(engine: &'e Engine, market: Market, spec: &SymbolSpec) -> Option<&'e OrderBook> {
    let reg = engine.registry();
    let id = reg.lookup(market, spec.name.as_bytes())?;
    let inst = reg.get(id);
    if (inst.price_scale, inst.qty_scale) != (spec.price_scale, spec.qty_scale) {
        return None;
    }
    engine.book(id).filter(|b| b.is_synced()).map(|b| b.book())
}

/// Queues `msg` to `conn` (flushed by [`Venue::flush_clients`]); a connection too far behind
/// is closed as a slow consumer.
fn queue(reg: &Registry, l: &mut Listener, conn: SocketId, msg: String, stats: &mut SimStats) {
    match l.net.queue(reg, conn, msg.into()) {
        SendResult::Sent | SendResult::Buffered => {
            if let Some(c) = l.clients.get_mut(&conn) {
                c.touched = true;
            }
        }
        SendResult::Refused => {
            l.clients.remove(&conn);
            l.net.close(reg, conn, POLICY, "slow consumer");
            stats.clients_slow += 1;
        }
        SendResult::Closed => {
            l.clients.remove(&conn);
        }
    }
}

impl Venue {
    /// True when `conn` on listener `li` is a WebSocket API connection.
    pub(super) fn is_api(&self, li: usize, conn: SocketId) -> bool {
        self.listeners[li]
            .clients
            .get(&conn)
            .is_some_and(|c| c.api.is_some())
    }

    /// A WebSocket API connection opened. It does not start the timeline (stream clients do).
    pub(super) fn on_api_open(&mut self, li: usize, conn: SocketId, now: u64) {
        self.listeners[li].clients.insert(
            conn,
            Client {
                raw: false,
                names: Vec::new(),
                keys: Vec::new(),
                route: None,
                opened_ns: now,
                touched: false,
                api: Some(ApiSession {
                    auth: super::auth::new_session(),
                    ..ApiSession::default()
                }),
            },
        );
        self.stats.api_clients_total += 1;
        self.charge_connect(li);
    }

    /// A binary frame on an API connection: not a request.
    pub(super) fn on_api_binary(&mut self, li: usize, conn: SocketId) {
        self.answer(
            li,
            conn,
            "null",
            Err(ApiError::invalid_json("binary frames are not requests")),
            None,
        );
    }

    /// One request: answered on `conn`, its events to the listener's subscribers.
    pub(super) fn on_api_text(&mut self, li: usize, conn: SocketId, text: &str) {
        let req = orders::parse(text, self.listeners[li].market);
        let meter = match self.meter(li, req.id, text, req.call.as_ref().ok()) {
            Ok(m) => m,
            Err(reply) => {
                self.stats.api_requests += 1;
                let reg = self.poll.registry();
                queue(reg, &mut self.listeners[li], conn, reply, &mut self.stats);
                self.flush_clients();
                return;
            }
        };
        let outcome = self.authorized_call(li, conn, text, req.call);
        self.answer(li, conn, req.id, outcome, Some(meter));
    }

    fn answer(
        &mut self,
        li: usize,
        conn: SocketId,
        id: &str,
        outcome: Result<Outcome, ApiError>,
        meter: Option<super::limits::Meter>,
    ) {
        self.stats.api_requests += 1;
        let ok = outcome.is_ok();
        let (reply, events) = match outcome {
            Ok(Outcome { result, events }) => (orders::response_ok(id, &result), events),
            Err(e) => {
                self.stats.bad_requests += 1;
                (orders::response_err(id, &e), Vec::new())
            }
        };
        let reply = match meter {
            Some(m) => self.metered(li, reply, m, ok),
            None => reply,
        };
        if self.listeners[li].mute_left > 0 {
            // `mute-api`: carried out, never answered.
            self.listeners[li].mute_left -= 1;
            self.stats.api_unanswered += 1;
        } else {
            let reg = self.poll.registry();
            queue(reg, &mut self.listeners[li], conn, reply, &mut self.stats);
        }
        self.user_data(li, &events);
        self.flush_clients();
    }

    pub(super) fn api_call(
        &mut self,
        li: usize,
        conn: SocketId,
        call: Call,
    ) -> Result<Outcome, ApiError> {
        let market = self.listeners[li].market;
        let done = |result: String| Outcome {
            result,
            events: Vec::new(),
        };
        match call {
            Call::Ping => Ok(done("{}".to_owned())),
            Call::Time => Ok(done(format!(
                "{{\"serverTime\":{}}}",
                super::auth::wall_ms()
            ))),
            Call::Session(op) => self.session_call(li, conn, op, None),
            Call::Subscribe | Call::Unsubscribe(_) => {
                let l = &mut self.listeners[li];
                let Some(session) = l.clients.get_mut(&conn).and_then(|c| c.api.as_mut()) else {
                    return Err(ApiError::new(-1000, "connection is gone"));
                };
                match (call, session.subscription) {
                    (Call::Subscribe, Some(_)) => Err(ApiError::new(
                        -2035,
                        "User Data Stream subscription already active.",
                    )),
                    (Call::Subscribe, None) => {
                        let id = l.next_subscription;
                        l.next_subscription += 1;
                        session.subscription = Some(id);
                        Ok(done(format!("{{\"subscriptionId\":{id}}}")))
                    }
                    (Call::Unsubscribe(want), Some(id)) if want.is_none_or(|w| w == id) => {
                        session.subscription = None;
                        Ok(done("{}".to_owned()))
                    }
                    _ => Err(ApiError::new(
                        -2036,
                        "User Data Stream subscription not active.",
                    )),
                }
            }
            Call::Place(p) => {
                let sym = self.symbol(market, &p.symbol)?;
                let book = synced_book(&self.engine, market, &self.specs[sym]);
                let l = &mut self.listeners[li];
                l.account
                    .place(&self.specs[sym], sym as u32, &p, book, l.clock_ms)
            }
            Call::Cancel(c) => {
                let sym = self.symbol(market, &c.symbol)?;
                let l = &mut self.listeners[li];
                l.account
                    .cancel(&self.specs[sym], sym as u32, &c, l.clock_ms)
            }
            other => self.api_extra(li, conn, other),
        }
    }

    /// The timeline's index of `symbol` on `market`.
    pub(super) fn symbol(&self, market: Market, symbol: &str) -> Result<usize, ApiError> {
        self.tl
            .symbol_id(market, symbol)
            .ok_or_else(|| ApiError::new(-1121, "Invalid symbol."))
    }

    /// Queues user-data `events` to every subscribed connection of listener `li`.
    fn user_data(&mut self, li: usize, events: &[String]) {
        if events.is_empty() {
            return;
        }
        self.private_user_data(li, events);
        let reg = self.poll.registry();
        let l = &mut self.listeners[li];
        let subs: Vec<(SocketId, u64)> = l
            .clients
            .iter()
            .filter_map(|(id, c)| Some((*id, c.api?.subscription?)))
            .collect();
        for (conn, sub) in subs {
            for ev in events {
                queue(reg, l, conn, orders::envelope(sub, ev), &mut self.stats);
            }
        }
    }

    /// A depth frame of symbol `sym` on `market` was applied: the listener's clock moves to
    /// its event time, and resting orders it crosses fill.
    pub(super) fn on_depth(&mut self, market: Market, sym: u32, event_ms: u64) {
        let Some(li) = self.listeners.iter().position(|l| l.market == market) else {
            return;
        };
        let l = &mut self.listeners[li];
        l.clock_ms = l.clock_ms.max(event_ms);
        let spec = &self.specs[sym as usize];
        if !l.account.has_resting(sym) {
            return;
        }
        let Some(book) = synced_book(&self.engine, market, spec) else {
            return;
        };
        let events = l.account.on_book(spec, sym, book, l.clock_ms);
        self.user_data(li, &events);
    }
}
