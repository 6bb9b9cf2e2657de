//! Shareable message bytes without an allocation per message.
//!
//! A message frozen for its recipients used to be copied into a fresh `Bytes` (one
//! allocation) whose first clone promoted it to a shared buffer (a second one). [`Arena`]
//! copies it instead into a large reference-counted chunk and hands out a view of it: the
//! recipients' clones and drops only count references. A chunk whose messages are all gone
//! is reclaimed in place (`BytesMut::try_reclaim`, no allocation). When every chunk still
//! holds a message in flight (a slow client's queue, a stream's cached last value) a new
//! chunk joins the pool, so the pool settles at one more than the number of chunks such
//! messages pin and then allocates nothing; past [`MAX_CHUNKS`] a pinned chunk is replaced instead (one
//! allocation per chunk) and freed with its last message.
//!
//! The price: a message held keeps its whole chunk alive. A stalled client's queue or
//! conflation slot pins every distinct chunk it references (32 KiB each, however small the
//! messages) until it drains or is closed as a slow consumer, so the memory held is at most
//! one chunk per held message and never more than the chunks published within the
//! slow-client timeout. Long-lived holders must not share an arena with the hot path for
//! that reason: each `resume` history (`server/history.rs`) copies into an arena of its own.

use bytes::BytesMut;
use tungstenite::Utf8Bytes;

/// Bytes per chunk.
const CHUNK: usize = 32 << 10;
/// Chunks kept for reuse at most (4 MiB). The pool settles at one chunk more than the
/// chunks pinned by long-lived messages (each stream's cached BBO, each venue's status), so
/// a deployment with fewer than ~120 of those allocates nothing once warm.
const MAX_CHUNKS: usize = 128;
/// Larger messages (deep book snapshots) get a buffer of their own; book updates of busy
/// books reach ~10 KiB.
const MAX_PACKED: usize = CHUNK / 2;

/// A few large chunks that messages are packed into (see the module docs). Empty until the
/// first message.
#[derive(Debug, Default)]
pub(crate) struct Arena {
    chunks: Vec<BytesMut>,
    cur: usize,
    /// Chunks kept at most, if more than [`MAX_CHUNKS`] were reserved.
    max: usize,
}

/// Bytes per chunk, for callers sizing a reservation.
pub(crate) const CHUNK_BYTES: usize = CHUNK;

impl Arena {
    /// Allocates `chunks` chunks now and keeps up to that many (or [`MAX_CHUNKS`]), for a
    /// holder whose pinned bytes are bounded (a history within its budget): it then never
    /// allocates per message, not even while it fills up.
    pub(crate) fn reserve(&mut self, chunks: usize) {
        self.max = self.max.max(chunks);
        while self.chunks.len() < chunks {
            let mut chunk = BytesMut::with_capacity(CHUNK);
            // A chunk's first split allocates its shared header: done here, not on the
            // first message it holds.
            drop(chunk.split());
            self.chunks.push(chunk);
        }
    }

    /// A shareable copy of `s`.
    pub(crate) fn freeze(&mut self, s: &str) -> Utf8Bytes {
        if s.len() > MAX_PACKED {
            return Utf8Bytes::from(s);
        }
        let room = |c: &BytesMut| c.capacity() - c.len() >= s.len();
        if !self.chunks.get(self.cur).is_some_and(room) {
            self.next_chunk();
        }
        let chunk = &mut self.chunks[self.cur];
        chunk.extend_from_slice(s.as_bytes());
        let bytes = chunk.split().freeze();
        Utf8Bytes::try_from(bytes).expect("copied from a str")
    }

    /// Moves to a chunk with room for any packed message: a free one reclaimed in place if
    /// there is one, else a new one.
    fn next_chunk(&mut self) {
        let n = self.chunks.len();
        for k in 1..=n {
            let i = (self.cur + k) % n;
            if self.chunks[i].try_reclaim(CHUNK) {
                self.cur = i;
                return;
            }
        }
        let fresh = BytesMut::with_capacity(CHUNK);
        if n < MAX_CHUNKS.max(self.max) {
            self.chunks.push(fresh);
            self.cur = n;
        } else {
            // Every chunk still holds messages in flight: replace the next one; its memory
            // goes when its last message does.
            self.cur = (self.cur + 1) % n;
            self.chunks[self.cur] = fresh;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_keep_their_bytes_and_chunks_are_reused_once_free() {
        let mut a = Arena::default();
        let big = "x".repeat(MAX_PACKED + 1);
        assert_eq!(a.freeze(&big).as_str(), big);
        assert!(
            a.chunks.is_empty(),
            "a large message does not touch the chunks"
        );
        // Fill well past one chunk while holding every message: more chunks join.
        let msg = "y".repeat(1000);
        let held: Vec<Utf8Bytes> = (0..3 * CHUNK / 1000).map(|_| a.freeze(&msg)).collect();
        assert!(held.iter().all(|m| m.as_str() == msg));
        let pool = a.chunks.len();
        assert!(pool >= 3, "{pool} chunks");
        drop(held);
        // Everything dropped: the chunks are reclaimed, not replaced.
        let ptrs: Vec<*const u8> = a.chunks.iter().map(|c| c.as_ptr()).collect();
        for i in 0..10 * CHUNK / 1000 {
            let m = a.freeze(&format!("{i:0>1000}"));
            assert_eq!(m.as_str(), format!("{i:0>1000}"));
        }
        assert_eq!(a.chunks.len(), pool, "no chunk added");
        for c in &a.chunks {
            let start = c.as_ptr() as usize;
            assert!(
                ptrs.iter().any(|p| (*p as usize).abs_diff(start) <= CHUNK),
                "chunk reused"
            );
        }

        // Past the cap, a pinned chunk is replaced and its messages stay intact.
        let held: Vec<Utf8Bytes> = (0..(MAX_CHUNKS + 2) * CHUNK / 1000)
            .map(|i| a.freeze(&format!("{i:0>1000}")))
            .collect();
        assert_eq!(a.chunks.len(), MAX_CHUNKS);
        for (i, m) in held.iter().enumerate() {
            assert_eq!(m.as_str(), format!("{i:0>1000}"));
        }
    }
}
