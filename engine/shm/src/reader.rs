//! The readers: a safe view of the market file ([`Reader`]) and of a user file
//! ([`UserReader`]), for any process on the host that may open them.
//!
//! Opening checks the header against this version's layout and refuses anything else with an
//! [`OpenError`] that says why (another layout version above all). Every read copies one
//! record under its seqlock: the copy is one write's values, never a mix of two.

use std::cell::RefCell;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::error::{OpenError, ReadError};
use crate::layout::{
    self, depth, dir_entry_decode, header, table, Depth, DepthHead, InstrumentKey, Level,
    MarketCode, MarketLayout, Order, Portfolio, Position, Ticker, Top, Trade, UserLayout,
    DEPTH_HEAD_WORDS, HEADER_SIZE, MARKET_FILE, MARKET_MAGIC, MAX_ENTRIES, MAX_INSTRUMENTS,
    MAX_LEVELS, ORDER_WORDS, PORTFOLIO_WORDS, POSITION_WORDS, STATUS_CLOSED, TICKER_WORDS,
    TOP_WORDS, TRADE_WORDS, USER_MAGIC, VERSION,
};
use crate::shared::{ReadMap, ReadRecord, ReadWords};

/// How long a read waits for a record that stays mid-write before it reports
/// [`ReadError::Stalled`]. A write takes nanoseconds; only a stopped or dead writer (or one
/// descheduled for a long time) holds a record this long.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(1);

/// Retries spun before a waiting reader starts yielding its CPU.
const SPINS_BEFORE_YIELD: u32 = 1 << 12;

/// What the writer says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterStatus {
    /// Writing.
    Live,
    /// Stopped cleanly; a new writer replaces the file (see [`Reader::replaced`]).
    Closed,
}

/// An instrument of the market file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instrument {
    /// Its slot (its index in the directory).
    pub slot: u32,
    /// Market, scales, symbol.
    pub key: InstrumentKey,
}

impl Instrument {
    /// The market, when the code is one this reader knows.
    pub fn market(&self) -> Option<MarketCode> {
        MarketCode::from_code(self.key.market)
    }

    /// `market:SYMBOL`, as tape names instruments everywhere.
    pub fn name(&self) -> String {
        format!(
            "{}:{}",
            self.market().map_or("?", MarketCode::as_str),
            self.key.symbol
        )
    }

    /// A price mantissa as a decimal string.
    pub fn price(&self, mantissa: i64) -> String {
        layout::fmt_fixed(mantissa, self.key.price_scale)
    }

    /// A quantity mantissa as a decimal string.
    pub fn qty(&self, mantissa: i64) -> String {
        layout::fmt_fixed(mantissa, self.key.qty_scale)
    }
}

/// An open file and its map, with what both readers check.
#[derive(Debug)]
struct Mapped {
    file: File,
    map: ReadMap,
    path: PathBuf,
}

impl Mapped {
    fn open(path: &Path, magic: u64, kind: &'static str) -> Result<Mapped, OpenError> {
        let file = File::open(path).map_err(OpenError::io(path, "open"))?;
        let len = file.metadata().map_err(OpenError::io(path, "stat"))?.len();
        if len < HEADER_SIZE {
            return Err(OpenError::Truncated {
                path: path.to_owned(),
                len,
                expected: HEADER_SIZE,
            });
        }
        // Files are written whole and never change size: mapping what stat says is mapping
        // the whole file. A length that is not a multiple of 8 is refused by the map.
        let map = ReadMap::of_file(&file, len, path).map_err(OpenError::io(path, "map"))?;
        let m = Mapped {
            file,
            map,
            path: path.to_owned(),
        };
        let w = m.map.words();
        let found = w.load(header::MAGIC, Ordering::Relaxed);
        if found != magic {
            let other = if magic == MARKET_MAGIC {
                (USER_MAGIC, "user")
            } else {
                (MARKET_MAGIC, "market")
            };
            return Err(if found == other.0 {
                OpenError::WrongKind {
                    path: path.to_owned(),
                    found: other.1,
                    expected: kind,
                }
            } else {
                OpenError::NotTape {
                    path: path.to_owned(),
                    magic: found,
                }
            });
        }
        let version = w.load(header::VERSION, Ordering::Relaxed);
        if version != VERSION {
            return Err(OpenError::Version {
                path: path.to_owned(),
                found: version,
                supported: VERSION,
            });
        }
        let size = w.load(header::FILE_SIZE, Ordering::Relaxed);
        if size > len {
            return Err(OpenError::Truncated {
                path: path.to_owned(),
                len,
                expected: size,
            });
        }
        Ok(m)
    }

    fn words(&self) -> ReadWords<'_> {
        self.map.words()
    }

    /// Checks every header field `names` lists against its value in `expected` (the layout
    /// this version derives from the file's parameters).
    fn check(
        &self,
        expected: &[(usize, u64)],
        names: &[(usize, &'static str)],
    ) -> Result<(), OpenError> {
        let w = self.words();
        let len = w.len() as u64 * 8;
        for &(off, field) in names {
            let Some(&(_, want)) = expected.iter().find(|(o, _)| *o == off) else {
                continue;
            };
            let found = w.load(off, Ordering::Relaxed);
            if found != want {
                return Err(OpenError::Layout {
                    path: self.path.clone(),
                    field,
                    found,
                    expected: want,
                });
            }
        }
        let size = w.load(header::FILE_SIZE, Ordering::Relaxed);
        if size != len {
            return Err(OpenError::Layout {
                path: self.path.clone(),
                field: "file_size",
                found: size,
                expected: len,
            });
        }
        Ok(())
    }

    fn status(&self) -> WriterStatus {
        if self.words().load(header::STATUS, Ordering::Acquire) == STATUS_CLOSED {
            WriterStatus::Closed
        } else {
            WriterStatus::Live
        }
    }

    fn replaced(&self) -> bool {
        let (Ok(now), Ok(mine)) = (std::fs::metadata(&self.path), self.file.metadata()) else {
            return true;
        };
        now.dev() != mine.dev() || now.ino() != mine.ino()
    }

    /// Copies `record`'s payload into `out` under its seqlock, retrying while the writer is
    /// in the middle of it: spinning first, then yielding, for at most [`STALL_TIMEOUT`].
    fn read(&self, offset: u64, size: u64, out: &mut [u64]) -> Result<u64, ReadError> {
        let rec = self.words().record(offset, size);
        read_record(&rec, offset, out)
    }
}

fn read_record(rec: &ReadRecord<'_>, offset: u64, out: &mut [u64]) -> Result<u64, ReadError> {
    let mut tries = 0u32;
    let mut since: Option<Instant> = None;
    loop {
        if let Some(seq) = rec.try_read(out) {
            return Ok(seq);
        }
        tries = tries.wrapping_add(1);
        if tries < SPINS_BEFORE_YIELD {
            std::hint::spin_loop();
            continue;
        }
        let start = *since.get_or_insert_with(Instant::now);
        let waited = start.elapsed();
        if waited > STALL_TIMEOUT {
            return Err(ReadError::Stalled {
                offset,
                waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
            });
        }
        std::thread::yield_now();
    }
}

const MARKET_FIELDS: &[(usize, &str)] = &[
    (header::MAGIC, "magic"),
    (header::VERSION, "version"),
    (header::HEADER_SIZE, "header_size"),
    (header::FILE_SIZE, "file_size"),
    (header::LEVELS, "levels"),
    (header::MAX_INSTRUMENTS, "max_instruments"),
    (header::DIR_OFFSET, "dir_offset"),
    (header::DIR_ENTRY_SIZE, "dir_entry_size"),
    (header::SLOTS_OFFSET, "slots_offset"),
    (header::SLOT_SIZE, "slot_size"),
    (header::TOP_OFFSET, "top_offset"),
    (header::TOP_SIZE, "top_size"),
    (header::TRADE_OFFSET, "trade_offset"),
    (header::TRADE_SIZE, "trade_size"),
    (header::TICKER_OFFSET, "ticker_offset"),
    (header::TICKER_SIZE, "ticker_size"),
    (header::DEPTH_OFFSET, "depth_offset"),
    (header::DEPTH_SIZE, "depth_size"),
];

const USER_FIELDS: &[(usize, &str)] = &[
    (header::MAGIC, "magic"),
    (header::VERSION, "version"),
    (header::HEADER_SIZE, "header_size"),
    (header::FILE_SIZE, "file_size"),
    (header::LEVELS, "max_positions"),
    (header::MAX_INSTRUMENTS, "max_orders"),
    (header::MONEY_SCALE, "money_scale"),
    (header::PORTFOLIO_OFFSET, "portfolio_offset"),
    (header::PORTFOLIO_SIZE, "portfolio_size"),
    (header::POSITIONS_OFFSET, "positions_offset"),
    (header::POSITIONS_SIZE, "positions_size"),
    (header::POSITION_ENTRY_SIZE, "position_entry_size"),
    (header::ORDERS_OFFSET, "orders_offset"),
    (header::ORDERS_SIZE, "orders_size"),
    (header::ORDER_ENTRY_SIZE, "order_entry_size"),
    (header::USER_LEN, "user_len"),
];

fn bounded(m: &Mapped, field: &'static str, offset: usize, max: u32) -> Result<u32, OpenError> {
    let v = m.words().load(offset, Ordering::Relaxed);
    match u32::try_from(v) {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(OpenError::Layout {
            path: m.path.clone(),
            field,
            found: v,
            expected: u64::from(max),
        }),
    }
}

thread_local! {
    /// A depth copy's words, reused so that reading levels allocates only while it grows.
    static SCRATCH: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// The market file, read: instruments, top of book, depth, last trade, ticker.
#[derive(Debug)]
pub struct Reader {
    m: Mapped,
    layout: MarketLayout,
}

impl Reader {
    /// Opens the market file: `path` is the file, or the directory that holds `market.shm`.
    ///
    /// # Errors
    /// The file cannot be opened or mapped, is not a tape market file, has another layout
    /// version ([`OpenError::Version`]) or a header that disagrees with this version's
    /// layout.
    pub fn open(path: impl AsRef<Path>) -> Result<Reader, OpenError> {
        let path = path.as_ref();
        let path = if path.is_dir() {
            path.join(MARKET_FILE)
        } else {
            path.to_owned()
        };
        let m = Mapped::open(&path, MARKET_MAGIC, "market")?;
        let layout = MarketLayout {
            levels: bounded(&m, "levels", header::LEVELS, MAX_LEVELS)?,
            max_instruments: bounded(
                &m,
                "max_instruments",
                header::MAX_INSTRUMENTS,
                MAX_INSTRUMENTS,
            )?,
        };
        m.check(&layout.header(0, 0), MARKET_FIELDS)?;
        Ok(Reader { m, layout })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.m.path
    }

    /// Levels per side.
    pub fn levels_per_side(&self) -> u32 {
        self.layout.levels
    }

    /// The writer's status.
    pub fn status(&self) -> WriterStatus {
        self.m.status()
    }

    /// The writer's process id.
    pub fn writer_pid(&self) -> u32 {
        u32::try_from(self.m.words().load(header::WRITER_PID, Ordering::Relaxed)).unwrap_or(0)
    }

    /// The engine's pass (a looping replay starts over: books empty again).
    pub fn generation(&self) -> u64 {
        self.m.words().load(header::GENERATION, Ordering::Acquire)
    }

    /// True when the path now names another file (a new writer started): open it again.
    pub fn replaced(&self) -> bool {
        self.m.replaced()
    }

    /// Instruments published so far.
    pub fn instrument_count(&self) -> u32 {
        let n = self.m.words().load(header::INSTRUMENTS, Ordering::Acquire);
        u32::try_from(n)
            .unwrap_or(u32::MAX)
            .min(self.layout.max_instruments)
    }

    /// Instrument `slot`, if published.
    pub fn instrument(&self, slot: u32) -> Option<Instrument> {
        if slot >= self.instrument_count() {
            return None;
        }
        let mut w = [0u64; 5];
        self.m.words().load_all(self.layout.dir_entry(slot), &mut w);
        Some(Instrument {
            slot,
            key: dir_entry_decode(&w),
        })
    }

    /// Every published instrument, in slot order.
    pub fn instruments(&self) -> Vec<Instrument> {
        (0..self.instrument_count())
            .filter_map(|i| self.instrument(i))
            .collect()
    }

    /// The instrument named `market:SYMBOL`, or `SYMBOL` (the first market that has it);
    /// symbols in any case.
    pub fn find(&self, name: &str) -> Option<Instrument> {
        let (market, symbol) = match name.split_once(':') {
            Some((m, s)) => (Some(MarketCode::parse(&m.to_ascii_lowercase())?), s),
            None => (None, name),
        };
        self.instruments().into_iter().find(|i| {
            i.key.symbol.as_str().eq_ignore_ascii_case(symbol)
                && market.is_none_or(|m| i.market() == Some(m))
        })
    }

    fn slot_offset(&self, inst: &Instrument) -> Result<u64, ReadError> {
        if inst.slot >= self.layout.max_instruments {
            return Err(ReadError::NoSlot(inst.slot));
        }
        Ok(self.layout.slot(inst.slot))
    }

    /// The top of book: best bid and ask, update id, receive time and book state.
    ///
    /// # Errors
    /// [`ReadError::Stalled`] when the writer stays mid-write; [`ReadError::NoSlot`].
    pub fn bbo(&self, inst: &Instrument) -> Result<Top, ReadError> {
        Ok(self.bbo_seq(inst)?.0)
    }

    /// [`Reader::bbo`] with the record's sequence number (for [`Reader::wait_change`]).
    ///
    /// # Errors
    /// As [`Reader::bbo`].
    pub fn bbo_seq(&self, inst: &Instrument) -> Result<(Top, u64), ReadError> {
        let at = self.slot_offset(inst)? + self.layout.top_offset();
        let mut w = [0u64; TOP_WORDS];
        let seq = self.m.read(at, layout::top::SIZE, &mut w)?;
        Ok((Top::decode(&w), seq))
    }

    /// The top-of-book record's sequence number now (even: stable; it grows by 2 per write).
    ///
    /// # Errors
    /// [`ReadError::NoSlot`].
    pub fn top_seq(&self, inst: &Instrument) -> Result<u64, ReadError> {
        let at = self.slot_offset(inst)? + self.layout.top_offset();
        Ok(self.m.words().record(at, layout::top::SIZE).sequence())
    }

    /// Waits until the top of book of `inst` is written again after sequence `since` (from
    /// [`Reader::bbo_seq`] or [`Reader::top_seq`]), spinning first, then yielding, for at
    /// most `timeout`. Returns the new top and its sequence, or `None` on timeout.
    ///
    /// # Errors
    /// As [`Reader::bbo`].
    pub fn wait_change(
        &self,
        inst: &Instrument,
        since: u64,
        timeout: Duration,
    ) -> Result<Option<(Top, u64)>, ReadError> {
        let at = self.slot_offset(inst)? + self.layout.top_offset();
        let rec = self.m.words().record(at, layout::top::SIZE);
        let mut tries = 0u32;
        let mut start: Option<Instant> = None;
        loop {
            if rec.sequence() != since {
                let mut w = [0u64; TOP_WORDS];
                let seq = read_record(&rec, at, &mut w)?;
                if seq != since {
                    return Ok(Some((Top::decode(&w), seq)));
                }
            }
            tries = tries.wrapping_add(1);
            if tries < SPINS_BEFORE_YIELD {
                std::hint::spin_loop();
                continue;
            }
            let t0 = *start.get_or_insert_with(Instant::now);
            if t0.elapsed() >= timeout {
                return Ok(None);
            }
            std::thread::yield_now();
        }
    }

    /// The depth: the book's first N levels per side, with its update id and state.
    ///
    /// # Errors
    /// As [`Reader::bbo`].
    pub fn levels(&self, inst: &Instrument) -> Result<Depth, ReadError> {
        let mut d = Depth::default();
        self.levels_into(inst, &mut d)?;
        Ok(d)
    }

    /// [`Reader::levels`] into `out`, reusing its vectors (no allocation once they have
    /// grown to N).
    ///
    /// # Errors
    /// As [`Reader::bbo`].
    pub fn levels_into(&self, inst: &Instrument, out: &mut Depth) -> Result<(), ReadError> {
        let at = self.slot_offset(inst)? + self.layout.depth_offset();
        let size = self.layout.depth_size();
        let n = self.layout.levels as usize;
        SCRATCH.with(|s| {
            let mut w = s.borrow_mut();
            let words = (size / 8) as usize - 1;
            w.resize(words, 0);
            self.m.read(at, size, &mut w)?;
            let (head, nb, na) = DepthHead::decode(&w[..DEPTH_HEAD_WORDS]);
            out.head = head;
            let first = depth::LEVELS / 8 - 1;
            let level = |i: usize| Level {
                price: w[first + 2 * i] as i64,
                qty: w[first + 2 * i + 1] as i64,
            };
            out.bids.clear();
            out.bids.extend((0..usize::from(nb).min(n)).map(level));
            out.asks.clear();
            out.asks
                .extend((0..usize::from(na).min(n)).map(|i| level(n + i)));
            Ok(())
        })
    }

    /// The last trade (`count` 0: none yet).
    ///
    /// # Errors
    /// As [`Reader::bbo`].
    pub fn last_trade(&self, inst: &Instrument) -> Result<Trade, ReadError> {
        let at = self.slot_offset(inst)? + self.layout.trade_offset();
        let mut w = [0u64; TRADE_WORDS];
        self.m.read(at, layout::trade::SIZE, &mut w)?;
        Ok(Trade::decode(&w))
    }

    /// The 24h ticker (`recv_ns` 0: none yet).
    ///
    /// # Errors
    /// As [`Reader::bbo`].
    pub fn ticker(&self, inst: &Instrument) -> Result<Ticker, ReadError> {
        let at = self.slot_offset(inst)? + self.layout.ticker_offset();
        let mut w = [0u64; TICKER_WORDS];
        self.m.read(at, layout::ticker::SIZE, &mut w)?;
        Ok(Ticker::decode(&w))
    }
}

/// A user file, read: portfolio, positions, open orders.
#[derive(Debug)]
pub struct UserReader {
    m: Mapped,
    layout: UserLayout,
    user: String,
}

impl UserReader {
    /// Opens a user file (`user-NAME.shm`).
    ///
    /// # Errors
    /// As [`Reader::open`]; a file the OS refuses to open for this account (its mode and
    /// group say who may) is [`OpenError::Io`] with permission denied.
    pub fn open(path: impl AsRef<Path>) -> Result<UserReader, OpenError> {
        let path = path.as_ref();
        let m = Mapped::open(path, USER_MAGIC, "user")?;
        let layout = UserLayout {
            max_positions: bounded(&m, "max_positions", header::LEVELS, MAX_ENTRIES)?,
            max_orders: bounded(&m, "max_orders", header::MAX_INSTRUMENTS, MAX_ENTRIES)?,
        };
        let w = m.words();
        let len = (w.load(header::USER_LEN, Ordering::Relaxed) as usize).min(layout::MAX_USER);
        let mut name = [0u64; layout::MAX_USER / 8];
        w.load_all(header::USER_NAME as u64, &mut name);
        let bytes: Vec<u8> = name
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .take(len)
            .collect();
        let user = String::from_utf8_lossy(&bytes).into_owned();
        m.check(&layout.header(&user, 0, 0), USER_FIELDS)?;
        Ok(UserReader { m, layout, user })
    }

    /// The user.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.m.path
    }

    /// The writer's status.
    pub fn status(&self) -> WriterStatus {
        self.m.status()
    }

    /// True when the path now names another file: open it again.
    pub fn replaced(&self) -> bool {
        self.m.replaced()
    }

    /// The engine's pass.
    pub fn generation(&self) -> u64 {
        self.m.words().load(header::GENERATION, Ordering::Acquire)
    }

    /// The portfolio summary.
    ///
    /// # Errors
    /// [`ReadError::Stalled`].
    pub fn portfolio(&self) -> Result<Portfolio, ReadError> {
        let mut w = [0u64; PORTFOLIO_WORDS];
        self.m.read(
            self.layout.portfolio_offset(),
            layout::portfolio::SIZE,
            &mut w,
        )?;
        Ok(Portfolio::decode(&w))
    }

    /// The positions (and how many the account has: more than returned when they did not fit).
    ///
    /// # Errors
    /// [`ReadError::Stalled`].
    pub fn positions(&self) -> Result<(Vec<Position>, u64), ReadError> {
        let (w, n, total) = self.table(
            self.layout.positions_offset(),
            self.layout.positions_size(),
            self.layout.max_positions,
        )?;
        let first = table::ENTRIES / 8 - 1;
        let v = (0..n)
            .map(|i| Position::decode(&w[first + i * POSITION_WORDS..][..POSITION_WORDS]))
            .collect();
        Ok((v, total))
    }

    /// The open orders (and how many the account has).
    ///
    /// # Errors
    /// [`ReadError::Stalled`].
    pub fn orders(&self) -> Result<(Vec<Order>, u64), ReadError> {
        let (w, n, total) = self.table(
            self.layout.orders_offset(),
            self.layout.orders_size(),
            self.layout.max_orders,
        )?;
        let first = table::ENTRIES / 8 - 1;
        let v = (0..n)
            .map(|i| Order::decode(&w[first + i * ORDER_WORDS..][..ORDER_WORDS]))
            .collect();
        Ok((v, total))
    }

    fn table(&self, at: u64, size: u64, room: u32) -> Result<(Vec<u64>, usize, u64), ReadError> {
        let mut w = vec![0u64; (size / 8) as usize - 1];
        self.m.read(at, size, &mut w)?;
        let n = (w[table::COUNT / 8 - 1] as usize).min(room as usize);
        let total = w[table::TOTAL / 8 - 1];
        Ok((w, n, total))
    }
}
