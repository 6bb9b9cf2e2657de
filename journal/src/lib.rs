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
//! [`JournalWriter::open`] recovers the last segment: it keeps exactly its intact prefix
//! and zeroes everything after it (truncate to the prefix, extend back to the segment size),
//! reporting the dropped bytes and records in a [`RecoveryReport`]. A torn header (file
//! shorter than 64 bytes, bad magic, bad header CRC) makes it rebuild the header from the
//! file name and drop all of the segment's records. It also validates the segment before the
//! last, so the sequence continues across the seam. Damage that is not a torn tail of the
//! last segment (a damaged sealed segment, a gap between segments, a header whose CRC is
//! valid but whose content is inconsistent, a file longer than its segment size) is not
//! repaired: `open` returns [`JournalError::Corrupt`] and [`verify()`] says where.
//!
//! # Pre-touching, durability, limits
//!
//! A write to a never-touched page of a sparse file takes a page fault that allocates the
//! page (microseconds, more under memory pressure). The writer keeps `pretouch_bytes` ahead
//! of its write position faulted in by storing a zero into each page (a store, not a load:
//! a load would map the page read-only and the first real write would fault again). Near
//! the end of a segment the window continues into the next segment file, which is then
//! created early, so a roll is a header write and a rename. The work is done by
//! [`JournalWriter::pretouch`] (call it from idle time) and, as a fallback bounded to four
//! pages per call, by `append` itself when less than half the window is left.
//!
//! Appended records are in the page cache at once (a process crash loses nothing); they are
//! durable after [`JournalWriter::flush`]. Recovery trusts that segments before the last two
//! were flushed. Segment files are sparse: if the disk fills up, a page fault in the map
//! raises `SIGBUS` instead of returning an error (pre-allocation would need `fallocate`).
//!
//! # Safety contract
//!
//! Segment files are memory-mapped. While a writer has a journal open, nothing else may
//! modify its files, and readers must not read it; while a reader or `verify` has it open,
//! nothing may modify it. Violations are undefined behaviour at the Rust level (typically
//! `SIGBUS` or torn reads). All `unsafe` code is in the private `segment` module.

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
