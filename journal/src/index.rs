//! Sparse per-segment index from sequence number to record offset.

use crate::format::{parse_record, Check, Parsed, SEGMENT_HEADER_LEN};

/// One index entry every this many records.
pub(crate) const INDEX_STRIDE: u64 = 64;

/// Every [`INDEX_STRIDE`]-th record's sequence number and offset in one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SparseIndex {
    /// `(seq, offset)`, ascending; the first entry is the segment's first record slot.
    entries: Vec<(u64, usize)>,
}

impl SparseIndex {
    /// Builds the index by walking record headers (marker, bounds, sequence; no payload or
    /// CRC reads) from the first record until the end of data or the first bad header.
    pub(crate) fn build(area: &[u8], seg_size: usize, first_seq: u64) -> SparseIndex {
        let mut entries = vec![(first_seq, SEGMENT_HEADER_LEN)];
        let mut pos = SEGMENT_HEADER_LEN;
        let mut seq = first_seq;
        let mut n: u64 = 0;
        while let Parsed::Record(m) =
            parse_record(area, seg_size, pos, Some(seq), Check::HeaderOnly)
        {
            pos = m.next;
            seq = seq.wrapping_add(1);
            n += 1;
            if n.is_multiple_of(INDEX_STRIDE) {
                entries.push((seq, pos));
            }
        }
        SparseIndex { entries }
    }

    /// The entry with the largest sequence number `<= seq` (the first entry if none is).
    pub(crate) fn floor(&self, seq: u64) -> (u64, usize) {
        let i = self.entries.partition_point(|&(s, _)| s <= seq);
        self.entries[i.saturating_sub(1)]
    }

    /// Number of entries.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{record_size, write_record, RecordFields, SegmentHeader};

    #[test]
    fn floor_finds_the_stride_entry() {
        let size = 64 + 200 * 40 + 64;
        let mut seg = vec![0u8; size];
        seg[..64].copy_from_slice(
            &SegmentHeader {
                first_seq: 1000,
                segment_size: size as u64,
            }
            .encode(),
        );
        for i in 0..200u64 {
            let at = 64 + i as usize * 40;
            let f = RecordFields {
                seq: 1000 + i,
                recv_ns: 0,
                source: 0,
                kind: 0,
            };
            write_record(&mut seg[at..at + record_size(5) as usize], &f, b"hello");
        }
        let idx = SparseIndex::build(&seg, size, 1000);
        assert_eq!(idx.len(), 1 + 200 / 64);
        assert_eq!(idx.floor(0), (1000, 64));
        assert_eq!(idx.floor(1063), (1000, 64));
        assert_eq!(idx.floor(1064), (1064, 64 + 64 * 40));
        assert_eq!(idx.floor(1199), (1192, 64 + 192 * 40));
        assert_eq!(idx.floor(u64::MAX), (1192, 64 + 192 * 40));
    }
}
