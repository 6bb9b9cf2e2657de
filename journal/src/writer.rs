//! The journal writer: appends records into the mapped active segment, rolls segments, keeps
//! pages pre-touched ahead of the write position, and flushes.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use crate::dir::lock_dir;
use crate::error::{io_err, JournalError};
use crate::format::{record_size, write_record, RecordFields, SEGMENT_HEADER_LEN};
use crate::meta::{write_meta, JournalMeta};
use crate::options::JournalOptions;
use crate::recovery::{recover, RecoveryReport};
use crate::segment::WriteMap;
use crate::spare::{self, Spare};

/// Stride of pre-touching: one write per 4 KiB covers every page of any page size >= 4 KiB.
const PAGE: usize = 4096;
/// Bytes pre-touched by one automatic step inside `append` (4 pages).
const AUTO_PRETOUCH_STEP: usize = 4 * PAGE;

/// The single writer of a journal directory.
///
/// `append` copies a record into the memory-mapped active segment and computes its CRC: no
/// allocation and no system call in steady state. The exceptions are a segment roll (once
/// per segment: header write and a rename, plus creating the next file if
/// [`pretouch`](Self::pretouch) has not prepared it) and, with
/// [`JournalOptions::auto_pretouch`], the page faults of its small pre-touch step.
///
/// Dropping the writer leaves a readable journal (records are in the page cache and the
/// format needs no footer) but does not make it durable: call [`flush`](Self::flush) or
/// [`close`](Self::close) for that.
///
/// # Contract
///
/// The writer holds an exclusive lock on `LOCK` in the directory. While it is open, nothing
/// else may modify the segment files, and they must not be read through a
/// [`JournalReader`](crate::JournalReader) or [`verify()`](crate::verify()) (see the `segment`
/// module's safety notes).
#[derive(Debug)]
pub struct JournalWriter {
    dir: PathBuf,
    opts: JournalOptions,
    max_payload: u64,
    /// Pre-touch window in bytes (`pretouch_bytes` clamped to the segment size).
    window: usize,
    /// `append` pre-touches a step when fewer than this many bytes past the record it
    /// writes are faulted in (half the window; `None` without automatic pre-touching).
    low_water: Option<usize>,
    active: WriteMap,
    active_path: PathBuf,
    active_size: usize,
    /// Write position in the active segment.
    pos: usize,
    next_seq: u64,
    /// Pages are faulted in up to here, in a coordinate space where offsets past
    /// `active_size` continue into the spare segment.
    frontier: usize,
    /// Bytes `[0, synced)` of the active segment have been written back synchronously.
    synced: usize,
    /// The next segment, pre-created once the pre-touch window reaches the segment's end.
    spare: Option<Spare>,
    /// The previous segment's map, unmapped by the next `pretouch`/`flush` rather than in
    /// the `append` that rolled.
    retired: Option<(WriteMap, PathBuf)>,
    /// Sealed segments whose data has not been written back yet.
    unsynced: Vec<PathBuf>,
    /// Whether creating the spare failed in an automatic step (retried at the next roll).
    spare_failed: bool,
    /// Whether a segment was created since the directory was last synced.
    dir_unsynced: bool,
    /// The journal's metadata as it should be on disk.
    meta: JournalMeta,
    /// A roll changed `meta.last_segment` and the file does not say so yet: written off the
    /// append path, by the next `pretouch` or `flush`.
    meta_dirty: bool,
    _lock: File,
}

impl JournalWriter {
    /// Opens (creating if needed) the journal in `dir`, recovers its tail and continues its
    /// sequence; a new journal starts at sequence 0.
    ///
    /// Fills the pre-touch window before returning.
    ///
    /// # Errors
    ///
    /// [`JournalError::InvalidOptions`] for bad options, [`JournalError::Locked`] if another
    /// writer has the directory, [`JournalError::Corrupt`] for damage recovery does not
    /// repair by itself (see the crate docs), [`JournalError::Io`] for I/O failures.
    pub fn open(
        dir: impl AsRef<Path>,
        opts: JournalOptions,
    ) -> Result<(JournalWriter, RecoveryReport), JournalError> {
        opts.validate()?;
        let dir = dir.as_ref();
        fs::create_dir_all(dir).map_err(io_err("create journal directory", dir))?;
        let lock = lock_dir(dir)?;
        spare::remove_stale(dir)?;
        let rec = recover(dir, &opts)?;
        let active_size = rec.map.bytes().len();
        let window =
            usize::try_from(opts.pretouch_bytes.min(opts.segment_size)).unwrap_or(usize::MAX);
        let mut writer = JournalWriter {
            dir: dir.to_path_buf(),
            opts,
            max_payload: opts.max_payload_len(),
            window,
            low_water: (opts.auto_pretouch && window > 0).then_some(window / 2),
            active: rec.map,
            active_path: rec.path,
            active_size,
            pos: rec.pos,
            next_seq: rec.next_seq,
            frontier: rec.pos / PAGE * PAGE,
            synced: 0,
            spare: None,
            retired: None,
            unsynced: Vec::new(),
            spare_failed: false,
            dir_unsynced: rec.report.created,
            meta: rec.meta,
            meta_dirty: false,
            _lock: lock,
        };
        writer.touch_ahead(usize::MAX, true)?;
        Ok((writer, rec.report))
    }

    /// Appends one record and returns its sequence number.
    ///
    /// # Errors
    ///
    /// [`JournalError::RecordTooLarge`] if the payload cannot fit in an empty segment (the
    /// journal is unchanged); [`JournalError::Io`] if rolling to a new segment fails. On any
    /// error nothing was appended.
    pub fn append(
        &mut self,
        recv_ns: u64,
        source: u32,
        kind: u16,
        payload: &[u8],
    ) -> Result<u64, JournalError> {
        let len = payload.len() as u64;
        if len > self.max_payload {
            return Err(JournalError::RecordTooLarge {
                payload_len: payload.len(),
                max_payload_len: self.max_payload,
                segment_size: self.opts.segment_size,
            });
        }
        // `len <= max_payload < 4 GiB`, so the record size fits in usize.
        let total = record_size(len) as usize;
        if self.pos + total > self.active_size {
            self.roll()?;
        }
        if let Some(low) = self.low_water {
            if self.frontier < self.pos + total + low {
                // Pre-touching is an optimisation, not this append's job: if creating the
                // next segment fails here, stop trying until the roll, which reports it.
                if self
                    .touch_ahead(AUTO_PRETOUCH_STEP, !self.spare_failed)
                    .is_err()
                {
                    self.spare_failed = true;
                }
            }
        }
        let seq = self.next_seq;
        let fields = RecordFields {
            seq,
            recv_ns,
            source,
            kind,
        };
        let pos = self.pos;
        write_record(
            &mut self.active.bytes_mut()[pos..pos + total],
            &fields,
            payload,
        );
        self.pos = pos + total;
        self.next_seq = seq.wrapping_add(1);
        Ok(seq)
    }

    /// Fills the pre-touch window: faults in every page up to `pretouch_bytes` ahead of the
    /// write position, creating the next segment file if the window reaches past the end of
    /// the active one. Also unmaps the previous segment if a roll left it mapped.
    ///
    /// Call it from idle time so that `append` never pays for page faults, file creation or
    /// unmapping. Returns the number of bytes newly pre-touched.
    ///
    /// # Errors
    ///
    /// [`JournalError::Io`] if creating the next segment file fails.
    pub fn pretouch(&mut self) -> Result<usize, JournalError> {
        self.retired = None;
        if self.meta_dirty {
            write_meta(&self.dir, &self.meta, false)?;
            self.meta_dirty = false;
        }
        self.touch_ahead(usize::MAX, true)
    }

    /// Prepares the next segment now (created and its space reserved), so that the roll an
    /// `append` may need cannot fail for lack of space. After an `append` failed with an I/O
    /// error (a full disk: segments reserve their space when created), call this to learn
    /// whether appending can resume; nothing was half-written by the failed `append`.
    ///
    /// # Errors
    /// [`JournalError::Io`] if the next segment cannot be created (still no space).
    pub fn make_room(&mut self) -> Result<(), JournalError> {
        if self.spare.is_none() {
            self.spare = Some(Spare::create(&self.dir, self.opts.segment_size)?);
        }
        self.spare_failed = false;
        if self.meta_dirty {
            write_meta(&self.dir, &self.meta, false)?;
            self.meta_dirty = false;
        }
        Ok(())
    }

    /// Writes everything appended so far back to disk and waits (`msync(MS_SYNC)` of the
    /// written range, `fdatasync` of segments sealed since the last flush, `fsync` of the
    /// directory after segment creation).
    ///
    /// # Errors
    ///
    /// [`JournalError::Io`] if a sync fails.
    pub fn flush(&mut self) -> Result<(), JournalError> {
        for path in &self.unsynced {
            let file = match File::open(path) {
                Ok(f) => f,
                // Deleted by a retention policy: nothing left to make durable.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("open sealed segment", path)(e)),
            };
            file.sync_data()
                .map_err(io_err("fsync sealed segment", path))?;
        }
        self.unsynced.clear();
        self.retired = None;
        if self.synced < self.pos {
            self.active
                .flush_range(self.synced, self.pos - self.synced, &self.active_path)?;
            self.synced = self.pos;
        }
        if self.dir_unsynced || self.meta_dirty {
            let d = File::open(&self.dir).map_err(io_err("open journal directory", &self.dir))?;
            // The new segments' names first, then the metadata naming them: it never names a
            // segment that a crash could still take away.
            d.sync_all()
                .map_err(io_err("fsync journal directory", &self.dir))?;
            if self.meta_dirty {
                write_meta(&self.dir, &self.meta, true)?;
                d.sync_all()
                    .map_err(io_err("fsync journal directory", &self.dir))?;
                self.meta_dirty = false;
            }
            self.dir_unsynced = false;
        }
        Ok(())
    }

    /// Starts writing back what was appended since the last [`flush`](Self::flush) without
    /// waiting (`msync(MS_ASYNC)`); gives no durability guarantee by itself.
    ///
    /// # Errors
    ///
    /// [`JournalError::Io`] if the `msync` call fails.
    pub fn flush_async(&mut self) -> Result<(), JournalError> {
        if let Some((old, path)) = &self.retired {
            old.flush_async_range(0, old.bytes().len(), path)?;
        }
        self.active
            .flush_async_range(self.synced, self.pos - self.synced, &self.active_path)
    }

    /// Flushes, deletes the pre-created next segment and releases the directory lock.
    ///
    /// # Errors
    ///
    /// As [`flush`](Self::flush), or [`JournalError::Io`] if deleting the spare file fails.
    pub fn close(mut self) -> Result<(), JournalError> {
        self.flush()?;
        match self.spare.take() {
            Some(s) => s.discard(),
            None => Ok(()),
        }
    }

    /// Sequence number the next `append` will return.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The journal directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the segment currently written.
    pub fn segment_path(&self) -> &Path {
        &self.active_path
    }

    /// The options the writer was opened with.
    pub fn options(&self) -> &JournalOptions {
        &self.opts
    }

    /// How many bytes ahead of the write position are currently pre-touched (may reach into
    /// the pre-created next segment).
    pub fn pretouched_ahead(&self) -> usize {
        self.frontier.saturating_sub(self.pos)
    }

    /// Makes the spare (created now if needed) the active segment.
    fn roll(&mut self) -> Result<(), JournalError> {
        debug_assert!(self.pos > SEGMENT_HEADER_LEN, "rolling an empty segment");
        let mut spare = match self.spare.take() {
            Some(s) => s,
            None => Spare::create(&self.dir, self.opts.segment_size)?,
        };
        let path = match spare.install(&self.dir, self.next_seq) {
            Ok(p) => p,
            Err(e) => {
                self.spare = Some(spare);
                return Err(e);
            }
        };
        let new_size = spare.size();
        let old_map = std::mem::replace(&mut self.active, spare.into_map());
        let old_path = std::mem::replace(&mut self.active_path, path);
        self.unsynced.push(old_path.clone());
        self.retired = Some((old_map, old_path));
        self.frontier = self.frontier.saturating_sub(self.active_size);
        self.active_size = new_size;
        self.pos = SEGMENT_HEADER_LEN;
        self.synced = 0;
        self.spare_failed = false;
        self.dir_unsynced = true;
        self.meta.last_segment = self.next_seq;
        self.meta_dirty = true;
        Ok(())
    }

    /// Faults in pages from the frontier towards `pos + window`, at most `budget` bytes,
    /// continuing into the spare segment (created first if `may_create` allows).
    fn touch_ahead(&mut self, budget: usize, may_create: bool) -> Result<usize, JournalError> {
        if self.frontier < self.pos {
            // Without pre-touching the writer overtook the frontier; restart it at `pos`.
            self.frontier = self.pos / PAGE * PAGE;
        }
        let target = self.pos + self.window;
        let start = self.frontier;
        let stop = target.min(start.saturating_add(budget));
        if self.frontier < stop && self.frontier < self.active_size {
            let end = stop.min(self.active_size);
            self.frontier = touch_pages(self.active.bytes_mut(), self.frontier, end, self.pos);
        }
        if self.frontier < stop && self.frontier >= self.active_size {
            if self.spare.is_none() && may_create {
                self.spare = Some(Spare::create(&self.dir, self.opts.segment_size)?);
            }
            if let Some(spare) = self.spare.as_mut() {
                let from = self.frontier - self.active_size;
                let end = (stop - self.active_size).min(spare.size());
                if from < end {
                    let reached = touch_pages(spare.bytes_mut(), from, end, 0);
                    self.frontier = self.active_size + reached;
                }
            }
        }
        Ok(self.frontier - start)
    }
}

impl Drop for JournalWriter {
    fn drop(&mut self) {
        if let Some(s) = self.spare.take() {
            // Best effort: a stray spare is also deleted by the next `open`.
            let _ = s.discard();
        }
    }
}

/// Faults in the pages overlapping `[from, to)` (`from` page-aligned) by storing a zero in
/// each, at `keep_below` or later so that no written data is touched; returns the new
/// frontier (end of the last touched page, capped at the map's end).
///
/// Relies on the writer's invariant that every byte at or after the write position (and
/// every byte of a spare segment) is zero. A pure store matters: reading first would take a
/// read fault that maps the shared page read-only, then a second, write-protect fault.
fn touch_pages(bytes: &mut [u8], from: usize, to: usize, keep_below: usize) -> usize {
    let to = to.min(bytes.len());
    let mut p = from;
    while p < to {
        let at = p.max(keep_below);
        if at < bytes.len() {
            bytes[at] = 0;
        }
        p += PAGE;
    }
    p.min(bytes.len()).max(from)
}
