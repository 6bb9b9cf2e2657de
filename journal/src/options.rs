//! Writer configuration.

use crate::error::JournalError;
use crate::format::{max_payload_len, segment_size_problem};

/// Default segment size: 64 MiB.
pub const DEFAULT_SEGMENT_SIZE: u64 = 64 << 20;
/// Default pre-touch window: 1 MiB ahead of the write position.
pub const DEFAULT_PRETOUCH_BYTES: u64 = 1 << 20;

/// Configuration of a [`JournalWriter`](crate::JournalWriter).
///
/// Build it with struct update syntax:
/// `JournalOptions { segment_size: 1 << 20, ..Default::default() }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalOptions {
    /// Size of each new segment file in bytes, header included. A multiple of 8 between
    /// 128 bytes and 4 GiB. Segment files are created sparse at this size. An existing last
    /// segment keeps the size written in its header.
    pub segment_size: u64,
    /// How many bytes ahead of the write position are kept faulted in (written once per
    /// page), spilling into a pre-created next segment near the end of the current one.
    /// Clamped to `segment_size`; 0 disables pre-touching.
    pub pretouch_bytes: u64,
    /// Whether `append` itself pre-touches: when less than half the window is left ahead of
    /// the record it writes, it touches one small step (4 pages) first. This is a fallback
    /// that bounds the work per append; for the lowest latency call
    /// [`JournalWriter::pretouch`](crate::JournalWriter::pretouch) from idle time (then the
    /// automatic step rarely triggers, or turn it off).
    pub auto_pretouch: bool,
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            segment_size: DEFAULT_SEGMENT_SIZE,
            pretouch_bytes: DEFAULT_PRETOUCH_BYTES,
            auto_pretouch: true,
        }
    }
}

impl JournalOptions {
    /// Checks the options.
    ///
    /// # Errors
    ///
    /// [`JournalError::InvalidOptions`] if `segment_size` is out of range or not a
    /// multiple of 8.
    pub fn validate(&self) -> Result<(), JournalError> {
        match segment_size_problem(self.segment_size) {
            Some(reason) => Err(JournalError::InvalidOptions {
                reason,
                segment_size: self.segment_size,
            }),
            None => Ok(()),
        }
    }

    /// Largest payload a record can carry with these options (it fills an empty segment).
    pub fn max_payload_len(&self) -> u64 {
        max_payload_len(self.segment_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let o = JournalOptions::default();
        assert!(o.validate().is_ok());
        assert_eq!(o.max_payload_len(), (64 << 20) - 64 - 32);
        for bad in [0, 127, 129, 1 << 33] {
            let o = JournalOptions {
                segment_size: bad,
                ..Default::default()
            };
            assert!(matches!(
                o.validate(),
                Err(JournalError::InvalidOptions { .. })
            ));
        }
    }
}
