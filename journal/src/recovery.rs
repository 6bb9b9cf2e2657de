//! Recovery of a journal's tail when a writer opens it.
//!
//! The last segment is validated record by record. A torn tail (what an interrupted write
//! leaves: a partial record at the very end of a full-sized segment with no intact record after
//! it) is cut: the intact prefix is kept and everything after it is zeroed by truncating the
//! file to the end of the prefix and extending it back to the segment size. A last segment
//! whose header is torn (bad magic or bad CRC, no intact record after it) is rebuilt from its
//! file name. Everything else is validated too: every sealed segment in full, the sequence
//! across every seam, and both ends of the journal against its metadata (`meta`). Any damage
//! that is not a torn tail makes `open` fail with [`JournalError::Corrupt`] naming it: intact
//! records after damage are never dropped by opening a writer, only by an explicit
//! [`repair`](crate::repair()), which moves them to a quarantine directory.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::dir::{list_segments, SegmentEntry};
use crate::error::{io_err, Damage, DamageKind, JournalError};
use crate::format::{last_nonzero, SegmentHeader, SEGMENT_HEADER_LEN};
use crate::meta::{check_ends, read_meta, write_meta, JournalMeta};
use crate::options::JournalOptions;
use crate::scan::{
    check_header, count_record_shapes, intact_record_after, is_torn_tail, scan_records,
};
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
    /// The metadata the journal has after recovery.
    pub meta: JournalMeta,
}

/// Recovers the journal in `dir` (which exists and is locked), or creates its first segment.
///
/// Every sealed segment is validated in full and both ends are checked against the metadata:
/// the writer only ever appends to a journal that replays whole. The one repair it makes on its
/// own is cutting a torn tail off the last segment (reported in the [`RecoveryReport`]); any
/// other damage is an error that names it, and only an explicit
/// [`repair`](crate::repair()) changes such a journal.
pub(crate) fn recover(dir: &Path, opts: &JournalOptions) -> Result<Recovered, JournalError> {
    let meta = read_meta(dir)?;
    let segs = list_segments(dir)?;
    let (start, end) = check_ends(dir, &segs, meta);
    if let Some(damage) = start.or(end) {
        return Err(JournalError::Corrupt { damage });
    }
    let Some(last) = segs.last() else {
        let rec = create_first(dir, opts)?;
        write_meta(dir, &rec.meta, true)?;
        return Ok(rec);
    };
    let mut expected = None;
    for seg in &segs[..segs.len() - 1] {
        if let Some(exp) = expected.filter(|&e| e != seg.first_seq) {
            return Err(seq_gap(seg, exp));
        }
        expected = Some(check_sealed(seg)?);
    }
    if let Some(exp) = expected.filter(|&e| e != last.first_seq) {
        return Err(seq_gap(last, exp));
    }
    let mut rec = recover_last(last, opts, segs.len() >= 2)?;
    let wanted = JournalMeta {
        first_seq: meta.map_or(segs[0].first_seq, |m| m.first_seq),
        last_segment: last.first_seq,
    };
    if meta != Some(wanted) {
        // A journal from before the metadata file, or one whose last roll was not recorded
        // yet when its writer stopped.
        write_meta(dir, &wanted, true)?;
    }
    rec.meta = wanted;
    Ok(rec)
}

fn seq_gap(seg: &SegmentEntry, expected: u64) -> JournalError {
    JournalError::corrupt(
        &seg.path,
        0,
        Some(expected),
        DamageKind::SegmentSeqGap {
            expected,
            found: seg.first_seq,
        },
    )
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
        meta: JournalMeta {
            first_seq: 0,
            last_segment: 0,
        },
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
    if let Some((at, kind)) = damage {
        // Only a torn tail is the writer's to cut: anything else would discard records (or
        // bytes) that nobody decided to give up.
        let torn_size = if damage_in_header.is_some() {
            bytes.len()
        } else {
            seg_size
        };
        if !is_torn_tail(bytes, torn_size, at, kind) {
            return Err(JournalError::corrupt(
                &seg.path,
                at as u64,
                Some(next_seq),
                kind,
            ));
        }
    }
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
        // Set by `recover` once the whole journal is checked.
        meta: JournalMeta {
            first_seq: seg.first_seq,
            last_segment: seg.first_seq,
        },
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
