//! Reading a client request: one simd-json tape, one `id` rule, shared by the hub and desk.
//!
//! The hub reads every request once, for its `type`, its `id` and the fields of the requests
//! it answers itself; an order-entry or publish request goes to the journal as the client's
//! raw bytes, and the desk reads it at apply time (live and in replay alike) with the same
//! [`read`] and the same [`request_id`]. So a request is parsed by one parser under one set
//! of rules wherever it is read, and nothing is re-parsed in between.
//!
//! Objects keep JSON's "last duplicate key wins" (what the hub and desk always did).

use simd_json::{Node, StaticNode};

use super::json::{escape_into, quoted};
use super::MAX_ID_BYTES;

/// Deepest nesting accepted: the limit the desk's former parser (serde_json) had, kept so
/// the same requests are refused.
const MAX_DEPTH: usize = 127;

/// Why a request could not be read at all (both are error 4004 `invalid message`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadError {
    /// Not JSON.
    NotJson,
    /// JSON, but not an object.
    NotObject,
    /// Valid JSON with a number tape does not read (an integer beyond 64 bits, a float
    /// beyond `f64`): said as such, not as "not JSON".
    NumberOutOfRange,
    /// Valid JSON nested deeper than [`MAX_DEPTH`].
    TooDeep,
}

impl ReadError {
    /// The message after `invalid message: `.
    pub fn message(self) -> &'static str {
        match self {
            ReadError::NotJson => "not JSON",
            ReadError::NotObject => "expected a JSON object with a \"type\"",
            ReadError::NumberOutOfRange => {
                "a number is out of the range tape reads (integers from -2^63 to 2^64-1, \
                 floats that fit a double); send such values as strings"
            }
            ReadError::TooDeep => "nested deeper than 127 levels",
        }
    }
}

/// What a simd-json failure means for the client: a number it cannot hold in otherwise valid
/// JSON is told apart from bytes that are not JSON at all. simd-json reports an unreadable
/// number the same way for `1e400` and for `1e4x`, so the number is checked against the JSON
/// grammar here: only a grammatical number out of range is `NumberOutOfRange`.
fn classify(e: &simd_json::ErrorType, text: &[u8]) -> ReadError {
    use simd_json::ErrorType;
    match e {
        ErrorType::InvalidNumber | ErrorType::InvalidExponent | ErrorType::Overflow
            if all_numbers_grammatical(text) =>
        {
            ReadError::NumberOutOfRange
        }
        _ => ReadError::NotJson,
    }
}

/// Whether every run of number characters outside strings is a JSON number by the grammar
/// (`-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`).
fn all_numbers_grammatical(text: &[u8]) -> bool {
    let mut i = 0;
    let mut in_str = false;
    while i < text.len() {
        let c = text[i];
        if in_str {
            match c {
                b'\\' => i += 1,
                b'"' => in_str = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if c == b'"' {
            in_str = true;
            i += 1;
            continue;
        }
        if c == b'-' || c.is_ascii_digit() {
            let start = i;
            while i < text.len()
                && matches!(text[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
            {
                i += 1;
            }
            // A number ends at a delimiter: `1e4x` is not a number followed by junk.
            let ends = text
                .get(i)
                .is_none_or(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'));
            if !ends || !is_json_number(&text[start..i]) {
                return false;
            }
            continue;
        }
        i += 1;
    }
    true
}

fn is_json_number(n: &[u8]) -> bool {
    let mut i = 0;
    let digits = |i: &mut usize| {
        let s = *i;
        while *i < n.len() && n[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > s
    };
    if n.first() == Some(&b'-') {
        i += 1;
    }
    match n.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if n.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if matches!(n.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(n.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == n.len()
}

/// The `id` error message (after `invalid message: `); such an `id` is not echoed.
pub const BAD_ID: &str = "\"id\" must be an integer or a string of at most 64 bytes";
const _: () = assert!(MAX_ID_BYTES == 64, "BAD_ID names the limit");

/// Reusable buffers for reading requests (no allocation per request once warm).
pub struct Reader {
    scratch: Vec<u8>,
    buffers: simd_json::Buffers,
    /// Always empty between calls; `Tape::reset` re-lifetimes it to each input.
    tape: simd_json::Tape<'static>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader").finish_non_exhaustive()
    }
}

impl Default for Reader {
    fn default() -> Self {
        Reader {
            scratch: Vec::with_capacity(1024),
            buffers: simd_json::Buffers::new(1024),
            tape: simd_json::Tape(Vec::with_capacity(256)),
        }
    }
}

impl Reader {
    /// Reads `text` and hands its root object (or why there is none) to `f`. Never panics.
    pub fn read<R>(&mut self, text: &[u8], f: impl FnOnce(Result<Obj<'_>, ReadError>) -> R) -> R {
        let len = text.len();
        self.scratch.clear();
        self.scratch.extend_from_slice(text);
        self.scratch.resize(len + simd_json::INPUT_PADDING, b' ');
        let mut t = std::mem::replace(&mut self.tape, simd_json::Tape(Vec::new())).reset();
        let filled = simd_json::fill_tape_padded(&mut self.scratch, len, &mut self.buffers, &mut t);
        let out = match filled {
            Err(e) => f(Err(classify(e.error(), text))),
            Ok(()) if too_deep(&t.0) => f(Err(ReadError::TooDeep)),
            Ok(()) => match t.0.first() {
                Some(Node::Object { .. }) => f(Ok(Obj { nodes: &t.0, at: 0 })),
                _ => f(Err(ReadError::NotObject)),
            },
        };
        self.tape = t.reset();
        out
    }
}

/// Reads `text` once with fresh buffers (for callers that read rarely).
pub fn read<R>(text: &[u8], f: impl FnOnce(Result<Obj<'_>, ReadError>) -> R) -> R {
    Reader::default().read(text, f)
}

fn too_deep(nodes: &[Node<'_>]) -> bool {
    // Ends (exclusive node index) of the open containers.
    let mut open: Vec<usize> = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        while open.last().is_some_and(|&end| end <= i) {
            open.pop();
        }
        if let Node::Object { count, .. } | Node::Array { count, .. } = n {
            open.push(i + 1 + count);
            if open.len() > MAX_DEPTH {
                return true;
            }
        }
    }
    false
}

/// Number of tape nodes a value occupies, its header included.
fn span(node: &Node<'_>) -> usize {
    match node {
        Node::Object { count, .. } | Node::Array { count, .. } => count + 1,
        _ => 1,
    }
}

/// A JSON value on the tape.
#[derive(Clone, Copy)]
pub struct Val<'t> {
    nodes: &'t [Node<'t>],
    at: usize,
}

/// A JSON object on the tape.
#[derive(Clone, Copy)]
pub struct Obj<'t> {
    nodes: &'t [Node<'t>],
    at: usize,
}

impl<'t> Obj<'t> {
    /// Its members in document order (duplicates included).
    pub fn members(self) -> impl Iterator<Item = (&'t str, Val<'t>)> {
        let nodes = self.nodes;
        let len = match nodes[self.at] {
            Node::Object { len, .. } => len,
            _ => 0,
        };
        let mut p = self.at + 1;
        (0..len).map_while(move |_| {
            let (Some(Node::String(k)), Some(v)) = (nodes.get(p), nodes.get(p + 1)) else {
                return None;
            };
            let val = Val { nodes, at: p + 1 };
            p += 1 + span(v);
            Some((*k, val))
        })
    }

    /// The value of `key` (the last one if it is repeated).
    pub fn get(self, key: &str) -> Option<Val<'t>> {
        // `members` written out: this runs a dozen times per order, over every member.
        let nodes = self.nodes;
        let Some(Node::Object { len, .. }) = nodes.get(self.at) else {
            return None;
        };
        let mut p = self.at + 1;
        let mut found = None;
        for _ in 0..*len {
            let (Some(Node::String(k)), Some(v)) = (nodes.get(p), nodes.get(p + 1)) else {
                break;
            };
            if k.len() == key.len() && k.as_bytes() == key.as_bytes() {
                found = Some(Val { nodes, at: p + 1 });
            }
            p += 1 + span(v);
        }
        found
    }

    /// The request's `type`, when it is a string.
    pub fn kind(self) -> Option<&'t str> {
        self.get("type")?.as_str()
    }
}

impl<'t> Val<'t> {
    fn node(self) -> &'t Node<'t> {
        &self.nodes[self.at]
    }

    /// The string, if it is one.
    pub fn as_str(self) -> Option<&'t str> {
        match self.node() {
            Node::String(s) => Some(s),
            _ => None,
        }
    }

    /// The object, if it is one.
    pub fn as_obj(self) -> Option<Obj<'t>> {
        match self.node() {
            Node::Object { .. } => Some(Obj {
                nodes: self.nodes,
                at: self.at,
            }),
            _ => None,
        }
    }

    /// The elements, if it is an array.
    pub fn as_array(self) -> Option<impl Iterator<Item = Val<'t>>> {
        let Node::Array { len, .. } = *self.node() else {
            return None;
        };
        let nodes = self.nodes;
        let mut p = self.at + 1;
        Some((0..len).map(move |_| {
            let v = Val { nodes, at: p };
            p += span(&nodes[p]);
            v
        }))
    }

    /// The number of elements, if it is an array.
    pub fn array_len(self) -> Option<usize> {
        match *self.node() {
            Node::Array { len, .. } => Some(len),
            _ => None,
        }
    }

    /// True for `null`.
    pub fn is_null(self) -> bool {
        matches!(self.node(), Node::Static(StaticNode::Null))
    }

    /// The boolean, if it is one.
    pub fn as_bool(self) -> Option<bool> {
        match self.node() {
            Node::Static(StaticNode::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    /// The value, if it is a non-negative integer.
    pub fn as_u64(self) -> Option<u64> {
        match *self.node() {
            Node::Static(StaticNode::I64(v)) => u64::try_from(v).ok(),
            Node::Static(StaticNode::U64(v)) => Some(v),
            _ => None,
        }
    }

    /// Appends the value as compact JSON, object keys sorted and deduplicated (the last
    /// one wins), as `serde_json::Value` renders it: the form `publish` data is shared in.
    pub fn write_compact(self, out: &mut String) {
        match *self.node() {
            Node::String(s) => {
                out.push('"');
                escape_into(out, s);
                out.push('"');
            }
            Node::Static(StaticNode::Null) => out.push_str("null"),
            Node::Static(StaticNode::Bool(b)) => out.push_str(if b { "true" } else { "false" }),
            Node::Static(StaticNode::I64(v)) => out.push_str(itoa::Buffer::new().format(v)),
            Node::Static(StaticNode::U64(v)) => out.push_str(itoa::Buffer::new().format(v)),
            Node::Static(StaticNode::F64(v)) => match serde_json::Number::from_f64(v) {
                // The number formatting serde_json always used (shortest round trip).
                Some(n) => out.push_str(&n.to_string()),
                None => out.push_str("null"),
            },
            Node::Array { .. } => {
                out.push('[');
                for (i, v) in self.as_array().into_iter().flatten().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write_compact(out);
                }
                out.push(']');
            }
            Node::Object { .. } => {
                let obj = Obj {
                    nodes: self.nodes,
                    at: self.at,
                };
                // Sorted by key; a stable sort keeps repeated keys in document order, so the
                // last of each run is the one that wins.
                let mut members: Vec<(&str, Val<'_>)> = obj.members().collect();
                members.sort_by(|a, b| a.0.cmp(b.0));
                out.push('{');
                let mut first = true;
                for (i, (k, v)) in members.iter().enumerate() {
                    if members.get(i + 1).is_some_and(|next| next.0 == *k) {
                        continue;
                    }
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    out.push('"');
                    escape_into(out, k);
                    out.push_str("\":");
                    v.write_compact(out);
                }
                out.push('}');
            }
        }
    }
}

/// The request's `id` as JSON text to echo (an integer, or an escaped string literal), or
/// `Err(())` when it is of any other kind (refused with 4004 [`BAD_ID`], not echoed).
///
/// The one `id` rule of the protocol: an integer that fits 64 bits, or a string of at most
/// [`MAX_ID_BYTES`] bytes.
#[allow(clippy::result_unit_err)]
pub fn request_id(obj: Obj<'_>) -> Result<Option<String>, ()> {
    let Some(v) = obj.get("id") else {
        return Ok(None);
    };
    match *v.node() {
        Node::Static(StaticNode::I64(v)) => Ok(Some(itoa::Buffer::new().format(v).to_owned())),
        Node::Static(StaticNode::U64(v)) => Ok(Some(itoa::Buffer::new().format(v).to_owned())),
        Node::String(s) if s.len() <= MAX_ID_BYTES => Ok(Some(quoted(s))),
        _ => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_of(text: &str) -> Result<Option<String>, String> {
        read(text.as_bytes(), |o| match o {
            Ok(o) => request_id(o).map_err(|()| BAD_ID.to_owned()),
            Err(e) => Err(e.message().to_owned()),
        })
    }

    #[test]
    fn one_id_rule() {
        assert_eq!(id_of(r#"{"id":-7}"#), Ok(Some("-7".into())));
        assert_eq!(
            id_of(r#"{"id":18446744073709551615}"#),
            Ok(Some("18446744073709551615".into()))
        );
        assert_eq!(id_of(r#"{"id":"a\"b"}"#), Ok(Some(r#""a\"b""#.into())));
        assert_eq!(id_of(r#"{"x":1}"#), Ok(None));
        assert_eq!(id_of(r#"{"id":1,"id":"two"}"#), Ok(Some("\"two\"".into())));
        let long = format!(r#"{{"id":"{}"}}"#, "x".repeat(MAX_ID_BYTES + 1));
        for bad in [
            r#"{"id":1.5}"#,
            r#"{"id":[1]}"#,
            r#"{"id":null}"#,
            long.as_str(),
        ] {
            assert_eq!(id_of(bad), Err(BAD_ID.to_owned()), "{bad}");
        }
        assert_eq!(id_of("[1]"), Err(ReadError::NotObject.message().to_owned()));
        assert_eq!(id_of("{"), Err(ReadError::NotJson.message().to_owned()));
        // Valid JSON whose numbers tape cannot hold says so instead of "not JSON".
        let range = Err(ReadError::NumberOutOfRange.message().to_owned());
        assert_eq!(id_of(r#"{"type":"ping","id":18446744073709551616}"#), range);
        assert_eq!(id_of(r#"{"type":"ping","id":1e400}"#), range);
        assert_eq!(id_of(r#"{"type":"ping","id":-9223372036854775809}"#), range);
        for not_json in [
            r#"{"type":"ping","id":1e4x}"#,
            r#"{"id":01}"#,
            r#"{"id":1.}"#,
            r#"{"id":--1}"#,
        ] {
            assert_eq!(
                id_of(not_json),
                Err(ReadError::NotJson.message().to_owned()),
                "{not_json}"
            );
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(id_of(&deep), Err(ReadError::TooDeep.message().to_owned()));
    }

    #[test]
    fn nesting_is_limited_like_before() {
        let nest = |n: usize| format!("{{\"d\":{}{}}}", "[".repeat(n - 1), "]".repeat(n - 1));
        // The limit is serde_json's, which the desk used to parse commands with.
        assert!(serde_json::from_str::<serde_json::Value>(&nest(MAX_DEPTH)).is_ok());
        assert!(serde_json::from_str::<serde_json::Value>(&nest(MAX_DEPTH + 1)).is_err());
        assert!(read(nest(MAX_DEPTH).as_bytes(), |o| o.is_ok()));
        assert_eq!(
            read(nest(MAX_DEPTH + 1).as_bytes(), |o| o.err()),
            // Refused as before, and now said as what it is.
            Some(ReadError::TooDeep)
        );
    }

    #[test]
    fn compact_matches_serde_json() {
        for text in [
            r#"{"z":1,"a":{"y":[1,-2,3.5,1e308,true,null],"b":"\u0001\n\"é"},"m":"x","a":0}"#,
            r#"{"strength":"0.7","side":"buy","n":{"k":{},"j":[]},"f":-0.25,"e":1E2}"#,
            r#"{}"#,
        ] {
            let mut ours = String::new();
            read(text.as_bytes(), |o| {
                Val {
                    nodes: o.unwrap().nodes,
                    at: 0,
                }
                .write_compact(&mut ours)
            });
            let theirs = serde_json::from_str::<serde_json::Value>(text)
                .unwrap()
                .to_string();
            assert_eq!(ours, theirs, "{text}");
        }
    }

    proptest::proptest! {
        /// `get` is `members` filtered to the key, last one winning (the former definition),
        /// on objects with repeated, nested and escaped keys.
        #[test]
        fn get_is_the_last_member_of_that_key(
            members in proptest::collection::vec((
                proptest::sample::select(vec!["a", "b", "type", "id", "qty", "a\\u0062", "x"]),
                proptest::sample::select(vec!["1", "\"s\"", "null", "[1,{\"a\":2}]", "{\"b\":[]}", "true"]),
            ), 0..10),
            key in proptest::sample::select(vec!["a", "b", "ab", "type", "id", "qty", "x", ""]),
        ) {
            let body: Vec<String> = members.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            let text = format!("{{{}}}", body.join(","));
            read(text.as_bytes(), |o| {
                let o = o.unwrap();
                let old = o.members().filter(|(k, _)| *k == key).last().map(|(_, v)| v.at);
                proptest::prop_assert_eq!(o.get(key).map(|v| v.at), old);
                Ok(())
            })?;
        }
    }
}
