//! Memory maps of segment files: the only module of the crate that uses `unsafe`.
//!
//! # Safety
//!
//! Mapping a file is `unsafe` in `memmap2` because Rust's aliasing rules cannot see other
//! writers of the file: if the bytes behind a `&[u8]` change while it is borrowed, or the
//! file is truncated under a live mapping (which raises `SIGBUS` on access), the program has
//! undefined behaviour. This crate upholds the following invariant, and states it as the
//! contract of its public types:
//!
//! * a segment file is modified only through the one [`WriteMap`] of the one
//!   `JournalWriter` of its directory in this process; the writer takes an exclusive
//!   advisory lock (`LOCK`) on the directory so that a second `tape` writer cannot open it;
//! * the writer truncates or resizes a segment file (`set_len`) only while no map of that
//!   file exists in the writer, and never writes bytes of records it has already handed out;
//! * a [`ReadMap`] (used by `JournalReader` and `verify`) is only sound while no writer is
//!   modifying the same file: reading a journal concurrently with its writer, or any
//!   modification of the files by another process or by hand while they are mapped, is
//!   outside the contract.
//!
//! Everything else in the crate only sees `&[u8]` / `&mut [u8]` handed out by these types.

use std::fs::File;
use std::path::Path;

use memmap2::{Mmap, MmapMut};

use crate::error::{io_err, JournalError};

/// A read-only map of a whole segment file.
#[derive(Debug)]
pub(crate) struct ReadMap {
    map: Mmap,
}

impl ReadMap {
    /// Opens and maps `path` read-only. An empty file maps to an empty slice.
    ///
    /// Soundness relies on the module-level invariant: nobody modifies or truncates the file
    /// while this map lives.
    pub(crate) fn open(path: &Path) -> Result<ReadMap, JournalError> {
        let file = File::open(path).map_err(io_err("open segment", path))?;
        Self::of_file(&file, path)
    }

    /// Maps an already open file read-only (same contract as [`ReadMap::open`]).
    pub(crate) fn of_file(file: &File, path: &Path) -> Result<ReadMap, JournalError> {
        // SAFETY: the file is a segment of a journal directory. Per the module invariant, no
        // writer modifies or truncates it while this map exists (the writer only maps a file
        // read-only for recovery analysis, and drops that map before `set_len` or writing).
        let map = unsafe { Mmap::map(file) }.map_err(io_err("map segment", path))?;
        Ok(ReadMap { map })
    }

    /// The file's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.map
    }
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
        // SAFETY: the caller is the journal writer, which holds the directory lock and keeps
        // this as the only map through which the file is modified; it never calls `set_len`
        // on the file while this map exists. Concurrent modification by another process or a
        // reader mapping the file while it is written is outside the documented contract.
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
