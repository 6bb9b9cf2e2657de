/*
 * tape_shm.h: reading tape's shared-memory publication from C (C11, GCC or Clang).
 *
 * The layout, field by field, and the read protocol are in docs/shm.md; this header is
 * the same layout for C (a Rust test, engine/shm/tests/c_header.rs, checks every #define
 * below against the Rust definition). Layout version 1.
 *
 * Files (in the directory `tape run --shm DIR` names, /dev/shm/tape by default):
 *   market.shm        header, instrument directory, one slot per instrument
 *   user-NAME.shm     one per desk user: portfolio, positions, open orders
 *
 * Every field is part of an aligned 8-byte word and the writer stores whole words; read
 * every word of a live record with an 8-byte atomic load (tape_shm_load), and every record
 * with the seqlock protocol (tape_shm_read), which retries while the writer is in the middle
 * of it and never returns a mix of two writes. Integers are little-endian. Prices and
 * quantities are integer mantissas: value = mantissa / 10^scale, with the instrument's
 * price and quantity scales from its directory entry; money is at scale 8.
 *
 * Usage: map the file read-only (mmap(PROT_READ, MAP_SHARED) of its whole length), check
 * it with tape_shm_check_market, find the instrument in the directory, then read records.
 * examples/shm_reader.c is a complete reader.
 */
#ifndef TAPE_SHM_H
#define TAPE_SHM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "tape's shared-memory layout is little-endian"
#endif

#define TAPE_SHM_VERSION 1
#define TAPE_SHM_MARKET_MAGIC 0x4d4d485345504154ULL /* "TAPESHMM" */
#define TAPE_SHM_USER_MAGIC 0x554d485345504154ULL   /* "TAPESHMU" */
#define TAPE_SHM_HEADER_SIZE 256
#define TAPE_SHM_MONEY_SCALE 8
#define TAPE_SHM_STATUS_LIVE 1
#define TAPE_SHM_STATUS_CLOSED 2

/* Header fields (byte offsets, each a uint64_t). */
#define TAPE_SHM_H_MAGIC 0
#define TAPE_SHM_H_VERSION 8
#define TAPE_SHM_H_HEADER_SIZE 16
#define TAPE_SHM_H_FILE_SIZE 24
#define TAPE_SHM_H_LEVELS 32          /* market: levels per side; user: max positions */
#define TAPE_SHM_H_MAX_INSTRUMENTS 40 /* market: slots; user: max open orders */
#define TAPE_SHM_H_DIR_OFFSET 48
#define TAPE_SHM_H_DIR_ENTRY_SIZE 56
#define TAPE_SHM_H_SLOTS_OFFSET 64
#define TAPE_SHM_H_SLOT_SIZE 72
#define TAPE_SHM_H_TOP_OFFSET 80
#define TAPE_SHM_H_TOP_SIZE 88
#define TAPE_SHM_H_TRADE_OFFSET 96
#define TAPE_SHM_H_TRADE_SIZE 104
#define TAPE_SHM_H_TICKER_OFFSET 112
#define TAPE_SHM_H_TICKER_SIZE 120
#define TAPE_SHM_H_DEPTH_OFFSET 128
#define TAPE_SHM_H_DEPTH_SIZE 136
#define TAPE_SHM_H_WRITER_PID 144
#define TAPE_SHM_H_CREATED_NS 152
#define TAPE_SHM_H_INSTRUMENTS 192 /* live: published directory entries (acquire) */
#define TAPE_SHM_H_STATUS 200      /* live: TAPE_SHM_STATUS_* */
#define TAPE_SHM_H_GENERATION 208  /* live: the engine's pass */

/* User file header fields. */
#define TAPE_SHM_U_MONEY_SCALE 48
#define TAPE_SHM_U_PORTFOLIO_OFFSET 56
#define TAPE_SHM_U_PORTFOLIO_SIZE 64
#define TAPE_SHM_U_POSITIONS_OFFSET 72
#define TAPE_SHM_U_POSITIONS_SIZE 80
#define TAPE_SHM_U_POSITION_ENTRY_SIZE 88
#define TAPE_SHM_U_ORDERS_OFFSET 96
#define TAPE_SHM_U_ORDERS_SIZE 104
#define TAPE_SHM_U_ORDER_ENTRY_SIZE 112
#define TAPE_SHM_U_WRITER_PID 120
#define TAPE_SHM_U_CREATED_NS 128
#define TAPE_SHM_U_USER_LEN 136
#define TAPE_SHM_U_USER_NAME 144 /* 64 bytes */

/* Directory entry (64 bytes): market code, scales, symbol. */
#define TAPE_SHM_DIR_ENTRY_SIZE 64
#define TAPE_SHM_D_MARKET 0      /* uint8: 0 spot, 1 usdm, 2 coinm */
#define TAPE_SHM_D_PRICE_SCALE 1 /* uint8 */
#define TAPE_SHM_D_QTY_SCALE 2   /* uint8 */
#define TAPE_SHM_D_SYMBOL_LEN 3  /* uint8 */
#define TAPE_SHM_D_SYMBOL 8      /* 32 bytes, zero padded */
#define TAPE_SHM_MAX_SYMBOL 32

/* Every record: uint64 sequence at 0 (odd while being written), then its payload. */
#define TAPE_SHM_SEQ 0

/* Top of book (64 bytes). */
#define TAPE_SHM_TOP_SIZE 64
#define TAPE_SHM_TOP_UPDATE_ID 8
#define TAPE_SHM_TOP_RECV_NS 16
#define TAPE_SHM_TOP_BID_PRICE 24
#define TAPE_SHM_TOP_BID_QTY 32
#define TAPE_SHM_TOP_ASK_PRICE 40
#define TAPE_SHM_TOP_ASK_QTY 48
#define TAPE_SHM_TOP_STATE 56   /* uint8: book state code */
#define TAPE_SHM_TOP_PRESENT 57 /* uint8: bit 0 bid, bit 1 ask */

/* Last trade (64 bytes). */
#define TAPE_SHM_TRADE_SIZE 64
#define TAPE_SHM_TRADE_TRADE_ID 8
#define TAPE_SHM_TRADE_RECV_NS 16
#define TAPE_SHM_TRADE_PRICE 24
#define TAPE_SHM_TRADE_QTY 32
#define TAPE_SHM_TRADE_TIME_MS 40
#define TAPE_SHM_TRADE_COUNT 48
#define TAPE_SHM_TRADE_FLAGS 56 /* uint8: bit 0 buyer is maker, bit 1 aggregate */

/* 24h ticker (128 bytes). */
#define TAPE_SHM_TICKER_SIZE 128
#define TAPE_SHM_TICKER_RECV_NS 8
#define TAPE_SHM_TICKER_EVENT_TIME_MS 16
#define TAPE_SHM_TICKER_LAST 24
#define TAPE_SHM_TICKER_OPEN 32
#define TAPE_SHM_TICKER_HIGH 40
#define TAPE_SHM_TICKER_LOW 48
#define TAPE_SHM_TICKER_PRICE_CHANGE 56
#define TAPE_SHM_TICKER_CHANGE_PCT 64
#define TAPE_SHM_TICKER_VOLUME 72
#define TAPE_SHM_TICKER_QUOTE_VOLUME 80
#define TAPE_SHM_TICKER_PCT_SCALE 88
#define TAPE_SHM_TICKER_VOLUME_SCALE 89
#define TAPE_SHM_TICKER_QUOTE_VOLUME_SCALE 90
#define TAPE_SHM_TICKER_FLAGS 91 /* uint8: bit 0 change_pct present, bit 1 mini */

/* Depth (32 + 32 N bytes, rounded up to 64). */
#define TAPE_SHM_DEPTH_UPDATE_ID 8
#define TAPE_SHM_DEPTH_RECV_NS 16
#define TAPE_SHM_DEPTH_STATE 24     /* uint8 */
#define TAPE_SHM_DEPTH_BID_COUNT 26 /* uint16 */
#define TAPE_SHM_DEPTH_ASK_COUNT 28 /* uint16 */
#define TAPE_SHM_DEPTH_LEVELS 32    /* N bids {int64 price, int64 qty}, then N asks */

/* User records. */
#define TAPE_SHM_PORTFOLIO_SIZE 128
#define TAPE_SHM_TABLE_RECV_NS 8
#define TAPE_SHM_TABLE_COUNT 16
#define TAPE_SHM_TABLE_TOTAL 24
#define TAPE_SHM_TABLE_ENTRIES 64
#define TAPE_SHM_POSITION_SIZE 128
#define TAPE_SHM_ORDER_SIZE 192

/* Book states. */
#define TAPE_SHM_BOOK_NONE 0
#define TAPE_SHM_BOOK_AWAITING_SNAPSHOT 1
#define TAPE_SHM_BOOK_SNAPSHOT_LOADED 2
#define TAPE_SHM_BOOK_SYNCED 3
#define TAPE_SHM_BOOK_OUT_OF_SYNC 4

/* The most words one record copy needs (a depth record of 1000 levels per side). */
#define TAPE_SHM_MAX_LEVELS 1000

/* One 8-byte word of the map at byte offset `off` (a multiple of 8), relaxed. */
static inline uint64_t tape_shm_load(const void *base, size_t off) {
    return __atomic_load_n((const uint64_t *)((const char *)base + off), __ATOMIC_RELAXED);
}

/* One 8-byte word with acquire ordering (the directory count, the status). */
static inline uint64_t tape_shm_load_acquire(const void *base, size_t off) {
    return __atomic_load_n((const uint64_t *)((const char *)base + off), __ATOMIC_ACQUIRE);
}

/*
 * One attempt of the seqlock read protocol on the record at byte offset `off`: copies its
 * first `n` payload words (the words after the sequence) into `out` and returns 1 with the
 * sequence in *seq when the copy is one write's payload, 0 when a write was in progress or
 * overlapped the copy (try again).
 *
 *   1. s1 = seq, acquire; odd: a write is in progress.
 *   2. the payload words, relaxed, into `out`.
 *   3. acquire fence: the loads of 2 happen before the load of 4.
 *   4. s2 = seq, relaxed; the copy is good when s1 == s2.
 */
static inline int tape_shm_try_read(const void *base, size_t off, uint64_t *out, size_t n,
                                    uint64_t *seq) {
    const uint64_t *rec = (const uint64_t *)((const char *)base + off);
    uint64_t s1 = __atomic_load_n(&rec[0], __ATOMIC_ACQUIRE);
    if (s1 & 1)
        return 0;
    for (size_t i = 0; i < n; i++)
        out[i] = __atomic_load_n(&rec[1 + i], __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    uint64_t s2 = __atomic_load_n(&rec[0], __ATOMIC_RELAXED);
    if (s1 != s2)
        return 0;
    if (seq)
        *seq = s1;
    return 1;
}

/* tape_shm_try_read until it succeeds or `max_tries` attempts failed (returns 0 then:
 * the writer is stopped mid-write). A write takes nanoseconds. */
static inline int tape_shm_read(const void *base, size_t off, uint64_t *out, size_t n,
                                uint64_t *seq, unsigned long max_tries) {
    for (unsigned long i = 0; i < max_tries; i++) {
        if (tape_shm_try_read(base, off, out, n, seq))
            return 1;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
    return 0;
}

/* The record's sequence now (acquire): changes by 2 with every write. */
static inline uint64_t tape_shm_seq(const void *base, size_t off) {
    return tape_shm_load_acquire(base, off);
}

/* Static layout of a market file, from its header. */
typedef struct {
    uint64_t file_size, levels, max_instruments, dir_offset, slots_offset, slot_size;
    uint64_t top_offset, trade_offset, ticker_offset, depth_offset, depth_size;
} tape_shm_market;

/* Checks a mapped market file of `len` bytes. Returns 0 and fills `m`, or a negative code:
 * -1 too short, -2 not a tape market file, -3 another layout version, -4 a header that
 * disagrees with version 1's layout. */
static inline int tape_shm_check_market(const void *base, size_t len, tape_shm_market *m) {
    if (len < TAPE_SHM_HEADER_SIZE)
        return -1;
    if (tape_shm_load(base, TAPE_SHM_H_MAGIC) != TAPE_SHM_MARKET_MAGIC)
        return -2;
    if (tape_shm_load(base, TAPE_SHM_H_VERSION) != TAPE_SHM_VERSION)
        return -3;
    m->file_size = tape_shm_load(base, TAPE_SHM_H_FILE_SIZE);
    m->levels = tape_shm_load(base, TAPE_SHM_H_LEVELS);
    m->max_instruments = tape_shm_load(base, TAPE_SHM_H_MAX_INSTRUMENTS);
    m->dir_offset = tape_shm_load(base, TAPE_SHM_H_DIR_OFFSET);
    m->slots_offset = tape_shm_load(base, TAPE_SHM_H_SLOTS_OFFSET);
    m->slot_size = tape_shm_load(base, TAPE_SHM_H_SLOT_SIZE);
    m->top_offset = tape_shm_load(base, TAPE_SHM_H_TOP_OFFSET);
    m->trade_offset = tape_shm_load(base, TAPE_SHM_H_TRADE_OFFSET);
    m->ticker_offset = tape_shm_load(base, TAPE_SHM_H_TICKER_OFFSET);
    m->depth_offset = tape_shm_load(base, TAPE_SHM_H_DEPTH_OFFSET);
    m->depth_size = tape_shm_load(base, TAPE_SHM_H_DEPTH_SIZE);
    if (tape_shm_load(base, TAPE_SHM_H_HEADER_SIZE) != TAPE_SHM_HEADER_SIZE ||
        tape_shm_load(base, TAPE_SHM_H_TOP_SIZE) != TAPE_SHM_TOP_SIZE ||
        tape_shm_load(base, TAPE_SHM_H_TRADE_SIZE) != TAPE_SHM_TRADE_SIZE ||
        tape_shm_load(base, TAPE_SHM_H_TICKER_SIZE) != TAPE_SHM_TICKER_SIZE ||
        tape_shm_load(base, TAPE_SHM_H_DIR_ENTRY_SIZE) != TAPE_SHM_DIR_ENTRY_SIZE ||
        m->file_size != len || m->levels == 0 || m->levels > TAPE_SHM_MAX_LEVELS ||
        m->slots_offset + m->max_instruments * m->slot_size != m->file_size ||
        m->depth_offset + m->depth_size > m->slot_size)
        return -4;
    return 0;
}

/* A directory entry. */
typedef struct {
    uint8_t market, price_scale, qty_scale;
    char symbol[TAPE_SHM_MAX_SYMBOL + 1];
} tape_shm_instrument;

/* Instruments published so far. */
static inline uint64_t tape_shm_instruments(const void *base, const tape_shm_market *m) {
    uint64_t n = tape_shm_load_acquire(base, TAPE_SHM_H_INSTRUMENTS);
    return n < m->max_instruments ? n : m->max_instruments;
}

/* Directory entry `slot` (which must be below tape_shm_instruments()). */
static inline void tape_shm_instrument_at(const void *base, const tape_shm_market *m,
                                          uint64_t slot, tape_shm_instrument *out) {
    size_t at = (size_t)(m->dir_offset + slot * TAPE_SHM_DIR_ENTRY_SIZE);
    uint64_t w[5];
    for (int i = 0; i < 5; i++)
        w[i] = tape_shm_load(base, at + 8 * (size_t)i);
    out->market = (uint8_t)w[0];
    out->price_scale = (uint8_t)(w[0] >> 8);
    out->qty_scale = (uint8_t)(w[0] >> 16);
    size_t len = (uint8_t)(w[0] >> 24);
    if (len > TAPE_SHM_MAX_SYMBOL)
        len = TAPE_SHM_MAX_SYMBOL;
    memcpy(out->symbol, &w[1], len);
    out->symbol[len] = 0;
}

/* Market names by code. */
static inline const char *tape_shm_market_name(uint8_t code) {
    return code == 0 ? "spot" : code == 1 ? "usdm" : code == 2 ? "coinm" : "?";
}

/* Book state names by code. */
static inline const char *tape_shm_state_name(uint8_t code) {
    static const char *names[] = {"none", "awaiting_snapshot", "snapshot_loaded", "synced",
                                  "out_of_sync"};
    return code < 5 ? names[code] : "none";
}

/* A top of book, decoded. */
typedef struct {
    uint64_t seq, update_id, recv_ns;
    int64_t bid_price, bid_qty, ask_price, ask_qty;
    uint8_t state, has_bid, has_ask;
} tape_shm_top;

/* Byte offset of slot `slot`'s record at `record_offset` in the slot. */
static inline size_t tape_shm_slot_record(const tape_shm_market *m, uint64_t slot,
                                          uint64_t record_offset) {
    return (size_t)(m->slots_offset + slot * m->slot_size + record_offset);
}

/* Reads slot `slot`'s top of book; 1 on success, 0 if the writer stayed mid-write. */
static inline int tape_shm_read_top(const void *base, const tape_shm_market *m, uint64_t slot,
                                    tape_shm_top *t) {
    uint64_t w[7];
    if (!tape_shm_read(base, tape_shm_slot_record(m, slot, m->top_offset), w, 7, &t->seq,
                       100000000UL))
        return 0;
    t->update_id = w[0];
    t->recv_ns = w[1];
    t->bid_price = (int64_t)w[2];
    t->bid_qty = (int64_t)w[3];
    t->ask_price = (int64_t)w[4];
    t->ask_qty = (int64_t)w[5];
    t->state = (uint8_t)w[6];
    t->has_bid = (uint8_t)(w[6] >> 8) & 1;
    t->has_ask = ((uint8_t)(w[6] >> 8) >> 1) & 1;
    return 1;
}

/* `mantissa / 10^scale` as an exact decimal string into `buf` (at least 48 bytes). */
static inline char *tape_shm_fixed(int64_t mantissa, uint8_t scale, char *buf) {
    char digits[24];
    int n = 0;
    uint64_t v = mantissa < 0 ? (uint64_t)0 - (uint64_t)mantissa : (uint64_t)mantissa;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n <= scale)
        digits[n++] = '0';
    char *p = buf;
    if (mantissa < 0)
        *p++ = '-';
    for (int i = n - 1; i >= 0; i--) {
        *p++ = digits[i];
        if (i == scale && scale > 0)
            *p++ = '.';
    }
    *p = 0;
    return buf;
}

#endif /* TAPE_SHM_H */
