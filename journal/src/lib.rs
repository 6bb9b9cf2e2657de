//! tape's append-only journal of raw inputs, in memory-mapped segment files.
//!
//! Every input of the engine (exchange frames, REST snapshots, client commands) is appended
//! with its receive time before it is applied, so that a session replays bit-exactly.
//!
//! * [`JournalWriter`] appends records (memcpy into a mapped segment plus a CRC; no
//!   allocation or system call in steady state), rolls segments, pre-touches pages ahead of
//!   the write position, flushes, and recovers a torn tail when it opens a journal.
//! * [`JournalReader`] iterates records across segments, borrowing payloads from the map,
//!   and seeks to any sequence number through a sparse index.
//! * [`verify()`] checks a whole journal without modifying it and tells a clean journal from a
//!   torn tail and from corruption in the middle.
//!
//! # On-disk format (version 1)
//!
//! A journal is a directory. All integers are little-endian.
//!
//! ## Files
//!
//! | name | content |
//! |---|---|
//! | `{first_seq:020}.seg` | a segment: 20 zero-padded decimal digits, so lexical order = sequence order |
//! | `next.seg.tmp` | the next segment being prepared by the writer; not part of the journal, deleted by the writer on open |
//! | `LOCK` | empty; the writer holds an exclusive advisory lock on it |
//!
//! Other files are ignored. A segment file is created at its full *segment size* with
//! `set_len` (sparse: unwritten space costs no disk), under the temporary name, and renamed
//! into the journal once its header is written.
//!
//! ## Segment header (64 bytes at offset 0)
//!
//! | offset | size | field | value |
//! |---|---|---|---|
//! | 0 | 8 | magic | `b"TAPEJSEG"` |
//! | 8 | 2 | format version | `1` |
//! | 10 | 2 | header length | `64` |
//! | 12 | 4 | record alignment | `8` |
//! | 16 | 8 | first_seq | sequence number of the segment's first record; equals the file name |
//! | 24 | 8 | segment_size | file size in bytes, header included; multiple of 8, 128 B ..= 4 GiB |
//! | 32 | 28 | reserved | zero |
//! | 60 | 4 | header CRC | CRC-32 (IEEE, as `crc32fast`) of bytes 0..60 |
//!
//! ## Records (from offset 64, back to back)
//!
//! Every record starts at an offset that is a multiple of 8 and occupies
//! `align8(32 + payload_len)` bytes:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 2 | marker: the bytes `"TR"` (`0x5254`), never zero |
//! | 2 | 2 | kind (`u16`) |
//! | 4 | 4 | payload length in bytes (`u32`) |
//! | 8 | 8 | seq (`u64`) |
//! | 16 | 8 | recv_ns: receive timestamp in ns (`u64`) |
//! | 24 | 4 | source / stream id (`u32`) |
//! | 28 | 4 | CRC-32 of header bytes 0..28 followed by the payload |
//! | 32 | len | payload: the raw bytes |
//! | 32 + len | 0..=7 | padding: zero |
//!
//! Sequence numbers are contiguous: the first record of a segment has `first_seq`, each
//! next record (in the same or the next segment) has the previous one's plus one. A new
//! journal starts at 0.
//!
//! ## End of data
//!
//! Unwritten space is zero. A record slot whose marker is zero, or where fewer than 32 bytes
//! remain in the segment, ends the segment's data; everything from there to `segment_size`
//! must be zero. Because the marker is non-zero and covered by the CRC, zeros can never be
//! read as a record, and a record can never be mistaken for the end. The writer moves to a
//! new segment when the next record does not fit in the current one; a record that cannot
//! fit in an empty segment (`payload_len > segment_size - 96`) is refused with
//! [`JournalError::RecordTooLarge`].
//!
//! ## Damage and recovery
//!
//! A segment is *clean* when its header is valid and matches its name, its records are valid
//! (marker, length within the segment, zero padding, CRC, contiguous seq), only zeros follow
//! them, and the file is exactly `segment_size` long. Anything else is damage at the offset
//! where the intact prefix ends.
//!
//! Both ends are checked against the metadata file (`JOURNAL`): a first segment that does
//! not start where the journal starts, or a missing newest segment, is damage.
//!
//! [`JournalWriter::open`] repairs only a **torn tail** (a partial record at the very end of a
//! full-sized last segment, no intact record after it), reporting what it cut in a
//! [`RecoveryReport`]. Any other damage, anywhere, is refused with [`JournalError::Corrupt`]
//! naming segment, offset and kind, and nothing is changed. [`repair()`] is the explicit
//! decision: it moves everything from the first damage on into `quarantine/` (never deletes)
//! and says what it kept and moved. `docs/journal.md` has the whole story.
//!
//! # Pre-touching, durability, limits
//!
//! Segments are allocated in full (`fallocate`) when created, so a full disk is an error at
//! segment creation ([`JournalWriter::make_room`] retries it), never a `SIGBUS` in `append`.
//! Mapped pages still take a minor fault on first touch; the writer keeps `pretouch_bytes`
//! ahead of its write position faulted in by storing a zero into each page (a store, not a
//! load: a load would map the page read-only and the first real write would fault again).
//! Near the end of a segment the window continues into the next segment file, which is then
//! created early, so a roll is a header write and a rename. The work is done by
//! [`JournalWriter::pretouch`] (call it from idle time) and, as a fallback bounded to four
//! pages per call, by `append` itself when less than half the window is left.
//!
//! Appended records are in the page cache at once (a process crash loses nothing); they are
//! durable after [`JournalWriter::flush`].
//!
//! # Safety contract
//!
//! Only the writer maps segment files: while it has a journal open, nothing else may modify
//! its files (a violation is undefined behaviour at the Rust level). Readers copy segment data
//! with `pread`, so a full or shrinking file system is an error, never a signal. All `unsafe`
//! code is in the private `segment` module.

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod dir;
mod error;
mod format;
mod index;
mod meta;
mod options;
mod reader;
mod recovery;
mod repair;
mod scan;
#[allow(unsafe_code)]
mod segment;
mod spare;
#[cfg(test)]
mod testing;
mod verify;
mod writer;

pub use dir::segment_file_name;
pub use error::{Damage, DamageKind, JournalError};
pub use format::{
    FORMAT_VERSION, MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE, RECORD_ALIGN, RECORD_HEADER_LEN,
    RECORD_MARKER, SEGMENT_HEADER_LEN, SEGMENT_MAGIC,
};
pub use meta::JournalMeta;
pub use options::{JournalOptions, DEFAULT_PRETOUCH_BYTES, DEFAULT_SEGMENT_SIZE};
pub use reader::{JournalReader, Record};
pub use recovery::RecoveryReport;
pub use repair::{repair, QuarantinedPart, RepairReport, QUARANTINE_DIR};
pub use verify::{verify, SegmentSummary, VerifyReport, VerifyStatus};
pub use writer::JournalWriter;
