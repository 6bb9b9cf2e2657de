//! Recovery of a journal's tail when a writer opens it.
//!
//! The last segment is validated record by record and cut at the first torn or corrupt
//! record (a sequence discontinuity counts as corruption): the intact prefix is kept and
//! everything after it is zeroed by truncating the file to the end of the prefix and
//! extending it back to the segment size (the extension reads as zeros and stays sparse).
//! A last segment whose header is torn (shorter than a header, bad magic or bad CRC) is
//! rebuilt from its file name and loses all its records. The segment before the last is
//! validated too, so the sequence is known to continue across the seam; damage there, or a
//! header that is whole but inconsistent, is not a torn write and makes `open` fail with
//! [`JournalError::Corrupt`] instead of silently dropping sealed data.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::dir::{list_segments, SegmentEntry};
use crate::error::{io_err, Damage, DamageKind, JournalError};
use crate::format::{last_nonzero, SegmentHeader, SEGMENT_HEADER_LEN};
use crate::options::JournalOptions;
use crate::scan::{check_header, count_record_shapes, intact_record_after, scan_records};
use crate::segment::{reserve, ReadMap, WriteMap};
use crate::spare::Spare;

/// What recovery found and did when a writer opened a journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The segment the writer continues in (the recovered last segment, or the new first one).
    pub segment: PathBuf,
    /// Whether the journal had no segment and a first one was created.
    pub created: bool,
    /// Sequence number of the last record in the journal after recovery, if there is one.
    pub last_seq: Option<u64>,
    /// Sequence number the next `append` returns.
    pub next_seq: u64,
    /// Intact records kept in the recovered segment.
    pub kept_records: u64,
    /// Bytes dropped after the intact prefix: from the end of the prefix through the last
    /// non-zero byte of the file (trailing zeros of a sparse segment are not counted, nor
    /// are the bytes of a rebuilt segment header).
    pub dropped_bytes: u64,
    /// Record-shaped regions among the dropped bytes: walking from the end of the intact
    /// prefix, each slot that starts with the record marker and whose declared length stays
    /// inside the file counts as one and is skipped whole; the first slot that is not
    /// record-shaped counts as one more and ends the walk. At least 1 whenever
    /// `dropped_bytes > 0`, and 0 otherwise.
    pub dropped_records: u64,
    /// The first damage found in the recovered segment (a short file is reported too).
    pub damage: Option<Damage>,
    /// Whether an intact record (valid marker and CRC) was found after the damage, i.e. the
    /// damage was corruption in the middle rather than a torn tail. Those records are dropped
    /// all the same: only the contiguous prefix can be continued.
    pub intact_after_damage: bool,
    /// Whether the segment header was torn and has been rebuilt from the file name.
    pub header_rebuilt: bool,
}

impl RecoveryReport {
    /// Whether the journal was opened without finding any damage.
    pub fn is_clean(&self) -> bool {
        self.damage.is_none()
    }
}

impl fmt::Display for RecoveryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.created {
            return write!(f, "created {}, next seq 0", self.segment.display());
        }
        write!(
            f,
            "opened {}: {} record(s) kept in it, next seq {}",
            self.segment.display(),
            self.kept_records,
            self.next_seq
        )?;
        if let Some(d) = &self.damage {
            write!(
                f,
                "; dropped {} byte(s), {} record(s) at {d}",
                self.dropped_bytes, self.dropped_records
            )?;
            if self.intact_after_damage {
                f.write_str(" (intact records followed: corruption, not a torn write)")?;
            }
            if self.header_rebuilt {
                f.write_str(" (segment header rebuilt)")?;
            }
        }
        Ok(())
    }
}

/// The writer's starting state after recovery.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub map: WriteMap,
    pub path: PathBuf,
    pub pos: usize,
    pub next_seq: u64,
    pub report: RecoveryReport,
}

/// Recovers the journal in `dir` (which exists and is locked), or creates its first segment.
pub(crate) fn recover(dir: &Path, opts: &JournalOptions) -> Result<Recovered, JournalError> {
    let segs = list_segments(dir)?;
    let Some(last) = segs.last() else {
        return create_first(dir, opts);
    };
    let has_prev = segs.len() >= 2;
    if has_prev {
        let prev_end = check_sealed(&segs[segs.len() - 2])?;
        if prev_end != last.first_seq {
            return Err(JournalError::corrupt(
                &last.path,
                0,
                Some(prev_end),
                DamageKind::SegmentSeqGap {
                    expected: prev_end,
                    found: last.first_seq,
                },
            ));
        }
    }
    recover_last(last, opts, has_prev)
}

fn create_first(dir: &Path, opts: &JournalOptions) -> Result<Recovered, JournalError> {
    let mut spare = Spare::create(dir, opts.segment_size)?;
    let path = spare.install(dir, 0)?;
    Ok(Recovered {
        map: spare.into_map(),
        report: RecoveryReport {
            segment: path.clone(),
            created: true,
            last_seq: None,
            next_seq: 0,
            kept_records: 0,
            dropped_bytes: 0,
            dropped_records: 0,
            damage: None,
            intact_after_damage: false,
            header_rebuilt: false,
        },
        path,
        pos: SEGMENT_HEADER_LEN,
        next_seq: 0,
    })
}

/// Validates a sealed segment in full and returns the sequence number after its last record.
fn check_sealed(seg: &SegmentEntry) -> Result<u64, JournalError> {
    let map = ReadMap::open(&seg.path)?;
    let bytes = map.bytes();
    let header = check_header(bytes, seg.first_seq)
        .map_err(|kind| JournalError::corrupt(&seg.path, 0, Some(seg.first_seq), kind))?;
    let scan = scan_records(bytes, header.segment_size as usize, header.first_seq);
    match scan.damage {
        Some((at, kind)) => Err(JournalError::corrupt(
            &seg.path,
            at as u64,
            Some(scan.next_seq),
            kind,
        )),
        None => Ok(scan.next_seq),
    }
}

/// What the analysis of the last segment decided, before anything is modified.
struct Plan {
    /// Header to write, if the existing one is torn or the segment is rebuilt empty.
    rebuild: Option<SegmentHeader>,
    header_torn: bool,
    segment_size: u64,
    keep_end: usize,
    kept_records: u64,
    next_seq: u64,
    damage: Option<(usize, DamageKind)>,
    intact_after_damage: bool,
    dropped_bytes: u64,
    dropped_records: u64,
}

fn plan(bytes: &[u8], seg: &SegmentEntry, opts: &JournalOptions) -> Result<Plan, JournalError> {
    let (header, damage_in_header) = match check_header(bytes, seg.first_seq) {
        Ok(h) => (h, None),
        Err(kind) if kind.is_tear_like() => {
            let h = SegmentHeader {
                first_seq: seg.first_seq,
                segment_size: opts.segment_size,
            };
            (h, Some(kind))
        }
        Err(kind) => {
            return Err(JournalError::corrupt(
                &seg.path,
                0,
                Some(seg.first_seq),
                kind,
            ));
        }
    };
    let seg_size = header.segment_size as usize;
    let (keep_end, kept_records, next_seq, damage) = match damage_in_header {
        Some(kind) => (SEGMENT_HEADER_LEN, 0, seg.first_seq, Some((0, kind))),
        None => {
            if bytes.len() > seg_size {
                let kind = DamageKind::FileTooLong {
                    len: bytes.len() as u64,
                    segment_size: header.segment_size,
                };
                return Err(JournalError::corrupt(
                    &seg.path,
                    seg_size as u64,
                    None,
                    kind,
                ));
            }
            let s = scan_records(bytes, seg_size, header.first_seq);
            (s.end, s.records, s.next_seq, s.damage)
        }
    };
    let intact_after_damage = damage.is_some_and(|(at, _)| {
        let search_size = if damage_in_header.is_some() {
            bytes.len()
        } else {
            seg_size
        };
        intact_record_after(bytes, search_size, at).is_some()
    });
    let (dropped_bytes, dropped_records) = match last_nonzero(bytes, keep_end) {
        Some(last) => (
            (last + 1 - keep_end) as u64,
            count_record_shapes(bytes, keep_end, last + 1),
        ),
        None => (0, 0),
    };
    // An empty last segment written with other options is rebuilt at the configured size,
    // so a record the options allow always fits after a roll.
    let resize_empty =
        damage_in_header.is_none() && kept_records == 0 && header.segment_size != opts.segment_size;
    let rebuild = (damage_in_header.is_some() || resize_empty).then_some(SegmentHeader {
        first_seq: seg.first_seq,
        segment_size: opts.segment_size,
    });
    Ok(Plan {
        segment_size: rebuild.map_or(header.segment_size, |h| h.segment_size),
        rebuild,
        header_torn: damage_in_header.is_some(),
        keep_end,
        kept_records,
        next_seq,
        damage,
        intact_after_damage,
        dropped_bytes,
        dropped_records,
    })
}

fn recover_last(
    seg: &SegmentEntry,
    opts: &JournalOptions,
    has_prev: bool,
) -> Result<Recovered, JournalError> {
    let path = &seg.path;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err("open segment", path))?;
    let file_len = file.metadata().map_err(io_err("stat segment", path))?.len();
    let plan = {
        let map = ReadMap::of_file(&file, path)?;
        plan(map.bytes(), seg, opts)?
        // The read-only map is dropped here, before the file is resized.
    };
    let changed = repair(&file, path, file_len, &plan)?;
    // Segments written before space was reserved (or re-extended just now) are sparse: allocate
    // them before mapping, so appends cannot fault on a full disk.
    reserve(&file, plan.segment_size, path)?;
    let mut map = WriteMap::of_file(&file, path)?;
    if let Some(h) = plan.rebuild {
        map.bytes_mut()[..SEGMENT_HEADER_LEN].copy_from_slice(&h.encode());
    }
    if changed {
        // Make the repair durable before anything new is appended after it.
        map.flush_range(0, SEGMENT_HEADER_LEN, path)?;
        file.sync_all().map_err(io_err("fsync segment", path))?;
    }
    let last_seq = if plan.kept_records > 0 || has_prev {
        plan.next_seq.checked_sub(1)
    } else {
        None
    };
    Ok(Recovered {
        map,
        path: path.clone(),
        pos: plan.keep_end,
        next_seq: plan.next_seq,
        report: RecoveryReport {
            segment: path.clone(),
            created: false,
            last_seq,
            next_seq: plan.next_seq,
            kept_records: plan.kept_records,
            dropped_bytes: plan.dropped_bytes,
            dropped_records: plan.dropped_records,
            damage: plan.damage.map(|(at, kind)| Damage {
                segment: path.clone(),
                offset: at as u64,
                seq: Some(plan.next_seq),
                kind,
            }),
            intact_after_damage: plan.intact_after_damage,
            header_rebuilt: plan.header_torn,
        },
    })
}

/// Cuts the file after the intact prefix and restores its full sparse size. Returns whether
/// anything changed.
fn repair(file: &File, path: &Path, file_len: u64, plan: &Plan) -> Result<bool, JournalError> {
    let set_len = |len: u64| file.set_len(len).map_err(io_err("resize segment", path));
    let cut_to = if plan.rebuild.is_some() {
        Some(0)
    } else if plan.dropped_bytes > 0 {
        Some(plan.keep_end as u64)
    } else {
        None
    };
    if let Some(cut) = cut_to {
        // Truncating drops every stale byte after the prefix (the kernel zeroes the partial
        // page); extending again yields a zero, sparse tail.
        set_len(cut)?;
    }
    let resize = cut_to.is_some() || file_len != plan.segment_size;
    if resize {
        set_len(plan.segment_size)?;
    }
    Ok(resize || plan.rebuild.is_some())
}
