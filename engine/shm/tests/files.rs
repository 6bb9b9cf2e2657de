//! The writer's files as readers see them: every record written comes back equal, the
//! directory is locked and created with clear errors, a replaced or stopped writer is
//! visible, and files of the wrong kind are refused by name.

use tape_shm::{
    BookState, Dec, DepthHead, InstrumentKey, Level, MarketCode, MarketOptions, OpenError, Order,
    OrderId, Portfolio, Position, Reader, ShmDir, ShmError, Symbol, Ticker, Top, Trade,
    UserOptions, UserReader, WriterStatus,
};

fn key(market: MarketCode, symbol: &str, ps: u8, qs: u8) -> InstrumentKey {
    InstrumentKey {
        market: market as u8,
        price_scale: ps,
        qty_scale: qs,
        symbol: Symbol::new(symbol),
    }
}

fn small() -> MarketOptions {
    MarketOptions {
        levels: 5,
        max_instruments: 3,
        ..MarketOptions::default()
    }
}

#[test]
fn every_market_record_reads_back_as_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ShmDir::open(&tmp.path().join("shm")).unwrap();
    let mut w = dir.create_market(&small()).unwrap();
    let r = Reader::open(dir.path()).unwrap();
    assert_eq!(r.instrument_count(), 0);
    assert_eq!(r.status(), WriterStatus::Live);
    assert_eq!(r.writer_pid(), std::process::id());

    let btc = w
        .add_instrument(&key(MarketCode::UsdM, "BTCUSDT", 2, 3))
        .unwrap();
    let eth = w
        .add_instrument(&key(MarketCode::Spot, "ETHUSDT", 2, 4))
        .unwrap();
    let perp = w
        .add_instrument(&key(MarketCode::CoinM, "BTCUSD_PERP", 1, 0))
        .unwrap();
    assert!(
        w.add_instrument(&key(MarketCode::Spot, "XRPUSDT", 4, 1))
            .is_none(),
        "a fourth instrument does not fit three slots"
    );
    assert_eq!(r.instrument_count(), 3);
    let names: Vec<String> = r.instruments().iter().map(|i| i.name()).collect();
    assert_eq!(names, ["usdm:BTCUSDT", "spot:ETHUSDT", "coinm:BTCUSD_PERP"]);
    let i_btc = r.find("usdm:btcusdt").unwrap();
    assert_eq!(
        (i_btc.slot, i_btc.key.price_scale, i_btc.key.qty_scale),
        (0, 2, 3)
    );
    assert_eq!(r.find("ETHUSDT").unwrap().slot, 1);
    assert!(r.find("spot:BTCUSDT").is_none());
    assert!(r.find("nope:BTCUSDT").is_none());

    // Nothing written yet: zeros, state none.
    let t0 = r.bbo(&i_btc).unwrap();
    assert_eq!(t0, Top::default());

    let top = Top {
        update_id: 5_123_108_265_240,
        recv_ns: 1_723_161_262_601_234_567,
        state: BookState::Synced,
        bid: Some(Level {
            price: 6_180_020,
            qty: 2_507,
        }),
        ask: Some(Level {
            price: 6_180_030,
            qty: 2_510,
        }),
    };
    let seq0 = r.top_seq(&i_btc).unwrap();
    w.write_top(btc, &top);
    let (got, seq1) = r.bbo_seq(&i_btc).unwrap();
    assert_eq!(got, top);
    assert_eq!(seq1, seq0 + 2, "one write moves the sequence by two");
    assert_eq!(i_btc.price(got.bid.unwrap().price), "61800.20");
    assert_eq!(i_btc.qty(got.bid.unwrap().qty), "2.507");

    // Depth: 7 levels offered, 5 kept; then fewer levels zero the rest.
    let bids: Vec<Level> = (0..7)
        .map(|i| Level {
            price: 100 - i,
            qty: i + 1,
        })
        .collect();
    let asks = [Level { price: 101, qty: 9 }];
    let head = DepthHead {
        update_id: 77,
        recv_ns: 5,
        state: BookState::Synced,
    };
    w.write_depth(btc, &head, bids.iter().copied(), asks.iter().copied());
    let d = r.levels(&i_btc).unwrap();
    assert_eq!(d.head, head);
    assert_eq!(d.bids, bids[..5]);
    assert_eq!(d.asks, asks);
    let head2 = DepthHead {
        update_id: 78,
        recv_ns: 6,
        state: BookState::OutOfSync,
    };
    w.write_depth(btc, &head2, std::iter::empty(), std::iter::empty());
    let d = r.levels(&i_btc).unwrap();
    assert_eq!((d.head, d.bids.len(), d.asks.len()), (head2, 0, 0));

    let trade = Trade {
        trade_id: 42,
        recv_ns: 9,
        price: 6_180_000,
        qty: 1,
        trade_time_ms: 1_723_161_262_573,
        count: 1,
        buyer_is_maker: true,
        aggregate: true,
    };
    let i_eth = r.find("spot:ETHUSDT").unwrap();
    w.write_trade(eth, &trade);
    assert_eq!(r.last_trade(&i_eth).unwrap(), trade);
    assert_eq!(
        r.last_trade(&i_btc).unwrap().count,
        0,
        "other slots untouched"
    );

    let ticker = Ticker {
        recv_ns: 3,
        event_time_ms: 4,
        last: 10,
        open: 9,
        high: 11,
        low: 8,
        price_change: 1,
        change_pct: Some(Dec {
            mantissa: 11_111,
            scale: 3,
        }),
        volume: Dec {
            mantissa: 5,
            scale: 8,
        },
        quote_volume: Dec {
            mantissa: 50,
            scale: 8,
        },
        mini: false,
    };
    let i_perp = r.find("BTCUSD_PERP").unwrap();
    w.write_ticker(perp, &ticker);
    assert_eq!(r.ticker(&i_perp).unwrap(), ticker);

    w.set_generation(3);
    assert_eq!(r.generation(), 3);
    drop(w);
    assert_eq!(r.status(), WriterStatus::Closed, "a stopped writer says so");
}

#[test]
fn user_records_read_back_and_fewer_entries_clear_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ShmDir::open(&tmp.path().join("shm")).unwrap();
    let opts = UserOptions {
        max_positions: 2,
        max_orders: 3,
        ..UserOptions::default()
    };
    let mut w = dir.create_user("alice", &opts).unwrap();
    let r = UserReader::open(dir.user_path("alice")).unwrap();
    assert_eq!(r.user(), "alice");
    assert_eq!(r.portfolio().unwrap(), Portfolio::default());
    let p = Portfolio {
        recv_ns: 1,
        total_balance: 100_000_000_000,
        realized_pnl: -5,
        unrealized_pnl: 7,
        total_pnl: 2,
        open_positions: 1,
        equity_peak: 9,
        drawdown: 7,
    };
    w.write_portfolio(&p);
    assert_eq!(r.portfolio().unwrap(), p);

    let pos = |q: i64| Position {
        instrument: key(MarketCode::UsdM, "BTCUSDT", 2, 3),
        qty: q,
        avg_entry_price: Some(6_000_000),
        mark: Some(6_000_100),
        realized_pnl: 1,
        unrealized_pnl: 2,
        fees: 3,
        leverage: None,
        liquidation_price: None,
        pnl_overflow: false,
    };
    w.write_positions(11, [pos(1), pos(2), pos(3)].into_iter());
    let (got, total) = r.positions().unwrap();
    assert_eq!(
        (got, total),
        (vec![pos(1), pos(2)], 3),
        "two fit, three exist"
    );

    let order = |id: &str| Order {
        instrument: key(MarketCode::Spot, "ETHUSDT", 2, 4),
        side: 1,
        order_type: 1,
        time_in_force: 0,
        status: 1,
        reduce_only: false,
        client_order_id: OrderId::new(id),
        venue_order_id: Some(5),
        price: 300_000,
        stop_price: 0,
        qty: 10_000,
        filled: 0,
        avg_price: None,
        fees: 0,
        created_ns: 1,
        updated_ns: 2,
    };
    w.write_orders(12, [order("a"), order("b")].into_iter());
    assert_eq!(r.orders().unwrap(), (vec![order("a"), order("b")], 2));
    w.write_orders(13, [order("c")].into_iter());
    assert_eq!(r.orders().unwrap(), (vec![order("c")], 1));
    w.write_orders(14, std::iter::empty());
    assert_eq!(r.orders().unwrap(), (vec![], 0));
}

#[test]
fn one_writer_per_directory_and_clear_directory_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("shm");
    let held = ShmDir::open(&path).unwrap();
    assert!(matches!(ShmDir::open(&path), Err(ShmError::Locked { .. })));
    drop(held);
    ShmDir::open(&path).expect("free again once the first writer is gone");

    let missing = tmp.path().join("no/such/parent/shm");
    let e = ShmDir::open(&missing).unwrap_err();
    assert!(matches!(e, ShmError::Dir { .. }), "{e:?}");
    assert!(e.to_string().contains("does not exist"), "{e}");

    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let e = ShmDir::open(&file).unwrap_err();
    assert!(e.to_string().contains("not a directory"), "{e}");
}

#[test]
fn a_new_writer_replaces_the_file_and_old_readers_can_tell() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ShmDir::open(&tmp.path().join("shm")).unwrap();
    let mut first = dir.create_market(&small()).unwrap();
    first.add_instrument(&key(MarketCode::Spot, "OLDUSDT", 2, 2));
    let old = Reader::open(dir.path()).unwrap();
    assert!(!old.replaced());
    drop(first);
    let _second = dir.create_market(&small()).unwrap();
    assert!(old.replaced(), "the path names a new file");
    assert_eq!(old.status(), WriterStatus::Closed);
    assert_eq!(
        old.instrument_count(),
        1,
        "the old map still reads the old file"
    );
    let new = Reader::open(dir.path()).unwrap();
    assert_eq!(new.instrument_count(), 0);
}

#[test]
fn files_of_the_wrong_kind_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ShmDir::open(&tmp.path().join("shm")).unwrap();
    let _m = dir.create_market(&small()).unwrap();
    let _u = dir.create_user("bob", &UserOptions::default()).unwrap();
    let e = UserReader::open(dir.path().join("market.shm")).unwrap_err();
    assert!(
        matches!(
            e,
            OpenError::WrongKind {
                found: "market",
                expected: "user",
                ..
            }
        ),
        "{e:?}"
    );
    let e = Reader::open(dir.user_path("bob")).unwrap_err();
    assert!(
        matches!(e, OpenError::WrongKind { found: "user", .. }),
        "{e:?}"
    );
    let junk = tmp.path().join("junk");
    std::fs::write(&junk, [7u8; 4096]).unwrap();
    assert!(matches!(
        Reader::open(&junk),
        Err(OpenError::NotTape { .. })
    ));
    std::fs::write(&junk, [0u8; 10]).unwrap();
    assert!(matches!(
        Reader::open(&junk),
        Err(OpenError::Truncated { .. })
    ));
    assert!(matches!(
        Reader::open(tmp.path().join("missing")),
        Err(OpenError::Io { .. })
    ));
    assert!(matches!(
        dir.create_user("../x", &UserOptions::default()),
        Err(ShmError::Options(_))
    ));
}
