//! The journal's metadata file, `JOURNAL`: the sequence number the journal starts at and the
//! first sequence number of its newest segment.
//!
//! Segment files alone cannot tell a journal whose first (or last) segment was deleted from one
//! that really starts (or ends) there: every remaining segment is intact and continuous. The
//! metadata says where the journal is meant to start (0, unless it was deliberately trimmed)
//! and how far its segments reached, so `verify`, readers and the writer report a missing
//! segment at either end as damage.
//!
//! A journal written before this file existed has none: it is taken to start at 0, and a
//! missing newest segment cannot be detected in it. The writer adds the file on open.
//!
//! Format (text, one `key=value` per line after a version line):
//!
//! ```text
//! tape-journal-meta/1
//! first_seq=0
//! last_segment=184467
//! ```
//!
//! It is replaced atomically (write a temporary file, rename). The writer updates it after a
//! segment roll off the append path (in `pretouch` and `flush`), so after a crash it may name
//! an older segment than the newest on disk (never a newer one): that is not damage.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::dir::{segment_file_name, SegmentEntry};
use crate::error::{io_err, Damage, DamageKind, JournalError};

/// File name of the metadata file.
pub(crate) const META_NAME: &str = "JOURNAL";
const META_TMP: &str = "JOURNAL.tmp";
const MAGIC: &str = "tape-journal-meta/1";
/// Larger files are not metadata files this code wrote.
const MAX_META_BYTES: u64 = 4096;

/// What the metadata file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalMeta {
    /// The sequence number of the journal's first record (0 unless deliberately trimmed).
    pub first_seq: u64,
    /// The first sequence number of the newest segment the writer created.
    pub last_segment: u64,
}

impl JournalMeta {
    fn encode(&self) -> String {
        format!(
            "{MAGIC}\nfirst_seq={}\nlast_segment={}\n",
            self.first_seq, self.last_segment
        )
    }

    fn parse(text: &str) -> Option<JournalMeta> {
        let mut lines = text.lines();
        if lines.next()? != MAGIC {
            return None;
        }
        let (mut first_seq, mut last_segment) = (None, None);
        for line in lines.filter(|l| !l.is_empty()) {
            let (k, v) = line.split_once('=')?;
            let v: u64 = v.parse().ok()?;
            match k {
                "first_seq" => first_seq = Some(v),
                "last_segment" => last_segment = Some(v),
                _ => return None,
            }
        }
        let meta = JournalMeta {
            first_seq: first_seq?,
            last_segment: last_segment?,
        };
        (meta.last_segment >= meta.first_seq).then_some(meta)
    }
}

/// Path of the metadata file of `dir`.
pub(crate) fn meta_path(dir: &Path) -> PathBuf {
    dir.join(META_NAME)
}

/// Reads the metadata of the journal in `dir`; `Ok(None)` for a journal without the file.
///
/// # Errors
/// [`JournalError::Corrupt`] (kind [`DamageKind::BadMetadata`]) for a file that does not
/// parse; [`JournalError::Io`] for a file that cannot be read.
pub(crate) fn read_meta(dir: &Path) -> Result<Option<JournalMeta>, JournalError> {
    let path = meta_path(dir);
    let bad = || JournalError::Corrupt {
        damage: Damage {
            segment: path.clone(),
            offset: 0,
            seq: None,
            kind: DamageKind::BadMetadata,
        },
    };
    let len = match fs::metadata(&path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("stat journal metadata", &path)(e)),
    };
    if len > MAX_META_BYTES {
        return Err(bad());
    }
    let bytes = fs::read(&path).map_err(io_err("read journal metadata", &path))?;
    let text = std::str::from_utf8(&bytes).map_err(|_| bad())?;
    JournalMeta::parse(text).map(Some).ok_or_else(bad)
}

/// Replaces the metadata of the journal in `dir` (temporary file, then rename). With `sync`,
/// the new file's contents are synced before the rename (the caller syncs the directory).
pub(crate) fn write_meta(dir: &Path, meta: &JournalMeta, sync: bool) -> Result<(), JournalError> {
    let tmp = dir.join(META_TMP);
    let mut f = File::create(&tmp).map_err(io_err("create journal metadata", &tmp))?;
    f.write_all(meta.encode().as_bytes())
        .map_err(io_err("write journal metadata", &tmp))?;
    if sync {
        f.sync_all()
            .map_err(io_err("fsync journal metadata", &tmp))?;
    }
    drop(f);
    let path = meta_path(dir);
    fs::rename(&tmp, &path).map_err(io_err("rename journal metadata", &path))
}

/// Damage at the two ends of the journal in `dir` (segments `segs`, metadata `meta`): a
/// first segment that does not start where the journal starts, and a missing newest segment.
pub(crate) fn check_ends(
    dir: &Path,
    segs: &[SegmentEntry],
    meta: Option<JournalMeta>,
) -> (Option<Damage>, Option<Damage>) {
    let expected_first = meta.map_or(0, |m| m.first_seq);
    let start = match segs.first() {
        Some(first) if first.first_seq != expected_first => Some(Damage {
            segment: first.path.clone(),
            offset: 0,
            seq: Some(expected_first),
            kind: DamageKind::MissingStart {
                expected: expected_first,
                found: Some(first.first_seq),
            },
        }),
        _ => None,
    };
    let end = meta.and_then(|m| {
        let newest = segs.last().map(|s| s.first_seq);
        (newest.is_none_or(|n| n < m.last_segment)).then(|| Damage {
            segment: dir.join(segment_file_name(m.last_segment)),
            offset: 0,
            seq: Some(m.last_segment),
            kind: DamageKind::MissingEnd {
                expected_segment: m.last_segment,
                found_segment: newest,
            },
        })
    });
    (start, end)
}

/// [`read_meta`] for readers: a metadata file that does not parse is damage to report (at the
/// end, after the records that can be read), not a reason to refuse the records.
pub(crate) fn read_meta_or_damage(
    dir: &Path,
) -> Result<(Option<JournalMeta>, Option<Damage>), JournalError> {
    match read_meta(dir) {
        Ok(m) => Ok((m, None)),
        Err(JournalError::Corrupt { damage }) => Ok((None, Some(damage))),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_what_it_did_not_write() {
        let m = JournalMeta {
            first_seq: 7,
            last_segment: 1 << 40,
        };
        assert_eq!(JournalMeta::parse(&m.encode()), Some(m));
        for bad in [
            "",
            "tape-journal-meta/2\nfirst_seq=0\nlast_segment=0\n",
            "tape-journal-meta/1\nfirst_seq=0\n",
            "tape-journal-meta/1\nfirst_seq=x\nlast_segment=0\n",
            "tape-journal-meta/1\nfirst_seq=5\nlast_segment=4\n",
            "tape-journal-meta/1\nfirst_seq=0\nlast_segment=0\nextra=1\n",
        ] {
            assert_eq!(JournalMeta::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn absent_file_is_a_legacy_journal_and_junk_is_damage() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(read_meta(tmp.path()).unwrap(), None);
        let m = JournalMeta {
            first_seq: 0,
            last_segment: 12,
        };
        write_meta(tmp.path(), &m, true).unwrap();
        assert_eq!(read_meta(tmp.path()).unwrap(), Some(m));
        fs::write(meta_path(tmp.path()), b"\xff\xfe junk").unwrap();
        let err = read_meta(tmp.path()).unwrap_err();
        assert!(err.is_corruption(), "{err}");
    }
}
