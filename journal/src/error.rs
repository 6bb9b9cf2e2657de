//! Errors and damage descriptions.
//!
//! [`JournalError`] separates three families: I/O failures (which keep the path),
//! corruption found on disk ([`JournalError::Corrupt`], a peer or disk fault, carrying a
//! [`Damage`] with its location), and caller mistakes (bad options, a record too large, a
//! sequence number that is not in the journal).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// What is wrong with the bytes at a damaged location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DamageKind {
    /// The file is shorter than a segment header.
    ShortHeader {
        /// Length of the file in bytes.
        len: u64,
    },
    /// The segment header does not start with the segment magic.
    BadHeaderMagic,
    /// The segment header's CRC does not match its contents.
    HeaderChecksum {
        /// CRC stored in the header.
        stored: u32,
        /// CRC computed over the header.
        computed: u32,
    },
    /// The segment header has a format version this crate does not read.
    UnsupportedVersion {
        /// Version found in the header.
        version: u16,
    },
    /// The segment header's fixed layout fields (header length, alignment, reserved bytes)
    /// are not the expected values although its CRC is valid.
    BadHeaderLayout,
    /// The segment header declares an unusable segment size although its CRC is valid.
    BadSegmentSize {
        /// Segment size found in the header.
        segment_size: u64,
    },
    /// The header's first sequence number does not match the file name.
    NameMismatch {
        /// First sequence number encoded in the file name.
        name_seq: u64,
        /// First sequence number stored in the header.
        header_seq: u64,
    },
    /// The file is longer than the segment size its header declares.
    FileTooLong {
        /// Length of the file in bytes.
        len: u64,
        /// Segment size from the header.
        segment_size: u64,
    },
    /// The file is shorter than the segment size its header declares (a truncated file);
    /// reported at the end of the intact data.
    ShortFile {
        /// Length of the file in bytes.
        len: u64,
        /// Segment size from the header.
        segment_size: u64,
    },
    /// The file ends inside a record.
    Truncated {
        /// Length of the file in bytes.
        file_len: u64,
    },
    /// A record slot starts with a non-zero value that is not the record marker.
    BadMarker {
        /// The 16-bit value found where the marker belongs.
        found: u16,
    },
    /// A record's payload length runs past the end of the segment.
    LengthOutOfBounds {
        /// Payload length found in the record header.
        payload_len: u32,
    },
    /// A record's padding bytes are not zero.
    NonZeroPadding,
    /// A record's CRC does not match its header and payload.
    Checksum {
        /// CRC stored in the record.
        stored: u32,
        /// CRC computed over the record.
        computed: u32,
    },
    /// A record's sequence number breaks the contiguous sequence.
    SeqMismatch {
        /// The sequence number that should be there.
        expected: u64,
        /// The sequence number found.
        found: u64,
    },
    /// A segment's first sequence number does not continue the previous segment.
    SegmentSeqGap {
        /// The sequence number the previous segment ends before.
        expected: u64,
        /// The segment's first sequence number.
        found: u64,
    },
    /// Non-zero bytes follow the end of data (a zero record marker).
    NonZeroAfterEnd {
        /// Offset of the first non-zero byte.
        first_nonzero: u64,
    },
    /// The journal's first segment does not start where the journal starts (its metadata, or
    /// 0 for a journal without metadata): the first segment(s) are missing.
    MissingStart {
        /// Where the journal starts.
        expected: u64,
        /// The first sequence number of the first segment present (`None`: no segment).
        found: Option<u64>,
    },
    /// The newest segment the metadata names is not there: the last segment(s) are missing.
    MissingEnd {
        /// First sequence number of the newest segment, per the metadata.
        expected_segment: u64,
        /// First sequence number of the newest segment present (`None`: no segment).
        found_segment: Option<u64>,
    },
    /// The metadata file (`JOURNAL`) is not one this code wrote.
    BadMetadata,
}

impl DamageKind {
    /// Whether this kind of damage is what an interrupted write leaves behind (a torn write),
    /// as opposed to bytes that were written whole but are inconsistent, or lost to something
    /// else: segment files are created at their full size, so a file that is too short was
    /// truncated, not torn.
    pub fn is_tear_like(&self) -> bool {
        !matches!(
            self,
            DamageKind::UnsupportedVersion { .. }
                | DamageKind::BadHeaderLayout
                | DamageKind::BadSegmentSize { .. }
                | DamageKind::NameMismatch { .. }
                | DamageKind::FileTooLong { .. }
                | DamageKind::SeqMismatch { .. }
                | DamageKind::SegmentSeqGap { .. }
                | DamageKind::ShortHeader { .. }
                | DamageKind::ShortFile { .. }
                | DamageKind::Truncated { .. }
                | DamageKind::MissingStart { .. }
                | DamageKind::MissingEnd { .. }
                | DamageKind::BadMetadata
        )
    }
}

impl fmt::Display for DamageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DamageKind::ShortHeader { len } => {
                write!(f, "file of {len} bytes is shorter than a segment header")
            }
            DamageKind::BadHeaderMagic => f.write_str("bad segment magic"),
            DamageKind::HeaderChecksum { stored, computed } => write!(
                f,
                "segment header checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
            DamageKind::UnsupportedVersion { version } => {
                write!(f, "unsupported format version {version}")
            }
            DamageKind::BadHeaderLayout => f.write_str("bad segment header layout fields"),
            DamageKind::BadSegmentSize { segment_size } => {
                write!(f, "unusable segment size {segment_size}")
            }
            DamageKind::NameMismatch {
                name_seq,
                header_seq,
            } => write!(
                f,
                "file name says first seq {name_seq}, header says {header_seq}"
            ),
            DamageKind::FileTooLong { len, segment_size } => write!(
                f,
                "file is {len} bytes, longer than its segment size {segment_size}"
            ),
            DamageKind::ShortFile { len, segment_size } => write!(
                f,
                "file is {len} bytes, shorter than its segment size {segment_size}"
            ),
            DamageKind::Truncated { file_len } => {
                write!(f, "file ends at {file_len} inside a record")
            }
            DamageKind::BadMarker { found } => {
                write!(f, "bad record marker {found:#06x}")
            }
            DamageKind::LengthOutOfBounds { payload_len } => write!(
                f,
                "payload length {payload_len} runs past the end of the segment"
            ),
            DamageKind::NonZeroPadding => f.write_str("non-zero record padding"),
            DamageKind::Checksum { stored, computed } => write!(
                f,
                "record checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
            DamageKind::SeqMismatch { expected, found } => {
                write!(f, "sequence gap: expected seq {expected}, found {found}")
            }
            DamageKind::SegmentSeqGap { expected, found } => write!(
                f,
                "segment sequence gap: expected first seq {expected}, found {found}"
            ),
            DamageKind::NonZeroAfterEnd { first_nonzero } => write!(
                f,
                "non-zero bytes after the end of data (first at offset {first_nonzero})"
            ),
            DamageKind::MissingStart { expected, found } => match found {
                Some(found) => write!(
                    f,
                    "the journal starts at seq {expected} but its first segment starts at \
                     {found}: the segment(s) before it are missing"
                ),
                None => write!(
                    f,
                    "the journal starts at seq {expected} but has no segment file"
                ),
            },
            DamageKind::MissingEnd {
                expected_segment,
                found_segment,
            } => match found_segment {
                Some(found) => write!(
                    f,
                    "the newest segment (first seq {expected_segment}) is missing; the newest \
                     present starts at {found}"
                ),
                None => write!(
                    f,
                    "every segment is missing (the newest had first seq {expected_segment})"
                ),
            },
            DamageKind::BadMetadata => f.write_str("unreadable journal metadata file"),
        }
    }
}

/// A damaged location in a journal: which segment file, where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Path of the segment file.
    pub segment: PathBuf,
    /// Byte offset in the segment file where the damage starts (where the intact prefix of
    /// that segment ends).
    pub offset: u64,
    /// Sequence number expected at that location, when known.
    pub seq: Option<u64>,
    /// What is wrong.
    pub kind: DamageKind,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at offset {}", self.segment.display(), self.offset)?;
        if let Some(seq) = self.seq {
            write!(f, " (seq {seq})")?;
        }
        write!(f, ": {}", self.kind)
    }
}

/// Every error the journal returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// An I/O operation failed; `path` is the file or directory it was about.
    #[error("journal I/O error: {op} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. "open segment".
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The journal's bytes are damaged (a disk fault, a torn write or outside interference).
    #[error("journal corruption: {damage}")]
    Corrupt {
        /// Where and what.
        damage: Damage,
    },
    /// Caller mistake: the options are unusable.
    #[error("invalid journal options: {reason} (segment_size={segment_size})")]
    InvalidOptions {
        /// Which constraint is violated.
        reason: &'static str,
        /// The segment size that was given.
        segment_size: u64,
    },
    /// Caller mistake: the record cannot fit in an empty segment.
    #[error(
        "record too large: payload of {payload_len} bytes, at most {max_payload_len} fit in a \
         segment of {segment_size} bytes"
    )]
    RecordTooLarge {
        /// Length of the rejected payload.
        payload_len: usize,
        /// Largest payload a segment of this size holds.
        max_payload_len: u64,
        /// The configured segment size.
        segment_size: u64,
    },
    /// Caller mistake: the sequence number is not in the journal.
    #[error("sequence {seq} is not in journal {}", dir.display())]
    SeqOutOfRange {
        /// The requested sequence number.
        seq: u64,
        /// The journal directory.
        dir: PathBuf,
    },
    /// Damage an explicit repair cannot mend (e.g. missing first segments).
    #[error("journal damage that repair cannot mend: {damage}: {why}")]
    Unrepairable {
        /// The damage.
        damage: Damage,
        /// Why, and what to do instead.
        why: &'static str,
    },
    /// Another writer holds the journal's lock file.
    #[error("journal {} is locked by another writer", dir.display())]
    Locked {
        /// The journal directory.
        dir: PathBuf,
    },
}

impl JournalError {
    /// Whether this error reports damaged bytes on disk.
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            JournalError::Corrupt { .. } | JournalError::Unrepairable { .. }
        )
    }

    /// Whether this error is a caller mistake (bad options, oversized record, unknown seq).
    pub fn is_caller_mistake(&self) -> bool {
        matches!(
            self,
            JournalError::InvalidOptions { .. }
                | JournalError::RecordTooLarge { .. }
                | JournalError::SeqOutOfRange { .. }
        )
    }

    /// The damage, if this is a corruption error.
    pub fn damage(&self) -> Option<&Damage> {
        match self {
            JournalError::Corrupt { damage } => Some(damage),
            _ => None,
        }
    }

    pub(crate) fn corrupt(segment: &Path, offset: u64, seq: Option<u64>, kind: DamageKind) -> Self {
        JournalError::Corrupt {
            damage: Damage {
                segment: segment.to_path_buf(),
                offset,
                seq,
                kind,
            },
        }
    }
}

/// Builds a `map_err` adapter that attaches the operation and path to an I/O error.
pub(crate) fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> JournalError + 'a {
    move |source| JournalError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_context() {
        let e = JournalError::corrupt(
            Path::new("/j/00000000000000000005.seg"),
            128,
            Some(9),
            DamageKind::SeqMismatch {
                expected: 9,
                found: 11,
            },
        );
        assert_eq!(
            e.to_string(),
            "journal corruption: /j/00000000000000000005.seg at offset 128 (seq 9): \
             sequence gap: expected seq 9, found 11"
        );
        assert!(e.is_corruption() && !e.is_caller_mistake());
        let io = io_err("open segment", Path::new("/j/x.seg"))(io::ErrorKind::NotFound.into());
        assert!(io.to_string().contains("open segment /j/x.seg"));
    }
}
