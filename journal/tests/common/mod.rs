//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use tape_journal::{JournalOptions, JournalReader, JournalWriter, Record};

/// An owned copy of a record, for comparisons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    pub seq: u64,
    pub recv_ns: u64,
    pub source: u32,
    pub kind: u16,
    pub payload: Vec<u8>,
}

impl From<Record<'_>> for Owned {
    fn from(r: Record<'_>) -> Self {
        Owned {
            seq: r.seq,
            recv_ns: r.recv_ns,
            source: r.source,
            kind: r.kind,
            payload: r.payload.to_vec(),
        }
    }
}

/// Options with a small segment and a small pre-touch window.
pub fn small(segment_size: u64) -> JournalOptions {
    JournalOptions {
        segment_size,
        pretouch_bytes: 8192,
        ..Default::default()
    }
}

/// Deterministic record number `i` (payload length varies, content depends on `i`).
pub fn sample(i: u64) -> Owned {
    let len = (i * 37 % 90) as usize;
    Owned {
        seq: i,
        recv_ns: 1_700_000_000_000_000_000 + i * 1_000,
        source: (i % 5) as u32,
        kind: (i % 3) as u16,
        payload: (0..len).map(|b| (b as u64 * 31 + i) as u8).collect(),
    }
}

/// Appends records and returns them with the sequence numbers the writer assigned.
pub fn append_all(w: &mut JournalWriter, recs: &[Owned]) -> Vec<Owned> {
    recs.iter()
        .map(|r| {
            let seq = w
                .append(r.recv_ns, r.source, r.kind, &r.payload)
                .expect("append");
            Owned { seq, ..r.clone() }
        })
        .collect()
}

/// Writes `n` sample records into a new journal in `dir` and closes it.
pub fn write_samples(dir: &Path, opts: JournalOptions, n: u64) -> Vec<Owned> {
    let (mut w, report) = JournalWriter::open(dir, opts).expect("open writer");
    assert!(report.created);
    let recs: Vec<Owned> = (0..n).map(sample).collect();
    let written = append_all(&mut w, &recs);
    w.close().expect("close");
    assert_eq!(written, recs);
    written
}

/// Reads the whole journal; panics on any error.
pub fn read_all(dir: &Path) -> Vec<Owned> {
    let mut r = JournalReader::open(dir).expect("open reader");
    let mut out = Vec::new();
    while let Some(rec) = r.next() {
        out.push(rec.expect("read").into());
    }
    out
}

/// Reads until the end or the first error; returns the records and the error, if any.
pub fn read_until_error(dir: &Path) -> (Vec<Owned>, Option<tape_journal::JournalError>) {
    let mut r = match JournalReader::open(dir) {
        Ok(r) => r,
        Err(e) => return (Vec::new(), Some(e)),
    };
    let mut out = Vec::new();
    while let Some(rec) = r.next() {
        match rec {
            Ok(rec) => out.push(rec.into()),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

/// The segment files of a journal, in order.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}
