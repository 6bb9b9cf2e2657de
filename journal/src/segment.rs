//! Access to segment files: the writer's memory map (the only `unsafe` of the crate), the
//! readers' `pread`-filled buffers (a whole segment, or a window of it), and reserving a
//! segment's disk space up front.
//!
//! # Why readers do not map
//!
//! A read fault on a mapped file can raise `SIGBUS`: on tmpfs a read of a hole allocates a page
//! and fails when the file system is full, and any file truncated under a live map faults.
//! Readers (`JournalReader`, `verify`, recovery's analysis) therefore copy a segment's data into
//! memory with `pread`, skipping holes with `SEEK_DATA`/`SEEK_HOLE` (a hole reads as the zeros
//! the buffer already holds), so a full or shrinking file system is an I/O error, never a
//! signal.
//!
//! # Why the writer reserves
//!
//! A store into a mapped page of a sparse file allocates the page at fault time; on a full file
//! system that is a `SIGBUS` in the middle of an `append`. Every segment's full size is therefore
//! allocated (`fallocate`) when the file is created or recovered, so a full disk is an error at
//! segment creation, before any record is written into it.
//!
//! # Safety
//!
//! Mapping a file is `unsafe` in `memmap2` because Rust's aliasing rules cannot see other
//! writers of the file: if the bytes behind a `&[u8]` change while it is borrowed, or the
//! file is truncated under a live mapping (which raises `SIGBUS` on access), the program has
//! undefined behaviour. Only the writer maps, and this crate upholds the following invariant,
//! stating it as the contract of its public types:
//!
//! * a segment file is modified only through the one [`WriteMap`] of the one
//!   `JournalWriter` of its directory in this process; the writer takes an exclusive
//!   advisory lock (`LOCK`) on the directory so that a second `tape` writer cannot open it;
//! * the writer truncates or resizes a segment file (`set_len`) only while no map of that
//!   file exists in the writer, and never writes bytes of records it has already handed out;
//! * the file's space is reserved ([`reserve`]) before it is mapped, so stores cannot fault for
//!   lack of space; modification of the files by another process or by hand while they are
//!   mapped is outside the contract.
//!
//! Everything else in the crate only sees `&[u8]` / `&mut [u8]` handed out by these types.

use std::cell::RefCell;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use memmap2::MmapMut;
use rustix::fs::{FallocateFlags, SeekFrom};

use crate::error::{io_err, DamageKind, JournalError};
use crate::format::{
    first_nonzero, parse_record, record_size, Check, Parsed, MAX_SEGMENT_SIZE, RECORD_HEADER_LEN,
    RECORD_MARKER,
};

/// Most bytes a reader loads from one file: a segment is at most [`MAX_SEGMENT_SIZE`]; one
/// alignment unit more is enough for the scan to report a longer file as too long.
const MAX_READ: u64 = MAX_SEGMENT_SIZE + 8;

/// A segment file's bytes, copied into memory with `pread` (see the module docs).
#[derive(Debug)]
pub(crate) struct ReadMap {
    buf: Vec<u8>,
}

impl ReadMap {
    /// Opens `path` and reads its bytes. An empty file reads as an empty slice.
    pub(crate) fn open(path: &Path) -> Result<ReadMap, JournalError> {
        let file = File::open(path).map_err(io_err("open segment", path))?;
        Self::of_file(&file, path)
    }

    /// Reads an already open file (from offset 0; the file position is not used).
    ///
    /// A file that shrinks while it is read yields the bytes that were there: the scan then
    /// reports a short file, as it would for one that was short to begin with.
    pub(crate) fn of_file(file: &File, path: &Path) -> Result<ReadMap, JournalError> {
        let len = file.metadata().map_err(io_err("stat segment", path))?.len();
        let len = usize::try_from(len.min(MAX_READ)).unwrap_or(usize::MAX);
        // Zeroed by the allocator (calloc: untouched pages cost no memory), so holes need no
        // reading at all.
        let mut buf = vec![0u8; len];
        let mut at = 0usize;
        let mut end = len;
        while at < end {
            let data = match rustix::fs::seek(file, SeekFrom::Data(at as u64)) {
                Ok(d) => usize::try_from(d).unwrap_or(usize::MAX),
                // No data at or after `at`: the rest is a hole.
                Err(rustix::io::Errno::NXIO) => break,
                // No SEEK_DATA on this file system: read everything.
                Err(_) => at,
            };
            if data >= end {
                break;
            }
            let hole = match rustix::fs::seek(file, SeekFrom::Hole(data as u64)) {
                Ok(h) => usize::try_from(h).unwrap_or(usize::MAX).min(end),
                Err(_) => end,
            };
            let got = read_fully_at(file, &mut buf[data..hole.max(data)], data as u64)
                .map_err(io_err("read segment", path))?;
            if data + got < hole {
                // The file shrank under us: what is left is what exists.
                end = data + got;
                break;
            }
            at = hole.max(data + 1);
        }
        buf.truncate(end);
        Ok(ReadMap { buf })
    }

    /// The file's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }
}

/// Bytes a [`SegmentWindow`] reads at a time: small enough to stay in the L2 cache between
/// the copy and the parse, large enough that the `pread` calls cost nothing next to the bytes.
pub(crate) const WINDOW: usize = 256 << 10;

/// A new [`SegmentWindow`]'s first read, in bytes (see `refill`).
const FIRST_READ: usize = 16 << 10;

/// A sliding window onto one segment file at a time, read with `pread` into one buffer that
/// is reused for every segment, and once the window is dropped by its thread's next window
/// ([`SPARE`]) (see the module docs for why readers copy instead of mapping).
///
/// A [`ReadMap`] copies a whole segment (64 MiB by default) into fresh memory, and the first
/// touch of each of its pages is a page fault: for a sequential reader that was a third of
/// its time. The window copies [`WINDOW`] bytes at a time into the same pages instead; it
/// grows only for a record larger than that, to the record's size.
#[derive(Debug)]
pub(crate) struct SegmentWindow {
    /// Bytes read at a time ([`WINDOW`]; tests make it small to put records across windows).
    step: usize,
    file: Option<File>,
    /// The file's length when it was opened (at most [`MAX_READ`]), lowered if it turns out
    /// shorter (the file shrank while it was read).
    len: usize,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    base: usize,
    /// Bytes of `buf` holding the file's bytes from `base`.
    valid: usize,
    /// Bytes read from files so far (what the tests hold holes to).
    read: u64,
    /// Bytes the next read takes (at least): [`FIRST_READ`], doubled by each read up to a
    /// step. Kept apart from `buf`'s length, which a buffer from [`SPARE`] starts with.
    reach: usize,
}

thread_local! {
    /// Read buffers of this thread's dropped windows, for its next window (at most
    /// [`SPARE_BUFFERS`], each at most [`SPARE_BYTES`]).
    ///
    /// A buffer's pages are faulted in when first written (~2 µs a page on the hosts measured,
    /// ~130 µs for one [`WINDOW`]), and by default glibc hands a freed quarter megabyte back
    /// to the system (the `tape` binary tunes that away, `tape_tools::alloc`; a process that
    /// embeds this crate may not). A thread that opens reader after reader (replay on demand,
    /// the benches) reads into pages it already has instead. Per thread, so no lock is taken
    /// and a reader's buffer stays with the thread (and the core's caches) that read into it.
    static SPARE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// How many buffers [`SPARE`] keeps: one per reader a thread commonly has open at once.
const SPARE_BUFFERS: usize = 2;

/// The largest buffer [`SPARE`] keeps (one grown for a larger record is dropped).
const SPARE_BYTES: usize = 4 * WINDOW;

impl Drop for SegmentWindow {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        if buf.is_empty() || buf.capacity() > SPARE_BYTES {
            return;
        }
        // During the thread's exit the list may be gone already: the buffer is freed.
        let _ = SPARE.try_with(|spare| {
            if let Ok(mut spare) = spare.try_borrow_mut() {
                if spare.len() < SPARE_BUFFERS {
                    spare.push(buf);
                }
            }
        });
    }
}

impl Default for SegmentWindow {
    fn default() -> Self {
        Self::with_step(WINDOW)
    }
}

impl SegmentWindow {
    /// A window that reads `step` bytes (at least 1) at a time.
    pub(crate) fn with_step(step: usize) -> Self {
        SegmentWindow {
            step: step.max(1),
            file: None,
            len: 0,
            buf: Vec::new(),
            base: 0,
            valid: 0,
            read: 0,
            reach: FIRST_READ.min(step.max(1)),
        }
    }

    /// Switches to the file at `path`, keeping the buffer; nothing is read yet.
    pub(crate) fn open(&mut self, path: &Path) -> Result<(), JournalError> {
        self.file = None;
        let file = File::open(path).map_err(io_err("open segment", path))?;
        let len = file.metadata().map_err(io_err("stat segment", path))?.len();
        self.len = usize::try_from(len.min(MAX_READ)).unwrap_or(usize::MAX);
        self.file = Some(file);
        self.base = 0;
        self.valid = 0;
        Ok(())
    }

    /// Bytes read from files so far.
    #[cfg(test)]
    pub(crate) fn bytes_read(&self) -> u64 {
        self.read
    }

    /// Where the buffer's bytes are (what the tests hold a spare's reuse to).
    #[cfg(test)]
    pub(crate) fn buffer_at(&self) -> *const u8 {
        self.buf.as_ptr()
    }

    /// The file's length (see the field).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The bytes in the window, from the file offset it starts at, cut at file offset `end`.
    pub(crate) fn bytes(&self, end: usize) -> &[u8] {
        &self.buf[..self.valid.min(end.saturating_sub(self.base))]
    }

    /// The file's bytes at `range` (file offsets), if the window holds them.
    pub(crate) fn get(&self, range: std::ops::Range<usize>) -> Option<&[u8]> {
        let start = range.start.checked_sub(self.base)?;
        let end = range.end.checked_sub(self.base)?;
        self.buf[..self.valid].get(start..end)
    }

    /// Parses the record at file offset `pos` of a segment of `seg_size` bytes, as
    /// [`parse_record`] would over the whole file (cut at `seg_size`), reading what it needs.
    /// Offsets in the result are the file's; a record's bytes stay in the window until the
    /// next call.
    #[inline]
    pub(crate) fn parse(
        &mut self,
        pos: usize,
        seg_size: usize,
        expected: Option<u64>,
        path: &Path,
    ) -> Result<Parsed, JournalError> {
        self.cover(pos, RECORD_HEADER_LEN, false, path)?;
        if let Some(total) = self.record_extent(pos, seg_size) {
            self.cover(pos, total, false, path)?;
        }
        // The window holds the whole record (or the file ends inside it), so parsing at
        // window offsets finds exactly what parsing the whole file would.
        let base = self.base;
        let area = self.bytes(self.len.min(seg_size));
        let seg_end = seg_size.saturating_sub(base);
        Ok(
            match parse_record(area, seg_end, pos - base, expected, Check::Full) {
                Parsed::Record(mut m) => {
                    m.payload_at += base;
                    m.next += base;
                    Parsed::Record(m)
                }
                Parsed::End => Parsed::End,
                // The one damage that names an offset names the window's: make it the file's.
                Parsed::Damaged(DamageKind::Truncated { file_len }) => {
                    Parsed::Damaged(DamageKind::Truncated {
                        file_len: file_len + base as u64,
                    })
                }
                Parsed::Damaged(kind) => Parsed::Damaged(kind),
            },
        )
    }

    /// The size of the record whose header is at file offset `pos`, if the window holds a
    /// header with a record marker there and the record would fit in the segment: how many
    /// bytes the window must hold from `pos` for the record to be parsed whole.
    #[inline]
    fn record_extent(&self, pos: usize, seg_size: usize) -> Option<usize> {
        let h = self.get(pos..pos + RECORD_HEADER_LEN)?;
        if u16::from_le_bytes([h[0], h[1]]) != RECORD_MARKER {
            return None;
        }
        let total = record_size(u64::from(u32::from_le_bytes([h[4], h[5], h[6], h[7]])));
        let fits = (pos as u64).saturating_add(total) <= seg_size as u64;
        fits.then(|| usize::try_from(total).ok()).flatten()
    }

    /// File offset of the first non-zero byte in `[from, end)`, read a step at a time.
    ///
    /// Holes are not read: a hole reads as zeros, and where the window does not hold `at`
    /// already, `SEEK_DATA` says where the file's next data is (a segment's unwritten tail is
    /// a hole in a sparse copy of the file, or where the file system could not reserve it).
    pub(crate) fn nonzero_from(
        &mut self,
        from: usize,
        end: usize,
        path: &Path,
    ) -> Result<Option<usize>, JournalError> {
        let mut at = from;
        while at < end {
            if at < self.base || at >= self.base + self.valid {
                match self.next_data(at) {
                    Some(data) => at = at.max(data),
                    // Nothing but a hole from `at` to the file's end.
                    None => break,
                }
                if at >= end {
                    break;
                }
            }
            self.cover(at, self.step, false, path)?;
            let base = self.base;
            let bytes = self.bytes(end);
            if let Some(i) = first_nonzero(bytes, at - base) {
                return Ok(Some(base + i));
            }
            let reached = base + bytes.len();
            if reached <= at {
                break; // the file ends here
            }
            at = reached;
        }
        Ok(None)
    }

    /// The file offset of the first data (not a hole) at or after `at`: `None` if there is
    /// none before the file's end; `at` itself where the file system cannot tell (no
    /// `SEEK_DATA`), so everything is read.
    fn next_data(&self, at: usize) -> Option<usize> {
        let Some(file) = self.file.as_ref() else {
            return Some(at);
        };
        match rustix::fs::seek(file, SeekFrom::Data(at as u64)) {
            Ok(data) => Some(usize::try_from(data).unwrap_or(usize::MAX)),
            Err(rustix::io::Errno::NXIO) => None,
            Err(_) => Some(at),
        }
    }

    /// Whether a record header has appeared at `pos`, where parsing found the end of the
    /// records, since the window read it: re-reads the bytes there. A journal being written
    /// grows that way; then parsing at `pos` again finds a record (or damage), not the end.
    pub(crate) fn grew_at(
        &mut self,
        pos: usize,
        seg_size: usize,
        path: &Path,
    ) -> Result<bool, JournalError> {
        self.cover(pos, RECORD_HEADER_LEN, true, path)?;
        let marker = self.get(pos..pos + 2);
        Ok(pos + RECORD_HEADER_LEN <= seg_size && marker.is_some_and(|m| m != [0, 0]))
    }

    /// Makes the window hold the file's bytes `[at, at + need)`, or up to the file's end if it
    /// ends sooner; re-reads them from the file if `fresh`. Reads at least a step of bytes when
    /// it reads, keeping the bytes it already has from `at` on.
    #[inline]
    pub(crate) fn cover(
        &mut self,
        at: usize,
        need: usize,
        fresh: bool,
        path: &Path,
    ) -> Result<(), JournalError> {
        let want = at.saturating_add(need).min(self.len);
        if !fresh && at >= self.base && want <= self.base + self.valid {
            return Ok(());
        }
        self.refill(at, want, fresh, path)
    }

    /// [`cover`](Self::cover)'s reading: moves what is kept to the front, reads the rest.
    #[cold]
    #[inline(never)]
    fn refill(
        &mut self,
        at: usize,
        want: usize,
        fresh: bool,
        path: &Path,
    ) -> Result<(), JournalError> {
        let have = self.base + self.valid;
        let kept = if !fresh && at >= self.base && at < have {
            self.buf.copy_within(at - self.base..self.valid, 0);
            have - at
        } else {
            0
        };
        self.base = at;
        self.valid = kept;
        // The first reads are short and each doubles the next, up to a step: a reader has its
        // first record after a few pages are copied (and faulted in), not a quarter megabyte.
        let size = self.reach.max(want.saturating_sub(at));
        self.reach = (2 * self.reach).min(self.step);
        if self.buf.len() < size {
            self.grow(size);
        }
        let end = at.saturating_add(size).min(self.len);
        if at + kept >= end {
            return Ok(());
        }
        let Some(file) = self.file.as_ref() else {
            return Ok(());
        };
        let got = read_fully_at(file, &mut self.buf[kept..end - at], (at + kept) as u64)
            .map_err(io_err("read segment", path))?;
        self.valid = kept + got;
        self.read += got as u64;
        if at + self.valid < end {
            // The file shrank under us: what is left is what exists.
            self.len = at + self.valid;
        }
        Ok(())
    }

    /// Makes `buf` at least `size` bytes: from a spare buffer if it has none yet, else
    /// in place. The first growth reserves a whole step, so the ramp's reads extend the
    /// buffer without moving it (each move copies what it holds into fresh pages).
    #[cold]
    fn grow(&mut self, size: usize) {
        if self.buf.capacity() == 0 {
            let spare = SPARE
                .try_with(|spare| spare.try_borrow_mut().ok()?.pop())
                .ok()
                .flatten();
            if let Some(spare) = spare {
                self.buf = spare;
            } else {
                self.buf.reserve_exact(self.step);
            }
        }
        if self.buf.len() < size {
            self.buf.resize(size, 0);
        }
    }
}

/// `pread` until `buf` is full or the file ends; returns the bytes read.
fn read_fully_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Allocates `[0, len)` of `file` on disk, so that later stores through a map cannot fault for
/// lack of space. A full file system is reported here, as an error.
///
/// Uses `fallocate(2)`; where the file system does not support it, writes zeros into the
/// unallocated ranges instead (what `posix_fallocate(3)` does).
pub(crate) fn reserve(file: &File, len: u64, path: &Path) -> Result<(), JournalError> {
    match rustix::fs::fallocate(file, FallocateFlags::empty(), 0, len) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::OPNOTSUPP) => write_zeros_over_holes(file, len)
            .map_err(io_err("reserve segment space (zero fill)", path)),
        Err(e) => Err(io_err("reserve segment space", path)(io::Error::from(e))),
    }
}

fn write_zeros_over_holes(file: &File, len: u64) -> io::Result<()> {
    const CHUNK: usize = 1 << 16;
    let zeros = [0u8; CHUNK];
    let mut at = 0u64;
    while at < len {
        let hole = match rustix::fs::seek(file, SeekFrom::Hole(at)) {
            Ok(h) => h,
            Err(_) => at,
        };
        if hole >= len {
            break;
        }
        let data = rustix::fs::seek(file, SeekFrom::Data(hole))
            .unwrap_or(len)
            .min(len);
        let mut p = hole;
        while p < data {
            let n = (data - p).min(CHUNK as u64) as usize;
            file.write_all_at(&zeros[..n], p)?;
            p += n as u64;
        }
        at = data.max(hole + 1);
    }
    Ok(())
}

/// A writable shared map of a whole segment file, owned by the journal writer.
#[derive(Debug)]
pub(crate) struct WriteMap {
    map: MmapMut,
}

impl WriteMap {
    /// Maps `file` (already sized to the segment size) read-write and shared.
    ///
    /// Soundness relies on the module-level invariant: this map is the only way the file is
    /// modified while it lives, and the file is not truncated below the mapped length.
    pub(crate) fn of_file(file: &File, path: &Path) -> Result<WriteMap, JournalError> {
        // SAFETY: the caller is the journal writer, which holds the directory lock, has reserved
        // the file's space (`reserve`) and keeps this as the only map through which the file is
        // modified; it never calls `set_len` on the file while this map exists. Concurrent
        // modification by another process while the file is written is outside the contract.
        let map = unsafe { MmapMut::map_mut(file) }.map_err(io_err("map segment", path))?;
        Ok(WriteMap { map })
    }

    /// The mapped bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// The mapped bytes, writable.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.map
    }

    /// Synchronously writes `[offset, offset + len)` back to the file (`msync(MS_SYNC)`).
    pub(crate) fn flush_range(
        &self,
        offset: usize,
        len: usize,
        path: &Path,
    ) -> Result<(), JournalError> {
        if len == 0 {
            return Ok(());
        }
        self.map
            .flush_range(offset, len)
            .map_err(io_err("msync segment", path))
    }

    /// Starts writing `[offset, offset + len)` back without waiting (`msync(MS_ASYNC)`).
    pub(crate) fn flush_async_range(
        &self,
        offset: usize,
        len: usize,
        path: &Path,
    ) -> Result<(), JournalError> {
        if len == 0 {
            return Ok(());
        }
        self.map
            .flush_async_range(offset, len)
            .map_err(io_err("msync(async) segment", path))
    }
}
