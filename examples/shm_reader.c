/*
 * A colocated C reader of tape's shared-memory book: prints an instrument's top of book
 * each time it changes, as one JSON object per line.
 *
 *   cc -O2 -std=c11 -I engine/shm -o shm_reader examples/shm_reader.c
 *   ./shm_reader /dev/shm/tape usdm:BTCUSDT [--count N] [--timeout SECS] [--once]
 *
 * It maps market.shm read-only, checks its header (layout version 1), finds the instrument
 * (waiting for it to be published, up to the timeout), then spins on the top-of-book
 * record's sequence (pausing with nanosleep when nothing changes for a while) and reads
 * each new top with the seqlock protocol of tape_shm.h. Stops after --count changes, after
 * --timeout seconds without one, or when the writer closes the file.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tape_shm.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nap(void) {
    struct timespec ts = {0, 100000}; /* 100 us: nothing changed for a while */
    nanosleep(&ts, NULL);
}

static void print_top(const tape_shm_instrument *in, const tape_shm_top *t) {
    char bp[48], bq[48], ap[48], aq[48];
    printf("{\"type\":\"top\",\"symbol\":\"%s:%s\",\"state\":\"%s\",\"update_id\":%llu,",
           tape_shm_market_name(in->market), in->symbol, tape_shm_state_name(t->state),
           (unsigned long long)t->update_id);
    if (t->has_bid)
        printf("\"bid\":\"%s\",\"bid_qty\":\"%s\",", tape_shm_fixed(t->bid_price, in->price_scale, bp),
               tape_shm_fixed(t->bid_qty, in->qty_scale, bq));
    else
        printf("\"bid\":null,\"bid_qty\":null,");
    if (t->has_ask)
        printf("\"ask\":\"%s\",\"ask_qty\":\"%s\",", tape_shm_fixed(t->ask_price, in->price_scale, ap),
               tape_shm_fixed(t->ask_qty, in->qty_scale, aq));
    else
        printf("\"ask\":null,\"ask_qty\":null,");
    printf("\"recv_ns\":%llu,\"seq\":%llu}\n", (unsigned long long)t->recv_ns,
           (unsigned long long)t->seq);
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s DIR market:SYMBOL [--count N] [--timeout SECS] [--once]\n",
                argv[0]);
        return 2;
    }
    long count = -1;
    double timeout = 3600;
    int once = 0;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--count") && i + 1 < argc)
            count = atol(argv[++i]);
        else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
            timeout = atof(argv[++i]);
        else if (!strcmp(argv[i], "--once"))
            once = 1;
        else {
            fprintf(stderr, "unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/market.shm", argv[1]);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return 1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return 1;
    }
    size_t len = (size_t)st.st_size;
    const void *base = len ? mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
    if (base == MAP_FAILED) {
        fprintf(stderr, "%s: cannot map\n", path);
        return 1;
    }
    tape_shm_market m;
    int rc = tape_shm_check_market(base, len, &m);
    if (rc != 0) {
        const char *why = rc == -3 ? "another layout version (this reader knows version 1)"
                          : rc == -2 ? "not a tape market file"
                                     : "header disagrees with layout version 1";
        fprintf(stderr, "%s: %s\n", path, why);
        return 1;
    }

    /* The instrument: "market:SYMBOL" or "SYMBOL". */
    const char *want = argv[2], *colon = strchr(want, ':');
    const char *sym = colon ? colon + 1 : want;
    tape_shm_instrument in;
    long slot = -1;
    double deadline = now_s() + timeout;
    while (slot < 0) {
        uint64_t n = tape_shm_instruments(base, &m);
        for (uint64_t i = 0; i < n && slot < 0; i++) {
            tape_shm_instrument_at(base, &m, i, &in);
            const char *mk = tape_shm_market_name(in.market);
            if (!strcasecmp(in.symbol, sym) &&
                (!colon || (strlen(mk) == (size_t)(colon - want) && !strncmp(mk, want, (size_t)(colon - want)))))
                slot = (long)i;
        }
        if (slot < 0) {
            if (now_s() > deadline) {
                fprintf(stderr, "%s: no instrument %s\n", path, want);
                return 1;
            }
            nap();
        }
    }

    tape_shm_top t;
    if (!tape_shm_read_top(base, &m, (uint64_t)slot, &t)) {
        fprintf(stderr, "the writer stays mid-write\n");
        return 1;
    }
    print_top(&in, &t);
    if (once)
        return 0;
    size_t top_at = tape_shm_slot_record(&m, (uint64_t)slot, m.top_offset);
    uint64_t last = t.seq;
    long seen = 0;
    double last_change = now_s();
    unsigned idle = 0;
    while (count < 0 || seen < count) {
        if (tape_shm_seq(base, top_at) != last) {
            if (!tape_shm_read_top(base, &m, (uint64_t)slot, &t)) {
                fprintf(stderr, "the writer stays mid-write\n");
                return 1;
            }
            if (t.seq != last) {
                last = t.seq;
                seen++;
                print_top(&in, &t);
                last_change = now_s();
                idle = 0;
                continue;
            }
        }
        if (++idle < 100000) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
            continue;
        }
        idle = 0;
        if (now_s() - last_change > timeout ||
            tape_shm_load_acquire(base, TAPE_SHM_H_STATUS) == TAPE_SHM_STATUS_CLOSED)
            break;
        nap();
    }
    munmap((void *)base, len);
    close(fd);
    return 0;
}
