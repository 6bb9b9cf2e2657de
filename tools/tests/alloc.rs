//! The `tape` process keeps the memory it frees (`tape_tools::alloc`). Its own test binary:
//! the allocator's settings are process-wide, and no other test may have moved glibc's
//! dynamic thresholds first.

use tape_tools::alloc::{keep_freed_memory, Tuning};

/// The process's minor page faults so far (`/proc/self/stat`).
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // After the command's name in parentheses: state, ppid, pgrp, session, tty, tpgid,
    // flags, then minflt.
    let rest = &stat[stat.rfind(')').expect("stat has the name in parentheses") + 1..];
    rest.split_whitespace()
        .nth(7)
        .and_then(|n| n.parse().ok())
        .expect("minflt")
}

/// Allocates `bytes`, writes one byte to each page, frees it; returns the faults taken.
fn touch_and_free(bytes: usize) -> u64 {
    let before = minor_faults();
    let mut block: Vec<u8> = Vec::with_capacity(bytes);
    for page in block.spare_capacity_mut().chunks_mut(4096) {
        page[0].write(1);
    }
    std::hint::black_box(&block);
    drop(block);
    minor_faults().saturating_sub(before)
}

#[test]
fn a_freed_block_is_reused_without_faulting_its_pages_again() {
    let tuning = keep_freed_memory();
    let user = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    if user.contains("glibc.malloc.") {
        assert_eq!(tuning, Tuning::LeftToUser, "the user's settings stand");
        return;
    }
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        assert_eq!(tuning, Tuning::Unsupported);
        return;
    }
    assert_eq!(tuning, Tuning::Applied);
    assert_eq!(keep_freed_memory(), Tuning::Applied, "idempotent");
    // 8 MiB: past glibc's default 128 KiB mmap threshold, so by default it is a mapping of
    // its own, unmapped when freed, and every page faults again the next time; and more
    // than the heap's top pad, so a default trim threshold would hand half of it back.
    const BYTES: usize = 8 << 20;
    const PAGES: u64 = (BYTES / 4096) as u64;
    let first = touch_and_free(BYTES);
    assert!(
        first >= PAGES / 2,
        "the first touch faults ({first} faults for {PAGES} pages)"
    );
    for round in 0..3 {
        let again = touch_and_free(BYTES);
        assert!(
            again < PAGES / 8,
            "round {round}: the freed block was handed back ({again} faults for {PAGES} pages)"
        );
    }
}
