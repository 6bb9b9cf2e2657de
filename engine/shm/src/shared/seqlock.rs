//! The seqlock protocol, step by step, with the memory ordering of every access.
//!
//! A record is a run of 8-byte words: word 0 is its sequence number, the rest its payload.
//! One writer (the engine thread) changes it; any number of readers, in any process, copy
//! it. The writer never waits; a reader retries while a write overlaps its copy.
//!
//! Writer, for the record whose sequence is `s` (always even between writes):
//!
//! 1. `seq.store(s + 1, Relaxed)`: odd, "being changed";
//! 2. `fence(Release)`: no payload store below can become visible before step 1 (a reader
//!    that sees any new payload word is bound to see the odd sequence, or later, at its
//!    step 5);
//! 3. the payload words, `store(_, Relaxed)`;
//! 4. `seq.store(s + 2, Release)`: even again; every payload store of step 3 is visible to
//!    whoever reads this value with acquire.
//!
//! Reader:
//!
//! 1. `s1 = seq.load(Acquire)`; odd: a write is in progress, try again;
//! 2. the payload words, `load(Relaxed)`, into a private copy;
//! 3. `fence(Acquire)`: the loads of step 2 happen before the load of step 5;
//! 4. (nothing is used from the copy yet);
//! 5. `s2 = seq.load(Relaxed)`; the copy is one write's payload exactly when `s1 == s2`:
//!    had step 2 seen any store of a later write, the fence pair (writer step 2, reader step
//!    3) makes that write's step 1 visible here, so `s2 != s1`.
//!
//! Every access is an atomic operation on an aligned 8-byte word, so nothing here is a data
//! race in Rust's (C++'s) memory model, whatever the timing; a torn copy is possible and is
//! exactly what step 5 rejects. This is the protocol of Boehm, "Can seqlocks get along with
//! programming language memory models?" (MSPC 2012), fig. 6.
//!
//! The functions are generic over the word type so that the model test (`loom`, in
//! `tests_model.rs`) checks this very code under every interleaving and every weak-memory
//! outcome loom explores; the product uses [`std::sync::atomic::AtomicU64`].

use std::sync::atomic::{AtomicU64, Ordering};

/// An 8-byte atomic word.
pub(crate) trait Word {
    fn load(&self, order: Ordering) -> u64;
    fn store(&self, value: u64, order: Ordering);
}

/// The memory-fence primitive that goes with a [`Word`] type.
pub(crate) trait Fence {
    fn fence(order: Ordering);
}

impl Word for AtomicU64 {
    #[inline(always)]
    fn load(&self, order: Ordering) -> u64 {
        AtomicU64::load(self, order)
    }

    #[inline(always)]
    fn store(&self, value: u64, order: Ordering) {
        AtomicU64::store(self, value, order);
    }
}

/// The standard library's fence.
pub(crate) struct StdFence;

impl Fence for StdFence {
    #[inline(always)]
    fn fence(order: Ordering) {
        std::sync::atomic::fence(order);
    }
}

/// Writes one record: `payload` stores the payload words (word 0 of its slice is the
/// record's word 1) through [`Stores`], between the writer's steps 1-2 and 4.
#[inline(always)]
pub(crate) fn write<W: Word, F: Fence>(record: &[W], payload: impl FnOnce(Stores<'_, W>)) {
    let Some((seq, words)) = record.split_first() else {
        return;
    };
    // Only this writer stores `seq`, so a relaxed load reads its own last store.
    let s = seq.load(Ordering::Relaxed);
    seq.store(s.wrapping_add(1), Ordering::Relaxed); // step 1: odd
    F::fence(Ordering::Release); // step 2
    payload(Stores { words }); // step 3
    seq.store(s.wrapping_add(2), Ordering::Release); // step 4: even
}

/// The payload stores of one write (step 3): relaxed, as the protocol needs and no more.
pub(crate) struct Stores<'a, W: Word> {
    words: &'a [W],
}

impl<W: Word> Stores<'_, W> {
    /// Stores `value` into payload word `i` (ignored beyond the record: callers index with
    /// the layout's constants, so this never happens).
    #[inline(always)]
    pub(crate) fn set(&self, i: usize, value: u64) {
        if let Some(w) = self.words.get(i) {
            w.store(value, Ordering::Relaxed);
        }
    }

    /// Stores `values` into payload words `at..`.
    #[inline(always)]
    pub(crate) fn set_all(&self, at: usize, values: &[u64]) {
        if let Some(dst) = self.words.get(at..) {
            for (w, v) in dst.iter().zip(values) {
                w.store(*v, Ordering::Relaxed);
            }
        }
    }
}

/// One read attempt (reader steps 1-5): fills `out` with payload words `0..out.len()` and
/// returns the (even) sequence number when the copy is one write's payload, `None` when a
/// write was in progress or overlapped the copy.
#[inline(always)]
pub(crate) fn try_read<W: Word, F: Fence>(record: &[W], out: &mut [u64]) -> Option<u64> {
    let (seq, words) = record.split_first()?;
    let s1 = seq.load(Ordering::Acquire); // step 1
    if s1 & 1 != 0 {
        return None;
    }
    for (o, w) in out.iter_mut().zip(words) {
        *o = w.load(Ordering::Relaxed); // step 2
    }
    F::fence(Ordering::Acquire); // step 3
    let s2 = seq.load(Ordering::Relaxed); // step 5
    (s1 == s2).then_some(s1)
}

/// The record's sequence number as it is now (acquire: a reader that then sees it unchanged
/// by [`try_read`] has the payload of this write or a later one).
#[inline(always)]
pub(crate) fn sequence<W: Word>(record: &[W]) -> u64 {
    record.first().map_or(0, |s| s.load(Ordering::Acquire))
}
