//! Recovery, verification and repair against truncation and corruption at every byte offset.
//!
//! The rule under test: opening a writer cuts only a torn tail (a partial record at the very
//! end of a full-sized last segment, nothing intact after it); any other damage is refused
//! with its location, and only `repair` moves what follows it, byte for byte, into a
//! quarantine.

mod common;

use std::fs;
use std::path::Path;

use common::{append_all, read_all, read_until_error, sample, segment_files, small, Owned};
use tape_journal::{
    repair, segment_file_name, verify, DamageKind, JournalWriter, VerifyStatus, SEGMENT_HEADER_LEN,
};

const SEG: u64 = 1024;

/// A one-segment journal of 7 small records whose lengths exercise every padding size.
struct Pristine {
    bytes: Vec<u8>,
    records: Vec<Owned>,
    /// Start offset of each record, plus the end of the last one.
    bounds: Vec<usize>,
}

fn pristine() -> Pristine {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = JournalWriter::open(dir.path(), small(SEG)).unwrap();
    let recs: Vec<Owned> = [0usize, 1, 7, 8, 13, 30, 3]
        .iter()
        .enumerate()
        .map(|(i, &len)| Owned {
            payload: vec![0xA0 + i as u8; len],
            ..sample(i as u64)
        })
        .collect();
    let records = append_all(&mut w, &recs);
    w.close().unwrap();
    let bytes = fs::read(dir.path().join(segment_file_name(0))).unwrap();
    assert_eq!(bytes.len() as u64, SEG);
    let mut bounds = vec![SEGMENT_HEADER_LEN];
    for r in &records {
        let last = *bounds.last().unwrap();
        bounds.push(last + (32 + r.payload.len()).div_ceil(8) * 8);
    }
    Pristine {
        bytes,
        records,
        bounds,
    }
}

impl Pristine {
    fn written_end(&self) -> usize {
        *self.bounds.last().unwrap()
    }

    /// Index of the record whose bytes (padding included) contain offset `k`.
    fn record_containing(&self, k: usize) -> Option<usize> {
        self.bounds.windows(2).position(|w| w[0] <= k && k < w[1])
    }
}

/// Puts `bytes` as the only segment of a fresh journal directory.
fn install(dir: &Path, bytes: &[u8]) {
    if dir.exists() {
        fs::remove_dir_all(dir).unwrap();
    }
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(segment_file_name(0)), bytes).unwrap();
}

/// Opens a writer on the damaged journal and checks that exactly `keep` records survive, the
/// report accounts for the drop, the journal is clean afterwards and the sequence continues.
fn recover_and_check(dir: &Path, p: &Pristine, keep: usize, what: &str) {
    let (mut w, report) =
        JournalWriter::open(dir, small(SEG)).unwrap_or_else(|e| panic!("{what}: open failed: {e}"));
    assert_eq!(report.kept_records, keep as u64, "{what}: {report:?}");
    assert_eq!(report.next_seq, keep as u64, "{what}");
    assert_eq!(report.last_seq, (keep as u64).checked_sub(1), "{what}");
    assert_eq!(
        report.dropped_records > 0,
        report.dropped_bytes > 0,
        "{what}: {report:?}"
    );
    assert_eq!(w.append(5, 5, 5, b"after").unwrap(), keep as u64, "{what}");
    w.close().unwrap();
    let v = verify(dir).unwrap();
    assert_eq!(v.status, VerifyStatus::Clean, "{what}: {v:?}");
    let got = read_all(dir);
    assert_eq!(got[..keep], p.records[..keep], "{what}");
    assert_eq!(got.len(), keep + 1, "{what}");
    assert_eq!(got[keep].payload, b"after", "{what}");
}

/// Opening a writer on the damaged journal in `dir` is refused, naming the damage at `at`;
/// `repair` then moves what follows the damage into the quarantine byte for byte (the file
/// `bytes` held), and the intact prefix of `keep` records continues cleanly.
fn refused_then_repaired(dir: &Path, p: &Pristine, bytes: &[u8], keep: usize, at: u64, what: &str) {
    let err = JournalWriter::open(dir, small(SEG)).unwrap_err();
    assert!(err.is_corruption(), "{what}: {err}");
    let d = err.damage().unwrap_or_else(|| panic!("{what}: {err}"));
    assert_eq!(d.offset, at, "{what}: {err}");
    assert!(d.segment.ends_with(segment_file_name(0)), "{what}: {err}");
    // Refusing changed nothing.
    assert_eq!(
        fs::read(dir.join(segment_file_name(0))).unwrap(),
        bytes,
        "{what}"
    );

    let report = repair(dir).unwrap_or_else(|e| panic!("{what}: repair failed: {e}"));
    assert_eq!(report.kept_records, keep as u64, "{what}: {report}");
    let moved: Vec<u8> = report
        .moved
        .iter()
        .flat_map(|m| fs::read(&m.file).unwrap())
        .collect();
    let from = (at as usize).min(bytes.len());
    let expect_moved = match bytes[from..].iter().rposition(|&b| b != 0) {
        _ if at == 0 => bytes.to_vec(),
        Some(last) => bytes[from..=from + last].to_vec(),
        None => Vec::new(),
    };
    assert_eq!(moved, expect_moved, "{what}: {report}");
    if !expect_moved.is_empty() || at == 0 {
        let q = report.quarantine.as_ref().expect("a quarantine");
        assert!(q.join("MANIFEST").is_file(), "{what}");
    }
    assert!(verify(dir).unwrap().is_clean(), "{what}");
    recover_and_check(dir, p, keep, what);
}

#[test]
fn truncation_at_every_offset() {
    let p = pristine();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    for k in 0..=p.written_end() {
        let what = format!("truncated at {k}");
        install(&dir, &p.bytes[..k]);
        // Segments are created at full size, so a short one was truncated, not torn: damage
        // for the operator to decide on, never for the writer to cut on its own.
        let v = verify(&dir).unwrap();
        assert_eq!(v.status, VerifyStatus::Corrupt, "{what}: {v:?}");
        assert_eq!(v.damage.len(), 1, "{what}");
        // Records that lie wholly before k survive.
        let keep = if k < SEGMENT_HEADER_LEN {
            0
        } else {
            p.bounds[1..].iter().filter(|&&end| end <= k).count()
        };
        let (read, err) = read_until_error(&dir);
        assert_eq!(read[..], p.records[..keep], "{what}");
        if k >= SEGMENT_HEADER_LEN && p.bounds.contains(&k) {
            // Cut exactly at a record boundary: nothing is damaged, only missing.
            assert!(err.is_none(), "{what}: {err:?}");
        } else {
            assert!(err.is_some_and(|e| e.is_corruption()), "{what}");
        }
        let at = if k < SEGMENT_HEADER_LEN {
            0
        } else {
            p.bounds[keep] as u64
        };
        refused_then_repaired(&dir, &p, &p.bytes[..k], keep, at, &what);
    }
}

#[test]
fn corruption_at_every_offset() {
    let p = pristine();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    let n = p.records.len();
    for k in 0..p.written_end() {
        for mask in [0x01u8, 0xFF] {
            let what = format!("byte {k} ^ {mask:#04x}");
            let mut bytes = p.bytes.clone();
            bytes[k] ^= mask;
            install(&dir, &bytes);
            // The damaged record and everything after it is unreadable as a journal.
            let keep = p.record_containing(k).unwrap_or(0);
            let v = verify(&dir).unwrap();
            let torn = k >= SEGMENT_HEADER_LEN && keep == n - 1;
            let expect = if torn {
                VerifyStatus::TornTail
            } else {
                VerifyStatus::Corrupt
            };
            assert_eq!(v.status, expect, "{what}: {v:?}");
            let d = &v.damage[0];
            let at = if k < SEGMENT_HEADER_LEN {
                0
            } else {
                p.bounds[keep]
            };
            assert_eq!(d.offset as usize, at, "{what}");
            if k >= SEGMENT_HEADER_LEN {
                assert_eq!(d.seq, Some(keep as u64), "{what}");
                assert_eq!(v.last_seq, (keep as u64).checked_sub(1), "{what}");
            }
            let (read, err) = read_until_error(&dir);
            assert_eq!(read[..], p.records[..keep], "{what}");
            assert!(err.is_some_and(|e| e.is_corruption()), "{what}");

            if torn {
                // The last record alone is damaged: the writer cuts it and says so.
                let (w, report) = JournalWriter::open(&dir, small(SEG)).unwrap();
                assert!(
                    report.dropped_bytes > 0 && report.dropped_records == 1,
                    "{what}: {report:?}"
                );
                assert!(!report.intact_after_damage, "{what}");
                assert!(report.to_string().contains("dropped"), "{what}: {report}");
                drop(w);
                install(&dir, &bytes);
                recover_and_check(&dir, &p, keep, &what);
            } else {
                refused_then_repaired(&dir, &p, &bytes, keep, at as u64, &what);
            }
        }
    }
}

#[test]
fn garbage_after_the_end_of_data() {
    let p = pristine();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    for k in (p.written_end()..SEG as usize).step_by(7) {
        let what = format!("garbage at {k}");
        let mut bytes = p.bytes.clone();
        bytes[k] = 0x42;
        install(&dir, &bytes);
        let v = verify(&dir).unwrap();
        assert_eq!(v.status, VerifyStatus::TornTail, "{what}: {v:?}");
        assert_eq!(v.damage[0].offset as usize, p.written_end(), "{what}");
        if k >= p.written_end() + 2 {
            // Past the zero marker of the next slot.
            let kind = DamageKind::NonZeroAfterEnd {
                first_nonzero: k as u64,
            };
            assert_eq!(v.damage[0].kind, kind, "{what}");
        }
        let (w, report) = JournalWriter::open(&dir, small(SEG)).unwrap();
        assert_eq!(
            report.dropped_bytes,
            (k + 1 - p.written_end()) as u64,
            "{what}"
        );
        assert_eq!(report.dropped_records, 1, "{what}");
        drop(w);
        install(&dir, &bytes);
        recover_and_check(&dir, &p, p.records.len(), &what);
    }
}

/// Writes a journal of several segments and returns its records and segment files.
fn multi_segment(dir: &Path) -> Vec<Owned> {
    common::write_samples(dir, small(512), 60)
}

#[test]
fn damaged_header_of_the_last_segment_is_refused_while_records_follow_it() {
    let tmp = tempfile::tempdir().unwrap();
    let written = multi_segment(tmp.path());
    let segs = segment_files(tmp.path());
    let last = segs.last().unwrap();
    let first_of_last = verify(tmp.path())
        .unwrap()
        .segments
        .last()
        .unwrap()
        .first_seq;
    let pristine_last = fs::read(last).unwrap();
    let mut bytes = pristine_last.clone();
    bytes[20] ^= 0x10; // inside first_seq: header CRC mismatch
    fs::write(last, &bytes).unwrap();
    let v = verify(tmp.path()).unwrap();
    assert_eq!(
        v.status,
        VerifyStatus::Corrupt,
        "intact records follow the header"
    );
    assert!(matches!(
        v.damage[0].kind,
        DamageKind::HeaderChecksum { .. }
    ));
    assert_eq!(&v.damage[0].segment, last);
    let err = JournalWriter::open(tmp.path(), small(512)).unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert_eq!(fs::read(last).unwrap(), bytes, "refusing changes nothing");
    // The explicit repair moves the whole segment aside, byte for byte.
    let report = repair(tmp.path()).unwrap();
    assert_eq!(report.moved.len(), 1, "{report}");
    assert_eq!(fs::read(&report.moved[0].file).unwrap(), bytes);
    assert_eq!(report.kept_records, first_of_last);
    assert_eq!(report.last_kept_seq, Some(first_of_last - 1));
    assert!(
        report.to_string().contains("nothing was deleted"),
        "{report}"
    );
    let (mut w, report) = JournalWriter::open(tmp.path(), small(512)).unwrap();
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.next_seq, first_of_last);
    assert_eq!(w.append(0, 0, 0, b"x").unwrap(), first_of_last);
    w.close().unwrap();
    assert!(verify(tmp.path()).unwrap().is_clean());
    assert_eq!(
        read_all(tmp.path())[..first_of_last as usize],
        written[..first_of_last as usize]
    );
}

#[test]
fn torn_header_of_an_empty_last_segment_is_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let written = multi_segment(tmp.path());
    let next = written.len() as u64;
    // A last segment holding a header and nothing else, whose header is torn.
    let (mut w, _) = JournalWriter::open(tmp.path(), small(512)).unwrap();
    let big = vec![7u8; 400];
    w.append(0, 0, 0, &big).unwrap(); // fills most of a segment: the next one starts empty
    w.append(0, 0, 0, &big).unwrap();
    w.close().unwrap();
    let segs = segment_files(tmp.path());
    let last = segs.last().unwrap();
    let mut bytes = fs::read(last).unwrap();
    assert!(bytes[SEGMENT_HEADER_LEN..].iter().any(|&b| b != 0));
    let (w, _) = JournalWriter::open(tmp.path(), small(512)).unwrap();
    drop(w);
    // Tear the header of the segment that holds the last record: records follow, refused.
    bytes[0] ^= 0xFF;
    fs::write(last, &bytes).unwrap();
    assert!(JournalWriter::open(tmp.path(), small(512)).is_err());
    // Tear only the header of a record-less last segment: that is the writer's to rebuild.
    let mut empty = bytes.clone();
    empty[SEGMENT_HEADER_LEN..].fill(0);
    fs::write(last, &empty).unwrap();
    let (w, report) = JournalWriter::open(tmp.path(), small(512)).unwrap();
    assert!(report.header_rebuilt, "{report}");
    assert!(
        report.to_string().contains("segment header rebuilt"),
        "{report}"
    );
    assert_eq!(report.kept_records, 0);
    drop(w);
    assert!(verify(tmp.path()).unwrap().is_clean());
    assert_eq!(read_all(tmp.path())[..next as usize], written[..]);
}

#[test]
fn damaged_header_of_a_sealed_segment_is_reported_not_repaired() {
    let tmp = tempfile::tempdir().unwrap();
    let written = multi_segment(tmp.path());
    let segs = segment_files(tmp.path());
    assert!(segs.len() >= 4);
    let victim = &segs[segs.len() - 2];
    let mut bytes = fs::read(victim).unwrap();
    bytes[3] ^= 0x01; // magic
    fs::write(victim, &bytes).unwrap();
    let v = verify(tmp.path()).unwrap();
    assert_eq!(v.status, VerifyStatus::Corrupt);
    assert_eq!(v.damage.len(), 1);
    assert_eq!(&v.damage[0].segment, victim);
    assert_eq!(v.damage[0].kind, DamageKind::BadHeaderMagic);
    let err = JournalWriter::open(tmp.path(), small(512)).unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert!(
        err.to_string().contains(&victim.display().to_string()),
        "{err}"
    );
    let (read, err) = read_until_error(tmp.path());
    let victim_first = v.segments[segs.len() - 2].first_seq as usize;
    assert_eq!(read, written[..victim_first]);
    assert!(err.unwrap().is_corruption());
}

#[test]
fn corruption_and_gaps_in_sealed_segments_are_located() {
    let tmp = tempfile::tempdir().unwrap();
    multi_segment(tmp.path());
    let segs = segment_files(tmp.path());
    // A flipped payload byte in the second record of the first segment.
    let mut bytes = fs::read(&segs[0]).unwrap();
    let rec1 = 64 + (32 + sample(0).payload.len()).div_ceil(8) * 8;
    bytes[rec1 + 33] ^= 0x04;
    fs::write(&segs[0], &bytes).unwrap();
    let v = verify(tmp.path()).unwrap();
    assert_eq!(v.status, VerifyStatus::Corrupt);
    let text = v.to_string();
    assert!(text.starts_with("corrupt: "), "{text}");
    assert!(text.contains("record checksum mismatch"), "{text}");
    let d = &v.damage[0];
    assert_eq!(
        (&d.segment, d.offset, d.seq),
        (&segs[0], rec1 as u64, Some(1))
    );
    assert!(matches!(d.kind, DamageKind::Checksum { .. }));
    assert!(
        v.damage.len() == 1,
        "later segments are still checked and clean"
    );
    // A missing middle segment is a gap between segments.
    fs::remove_file(&segs[2]).unwrap();
    let v = verify(tmp.path()).unwrap();
    assert_eq!(v.status, VerifyStatus::Corrupt);
    let gap = v.damage.iter().find(|d| d.segment == segs[3]).unwrap();
    assert!(
        matches!(gap.kind, DamageKind::SegmentSeqGap { .. }),
        "{gap:?}"
    );
}

#[test]
fn empty_last_segment_file_is_refused_and_repair_sets_it_aside() {
    let tmp = tempfile::tempdir().unwrap();
    let written = multi_segment(tmp.path());
    let next = written.len() as u64;
    let name = tmp.path().join(segment_file_name(next));
    // An empty file named as the next segment: the writer never leaves one (segments are
    // created at full size under a temporary name), so it is not the writer's to rebuild.
    fs::write(&name, b"").unwrap();
    let err = JournalWriter::open(tmp.path(), small(512)).unwrap_err();
    assert!(matches!(
        err.damage().map(|d| d.kind),
        Some(DamageKind::ShortHeader { len: 0 })
    ));
    let report = repair(tmp.path()).unwrap();
    assert_eq!(report.moved.len(), 1, "{report}");
    assert_eq!(report.moved[0].source, name);
    assert!(!name.exists());
    let (mut w, report) = JournalWriter::open(tmp.path(), small(512)).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(w.append(0, 0, 0, b"x").unwrap(), next);
    w.close().unwrap();
    assert_eq!(read_all(tmp.path()).len() as u64, next + 1);
    // A last segment that does not continue the previous one is refused.
    let bogus = tmp.path().join(segment_file_name(next + 100));
    fs::write(&bogus, b"").unwrap();
    let err = JournalWriter::open(tmp.path(), small(512)).unwrap_err();
    assert!(matches!(
        err.damage().map(|d| d.kind),
        Some(DamageKind::SegmentSeqGap { .. })
    ));
}
