//! The WebSocket API's query methods on the venue: they read the listener's account with the
//! specs of the listener's symbols (see [`crate::sim::orders`] for the shapes).

use tape_core::instrument::Market;
use tape_node::net::SocketId;

use super::Venue;
use crate::sim::orders::{ApiError, Call, Outcome, SymbolSpec};

impl Venue {
    /// `(index, spec)` of every symbol of `market`, in the timeline's order.
    fn market_specs(&self, market: Market) -> Vec<(u32, &SymbolSpec)> {
        self.tl
            .symbols
            .iter()
            .zip(&self.specs)
            .enumerate()
            .filter(|(_, (s, _))| s.market == market)
            .map(|(i, (_, spec))| (i as u32, spec))
            .collect()
    }

    /// The calls beyond placing, cancelling, subscribing and `ping`.
    pub(super) fn api_extra(
        &mut self,
        li: usize,
        conn: SocketId,
        call: Call,
    ) -> Result<Outcome, ApiError> {
        let market = self.listeners[li].market;
        let now_ms = self.listeners[li].clock_ms;
        let result = match call {
            Call::OrderStatus(q) => {
                let sym = self.symbol(market, &q.symbol)?;
                self.listeners[li]
                    .account
                    .order_status(&self.specs[sym], sym as u32, &q)?
            }
            Call::OpenOrders(only) => {
                let only = match only {
                    Some(s) => Some(self.symbol(market, &s)? as u32),
                    None => None,
                };
                self.listeners[li].account.open_orders(&self.specs, only)
            }
            Call::AccountStatus(omit_zero) => {
                let specs: Vec<&SymbolSpec> = self
                    .market_specs(market)
                    .into_iter()
                    .map(|(_, s)| s)
                    .collect();
                self.listeners[li]
                    .account
                    .account_status(&specs, omit_zero, now_ms)
            }
            Call::AccountPosition(only) => {
                let only = match only {
                    Some(s) => Some(self.symbol(market, &s)? as u32),
                    None => None,
                };
                let mut specs = self.market_specs(market);
                specs.retain(|(i, _)| only.is_none_or(|o| o == *i));
                self.listeners[li].account.account_position(&specs)
            }
            Call::AccountBalance => {
                let specs = self.market_specs(market);
                self.listeners[li].account.account_balance(&specs, now_ms)
            }
            Call::ListenKeyStart | Call::ListenKeyPing | Call::ListenKeyStop => {
                return self.listen_key_call(li, conn, &call);
            }
            Call::Place(_)
            | Call::Cancel(_)
            | Call::Subscribe
            | Call::Unsubscribe(_)
            | Call::Time
            | Call::Session(_)
            | Call::Ping => {
                return Err(ApiError::new(-1000, "not a query"));
            }
        };
        Ok(Outcome {
            result,
            events: Vec::new(),
        })
    }
}
