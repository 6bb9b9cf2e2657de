//! Property tests: arbitrary records round-trip; arbitrary bytes never make the reader,
//! `verify` or recovery panic, and recovery always leaves a clean journal.

mod common;

use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use common::{read_until_error, small, Owned};
use proptest::collection::vec;
use proptest::prelude::*;
use tape_journal::{repair, segment_file_name, verify, JournalReader, JournalWriter, VerifyStatus};

fn arb_record() -> impl Strategy<Value = Owned> {
    (
        any::<u64>(),
        any::<u32>(),
        any::<u16>(),
        vec(any::<u8>(), 0..600),
    )
        .prop_map(|(recv_ns, source, kind, payload)| Owned {
            seq: 0,
            recv_ns,
            source,
            kind,
            payload,
        })
}

/// Reads everything, seeks a few places and verifies; none of it may panic. Returns the
/// records read before the first error.
fn exercise_reader(dir: &Path) -> Vec<Owned> {
    let (read, _) = read_until_error(dir);
    if let Ok(mut r) = JournalReader::open(dir) {
        for seq in [0, 1, 5, 17, u64::MAX] {
            if r.seek(seq).is_ok() {
                // Bounded: a reader that stops making progress fails here.
                for _ in 0..10_000 {
                    match r.next() {
                        Some(Ok(_)) => {}
                        _ => break,
                    }
                }
            }
        }
    }
    let _ = verify(dir);
    read
}

/// A clean two-segment journal (512-byte segments) and its records, built once.
fn base_journal() -> &'static (Vec<Vec<u8>>, Vec<Owned>) {
    static BASE: OnceLock<(Vec<Vec<u8>>, Vec<Owned>)> = OnceLock::new();
    BASE.get_or_init(build_base_journal)
}

fn build_base_journal() -> (Vec<Vec<u8>>, Vec<Owned>) {
    let tmp = tempfile::tempdir().unwrap();
    let (mut w, _) = JournalWriter::open(tmp.path(), small(512)).unwrap();
    let mut recs = Vec::new();
    for i in 0..9u64 {
        let payload = vec![i as u8 + 1; (i as usize * 13) % 70];
        let seq = w.append(i, i as u32, i as u16, &payload).unwrap();
        recs.push(Owned {
            seq,
            recv_ns: i,
            source: i as u32,
            kind: i as u16,
            payload,
        });
    }
    w.close().unwrap();
    let files: Vec<Vec<u8>> = common::segment_files(tmp.path())
        .iter()
        .map(|p| fs::read(p).unwrap())
        .collect();
    assert_eq!(
        files.len(),
        2,
        "base journal must have exactly two segments"
    );
    (files, recs)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn arbitrary_records_round_trip(
        recs in vec(arb_record(), 0..40),
        segment_size in prop_oneof![Just(1024u64), Just(4096), Just(1 << 16)],
        seek_to in any::<prop::sample::Index>(),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let (mut w, _) = JournalWriter::open(tmp.path(), small(segment_size)).unwrap();
        let written = common::append_all(&mut w, &recs);
        w.close().unwrap();
        for (i, r) in written.iter().enumerate() {
            prop_assert_eq!(r.seq, i as u64);
        }
        prop_assert_eq!(common::read_all(tmp.path()), written.clone());
        prop_assert!(verify(tmp.path()).unwrap().is_clean());
        let from = seek_to.index(written.len() + 1);
        let mut r = JournalReader::open_from(tmp.path(), from as u64).unwrap();
        let mut got = Vec::new();
        while let Some(rec) = r.next() {
            got.push(Owned::from(rec.unwrap()));
        }
        prop_assert_eq!(&got[..], &written[from..]);
    }

    #[test]
    fn arbitrary_segment_bytes_never_panic(
        bytes in vec(any::<u8>(), 0..3000),
        valid_header in any::<bool>(),
        segment_size in prop_oneof![Just(128u64), Just(1024), Just(4096), any::<u64>()],
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let mut bytes = bytes;
        if valid_header && bytes.len() >= 64 {
            // A valid header lets the reader get to the arbitrary records behind it.
            let clean = tempfile::tempdir().unwrap();
            let opts = small(segment_size.clamp(128, 1 << 20) / 8 * 8);
            JournalWriter::open(clean.path(), opts).unwrap().0.close().unwrap();
            let header = fs::read(clean.path().join(segment_file_name(0))).unwrap();
            bytes[..64].copy_from_slice(&header[..64]);
        }
        fs::write(tmp.path().join(segment_file_name(0)), &bytes).unwrap();
        exercise_reader(tmp.path());
        if let Ok((w, report)) = JournalWriter::open(tmp.path(), small(1024)) {
            drop(w);
            let v = verify(tmp.path()).unwrap();
            prop_assert_eq!(v.status, VerifyStatus::Clean, "{:?}", v);
            let (read, err) = read_until_error(tmp.path());
            prop_assert!(err.is_none());
            prop_assert_eq!(read.len() as u64, report.kept_records);
        }
    }

    #[test]
    fn damaged_journal_recovers_to_a_clean_prefix(
        which in 0usize..2,
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let (files, recs) = base_journal();
        let tmp = tempfile::tempdir().unwrap();
        for (i, f) in files.iter().enumerate() {
            let mut f = f.clone();
            if i == which {
                for (at, b) in &edits {
                    let at = at.index(f.len());
                    f[at] = *b;
                }
                if let Some(cut) = cut {
                    f.truncate(cut.index(f.len() + 1));
                }
            }
            let first = if i == 0 { 0 } else { first_seq_of_second(files) };
            fs::write(tmp.path().join(segment_file_name(first)), &f).unwrap();
        }
        let read = exercise_reader(tmp.path());
        prop_assert_eq!(&read[..], &recs[..read.len()]);
        let opened = match JournalWriter::open(tmp.path(), small(512)) {
            Ok(opened) => opened,
            Err(e) => {
                // Damage other than a torn tail is refused; only an explicit repair acts on
                // it, and keeps every record a reader could read.
                prop_assert!(e.is_corruption(), "{}", e);
                let rep = repair(tmp.path()).unwrap();
                prop_assert_eq!(rep.kept_records as usize, read.len(), "{}", rep);
                JournalWriter::open(tmp.path(), small(512)).unwrap()
            }
        };
        let (mut w, report) = opened;
        let next = report.next_seq;
        // Opening never gives up a record a reader could read.
        prop_assert!(next as usize >= read.len(), "{:?}", report);
        prop_assert_eq!(w.append(1, 2, 3, b"more").unwrap(), next);
        w.close().unwrap();
        let v = verify(tmp.path()).unwrap();
        prop_assert_eq!(v.status, VerifyStatus::Clean, "{:?} after {:?}", v, report);
        let (read, err) = read_until_error(tmp.path());
        prop_assert!(err.is_none(), "{:?}", err);
        prop_assert_eq!(read.len() as u64, next + 1);
        prop_assert_eq!(&read[..next as usize], &recs[..next as usize]);

    }
}

/// First sequence number of the second segment, from its header.
fn first_seq_of_second(files: &[Vec<u8>]) -> u64 {
    u64::from_le_bytes(files[1][16..24].try_into().unwrap())
}
