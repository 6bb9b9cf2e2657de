//! Access to segment files: the writer's memory map (the only `unsafe` of the crate), the
//! readers' `pread`-filled buffers, and reserving a segment's disk space up front.
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

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use memmap2::MmapMut;
use rustix::fs::{FallocateFlags, SeekFrom};

use crate::error::{io_err, JournalError};
use crate::format::MAX_SEGMENT_SIZE;

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
