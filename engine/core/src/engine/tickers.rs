//! Derived tickers: rolling 24h statistics computed from trades, published only for
//! instruments whose feed has no exchange ticker stream.

use crate::input::Nanos;
use crate::instrument::InstrumentId;
use crate::output::Event;
use crate::ticker::TradeStats;

use super::Engine;

impl Engine {
    /// Rolling 24h statistics from trades, for instruments with no exchange ticker stream.
    pub(super) fn derive_ticker(&mut self, now: Nanos, t: &crate::msg::Trade) {
        let idx = t.instrument.0 as usize;
        if !self.cfg.derive_tickers || self.has_exchange_ticker.get(idx).copied().unwrap_or(false) {
            return;
        }
        if self.trade_stats.len() <= idx {
            self.trade_stats.resize_with(idx + 1, || None);
        }
        let inst = self.registry.get(t.instrument);
        let stats = self.trade_stats[idx].get_or_insert_with(TradeStats::default);
        if let Some(ticker) = stats.on_trade(t, inst) {
            self.emit(now, Event::Ticker(ticker));
        }
    }

    /// The exchange publishes its own ticker for `id`: stop deriving one, for good.
    pub(super) fn exchange_ticker_seen(&mut self, id: InstrumentId) {
        let idx = id.0 as usize;
        if self.has_exchange_ticker.len() <= idx {
            self.has_exchange_ticker.resize(idx + 1, false);
        }
        self.has_exchange_ticker[idx] = true;
        if let Some(slot) = self.trade_stats.get_mut(idx) {
            *slot = None;
        }
    }
}
