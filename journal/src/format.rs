//! Byte layout of segment headers and records: encoding, decoding and validation.
//!
//! Everything here is a pure function of byte slices; no I/O. The layout is documented in
//! the crate docs (`lib.rs`); the constants below are the single source of truth for it.

use crate::error::DamageKind;

/// Magic bytes at the start of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"TAPEJSEG";
/// On-disk format version written into (and required in) every segment header.
pub const FORMAT_VERSION: u16 = 1;
/// Length of the segment header in bytes; the first record starts right after it.
pub const SEGMENT_HEADER_LEN: usize = 64;
/// Length of a record header in bytes.
pub const RECORD_HEADER_LEN: usize = 32;
/// Alignment of every record (offset and padded length) in bytes.
pub const RECORD_ALIGN: usize = 8;
/// Non-zero marker that starts every record: the bytes `b"TR"` (little-endian `0x5254`).
pub const RECORD_MARKER: u16 = u16::from_le_bytes(*b"TR");
/// Smallest accepted segment size in bytes.
pub const MIN_SEGMENT_SIZE: u64 = 128;
/// Largest accepted segment size in bytes (4 GiB): offsets and payload lengths fit in `u32`.
pub const MAX_SEGMENT_SIZE: u64 = 1 << 32;

/// Byte range of the CRC inside the segment header.
const SEG_CRC_AT: usize = 60;
/// Byte offset of the CRC inside a record header; the CRC covers the bytes before it.
const REC_CRC_AT: usize = 28;

/// Padded on-disk size of a record with `payload_len` payload bytes.
///
/// Computed in `u64` so that no payload length can overflow it.
pub(crate) const fn record_size(payload_len: u64) -> u64 {
    let raw = RECORD_HEADER_LEN as u64 + payload_len;
    (raw + (RECORD_ALIGN as u64 - 1)) & !(RECORD_ALIGN as u64 - 1)
}

/// Largest payload that fits in an empty segment of `segment_size` bytes (0 if none fits).
pub(crate) const fn max_payload_len(segment_size: u64) -> u64 {
    let capacity = segment_size.saturating_sub(SEGMENT_HEADER_LEN as u64);
    (capacity & !(RECORD_ALIGN as u64 - 1)).saturating_sub(RECORD_HEADER_LEN as u64)
}

/// Checks a segment size for use in a header or options: `None` if acceptable.
pub(crate) fn segment_size_problem(size: u64) -> Option<&'static str> {
    if size < MIN_SEGMENT_SIZE {
        Some("segment_size is below the minimum of 128 bytes")
    } else if size > MAX_SEGMENT_SIZE {
        Some("segment_size is above the maximum of 4 GiB")
    } else if !size.is_multiple_of(RECORD_ALIGN as u64) {
        Some("segment_size is not a multiple of 8")
    } else if usize::try_from(size).is_err() {
        Some("segment_size does not fit in this platform's address space")
    } else {
        None
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// The decoded fields of a segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    /// Sequence number of the first record in the segment.
    pub first_seq: u64,
    /// Total size of the segment file in bytes, header included.
    pub segment_size: u64,
}

impl SegmentHeader {
    /// Encodes the header, CRC included.
    pub(crate) fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut b = [0u8; SEGMENT_HEADER_LEN];
        b[0..8].copy_from_slice(&SEGMENT_MAGIC);
        b[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[10..12].copy_from_slice(&(SEGMENT_HEADER_LEN as u16).to_le_bytes());
        b[12..16].copy_from_slice(&(RECORD_ALIGN as u32).to_le_bytes());
        b[16..24].copy_from_slice(&self.first_seq.to_le_bytes());
        b[24..32].copy_from_slice(&self.segment_size.to_le_bytes());
        let crc = crc32fast::hash(&b[..SEG_CRC_AT]);
        b[SEG_CRC_AT..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and validates a header from the start of a segment file.
    ///
    /// Checks length, magic, CRC, version, the fixed layout fields and the segment size;
    /// it does not check `first_seq` against the file name (the caller knows the name).
    pub(crate) fn decode(file: &[u8]) -> Result<Self, DamageKind> {
        if file.len() < SEGMENT_HEADER_LEN {
            return Err(DamageKind::ShortHeader {
                len: file.len() as u64,
            });
        }
        let b = &file[..SEGMENT_HEADER_LEN];
        if b[0..8] != SEGMENT_MAGIC {
            return Err(DamageKind::BadHeaderMagic);
        }
        let stored = u32_at(b, SEG_CRC_AT);
        let computed = crc32fast::hash(&b[..SEG_CRC_AT]);
        if stored != computed {
            return Err(DamageKind::HeaderChecksum { stored, computed });
        }
        let version = u16_at(b, 8);
        if version != FORMAT_VERSION {
            return Err(DamageKind::UnsupportedVersion { version });
        }
        let layout_ok = u16_at(b, 10) as usize == SEGMENT_HEADER_LEN
            && u32_at(b, 12) as usize == RECORD_ALIGN
            && b[32..SEG_CRC_AT].iter().all(|&x| x == 0);
        if !layout_ok {
            return Err(DamageKind::BadHeaderLayout);
        }
        let segment_size = u64_at(b, 24);
        if segment_size_problem(segment_size).is_some() {
            return Err(DamageKind::BadSegmentSize { segment_size });
        }
        Ok(SegmentHeader {
            first_seq: u64_at(b, 16),
            segment_size,
        })
    }
}

/// The fields of one record, written by the writer's hot path without allocation.
pub(crate) struct RecordFields {
    pub seq: u64,
    pub recv_ns: u64,
    pub source: u32,
    pub kind: u16,
}

/// Writes a complete record (header, payload, zero padding) into `dst`.
///
/// `dst.len()` must be exactly `record_size(payload.len())`; the caller guarantees it.
pub(crate) fn write_record(dst: &mut [u8], f: &RecordFields, payload: &[u8]) {
    let (hdr, body) = dst.split_at_mut(RECORD_HEADER_LEN);
    hdr[0..2].copy_from_slice(&RECORD_MARKER.to_le_bytes());
    hdr[2..4].copy_from_slice(&f.kind.to_le_bytes());
    hdr[4..8].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    hdr[8..16].copy_from_slice(&f.seq.to_le_bytes());
    hdr[16..24].copy_from_slice(&f.recv_ns.to_le_bytes());
    hdr[24..28].copy_from_slice(&f.source.to_le_bytes());
    let (data, pad) = body.split_at_mut(payload.len());
    data.copy_from_slice(payload);
    pad.fill(0);
    let mut h = crc32fast::Hasher::new();
    h.update(&hdr[..REC_CRC_AT]);
    h.update(payload);
    hdr[REC_CRC_AT..].copy_from_slice(&h.finalize().to_le_bytes());
}

/// Where a valid record lies in its segment, and its header fields. Owns no borrow, so a
/// reader can advance its state before lending the payload out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordMeta {
    pub seq: u64,
    pub recv_ns: u64,
    pub source: u32,
    pub kind: u16,
    /// Offset of the first payload byte in the segment.
    pub payload_at: usize,
    /// Payload length in bytes.
    pub payload_len: usize,
    /// Offset of the next record (this one's padded end).
    pub next: usize,
}

impl RecordMeta {
    /// The payload byte range inside the segment.
    pub(crate) fn payload_range(&self) -> std::ops::Range<usize> {
        self.payload_at..self.payload_at + self.payload_len
    }
}

/// How thoroughly [`parse_record`] checks a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Marker, bounds, padding, CRC and (if given) the sequence number.
    Full,
    /// Marker, bounds and (if given) the sequence number: header bytes only, no payload read.
    HeaderOnly,
}

/// Result of parsing the bytes at one record position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// A valid record.
    Record(RecordMeta),
    /// A zero marker, or no room left for a record header: the candidate end of data. The
    /// caller decides whether the rest of the segment is zero (see [`first_nonzero`]).
    End,
    /// The bytes at this position are not a valid record.
    Damaged(DamageKind),
}

/// Parses the record at `pos` (8-aligned, `>= SEGMENT_HEADER_LEN`).
///
/// `area` holds the segment's bytes as present on disk; it may be shorter than `seg_end`
/// (the segment size from the header) when the file was truncated. Bytes beyond `area` are
/// missing, not zero. `expected_seq`, if given, must match the record's sequence number.
/// Never panics, whatever the bytes.
pub(crate) fn parse_record(
    area: &[u8],
    seg_end: usize,
    pos: usize,
    expected_seq: Option<u64>,
    check: Check,
) -> Parsed {
    if pos.saturating_add(RECORD_HEADER_LEN) > seg_end {
        return Parsed::End;
    }
    if pos >= area.len() {
        return Parsed::End;
    }
    if pos + RECORD_HEADER_LEN > area.len() {
        // The file ends inside this header slot. Zeros are the caller's end-of-data check.
        return if u16_at_lossy(area, pos) == 0 {
            Parsed::End
        } else {
            Parsed::Damaged(DamageKind::Truncated {
                file_len: area.len() as u64,
            })
        };
    }
    let h = &area[pos..pos + RECORD_HEADER_LEN];
    let marker = u16_at(h, 0);
    if marker == 0 {
        return Parsed::End;
    }
    if marker != RECORD_MARKER {
        return Parsed::Damaged(DamageKind::BadMarker { found: marker });
    }
    let payload_len = u32_at(h, 4);
    let total = record_size(u64::from(payload_len));
    if (pos as u64).saturating_add(total) > seg_end as u64 {
        return Parsed::Damaged(DamageKind::LengthOutOfBounds { payload_len });
    }
    // Fits in the segment, and the segment size fits in usize: no overflow below.
    let end = pos + total as usize;
    if end > area.len() {
        return Parsed::Damaged(DamageKind::Truncated {
            file_len: area.len() as u64,
        });
    }
    let payload_at = pos + RECORD_HEADER_LEN;
    let payload_end = payload_at + payload_len as usize;
    if check == Check::Full {
        if area[payload_end..end].iter().any(|&b| b != 0) {
            return Parsed::Damaged(DamageKind::NonZeroPadding);
        }
        let stored = u32_at(h, REC_CRC_AT);
        let mut hasher = crc_hasher();
        hasher.update(&h[..REC_CRC_AT]);
        hasher.update(&area[payload_at..payload_end]);
        let computed = hasher.finalize();
        if stored != computed {
            return Parsed::Damaged(DamageKind::Checksum { stored, computed });
        }
    }
    let seq = u64_at(h, 8);
    if let Some(expected) = expected_seq {
        if seq != expected {
            return Parsed::Damaged(DamageKind::SeqMismatch {
                expected,
                found: seq,
            });
        }
    }
    Parsed::Record(RecordMeta {
        seq,
        recv_ns: u64_at(h, 16),
        source: u32_at(h, 24),
        kind: u16_at(h, 2),
        payload_at,
        payload_len: payload_len as usize,
        next: end,
    })
}

/// A fresh CRC-32 hasher, as `crc32fast::Hasher::new()` gives: cloned from one made once, so
/// the CPU feature detection `new` runs (~22 of the ~295 instructions a replayed record's CRC
/// cost) is not repeated for every record. Same algorithm, same result.
#[inline]
fn crc_hasher() -> crc32fast::Hasher {
    static TEMPLATE: std::sync::OnceLock<crc32fast::Hasher> = std::sync::OnceLock::new();
    TEMPLATE.get_or_init(crc32fast::Hasher::new).clone()
}

/// Reads a little-endian u16 at `at`, treating bytes past the end of `b` as zero.
fn u16_at_lossy(b: &[u8], at: usize) -> u16 {
    let lo = b.get(at).copied().unwrap_or(0);
    let hi = b.get(at + 1).copied().unwrap_or(0);
    u16::from_le_bytes([lo, hi])
}

/// Zero bytes to compare chunks against: slice equality compiles to `memcmp`, which is fast
/// even in debug builds (segment tails are scanned in tests too).
static ZEROS: [u8; 4096] = [0; 4096];

fn is_zero(chunk: &[u8]) -> bool {
    chunk == &ZEROS[..chunk.len()]
}

/// Offset of the first non-zero byte of `b` at or after `from`, if any.
pub(crate) fn first_nonzero(b: &[u8], from: usize) -> Option<usize> {
    let tail = b.get(from..)?;
    let mut at = from;
    for chunk in tail.chunks(ZEROS.len()) {
        if !is_zero(chunk) {
            return chunk.iter().position(|&x| x != 0).map(|i| at + i);
        }
        at += chunk.len();
    }
    None
}

/// Offset of the last non-zero byte of `b` at or after `from`, if any.
pub(crate) fn last_nonzero(b: &[u8], from: usize) -> Option<usize> {
    let tail = b.get(from..)?;
    let mut end = b.len();
    for chunk in tail.rchunks(ZEROS.len()) {
        end -= chunk.len();
        if !is_zero(chunk) {
            return chunk.iter().rposition(|&x| x != 0).map(|i| end + i);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_sizes_are_aligned() {
        assert_eq!(record_size(0), 32);
        assert_eq!(record_size(1), 40);
        assert_eq!(record_size(8), 40);
        assert_eq!(record_size(9), 48);
        assert_eq!(record_size(u64::from(u32::MAX)) % 8, 0);
        assert_eq!(max_payload_len(128), 32);
        assert_eq!(record_size(max_payload_len(128)), 64);
    }

    #[test]
    fn header_round_trip_and_damage() {
        let h = SegmentHeader {
            first_seq: 42,
            segment_size: 4096,
        };
        let b = h.encode();
        assert_eq!(&b[..8], b"TAPEJSEG");
        assert_eq!(SegmentHeader::decode(&b), Ok(h));
        for i in 0..SEGMENT_HEADER_LEN {
            let mut d = b;
            d[i] ^= 0x01;
            assert!(SegmentHeader::decode(&d).is_err(), "flip at {i} undetected");
        }
        assert_eq!(
            SegmentHeader::decode(&b[..10]),
            Err(DamageKind::ShortHeader { len: 10 })
        );
    }

    #[test]
    fn record_literal_bytes() {
        let mut area = vec![0u8; 128];
        let f = RecordFields {
            seq: 7,
            recv_ns: 9,
            source: 3,
            kind: 2,
        };
        write_record(&mut area[64..104], &f, b"abc");
        assert_eq!(&area[64..72], &[b'T', b'R', 2, 0, 3, 0, 0, 0]);
        assert_eq!(area[72], 7);
        assert_eq!(&area[96..104], &[b'a', b'b', b'c', 0, 0, 0, 0, 0]);
        let Parsed::Record(m) = parse_record(&area, 128, 64, Some(7), Check::Full) else {
            panic!("not a record");
        };
        assert_eq!((m.seq, m.recv_ns, m.source, m.kind), (7, 9, 3, 2));
        assert_eq!(&area[m.payload_range()], b"abc");
        assert_eq!(m.next, 104);
        assert_eq!(
            parse_record(&area, 128, 104, Some(8), Check::Full),
            Parsed::End
        );
        assert_eq!(
            parse_record(&area, 128, 64, Some(8), Check::Full),
            Parsed::Damaged(DamageKind::SeqMismatch {
                expected: 8,
                found: 7
            })
        );
    }

    #[test]
    fn nonzero_search() {
        let mut b = vec![0u8; 1000];
        assert_eq!(first_nonzero(&b, 0), None);
        assert_eq!(last_nonzero(&b, 0), None);
        b[300] = 1;
        b[700] = 1;
        assert_eq!(first_nonzero(&b, 0), Some(300));
        assert_eq!(first_nonzero(&b, 301), Some(700));
        assert_eq!(last_nonzero(&b, 0), Some(700));
        assert_eq!(last_nonzero(&b, 701), None);
        assert_eq!(first_nonzero(&b, 5000), None);
    }
}
