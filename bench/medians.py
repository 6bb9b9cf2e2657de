#!/usr/bin/env python3
"""Print the criterion medians of the last `cargo bench -p tape-bench` run as a Markdown table.

    cargo bench -p tape-bench && python3 bench/medians.py [TARGET_DIR]

Per-element figures divide the median by the group's throughput (elements per iteration),
so fan-out rows are per delivered frame and replay rows per output event.
"""
import json
import os
import sys

target = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("CARGO_TARGET_DIR", "target")
root = os.path.join(target, "criterion")
rows = []
for dirpath, _dirs, files in os.walk(root):
    if not dirpath.endswith(os.path.join("new")) or "estimates.json" not in files:
        continue
    with open(os.path.join(dirpath, "estimates.json")) as f:
        est = json.load(f)
    with open(os.path.join(dirpath, "benchmark.json")) as f:
        meta = json.load(f)
    median_ns = est["median"]["point_estimate"]
    thr = meta.get("throughput") or {}
    elems = thr.get("Elements") or thr.get("elements") or 1
    rows.append((meta["group_id"], meta.get("function_id") or "", meta.get("value_str") or "", median_ns, elems))

def fmt(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} us"
    return f"{ns:.1f} ns"

print("| benchmark | median per iteration | per element | elements/s |")
print("|---|---|---|---|")
for group, func, value, ns, elems in sorted(rows):
    name = "/".join(x for x in (group, func, value) if x)
    per = ns / elems
    print(f"| `{name}` | {fmt(ns)} | {fmt(per)} | {1e9 / per:,.0f} |")
