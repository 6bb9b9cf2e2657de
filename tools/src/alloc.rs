//! The `tape` process keeps the memory it frees (glibc's allocator, tuned at start).
//!
//! By default glibc hands freed memory back to the system: a block of 128 KiB or more is
//! its own mapping, unmapped when freed, and a heap's free top is trimmed past 128 KiB. On
//! the hosts measured a page touched for the first time costs ~2 µs, and an unmap or trim in
//! a process whose two threads both run can also make the kernel interrupt the other CPU to
//! flush its TLB. A replay (whose engine runs on a second thread, new for each replay on
//! demand) then pays again and again for the same memory: the journal reader's window, the
//! batches, the books. Kept, it costs a new `tape replay` of the bundled session ~3 % of its
//! time less, and a replay in a process that has replayed before ~2-4 % less
//! (BENCHMARKS.md, fifteenth pass).
//!
//! [`keep_freed_memory`] sets, once, the values glibc's own dynamic rule reaches after a
//! large block is freed (a 32 MiB mmap threshold, a 64 MiB trim threshold), and lets each
//! heap grow 4 MiB of address space at a time (reserved, not touched: no memory is used until
//! written). Blocks under 32 MiB then come from the heaps and go back to them; up to 64 MiB
//! free at a heap's top stays with the process. The segment maps (`memmap2`) are not
//! allocations and are not affected.
//!
//! A user who tunes the allocator through `GLIBC_TUNABLES` (any `glibc.malloc.` setting)
//! keeps those settings: nothing is changed then.
//!
//! # Safety
//!
//! The crate's one `unsafe` is the `mallopt` call here (the rest of the crate denies
//! `unsafe_code`): a C function that sets allocator parameters under the allocator's own
//! lock, touching no memory the caller owns.

/// What [`keep_freed_memory`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tuning {
    /// The thresholds are set.
    Applied,
    /// `GLIBC_TUNABLES` tunes the allocator: its settings stand.
    LeftToUser,
    /// Not glibc (the allocator is as it was), or glibc refused one of the values (that
    /// one is as it was, the others are set).
    Unsupported,
}

/// Bytes from which a block is mapped on its own (glibc's `DEFAULT_MMAP_THRESHOLD_MAX` on
/// 64-bit targets: the most its dynamic threshold reaches).
pub const MMAP_THRESHOLD: usize = 32 << 20;

/// Free bytes at a heap's top kept rather than handed back (twice the mmap threshold, as
/// glibc's dynamic rule sets it).
pub const TRIM_THRESHOLD: usize = 64 << 20;

/// Address space a heap grows by beyond each request (reserved, not touched).
pub const TOP_PAD: usize = 4 << 20;

/// Tunes glibc's allocator to keep freed memory in the process (see the module docs). Call
/// it first thing in `main`, before other threads start. Idempotent.
pub fn keep_freed_memory() -> Tuning {
    let user = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    if user.contains("glibc.malloc.") {
        return Tuning::LeftToUser;
    }
    set_thresholds()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_thresholds() -> Tuning {
    let mut all = true;
    for (param, value) in [
        (libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        (libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        (libc::M_TOP_PAD, TOP_PAD),
    ] {
        let value = libc::c_int::try_from(value).unwrap_or(libc::c_int::MAX);
        // SAFETY: `mallopt` only changes the allocator's parameters, under the allocator's
        // own lock; it reads and writes no memory of ours. It returns 0 for a value it
        // refuses, and then leaves that parameter as it was.
        #[allow(unsafe_code)]
        let ok = unsafe { libc::mallopt(param, value) };
        all &= ok == 1;
    }
    if all {
        Tuning::Applied
    } else {
        Tuning::Unsupported
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_thresholds() -> Tuning {
    Tuning::Unsupported
}
