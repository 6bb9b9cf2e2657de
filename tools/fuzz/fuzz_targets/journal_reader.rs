//! Arbitrary bytes as one to three segment files, read with `JournalReader` (from the start
//! and after seeks), checked with `verify`, then recovered by `JournalWriter::open`.
//!
//! Input layout: a flags byte (bits 0-1: segment count - 1, clamped to 3; bit 2: repair the
//! segment headers' magic, layout and CRC; bit 3: recompute the CRC of every record the
//! segment's record chain reaches), then each segment but the last as a little-endian `u16`
//! length and its bytes; the last takes the rest. A segment's file name comes from the
//! `first_seq` in its header bytes. The repairs let the fuzzer get past the checksums to the
//! record and recovery logic behind them.
//!
//! Properties: no panic, no endless read; every record the reader returns is byte for byte
//! in one of the files with a CRC that verifies; after recovery of a one-segment journal,
//! `verify` is clean and the reader returns exactly the kept records without error.
#![no_main]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tape_journal::{
    segment_file_name, verify, JournalOptions, JournalReader, JournalWriter, VerifyStatus,
    FORMAT_VERSION, RECORD_ALIGN, RECORD_HEADER_LEN, RECORD_MARKER, SEGMENT_HEADER_LEN,
    SEGMENT_MAGIC,
};

/// Reads stop here: a reader that keeps returning records past it is stuck.
const MAX_READS: usize = 10_000;

/// One scratch directory per process, emptied before each input.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = Path::new("/dev/shm");
        let base = if base.is_dir() {
            base.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let d = base.join(format!("tape-fuzz-journal-{}", std::process::id()));
        fs::create_dir_all(&d).expect("scratch dir");
        d
    })
}

fn split(data: &[u8]) -> (u8, Vec<&[u8]>) {
    let Some((&flags, mut rest)) = data.split_first() else {
        return (0, vec![&[][..]]);
    };
    let n = usize::from(flags & 3).min(2) + 1;
    let mut segs = Vec::with_capacity(n);
    for _ in 1..n {
        if rest.len() < 2 {
            break;
        }
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        segs.push(&rest[2..2 + len]);
        rest = &rest[2 + len..];
    }
    segs.push(rest);
    (flags, segs)
}

/// Rewrites a segment header into a valid one, keeping its `first_seq` and a segment size
/// near the one given (8-aligned, 128 B to 1 MiB).
fn repair_header(seg: &mut Vec<u8>) {
    if seg.len() < SEGMENT_HEADER_LEN {
        seg.resize(SEGMENT_HEADER_LEN, 0);
    }
    let b = &mut seg[..SEGMENT_HEADER_LEN];
    b[0..8].copy_from_slice(&SEGMENT_MAGIC);
    b[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    b[10..12].copy_from_slice(&(SEGMENT_HEADER_LEN as u16).to_le_bytes());
    b[12..16].copy_from_slice(&(RECORD_ALIGN as u32).to_le_bytes());
    let size = u64::from_le_bytes(b[24..32].try_into().unwrap()) % (1 << 20);
    let size = (size.max(128) + 7) & !7;
    b[24..32].copy_from_slice(&size.to_le_bytes());
    b[32..60].fill(0);
    let crc = crc32fast::hash(&b[..60]);
    b[60..64].copy_from_slice(&crc.to_le_bytes());
}

/// Follows the record chain from the first record, fixing each record's CRC.
fn repair_records(seg: &mut [u8]) {
    let mut pos = SEGMENT_HEADER_LEN;
    while pos + RECORD_HEADER_LEN <= seg.len() {
        let h = &seg[pos..pos + RECORD_HEADER_LEN];
        if u16::from_le_bytes([h[0], h[1]]) != RECORD_MARKER {
            return;
        }
        let len = u32::from_le_bytes(h[4..8].try_into().unwrap()) as usize;
        let end = pos + RECORD_HEADER_LEN + len;
        if end > seg.len() {
            return;
        }
        let mut c = crc32fast::Hasher::new();
        c.update(&seg[pos..pos + 28]);
        c.update(&seg[pos + RECORD_HEADER_LEN..end]);
        let crc = c.finalize();
        seg[pos + 28..pos + 32].copy_from_slice(&crc.to_le_bytes());
        pos = (end + RECORD_ALIGN - 1) & !(RECORD_ALIGN - 1);
    }
}

/// The on-disk bytes of a record with these fields and a correct CRC.
fn encoded(r: &tape_journal::Record<'_>) -> Vec<u8> {
    let mut b = Vec::with_capacity(RECORD_HEADER_LEN + r.payload.len());
    b.extend_from_slice(&RECORD_MARKER.to_le_bytes());
    b.extend_from_slice(&r.kind.to_le_bytes());
    b.extend_from_slice(&(r.payload.len() as u32).to_le_bytes());
    b.extend_from_slice(&r.seq.to_le_bytes());
    b.extend_from_slice(&r.recv_ns.to_le_bytes());
    b.extend_from_slice(&r.source.to_le_bytes());
    let mut c = crc32fast::Hasher::new();
    c.update(&b);
    c.update(r.payload);
    b.extend_from_slice(&c.finalize().to_le_bytes());
    b.extend_from_slice(r.payload);
    b
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Reads from the start; every record must be a verified record of one of `files`. Returns
/// how many were read and whether the read ended in an error.
fn read_all(dir: &Path, files: &[Vec<u8>]) -> (u64, bool) {
    let Ok(mut r) = JournalReader::open(dir) else {
        return (0, true);
    };
    let mut n = 0;
    for _ in 0..MAX_READS {
        match r.next() {
            Some(Ok(rec)) => {
                let want = encoded(&rec);
                assert!(
                    files.iter().any(|f| contains(f, &want)),
                    "record {} is not in the files with a valid CRC",
                    rec.seq
                );
                n += 1;
            }
            Some(Err(e)) => {
                assert!(!e.to_string().is_empty());
                return (n, true);
            }
            None => return (n, false),
        }
    }
    panic!("reader returned more than {MAX_READS} records");
}

fn clear(dir: &Path) {
    for e in fs::read_dir(dir).expect("scratch dir").flatten() {
        let _ = fs::remove_file(e.path());
    }
}

fuzz_target!(|data: &[u8]| {
    let dir = scratch();
    clear(dir);
    run(dir, data);
    // Only an empty directory is left behind when the process exits.
    clear(dir);
});

fn run(dir: &Path, data: &[u8]) {
    let (flags, segs) = split(data);
    let mut files = Vec::with_capacity(segs.len());
    for (i, seg) in segs.into_iter().enumerate() {
        let mut seg = seg.to_vec();
        if flags & 4 != 0 {
            repair_header(&mut seg);
        }
        if flags & 8 != 0 {
            repair_records(&mut seg);
        }
        let first_seq = if seg.len() >= 24 {
            u64::from_le_bytes(seg[16..24].try_into().unwrap())
        } else {
            i as u64
        };
        fs::write(dir.join(segment_file_name(first_seq)), &seg).expect("write segment");
        files.push(seg);
    }

    read_all(dir, &files);
    if let Ok(mut r) = JournalReader::open(dir) {
        for seq in [0, 1, 5, 17, u64::MAX] {
            if r.seek(seq).is_ok() {
                for _ in 0..MAX_READS {
                    match r.next() {
                        Some(Ok(rec)) => assert!(rec.seq >= seq),
                        _ => break,
                    }
                }
            }
        }
    }
    let _ = verify(dir);

    let opts = JournalOptions {
        segment_size: 1024,
        pretouch_bytes: 8192,
        ..Default::default()
    };
    let single = files.len() == 1;
    if let Ok((w, report)) = JournalWriter::open(dir, opts) {
        drop(w);
        if !single {
            // Recovery repairs the last segment only; damage in earlier ones stays.
            let _ = verify(dir);
            return;
        }
        let v = verify(dir).expect("verify after recovery");
        assert_eq!(v.status, VerifyStatus::Clean, "{v:?}");
        let files: Vec<Vec<u8>> = fs::read_dir(dir)
            .expect("scratch dir")
            .flatten()
            .map(|e| fs::read(e.path()).expect("read segment"))
            .collect();
        let (n, err) = read_all(dir, &files);
        assert!(!err, "read error after recovery");
        assert_eq!(n, report.kept_records);
    }
}
