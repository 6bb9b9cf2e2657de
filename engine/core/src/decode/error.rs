//! Why a frame or snapshot could not be decoded.

use crate::fixed::FixedError;
use crate::instrument::{InstrumentId, Market, RegistryError};

/// Longest symbol kept in an error's context; hostile frames can carry long strings.
const MAX_SYMBOL_IN_ERROR: usize = 64;

/// A frame or snapshot that could not be turned into a message.
///
/// Every variant except [`DecodeError::UnknownInstrument`] is a fault of the peer (or of a
/// corrupted journal); that one is the caller's mistake. The decoder stays usable after any
/// of them. `event` names the message being decoded (`"depthUpdate"`, `"snapshot"`, ...,
/// or `"frame"` before the event type is known) and `field` the JSON key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Zero bytes.
    #[error("empty frame")]
    Empty,
    /// Larger than [`super::MAX_FRAME_BYTES`]; rejected before parsing.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    Oversize {
        /// Size of the frame.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not valid JSON (includes truncation and invalid UTF-8).
    #[error("malformed JSON at byte {offset}: {reason}")]
    Json {
        /// Byte offset simd-json reported.
        offset: usize,
        /// simd-json's error kind.
        reason: String,
    },
    /// The top level (or the `data` of a combined-stream frame) is not a JSON object.
    #[error("{context} is {found}, expected an object")]
    NotObject {
        /// `"frame"`, `"data"` or `"snapshot"`.
        context: &'static str,
        /// JSON type found.
        found: &'static str,
    },
    /// A required key is absent.
    #[error("{event}: missing field {field:?}")]
    MissingField {
        /// Message being decoded.
        event: &'static str,
        /// The key.
        field: &'static str,
    },
    /// A key holds a value of the wrong JSON type (or a negative id).
    #[error("{event}.{field}: expected {expected}, found {found}")]
    WrongType {
        /// Message being decoded.
        event: &'static str,
        /// The key.
        field: &'static str,
        /// What the field must hold.
        expected: &'static str,
        /// What it held.
        found: &'static str,
    },
    /// A decimal string that does not parse at the instrument's scale.
    #[error("{event}.{field}{}: {error}", level_suffix(*.level))]
    BadNumber {
        /// Message being decoded.
        event: &'static str,
        /// The key (`"b"`, `"bids"`, ... for book levels).
        field: &'static str,
        /// Index of the book level, when the number is inside one.
        level: Option<usize>,
        /// Why it did not parse.
        error: FixedError,
    },
    /// A book level that is not a `["price","qty"]` pair of strings.
    #[error("{event}.{field}[{index}]: expected a [\"price\",\"qty\"] pair of strings")]
    BadLevel {
        /// Message being decoded.
        event: &'static str,
        /// The key (`"b"`, `"a"`, `"bids"`, `"asks"`).
        field: &'static str,
        /// Index of the level in its array.
        index: usize,
    },
    /// The symbol is not in the registry and auto-registration is off.
    #[error("{event}: unknown symbol {market}:{symbol}")]
    UnknownSymbol {
        /// Message being decoded.
        event: &'static str,
        /// Market the frame came from.
        market: Market,
        /// The symbol as received (truncated).
        symbol: String,
    },
    /// Auto-registration refused the symbol (invalid symbol, full registry).
    #[error("{event}: cannot register {market}:{symbol}: {error}")]
    Register {
        /// Message being decoded.
        event: &'static str,
        /// Market the frame came from.
        market: Market,
        /// The symbol as received (truncated).
        symbol: String,
        /// The registry's reason.
        error: RegistryError,
    },
    /// A snapshot's `symbol` names another instrument than the one it was fetched for.
    #[error("snapshot: symbol {got:?} does not match instrument {expected:?}")]
    SymbolMismatch {
        /// The instrument's symbol.
        expected: String,
        /// The snapshot's `symbol` (truncated).
        got: String,
    },
    /// Caller mistake: the instrument id is not in the registry passed in.
    #[error("instrument id {} is not in the registry", .id.0)]
    UnknownInstrument {
        /// The id passed in.
        id: InstrumentId,
    },
}

fn level_suffix(level: Option<usize>) -> String {
    level.map(|i| format!("[{i}]")).unwrap_or_default()
}

impl DecodeError {
    /// A stable short name per variant, for error counters and logs.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::Empty => "empty",
            DecodeError::Oversize { .. } => "oversize",
            DecodeError::Json { .. } => "json",
            DecodeError::NotObject { .. } => "not_object",
            DecodeError::MissingField { .. } => "missing_field",
            DecodeError::WrongType { .. } => "wrong_type",
            DecodeError::BadNumber { .. } => "bad_number",
            DecodeError::BadLevel { .. } => "bad_level",
            DecodeError::UnknownSymbol { .. } => "unknown_symbol",
            DecodeError::Register { .. } => "register",
            DecodeError::SymbolMismatch { .. } => "symbol_mismatch",
            DecodeError::UnknownInstrument { .. } => "unknown_instrument",
        }
    }

    /// True for the one variant that is the caller's mistake rather than the peer's.
    pub fn is_caller_error(&self) -> bool {
        matches!(self, DecodeError::UnknownInstrument { .. })
    }

    /// Builds [`DecodeError::Json`] from a simd-json error.
    #[cold]
    pub(super) fn json(e: &simd_json::Error) -> Self {
        DecodeError::Json {
            offset: e.index(),
            reason: format!("{:?}", e.error()),
        }
    }
}

/// A symbol for an error message: lossy UTF-8, at most [`MAX_SYMBOL_IN_ERROR`] chars.
#[cold]
pub(super) fn symbol_for_error(s: &str) -> String {
    s.chars().take(MAX_SYMBOL_IN_ERROR).collect()
}
