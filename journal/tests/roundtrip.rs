//! Writing, reading, seeking, reopening and caller mistakes.

mod common;

use common::{append_all, read_all, sample, segment_files, small, write_samples, Owned};
use tape_journal::{
    verify, JournalError, JournalOptions, JournalReader, JournalWriter, VerifyStatus,
};

#[test]
fn round_trip_across_many_segment_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let written = write_samples(dir.path(), small(256), 300);
    let segs = segment_files(dir.path());
    assert!(segs.len() > 20, "only {} segments", segs.len());
    assert_eq!(read_all(dir.path()), written);
    let report = verify(dir.path()).unwrap();
    assert_eq!(report.status, VerifyStatus::Clean, "{report:?}");
    assert_eq!(report.records, 300);
    assert_eq!((report.first_seq, report.last_seq), (Some(0), Some(299)));
    assert_eq!(report.segments.len(), segs.len());
    // Segment names carry the first seq of each segment, in order.
    let firsts: Vec<u64> = report.segments.iter().map(|s| s.first_seq).collect();
    assert!(firsts.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(firsts[0], 0);
}

#[test]
fn seek_to_every_seq() {
    let dir = tempfile::tempdir().unwrap();
    // 200-byte segments hold 1..4 records; 16 KiB ones ~200 (several index strides).
    for seg in [200, 16384] {
        let dir = dir.path().join(seg.to_string());
        let written = write_samples(&dir, small(seg), 260);
        let mut r = JournalReader::open(&dir).unwrap();
        for target in 0..=260u64 {
            r.seek(target).unwrap();
            assert_eq!(r.next_seq(), Some(target));
            let mut got = Vec::new();
            for _ in 0..3 {
                match r.next() {
                    Some(rec) => got.push(Owned::from(rec.unwrap())),
                    None => break,
                }
            }
            let end = (target + 3).min(260) as usize;
            assert_eq!(got, written[target as usize..end], "seek {target}");
        }
        // Reading to the end after a seek crosses segment boundaries correctly.
        let mut r = JournalReader::open_from(&dir, 100).unwrap();
        let mut n = 100;
        while let Some(rec) = r.next() {
            assert_eq!(Owned::from(rec.unwrap()), written[n]);
            n += 1;
        }
        assert_eq!(n, 260);
        assert!(matches!(
            r.seek(261),
            Err(JournalError::SeqOutOfRange { seq: 261, .. })
        ));
        assert!(r.next().is_none());
        r.seek(0).unwrap();
        assert_eq!(r.next().unwrap().unwrap().seq, 0);
    }
}

#[test]
fn reopen_continues_the_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let mut all = write_samples(dir.path(), small(512), 10);
    for round in 0..3u64 {
        let (mut w, report) = JournalWriter::open(dir.path(), small(512)).unwrap();
        assert!(report.is_clean(), "{report:?}");
        assert!(!report.created);
        let next = all.len() as u64;
        assert_eq!(report.next_seq, next);
        assert_eq!(report.last_seq, Some(next - 1));
        let more: Vec<Owned> = (next..next + 7).map(sample).collect();
        all.extend(append_all(&mut w, &more));
        if round == 1 {
            drop(w); // a plain drop also leaves a readable, continuable journal
        } else {
            w.close().unwrap();
        }
    }
    assert_eq!(read_all(dir.path()), all);
    assert!(verify(dir.path()).unwrap().is_clean());
}

#[test]
fn reopen_with_a_different_segment_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut all = write_samples(dir.path(), small(256), 20);
    let (mut w, report) = JournalWriter::open(dir.path(), small(4096)).unwrap();
    assert!(report.is_clean());
    let more: Vec<Owned> = (20..120).map(sample).collect();
    all.extend(append_all(&mut w, &more));
    w.close().unwrap();
    assert_eq!(read_all(dir.path()), all);
    assert!(verify(dir.path()).unwrap().is_clean());
}

#[test]
fn record_too_large_is_a_caller_error() {
    let dir = tempfile::tempdir().unwrap();
    let opts = small(256);
    let max = opts.max_payload_len() as usize;
    assert_eq!(max, 256 - 64 - 32);
    let (mut w, _) = JournalWriter::open(dir.path(), opts).unwrap();
    assert_eq!(w.append(1, 1, 1, b"first").unwrap(), 0);
    let err = w.append(1, 1, 1, &vec![7; max + 1]).unwrap_err();
    assert!(
        matches!(err, JournalError::RecordTooLarge { payload_len, .. } if payload_len == max + 1)
    );
    assert!(err.is_caller_mistake());
    // Nothing was appended; the largest record fits (in a fresh segment).
    assert_eq!(w.append(2, 2, 2, &vec![9; max]).unwrap(), 1);
    assert_eq!(w.append(3, 3, 3, b"").unwrap(), 2);
    w.close().unwrap();
    let got = read_all(dir.path());
    assert_eq!(got.len(), 3);
    assert_eq!(got[1].payload, vec![9; max]);
    assert_eq!(segment_files(dir.path()).len(), 3);
}

#[test]
fn empty_journal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j");
    let (w, report) = JournalWriter::open(&path, JournalOptions::default()).unwrap();
    assert!(report.created && report.is_clean());
    assert_eq!((report.last_seq, report.next_seq), (None, 0));
    w.close().unwrap();
    assert!(read_all(&path).is_empty());
    let v = verify(&path).unwrap();
    assert!(v.is_clean());
    assert_eq!((v.records, v.last_seq), (0, None));
    // Reopen an empty journal: still empty, starts at 0.
    let (w, report) = JournalWriter::open(&path, JournalOptions::default()).unwrap();
    assert!(!report.created && report.is_clean());
    assert_eq!((report.last_seq, report.next_seq), (None, 0));
    drop(w);
    // A directory without segments reads as empty; seeking anywhere is out of range.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(read_all(&empty).is_empty());
    assert!(verify(&empty).unwrap().is_clean());
    assert!(matches!(
        JournalReader::open_from(&empty, 0),
        Err(JournalError::SeqOutOfRange { .. })
    ));
    // A missing directory is an I/O error naming the path.
    let err = JournalReader::open(dir.path().join("missing")).unwrap_err();
    assert!(matches!(err, JournalError::Io { .. }));
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn bad_options_and_second_writer_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bad = JournalOptions {
        segment_size: 100,
        ..Default::default()
    };
    let err = JournalWriter::open(dir.path(), bad).unwrap_err();
    assert!(matches!(err, JournalError::InvalidOptions { .. }) && err.is_caller_mistake());
    let (w, _) = JournalWriter::open(dir.path(), small(1024)).unwrap();
    assert!(matches!(
        JournalWriter::open(dir.path(), small(1024)),
        Err(JournalError::Locked { .. })
    ));
    drop(w);
    assert!(JournalWriter::open(dir.path(), small(1024)).is_ok());
}

#[test]
fn pretouch_keeps_a_window_and_prepares_the_next_segment() {
    let dir = tempfile::tempdir().unwrap();
    let opts = JournalOptions {
        segment_size: 64 * 1024,
        pretouch_bytes: 16 * 1024,
        auto_pretouch: false,
    };
    let (mut w, _) = JournalWriter::open(dir.path(), opts).unwrap();
    assert!(w.pretouched_ahead() >= 16 * 1024 - 64);
    let spare = dir.path().join("next.seg.tmp");
    assert!(!spare.exists());
    let payload = [5u8; 1000];
    // Fill most of the first segment; the window then spills into a pre-created spare.
    for _ in 0..55 {
        w.append(0, 0, 0, &payload).unwrap();
    }
    w.pretouch().unwrap();
    assert!(w.pretouched_ahead() >= 16 * 1024);
    assert!(spare.exists());
    for _ in 0..200 {
        w.append(0, 0, 0, &payload).unwrap();
        if w.pretouched_ahead() < 8 * 1024 {
            w.pretouch().unwrap();
        }
    }
    w.flush().unwrap();
    w.flush_async().unwrap();
    w.close().unwrap();
    assert!(!spare.exists());
    assert_eq!(read_all(dir.path()).len(), 255);
    assert_eq!(segment_files(dir.path()).len(), 5); // 63 records of 1032 bytes per segment
                                                    // Automatic pre-touching in `append` keeps the window filled without help.
    let (mut w, _) = JournalWriter::open(dir.path().join("auto"), small(64 * 1024)).unwrap();
    for i in 0..500 {
        w.append(i, 0, 0, &payload).unwrap();
        assert!(w.pretouched_ahead() >= 8192 - 4096 - 1032, "at {i}");
    }
}

#[test]
fn stray_files_are_ignored_and_a_stale_spare_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let written = write_samples(dir.path(), small(512), 12);
    let spare = dir.path().join("next.seg.tmp");
    std::fs::write(&spare, b"left by a crashed writer").unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
    std::fs::write(dir.path().join("12.seg"), b"not a segment name").unwrap();
    assert_eq!(read_all(dir.path()), written);
    assert!(verify(dir.path()).unwrap().is_clean());
    let (w, report) = JournalWriter::open(dir.path(), small(512)).unwrap();
    assert!(report.is_clean());
    // The stale file is gone; the writer may already have prepared a fresh spare.
    if spare.exists() {
        assert_eq!(std::fs::metadata(&spare).unwrap().len(), 512);
    }
    w.close().unwrap();
    assert!(!spare.exists());
    assert_eq!(read_all(dir.path()), written);
}
