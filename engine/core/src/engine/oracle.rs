//! The bookTicker oracle: the exchange's own best bid/ask, checked against the book's top.

use std::collections::VecDeque;

use crate::instrument::InstrumentId;
use crate::msg::BookTicker;

use super::Engine;

/// How many bookTickers per instrument may wait for the book to catch up with them.
pub const MAX_PENDING_ORACLE: usize = 64;

impl Engine {
    /// The exchange's bookTicker is an independent oracle for the book: when its `u` equals
    /// an applied depth id, the tops must agree exactly. A bookTicker often arrives a few
    /// frames before the depth event with the same `u` (separate streams), so those ahead of
    /// the book wait in a small bounded queue.
    pub(super) fn check_oracle(&mut self, t: &BookTicker) {
        let idx = t.instrument.0 as usize;
        let Some(Some(book)) = self.books.get(idx) else {
            return;
        };
        let last = book.last_update_id();
        if book.is_synced() && last == Some(t.update_id) {
            self.compare_oracle(t);
        } else if last.is_none_or(|u| t.update_id > u) {
            if self.pending_oracle.len() <= idx {
                self.pending_oracle.resize_with(idx + 1, VecDeque::new);
            }
            let q = &mut self.pending_oracle[idx];
            if q.back().is_some_and(|b| b.update_id >= t.update_id) {
                return; // out of order: not an oracle we can place
            }
            if q.len() == MAX_PENDING_ORACLE {
                q.pop_front();
            }
            q.push_back(*t);
        }
    }

    /// Checks the waiting bookTickers the book has now caught up with.
    pub(super) fn check_pending_oracle(&mut self, id: InstrumentId) {
        let idx = id.0 as usize;
        let Some(Some(book)) = self.books.get(idx) else {
            return;
        };
        let Some(last) = book.last_update_id().filter(|_| book.is_synced()) else {
            return;
        };
        let Some(q) = self.pending_oracle.get_mut(idx) else {
            return;
        };
        let mut hit = None;
        while let Some(front) = q.front() {
            if front.update_id > last {
                break;
            }
            let t = q.pop_front().expect("front exists");
            if t.update_id == last {
                hit = Some(t);
            }
        }
        if let Some(t) = hit {
            self.compare_oracle(&t);
        }
    }

    fn compare_oracle(&mut self, t: &BookTicker) {
        let Some(Some(book)) = self.books.get(t.instrument.0 as usize) else {
            return;
        };
        self.stats.bbo_checks += 1;
        let (bid, ask) = (book.book().best_bid(), book.book().best_ask());
        let agree = bid.is_some_and(|b| b.price == t.bid_price && b.qty == t.bid_qty)
            && ask.is_some_and(|a| a.price == t.ask_price && a.qty == t.ask_qty);
        if !agree {
            self.stats.bbo_mismatches += 1;
        }
    }
}
