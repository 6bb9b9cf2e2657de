//! The shared-memory publication on the engine thread: what the engine produced for an input
//! becomes records of `tape-shm`'s files, for colocated readers.
//!
//! The pipeline calls [`Publisher::publish`] right after the engine applied an input, with
//! the input's outputs still queued in the engine: each goes through
//! [`Publisher::handle_output`], then [`Publisher::flush`] finishes the input, all before
//! the hub serializes anything for sockets (the new top of book reaches shared memory
//! first). A replay does the same, so the files are a function of the journal. In steady state neither allocates nor makes a system
//! call: a write is a few stores into a mapped page that was faulted in when the file was
//! created.
//!
//! What is written when:
//!
//! - a `bbo` output: the instrument's top-of-book record at once, with the update id the
//!   WebSocket `bbo` message carries;
//! - a trade, an aggregate trade, a ticker: its record at once;
//! - any book event: the instrument is marked, and at the flush its depth record (the
//!   book's first N levels, update id and state) is written, and its top record too when the
//!   book's state changed without a `bbo` (a book that loses sync is never left looking live);
//! - a private `orders`, `positions` or `portfolio` message of a user: that user's record of
//!   the same name is rewritten from the account at the flush.

use std::collections::HashMap;
use std::path::PathBuf;

use tape_core::account::{Account, OrderSide, OrderStatus, OrderType, TimeInForce};
use tape_core::book::{BookSync, SyncState};
use tape_core::desk::PrivateChannel;
use tape_core::engine::Engine;
use tape_core::instrument::{InstrumentId, Market, Registry};
use tape_core::output::{Event, Output};
use tape_shm::{
    BookState, Dec, DepthHead, InstrumentKey, Level, MarketCode, MarketOptions, MarketWriter,
    Order, OrderId, Portfolio, Position, ShmDir, ShmError, Slot, Symbol, Ticker, Top, Trade,
    UserOptions, UserWriter,
};

/// Where and how the publication is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShmConfig {
    /// The directory (`/dev/shm/tape` by default); created if its parent exists.
    pub dir: PathBuf,
    /// The market file.
    pub market: MarketOptions,
    /// Every user file (its group unless `user_groups` names another).
    pub user: UserOptions,
    /// Per user: the group of their file.
    pub user_groups: Vec<(String, u32)>,
}

impl ShmConfig {
    /// Defaults in `dir`.
    pub fn new(dir: PathBuf) -> ShmConfig {
        ShmConfig {
            dir,
            market: MarketOptions::default(),
            user: UserOptions::default(),
            user_groups: Vec::new(),
        }
    }

    fn user_options(&self, user: &str) -> UserOptions {
        let mut o = self.user;
        if let Some((_, g)) = self.user_groups.iter().find(|(u, _)| u == user) {
            o.group = Some(*g);
        }
        o
    }
}

/// What the publisher knows about one slot.
#[derive(Debug, Clone, Copy, Default)]
struct SlotInfo {
    /// The top record as last written.
    top: Top,
    /// The last `bbo` output (what a WebSocket client last got).
    last_bbo: Top,
    /// Trades written in this generation.
    trades: u64,
    /// Marked for the flush.
    dirty: bool,
}

/// Bits of a user's records to rewrite.
const ORDERS: u8 = 1;
const POSITIONS: u8 = 2;
const PORTFOLIO: u8 = 4;

#[derive(Debug)]
struct UserPub {
    name: String,
    writer: UserWriter,
    dirty: u8,
}

/// The engine's side of the publication (see the module docs).
#[derive(Debug)]
pub struct Publisher {
    cfg: ShmConfig,
    dir: ShmDir,
    market: MarketWriter,
    /// Engine instrument id -> slot, for this engine: `None` not looked up yet, `Some(None)`
    /// no slot left.
    slots: Vec<Option<Option<Slot>>>,
    /// Instrument identity -> slot, across engine restarts (slots are never reused).
    by_key: HashMap<InstrumentKey, Slot>,
    info: Vec<SlotInfo>,
    /// Engine ids marked this input, each once.
    dirty: Vec<InstrumentId>,
    users: Vec<UserPub>,
    /// The desk's users have files (set once the engine has a desk).
    users_bound: bool,
    /// Receive time of the input being handled.
    recv_ns: u64,
    generation: u64,
    /// Instruments that found no slot (said once on stderr).
    unpublished: u64,
}

fn market_code(m: Market) -> MarketCode {
    match m {
        Market::Spot => MarketCode::Spot,
        Market::UsdM => MarketCode::UsdM,
        Market::CoinM => MarketCode::CoinM,
    }
}

/// The state code of a book (no book: [`BookState::None`]).
pub fn book_state(book: Option<&BookSync>) -> BookState {
    match book.map(BookSync::state) {
        None => BookState::None,
        Some(SyncState::AwaitingSnapshot) => BookState::AwaitingSnapshot,
        Some(SyncState::SnapshotLoaded) => BookState::SnapshotLoaded,
        Some(SyncState::Synced) => BookState::Synced,
        Some(SyncState::OutOfSync) => BookState::OutOfSync,
    }
}

fn level(l: tape_core::msg::Level) -> Level {
    Level {
        price: l.price.0,
        qty: l.qty.0,
    }
}

fn key_of(registry: &Registry, id: InstrumentId) -> Option<InstrumentKey> {
    if (id.0 as usize) >= registry.len() {
        return None;
    }
    let i = registry.get(id);
    Some(InstrumentKey {
        market: market_code(i.market) as u8,
        price_scale: i.price_scale,
        qty_scale: i.qty_scale,
        symbol: Symbol::new(&i.symbol),
    })
}

impl Publisher {
    /// Opens the directory (locking it), creates the market file and a file per user in
    /// `users` (more are created when the engine's desk names them).
    ///
    /// # Errors
    /// A directory that cannot be created, written or locked; a file that cannot be created
    /// (a full file system included); bad options.
    pub fn open(cfg: &ShmConfig, users: &[String]) -> Result<Publisher, ShmError> {
        cfg.market.validate()?;
        cfg.user.validate()?;
        let dir = ShmDir::open(&cfg.dir)?;
        let market = dir.create_market(&cfg.market)?;
        let n = cfg.market.max_instruments as usize;
        let mut p = Publisher {
            cfg: cfg.clone(),
            dir,
            market,
            slots: Vec::with_capacity(n),
            by_key: HashMap::with_capacity(n),
            info: vec![SlotInfo::default(); n],
            dirty: Vec::with_capacity(n),
            users: Vec::new(),
            users_bound: false,
            recv_ns: 0,
            generation: 0,
            unpublished: 0,
        };
        for u in users {
            p.add_user(u)?;
        }
        Ok(p)
    }

    /// The directory.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Instruments that got no slot (the market file is full).
    pub fn unpublished(&self) -> u64 {
        self.unpublished
    }

    fn add_user(&mut self, name: &str) -> Result<(), ShmError> {
        if self.users.iter().any(|u| u.name == name) {
            return Ok(());
        }
        let writer = self.dir.create_user(name, &self.cfg.user_options(name))?;
        self.users.push(UserPub {
            name: name.to_owned(),
            writer,
            dirty: 0,
        });
        Ok(())
    }

    /// The slot of `id`, publishing the instrument on first sight.
    #[inline]
    fn slot(&mut self, id: InstrumentId, registry: &Registry) -> Option<Slot> {
        let idx = id.0 as usize;
        if let Some(Some(s)) = self.slots.get(idx) {
            return *s;
        }
        self.lookup(id, registry)
    }

    #[cold]
    fn lookup(&mut self, id: InstrumentId, registry: &Registry) -> Option<Slot> {
        let idx = id.0 as usize;
        if self.slots.len() <= idx {
            self.slots.resize(idx + 1, None);
        }
        let key = key_of(registry, id)?;
        let slot = match self.by_key.get(&key) {
            Some(s) => Some(*s),
            None => {
                let s = self.market.add_instrument(&key);
                match s {
                    Some(s) => {
                        self.by_key.insert(key, s);
                    }
                    None => {
                        self.unpublished += 1;
                        if self.unpublished == 1 {
                            eprintln!(
                                "tape: shm: the market file has no slot left for {}:{} \
                                 (shm.max_instruments = {}); it and any later instrument \
                                 are not published",
                                key.symbol,
                                MarketCode::from_code(key.market).map_or("?", MarketCode::as_str),
                                self.cfg.market.max_instruments
                            );
                        }
                    }
                }
                s
            }
        };
        self.slots[idx] = Some(slot);
        slot
    }

    /// Writes a trade of `id` as its last one, counting it (`trade.count` is set here).
    fn trade(&mut self, id: InstrumentId, mut trade: Trade, registry: &Registry) {
        if let Some(slot) = self.slot(id, registry) {
            let info = &mut self.info[slot.0 as usize];
            info.trades += 1;
            trade.count = info.trades;
            self.market.write_trade(slot, &trade);
        }
    }

    fn mark(&mut self, id: InstrumentId, registry: &Registry) {
        if let Some(s) = self.slot(id, registry) {
            let info = &mut self.info[s.0 as usize];
            if !info.dirty {
                info.dirty = true;
                self.dirty.push(id);
            }
        }
    }

    /// One output of the input being handled (see the module docs).
    #[inline]
    pub fn handle_output(&mut self, out: &Output, engine: &Engine) {
        self.recv_ns = out.recv.0;
        let registry = engine.registry();
        match &out.event {
            Event::Bbo(b) => {
                let Some(slot) = self.slot(b.instrument, registry) else {
                    return;
                };
                let top = Top {
                    update_id: b.update_id,
                    recv_ns: out.recv.0,
                    state: BookState::Synced,
                    bid: b.bid.map(level),
                    ask: b.ask.map(level),
                };
                self.market.write_top(slot, &top);
                let info = &mut self.info[slot.0 as usize];
                info.top = top;
                info.last_bbo = top;
                self.mark(b.instrument, registry);
            }
            Event::Book(ev) => self.mark(ev.instrument(), registry),
            Event::Trade(t) => {
                let trade = Trade {
                    trade_id: t.trade_id,
                    recv_ns: out.recv.0,
                    price: t.price.0,
                    qty: t.qty.0,
                    trade_time_ms: t.trade_time_ms,
                    count: 0,
                    buyer_is_maker: t.buyer_is_maker,
                    aggregate: false,
                };
                self.trade(t.instrument, trade, registry);
            }
            Event::AggTrade(t) => {
                let trade = Trade {
                    trade_id: t.last_trade_id,
                    recv_ns: out.recv.0,
                    price: t.price.0,
                    qty: t.qty.0,
                    trade_time_ms: t.trade_time_ms,
                    count: 0,
                    buyer_is_maker: t.buyer_is_maker,
                    aggregate: true,
                };
                self.trade(t.instrument, trade, registry);
            }
            Event::Ticker(t) => {
                if let Some(slot) = self.slot(t.instrument, registry) {
                    let dec = |d: tape_core::fixed::Decimal| Dec {
                        mantissa: d.mantissa,
                        scale: d.scale,
                    };
                    self.market.write_ticker(
                        slot,
                        &Ticker {
                            recv_ns: out.recv.0,
                            event_time_ms: t.event_time_ms,
                            last: t.last.0,
                            open: t.open.0,
                            high: t.high.0,
                            low: t.low.0,
                            price_change: t.price_change.0,
                            change_pct: t.price_change_pct.map(dec),
                            volume: dec(t.volume),
                            quote_volume: dec(t.quote_volume),
                            mini: t.mini,
                        },
                    );
                }
            }
            Event::Private(m) => {
                let bit = match m.channel {
                    PrivateChannel::Orders => ORDERS,
                    PrivateChannel::Positions => POSITIONS,
                    PrivateChannel::Portfolio => PORTFOLIO,
                    _ => return,
                };
                if let Some(u) = self.users.iter_mut().find(|u| u.name == m.user) {
                    u.dirty |= bit;
                }
            }
            Event::BookTicker(_) | Event::Error(_) | Event::Venue(_) => {}
        }
    }

    /// Everything an input produced, from the engine's queue (which it leaves as it is, for
    /// the hub): each output, then the flush.
    #[inline]
    pub fn publish(&mut self, engine: &Engine) {
        for out in engine.queued_outputs() {
            self.handle_output(out, engine);
        }
        self.flush(engine);
    }

    /// After an input's outputs: the depth (and a changed state) of every book it touched,
    /// and the records of every user whose account it changed.
    pub fn flush(&mut self, engine: &Engine) {
        let recv_ns = self.recv_ns;
        for i in 0..self.dirty.len() {
            let id = self.dirty[i];
            let Some(Some(Some(slot))) = self.slots.get(id.0 as usize).copied() else {
                continue;
            };
            let book = engine.book(id);
            let state = book_state(book);
            let head = DepthHead {
                update_id: book.and_then(BookSync::last_update_id).unwrap_or(0),
                recv_ns,
                state,
            };
            match book {
                Some(b) => self.market.write_depth(
                    slot,
                    &head,
                    b.book().bids().map(level),
                    b.book().asks().map(level),
                ),
                None => {
                    self.market
                        .write_depth(slot, &head, std::iter::empty(), std::iter::empty())
                }
            }
            let info = &mut self.info[slot.0 as usize];
            info.dirty = false;
            if info.top.state != state {
                // The state changed without a `bbo`: a synced book shows the last `bbo`
                // (what WebSocket clients have), any other state shows no market.
                let top = if state == BookState::Synced {
                    info.last_bbo
                } else {
                    Top {
                        update_id: head.update_id,
                        recv_ns,
                        state,
                        bid: None,
                        ask: None,
                    }
                };
                self.market.write_top(slot, &top);
                info.top = top;
            }
        }
        self.dirty.clear();
        self.flush_users(engine, recv_ns);
    }

    fn flush_users(&mut self, engine: &Engine, recv_ns: u64) {
        let Some(desk) = engine.desk() else {
            return;
        };
        if !self.users_bound {
            self.bind_users(engine);
        }
        let registry = engine.registry();
        for u in &mut self.users {
            if u.dirty == 0 {
                continue;
            }
            if let Some(a) = desk.accounts().user(&u.name) {
                write_account(&mut u.writer, a, registry, recv_ns, u.dirty);
            }
            u.dirty = 0;
        }
    }

    /// The engine has a desk: every user of it gets a file (created now if the config did not
    /// name them, as in a replay), written whole from the account.
    #[cold]
    fn bind_users(&mut self, engine: &Engine) {
        self.users_bound = true;
        let Some(desk) = engine.desk() else { return };
        for name in &desk.setup().users {
            if let Err(e) = self.add_user(name) {
                // The engine goes on; this user's readers find no file.
                eprintln!("tape: shm: user {name:?} is not published: {e}");
            }
        }
        for u in &mut self.users {
            u.dirty = ORDERS | POSITIONS | PORTFOLIO;
        }
    }

    /// The engine was replaced (a looping replay starts a new pass): the generation moves on,
    /// every book and account reads as empty until the new engine publishes them.
    pub fn restart(&mut self) {
        self.generation += 1;
        self.slots.clear();
        self.dirty.clear();
        self.users_bound = false;
        for (i, info) in self.info.iter_mut().enumerate() {
            if i as u32 >= self.market.instruments() {
                break;
            }
            let slot = Slot(i as u32);
            *info = SlotInfo::default();
            self.market.write_top(slot, &Top::default());
            self.market.write_depth(
                slot,
                &DepthHead::default(),
                std::iter::empty(),
                std::iter::empty(),
            );
            self.market.write_trade(slot, &Trade::default());
            self.market.write_ticker(slot, &Ticker::default());
        }
        self.market.set_generation(self.generation);
        for u in &mut self.users {
            u.writer.write_portfolio(&Portfolio::default());
            u.writer.write_positions(0, std::iter::empty());
            u.writer.write_orders(0, std::iter::empty());
            u.writer.set_generation(self.generation);
            u.dirty = 0;
        }
    }

    /// The writer is stopping: every file says so.
    pub fn close(&mut self) {
        self.market.close();
        for u in &mut self.users {
            u.writer.close();
        }
    }
}

/// Rewrites the records of `a` that `dirty` names.
fn write_account(w: &mut UserWriter, a: &Account, registry: &Registry, recv_ns: u64, dirty: u8) {
    if dirty & PORTFOLIO != 0 {
        let p = a.portfolio();
        w.write_portfolio(&Portfolio {
            recv_ns,
            total_balance: p.total_balance.0,
            realized_pnl: p.realized_pnl.0,
            unrealized_pnl: p.unrealized_pnl.0,
            total_pnl: p.total_pnl.0,
            open_positions: u64::from(p.open_positions),
            equity_peak: p.equity_peak.0,
            drawdown: p.drawdown.0,
        });
    }
    if dirty & POSITIONS != 0 {
        w.write_positions(recv_ns, a.positions().map(|p| position(p, registry)));
    }
    if dirty & ORDERS != 0 {
        w.write_orders(recv_ns, a.orders().live().map(|o| order(o, registry)));
    }
}

fn instrument(registry: &Registry, id: InstrumentId, ps: u8, qs: u8) -> InstrumentKey {
    let mut k = key_of(registry, id).unwrap_or_default();
    k.price_scale = ps;
    k.qty_scale = qs;
    k
}

/// A position as published (its PnL through the account's own checked snapshot).
pub fn position(p: &tape_core::account::Position, registry: &Registry) -> Position {
    let snap = p.snapshot().ok();
    Position {
        instrument: instrument(registry, p.instrument, p.price_scale, p.qty_scale),
        qty: p.qty.0,
        avg_entry_price: p.avg_entry_price().map(|x| x.0),
        mark: p.mark.map(|x| x.0),
        realized_pnl: snap.map_or(0, |s| s.realized_pnl.0),
        unrealized_pnl: snap.map_or(0, |s| s.unrealized_pnl.0),
        fees: p.fees.0,
        leverage: p.leverage,
        liquidation_price: p.liquidation_price.map(|x| x.0),
        pnl_overflow: snap.is_none(),
    }
}

/// An order as published.
pub fn order(o: &tape_core::account::Order, registry: &Registry) -> Order {
    Order {
        instrument: instrument(registry, o.instrument, o.price_scale, o.qty_scale),
        side: match o.side {
            OrderSide::Buy => 0,
            OrderSide::Sell => 1,
        },
        order_type: match o.order_type {
            OrderType::Market => 0,
            OrderType::Limit => 1,
            OrderType::LimitMaker => 2,
            OrderType::StopMarket => 3,
            OrderType::StopLimit => 4,
            OrderType::TakeProfitMarket => 5,
            OrderType::TakeProfitLimit => 6,
            OrderType::TrailingStopMarket => 7,
            OrderType::Liquidation => 8,
        },
        time_in_force: match o.time_in_force {
            TimeInForce::Gtc => 0,
            TimeInForce::Ioc => 1,
            TimeInForce::Fok => 2,
            TimeInForce::Gtx => 3,
            TimeInForce::Gtd => 4,
        },
        status: match o.status {
            OrderStatus::PendingNew => 0,
            OrderStatus::New => 1,
            OrderStatus::PartiallyFilled => 2,
            OrderStatus::PendingCancel => 3,
            OrderStatus::Filled => 4,
            OrderStatus::Canceled => 5,
            OrderStatus::Rejected => 6,
            OrderStatus::Expired => 7,
        },
        reduce_only: o.reduce_only,
        client_order_id: OrderId::new(o.client_order_id.as_str()),
        venue_order_id: o.venue_order_id,
        price: o.price.0,
        stop_price: o.stop_price.0,
        qty: o.qty.0,
        filled: o.filled.0,
        avg_price: o.avg_price().map(|x| x.0),
        fees: o.fees.0,
        created_ns: o.created.0,
        updated_ns: o.updated.0,
    }
}
