//! Private commands of an edge's clients, forwarded to the origin over NATS request/reply.
//!
//! An edge authenticates its clients itself (the same `[auth]` and `[[user]]`s), but only
//! the origin journals and applies: the edge's hub makes its client records (login, private
//! subscriptions, orders, cancels, publishes, logout) as the origin's would, and the edge
//! sends each, in order, to `<subject>.cmd`; the origin checks it, journals and applies it
//! like a local client's, and it reaches every edge in the log. The desk's replies name
//! the connection, so connection ids must not collide between nodes: an edge's records carry
//! `edge_id << CONN_SHIFT | local id` (local ids stay far below, see [`to_global`]), the
//! origin's own are below `1 << CONN_SHIFT`. An edge hands its hub only the replies whose
//! prefix is its own, with the prefix removed; every other node has no such session and the
//! hub drops them.
//!
//! Request body: `"tc"`, version 1, 0, edge id (u32 LE), record kind (u16 LE), payload.
//! Reply: `ok`, or `refused: REASON`.

use tape_core::desk::ClientRecord;
use tape_core::input::RecordKind;
use thiserror::Error;

/// Bits of a connection id below an edge's prefix.
pub const CONN_SHIFT: u32 = 52;
/// Largest edge id (11 bits above [`CONN_SHIFT`]).
pub const MAX_EDGE_ID: u32 = (1 << (64 - CONN_SHIFT)) - 1;
const HEADER: usize = 10;

/// A local connection id as the rest of the deployment sees it: `None` when the local id
/// does not fit below the prefix (a socket slot reused more than 2^20 times; refused).
pub fn to_global(edge_id: u32, conn: u64) -> Option<u64> {
    (conn >> CONN_SHIFT == 0).then(|| (u64::from(edge_id) << CONN_SHIFT) | conn)
}

/// A connection id of the deployment as edge `edge_id` sees it: its own local id, or `None`
/// (another node's connection).
pub fn to_local(edge_id: u32, conn: u64) -> Option<u64> {
    (conn >> CONN_SHIFT == u64::from(edge_id)).then_some(conn & ((1 << CONN_SHIFT) - 1))
}

/// Why a forwarded command is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CommandError {
    /// Not a command body.
    #[error("not a tape command (short, no \"tc\" magic or unknown version)")]
    Malformed,
    /// Edge id 0 or too large.
    #[error("edge id {0} is not in 1..={MAX_EDGE_ID}")]
    EdgeId(u32),
    /// Only client records may be forwarded.
    #[error("record kind {0} cannot be forwarded (only client records)")]
    Kind(u16),
    /// The client record does not parse.
    #[error("bad client record: {0}")]
    Record(String),
    /// The record names a connection of another node.
    #[error("connection {conn:#x} is not edge {edge}'s")]
    Conn {
        /// The edge that sent it.
        edge: u32,
        /// The connection it named.
        conn: u64,
    },
}

/// A client record of edge `edge_id`'s hub, its connection made global, as a request body.
///
/// # Errors
/// A record that does not parse or a connection id that does not fit.
pub fn encode(edge_id: u32, kind: u16, payload: &[u8]) -> Result<Vec<u8>, CommandError> {
    if kind != RecordKind::Client as u16 {
        return Err(CommandError::Kind(kind));
    }
    let r = ClientRecord::parse(payload).map_err(|e| CommandError::Record(e.to_string()))?;
    let conn = to_global(edge_id, r.conn).ok_or(CommandError::Conn {
        edge: edge_id,
        conn: r.conn,
    })?;
    let rec = ClientRecord::encode(r.op, conn, &r.user, r.body);
    let mut out = Vec::with_capacity(HEADER + rec.len());
    out.extend_from_slice(b"tc\x01\x00");
    out.extend_from_slice(&edge_id.to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&rec);
    Ok(out)
}

/// Checks a request body on the origin: the record kind and payload to journal.
///
/// # Errors
/// [`CommandError`]: anything but a well-formed client record of the sending edge's own
/// connection.
pub fn decode(b: &[u8]) -> Result<(u16, &[u8]), CommandError> {
    if b.len() < HEADER || &b[..4] != b"tc\x01\x00" {
        return Err(CommandError::Malformed);
    }
    let edge = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    if edge == 0 || edge > MAX_EDGE_ID {
        return Err(CommandError::EdgeId(edge));
    }
    let kind = u16::from_le_bytes([b[8], b[9]]);
    if kind != RecordKind::Client as u16 {
        return Err(CommandError::Kind(kind));
    }
    let payload = &b[HEADER..];
    let r = ClientRecord::parse(payload).map_err(|e| CommandError::Record(e.to_string()))?;
    if to_local(edge, r.conn).is_none() {
        return Err(CommandError::Conn { edge, conn: r.conn });
    }
    Ok((kind, payload))
}

/// The client record inside a request body this edge sent, its connection id made local
/// again (for the hub to answer that connection); `None` for anything else.
pub fn local_record(edge_id: u32, body: &[u8]) -> Option<Vec<u8>> {
    let (_, payload) = decode(body).ok()?;
    let r = ClientRecord::parse(payload).ok()?;
    let conn = to_local(edge_id, r.conn)?;
    Some(ClientRecord::encode(r.op, conn, &r.user, r.body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tape_core::desk::ClientOp;

    #[test]
    fn round_trip_with_global_conn() {
        let rec = ClientRecord::encode(ClientOp::Login, 7, "alice", b"");
        let body = encode(3, RecordKind::Client as u16, &rec).unwrap();
        let (kind, payload) = decode(&body).unwrap();
        assert_eq!(kind, RecordKind::Client as u16);
        let r = ClientRecord::parse(payload).unwrap();
        assert_eq!(r.conn, (3 << CONN_SHIFT) | 7);
        assert_eq!(r.user, "alice");
        assert_eq!(to_local(3, r.conn), Some(7));
        assert_eq!(to_local(4, r.conn), None);
        assert_eq!(to_local(3, 7), None, "an origin's connection is no edge's");
        assert_eq!(
            local_record(3, &body),
            Some(rec),
            "back to the hub's own record"
        );
        assert_eq!(local_record(4, &body), None, "another edge's");
        assert_eq!(local_record(3, b"tc"), None);
    }

    #[test]
    fn refuses_what_an_edge_may_not_send() {
        let rec = ClientRecord::encode(ClientOp::Login, 7, "alice", b"");
        assert_eq!(
            encode(3, RecordKind::DeskSetup as u16, &rec),
            Err(CommandError::Kind(RecordKind::DeskSetup as u16))
        );
        let mut body = encode(3, RecordKind::Client as u16, &rec).unwrap();
        body[4] = 0;
        assert_eq!(decode(&body), Err(CommandError::EdgeId(0)));
        // An edge naming another node's connection.
        let other = ClientRecord::encode(ClientOp::Login, (5 << CONN_SHIFT) | 7, "alice", b"");
        let mut forged = b"tc\x01\x00".to_vec();
        forged.extend_from_slice(&3u32.to_le_bytes());
        forged.extend_from_slice(&(RecordKind::Client as u16).to_le_bytes());
        forged.extend_from_slice(&other);
        assert!(matches!(
            decode(&forged),
            Err(CommandError::Conn { edge: 3, .. })
        ));
        assert_eq!(decode(b"tc"), Err(CommandError::Malformed));
    }

    proptest! {
        #[test]
        fn decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&b);
        }
    }
}
