//! The journal damage matrix: every kind of damage (truncation, a zeroed 4 KiB page, a flipped
//! bit, junk appended to the file, a deleted segment) in the first, a middle and the last
//! segment of a journal, checked against every consumer: `verify`, a reader (what `replay`
//! and `dump` use), a restarted writer, and the explicit `repair`.
//!
//! The property: no intact record is ever discarded without an explicit repair. Readers
//! deliver exactly the records before the damage and then an error; `verify` reports the
//! damage; a writer refuses to open and changes nothing; `repair` keeps the intact prefix and
//! moves everything after it, byte for byte, into the quarantine; the journal then continues.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use common::{read_all, read_until_error, sample, segment_files, small, Owned};
use tape_journal::{repair, verify, DamageKind, JournalWriter, VerifyStatus};

const SEG: u64 = 16 << 10;
const RECORDS: u64 = 600;

#[derive(Debug, Clone, Copy)]
enum Damage {
    /// The file cut in the middle of its data.
    Truncate,
    /// A 4 KiB page of data set to zero (a lost write-back).
    ZeroPage,
    /// One bit flipped in the middle of the data.
    FlipBit,
    /// Junk appended to the file (past its segment size).
    AppendJunk,
    /// The file deleted.
    Delete,
}

#[derive(Debug, Clone, Copy)]
enum Where {
    First,
    Middle,
    Last,
}

/// A pristine journal of several segments, written once, copied per case.
struct Pristine {
    files: Vec<(PathBuf, Vec<u8>)>,
    meta: Vec<u8>,
    records: Vec<Owned>,
    /// First sequence number of each segment.
    firsts: Vec<u64>,
}

fn pristine() -> Pristine {
    let tmp = tempfile::tempdir().unwrap();
    let (mut w, _) = JournalWriter::open(tmp.path(), small(SEG)).unwrap();
    let mut records = Vec::new();
    for i in 0..RECORDS {
        let mut r = sample(i);
        r.payload.resize(60 + (i as usize * 13) % 120, 0x5A);
        let seq = w.append(r.recv_ns, r.source, r.kind, &r.payload).unwrap();
        records.push(Owned { seq, ..r });
    }
    w.close().unwrap();
    let files: Vec<(PathBuf, Vec<u8>)> = segment_files(tmp.path())
        .into_iter()
        .map(|p| (PathBuf::from(p.file_name().unwrap()), fs::read(&p).unwrap()))
        .collect();
    assert!(files.len() >= 4, "want a middle segment: {}", files.len());
    let firsts = verify(tmp.path())
        .unwrap()
        .segments
        .iter()
        .map(|s| s.first_seq)
        .collect();
    let meta = fs::read(tmp.path().join("JOURNAL")).unwrap();
    Pristine {
        files,
        meta,
        records,
        firsts,
    }
}

/// The whole directory's files and contents (the lock file aside), to prove nothing changed.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && !p.ends_with("LOCK"))
        .map(|p| (p.clone(), fs::read(&p).unwrap()))
        .collect()
}

/// The end of the data written in a segment (the last non-zero byte, plus one).
fn data_end(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1)
}

struct Case {
    dir: PathBuf,
    /// Index of the damaged segment.
    seg: usize,
    /// Records a reader still gets before the damage.
    keep: usize,
}

fn damage(p: &Pristine, root: &Path, what: Damage, at: Where) -> Case {
    let dir = root.join(format!("{what:?}-{at:?}"));
    fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in &p.files {
        fs::write(dir.join(name), bytes).unwrap();
    }
    fs::write(dir.join("JOURNAL"), &p.meta).unwrap();
    let seg = match at {
        Where::First => 0,
        Where::Middle => p.files.len() / 2,
        Where::Last => p.files.len() - 1,
    };
    let path = dir.join(&p.files[seg].0);
    let mut bytes = p.files[seg].1.clone();
    let mid = 64 + (data_end(&bytes) - 64) / 2;
    // Records wholly before `cut` survive for a reader.
    let mut cut = mid;
    match what {
        Damage::Truncate => bytes.truncate(mid),
        Damage::ZeroPage => {
            let page = mid / 4096 * 4096;
            let page = page.max(4096);
            bytes[page..page + 4096].fill(0);
            cut = page;
        }
        Damage::FlipBit => bytes[mid] ^= 0x10,
        Damage::AppendJunk => {
            bytes.extend_from_slice(b"junk appended by hand\n");
            cut = usize::MAX;
        }
        Damage::Delete => cut = 0,
    }
    if matches!(what, Damage::Delete) {
        fs::remove_file(&path).unwrap();
    } else {
        fs::write(&path, &bytes).unwrap();
    }
    // Records of the damaged segment that end before `cut`, plus every earlier segment's.
    let first = p.firsts[seg] as usize;
    let next_first = p
        .firsts
        .get(seg + 1)
        .map_or(p.records.len(), |&f| f as usize);
    let mut end = 64;
    let mut keep = first;
    for r in &p.records[first..next_first] {
        end += (32 + r.payload.len()).div_ceil(8) * 8;
        if end > cut {
            break;
        }
        keep += 1;
    }
    if matches!(what, Damage::Delete) && seg == 0 {
        keep = 0; // a journal without its start replays nothing
    }
    Case { dir, seg, keep }
}

#[test]
fn every_damage_in_every_place_loses_no_intact_record() {
    let p = pristine();
    let tmp = tempfile::tempdir().unwrap();
    for what in [
        Damage::Truncate,
        Damage::ZeroPage,
        Damage::FlipBit,
        Damage::AppendJunk,
        Damage::Delete,
    ] {
        for at in [Where::First, Where::Middle, Where::Last] {
            let label = format!("{what:?} in the {at:?} segment");
            let c = damage(&p, tmp.path(), what, at);
            check_case(&p, &c, what, at, &label);
        }
    }
}

fn check_case(p: &Pristine, c: &Case, what: Damage, at: Where, label: &str) {
    let dir = &c.dir;
    // verify: damage, never clean, never a torn tail (these are not interrupted writes).
    let v = verify(dir).unwrap();
    assert_eq!(v.status, VerifyStatus::Corrupt, "{label}: {v}");
    let first = &v.damage[0];
    match (what, at) {
        (Damage::Delete, Where::First) => {
            assert!(
                matches!(first.kind, DamageKind::MissingStart { .. }),
                "{label}: {v}"
            )
        }
        (Damage::Delete, Where::Last) => {
            assert!(
                matches!(first.kind, DamageKind::MissingEnd { .. }),
                "{label}: {v}"
            )
        }
        (Damage::Delete, Where::Middle) => {
            assert!(
                matches!(first.kind, DamageKind::SegmentSeqGap { .. }),
                "{label}: {v}"
            )
        }
        (Damage::AppendJunk, _) => {
            assert!(
                matches!(first.kind, DamageKind::FileTooLong { .. }),
                "{label}: {v}"
            )
        }
        _ => assert!(
            first.segment.ends_with(&p.files[c.seg].0),
            "{label}: damage named in the wrong segment: {v}"
        ),
    }

    // A reader (replay, dump): the intact prefix, then an error; never a silent end.
    let (read, err) = read_until_error(dir);
    // (Junk past a segment's size: its records read, then the damage.)
    assert_eq!(read.len(), c.keep, "{label}");
    assert_eq!(read[..], p.records[..read.len()], "{label}");
    assert!(
        err.as_ref().is_some_and(|e| e.is_corruption()),
        "{label}: the reader must report the damage, got {err:?}"
    );

    // A restarted writer refuses and changes nothing.
    let before = snapshot(dir);
    let e = JournalWriter::open(dir, small(SEG)).unwrap_err();
    assert!(e.is_corruption(), "{label}: {e}");
    assert_eq!(
        snapshot(dir),
        before,
        "{label}: refusing must change nothing"
    );

    // The explicit repair.
    let report = match repair(dir) {
        Ok(r) => r,
        Err(e) => {
            assert!(
                matches!((what, at), (Damage::Delete, Where::First)),
                "{label}: repair failed: {e}"
            );
            assert!(e.to_string().contains("restore"), "{label}: {e}");
            assert_eq!(
                snapshot(dir),
                before,
                "{label}: a refused repair changes nothing"
            );
            return;
        }
    };
    let kept = read_all(dir);
    assert_eq!(kept[..], p.records[..kept.len()], "{label}");
    assert!(kept.len() >= c.keep, "{label}: {report}");
    // Every byte that left the journal is in the quarantine: the damaged segment's bytes
    // from the damage on, and every later segment whole.
    let mut moved_bytes = 0u64;
    for m in &report.moved {
        let got = fs::read(&m.file).unwrap();
        assert_eq!(got.len() as u64, m.bytes, "{label}");
        let original = before
            .get(&m.source)
            .unwrap_or_else(|| panic!("{label}: {m:?}"));
        let from = m.from_offset as usize;
        assert_eq!(
            got[..],
            original[from..from + got.len()],
            "{label}: {report}"
        );
        moved_bytes += m.bytes;
    }
    match what {
        Damage::Delete if matches!(at, Where::Last) => {
            assert!(report.moved.is_empty(), "{label}: {report}");
            assert!(report.metadata_rewritten, "{label}");
        }
        _ => {
            let later: u64 = p.files[c.seg + 1..]
                .iter()
                .map(|(_, b)| b.len() as u64)
                .sum();
            assert!(moved_bytes >= later, "{label}: {report}");
        }
    }
    // The repaired journal is clean and continues where its intact prefix ends.
    let v = verify(dir).unwrap();
    assert!(v.is_clean(), "{label}: {v}");
    let (mut w, rec) = JournalWriter::open(dir, small(SEG)).unwrap();
    assert!(rec.is_clean(), "{label}: {rec}");
    assert_eq!(
        w.append(1, 2, 3, b"after repair").unwrap(),
        kept.len() as u64
    );
    w.close().unwrap();
    assert_eq!(read_all(dir).len(), kept.len() + 1, "{label}");
}
