//! Rate limits on the WebSocket API (see [`crate::sim::limits`]): each request's weight,
//! Binance's per method, the orders it places, and the `rateLimits` of its answer.

use std::time::{SystemTime, UNIX_EPOCH};

use tape_core::instrument::Market;

use super::Venue;
use crate::sim::limits::{refusal_reply, with_rate_limits};
use crate::sim::orders::Call;

/// What one admitted request counts for.
#[derive(Debug, Clone, Copy)]
pub(super) struct Meter {
    /// Orders it places when it succeeds.
    orders: u64,
    /// Its answer carries `rateLimits` (`returnRateLimits` not `false`).
    show: bool,
}

/// Weight of connecting to the spot WebSocket API.
pub(super) const CONNECT_WEIGHT: u64 = 2;

/// Wall-clock ms: Binance's windows are fixed UTC intervals.
pub(super) fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Binance's weight of `call` on `market` (1 for a request that did not parse).
fn weight(market: Market, call: Option<&Call>) -> u64 {
    let spot = market == Market::Spot;
    match call {
        None | Some(Call::Ping | Call::Time) => 1,
        Some(Call::Session(_)) => 2,
        Some(Call::Place(_)) => u64::from(spot),
        Some(Call::Cancel(_)) => 1,
        Some(Call::OrderStatus(_)) => {
            if spot {
                4
            } else {
                1
            }
        }
        // Spot only.
        Some(Call::OpenOrders(sym)) => {
            if sym.is_some() {
                6
            } else {
                80
            }
        }
        Some(Call::AccountStatus(_)) => 20,
        Some(Call::AccountPosition(_) | Call::AccountBalance) => 5,
        Some(Call::Subscribe | Call::Unsubscribe(_)) => 2,
        Some(Call::ListenKeyStart | Call::ListenKeyPing | Call::ListenKeyStop) => 1,
    }
}

/// `params.returnRateLimits` unless it is `false`.
fn shows_limits(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("params")?.get("returnRateLimits")?.as_bool())
        .unwrap_or(true)
}

impl Venue {
    /// Counts a request on listener `li`; `Err` is the whole answer of a refused one.
    pub(super) fn meter(
        &mut self,
        li: usize,
        id: &str,
        text: &str,
        call: Option<&Call>,
    ) -> Result<Meter, String> {
        let l = &mut self.listeners[li];
        let orders = u64::from(matches!(call, Some(Call::Place(_))));
        let show = shows_limits(text);
        let now = wall_ms();
        match l.limiter.admit(now, weight(l.market, call), orders) {
            Ok(()) => Ok(Meter { orders, show }),
            Err(refusal) => {
                self.stats.api_rate_limited += 1;
                let reply = refusal_reply(id, &refusal, now);
                Err(if show {
                    with_rate_limits(reply, &l.limiter.json(orders > 0))
                } else {
                    reply
                })
            }
        }
    }

    /// `reply` with the listener's `rateLimits`, after counting the orders of a request that
    /// succeeded.
    pub(super) fn metered(&mut self, li: usize, reply: String, m: Meter, ok: bool) -> String {
        let l = &mut self.listeners[li];
        if ok && m.orders > 0 {
            l.limiter.placed(wall_ms(), m.orders);
        }
        if m.show {
            with_rate_limits(reply, &l.limiter.json(m.orders > 0))
        } else {
            reply
        }
    }

    /// Connecting to the spot API costs weight, as on Binance.
    pub(super) fn charge_connect(&mut self, li: usize) {
        let l = &mut self.listeners[li];
        if l.market == Market::Spot {
            l.limiter.charge(wall_ms(), CONNECT_WEIGHT);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place() -> crate::sim::orders::PlaceParams {
        let text = r#"{"id":1,"method":"order.place","params":{"symbol":"BTCUSDT","side":"BUY","type":"MARKET","quantity":"1"}}"#;
        match crate::sim::orders::parse(text, Market::Spot).call {
            Ok(Call::Place(p)) => p,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn weights_are_binance_per_market() {
        let s = Market::Spot;
        assert_eq!(weight(s, Some(&Call::OpenOrders(None))), 80);
        assert_eq!(
            weight(s, Some(&Call::OpenOrders(Some("BTCUSDT".into())))),
            6
        );
        assert_eq!(weight(s, Some(&Call::AccountStatus(false))), 20);
        assert_eq!(weight(s, Some(&Call::Subscribe)), 2);
        assert_eq!(weight(s, None), 1);
        assert_eq!(weight(Market::UsdM, Some(&Call::Place(place()))), 0);
        assert_eq!(weight(s, Some(&Call::Place(place()))), 1);
        assert_eq!(weight(Market::UsdM, Some(&Call::AccountBalance)), 5);
        assert_eq!(weight(Market::UsdM, Some(&Call::ListenKeyStart)), 1);
    }

    #[test]
    fn return_rate_limits_false_hides_them() {
        assert!(shows_limits(r#"{"id":1,"method":"ping"}"#));
        assert!(shows_limits(
            r#"{"id":1,"method":"ping","params":{"returnRateLimits":true}}"#
        ));
        assert!(!shows_limits(
            r#"{"id":1,"method":"ping","params":{"returnRateLimits":false}}"#
        ));
        assert!(shows_limits("not json"));
    }
}
