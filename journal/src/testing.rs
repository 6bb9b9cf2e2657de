//! Helpers for the crate's unit tests: a journal of records of given lengths, and one of its
//! segments damaged in place.

use std::fs;
use std::path::Path;

use proptest::sample::Index;

use crate::{JournalOptions, JournalWriter};

/// Writes records with payloads of `lens` bytes (record `i`'s bytes depend on `i`) into a new
/// journal in `dir` with segments of `segment_size`; returns how many were appended (a
/// payload too large for a segment is refused).
pub(crate) fn write_journal(dir: &Path, segment_size: u64, lens: &[usize]) -> u64 {
    let opts = JournalOptions {
        segment_size,
        pretouch_bytes: 8192,
        ..Default::default()
    };
    let (mut w, _) = JournalWriter::open(dir, opts).expect("open a new journal");
    let mut n = 0;
    for (i, len) in lens.iter().enumerate() {
        let payload: Vec<u8> = (0..*len).map(|b| (b * 7 + i) as u8).collect();
        if w.append(i as u64, i as u32, i as u16, &payload).is_ok() {
            n += 1;
        }
    }
    w.close().expect("close the journal");
    n
}

/// Damages the segment file `which` picks in `dir`: `edits` set bytes, `cut` truncates the
/// file, then `grow` zero bytes are appended.
pub(crate) fn damage_a_segment(
    dir: &Path,
    which: Index,
    edits: &[(Index, u8)],
    cut: Option<Index>,
    grow: usize,
) {
    let mut segs: Vec<_> = fs::read_dir(dir)
        .expect("list the journal")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segs.sort();
    let victim = &segs[which.index(segs.len())];
    let mut bytes = fs::read(victim).expect("read the segment");
    for (at, b) in edits {
        let at = at.index(bytes.len());
        bytes[at] = *b;
    }
    if let Some(cut) = cut {
        bytes.truncate(cut.index(bytes.len() + 1));
    }
    bytes.extend(std::iter::repeat_n(0u8, grow));
    fs::write(victim, &bytes).expect("write the segment");
}
