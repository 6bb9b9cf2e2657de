//! Whole-segment analysis shared by recovery and `verify`: find the intact prefix, classify
//! damage, and measure what lies beyond the intact prefix.

use std::path::Path;

use crate::error::{DamageKind, JournalError};
use crate::format::{
    first_nonzero, parse_record, record_size, Check, Parsed, SegmentHeader, RECORD_ALIGN,
    RECORD_HEADER_LEN, RECORD_MARKER, SEGMENT_HEADER_LEN,
};
use crate::segment::SegmentWindow;

/// Decodes the header of a segment file and checks it against the file name.
pub(crate) fn check_header(file: &[u8], name_seq: u64) -> Result<SegmentHeader, DamageKind> {
    let h = SegmentHeader::decode(file)?;
    if h.first_seq != name_seq {
        return Err(DamageKind::NameMismatch {
            name_seq,
            header_seq: h.first_seq,
        });
    }
    Ok(h)
}

/// The intact prefix of a segment's records and the first damage after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordScan {
    /// Number of intact records.
    pub records: u64,
    /// Offset where the intact prefix ends (the next record would start here).
    pub end: usize,
    /// Sequence number of the record that would follow the intact prefix.
    pub next_seq: u64,
    /// First damage: offset in the file and kind. `None` for a clean segment.
    pub damage: Option<(usize, DamageKind)>,
}

/// Validates every record of a segment whose header says `first_seq` and `seg_size`.
///
/// `file` is the whole file; it may be shorter or longer than `seg_size`. A clean segment
/// has contiguous valid records, then only zero bytes up to exactly `seg_size`.
pub(crate) fn scan_records(file: &[u8], seg_size: usize, first_seq: u64) -> RecordScan {
    let area = &file[..file.len().min(seg_size)];
    let mut pos = SEGMENT_HEADER_LEN;
    let mut seq = first_seq;
    let mut records = 0;
    loop {
        match parse_record(area, seg_size, pos, Some(seq), Check::Full) {
            Parsed::Record(m) => {
                pos = m.next;
                seq = seq.wrapping_add(1);
                records += 1;
            }
            Parsed::End => {
                let damage = if let Some(nz) = first_nonzero(area, pos) {
                    Some((
                        pos,
                        DamageKind::NonZeroAfterEnd {
                            first_nonzero: nz as u64,
                        },
                    ))
                } else if file.len() < seg_size {
                    Some((
                        pos,
                        DamageKind::ShortFile {
                            len: file.len() as u64,
                            segment_size: seg_size as u64,
                        },
                    ))
                } else if file.len() > seg_size {
                    Some((
                        seg_size,
                        DamageKind::FileTooLong {
                            len: file.len() as u64,
                            segment_size: seg_size as u64,
                        },
                    ))
                } else {
                    None
                };
                return RecordScan {
                    records,
                    end: pos,
                    next_seq: seq,
                    damage,
                };
            }
            Parsed::Damaged(kind) => {
                return RecordScan {
                    records,
                    end: pos,
                    next_seq: seq,
                    damage: Some((pos, kind)),
                };
            }
        }
    }
}

/// The header and record scan of a clean segment (valid header, every record intact, then
/// zeros up to exactly the header's size), read through `win` a window at a time; `None` for
/// any other segment, which the caller then analyses whole ([`scan_records`]). For a clean
/// segment both give the same scan.
pub(crate) fn scan_clean(
    win: &mut SegmentWindow,
    path: &Path,
    name_seq: u64,
) -> Result<Option<(SegmentHeader, RecordScan)>, JournalError> {
    win.open(path)?;
    win.cover(0, SEGMENT_HEADER_LEN, false, path)?;
    let Some(Ok(header)) = win
        .get(0..SEGMENT_HEADER_LEN)
        .map(|h| check_header(h, name_seq))
    else {
        return Ok(None);
    };
    let seg_size = header.segment_size as usize;
    let mut pos = SEGMENT_HEADER_LEN;
    let mut seq = header.first_seq;
    let mut records = 0;
    while win.len() == seg_size {
        match win.parse(pos, seg_size, Some(seq), path)? {
            Parsed::Record(m) => {
                pos = m.next;
                seq = seq.wrapping_add(1);
                records += 1;
            }
            Parsed::End => {
                let clean =
                    win.nonzero_from(pos, seg_size, path)?.is_none() && win.len() == seg_size;
                let scan = RecordScan {
                    records,
                    end: pos,
                    next_seq: seq,
                    damage: None,
                };
                return Ok(clean.then_some((header, scan)));
            }
            Parsed::Damaged(_) => return Ok(None),
        }
    }
    Ok(None)
}

/// Offset of the first intact record (marker, bounds, padding, CRC; any sequence number)
/// that starts at an aligned offset after `damage_at`, if there is one.
///
/// Used to tell a torn tail (nothing intact follows the damage) from corruption in the
/// middle (intact records follow it).
pub(crate) fn intact_record_after(file: &[u8], seg_size: usize, damage_at: usize) -> Option<usize> {
    let area = &file[..file.len().min(seg_size)];
    let mut p =
        (damage_at.max(SEGMENT_HEADER_LEN - RECORD_ALIGN) / RECORD_ALIGN + 1) * RECORD_ALIGN;
    while p + RECORD_HEADER_LEN <= area.len() {
        if area[p..p + 2] == RECORD_MARKER.to_le_bytes() {
            if let Parsed::Record(_) = parse_record(area, seg_size, p, None, Check::Full) {
                return Some(p);
            }
        }
        p += RECORD_ALIGN;
    }
    None
}

/// Whether damage at `damage_at` of the given kind is a torn tail of its segment: damage an
/// interrupted write can leave, with no intact record after it, in a file of its full size.
///
/// Segment files are created at their full size before they join the journal, so an
/// interrupted write can leave a partial record followed by zeros (or by stray bytes of a page
/// written out of order), never a short file: a truncated segment lost bytes to something
/// else and is not a torn tail. (A bit flipped in the very last record cannot be told from a
/// torn write of it, and is treated as one.)
pub(crate) fn is_torn_tail(
    file: &[u8],
    seg_size: usize,
    damage_at: usize,
    kind: DamageKind,
) -> bool {
    kind.is_tear_like()
        && file.len() == seg_size
        && intact_record_after(file, seg_size, damage_at).is_none()
}

/// Counts the record-shaped regions in `file[from..until]`.
///
/// Walking from `from`: a slot that starts with the record marker and whose padded length
/// ends within `file` counts as one record and is skipped whole; the first slot that is not
/// record-shaped counts as one more and ends the walk. So the count is at least 1 whenever
/// `from < until`.
pub(crate) fn count_record_shapes(file: &[u8], from: usize, until: usize) -> u64 {
    let mut n = 0;
    let mut p = from;
    while p < until {
        n += 1;
        let shaped = file
            .get(p..p + RECORD_HEADER_LEN)
            .filter(|h| h[0..2] == RECORD_MARKER.to_le_bytes())
            .map(|h| record_size(u64::from(u32::from_le_bytes([h[4], h[5], h[6], h[7]]))))
            .filter(|&total| (p as u64).saturating_add(total) <= file.len() as u64);
        match shaped {
            Some(total) => p += total as usize,
            None => break,
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{write_record, RecordFields};

    fn segment(payloads: &[&[u8]], size: usize) -> Vec<u8> {
        let mut b = vec![0u8; size];
        b[..SEGMENT_HEADER_LEN].copy_from_slice(
            &SegmentHeader {
                first_seq: 10,
                segment_size: size as u64,
            }
            .encode(),
        );
        let mut pos = SEGMENT_HEADER_LEN;
        for (i, p) in payloads.iter().enumerate() {
            let total = record_size(p.len() as u64) as usize;
            let f = RecordFields {
                seq: 10 + i as u64,
                recv_ns: 0,
                source: 0,
                kind: 0,
            };
            write_record(&mut b[pos..pos + total], &f, p);
            pos += total;
        }
        b
    }

    #[test]
    fn clean_and_damaged_scans() {
        let seg = segment(&[b"one", b"two", b"three"], 512);
        assert_eq!(check_header(&seg, 10).unwrap().first_seq, 10);
        assert!(check_header(&seg, 11).is_err());
        let s = scan_records(&seg, 512, 10);
        assert_eq!(
            (s.records, s.end, s.next_seq, s.damage),
            (3, 64 + 40 * 3, 13, None)
        );

        let mut mid = seg.clone();
        mid[64 + 40 + 33] ^= 1; // payload of the second record
        let s = scan_records(&mid, 512, 10);
        assert_eq!((s.records, s.end), (1, 104));
        assert!(matches!(s.damage, Some((104, DamageKind::Checksum { .. }))));
        assert!(!is_torn_tail(&mid, 512, 104, s.damage.unwrap().1));
        assert_eq!(intact_record_after(&mid, 512, 104), Some(144));
        assert_eq!(count_record_shapes(&mid, 104, 184), 2);

        let mut tail = seg.clone();
        tail[64 + 80 + 33] ^= 1;
        let s = scan_records(&tail, 512, 10);
        assert!(is_torn_tail(&tail, 512, s.end, s.damage.unwrap().1));

        let short = &seg[..300];
        let s = scan_records(short, 512, 10);
        assert_eq!(s.records, 3);
        assert!(matches!(
            s.damage,
            Some((184, DamageKind::ShortFile { .. }))
        ));
    }

    #[test]
    fn garbage_after_end_is_damage() {
        let mut seg = segment(&[b"x"], 256);
        seg[200] = 1;
        let s = scan_records(&seg, 256, 10);
        assert_eq!(s.records, 1);
        assert_eq!(
            s.damage,
            Some((104, DamageKind::NonZeroAfterEnd { first_nonzero: 200 }))
        );
        assert_eq!(count_record_shapes(&seg, 104, 201), 1);
    }
}
