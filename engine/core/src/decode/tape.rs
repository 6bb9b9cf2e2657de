//! Reading typed fields out of a simd-json tape without building a DOM.
//!
//! An object is walked once, left to right, and the tape index of each value whose key tape
//! cares about is recorded in a [`Fields`] table. Event decoders then read fields by key in
//! whatever order the exchange sent them. Indices are `u32` (simd-json caps input at 4 GiB)
//! and 0 means absent: index 0 is always the root container, never a field value.

use simd_json::{Node, StaticNode};

use super::error::DecodeError;
use super::number::fixed as parse_fixed;
use crate::fixed::{parse_decimal, Decimal, Price, Qty};
use crate::msg::Level;

/// Keys tape reads besides the one-letter event keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Key {
    /// `pu`, previous final update id (futures depth).
    Pu = 52,
    /// `lastUpdateId` (snapshot).
    LastUpdateId,
    /// `bids` (snapshot).
    Bids,
    /// `asks` (snapshot).
    Asks,
    /// `symbol` (COIN-M snapshot).
    Symbol,
}

/// Slots 0..52 are the one-letter keys `A..=Z` then `a..=z`; the named keys follow.
const SLOTS: usize = Key::Symbol as usize + 1;

/// The slot of a one-letter key.
///
/// # Panics
/// On anything but an ASCII letter. Call sites use the `k!` macro, which evaluates this at
/// compile time, so a typo fails the build instead of reaching run time.
#[inline]
pub(super) const fn letter(c: u8) -> usize {
    match c {
        b'A'..=b'Z' => (c - b'A') as usize,
        b'a'..=b'z' => (c - b'a') as usize + 26,
        _ => panic!("not a one-letter key"),
    }
}

#[inline]
fn slot_of(key: &[u8]) -> Option<usize> {
    match key {
        [c @ (b'A'..=b'Z' | b'a'..=b'z')] => Some(letter(*c)),
        b"pu" => Some(Key::Pu as usize),
        b"lastUpdateId" => Some(Key::LastUpdateId as usize),
        b"bids" => Some(Key::Bids as usize),
        b"asks" => Some(Key::Asks as usize),
        b"symbol" => Some(Key::Symbol as usize),
        _ => None,
    }
}

/// Number of tape nodes a value occupies, its header included.
#[inline]
pub(super) fn span(node: &Node<'_>) -> usize {
    match node {
        Node::Object { count, .. } | Node::Array { count, .. } => count + 1,
        _ => 1,
    }
}

/// JSON type name of a node, for error messages.
pub(super) fn type_name(node: &Node<'_>) -> &'static str {
    match node {
        Node::String(_) => "string",
        Node::Object { .. } => "object",
        Node::Array { .. } => "array",
        Node::Static(s) => static_type_name(s),
    }
}

/// JSON type name of a scalar, for error messages: one wording for every decoder, whichever
/// simd-json representation (tape node or borrowed value) it reads.
pub(crate) fn static_type_name(node: &StaticNode) -> &'static str {
    match node {
        StaticNode::Null => "null",
        StaticNode::Bool(_) => "bool",
        StaticNode::F64(_) => "float",
        StaticNode::I64(v) if *v < 0 => "negative integer",
        _ => "integer",
    }
}

/// The fields of one JSON object, by key, plus the tape they index into.
pub(super) struct Fields<'t, 'i> {
    nodes: &'t [Node<'i>],
    at: [u32; SLOTS],
    /// Message name for error context.
    pub event: &'static str,
}

impl<'t, 'i> Fields<'t, 'i> {
    /// Walks the object whose header is at `obj` (the caller checked it is an object).
    /// Duplicate keys: the last one wins, like most JSON readers.
    #[inline]
    pub fn of(nodes: &'t [Node<'i>], obj: usize, event: &'static str) -> Self {
        let mut f = Fields {
            nodes,
            at: [0; SLOTS],
            event,
        };
        let len = match nodes.get(obj) {
            Some(Node::Object { len, .. }) => *len,
            _ => 0,
        };
        let mut p = obj + 1;
        for _ in 0..len {
            // simd-json guarantees a string key followed by a value; `get` keeps a broken
            // tape from panicking anyway.
            let (Some(Node::String(k)), Some(v)) = (nodes.get(p), nodes.get(p + 1)) else {
                break;
            };
            if let Some(slot) = slot_of(k.as_bytes()) {
                f.at[slot] = (p + 1) as u32;
            }
            p += 1 + span(v);
        }
        f
    }

    /// Whether the key in `slot` was present.
    #[inline]
    pub fn has(&self, slot: usize) -> bool {
        self.at[slot] != 0
    }

    /// Tape index of the value in `slot`, if present.
    #[inline]
    pub fn index(&self, slot: usize) -> Option<usize> {
        match self.at[slot] {
            0 => None,
            i => Some(i as usize),
        }
    }

    #[inline]
    fn node(&self, slot: usize) -> Option<&'t Node<'i>> {
        self.index(slot).and_then(|i| self.nodes.get(i))
    }

    #[cold]
    pub fn missing(&self, field: &'static str) -> DecodeError {
        DecodeError::MissingField {
            event: self.event,
            field,
        }
    }

    #[cold]
    fn wrong(&self, field: &'static str, expected: &'static str, got: &Node<'_>) -> DecodeError {
        DecodeError::WrongType {
            event: self.event,
            field,
            expected,
            found: type_name(got),
        }
    }

    /// An optional string field.
    #[inline]
    pub fn opt_str(
        &self,
        slot: usize,
        field: &'static str,
    ) -> Result<Option<&'i str>, DecodeError> {
        match self.node(slot) {
            None => Ok(None),
            Some(Node::String(s)) => Ok(Some(s)),
            Some(n) => Err(self.wrong(field, "string", n)),
        }
    }

    /// A required string field.
    #[inline]
    pub fn str(&self, slot: usize, field: &'static str) -> Result<&'i str, DecodeError> {
        self.opt_str(slot, field)?
            .ok_or_else(|| self.missing(field))
    }

    /// An optional non-negative integer (ids, timestamps).
    #[inline]
    pub fn opt_u64(&self, slot: usize, field: &'static str) -> Result<Option<u64>, DecodeError> {
        match self.node(slot) {
            None => Ok(None),
            Some(Node::Static(StaticNode::U64(v))) => Ok(Some(*v)),
            Some(Node::Static(StaticNode::I64(v))) if *v >= 0 => Ok(Some(*v as u64)),
            Some(n) => Err(self.wrong(field, "unsigned integer", n)),
        }
    }

    /// A required non-negative integer.
    #[inline]
    pub fn u64(&self, slot: usize, field: &'static str) -> Result<u64, DecodeError> {
        self.opt_u64(slot, field)?
            .ok_or_else(|| self.missing(field))
    }

    /// A required boolean.
    #[inline]
    pub fn bool(&self, slot: usize, field: &'static str) -> Result<bool, DecodeError> {
        match self.node(slot) {
            None => Err(self.missing(field)),
            Some(Node::Static(StaticNode::Bool(b))) => Ok(*b),
            Some(n) => Err(self.wrong(field, "bool", n)),
        }
    }

    /// A required decimal string at a fixed scale.
    #[inline]
    pub fn fixed(&self, slot: usize, field: &'static str, scale: u8) -> Result<i64, DecodeError> {
        let s = self.str(slot, field)?;
        parse_fixed(s.as_bytes(), scale).map_err(|error| DecodeError::BadNumber {
            event: self.event,
            field,
            level: None,
            error,
        })
    }

    /// A required price string.
    #[inline]
    pub fn price(&self, slot: usize, field: &'static str, scale: u8) -> Result<Price, DecodeError> {
        self.fixed(slot, field, scale).map(Price)
    }

    /// A required quantity string.
    #[inline]
    pub fn qty(&self, slot: usize, field: &'static str, scale: u8) -> Result<Qty, DecodeError> {
        self.fixed(slot, field, scale).map(Qty)
    }

    /// A required decimal string kept at its own scale.
    #[inline]
    pub fn decimal(&self, slot: usize, field: &'static str) -> Result<Decimal, DecodeError> {
        let s = self.str(slot, field)?;
        parse_decimal(s.as_bytes()).map_err(|error| DecodeError::BadNumber {
            event: self.event,
            field,
            level: None,
            error,
        })
    }

    /// A required array of `["price","qty"]` levels, appended to `out` (cleared first).
    pub fn levels(
        &self,
        slot: usize,
        field: &'static str,
        price_scale: u8,
        qty_scale: u8,
        out: &mut Vec<Level>,
    ) -> Result<(), DecodeError> {
        out.clear();
        let Some(i) = self.index(slot) else {
            return Err(self.missing(field));
        };
        let len = match &self.nodes[i] {
            Node::Array { len, .. } => *len,
            n => return Err(self.wrong(field, "array", n)),
        };
        out.reserve(len);
        let bad_level = |index| DecodeError::BadLevel {
            event: self.event,
            field,
            index,
        };
        let bad_number = |index, error| DecodeError::BadNumber {
            event: self.event,
            field,
            level: Some(index),
            error,
        };
        // Each well-formed level is exactly three nodes: the pair header and two strings.
        let mut p = i + 1;
        for index in 0..len {
            let Some([Node::Array { len: 2, count: 2 }, Node::String(price), Node::String(qty)]) =
                self.nodes.get(p..p + 3)
            else {
                return Err(bad_level(index));
            };
            let price =
                parse_fixed(price.as_bytes(), price_scale).map_err(|e| bad_number(index, e))?;
            let qty = parse_fixed(qty.as_bytes(), qty_scale).map_err(|e| bad_number(index, e))?;
            out.push(Level {
                price: Price(price),
                qty: Qty(qty),
            });
            p += 3;
        }
        Ok(())
    }
}
