//! Hand-written JSON output into one reused buffer.
//!
//! Every message is built in [`JsonBuf`] and frozen once into a [`Utf8Bytes`] that all its
//! recipients share. Strings that can come from a client (request ids, names in error
//! messages) always go through [`JsonBuf::string`], which escapes them; prices and
//! quantities are written from their fixed-point mantissas, never through `f64`.

use tungstenite::Utf8Bytes;

use crate::fixed::pow10;

/// A reusable JSON text buffer.
#[derive(Debug, Default)]
pub struct JsonBuf {
    buf: String,
    arena: super::arena::Arena,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl JsonBuf {
    /// An empty buffer with room for a typical message.
    pub fn new() -> Self {
        JsonBuf {
            buf: String::with_capacity(4096),
            arena: super::arena::Arena::default(),
        }
    }

    /// Empties the buffer, keeping its capacity.
    #[inline]
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// The text so far.
    pub fn as_str(&self) -> &str {
        &self.buf
    }

    /// Copies the text into a shareable handle, packed into the buffer's reused chunks (no
    /// allocation per message; see `wire/arena.rs`).
    #[inline]
    pub fn freeze(&mut self) -> Utf8Bytes {
        self.arena.freeze(&self.buf)
    }

    /// Appends trusted JSON text verbatim (literals, pre-rendered ids).
    #[inline]
    pub fn raw(&mut self, s: &str) {
        self.buf.push_str(s);
    }

    /// Appends an unsigned integer.
    #[inline]
    pub fn u64(&mut self, v: u64) {
        self.buf.push_str(itoa::Buffer::new().format(v));
    }

    /// Appends `mantissa` at `scale` as a quoted decimal string with exactly `scale`
    /// fraction digits (`Scaled` without going through `fmt`).
    #[inline]
    pub fn fixed(&mut self, mantissa: i64, scale: u8) {
        self.buf.push('"');
        self.fixed_bare(mantissa, scale);
        self.buf.push('"');
    }

    fn fixed_bare(&mut self, mantissa: i64, scale: u8) {
        if mantissa < 0 {
            self.buf.push('-');
        }
        let abs = mantissa.unsigned_abs();
        if scale == 0 {
            self.u64(abs);
            return;
        }
        let p = pow10(scale) as u64;
        self.u64(abs / p);
        self.buf.push('.');
        let mut b = itoa::Buffer::new();
        let frac = b.format(abs % p);
        for _ in frac.len()..scale as usize {
            self.buf.push('0');
        }
        self.buf.push_str(frac);
    }

    /// Appends `s` as a JSON string: quotes, backslashes and control characters escaped.
    pub fn string(&mut self, s: &str) {
        self.buf.push('"');
        escape_into(&mut self.buf, s);
        self.buf.push('"');
    }
}

/// Appends `s` to `out` as a quoted JSON string.
pub fn escape_json_string(out: &mut String, s: &str) {
    out.push('"');
    escape_into(out, s);
    out.push('"');
}

/// Appends `s` to `out` with JSON string escaping (no surrounding quotes).
pub fn escape_into(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    if bytes.iter().all(|&b| b >= 0x20 && b != b'"' && b != b'\\') {
        // Nothing to escape (symbols, ids, names): one copy.
        out.push_str(s);
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        // Every byte matched above is ASCII, so these are char boundaries.
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            out.push_str("\\u00");
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xf)] as char);
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

/// `s` rendered as a JSON string literal, quotes included.
pub fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    escape_into(&mut out, s);
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixed::Scaled;
    use proptest::prelude::*;

    #[test]
    fn escapes_what_json_requires() {
        assert_eq!(quoted("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(quoted("\n\t\u{1}\u{1f}é"), "\"\\n\\t\\u0001\\u001fé\"");
        assert_eq!(quoted(""), "\"\"");
    }

    #[test]
    fn fixed_matches_scaled() {
        let mut j = JsonBuf::new();
        for (m, s) in [(6_180_020, 2), (-5, 3), (1001, 0), (0, 8), (i64::MIN, 18)] {
            j.clear();
            j.fixed(m, s);
            assert_eq!(j.as_str(), format!("\"{}\"", Scaled(m, s)));
        }
    }

    proptest! {
        #[test]
        fn escaped_strings_round_trip(s in ".*") {
            let q = quoted(&s);
            let back: String = serde_json::from_str(&q).unwrap();
            prop_assert_eq!(back, s);
        }

        #[test]
        fn fixed_round_trips(m in any::<i64>(), scale in 0u8..=18) {
            let mut j = JsonBuf::new();
            j.fixed(m, scale);
            prop_assert_eq!(j.as_str(), format!("\"{}\"", Scaled(m, scale)));
        }
    }
}
