//! Model test of the seqlock protocol with `loom`: the very functions of [`seqlock`] (generic
//! over the word and fence types) run under loom's atomics, which explore every interleaving
//! of the writer and the reader and the weak-memory outcomes the C++ memory model allows for
//! the orderings used. A read that succeeds must return exactly one write's payload.
//!
//! A deliberately broken reader (it skips the second sequence check) shows the model can
//! fail: loom finds the torn read.

use std::sync::atomic::Ordering;

use loom::sync::atomic::AtomicU64 as LoomU64;
use loom::sync::Arc;

use super::seqlock::{self, Fence, Word};

struct LoomFence;

impl Fence for LoomFence {
    fn fence(order: Ordering) {
        loom::sync::atomic::fence(order);
    }
}

impl Word for LoomU64 {
    fn load(&self, order: Ordering) -> u64 {
        LoomU64::load(self, order)
    }

    fn store(&self, value: u64, order: Ordering) {
        LoomU64::store(self, value, order);
    }
}

/// Sequence word plus a two-word payload `[n, 1000 + n]` for write `n`.
fn record() -> Arc<[LoomU64; 3]> {
    Arc::new([LoomU64::new(0), LoomU64::new(0), LoomU64::new(1000)])
}

/// The writer writes `writes` times; the reader tries `reads` times with `read` and checks
/// every accepted copy.
fn model(
    writes: u64,
    reads: usize,
    bound: Option<usize>,
    read: fn(&[LoomU64], &mut [u64]) -> Option<u64>,
) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = bound;
    builder.check(move || {
        let rec = record();
        let w = Arc::clone(&rec);
        let writer = loom::thread::spawn(move || {
            for n in 1..=writes {
                seqlock::write::<LoomU64, LoomFence>(&w[..], |s| {
                    s.set(0, n);
                    s.set(1, 1000 + n);
                });
            }
        });
        for _ in 0..reads {
            let mut out = [0u64; 2];
            if let Some(seq) = read(&rec[..], &mut out) {
                assert_eq!(seq % 2, 0, "an accepted copy has an even sequence");
                assert_eq!(out[1], 1000 + out[0], "torn read: {out:?}");
                assert_eq!(out[0], seq / 2, "the copy is the payload of write seq/2");
            }
        }
        writer.join().expect("writer");
        // After the writer is done, a read always succeeds and sees the last write.
        let mut out = [0u64; 2];
        let seq = read(&rec[..], &mut out).expect("quiescent read succeeds");
        assert_eq!((seq, out), (2 * writes, [writes, 1000 + writes]));
    });
}

/// Exhaustive: every interleaving of two writes and one read attempt (and the quiescent read
/// after the join).
#[test]
fn a_successful_read_is_never_torn() {
    model(2, 1, None, seqlock::try_read::<LoomU64, LoomFence>);
}

/// Exhaustive for three writes against one read.
#[test]
fn three_writes_against_one_read() {
    model(3, 1, None, seqlock::try_read::<LoomU64, LoomFence>);
}

/// Two writes against two read attempts, with at most three preemptions (loom's usual
/// bound; exhaustive is ~40 s in a debug build).
#[test]
fn two_writes_against_two_reads_bounded() {
    model(2, 2, Some(3), seqlock::try_read::<LoomU64, LoomFence>);
}

/// The reader without its steps 3 and 5 (no fence, no second look at the sequence).
fn broken_read(record: &[LoomU64], out: &mut [u64]) -> Option<u64> {
    let (seq, words) = record.split_first()?;
    let s1 = seq.load(Ordering::Acquire);
    if s1 & 1 != 0 {
        return None;
    }
    for (o, w) in out.iter_mut().zip(words) {
        *o = w.load(Ordering::Relaxed);
    }
    Some(s1)
}

#[test]
#[should_panic(expected = "assertion")]
fn the_model_catches_a_reader_that_skips_the_recheck() {
    model(2, 1, None, broken_read);
}
