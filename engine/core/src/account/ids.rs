//! Small inline identifiers: client order ids and asset codes.
//!
//! Both are bounded byte strings stored inline (`Copy`, no allocation), ordered bytewise so
//! they can key ordered maps whose iteration reaches output.

use std::fmt;

/// Longest client order id (Binance's `newClientOrderId` limit).
pub const MAX_CLIENT_ORDER_ID: usize = 36;

/// Longest asset code (`1000SATS`, `USDT`, ...).
pub const MAX_ASSET: usize = 20;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Empty, too long, or with bytes outside the allowed set.
    #[error("invalid {kind} {value:?} (1..={max} bytes of {allowed})")]
    Invalid {
        /// `"client order id"` or `"asset"`.
        kind: &'static str,
        /// The value (lossy, truncated to 64 chars).
        value: String,
        /// Maximum length.
        max: usize,
        /// The allowed bytes, for the message.
        allowed: &'static str,
    },
}

macro_rules! inline_id {
    ($(#[$doc:meta])* $name:ident, $max:expr, $kind:literal, $allowed:literal, $ok:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq)]
        pub struct $name {
            len: u8,
            bytes: [u8; $max],
        }

        impl $name {
            /// Validates and copies `s`.
            ///
            /// # Errors
            /// [`IdError::Invalid`] when `s` is empty, too long or has disallowed bytes.
            pub fn new(s: &str) -> Result<Self, IdError> {
                Self::from_bytes(s.as_bytes())
            }

            /// As [`Self::new`], from bytes.
            ///
            /// # Errors
            /// [`IdError::Invalid`] when `s` is empty, too long or has disallowed bytes.
            pub fn from_bytes(s: &[u8]) -> Result<Self, IdError> {
                let ok: fn(u8) -> bool = $ok;
                if s.is_empty() || s.len() > $max || !s.iter().all(|&c| ok(c)) {
                    return Err(IdError::Invalid {
                        kind: $kind,
                        value: String::from_utf8_lossy(s).chars().take(64).collect(),
                        max: $max,
                        allowed: $allowed,
                    });
                }
                let mut bytes = [0u8; $max];
                bytes[..s.len()].copy_from_slice(s);
                Ok($name {
                    len: s.len() as u8,
                    bytes,
                })
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                // Only ASCII bytes are ever accepted, so this cannot fail.
                std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
            }
        }

        // The bytes past `len` are always zero, so hashing the text alone agrees with `Eq`
        // and costs a few bytes instead of the whole array.
        impl std::hash::Hash for $name {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.bytes[..self.len as usize].hash(state);
            }
        }

        impl Ord for $name {
            fn cmp(&self, o: &Self) -> std::cmp::Ordering {
                self.bytes[..self.len as usize].cmp(&o.bytes[..o.len as usize])
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(o))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.as_str())
            }
        }
    };
}

inline_id!(
    /// A client order id: 1 to 36 bytes of `[A-Za-z0-9._:/-]`, like Binance's.
    ClientOrderId,
    MAX_CLIENT_ORDER_ID,
    "client order id",
    "[A-Za-z0-9._:/-]",
    |c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'/' | b'-')
);

impl ClientOrderId {
    /// An id tape generates itself: disallowed bytes become `_`, the text is cut at 36 bytes
    /// and an empty text becomes `_`, so this never fails.
    pub fn generated(s: &str) -> ClientOrderId {
        let mut bytes = [0u8; MAX_CLIENT_ORDER_ID];
        let mut len = 0;
        for (dst, &c) in bytes.iter_mut().zip(s.as_bytes()) {
            let ok = c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'/' | b'-');
            *dst = if ok { c } else { b'_' };
            len += 1;
        }
        if len == 0 {
            bytes[0] = b'_';
            len = 1;
        }
        ClientOrderId {
            len: len as u8,
            bytes,
        }
    }
}

inline_id!(
    /// An asset code such as `USDT`: 1 to 20 ASCII letters or digits.
    Asset,
    MAX_ASSET,
    "asset",
    "[A-Za-z0-9]",
    |c| c.is_ascii_alphanumeric()
);

/// Id of an advanced order (bracket, OCO, trailing stop) managed by tape, unique per account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AdvancedId(pub u64);

impl fmt::Display for AdvancedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "adv-{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_and_orders() {
        let a = ClientOrderId::new("web_123:x/y.z-").unwrap();
        assert_eq!(a.as_str(), "web_123:x/y.z-");
        assert_eq!(format!("{a:?}"), "ClientOrderId(\"web_123:x/y.z-\")");
        assert!(ClientOrderId::new("").is_err());
        assert!(ClientOrderId::new(&"a".repeat(37)).is_err());
        assert!(ClientOrderId::new(&"a".repeat(36)).is_ok());
        assert!(ClientOrderId::new("a b").is_err());
        assert!(ClientOrderId::from_bytes(&[0xff]).is_err());
        assert!(ClientOrderId::new("a").unwrap() < ClientOrderId::new("b").unwrap());
        assert_eq!(ClientOrderId::generated("a b").as_str(), "a_b");
        assert_eq!(ClientOrderId::generated("").as_str(), "_");
        assert_eq!(ClientOrderId::generated(&"x".repeat(40)).as_str().len(), 36);
        assert!(
            ClientOrderId::new("aa").unwrap() < ClientOrderId::new("b").unwrap(),
            "bytewise"
        );
        assert!(Asset::new("USDT").is_ok());
        assert!(Asset::new("US-DT").is_err());
        let e = Asset::new("").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid asset \"\" (1..=20 bytes of [A-Za-z0-9])"
        );
    }
}
