//! The writer: the directory and its lock, files created whole and renamed into place, and
//! the record writes the engine thread makes (stores into the map: no system call, no
//! allocation).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{FallocateFlags, FlockOperation};

use crate::error::ShmError;
use crate::layout::{
    self, depth, dir_entry_words, header, table, DepthHead, InstrumentKey, Level, MarketLayout,
    Order, Portfolio, Position, Ticker, Top, Trade, UserLayout, DEPTH_HEAD_WORDS, LOCK_FILE,
    MARKET_FILE, ORDER_WORDS, POSITION_WORDS, STATUS_CLOSED, STATUS_LIVE, USER_FILE_PREFIX,
    USER_FILE_SUFFIX,
};
use crate::options::{check_user, MarketOptions, UserOptions};
use crate::shared::seqlock::Stores;
use crate::shared::WriteMap;

/// The publication's directory, held exclusively by this writer (an `flock` on its `LOCK`
/// file) for as long as this value lives.
#[derive(Debug)]
pub struct ShmDir {
    path: PathBuf,
    _lock: File,
}

impl ShmDir {
    /// Opens `path` for writing, creating it if its parent exists, and locks it.
    ///
    /// # Errors
    /// [`ShmError::Dir`] when it cannot be created, is not a directory or is not writable;
    /// [`ShmError::Locked`] when another writer holds it.
    pub fn open(path: &Path) -> Result<ShmDir, ShmError> {
        let dir_err = |reason: String| ShmError::Dir {
            path: path.to_owned(),
            reason,
        };
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(dir_err("exists and is not a directory".into())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if let Err(e) = std::fs::create_dir(path) {
                    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
                    let hint = match parent {
                        Some(p) if !p.is_dir() => {
                            format!(" (its parent {} does not exist)", p.display())
                        }
                        _ => String::new(),
                    };
                    return Err(dir_err(format!("cannot create it: {e}{hint}")));
                }
                // Readers of other accounts must reach the files (whose own modes decide who
                // opens them), whatever the umask; a directory made beforehand is left as is.
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
                    .map_err(|e| dir_err(format!("cannot set its mode: {e}")))?;
            }
            Err(e) => return Err(dir_err(format!("cannot inspect it: {e}"))),
        }
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .mode(0o600)
            .open(path.join(LOCK_FILE))
            .map_err(|e| dir_err(format!("not writable: {e}")))?;
        match rustix::fs::flock(&lock, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(ShmError::Locked {
                    path: path.to_owned(),
                })
            }
            Err(e) => return Err(dir_err(format!("cannot lock it: {e}"))),
        }
        Ok(ShmDir {
            path: path.to_owned(),
            _lock: lock,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `user`'s file.
    pub fn user_path(&self, user: &str) -> PathBuf {
        self.path
            .join(format!("{USER_FILE_PREFIX}{user}{USER_FILE_SUFFIX}"))
    }

    /// Creates (or replaces) the market file.
    ///
    /// # Errors
    /// Bad options, or a file that cannot be created, sized, reserved or mapped.
    pub fn create_market(&self, opts: &MarketOptions) -> Result<MarketWriter, ShmError> {
        let layout = opts.validate()?;
        let path = self.path.join(MARKET_FILE);
        let (tmp, map) = create(&path, layout.file_size(), opts.mode, None)?;
        let words = map.words();
        for (off, v) in layout.header(std::process::id(), now_ns()) {
            words.store(off, v, Ordering::Relaxed);
        }
        words.store(header::STATUS, STATUS_LIVE, Ordering::Relaxed);
        publish(&path, tmp)?;
        let n = layout.max_instruments as usize;
        Ok(MarketWriter {
            map,
            layout,
            published: 0,
            depth_counts: vec![(0, 0); n],
            path,
        })
    }

    /// Creates (or replaces) `user`'s file.
    ///
    /// # Errors
    /// Bad options or user name, or a file that cannot be created, given to its group,
    /// sized, reserved or mapped.
    pub fn create_user(&self, user: &str, opts: &UserOptions) -> Result<UserWriter, ShmError> {
        check_user(user)?;
        let layout = opts.validate()?;
        let path = self.user_path(user);
        let (tmp, map) = create(&path, layout.file_size(), opts.mode, opts.group)?;
        let words = map.words();
        for (off, v) in layout.header(user, std::process::id(), now_ns()) {
            words.store(off, v, Ordering::Relaxed);
        }
        words.store(header::STATUS, STATUS_LIVE, Ordering::Relaxed);
        publish(&path, tmp)?;
        Ok(UserWriter {
            map,
            layout,
            counts: (0, 0),
            path,
        })
    }
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn tmp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// Creates the file under a temporary name with its mode (and group), at its full size with
/// its space reserved, and maps it. [`publish`] renames it into place once its header is
/// written, so no reader ever opens a file without one.
fn create(
    path: &Path,
    size: u64,
    mode: u32,
    group: Option<u32>,
) -> Result<(PathBuf, WriteMap), ShmError> {
    let tmp = tmp_path(path);
    let io_err = |op: &'static str| {
        let p = tmp.clone();
        move |source: io::Error| ShmError::Io {
            path: p,
            op,
            source,
        }
    };
    // A leftover of a writer that died between creating and renaming (the lock says none is
    // running now).
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("remove a stale temporary file")(e)),
    }
    let file = OpenOptions::new()
        .create_new(true)
        .read(true)
        .write(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io_err("create"))?;
    let made = prepare(&file, &tmp, size, mode, group);
    if made.is_err() {
        // Nothing half-made is left behind (a file that could not be reserved on a full
        // file system would hold on to what it got).
        let _ = std::fs::remove_file(&tmp);
    }
    let map = made?;
    drop(file);
    Ok((tmp, map))
}

/// Mode, group, size, reserved space and the map of a just-created file.
fn prepare(
    file: &File,
    tmp: &Path,
    size: u64,
    mode: u32,
    group: Option<u32>,
) -> Result<WriteMap, ShmError> {
    let io_err = |op: &'static str| {
        let p = tmp.to_owned();
        move |source: io::Error| ShmError::Io {
            path: p,
            op,
            source,
        }
    };
    // The umask may have taken bits away; the configured mode is the one that counts.
    rustix::fs::fchmod(file, rustix::fs::Mode::from_raw_mode(mode))
        .map_err(|e| io_err("chmod")(e.into()))?;
    if let Some(gid) = group {
        rustix::fs::fchown(file, None, Some(rustix::fs::Gid::from_raw(gid))).map_err(|e| {
            ShmError::Chown {
                path: tmp.to_owned(),
                gid,
                source: e.into(),
            }
        })?;
    }
    file.set_len(size).map_err(io_err("set length"))?;
    reserve(file, size).map_err(|source| ShmError::NoSpace {
        path: tmp.to_owned(),
        bytes: size,
        source,
    })?;
    WriteMap::of_file(file, size, tmp).map_err(io_err("map"))
}

/// Renames the temporary file into place (atomically replacing an older file: its readers
/// keep the old one, see `Reader::replaced`).
fn publish(path: &Path, tmp: PathBuf) -> Result<(), ShmError> {
    std::fs::rename(&tmp, path).map_err(|source| ShmError::Io {
        path: path.to_owned(),
        op: "rename into place",
        source,
    })
}

/// Allocates the whole file now, so a store through the map can never fault for lack of
/// space later (tmpfs allocates a page at its first store otherwise): `fallocate`, or zeros
/// written where the file system has no `fallocate`.
fn reserve(file: &File, len: u64) -> io::Result<()> {
    match rustix::fs::fallocate(file, FallocateFlags::empty(), 0, len) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::OPNOTSUPP) => {
            const CHUNK: usize = 1 << 16;
            let zeros = vec![0u8; CHUNK];
            let mut at = 0u64;
            while at < len {
                let n = (len - at).min(CHUNK as u64) as usize;
                file.write_all_at(&zeros[..n], at)?;
                at += n as u64;
            }
            file.sync_data()
        }
        Err(e) => Err(e.into()),
    }
}

/// An instrument's place in the market file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot(pub u32);

/// The market file's writer: one per process, on the engine thread.
#[derive(Debug)]
pub struct MarketWriter {
    map: WriteMap,
    layout: MarketLayout,
    published: u32,
    /// Level counts last written per slot, so fewer levels zero the rest.
    depth_counts: Vec<(u16, u16)>,
    path: PathBuf,
}

impl MarketWriter {
    /// The file's layout.
    pub fn layout(&self) -> MarketLayout {
        self.layout
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Instruments published so far.
    pub fn instruments(&self) -> u32 {
        self.published
    }

    /// Publishes an instrument in the directory and returns its slot; `None` when every slot
    /// is taken. Its entry is stored before the count that makes it visible (release).
    pub fn add_instrument(&mut self, key: &InstrumentKey) -> Option<Slot> {
        if self.published >= self.layout.max_instruments {
            return None;
        }
        let slot = self.published;
        let words = self.map.words();
        let at = self.layout.dir_entry(slot);
        for (i, w) in dir_entry_words(key).iter().enumerate() {
            words.store(at as usize + 8 * i, *w, Ordering::Relaxed);
        }
        self.published += 1;
        words.store(
            header::INSTRUMENTS,
            u64::from(self.published),
            Ordering::Release,
        );
        Some(Slot(slot))
    }

    /// Writes the top of book of `slot`.
    #[inline]
    pub fn write_top(&mut self, slot: Slot, top: &Top) {
        let at = self.layout.top_offset();
        self.write_whole(slot, at, layout::top::SIZE, &top.encode());
    }

    /// Writes the last trade of `slot`.
    #[inline]
    pub fn write_trade(&mut self, slot: Slot, trade: &Trade) {
        let at = self.layout.trade_offset();
        self.write_whole(slot, at, layout::trade::SIZE, &trade.encode());
    }

    /// Writes the ticker of `slot`.
    #[inline]
    pub fn write_ticker(&mut self, slot: Slot, ticker: &Ticker) {
        let at = self.layout.ticker_offset();
        self.write_whole(slot, at, layout::ticker::SIZE, &ticker.encode());
    }

    /// Rewrites the whole record at `offset` in `slot` (`size` bytes) with `words`, under its
    /// seqlock.
    #[inline]
    fn write_whole(&mut self, slot: Slot, offset: u64, size: u64, words: &[u64]) {
        let at = self.layout.slot(slot.0) + offset;
        self.map
            .words()
            .record(at, size)
            .write(|s| s.set_all(0, words));
    }

    /// Writes the depth of `slot`: the head and the first N levels of each side, best first
    /// (more are ignored). Level slots beyond the new counts that held levels are zeroed.
    #[inline]
    pub fn write_depth(
        &mut self,
        slot: Slot,
        head: &DepthHead,
        bids: impl Iterator<Item = Level>,
        asks: impl Iterator<Item = Level>,
    ) {
        let Some(prev) = self.depth_counts.get(slot.0 as usize).copied() else {
            return;
        };
        let n = self.layout.levels as usize;
        let at = self.layout.slot(slot.0) + self.layout.depth_offset();
        let first = depth::LEVELS / 8 - 1; // payload word of bid level 0
        let mut counts = (0u16, 0u16);
        self.map
            .words()
            .record(at, self.layout.depth_size())
            .write(|s| {
                counts.0 = put_levels(&s, first, bids.take(n), prev.0);
                counts.1 = put_levels(&s, first + 2 * n, asks.take(n), prev.1);
                s.set_all(0, &head.encode(counts.0, counts.1));
            });
        self.depth_counts[slot.0 as usize] = counts;
    }

    /// Stores the engine's pass (a looping replay starts over: its books and accounts too).
    pub fn set_generation(&mut self, generation: u64) {
        self.map
            .words()
            .store(header::GENERATION, generation, Ordering::Release);
    }

    /// Marks the file closed: the writer is stopping.
    pub fn close(&mut self) {
        self.map
            .words()
            .store(header::STATUS, STATUS_CLOSED, Ordering::Release);
    }
}

impl Drop for MarketWriter {
    fn drop(&mut self) {
        self.close();
    }
}

/// A user file's writer.
#[derive(Debug)]
pub struct UserWriter {
    map: WriteMap,
    layout: UserLayout,
    /// Entries last written (positions, orders), so fewer entries zero the rest.
    counts: (u32, u32),
    path: PathBuf,
}

impl UserWriter {
    /// The file's layout.
    pub fn layout(&self) -> UserLayout {
        self.layout
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the portfolio summary.
    pub fn write_portfolio(&mut self, p: &Portfolio) {
        let words = p.encode();
        self.map
            .words()
            .record(self.layout.portfolio_offset(), layout::portfolio::SIZE)
            .write(|s| s.set_all(0, &words));
    }

    /// Writes the positions: as many of `positions` as there is room for; `recv_ns` is the
    /// receive time of the input that changed them.
    pub fn write_positions(&mut self, recv_ns: u64, positions: impl Iterator<Item = Position>) {
        let room = self.layout.max_positions;
        let prev = self.counts.0;
        let mut n = 0u32;
        let mut total = 0u64;
        self.map
            .words()
            .record(self.layout.positions_offset(), self.layout.positions_size())
            .write(|s| {
                for p in positions {
                    total += 1;
                    if n < room {
                        s.set_all(entry(n, POSITION_WORDS), &p.encode());
                        n += 1;
                    }
                }
                for j in n..prev {
                    s.set_all(entry(j, POSITION_WORDS), &[0; POSITION_WORDS]);
                }
                s.set_all(0, &[recv_ns, u64::from(n), total]);
            });
        self.counts.0 = n;
    }

    /// Writes the open orders (as many as there is room for).
    pub fn write_orders(&mut self, recv_ns: u64, orders: impl Iterator<Item = Order>) {
        let room = self.layout.max_orders;
        let prev = self.counts.1;
        let mut n = 0u32;
        let mut total = 0u64;
        self.map
            .words()
            .record(self.layout.orders_offset(), self.layout.orders_size())
            .write(|s| {
                for o in orders {
                    total += 1;
                    if n < room {
                        s.set_all(entry(n, ORDER_WORDS), &o.encode());
                        n += 1;
                    }
                }
                for j in n..prev {
                    s.set_all(entry(j, ORDER_WORDS), &[0; ORDER_WORDS]);
                }
                s.set_all(0, &[recv_ns, u64::from(n), total]);
            });
        self.counts.1 = n;
    }

    /// Stores the engine's pass.
    pub fn set_generation(&mut self, generation: u64) {
        self.map
            .words()
            .store(header::GENERATION, generation, Ordering::Release);
    }

    /// Marks the file closed.
    pub fn close(&mut self) {
        self.map
            .words()
            .store(header::STATUS, STATUS_CLOSED, Ordering::Release);
    }
}

impl Drop for UserWriter {
    fn drop(&mut self) {
        self.close();
    }
}

/// Stores levels as `(price, qty)` word pairs from payload word `base`, zeroes the pairs up
/// to `prev` beyond them, and returns how many were stored.
#[inline(always)]
fn put_levels(
    s: &Stores<'_, AtomicU64>,
    base: usize,
    levels: impl Iterator<Item = Level>,
    prev: u16,
) -> u16 {
    let mut i = 0usize;
    for l in levels {
        s.set(base + 2 * i, l.price as u64);
        s.set(base + 2 * i + 1, l.qty as u64);
        i += 1;
    }
    for j in i..usize::from(prev) {
        s.set(base + 2 * j, 0);
        s.set(base + 2 * j + 1, 0);
    }
    u16::try_from(i).unwrap_or(u16::MAX)
}

/// Payload word of table entry `i` whose entries are `words` long.
#[inline]
fn entry(i: u32, words: usize) -> usize {
    table::ENTRIES / 8 - 1 + i as usize * words
}

const _: () = assert!(DEPTH_HEAD_WORDS == depth::LEVELS / 8 - 1);
