//! The mapped files and every access to their bytes: the crate's only `unsafe`, and the only
//! place that touches shared memory. Everything else sees [`Words`] and calls the seqlock
//! functions of [`seqlock`] (writer and reader side, with their memory ordering, step by
//! step).
//!
//! # Safety
//!
//! A mapped file is memory that other processes change, so it is never seen as `&[u8]` or
//! `&mut [u8]` (Rust would assume it does not change under a shared borrow). It is mapped with
//! `memmap2::MmapRaw` (raw pointers only) and viewed as `&[AtomicU64]`, and every access is an
//! atomic load or store of one aligned 8-byte word. This crate upholds, and states as the
//! contract of its public types:
//!
//! * the view covers exactly the mapped length, which is a multiple of 8, and starts at the
//!   map's page-aligned address, so every `AtomicU64` in it is aligned and in bounds; the
//!   map lives as long as any view of it (`Words` borrows the map);
//! * the writer's file is created by it at its full size, its space reserved (`fallocate`, or
//!   zeros written) before it is mapped, and never truncated or resized while mapped, so no
//!   store can fault (`SIGBUS`) for lack of space, on a full `/dev/shm` included: a full file
//!   system is an error when the file is created;
//! * one writer per directory (an exclusive `flock` on its `LOCK` file), and the writer
//!   replaces a file only by renaming a new one over it, never by changing it in place, so a
//!   reader's map never shrinks under it;
//! * a reader maps a file read-only and performs only atomic loads, no read-modify-write
//!   (atomic loads from read-only memory are allowed for `AtomicU64` on the 64-bit platforms
//!   tape builds for: see "Atomic accesses to read-only memory" in `std::sync::atomic`); it
//!   maps no more than the file's length, checked against the header before mapping.
//!
//! Modifying or truncating the files by other means while they are mapped (by hand, by
//! another program) is outside the contract: it can make a reader see garbage (which the
//! layout checks and the seqlock bound, but cannot prevent) or fault.

pub(crate) mod seqlock;

#[cfg(test)]
mod tests_model;

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::{MmapOptions, MmapRaw};

use seqlock::StdFence;

/// A writable shared map of a whole file, owned by the writer.
#[derive(Debug)]
pub(crate) struct WriteMap {
    map: MmapRaw,
    words: usize,
}

/// A read-only shared map of a whole file.
#[derive(Debug)]
pub(crate) struct ReadMap {
    map: MmapRaw,
    words: usize,
}

fn check_len(len: u64, path: &Path) -> io::Result<usize> {
    let n = usize::try_from(len).map_err(|_| io::Error::other("file too large to map"))?;
    if n == 0 || n % 8 != 0 {
        return Err(io::Error::other(format!(
            "{}: length {n} is not a positive multiple of 8",
            path.display()
        )));
    }
    Ok(n)
}

impl WriteMap {
    /// Maps `len` bytes of `file` (created by the writer, sized to `len`, its space reserved)
    /// read-write and shared, faulting every page in now so the engine thread never does.
    pub(crate) fn of_file(file: &File, len: u64, path: &Path) -> io::Result<WriteMap> {
        let n = check_len(len, path)?;
        let map = MmapOptions::new().len(n).populate().map_raw(file)?;
        if map.as_ptr().align_offset(std::mem::align_of::<AtomicU64>()) != 0 {
            return Err(io::Error::other("mapping not 8-byte aligned"));
        }
        Ok(WriteMap { map, words: n / 8 })
    }

    /// The mapped words.
    #[inline]
    pub(crate) fn words(&self) -> Words<'_> {
        // SAFETY: see the module's contract: the pointer is the start of a live, page-aligned
        // mapping of `self.words * 8` bytes (checked in `of_file`), which outlives the borrow
        // of `self`; `AtomicU64` has the size and alignment of `u64`, and the memory is only
        // ever accessed through these atomics (here, by other views of this process, or by
        // readers in other processes with atomic or read-only accesses).
        let words = unsafe {
            std::slice::from_raw_parts(self.map.as_mut_ptr().cast::<AtomicU64>(), self.words)
        };
        Words(words)
    }
}

impl ReadMap {
    /// Maps the first `len` bytes of `file` read-only and shared; the caller has checked that
    /// the file is at least that long.
    pub(crate) fn of_file(file: &File, len: u64, path: &Path) -> io::Result<ReadMap> {
        let n = check_len(len, path)?;
        let map = MmapOptions::new().len(n).map_raw_read_only(file)?;
        if map.as_ptr().align_offset(std::mem::align_of::<AtomicU64>()) != 0 {
            return Err(io::Error::other("mapping not 8-byte aligned"));
        }
        Ok(ReadMap { map, words: n / 8 })
    }

    /// The mapped words; only ever loaded from (the mapping is read-only: a store would fault,
    /// and [`Words`] gives readers no way to make one).
    #[inline]
    pub(crate) fn words(&self) -> ReadWords<'_> {
        // SAFETY: as in `WriteMap::words`; the pages are read-only, and `ReadWords` exposes
        // atomic loads only (allowed on read-only memory for `AtomicU64`, module contract).
        let words = unsafe {
            std::slice::from_raw_parts(self.map.as_ptr().cast::<AtomicU64>(), self.words)
        };
        ReadWords(words)
    }
}

/// The words of a writable map, addressed by byte offset (a multiple of 8).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Words<'a>(&'a [AtomicU64]);

/// The words of a read-only map: loads only.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadWords<'a>(&'a [AtomicU64]);

fn range(all: &[AtomicU64], offset: u64, size: u64) -> &[AtomicU64] {
    let start = usize::try_from(offset / 8).unwrap_or(usize::MAX);
    let end = start.saturating_add(usize::try_from(size / 8).unwrap_or(usize::MAX));
    all.get(start..end).unwrap_or(&[])
}

impl<'a> Words<'a> {
    /// Stores a header word before the file is published (no reader can have it yet), or a
    /// live header word with `order` (release for the directory count and status).
    #[inline]
    pub(crate) fn store(&self, offset: usize, value: u64, order: Ordering) {
        if let Some(w) = self.0.get(offset / 8) {
            w.store(value, order);
        }
    }

    /// The record at `offset`, `size` bytes (empty when out of bounds, which writes nothing).
    #[inline]
    pub(crate) fn record(&self, offset: u64, size: u64) -> Record<'a> {
        Record(range(self.0, offset, size))
    }
}

impl<'a> ReadWords<'a> {
    /// Loads a word with `order` (0 beyond the map; readers check sizes first).
    #[inline]
    pub(crate) fn load(&self, offset: usize, order: Ordering) -> u64 {
        self.0.get(offset / 8).map_or(0, |w| w.load(order))
    }

    /// Loads `out.len()` consecutive words from `offset`, relaxed (directory entries, which
    /// the writer stores before it publishes their count with release).
    #[inline]
    pub(crate) fn load_all(&self, offset: u64, out: &mut [u64]) {
        let src = range(self.0, offset, out.len() as u64 * 8);
        for (o, w) in out.iter_mut().zip(src) {
            *o = w.load(Ordering::Relaxed);
        }
    }

    /// The record at `offset`, `size` bytes.
    #[inline]
    pub(crate) fn record(&self, offset: u64, size: u64) -> ReadRecord<'a> {
        ReadRecord(range(self.0, offset, size))
    }

    /// Words mapped.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

/// One seqlocked record of a writable map.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record<'a>(&'a [AtomicU64]);

impl Record<'_> {
    /// Writes the record (see [`seqlock`]: odd, fence, payload, even).
    #[inline(always)]
    pub(crate) fn write(&self, payload: impl FnOnce(seqlock::Stores<'_, AtomicU64>)) {
        seqlock::write::<AtomicU64, StdFence>(self.0, payload);
    }
}

/// One seqlocked record of a read-only map.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadRecord<'a>(&'a [AtomicU64]);

impl ReadRecord<'_> {
    /// One read attempt (see [`seqlock::try_read`]).
    #[inline(always)]
    pub(crate) fn try_read(&self, out: &mut [u64]) -> Option<u64> {
        seqlock::try_read::<AtomicU64, StdFence>(self.0, out)
    }

    /// The sequence number now.
    #[inline(always)]
    pub(crate) fn sequence(&self) -> u64 {
        seqlock::sequence(self.0)
    }
}
