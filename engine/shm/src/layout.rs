//! The file layout, defined once: offsets, sizes, codes, and the plain values each record
//! holds, with their encoding into 8-byte words. Pure: no mapping, no atomics, no I/O.
//!
//! `docs/shm.md` describes the same layout for people; `tape_shm.h` for C (a test checks
//! its `#define`s against these constants) and `examples/shm_reader.py` for Python.
//!
//! Every multi-byte integer is little-endian (the host's order on every platform tape builds
//! for: see the `compile_error!` in `lib.rs`). Every field of a live record is part of an
//! aligned 8-byte word, and the writer stores whole words, so a reader never needs anything
//! smaller than an 8-byte load. Prices, quantities and money are integer mantissas: a price
//! is `mantissa / 10^price_scale` with the instrument's scale from the directory, money is at
//! [`MONEY_SCALE`].

/// Layout version this build writes and reads. A reader refuses any other version
/// ([`OpenError::Version`](crate::OpenError::Version)): a change of any offset or size below
/// is a new version.
pub const VERSION: u64 = 1;

/// Magic of the market file (`market.shm`): the ASCII bytes `TAPESHMM`.
pub const MARKET_MAGIC: u64 = u64::from_le_bytes(*b"TAPESHMM");
/// Magic of a user file (`user-NAME.shm`): the ASCII bytes `TAPESHMU`.
pub const USER_MAGIC: u64 = u64::from_le_bytes(*b"TAPESHMU");

/// Bytes of either file's header.
pub const HEADER_SIZE: u64 = 256;
/// Name of the market file in the directory.
pub const MARKET_FILE: &str = "market.shm";
/// Prefix and suffix of a user file's name: `user-alice.shm`.
pub const USER_FILE_PREFIX: &str = "user-";
/// See [`USER_FILE_PREFIX`].
pub const USER_FILE_SUFFIX: &str = ".shm";
/// Name of the writer's lock file in the directory (one writer per directory).
pub const LOCK_FILE: &str = "LOCK";

/// Decimal places of money (balances, PnL, fees): `1.5` is `150_000_000`.
pub const MONEY_SCALE: u8 = 8;
/// Longest symbol (as the engine's registry).
pub const MAX_SYMBOL: usize = 32;
/// Longest user name (as the account layer's).
pub const MAX_USER: usize = 64;
/// Longest client order id (Binance's limit); the field has room for 40 bytes.
pub const MAX_CLIENT_ORDER_ID: usize = 36;
/// Most levels per side a file may have.
pub const MAX_LEVELS: u32 = 1000;
/// Most instruments a market file may have.
pub const MAX_INSTRUMENTS: u32 = 65_536;
/// Most positions or orders a user file may have room for.
pub const MAX_ENTRIES: u32 = 1 << 20;

/// Header fields, byte offsets; every field is a `u64`.
pub mod header {
    /// Magic ([`MARKET_MAGIC`](super::MARKET_MAGIC) or [`USER_MAGIC`](super::USER_MAGIC)).
    pub const MAGIC: usize = 0;
    /// Layout version ([`VERSION`](super::VERSION)).
    pub const VERSION: usize = 8;
    /// Header size in bytes (256).
    pub const HEADER_SIZE: usize = 16;
    /// Whole file size in bytes.
    pub const FILE_SIZE: usize = 24;
    /// Market: levels per side (N). User: room for positions.
    pub const LEVELS: usize = 32;
    /// Market: instrument slots. User: room for open orders.
    pub const MAX_INSTRUMENTS: usize = 40;
    /// Market: offset of the instrument directory.
    pub const DIR_OFFSET: usize = 48;
    /// Market: bytes per directory entry.
    pub const DIR_ENTRY_SIZE: usize = 56;
    /// Market: offset of slot 0.
    pub const SLOTS_OFFSET: usize = 64;
    /// Market: bytes per instrument slot.
    pub const SLOT_SIZE: usize = 72;
    /// Market: offset of the top-of-book record inside a slot.
    pub const TOP_OFFSET: usize = 80;
    /// Market: its size.
    pub const TOP_SIZE: usize = 88;
    /// Market: offset of the last-trade record inside a slot.
    pub const TRADE_OFFSET: usize = 96;
    /// Market: its size.
    pub const TRADE_SIZE: usize = 104;
    /// Market: offset of the ticker record inside a slot.
    pub const TICKER_OFFSET: usize = 112;
    /// Market: its size.
    pub const TICKER_SIZE: usize = 120;
    /// Market: offset of the depth record inside a slot.
    pub const DEPTH_OFFSET: usize = 128;
    /// Market: its size.
    pub const DEPTH_SIZE: usize = 136;
    /// Process id of the writer.
    pub const WRITER_PID: usize = 144;
    /// When the writer created the file, ns since the Unix epoch.
    pub const CREATED_NS: usize = 152;
    /// Live, market: instruments published in the directory (stored with release).
    pub const INSTRUMENTS: usize = 192;
    /// Live: [`STATUS_LIVE`](super::STATUS_LIVE) or [`STATUS_CLOSED`](super::STATUS_CLOSED).
    pub const STATUS: usize = 200;
    /// Live: the engine's pass (bumped when a looping replay starts over).
    pub const GENERATION: usize = 208;

    /// User: money scale (8).
    pub const MONEY_SCALE: usize = 48;
    /// User: offset of the portfolio record.
    pub const PORTFOLIO_OFFSET: usize = 56;
    /// User: its size.
    pub const PORTFOLIO_SIZE: usize = 64;
    /// User: offset of the positions record.
    pub const POSITIONS_OFFSET: usize = 72;
    /// User: its size.
    pub const POSITIONS_SIZE: usize = 80;
    /// User: bytes per position entry.
    pub const POSITION_ENTRY_SIZE: usize = 88;
    /// User: offset of the orders record.
    pub const ORDERS_OFFSET: usize = 96;
    /// User: its size.
    pub const ORDERS_SIZE: usize = 104;
    /// User: bytes per order entry.
    pub const ORDER_ENTRY_SIZE: usize = 112;
    /// User: process id of the writer (the market file has it at 144).
    pub const USER_WRITER_PID: usize = 120;
    /// User: creation time (the market file has it at 152).
    pub const USER_CREATED_NS: usize = 128;
    /// User: length of the user name.
    pub const USER_LEN: usize = 136;
    /// User: the user name, 64 bytes, zero padded.
    pub const USER_NAME: usize = 144;
}

/// The writer is running.
pub const STATUS_LIVE: u64 = 1;
/// The writer stopped (a file left `live` by a crashed writer says so: check `writer_pid`).
pub const STATUS_CLOSED: u64 = 2;

/// Bytes of a directory entry (see [`dir`]).
pub const DIR_ENTRY_SIZE: u64 = 64;

/// A directory entry's fields (written once, before the count that publishes it).
pub mod dir {
    /// `u8`: market code.
    pub const MARKET: usize = 0;
    /// `u8`: price scale.
    pub const PRICE_SCALE: usize = 1;
    /// `u8`: quantity scale.
    pub const QTY_SCALE: usize = 2;
    /// `u8`: symbol length.
    pub const SYMBOL_LEN: usize = 3;
    /// 32 bytes: the symbol, zero padded; bytes 40..64 are reserved.
    pub const SYMBOL: usize = 8;
}

/// Every record starts with its sequence word (the seqlock): odd while the writer is
/// changing it, even otherwise; the payload follows.
pub const SEQ: usize = 0;

/// Top of book (64 bytes).
pub mod top {
    /// Size.
    pub const SIZE: u64 = 64;
    /// `u64`: update id of the depth event that produced this top (the `update_id` of the
    /// WebSocket `bbo` message for the same state); the book's while it is not synced.
    pub const UPDATE_ID: usize = 8;
    /// `u64`: receive time of the input that produced it, ns since the Unix epoch.
    pub const RECV_NS: usize = 16;
    /// `i64`: best bid price mantissa.
    pub const BID_PRICE: usize = 24;
    /// `i64`: best bid quantity mantissa.
    pub const BID_QTY: usize = 32;
    /// `i64`: best ask price mantissa.
    pub const ASK_PRICE: usize = 40;
    /// `i64`: best ask quantity mantissa.
    pub const ASK_QTY: usize = 48;
    /// `u8`: book state code.
    pub const STATE: usize = 56;
    /// `u8`: bit 0 a bid is present, bit 1 an ask is present.
    pub const PRESENT: usize = 57;
}

/// Last trade (64 bytes).
pub mod trade {
    /// Size.
    pub const SIZE: u64 = 64;
    /// `u64`: trade id (an aggregate trade's last trade id).
    pub const TRADE_ID: usize = 8;
    /// `u64`: receive time of the input, ns.
    pub const RECV_NS: usize = 16;
    /// `i64`: price mantissa.
    pub const PRICE: usize = 24;
    /// `i64`: quantity mantissa.
    pub const QTY: usize = 32;
    /// `u64`: the exchange's trade time, ms.
    pub const TRADE_TIME_MS: usize = 40;
    /// `u64`: trades published for this instrument in this generation.
    pub const COUNT: usize = 48;
    /// `u8`: bit 0 the buyer was the maker (the aggressor sold), bit 1 an aggregate trade.
    pub const FLAGS: usize = 56;
}

/// 24h ticker (128 bytes).
pub mod ticker {
    /// Size.
    pub const SIZE: u64 = 128;
    /// `u64`: receive time of the input, ns.
    pub const RECV_NS: usize = 8;
    /// `u64`: the exchange's event time, ms.
    pub const EVENT_TIME_MS: usize = 16;
    /// `i64`: last price mantissa.
    pub const LAST: usize = 24;
    /// `i64`: open price.
    pub const OPEN: usize = 32;
    /// `i64`: high.
    pub const HIGH: usize = 40;
    /// `i64`: low.
    pub const LOW: usize = 48;
    /// `i64`: price change.
    pub const PRICE_CHANGE: usize = 56;
    /// `i64`: price change percent mantissa (its scale at [`PCT_SCALE`]).
    pub const CHANGE_PCT: usize = 64;
    /// `i64`: base volume mantissa (scale at [`VOLUME_SCALE`]).
    pub const VOLUME: usize = 72;
    /// `i64`: quote volume mantissa (scale at [`QUOTE_VOLUME_SCALE`]).
    pub const QUOTE_VOLUME: usize = 80;
    /// `u8`: scale of `change_pct`.
    pub const PCT_SCALE: usize = 88;
    /// `u8`: scale of `volume`.
    pub const VOLUME_SCALE: usize = 89;
    /// `u8`: scale of `quote_volume`.
    pub const QUOTE_VOLUME_SCALE: usize = 90;
    /// `u8`: bit 0 `change_pct` is present, bit 1 a mini ticker.
    pub const FLAGS: usize = 91;
}

/// Depth: the first N levels per side (`32 + 32 N` bytes, rounded up to 64).
pub mod depth {
    /// `u64`: the book's update id (0 when it has none).
    pub const UPDATE_ID: usize = 8;
    /// `u64`: receive time of the input, ns.
    pub const RECV_NS: usize = 16;
    /// `u8`: book state code.
    pub const STATE: usize = 24;
    /// `u16`: bid levels that follow.
    pub const BID_COUNT: usize = 26;
    /// `u16`: ask levels that follow.
    pub const ASK_COUNT: usize = 28;
    /// N bid levels, best first, each `{ price: i64, qty: i64 }`; then N ask levels.
    pub const LEVELS: usize = 32;
    /// Bytes of one level.
    pub const LEVEL_SIZE: u64 = 16;

    /// The record's size for `n` levels per side.
    pub const fn size(n: u32) -> u64 {
        super::round64(LEVELS as u64 + 2 * n as u64 * LEVEL_SIZE)
    }
}

/// Portfolio summary (128 bytes; money at [`MONEY_SCALE`](super::MONEY_SCALE)).
pub mod portfolio {
    /// Size.
    pub const SIZE: u64 = 128;
    /// `u64`: receive time of the input that changed it, ns.
    pub const RECV_NS: usize = 8;
    /// `i64`: free + locked quote-asset balance.
    pub const TOTAL_BALANCE: usize = 16;
    /// `i64`: realized PnL net of fees.
    pub const REALIZED_PNL: usize = 24;
    /// `i64`: unrealized PnL.
    pub const UNREALIZED_PNL: usize = 32;
    /// `i64`: realized + unrealized.
    pub const TOTAL_PNL: usize = 40;
    /// `u64`: positions that are not flat.
    pub const OPEN_POSITIONS: usize = 48;
    /// `i64`: highest equity seen.
    pub const EQUITY_PEAK: usize = 56;
    /// `i64`: drawdown from that peak.
    pub const DRAWDOWN: usize = 64;
}

/// The head shared by the positions and orders records; entries start at [`ENTRIES`].
pub mod table {
    /// `u64`: receive time of the input that changed it, ns.
    pub const RECV_NS: usize = 8;
    /// `u64`: entries that follow.
    pub const COUNT: usize = 16;
    /// `u64`: entries the account has (more than `COUNT` when they did not all fit).
    pub const TOTAL: usize = 24;
    /// Offset of entry 0.
    pub const ENTRIES: usize = 64;
}

/// One position (128 bytes).
pub mod position {
    /// Size.
    pub const SIZE: u64 = 128;
    /// `u8`: market code.
    pub const MARKET: usize = 0;
    /// `u8`: price scale.
    pub const PRICE_SCALE: usize = 1;
    /// `u8`: quantity scale.
    pub const QTY_SCALE: usize = 2;
    /// `u8`: bit 0 avg entry price present, 1 mark present, 2 leverage present,
    /// 3 liquidation price present, 4 PnL overflowed (the PnL fields are 0).
    pub const FLAGS: usize = 3;
    /// `u32`: leverage.
    pub const LEVERAGE: usize = 4;
    /// 32 bytes: the symbol, zero padded.
    pub const SYMBOL: usize = 8;
    /// `i64`: signed quantity (positive long).
    pub const QTY: usize = 40;
    /// `i64`: average entry price.
    pub const AVG_ENTRY_PRICE: usize = 48;
    /// `i64`: mark price.
    pub const MARK: usize = 56;
    /// `i64`: realized PnL net of fees (money).
    pub const REALIZED_PNL: usize = 64;
    /// `i64`: unrealized PnL (money).
    pub const UNREALIZED_PNL: usize = 72;
    /// `i64`: fees paid (money).
    pub const FEES: usize = 80;
    /// `i64`: liquidation price.
    pub const LIQUIDATION_PRICE: usize = 88;
}

/// One open order (192 bytes).
pub mod order {
    /// Size.
    pub const SIZE: u64 = 192;
    /// `u8`: market code.
    pub const MARKET: usize = 0;
    /// `u8`: price scale.
    pub const PRICE_SCALE: usize = 1;
    /// `u8`: quantity scale.
    pub const QTY_SCALE: usize = 2;
    /// `u8`: 0 buy, 1 sell.
    pub const SIDE: usize = 3;
    /// `u8`: order type code.
    pub const TYPE: usize = 4;
    /// `u8`: time-in-force code.
    pub const TIME_IN_FORCE: usize = 5;
    /// `u8`: status code.
    pub const STATUS: usize = 6;
    /// `u8`: bit 0 reduce-only, 1 venue order id present, 2 average price present.
    pub const FLAGS: usize = 7;
    /// 32 bytes: the symbol.
    pub const SYMBOL: usize = 8;
    /// `u8`: length of the client order id.
    pub const CLIENT_ORDER_ID_LEN: usize = 40;
    /// 40 bytes: the client order id, zero padded.
    pub const CLIENT_ORDER_ID: usize = 48;
    /// `u64`: the venue's order id.
    pub const VENUE_ORDER_ID: usize = 88;
    /// `i64`: limit price (0: none).
    pub const PRICE: usize = 96;
    /// `i64`: stop price (0: none).
    pub const STOP_PRICE: usize = 104;
    /// `i64`: original quantity.
    pub const QTY: usize = 112;
    /// `i64`: filled quantity.
    pub const FILLED: usize = 120;
    /// `i64`: average fill price.
    pub const AVG_PRICE: usize = 128;
    /// `i64`: fees in the fee asset (money).
    pub const FEES: usize = 136;
    /// `u64`: when tape first saw the order, ns (the receive time of its input).
    pub const CREATED_NS: usize = 144;
    /// `u64`: when it last changed, ns.
    pub const UPDATED_NS: usize = 152;
}

/// `x` rounded up to a multiple of 64 (records start on their own cache line).
pub const fn round64(x: u64) -> u64 {
    x.div_ceil(64) * 64
}

/// Where everything is in a market file, derived from its two parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarketLayout {
    /// Levels per side.
    pub levels: u32,
    /// Instrument slots.
    pub max_instruments: u32,
}

impl MarketLayout {
    /// Offset of the directory.
    pub const fn dir_offset(&self) -> u64 {
        HEADER_SIZE
    }
    /// Offset of slot 0.
    pub const fn slots_offset(&self) -> u64 {
        round64(HEADER_SIZE + self.max_instruments as u64 * DIR_ENTRY_SIZE)
    }
    /// Offset of the top record in a slot.
    pub const fn top_offset(&self) -> u64 {
        0
    }
    /// Offset of the trade record in a slot.
    pub const fn trade_offset(&self) -> u64 {
        top::SIZE
    }
    /// Offset of the ticker record in a slot.
    pub const fn ticker_offset(&self) -> u64 {
        top::SIZE + trade::SIZE
    }
    /// Offset of the depth record in a slot.
    pub const fn depth_offset(&self) -> u64 {
        top::SIZE + trade::SIZE + ticker::SIZE
    }
    /// Size of the depth record.
    pub const fn depth_size(&self) -> u64 {
        depth::size(self.levels)
    }
    /// Bytes per slot.
    pub const fn slot_size(&self) -> u64 {
        self.depth_offset() + self.depth_size()
    }
    /// The file's size.
    pub const fn file_size(&self) -> u64 {
        self.slots_offset() + self.max_instruments as u64 * self.slot_size()
    }
    /// Offset of slot `i`.
    pub const fn slot(&self, i: u32) -> u64 {
        self.slots_offset() + i as u64 * self.slot_size()
    }
    /// Offset of directory entry `i`.
    pub const fn dir_entry(&self, i: u32) -> u64 {
        self.dir_offset() + i as u64 * DIR_ENTRY_SIZE
    }

    /// The static header words (everything but the live fields, which start at zero).
    pub fn header(&self, pid: u32, created_ns: u64) -> Vec<(usize, u64)> {
        use header as h;
        vec![
            (h::MAGIC, MARKET_MAGIC),
            (h::VERSION, VERSION),
            (h::HEADER_SIZE, HEADER_SIZE),
            (h::FILE_SIZE, self.file_size()),
            (h::LEVELS, u64::from(self.levels)),
            (h::MAX_INSTRUMENTS, u64::from(self.max_instruments)),
            (h::DIR_OFFSET, self.dir_offset()),
            (h::DIR_ENTRY_SIZE, DIR_ENTRY_SIZE),
            (h::SLOTS_OFFSET, self.slots_offset()),
            (h::SLOT_SIZE, self.slot_size()),
            (h::TOP_OFFSET, self.top_offset()),
            (h::TOP_SIZE, top::SIZE),
            (h::TRADE_OFFSET, self.trade_offset()),
            (h::TRADE_SIZE, trade::SIZE),
            (h::TICKER_OFFSET, self.ticker_offset()),
            (h::TICKER_SIZE, ticker::SIZE),
            (h::DEPTH_OFFSET, self.depth_offset()),
            (h::DEPTH_SIZE, self.depth_size()),
            (h::WRITER_PID, u64::from(pid)),
            (h::CREATED_NS, created_ns),
        ]
    }
}

/// Where everything is in a user file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserLayout {
    /// Room for positions.
    pub max_positions: u32,
    /// Room for open orders.
    pub max_orders: u32,
}

impl UserLayout {
    /// Offset of the portfolio record.
    pub const fn portfolio_offset(&self) -> u64 {
        HEADER_SIZE
    }
    /// Offset of the positions record.
    pub const fn positions_offset(&self) -> u64 {
        HEADER_SIZE + portfolio::SIZE
    }
    /// Size of the positions record.
    pub const fn positions_size(&self) -> u64 {
        round64(table::ENTRIES as u64 + self.max_positions as u64 * position::SIZE)
    }
    /// Offset of the orders record.
    pub const fn orders_offset(&self) -> u64 {
        self.positions_offset() + self.positions_size()
    }
    /// Size of the orders record.
    pub const fn orders_size(&self) -> u64 {
        round64(table::ENTRIES as u64 + self.max_orders as u64 * order::SIZE)
    }
    /// The file's size.
    pub const fn file_size(&self) -> u64 {
        self.orders_offset() + self.orders_size()
    }

    /// The static header words.
    pub fn header(&self, user: &str, pid: u32, created_ns: u64) -> Vec<(usize, u64)> {
        use header as h;
        let mut words = vec![
            (h::MAGIC, USER_MAGIC),
            (h::VERSION, VERSION),
            (h::HEADER_SIZE, HEADER_SIZE),
            (h::FILE_SIZE, self.file_size()),
            (h::LEVELS, u64::from(self.max_positions)),
            (h::MAX_INSTRUMENTS, u64::from(self.max_orders)),
            (h::MONEY_SCALE, u64::from(MONEY_SCALE)),
            (h::PORTFOLIO_OFFSET, self.portfolio_offset()),
            (h::PORTFOLIO_SIZE, portfolio::SIZE),
            (h::POSITIONS_OFFSET, self.positions_offset()),
            (h::POSITIONS_SIZE, self.positions_size()),
            (h::POSITION_ENTRY_SIZE, position::SIZE),
            (h::ORDERS_OFFSET, self.orders_offset()),
            (h::ORDERS_SIZE, self.orders_size()),
            (h::ORDER_ENTRY_SIZE, order::SIZE),
            (h::USER_WRITER_PID, u64::from(pid)),
            (h::USER_CREATED_NS, created_ns),
            (h::USER_LEN, user.len() as u64),
        ];
        let mut name = [0u8; MAX_USER];
        let n = user.len().min(MAX_USER);
        name[..n].copy_from_slice(&user.as_bytes()[..n]);
        for (i, chunk) in name.chunks_exact(8).enumerate() {
            words.push((h::USER_NAME + 8 * i, le_word(chunk)));
        }
        words
    }
}

/// A market, as coded in the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MarketCode {
    /// Spot (code 0).
    Spot = 0,
    /// USD-M futures (code 1).
    UsdM = 1,
    /// COIN-M futures (code 2).
    CoinM = 2,
}

impl MarketCode {
    /// The code's market, if known.
    pub fn from_code(c: u8) -> Option<MarketCode> {
        match c {
            0 => Some(MarketCode::Spot),
            1 => Some(MarketCode::UsdM),
            2 => Some(MarketCode::CoinM),
            _ => None,
        }
    }

    /// The name tape uses everywhere (`spot`, `usdm`, `coinm`).
    pub fn as_str(self) -> &'static str {
        match self {
            MarketCode::Spot => "spot",
            MarketCode::UsdM => "usdm",
            MarketCode::CoinM => "coinm",
        }
    }

    /// Parses [`MarketCode::as_str`].
    pub fn parse(s: &str) -> Option<MarketCode> {
        match s {
            "spot" => Some(MarketCode::Spot),
            "usdm" => Some(MarketCode::UsdM),
            "coinm" => Some(MarketCode::CoinM),
            _ => None,
        }
    }
}

/// A book's sync state, as coded in the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BookState {
    /// No book (yet) for this instrument in this generation (code 0).
    #[default]
    None = 0,
    /// Buffering diffs until a snapshot arrives (code 1).
    AwaitingSnapshot = 1,
    /// A snapshot is loaded, waiting for the diff that bridges it (code 2).
    SnapshotLoaded = 2,
    /// Live and continuity-checked (code 3): the only state in which the top is the market.
    Synced = 3,
    /// Sync was lost; waiting for a new snapshot (code 4).
    OutOfSync = 4,
}

impl BookState {
    /// The state of a code (unknown codes read as `None`).
    pub fn from_code(c: u8) -> BookState {
        match c {
            1 => BookState::AwaitingSnapshot,
            2 => BookState::SnapshotLoaded,
            3 => BookState::Synced,
            4 => BookState::OutOfSync,
            _ => BookState::None,
        }
    }

    /// A short name.
    pub fn as_str(self) -> &'static str {
        match self {
            BookState::None => "none",
            BookState::AwaitingSnapshot => "awaiting_snapshot",
            BookState::SnapshotLoaded => "snapshot_loaded",
            BookState::Synced => "synced",
            BookState::OutOfSync => "out_of_sync",
        }
    }
}

/// One price level: mantissas at the instrument's scales.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Level {
    /// Price mantissa.
    pub price: i64,
    /// Quantity mantissa.
    pub qty: i64,
}

/// A decimal with its own scale (volumes, percentages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Dec {
    /// Digits.
    pub mantissa: i64,
    /// Digits after the point.
    pub scale: u8,
}

/// The top of book record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Top {
    /// Update id (see [`top::UPDATE_ID`]).
    pub update_id: u64,
    /// Receive time of the input that produced it, ns.
    pub recv_ns: u64,
    /// The book's state; bid and ask are the market only when [`BookState::Synced`].
    pub state: BookState,
    /// Best bid.
    pub bid: Option<Level>,
    /// Best ask.
    pub ask: Option<Level>,
}

/// Payload words of a top record (after the sequence word).
pub const TOP_WORDS: usize = 7;

impl Top {
    /// The payload words.
    #[inline]
    pub fn encode(&self) -> [u64; TOP_WORDS] {
        let b = self.bid.unwrap_or_default();
        let a = self.ask.unwrap_or_default();
        let present = u64::from(self.bid.is_some()) | (u64::from(self.ask.is_some()) << 1);
        [
            self.update_id,
            self.recv_ns,
            b.price as u64,
            b.qty as u64,
            a.price as u64,
            a.qty as u64,
            (self.state as u64) | (present << 8),
        ]
    }

    /// From payload words.
    #[inline]
    pub fn decode(w: &[u64; TOP_WORDS]) -> Top {
        let flags = w[6];
        let present = (flags >> 8) as u8;
        Top {
            update_id: w[0],
            recv_ns: w[1],
            state: BookState::from_code(flags as u8),
            bid: (present & 1 != 0).then_some(Level {
                price: w[2] as i64,
                qty: w[3] as i64,
            }),
            ask: (present & 2 != 0).then_some(Level {
                price: w[4] as i64,
                qty: w[5] as i64,
            }),
        }
    }
}

/// The last-trade record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Trade {
    /// Trade id.
    pub trade_id: u64,
    /// Receive time, ns.
    pub recv_ns: u64,
    /// Price mantissa.
    pub price: i64,
    /// Quantity mantissa.
    pub qty: i64,
    /// Exchange trade time, ms.
    pub trade_time_ms: u64,
    /// Trades published for this instrument in this generation (0: none yet).
    pub count: u64,
    /// The buyer was the maker: the aggressor sold.
    pub buyer_is_maker: bool,
    /// An aggregate trade.
    pub aggregate: bool,
}

/// Payload words of a trade record.
pub const TRADE_WORDS: usize = 7;

impl Trade {
    /// The payload words.
    #[inline]
    pub fn encode(&self) -> [u64; TRADE_WORDS] {
        [
            self.trade_id,
            self.recv_ns,
            self.price as u64,
            self.qty as u64,
            self.trade_time_ms,
            self.count,
            u64::from(self.buyer_is_maker) | (u64::from(self.aggregate) << 1),
        ]
    }

    /// From payload words.
    #[inline]
    pub fn decode(w: &[u64; TRADE_WORDS]) -> Trade {
        Trade {
            trade_id: w[0],
            recv_ns: w[1],
            price: w[2] as i64,
            qty: w[3] as i64,
            trade_time_ms: w[4],
            count: w[5],
            buyer_is_maker: w[6] & 1 != 0,
            aggregate: w[6] & 2 != 0,
        }
    }
}

/// The ticker record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ticker {
    /// Receive time, ns (0: no ticker yet).
    pub recv_ns: u64,
    /// Exchange event time, ms.
    pub event_time_ms: u64,
    /// Last price mantissa.
    pub last: i64,
    /// Open.
    pub open: i64,
    /// High.
    pub high: i64,
    /// Low.
    pub low: i64,
    /// Price change.
    pub price_change: i64,
    /// Price change percent.
    pub change_pct: Option<Dec>,
    /// Base volume.
    pub volume: Dec,
    /// Quote volume.
    pub quote_volume: Dec,
    /// A mini ticker (no change fields from the exchange).
    pub mini: bool,
}

/// Payload words of a ticker record.
pub const TICKER_WORDS: usize = 11;

impl Ticker {
    /// The payload words.
    #[inline]
    pub fn encode(&self) -> [u64; TICKER_WORDS] {
        let pct = self.change_pct.unwrap_or_default();
        let flags = u64::from(self.change_pct.is_some()) | (u64::from(self.mini) << 1);
        [
            self.recv_ns,
            self.event_time_ms,
            self.last as u64,
            self.open as u64,
            self.high as u64,
            self.low as u64,
            self.price_change as u64,
            pct.mantissa as u64,
            self.volume.mantissa as u64,
            self.quote_volume.mantissa as u64,
            u64::from(pct.scale)
                | (u64::from(self.volume.scale) << 8)
                | (u64::from(self.quote_volume.scale) << 16)
                | (flags << 24),
        ]
    }

    /// From payload words.
    #[inline]
    pub fn decode(w: &[u64; TICKER_WORDS]) -> Ticker {
        let s = w[10];
        let flags = (s >> 24) as u8;
        Ticker {
            recv_ns: w[0],
            event_time_ms: w[1],
            last: w[2] as i64,
            open: w[3] as i64,
            high: w[4] as i64,
            low: w[5] as i64,
            price_change: w[6] as i64,
            change_pct: (flags & 1 != 0).then_some(Dec {
                mantissa: w[7] as i64,
                scale: s as u8,
            }),
            volume: Dec {
                mantissa: w[8] as i64,
                scale: (s >> 8) as u8,
            },
            quote_volume: Dec {
                mantissa: w[9] as i64,
                scale: (s >> 16) as u8,
            },
            mini: flags & 2 != 0,
        }
    }
}

/// The fixed part of a depth record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DepthHead {
    /// The book's update id (0: none).
    pub update_id: u64,
    /// Receive time of the input, ns.
    pub recv_ns: u64,
    /// The book's state.
    pub state: BookState,
}

/// Payload words of a depth record before its levels.
pub const DEPTH_HEAD_WORDS: usize = 3;

impl DepthHead {
    /// The head words, with the level counts.
    #[inline]
    pub fn encode(&self, bids: u16, asks: u16) -> [u64; DEPTH_HEAD_WORDS] {
        [
            self.update_id,
            self.recv_ns,
            (self.state as u64) | (u64::from(bids) << 16) | (u64::from(asks) << 32),
        ]
    }

    /// From head words: the head and the level counts.
    #[inline]
    pub fn decode(w: &[u64]) -> (DepthHead, u16, u16) {
        let s = w[2];
        (
            DepthHead {
                update_id: w[0],
                recv_ns: w[1],
                state: BookState::from_code(s as u8),
            },
            (s >> 16) as u16,
            (s >> 32) as u16,
        )
    }
}

/// The depth record as read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Depth {
    /// Update id, receive time, state.
    pub head: DepthHead,
    /// Bids, best first.
    pub bids: Vec<Level>,
    /// Asks, best first.
    pub asks: Vec<Level>,
}

/// The portfolio record (money at [`MONEY_SCALE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Portfolio {
    /// Receive time of the input that changed it, ns (0: never written).
    pub recv_ns: u64,
    /// Free + locked quote-asset balance.
    pub total_balance: i64,
    /// Realized PnL net of fees.
    pub realized_pnl: i64,
    /// Unrealized PnL.
    pub unrealized_pnl: i64,
    /// Realized + unrealized.
    pub total_pnl: i64,
    /// Positions that are not flat.
    pub open_positions: u64,
    /// Highest equity seen.
    pub equity_peak: i64,
    /// Drawdown from the peak.
    pub drawdown: i64,
}

/// Payload words of a portfolio record.
pub const PORTFOLIO_WORDS: usize = 8;

impl Portfolio {
    /// The payload words.
    pub fn encode(&self) -> [u64; PORTFOLIO_WORDS] {
        [
            self.recv_ns,
            self.total_balance as u64,
            self.realized_pnl as u64,
            self.unrealized_pnl as u64,
            self.total_pnl as u64,
            self.open_positions,
            self.equity_peak as u64,
            self.drawdown as u64,
        ]
    }

    /// From payload words.
    pub fn decode(w: &[u64; PORTFOLIO_WORDS]) -> Portfolio {
        Portfolio {
            recv_ns: w[0],
            total_balance: w[1] as i64,
            realized_pnl: w[2] as i64,
            unrealized_pnl: w[3] as i64,
            total_pnl: w[4] as i64,
            open_positions: w[5],
            equity_peak: w[6] as i64,
            drawdown: w[7] as i64,
        }
    }
}

/// A short ASCII string stored inline (a symbol, a client order id): `Copy`, no allocation.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Text<const N: usize> {
    len: u8,
    bytes: [u8; N],
}

impl<const N: usize> Default for Text<N> {
    fn default() -> Self {
        Text {
            len: 0,
            bytes: [0; N],
        }
    }
}

impl<const N: usize> Text<N> {
    /// `s` cut to `N` bytes (callers pass validated ASCII identifiers, which fit).
    pub fn new(s: &str) -> Self {
        Self::from_bytes(s.as_bytes())
    }

    /// As [`Text::new`], from bytes.
    pub fn from_bytes(s: &[u8]) -> Self {
        let n = s.len().min(N).min(u8::MAX as usize);
        let mut bytes = [0u8; N];
        bytes[..n].copy_from_slice(&s[..n]);
        Text {
            len: n as u8,
            bytes,
        }
    }

    /// The text (non-UTF-8 bytes, which a tape writer never stores, read as empty).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }

    /// The raw bytes, zero padded to `N`.
    pub fn padded(&self) -> &[u8; N] {
        &self.bytes
    }
}

impl<const N: usize> std::fmt::Debug for Text<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl<const N: usize> std::fmt::Display for Text<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A symbol (`BTCUSDT`).
pub type Symbol = Text<MAX_SYMBOL>;
/// A client order id.
pub type OrderId = Text<40>;

/// Instrument identity as positions and orders carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct InstrumentKey {
    /// Market code (`MarketCode as u8`).
    pub market: u8,
    /// Price scale.
    pub price_scale: u8,
    /// Quantity scale.
    pub qty_scale: u8,
    /// Symbol.
    pub symbol: Symbol,
}

/// A position entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// Instrument.
    pub instrument: InstrumentKey,
    /// Signed quantity.
    pub qty: i64,
    /// Average entry price.
    pub avg_entry_price: Option<i64>,
    /// Mark price.
    pub mark: Option<i64>,
    /// Realized PnL net of fees (money); 0 with `pnl_overflow`.
    pub realized_pnl: i64,
    /// Unrealized PnL (money); 0 with `pnl_overflow`.
    pub unrealized_pnl: i64,
    /// Fees (money).
    pub fees: i64,
    /// Leverage.
    pub leverage: Option<u32>,
    /// Liquidation price.
    pub liquidation_price: Option<i64>,
    /// The PnL did not fit (both PnL fields are 0).
    pub pnl_overflow: bool,
}

/// Words of a position entry.
pub const POSITION_WORDS: usize = (position::SIZE / 8) as usize;

impl Position {
    /// The entry's words.
    pub fn encode(&self) -> [u64; POSITION_WORDS] {
        let flags = u64::from(self.avg_entry_price.is_some())
            | (u64::from(self.mark.is_some()) << 1)
            | (u64::from(self.leverage.is_some()) << 2)
            | (u64::from(self.liquidation_price.is_some()) << 3)
            | (u64::from(self.pnl_overflow) << 4);
        let mut w = [0u64; POSITION_WORDS];
        w[0] =
            key_word(&self.instrument, flags as u8) | (u64::from(self.leverage.unwrap_or(0)) << 32);
        put_bytes(&mut w, position::SYMBOL, self.instrument.symbol.padded());
        w[position::QTY / 8] = self.qty as u64;
        w[position::AVG_ENTRY_PRICE / 8] = self.avg_entry_price.unwrap_or(0) as u64;
        w[position::MARK / 8] = self.mark.unwrap_or(0) as u64;
        w[position::REALIZED_PNL / 8] = self.realized_pnl as u64;
        w[position::UNREALIZED_PNL / 8] = self.unrealized_pnl as u64;
        w[position::FEES / 8] = self.fees as u64;
        w[position::LIQUIDATION_PRICE / 8] = self.liquidation_price.unwrap_or(0) as u64;
        w
    }

    /// From the entry's words.
    pub fn decode(w: &[u64]) -> Position {
        let flags = (w[0] >> 24) as u8;
        let opt = |bit: u8, v: u64| (flags & bit != 0).then_some(v as i64);
        Position {
            instrument: key_of(w, position::SYMBOL),
            qty: w[position::QTY / 8] as i64,
            avg_entry_price: opt(1, w[position::AVG_ENTRY_PRICE / 8]),
            mark: opt(2, w[position::MARK / 8]),
            realized_pnl: w[position::REALIZED_PNL / 8] as i64,
            unrealized_pnl: w[position::UNREALIZED_PNL / 8] as i64,
            fees: w[position::FEES / 8] as i64,
            leverage: (flags & 4 != 0).then_some((w[0] >> 32) as u32),
            liquidation_price: opt(8, w[position::LIQUIDATION_PRICE / 8]),
            pnl_overflow: flags & 16 != 0,
        }
    }
}

/// An open-order entry. Codes: side 0 buy, 1 sell; type, time in force and status as
/// [`ORDER_TYPES`], [`TIMES_IN_FORCE`], [`ORDER_STATUSES`] list them (the index is the code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Order {
    /// Instrument.
    pub instrument: InstrumentKey,
    /// 0 buy, 1 sell.
    pub side: u8,
    /// Type code.
    pub order_type: u8,
    /// Time-in-force code.
    pub time_in_force: u8,
    /// Status code.
    pub status: u8,
    /// Reduce-only.
    pub reduce_only: bool,
    /// Client order id.
    pub client_order_id: OrderId,
    /// The venue's order id.
    pub venue_order_id: Option<u64>,
    /// Limit price (0: none).
    pub price: i64,
    /// Stop price (0: none).
    pub stop_price: i64,
    /// Original quantity.
    pub qty: i64,
    /// Filled quantity.
    pub filled: i64,
    /// Average fill price.
    pub avg_price: Option<i64>,
    /// Fees in the fee asset (money).
    pub fees: i64,
    /// First seen, ns.
    pub created_ns: u64,
    /// Last changed, ns.
    pub updated_ns: u64,
}

/// Order type names by code.
pub const ORDER_TYPES: [&str; 9] = [
    "market",
    "limit",
    "limit_maker",
    "stop_market",
    "stop_limit",
    "take_profit_market",
    "take_profit_limit",
    "trailing_stop_market",
    "liquidation",
];
/// Time-in-force names by code.
pub const TIMES_IN_FORCE: [&str; 5] = ["gtc", "ioc", "fok", "gtx", "gtd"];
/// Order status names by code.
pub const ORDER_STATUSES: [&str; 8] = [
    "pending_new",
    "new",
    "partially_filled",
    "pending_cancel",
    "filled",
    "canceled",
    "rejected",
    "expired",
];

/// Words of an order entry.
pub const ORDER_WORDS: usize = (order::SIZE / 8) as usize;

impl Order {
    /// The entry's words.
    pub fn encode(&self) -> [u64; ORDER_WORDS] {
        let flags = u64::from(self.reduce_only)
            | (u64::from(self.venue_order_id.is_some()) << 1)
            | (u64::from(self.avg_price.is_some()) << 2);
        let mut w = [0u64; ORDER_WORDS];
        w[0] = u64::from(self.instrument.market)
            | (u64::from(self.instrument.price_scale) << 8)
            | (u64::from(self.instrument.qty_scale) << 16)
            | (u64::from(self.side) << 24)
            | (u64::from(self.order_type) << 32)
            | (u64::from(self.time_in_force) << 40)
            | (u64::from(self.status) << 48)
            | (flags << 56);
        put_bytes(&mut w, order::SYMBOL, self.instrument.symbol.padded());
        w[order::CLIENT_ORDER_ID_LEN / 8] = self.client_order_id.as_str().len() as u64;
        put_bytes(
            &mut w,
            order::CLIENT_ORDER_ID,
            self.client_order_id.padded(),
        );
        w[order::VENUE_ORDER_ID / 8] = self.venue_order_id.unwrap_or(0);
        w[order::PRICE / 8] = self.price as u64;
        w[order::STOP_PRICE / 8] = self.stop_price as u64;
        w[order::QTY / 8] = self.qty as u64;
        w[order::FILLED / 8] = self.filled as u64;
        w[order::AVG_PRICE / 8] = self.avg_price.unwrap_or(0) as u64;
        w[order::FEES / 8] = self.fees as u64;
        w[order::CREATED_NS / 8] = self.created_ns;
        w[order::UPDATED_NS / 8] = self.updated_ns;
        w
    }

    /// From the entry's words.
    pub fn decode(w: &[u64]) -> Order {
        let w0 = w[0];
        let flags = (w0 >> 56) as u8;
        let symbol_len_free = InstrumentKey {
            market: w0 as u8,
            price_scale: (w0 >> 8) as u8,
            qty_scale: (w0 >> 16) as u8,
            symbol: Symbol::from_bytes(trim_zeros(&get_bytes::<32>(w, order::SYMBOL))),
        };
        let cid_len = (w[order::CLIENT_ORDER_ID_LEN / 8] as usize).min(40);
        let cid = get_bytes::<40>(w, order::CLIENT_ORDER_ID);
        Order {
            instrument: symbol_len_free,
            side: (w0 >> 24) as u8,
            order_type: (w0 >> 32) as u8,
            time_in_force: (w0 >> 40) as u8,
            status: (w0 >> 48) as u8,
            reduce_only: flags & 1 != 0,
            client_order_id: OrderId::from_bytes(&cid[..cid_len]),
            venue_order_id: (flags & 2 != 0).then_some(w[order::VENUE_ORDER_ID / 8]),
            price: w[order::PRICE / 8] as i64,
            stop_price: w[order::STOP_PRICE / 8] as i64,
            qty: w[order::QTY / 8] as i64,
            filled: w[order::FILLED / 8] as i64,
            avg_price: (flags & 4 != 0).then_some(w[order::AVG_PRICE / 8] as i64),
            fees: w[order::FEES / 8] as i64,
            created_ns: w[order::CREATED_NS / 8],
            updated_ns: w[order::UPDATED_NS / 8],
        }
    }
}

/// A directory entry's words: market, scales, symbol length, then the symbol.
pub fn dir_entry_words(key: &InstrumentKey) -> [u64; 5] {
    let mut w = [0u64; 5];
    w[0] = u64::from(key.market)
        | (u64::from(key.price_scale) << 8)
        | (u64::from(key.qty_scale) << 16)
        | ((key.symbol.as_str().len() as u64) << (8 * dir::SYMBOL_LEN));
    put_bytes(&mut w, dir::SYMBOL, key.symbol.padded());
    w
}

/// A directory entry from its words.
pub fn dir_entry_decode(w: &[u64; 5]) -> InstrumentKey {
    let len = ((w[0] >> (8 * dir::SYMBOL_LEN)) as u8 as usize).min(MAX_SYMBOL);
    let bytes = get_bytes::<32>(w, dir::SYMBOL);
    InstrumentKey {
        market: w[0] as u8,
        price_scale: (w[0] >> 8) as u8,
        qty_scale: (w[0] >> 16) as u8,
        symbol: Symbol::from_bytes(&bytes[..len]),
    }
}

fn key_word(k: &InstrumentKey, flags: u8) -> u64 {
    u64::from(k.market)
        | (u64::from(k.price_scale) << 8)
        | (u64::from(k.qty_scale) << 16)
        | (u64::from(flags) << 24)
}

fn key_of(w: &[u64], symbol_at: usize) -> InstrumentKey {
    InstrumentKey {
        market: w[0] as u8,
        price_scale: (w[0] >> 8) as u8,
        qty_scale: (w[0] >> 16) as u8,
        symbol: Symbol::from_bytes(trim_zeros(&get_bytes::<32>(w, symbol_at))),
    }
}

fn trim_zeros(b: &[u8]) -> &[u8] {
    let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..n]
}

/// A little-endian word from up to 8 bytes.
pub fn le_word(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    let n = b.len().min(8);
    a[..n].copy_from_slice(&b[..n]);
    u64::from_le_bytes(a)
}

/// Writes `bytes` (a multiple of 8 long) into `w` from byte offset `at`.
fn put_bytes(w: &mut [u64], at: usize, bytes: &[u8]) {
    for (i, chunk) in bytes.chunks(8).enumerate() {
        w[at / 8 + i] = le_word(chunk);
    }
}

/// `N` bytes of `w` from byte offset `at`.
fn get_bytes<const N: usize>(w: &[u64], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let b = w[at / 8 + i].to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
    out
}

/// `mantissa / 10^scale` as a decimal string, exactly (no floating point).
pub fn fmt_fixed(mantissa: i64, scale: u8) -> String {
    let neg = mantissa < 0;
    let digits = mantissa.unsigned_abs().to_string();
    let scale = scale as usize;
    let s = if scale == 0 {
        digits
    } else if digits.len() > scale {
        let (i, f) = digits.split_at(digits.len() - scale);
        format!("{i}.{f}")
    } else {
        format!("0.{}{digits}", "0".repeat(scale - digits.len()))
    };
    if neg {
        format!("-{s}")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_their_words() {
        let top = Top {
            update_id: 5_123_108_265_240,
            recv_ns: 1_723_161_262_601_234_567,
            state: BookState::Synced,
            bid: Some(Level {
                price: 6_180_020,
                qty: 2_507,
            }),
            ask: None,
        };
        assert_eq!(Top::decode(&top.encode()), top);
        let t = Trade {
            trade_id: 9,
            recv_ns: 1,
            price: -5,
            qty: 7,
            trade_time_ms: 3,
            count: 2,
            buyer_is_maker: true,
            aggregate: false,
        };
        assert_eq!(Trade::decode(&t.encode()), t);
        let k = Ticker {
            recv_ns: 1,
            event_time_ms: 2,
            last: 3,
            open: 4,
            high: 5,
            low: -6,
            price_change: -7,
            change_pct: Some(Dec {
                mantissa: -123,
                scale: 3,
            }),
            volume: Dec {
                mantissa: 99,
                scale: 8,
            },
            quote_volume: Dec {
                mantissa: 1,
                scale: 18,
            },
            mini: true,
        };
        assert_eq!(Ticker::decode(&k.encode()), k);
        let key = InstrumentKey {
            market: MarketCode::CoinM as u8,
            price_scale: 1,
            qty_scale: 0,
            symbol: Symbol::new("BTCUSD_PERP"),
        };
        assert_eq!(dir_entry_decode(&dir_entry_words(&key)), key);
        let p = Position {
            instrument: key,
            qty: -3,
            avg_entry_price: Some(600_001),
            mark: None,
            realized_pnl: -1,
            unrealized_pnl: 2,
            fees: 3,
            leverage: Some(20),
            liquidation_price: None,
            pnl_overflow: false,
        };
        assert_eq!(Position::decode(&p.encode()), p);
        let o = Order {
            instrument: key,
            side: 1,
            order_type: 4,
            time_in_force: 2,
            status: 2,
            reduce_only: true,
            client_order_id: OrderId::new("tp-123456789012345678901234567890123"),
            venue_order_id: Some(77),
            price: 10,
            stop_price: 0,
            qty: 5,
            filled: 1,
            avg_price: Some(9),
            fees: 12,
            created_ns: 100,
            updated_ns: 200,
        };
        assert_eq!(Order::decode(&o.encode()), o);
        let h = DepthHead {
            update_id: 1,
            recv_ns: 2,
            state: BookState::OutOfSync,
        };
        assert_eq!(DepthHead::decode(&h.encode(20, 3)), (h, 20, 3));
    }

    #[test]
    fn layout_is_what_the_docs_say() {
        let l = MarketLayout {
            levels: 20,
            max_instruments: 1024,
        };
        assert_eq!(l.depth_size(), 704);
        assert_eq!(l.slot_size(), 960);
        assert_eq!(l.slots_offset(), 256 + 1024 * 64);
        assert_eq!(l.slots_offset() % 64, 0);
        assert_eq!(l.slot_size() % 64, 0);
        let u = UserLayout {
            max_positions: 64,
            max_orders: 256,
        };
        assert_eq!(u.positions_offset(), 384);
        assert_eq!(u.orders_offset(), 384 + 64 + 64 * 128);
        assert_eq!(u.file_size(), u.orders_offset() + 64 + 256 * 192);
        assert_eq!(&MARKET_MAGIC.to_le_bytes(), b"TAPESHMM");
    }

    #[test]
    fn fixed_point_prints_exactly() {
        assert_eq!(fmt_fixed(6_180_020, 2), "61800.20");
        assert_eq!(fmt_fixed(-5, 3), "-0.005");
        assert_eq!(fmt_fixed(0, 0), "0");
        assert_eq!(fmt_fixed(i64::MIN, 18), "-9.223372036854775808");
    }
}
