//! Matching an order against the recorded book: level walking for takers, the crossing test
//! for resting orders. Pure functions over an [`OrderBook`] that they never change: the sim
//! replays recorded liquidity, so an order's fills do not remove it.

use tape_core::book::OrderBook;
use tape_core::fixed::{Price, Qty};
use tape_core::msg::{Level, Side};

use super::kinds::{OrderSide, Tif};

/// One taker fill: a book level's price and the quantity taken there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TakerFill {
    pub price: Price,
    pub qty: Qty,
}

/// The book side an order of `side` takes from.
fn opposite(side: OrderSide) -> Side {
    match side {
        OrderSide::Buy => Side::Ask,
        OrderSide::Sell => Side::Bid,
    }
}

/// True when a level at `level` is no worse than `limit` for a taker on `side`.
fn acceptable(side: OrderSide, level: Price, limit: Price) -> bool {
    match side {
        OrderSide::Buy => level <= limit,
        OrderSide::Sell => level >= limit,
    }
}

/// Walks `levels` (the opposite side, best first) for up to `qty`, at prices no worse than
/// `limit` (`None`: any price, a market order). One fill per level, at the level's price.
pub(crate) fn walk(
    levels: impl IntoIterator<Item = Level>,
    side: OrderSide,
    limit: Option<Price>,
    qty: Qty,
) -> Vec<TakerFill> {
    let mut fills = Vec::new();
    let mut left = qty.0;
    for level in levels {
        if left <= 0 || limit.is_some_and(|l| !acceptable(side, level.price, l)) {
            break;
        }
        let take = left.min(level.qty.0);
        if take <= 0 {
            continue;
        }
        fills.push(TakerFill {
            price: level.price,
            qty: Qty(take),
        });
        left -= take;
    }
    fills
}

/// The taker fills of a new order on `book` (`None`: no synced book, so no liquidity).
/// `FOK` gets all of `qty` or nothing; `IOC`, `GTC` and market orders get what the levels
/// allow, and the caller decides what happens to the rest.
pub(crate) fn take(
    book: Option<&OrderBook>,
    side: OrderSide,
    limit: Option<Price>,
    qty: Qty,
    tif: Tif,
) -> Vec<TakerFill> {
    let Some(book) = book else {
        return Vec::new();
    };
    let fills = walk(book.levels(opposite(side)), side, limit, qty);
    if tif == Tif::Fok && filled(&fills) < qty.0 {
        return Vec::new();
    }
    fills
}

/// Total quantity of `fills`.
pub(crate) fn filled(fills: &[TakerFill]) -> i64 {
    fills.iter().map(|f| f.qty.0).sum()
}

/// True when a resting limit order of `side` at `price` is crossed by the opposite best:
/// a buy when the best ask is at or below it, a sell when the best bid is at or above it.
pub(crate) fn crosses(book: &OrderBook, side: OrderSide, price: Price) -> bool {
    book.best(opposite(side))
        .is_some_and(|best| acceptable(side, best.price, price))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lv(p: i64, q: i64) -> Level {
        Level {
            price: Price(p),
            qty: Qty(q),
        }
    }

    fn book() -> OrderBook {
        let mut b = OrderBook::new();
        b.load_snapshot(
            &[lv(99, 5), lv(98, 7), lv(97, 9)],
            &[lv(101, 2), lv(102, 3), lv(104, 4)],
        );
        b
    }

    fn fills(v: &[(i64, i64)]) -> Vec<TakerFill> {
        v.iter()
            .map(|&(p, q)| TakerFill {
                price: Price(p),
                qty: Qty(q),
            })
            .collect()
    }

    #[test]
    fn market_orders_walk_levels_best_first_at_level_prices() {
        let b = book();
        let buy = take(Some(&b), OrderSide::Buy, None, Qty(6), Tif::Gtc);
        assert_eq!(buy, fills(&[(101, 2), (102, 3), (104, 1)]));
        let sell = take(Some(&b), OrderSide::Sell, None, Qty(13), Tif::Gtc);
        assert_eq!(sell, fills(&[(99, 5), (98, 7), (97, 1)]));
        // More than the book holds: everything, the caller expires the rest.
        let all = take(Some(&b), OrderSide::Buy, None, Qty(100), Tif::Gtc);
        assert_eq!(filled(&all), 9);
        // The book is untouched.
        assert_eq!(b.best_ask(), Some(lv(101, 2)));
    }

    #[test]
    fn limits_stop_the_walk_and_fok_is_all_or_nothing() {
        let b = book();
        let ioc = take(
            Some(&b),
            OrderSide::Buy,
            Some(Price(102)),
            Qty(10),
            Tif::Ioc,
        );
        assert_eq!(ioc, fills(&[(101, 2), (102, 3)]));
        let sell = take(Some(&b), OrderSide::Sell, Some(Price(99)), Qty(3), Tif::Ioc);
        assert_eq!(sell, fills(&[(99, 3)]));
        assert!(take(Some(&b), OrderSide::Buy, Some(Price(100)), Qty(1), Tif::Gtc).is_empty());
        assert!(take(Some(&b), OrderSide::Buy, Some(Price(102)), Qty(6), Tif::Fok).is_empty());
        let fok = take(Some(&b), OrderSide::Buy, Some(Price(102)), Qty(5), Tif::Fok);
        assert_eq!(fok, fills(&[(101, 2), (102, 3)]));
        assert!(take(None, OrderSide::Buy, None, Qty(1), Tif::Ioc).is_empty());
    }

    #[test]
    fn resting_orders_cross_at_or_through_the_opposite_best() {
        let b = book();
        assert!(crosses(&b, OrderSide::Buy, Price(101)));
        assert!(crosses(&b, OrderSide::Buy, Price(150)));
        assert!(!crosses(&b, OrderSide::Buy, Price(100)));
        assert!(crosses(&b, OrderSide::Sell, Price(99)));
        assert!(!crosses(&b, OrderSide::Sell, Price(100)));
        assert!(!crosses(&OrderBook::new(), OrderSide::Buy, Price(i64::MAX)));
    }
}
