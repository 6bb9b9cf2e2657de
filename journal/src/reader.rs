//! Sequential reading of a journal across segments, with seeking by sequence number.

use std::path::{Path, PathBuf};

use crate::dir::{list_segments, SegmentEntry};
use crate::error::{Damage, DamageKind, JournalError};
use crate::format::{first_nonzero, parse_record, Check, Parsed, RecordMeta, SEGMENT_HEADER_LEN};
use crate::index::SparseIndex;
use crate::meta::{check_ends, read_meta_or_damage};
use crate::scan::check_header;
use crate::segment::{ReadMap, SegmentWindow};

/// One journal record, borrowed from the reader's buffer (no copy).
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

/// The segment the reader is in; its bytes are in the reader's [`SegmentWindow`].
#[derive(Debug, Clone, Copy)]
struct OpenSegment {
    /// Segment size from the header.
    seg_size: usize,
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
    /// The current segment's bytes, a window at a time (one buffer for every segment).
    win: SegmentWindow,
    /// File offset of the next record in the current segment.
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
        Self::open_with(dir.as_ref(), SegmentWindow::default())
    }

    fn open_with(dir: &Path, win: SegmentWindow) -> Result<JournalReader, JournalError> {
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
            win,
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
        let Some(cur) = self.cur else {
            return Err(self.out_of_range(seq));
        };
        let entry = &self.segments[i - 1];
        // Seeking reads the whole segment once, to index it and to walk to `seq`; reading on
        // from there goes through the window.
        let map = ReadMap::open(&entry.path)?;
        let area = &map.bytes()[..map.bytes().len().min(cur.seg_size)];
        let (mut next, mut pos) = self.indexes[i - 1]
            .get_or_insert_with(|| SparseIndex::build(area, cur.seg_size, entry.first_seq))
            .floor(seq);
        while next < seq {
            match parse_record(area, cur.seg_size, pos, Some(next), Check::HeaderOnly) {
                Parsed::Record(m) => {
                    pos = m.next;
                    next = next.wrapping_add(1);
                }
                Parsed::End => {
                    return Err(match first_nonzero(area, pos) {
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
                // `advance` left the record in the window.
                Some(Ok(Record {
                    seq: m.seq,
                    recv_ns: m.recv_ns,
                    source: m.source,
                    kind: m.kind,
                    payload: self.win.get(m.payload_range())?,
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
            let Some(cur) = self.cur else {
                return Ok(None);
            };
            let path = &self.segments[self.seg_idx].path;
            let expected = self.next_seq;
            let pos = self.pos;
            match self.win.parse(pos, cur.seg_size, expected, path)? {
                Parsed::Record(m) => {
                    self.pos = m.next;
                    self.next_seq = Some(m.seq.wrapping_add(1));
                    return Ok(Some(m));
                }
                Parsed::End => {
                    let area_end = self.win.len().min(cur.seg_size);
                    if let Some(nz) = self.win.nonzero_from(pos, area_end, path)? {
                        // A journal still being written (replay on demand plays today's) may
                        // have grown since the window was read: look at `pos` again before
                        // calling the bytes after the end damage.
                        if self.win.grew_at(pos, cur.seg_size, path)? {
                            continue;
                        }
                        let kind = DamageKind::NonZeroAfterEnd {
                            first_nonzero: nz as u64,
                        };
                        return Err(JournalError::corrupt(path, pos as u64, expected, kind));
                    }
                    let file_len = self.win.len();
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
                    return Err(JournalError::corrupt(path, pos as u64, expected, kind));
                }
            }
        }
    }

    /// Opens segment `i` and checks its header; `expected` is the first sequence number it
    /// must have to continue the previous segment.
    fn open_segment(&mut self, i: usize, expected: Option<u64>) -> Result<(), JournalError> {
        let entry = &self.segments[i];
        self.win.open(&entry.path)?;
        self.win.cover(0, SEGMENT_HEADER_LEN, false, &entry.path)?;
        let header = check_header(self.win.bytes(usize::MAX), entry.first_seq)
            .map_err(|kind| JournalError::corrupt(&entry.path, 0, expected, kind))?;
        if let Some(exp) = expected.filter(|&e| e != header.first_seq) {
            let kind = DamageKind::SegmentSeqGap {
                expected: exp,
                found: header.first_seq,
            };
            return Err(JournalError::corrupt(&entry.path, 0, Some(exp), kind));
        }
        let seg_size = header.segment_size as usize;
        self.cur = Some(OpenSegment { seg_size });
        self.seg_idx = i;
        self.pos = SEGMENT_HEADER_LEN;
        self.next_seq = Some(header.first_seq);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The window is an implementation detail: reading through windows of any size, records
    //! straddling them, must give exactly what reading each file whole gives, damage included.

    use std::path::Path;

    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::{JournalReader, SegmentWindow};
    use crate::testing::{damage_a_segment, write_journal};
    use crate::{JournalOptions, JournalWriter};

    /// A record's fields and payload, owned.
    type Owned = (u64, u64, u32, u16, Vec<u8>);

    /// Every record (owned) up to the end or the first error, and the error's text.
    fn read(dir: &Path, step: usize, from: Option<u64>) -> (Vec<Owned>, String) {
        let mut r = match JournalReader::open_with(dir, SegmentWindow::with_step(step)) {
            Ok(r) => r,
            Err(e) => return (Vec::new(), format!("open: {e}")),
        };
        if let Some(seq) = from {
            if let Err(e) = r.seek(seq) {
                return (Vec::new(), format!("seek: {e}"));
            }
        }
        let mut got = Vec::new();
        // Bounded: a reader that stops making progress fails the comparison.
        for _ in 0..10_000 {
            match r.next() {
                Some(Ok(rec)) => {
                    got.push((
                        rec.seq,
                        rec.recv_ns,
                        rec.source,
                        rec.kind,
                        rec.payload.to_vec(),
                    ));
                }
                Some(Err(e)) => return (got, e.to_string()),
                None => return (got, String::new()),
            }
        }
        (got, "no end".into())
    }

    /// Replay on demand may play today's journal while the node appends to it. A reader whose
    /// window went stale (it holds zeros where records have since been written, and fresh
    /// bytes of them after) must read the new records, not report damage.
    #[test]
    fn records_appended_behind_a_stale_window_are_read_not_damage() {
        let tmp = tempfile::tempdir().unwrap();
        let opts = JournalOptions {
            segment_size: 1 << 16,
            pretouch_bytes: 8192,
            ..Default::default()
        };
        let (mut w, _) = JournalWriter::open(tmp.path(), opts).unwrap();
        for i in 0..3u64 {
            w.append(i, 0, 0, b"small").unwrap();
        }
        w.flush().unwrap();
        let mut r = JournalReader::open_with(tmp.path(), SegmentWindow::with_step(256)).unwrap();
        for i in 0..3u64 {
            assert_eq!(r.next().unwrap().unwrap().seq, i);
        }
        // Written after the window read its zeros, and reaching past the window.
        w.append(3, 0, 0, &[7u8; 1000]).unwrap();
        w.append(4, 0, 0, b"after").unwrap();
        w.flush().unwrap();
        let rec = r.next().unwrap().unwrap();
        assert_eq!((rec.seq, rec.payload.len()), (3, 1000));
        assert_eq!(r.next().unwrap().unwrap().payload, b"after");
        assert!(r.next().is_none());
    }

    /// A segment whose unwritten tail is a hole (a sparse copy, as `cp` or a checkout may
    /// make): the reader checks that tail without reading it, and still finds a byte written
    /// after the hole.
    #[test]
    fn a_hole_after_the_records_is_zeros_not_read() {
        use std::os::unix::fs::{FileExt, MetadataExt};

        let tmp = tempfile::tempdir().unwrap();
        let seg_size = 1u64 << 20;
        let n = write_journal(tmp.path(), seg_size, &[100, 300, 50]);
        assert_eq!(n, 3);
        let seg = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "seg"))
            .unwrap();
        // The records and the page they end in, then a hole to the segment's size.
        let bytes = std::fs::read(&seg).unwrap();
        let used = bytes.len() - bytes.iter().rev().take_while(|&&b| b == 0).count();
        let keep = used.next_multiple_of(4096);
        std::fs::remove_file(&seg).unwrap();
        let f = std::fs::File::create(&seg).unwrap();
        f.write_all_at(&bytes[..keep], 0).unwrap();
        f.set_len(seg_size).unwrap();
        assert!(
            f.metadata().unwrap().blocks() * 512 < seg_size / 2,
            "the test needs a file system that keeps holes"
        );

        let mut r = JournalReader::open(tmp.path()).unwrap();
        for i in 0..3u64 {
            assert_eq!(r.next().unwrap().unwrap().seq, i);
        }
        assert!(r.next().is_none(), "a hole reads as zeros: no damage");
        let took = r.win.bytes_read();
        assert!(
            took < seg_size / 2,
            "the hole was read: {took} bytes of a {seg_size}-byte segment"
        );

        // One byte after the hole is damage, found past the hole.
        f.write_all_at(&[1], seg_size - 1).unwrap();
        let (got, err) = read(tmp.path(), 1 << 18, None);
        assert_eq!(got.len(), 3);
        assert!(
            err.contains(&format!("first at offset {}", seg_size - 1)),
            "{err}"
        );
    }

    /// A thread's next reader reads into the buffer its last reader left (no page of it is
    /// new, see `segment::SPARE`), and still reads a short first step, not the whole buffer.
    #[test]
    fn a_dropped_readers_buffer_serves_the_threads_next_reader() {
        let tmp = tempfile::tempdir().unwrap();
        let n = write_journal(tmp.path(), 1 << 20, &[2000; 200]);
        assert_eq!(n, 200);
        let first = {
            let mut r = JournalReader::open(tmp.path()).unwrap();
            while let Some(rec) = r.next() {
                rec.unwrap();
            }
            assert!(r.win.bytes_read() > 256 << 10, "the journal fills a window");
            r.win.buffer_at()
        };
        let mut r = JournalReader::open(tmp.path()).unwrap();
        assert_eq!(r.next().unwrap().unwrap().seq, 0);
        assert_eq!(r.win.buffer_at(), first, "the spare buffer was taken");
        let took = r.win.bytes_read();
        assert!(took <= 16 << 10, "the first read took {took} bytes");
        let mut seq = 0;
        while let Some(rec) = r.next() {
            seq = rec.unwrap().seq;
        }
        assert_eq!(seq, 199);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_window_reads_what_the_whole_file_holds(
            lens in vec(prop_oneof![4 => 0usize..200, 1 => 200usize..3000], 1..60),
            segment_size in prop_oneof![Just(1024u64), Just(4096), Just(16384)],
            step in prop_oneof![Just(1usize), Just(8), Just(40), Just(64), Just(333), Just(4096)],
            edits in vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
            cut in proptest::option::of(any::<prop::sample::Index>()),
            grow in 0usize..20,
            damaged in any::<prop::sample::Index>(),
            from in proptest::option::of(any::<prop::sample::Index>()),
        ) {
            let tmp = tempfile::tempdir().unwrap();
            let n = write_journal(tmp.path(), segment_size, &lens);
            let whole = read(tmp.path(), 1 << 20, None);
            prop_assert_eq!(whole.0.len() as u64, n);
            prop_assert_eq!(&whole.1, "");
            damage_a_segment(tmp.path(), damaged, &edits, cut, grow);
            let from = from.map(|f| f.index(n as usize + 2) as u64);
            prop_assert_eq!(read(tmp.path(), step, from), read(tmp.path(), 1 << 20, from));
        }
    }
}
