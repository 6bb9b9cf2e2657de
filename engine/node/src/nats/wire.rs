//! One journal record as a NATS message body: a versioned fixed header, then the raw bytes.
//!
//! ```text
//! offset size field
//!      0    2 magic "tp"
//!      2    1 version (1)
//!      3    1 flags (0; a reader refuses any other value)
//!      4    8 run: the origin's run id (its hub's `run_id`), little-endian
//!     12    8 seq: the record's position in the run, from 1 (= its JetStream stream sequence)
//!     20    8 journal_seq: the origin's journal sequence number, u64::MAX when not journaling
//!     28    8 recv_ns: receive time as journaled
//!     36    4 source id
//!     40    2 record kind
//!     42    - payload: the journaled bytes, unchanged
//! ```
//!
//! Explicit little-endian fields, no serde: the body is read on the edge's engine thread,
//! it must never panic on foreign bytes and costs one copy of the payload.

use thiserror::Error;

/// Bytes before the payload.
pub const HEADER_LEN: usize = 42;
const MAGIC: &[u8; 2] = b"tp";
/// The encoding this build writes and reads.
pub const VERSION: u8 = 1;
/// `journal_seq` of an origin that does not journal.
pub const NOT_JOURNALED: u64 = u64::MAX;

/// A record on the wire, borrowing its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireRecord<'a> {
    /// The origin's run id.
    pub run: u64,
    /// Position in the run, from 1.
    pub seq: u64,
    /// The origin's journal sequence number, or [`NOT_JOURNALED`].
    pub journal_seq: u64,
    /// Receive time, ns since the epoch.
    pub recv: u64,
    /// Source id.
    pub source: u32,
    /// Record kind.
    pub kind: u16,
    /// The raw bytes.
    pub payload: &'a [u8],
}

/// Why a message body is not a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum WireError {
    /// Shorter than the header.
    #[error("record message too short: {len} bytes, the header alone is {HEADER_LEN}")]
    Short {
        /// Bytes received.
        len: usize,
    },
    /// Not a tape record.
    #[error("record message has no \"tp\" magic")]
    Magic,
    /// A version or flags this build does not read.
    #[error("record message version {version} flags {flags}: this build reads version {VERSION} flags 0")]
    Version {
        /// Version byte.
        version: u8,
        /// Flags byte.
        flags: u8,
    },
    /// Sequence 0 (they count from 1).
    #[error("record message with seq 0")]
    ZeroSeq,
}

impl WireRecord<'_> {
    /// Appends the encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.reserve(HEADER_LEN + self.payload.len());
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.push(0);
        out.extend_from_slice(&self.run.to_le_bytes());
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.journal_seq.to_le_bytes());
        out.extend_from_slice(&self.recv.to_le_bytes());
        out.extend_from_slice(&self.source.to_le_bytes());
        out.extend_from_slice(&self.kind.to_le_bytes());
        out.extend_from_slice(self.payload);
    }

    /// Reads a message body.
    ///
    /// # Errors
    /// [`WireError`]: short, foreign, unknown version, seq 0.
    pub fn decode(b: &[u8]) -> Result<WireRecord<'_>, WireError> {
        if b.len() < HEADER_LEN {
            return Err(WireError::Short { len: b.len() });
        }
        if &b[0..2] != MAGIC {
            return Err(WireError::Magic);
        }
        if b[2] != VERSION || b[3] != 0 {
            return Err(WireError::Version {
                version: b[2],
                flags: b[3],
            });
        }
        let u64_at = |o: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[o..o + 8]);
            u64::from_le_bytes(a)
        };
        let seq = u64_at(12);
        if seq == 0 {
            return Err(WireError::ZeroSeq);
        }
        Ok(WireRecord {
            run: u64_at(4),
            seq,
            journal_seq: u64_at(20),
            recv: u64_at(28),
            source: u32::from_le_bytes([b[36], b[37], b[38], b[39]]),
            kind: u16::from_le_bytes([b[40], b[41]]),
            payload: &b[HEADER_LEN..],
        })
    }
}

/// The origin's heartbeat (core NATS, not stored): `run` and the last `seq` it handed to
/// JetStream, 16 bytes little-endian.
pub fn encode_heartbeat(run: u64, seq: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&run.to_le_bytes());
    b[8..].copy_from_slice(&seq.to_le_bytes());
    b
}

/// Reads a heartbeat; `None` for anything that is not 16 bytes.
pub fn decode_heartbeat(b: &[u8]) -> Option<(u64, u64)> {
    let b: &[u8; 16] = b.try_into().ok()?;
    let mut r = [0u8; 8];
    r.copy_from_slice(&b[..8]);
    let mut s = [0u8; 8];
    s.copy_from_slice(&b[8..]);
    Some((u64::from_le_bytes(r), u64::from_le_bytes(s)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn literal_bytes() {
        let r = WireRecord {
            run: 7,
            seq: 1,
            journal_seq: NOT_JOURNALED,
            recv: 0x0102,
            source: 3,
            kind: 2,
            payload: b"{}",
        };
        let mut out = Vec::new();
        r.encode_into(&mut out);
        assert_eq!(&out[..4], b"tp\x01\x00");
        assert_eq!(out[4], 7);
        assert_eq!(out[12], 1);
        assert_eq!(&out[20..28], &[0xff; 8]);
        assert_eq!(&out[28..30], &[0x02, 0x01]);
        assert_eq!(out[36], 3);
        assert_eq!(out[40], 2);
        assert_eq!(&out[42..], b"{}");
        assert_eq!(WireRecord::decode(&out), Ok(r));
    }

    #[test]
    fn refuses_foreign_bodies() {
        assert_eq!(WireRecord::decode(b"tp"), Err(WireError::Short { len: 2 }));
        let mut b = vec![0u8; HEADER_LEN];
        assert_eq!(WireRecord::decode(&b), Err(WireError::Magic));
        b[..4].copy_from_slice(b"tp\x02\x00");
        assert!(matches!(
            WireRecord::decode(&b),
            Err(WireError::Version { version: 2, .. })
        ));
        b[2] = 1;
        assert_eq!(WireRecord::decode(&b), Err(WireError::ZeroSeq));
        assert_eq!(decode_heartbeat(b"short"), None);
        assert_eq!(decode_heartbeat(&encode_heartbeat(5, 9)), Some((5, 9)));
    }

    proptest! {
        #[test]
        fn round_trip(run: u64, seq in 1u64.., js: u64, recv: u64, source: u32, kind: u16,
                      payload in proptest::collection::vec(any::<u8>(), 0..300)) {
            let r = WireRecord { run, seq, journal_seq: js, recv, source, kind, payload: &payload };
            let mut out = Vec::new();
            r.encode_into(&mut out);
            prop_assert_eq!(WireRecord::decode(&out), Ok(r));
        }

        #[test]
        fn never_panics(b in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = WireRecord::decode(&b);
            let _ = decode_heartbeat(&b);
        }
    }
}
