#!/usr/bin/env python3
"""A colocated Python reader of tape's shared-memory book (standard library only).

    python3 examples/shm_reader.py /dev/shm/tape usdm:BTCUSDT [--count N] [--timeout S] [--once]

Prints the instrument's top of book, then each change, as one JSON object per line. It maps
market.shm read-only, checks its header (layout version 1; docs/shm.md), finds the
instrument in the directory (waiting up to the timeout for it to appear), and reads the top
of book with the seqlock protocol: sequence, payload, sequence again, retried until the two
sequences are equal and even.

Memory ordering: Python has no atomics or fences. The copy is exact on x86-64, whose loads
are not reordered with other loads (TSO), so reading the sequence, the payload and the
sequence again in program order is the protocol; `struct.unpack_from` copies each aligned
8-byte word with one load. On weakly ordered CPUs (arm64) use the C or Rust reader.
"""
import argparse
import json
import mmap
import os
import struct
import sys
import time

VERSION = 1
MARKET_MAGIC = int.from_bytes(b"TAPESHMM", "little")
HEADER_SIZE = 256
STATUS_CLOSED = 2
# Header fields (byte offsets, each a little-endian u64).
H_MAGIC, H_VERSION, H_HEADER_SIZE, H_FILE_SIZE = 0, 8, 16, 24
H_LEVELS, H_MAX_INSTRUMENTS, H_DIR_OFFSET, H_DIR_ENTRY_SIZE = 32, 40, 48, 56
H_SLOTS_OFFSET, H_SLOT_SIZE, H_TOP_OFFSET, H_TOP_SIZE = 64, 72, 80, 88
H_INSTRUMENTS, H_STATUS = 192, 200
DIR_ENTRY_SIZE = 64
TOP_SIZE = 64
MARKETS = {0: "spot", 1: "usdm", 2: "coinm"}
STATES = ["none", "awaiting_snapshot", "snapshot_loaded", "synced", "out_of_sync"]

U64 = struct.Struct("<Q")
# Top of book: seq, update_id, recv_ns, bid price, bid qty, ask price, ask qty, flags.
TOP = struct.Struct("<QQQqqqqQ")


def fixed(mantissa, scale):
    """mantissa / 10^scale as an exact decimal string."""
    sign = "-" if mantissa < 0 else ""
    digits = str(abs(mantissa)).rjust(scale + 1, "0")
    if scale == 0:
        return sign + digits
    return f"{sign}{digits[:-scale]}.{digits[-scale:]}"


class Market:
    """market.shm, mapped read-only and checked."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "market.shm")
        with open(self.path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < HEADER_SIZE:
                raise SystemExit(f"{self.path}: too short for a tape shared-memory file")
            self.map = mmap.mmap(f.fileno(), size, mmap.MAP_SHARED, mmap.PROT_READ)
        h = lambda off: U64.unpack_from(self.map, off)[0]
        if h(H_MAGIC) != MARKET_MAGIC:
            raise SystemExit(f"{self.path}: not a tape market file")
        if h(H_VERSION) != VERSION:
            raise SystemExit(
                f"{self.path}: layout version {h(H_VERSION)}, this reader understands {VERSION} only")
        if h(H_HEADER_SIZE) != HEADER_SIZE or h(H_FILE_SIZE) != size or h(H_TOP_SIZE) != TOP_SIZE \
                or h(H_DIR_ENTRY_SIZE) != DIR_ENTRY_SIZE:
            raise SystemExit(f"{self.path}: header disagrees with layout version {VERSION}")
        self.h = h
        self.max_instruments = h(H_MAX_INSTRUMENTS)
        self.dir_offset = h(H_DIR_OFFSET)
        self.slots_offset = h(H_SLOTS_OFFSET)
        self.slot_size = h(H_SLOT_SIZE)
        self.top_offset = h(H_TOP_OFFSET)

    def instruments(self):
        """(slot, market, symbol, price scale, qty scale) of every published instrument."""
        n = min(self.h(H_INSTRUMENTS), self.max_instruments)
        out = []
        for slot in range(n):
            at = self.dir_offset + slot * DIR_ENTRY_SIZE
            market, ps, qs, length = struct.unpack_from("<BBBB", self.map, at)
            symbol = bytes(self.map[at + 8: at + 8 + min(length, 32)]).decode("ascii", "replace")
            out.append((slot, MARKETS.get(market, "?"), symbol, ps, qs))
        return out

    def find(self, name):
        market, _, symbol = name.rpartition(":")
        for inst in self.instruments():
            if inst[2].upper() == symbol.upper() and (not market or inst[1] == market):
                return inst
        return None

    def top_at(self, slot):
        return self.slots_offset + slot * self.slot_size + self.top_offset

    def seq(self, at):
        return U64.unpack_from(self.map, at)[0]

    def read_top(self, at):
        """One consistent copy of the top-of-book record (seqlock), as a tuple."""
        for _ in range(10_000_000):  # a write takes nanoseconds; this is a stopped writer
            s1 = U64.unpack_from(self.map, at)[0]
            if s1 & 1:
                continue  # a write is in progress
            rec = TOP.unpack_from(self.map, at)
            s2 = U64.unpack_from(self.map, at)[0]
            if s1 == s2 and rec[0] == s1:
                return rec
        raise SystemExit(f"{self.path}: the writer stays in the middle of a write")

    def closed(self):
        return self.h(H_STATUS) == STATUS_CLOSED


def top_json(inst, rec):
    _, market, symbol, ps, qs = inst
    seq, update_id, recv_ns, bp, bq, ap, aq, flags = rec
    present = (flags >> 8) & 0xFF
    return {
        "type": "top",
        "symbol": f"{market}:{symbol}",
        "state": STATES[flags & 0xFF] if (flags & 0xFF) < len(STATES) else "none",
        "update_id": update_id,
        "bid": fixed(bp, ps) if present & 1 else None,
        "bid_qty": fixed(bq, qs) if present & 1 else None,
        "ask": fixed(ap, ps) if present & 2 else None,
        "ask_qty": fixed(aq, qs) if present & 2 else None,
        "recv_ns": recv_ns,
        "seq": seq,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("symbol", help="market:SYMBOL or SYMBOL")
    ap.add_argument("--count", type=int, default=None, help="stop after N changes")
    ap.add_argument("--timeout", type=float, default=3600.0,
                    help="stop after this many seconds without a change")
    ap.add_argument("--once", action="store_true")
    args = ap.parse_args()

    m = Market(args.dir)
    deadline = time.monotonic() + args.timeout
    inst = m.find(args.symbol)
    while inst is None:
        if time.monotonic() > deadline:
            sys.exit(f"{m.path}: no instrument {args.symbol}")
        time.sleep(0.01)  # polling for the instrument to be published, bounded
        inst = m.find(args.symbol)
    at = m.top_at(inst[0])
    rec = m.read_top(at)
    print(json.dumps(top_json(inst, rec)), flush=True)
    if args.once:
        return
    last, seen, last_change, idle = rec[0], 0, time.monotonic(), 0
    while args.count is None or seen < args.count:
        if m.seq(at) != last:
            rec = m.read_top(at)
            if rec[0] != last:
                last, seen, last_change, idle = rec[0], seen + 1, time.monotonic(), 0
                print(json.dumps(top_json(inst, rec)), flush=True)
                continue
        idle += 1
        if idle < 2000:
            continue
        idle = 0
        if time.monotonic() - last_change > args.timeout or m.closed():
            break
        time.sleep(0.0001)  # nothing changed for a while: nap instead of burning the core


if __name__ == "__main__":
    main()
