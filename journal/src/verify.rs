//! Read-only verification of a whole journal.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::dir::list_segments;
use crate::error::{Damage, DamageKind, JournalError};
use crate::meta::{check_ends, read_meta_or_damage};
use crate::scan::{check_header, is_torn_tail, scan_clean, scan_records};
use crate::segment::{ReadMap, SegmentWindow};

/// Overall verdict of [`verify()`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyStatus {
    /// Every header, record and sequence number is valid, and every segment is exactly its
    /// declared size with only zeros after its data.
    Clean,
    /// The only damage is at the end of the last segment and looks like an interrupted
    /// write: a partial record at the very end of a full-sized segment, no intact record after
    /// it. Opening a writer repairs it (and says what it removed).
    TornTail,
    /// Damage elsewhere: in a sealed segment, with intact records after it, a truncated or
    /// overlong file, more than one place, a whole-but-inconsistent header or sequence number,
    /// or a missing segment at either end. Only an explicit `repair` changes such a journal.
    Corrupt,
}

/// What [`verify()`] found in one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentSummary {
    /// Path of the segment file.
    pub path: PathBuf,
    /// First sequence number, from the file name.
    pub first_seq: u64,
    /// Intact records before the first damage (all of them when clean).
    pub records: u64,
    /// Offset where the intact records end.
    pub end_offset: u64,
}

/// Result of [`verify()`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// The verdict.
    pub status: VerifyStatus,
    /// Every damaged location found, in journal order: at most one per segment (the first;
    /// parsing cannot continue past it), plus sequence gaps between segments.
    pub damage: Vec<Damage>,
    /// One summary per segment file, in order.
    pub segments: Vec<SegmentSummary>,
    /// Total intact records counted (the intact prefix of each segment).
    pub records: u64,
    /// First sequence number of the journal (from the first segment's name), if any.
    pub first_seq: Option<u64>,
    /// Last sequence number a reader delivers before hitting the first damage, if any.
    pub last_seq: Option<u64>,
}

impl VerifyReport {
    /// Whether the journal is clean.
    pub fn is_clean(&self) -> bool {
        self.status == VerifyStatus::Clean
    }
}

impl fmt::Display for VerifyStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VerifyStatus::Clean => "clean",
            VerifyStatus::TornTail => "torn tail",
            VerifyStatus::Corrupt => "corrupt",
        })
    }
}

/// One summary line, then one line per damaged location.
impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} segment(s), {} intact record(s)",
            self.status,
            self.segments.len(),
            self.records
        )?;
        match (self.first_seq, self.last_seq) {
            (Some(first), Some(last)) => write!(f, ", seq {first}..={last}")?,
            (Some(first), None) => write!(f, ", first seq {first}")?,
            _ => {}
        }
        if !self.damage.is_empty() && self.last_seq.is_some() {
            write!(f, " before the first damage")?;
        }
        for d in &self.damage {
            write!(f, "\n  damage: {d}")?;
        }
        Ok(())
    }
}

/// Checks every segment header, every record checksum and the sequence continuity within
/// and across segments of the journal in `dir`, without modifying anything.
///
/// Damage is reported in the [`VerifyReport`], not as an error.
///
/// # Errors
///
/// [`JournalError::Io`] if the directory or a segment file cannot be read.
pub fn verify(dir: impl AsRef<Path>) -> Result<VerifyReport, JournalError> {
    verify_with(dir.as_ref(), Some(SegmentWindow::default()))
}

/// [`verify()`], reading clean segments through `win` (a window at a time, one buffer for
/// all) and any other segment whole; with `None`, every segment whole.
fn verify_with(dir: &Path, mut win: Option<SegmentWindow>) -> Result<VerifyReport, JournalError> {
    let segs = list_segments(dir)?;
    let (meta, bad_meta) = read_meta_or_damage(dir)?;
    let (start_damage, end_damage) = check_ends(dir, &segs, meta);
    let mut damage = Vec::new();
    let mut segments = Vec::with_capacity(segs.len());
    let mut records = 0;
    let mut last_seq = None;
    let mut expected: Option<u64> = None;
    // A journal missing its start delivers nothing a replay could use.
    let mut intact_so_far = start_damage.is_none();
    damage.extend(start_damage);
    let mut last_is_torn = false;
    for (i, seg) in segs.iter().enumerate() {
        let is_last = i + 1 == segs.len();
        // Most segments are clean: read those a window at a time. Damage is analysed over the
        // whole file (torn tail or not needs to look past it).
        let clean = match win.as_mut() {
            Some(win) => scan_clean(win, &seg.path, seg.first_seq)?,
            None => None,
        };
        let map = match clean {
            Some(_) => None,
            None => Some(ReadMap::open(&seg.path)?),
        };
        let bytes = map.as_ref().map_or(&[][..], |m| m.bytes());
        let mut add = |offset: usize, seq: Option<u64>, kind: DamageKind| {
            damage.push(Damage {
                segment: seg.path.clone(),
                offset: offset as u64,
                seq,
                kind,
            });
        };
        let header = match clean.map_or_else(|| check_header(bytes, seg.first_seq), |(h, _)| Ok(h))
        {
            Ok(h) => h,
            Err(kind) => {
                add(0, expected.or(Some(seg.first_seq)), kind);
                last_is_torn = is_last && is_torn_tail(bytes, bytes.len(), 0, kind);
                segments.push(SegmentSummary {
                    path: seg.path.clone(),
                    first_seq: seg.first_seq,
                    records: 0,
                    end_offset: 0,
                });
                intact_so_far = false;
                expected = None;
                continue;
            }
        };
        if let Some(exp) = expected.filter(|&e| e != header.first_seq) {
            let kind = DamageKind::SegmentSeqGap {
                expected: exp,
                found: header.first_seq,
            };
            add(0, Some(exp), kind);
            intact_so_far = false;
        }
        let seg_size = header.segment_size as usize;
        let scan = match clean {
            Some((_, scan)) => scan,
            None => scan_records(bytes, seg_size, header.first_seq),
        };
        records += scan.records;
        if intact_so_far && scan.records > 0 {
            last_seq = Some(scan.next_seq.wrapping_sub(1));
        }
        segments.push(SegmentSummary {
            path: seg.path.clone(),
            first_seq: seg.first_seq,
            records: scan.records,
            end_offset: scan.end as u64,
        });
        match scan.damage {
            Some((at, kind)) => {
                add(at, Some(scan.next_seq), kind);
                last_is_torn = is_last && is_torn_tail(bytes, seg_size, at, kind);
                intact_so_far = false;
                expected = None;
            }
            None => expected = Some(scan.next_seq),
        }
    }
    damage.extend(end_damage);
    damage.extend(bad_meta);
    let status = match damage.as_slice() {
        [] => VerifyStatus::Clean,
        [only] if last_is_torn && segs.last().is_some_and(|s| s.path == only.segment) => {
            VerifyStatus::TornTail
        }
        _ => VerifyStatus::Corrupt,
    };
    Ok(VerifyReport {
        status,
        damage,
        segments,
        records,
        first_seq: segs.first().map(|s| s.first_seq),
        last_seq,
    })
}

#[cfg(test)]
mod tests {
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::verify_with;
    use crate::segment::SegmentWindow;
    use crate::testing::{damage_a_segment, write_journal};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Reading clean segments a window at a time changes nothing `verify` reports, for
        /// clean and damaged journals alike.
        #[test]
        fn windowed_verify_reports_what_whole_files_do(
            lens in vec(prop_oneof![4 => 0usize..200, 1 => 200usize..3000], 1..60),
            segment_size in prop_oneof![Just(1024u64), Just(4096), Just(16384)],
            step in prop_oneof![Just(1usize), Just(40), Just(333), Just(4096)],
            edits in vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
            cut in proptest::option::of(any::<prop::sample::Index>()),
            grow in 0usize..20,
            damaged in any::<prop::sample::Index>(),
        ) {
            let tmp = tempfile::tempdir().unwrap();
            write_journal(tmp.path(), segment_size, &lens);
            let whole = verify_with(tmp.path(), None).unwrap();
            prop_assert!(whole.is_clean(), "{}", whole);
            prop_assert_eq!(verify_with(tmp.path(), Some(SegmentWindow::with_step(step))).unwrap(), whole);
            damage_a_segment(tmp.path(), damaged, &edits, cut, grow);
            let whole = verify_with(tmp.path(), None).unwrap();
            prop_assert_eq!(verify_with(tmp.path(), Some(SegmentWindow::with_step(step))).unwrap(), whole);
        }
    }
}
