//! Sequential reading of a journal across segments, with seeking by sequence number.

use std::path::{Path, PathBuf};

use crate::dir::{list_segments, SegmentEntry};
use crate::error::{Damage, DamageKind, JournalError};
use crate::format::{first_nonzero, parse_record, Check, Parsed, RecordMeta, SEGMENT_HEADER_LEN};
use crate::index::SparseIndex;
use crate::meta::{check_ends, read_meta_or_damage};
use crate::scan::check_header;
use crate::segment::ReadMap;

/// One journal record, borrowed from the reader's memory map (no copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Sequence number.
    pub seq: u64,
    /// Receive timestamp in nanoseconds, as given to `append`.
    pub recv_ns: u64,
    /// Source / stream id.
    pub source: u32,
    /// Record kind.
    pub kind: u16,
    /// The raw payload bytes.
    pub payload: &'a [u8],
}

/// The segment currently mapped by the reader.
#[derive(Debug)]
struct OpenSegment {
    map: ReadMap,
    /// Segment size from the header.
    seg_size: usize,
    /// The bytes that exist: the file, cut at the segment size.
    area_len: usize,
}

impl OpenSegment {
    fn area(&self) -> &[u8] {
        &self.map.bytes()[..self.area_len]
    }
}

/// Reads the records of a journal in sequence order, across segments.
///
/// Every record is validated (marker, bounds, padding, CRC, contiguous sequence numbers)
/// before it is returned; any damage is returned once as [`JournalError::Corrupt`], after
/// which the reader yields `None` until it is [`seek`](Self::seek)ed. A journal that was not
/// recovered after a crash therefore ends with an error at its torn tail; open a
/// [`JournalWriter`](crate::JournalWriter) on it first, or use [`verify()`](crate::verify()) to
/// tell a torn tail from corruption in the middle. Reading from the start, a journal whose
/// first segment is missing fails before its first record; one whose newest segment is
/// missing (per its metadata) fails after its last.
///
/// The reader never panics, whatever the bytes in the files.
///
/// # Contract
///
/// The journal must not be written (or recovered) while a reader has it open: see the
/// `segment` module's safety notes.
#[derive(Debug)]
pub struct JournalReader {
    dir: PathBuf,
    segments: Vec<SegmentEntry>,
    indexes: Vec<Option<SparseIndex>>,
    /// Index into `segments` of the segment being read (or to open next).
    seg_idx: usize,
    cur: Option<OpenSegment>,
    pos: usize,
    /// Sequence number of the next record; `None` until the first segment is opened.
    next_seq: Option<u64>,
    done: bool,
    /// The journal does not start where it should (a missing first segment): reported instead
    /// of the first record when reading from the start.
    start_damage: Option<Damage>,
    /// A missing newest segment or unreadable metadata: reported once after the last record.
    end_damage: Option<Damage>,
}

impl JournalReader {
    /// Opens the journal in `dir` for reading from its first record.
    ///
    /// # Errors
    ///
    /// [`JournalError::Io`] if the directory cannot be listed.
    pub fn open(dir: impl AsRef<Path>) -> Result<JournalReader, JournalError> {
        let dir = dir.as_ref();
        let segments = list_segments(dir)?;
        let (meta, bad_meta) = read_meta_or_damage(dir)?;
        let (start_damage, end_damage) = check_ends(dir, &segments, meta);
        Ok(JournalReader {
            start_damage,
            end_damage: end_damage.or(bad_meta),
            dir: dir.to_path_buf(),
            indexes: vec![None; segments.len()],
            segments,
            seg_idx: 0,
            cur: None,
            pos: SEGMENT_HEADER_LEN,
            next_seq: None,
            done: false,
        })
    }

    /// Opens the journal in `dir` positioned at sequence number `seq`.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open) and [`seek`](Self::seek).
    pub fn open_from(dir: impl AsRef<Path>, seq: u64) -> Result<JournalReader, JournalError> {
        let mut r = Self::open(dir)?;
        r.seek(seq)?;
        Ok(r)
    }

    /// Positions the reader so that the next record returned has sequence number `seq`.
    /// `seq` may be one past the last record (the reader is then at the end).
    ///
    /// Finds the segment by binary search over the first sequence numbers, then the record
    /// through the segment's sparse index (built on first use by walking record headers
    /// without reading payloads), then walks at most one index stride of headers.
    ///
    /// # Errors
    ///
    /// [`JournalError::SeqOutOfRange`] if `seq` is not in the journal,
    /// [`JournalError::Corrupt`] if damage prevents reaching it, [`JournalError::Io`].
    pub fn seek(&mut self, seq: u64) -> Result<(), JournalError> {
        self.cur = None;
        self.done = true;
        let i = self.segments.partition_point(|s| s.first_seq <= seq);
        if i == 0 {
            return Err(self.out_of_range(seq));
        }
        self.open_segment(i - 1, None)?;
        let Some(cur) = self.cur.as_ref() else {
            return Err(self.out_of_range(seq));
        };
        let entry = &self.segments[i - 1];
        let (mut next, mut pos) = self.indexes[i - 1]
            .get_or_insert_with(|| SparseIndex::build(cur.area(), cur.seg_size, entry.first_seq))
            .floor(seq);
        while next < seq {
            match parse_record(cur.area(), cur.seg_size, pos, Some(next), Check::HeaderOnly) {
                Parsed::Record(m) => {
                    pos = m.next;
                    next = next.wrapping_add(1);
                }
                Parsed::End => {
                    return Err(match first_nonzero(cur.area(), pos) {
                        Some(nz) => JournalError::corrupt(
                            &entry.path,
                            pos as u64,
                            Some(next),
                            DamageKind::NonZeroAfterEnd {
                                first_nonzero: nz as u64,
                            },
                        ),
                        None => self.out_of_range(seq),
                    });
                }
                Parsed::Damaged(kind) => {
                    return Err(JournalError::corrupt(
                        &entry.path,
                        pos as u64,
                        Some(next),
                        kind,
                    ));
                }
            }
        }
        self.pos = pos;
        self.next_seq = Some(next);
        self.done = false;
        Ok(())
    }

    fn out_of_range(&self, seq: u64) -> JournalError {
        JournalError::SeqOutOfRange {
            seq,
            dir: self.dir.clone(),
        }
    }

    /// Returns the next record, borrowed from the map, or `None` at the end of the journal.
    ///
    /// # Errors
    ///
    /// `Some(Err(_))` once for damage ([`JournalError::Corrupt`]) or an I/O failure; the
    /// reader then returns `None`.
    #[allow(clippy::should_implement_trait)] // lending: the record borrows the reader
    pub fn next(&mut self) -> Option<Result<Record<'_>, JournalError>> {
        match self.advance() {
            Ok(Some(m)) => {
                let cur = self.cur.as_ref()?;
                Some(Ok(Record {
                    seq: m.seq,
                    recv_ns: m.recv_ns,
                    source: m.source,
                    kind: m.kind,
                    payload: &cur.area()[m.payload_range()],
                }))
            }
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                self.cur = None;
                Some(Err(e))
            }
        }
    }

    /// Sequence number of the record `next` would return, once known.
    pub fn next_seq(&self) -> Option<u64> {
        self.next_seq
    }

    /// Moves to the next valid record and returns where it is, opening segments as needed.
    fn advance(&mut self) -> Result<Option<RecordMeta>, JournalError> {
        loop {
            if self.done {
                return Ok(None);
            }
            if self.cur.is_none() {
                if self.next_seq.is_none() {
                    if let Some(damage) = self.start_damage.clone() {
                        return Err(JournalError::Corrupt { damage });
                    }
                }
                if self.seg_idx >= self.segments.len() {
                    self.done = true;
                    return match self.end_damage.take() {
                        Some(damage) => Err(JournalError::Corrupt { damage }),
                        None => Ok(None),
                    };
                }
                self.open_segment(self.seg_idx, self.next_seq)?;
            }
            let Some(cur) = self.cur.as_ref() else {
                return Ok(None);
            };
            let path = &self.segments[self.seg_idx].path;
            let expected = self.next_seq;
            match parse_record(cur.area(), cur.seg_size, self.pos, expected, Check::Full) {
                Parsed::Record(m) => {
                    self.pos = m.next;
                    self.next_seq = Some(m.seq.wrapping_add(1));
                    return Ok(Some(m));
                }
                Parsed::End => {
                    if let Some(nz) = first_nonzero(cur.area(), self.pos) {
                        let kind = DamageKind::NonZeroAfterEnd {
                            first_nonzero: nz as u64,
                        };
                        return Err(JournalError::corrupt(path, self.pos as u64, expected, kind));
                    }
                    let file_len = cur.map.bytes().len();
                    if file_len > cur.seg_size {
                        // Bytes past the segment's size are not the writer's: the file was
                        // changed by something else, and the reader says so.
                        let kind = DamageKind::FileTooLong {
                            len: file_len as u64,
                            segment_size: cur.seg_size as u64,
                        };
                        let at = cur.seg_size as u64;
                        return Err(JournalError::corrupt(path, at, expected, kind));
                    }
                    self.cur = None;
                    self.seg_idx += 1;
                }
                Parsed::Damaged(kind) => {
                    return Err(JournalError::corrupt(path, self.pos as u64, expected, kind));
                }
            }
        }
    }

    /// Maps segment `i` and checks its header; `expected` is the first sequence number it
    /// must have to continue the previous segment.
    fn open_segment(&mut self, i: usize, expected: Option<u64>) -> Result<(), JournalError> {
        let entry = &self.segments[i];
        let map = ReadMap::open(&entry.path)?;
        let header = check_header(map.bytes(), entry.first_seq)
            .map_err(|kind| JournalError::corrupt(&entry.path, 0, expected, kind))?;
        if let Some(exp) = expected.filter(|&e| e != header.first_seq) {
            let kind = DamageKind::SegmentSeqGap {
                expected: exp,
                found: header.first_seq,
            };
            return Err(JournalError::corrupt(&entry.path, 0, Some(exp), kind));
        }
        let seg_size = header.segment_size as usize;
        self.cur = Some(OpenSegment {
            area_len: map.bytes().len().min(seg_size),
            map,
            seg_size,
        });
        self.seg_idx = i;
        self.pos = SEGMENT_HEADER_LEN;
        self.next_seq = Some(header.first_seq);
        Ok(())
    }
}
