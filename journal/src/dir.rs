//! The journal directory: segment file names and listing.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::error::{io_err, JournalError};

/// Extension of segment files.
const SEGMENT_EXT: &str = ".seg";
/// Number of decimal digits in a segment file name (enough for any `u64`).
const NAME_DIGITS: usize = 20;
/// Name of the pre-created next segment while it is not yet part of the journal.
pub(crate) const SPARE_NAME: &str = "next.seg.tmp";
/// Name of the writer's lock file.
pub(crate) const LOCK_NAME: &str = "LOCK";

/// File name of the segment whose first record has sequence number `first_seq`.
///
/// Zero-padded to 20 digits so that lexical order is sequence order.
pub fn segment_file_name(first_seq: u64) -> String {
    format!("{first_seq:020}{SEGMENT_EXT}")
}

/// The first sequence number encoded in a segment file name, or `None` if `name` is not a
/// segment file name (exactly 20 ASCII digits followed by `.seg`).
pub(crate) fn parse_segment_name(name: &OsStr) -> Option<u64> {
    let name = name.to_str()?;
    let digits = name.strip_suffix(SEGMENT_EXT)?;
    if digits.len() != NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A segment file found in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentEntry {
    /// Full path of the file.
    pub path: PathBuf,
    /// First sequence number, from the file name.
    pub first_seq: u64,
}

/// Lists the segment files of `dir`, ordered by first sequence number. Other files are
/// ignored.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<SegmentEntry>, JournalError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("read journal directory", dir))? {
        let entry = entry.map_err(io_err("read journal directory", dir))?;
        if let Some(first_seq) = parse_segment_name(&entry.file_name()) {
            out.push(SegmentEntry {
                path: entry.path(),
                first_seq,
            });
        }
    }
    out.sort_by_key(|e| e.first_seq);
    Ok(out)
}

/// Takes the exclusive lock on the directory's lock file.
pub(crate) fn lock_dir(dir: &Path) -> Result<File, JournalError> {
    let path = dir.join(LOCK_NAME);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_err("open lock file", &path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(JournalError::Locked {
            dir: dir.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(io_err("lock journal directory", &path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort() {
        assert_eq!(segment_file_name(0), "00000000000000000000.seg");
        assert_eq!(segment_file_name(u64::MAX), "18446744073709551615.seg");
        assert!(segment_file_name(9) < segment_file_name(10));
        for seq in [0, 1, 12345, u64::MAX] {
            let name = segment_file_name(seq);
            assert_eq!(parse_segment_name(OsStr::new(&name)), Some(seq));
        }
        for bad in [
            "0.seg",
            "0000000000000000000a.seg",
            "00000000000000000000.seg.tmp",
            "99999999999999999999.seg",
            SPARE_NAME,
            LOCK_NAME,
        ] {
            assert_eq!(parse_segment_name(OsStr::new(bad)), None, "{bad}");
        }
    }
}
