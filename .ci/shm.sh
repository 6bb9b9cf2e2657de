#!/usr/bin/env bash
# Colocated readers against a live `tape run --shm` on the bundled session: the C example
# (built here with cc), the Python example (stdlib mmap + struct) and `tape shm-read` (the
# Rust reader) follow usdm:BTCUSDT's top of book in /dev/shm while a Python `websockets`
# client of the same server takes its `bbo` messages. For every update_id a reader and the
# client both saw, bid, bid_qty, ask and ask_qty must be equal. Every wait is bounded and the
# server is always stopped.
#
# Env: TAPE_BIN (a built tape binary; default target/release/tape, built if missing),
#      CLIENTS_DIR (work dir; default $CARGO_TARGET_DIR or target, then /clients).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET_DIR=${CARGO_TARGET_DIR:-target}
WORK=${CLIENTS_DIR:-$TARGET_DIR/clients}
BIN=${TAPE_BIN:-$TARGET_DIR/release/tape}
SYMBOL=usdm:BTCUSDT
mkdir -p "$WORK"
if [[ ! -x $BIN ]]; then
  timeout 1200 cargo build --release -p tape-tools --bin tape
fi
PY=$(bash .ci/venv.sh)

echo "==> cc examples/shm_reader.c"
cc -O2 -std=c11 -Wall -Wextra -Werror -I engine/shm -o "$WORK/shm_reader" examples/shm_reader.c

# tmpfs, as in production; a directory of this run's own.
SHM_ROOT=$(mktemp -d /dev/shm/tape-ci-XXXXXX)
SHM=$SHM_ROOT/tape
coproc SERVER { exec "$BIN" run --listen 127.0.0.1:0 --speed 5 --status-interval 0 --shm "$SHM" --exit-after 120; }
SERVER_PID=$SERVER_PID
cleanup() {
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  rm -rf "$SHM_ROOT"
}
trap cleanup EXIT
line=""
read -r -t 30 -u "${SERVER[0]}" line || true
[[ $line == "tape serving ws://"* ]] || { echo "tape run did not report its URL: '$line'" >&2; exit 1; }
URL=${line#tape serving }
echo "server: $URL, shared memory: $SHM"
# The directory exists once the node is bound (before it serves): the readers wait (bounded)
# for the instrument to be published.

echo "==> readers (C, Python, tape shm-read) and a websockets client, at once"
timeout 60 "$WORK/shm_reader" "$SHM" "$SYMBOL" --count 300 --timeout 10 >"$WORK/shm_c.out" &
C_PID=$!
timeout 60 "$PY" examples/shm_reader.py "$SHM" "$SYMBOL" --count 300 --timeout 10 >"$WORK/shm_py.out" &
PY_PID=$!
timeout 60 "$BIN" shm-read "$SHM" --symbol "$SYMBOL" --json --count 300 --timeout 10 >"$WORK/shm_rust.out" &
RUST_PID=$!
timeout 60 "$PY" - "$URL" "$SYMBOL" "$WORK/shm_ws.out" <<'PYEOF'
import asyncio, json, sys, time
import websockets

url, symbol, out = sys.argv[1], sys.argv[2], sys.argv[3]

async def main():
    async with websockets.connect(url, open_timeout=10) as ws:
        await ws.send(json.dumps({"type": "subscribe", "id": 1, "channels": ["bbo"], "symbols": [symbol]}))
        # ~150 top-of-book changes per pass of the session at 5x (the simulator loops it).
        seen, n, end = {}, 0, time.monotonic() + 35
        with open(out, "w") as f:
            while n < 300 and time.monotonic() < end:
                try:
                    raw = await asyncio.wait_for(ws.recv(), timeout=end - time.monotonic())
                except asyncio.TimeoutError:
                    break
                msg = json.loads(raw)
                d = msg.get("data") or {}
                # `status` messages (a book that lost sync) carry no quote.
                if msg.get("channel") == "bbo" and "update_id" in d:
                    seen[d["update_id"]] = d
                    n += 1
                    f.write(json.dumps(d) + "\n")
    print(f"websocket client: {n} bbo messages, {len(seen)} update ids")

asyncio.run(main())
PYEOF
rc=0
for pid in $C_PID $PY_PID $RUST_PID; do
  wait "$pid" || rc=$?
done
[[ $rc -eq 0 ]] || { echo "a reader failed (exit $rc)" >&2; tail -n 3 "$WORK"/shm_*.out >&2; exit 1; }

"$PY" - "$WORK" <<'PYEOF'
import json, sys
from decimal import Decimal

work = sys.argv[1]

def quote(d):
    return tuple(None if d.get(k) is None else Decimal(d[k]) for k in ("bid", "bid_qty", "ask", "ask_qty"))

ws = {}
for line in open(f"{work}/shm_ws.out"):
    d = json.loads(line)
    ws[d["update_id"]] = quote(d)
failed = False
for name in ("c", "py", "rust"):
    tops = {}
    for line in open(f"{work}/shm_{name}.out"):
        d = json.loads(line)
        if d.get("type") == "top" and d["state"] == "synced":
            tops[d["update_id"]] = quote(d)
    common = [u for u in tops if u in ws]
    bad = [u for u in common if tops[u] != ws[u]]
    print(f"{name} reader: {len(tops)} synced tops, {len(common)} update ids also seen by the websocket client, {len(bad)} different")
    for u in bad[:5]:
        print(f"  update_id {u}: shared memory {tops[u]}, websocket {ws[u]}", file=sys.stderr)
    if bad or len(common) < 50:
        failed = True
sys.exit("shared-memory readers disagree with the websocket client" if failed else 0)
PYEOF
echo "shared memory: the C, Python and Rust readers see the websocket client's top of book"

# A full /dev/shm (a real tmpfs, CI runs as root): too small for the files is an error at
# start that says so; files that fit have their space reserved, so filling the file system
# afterwards cannot make the engine's stores fault (SIGBUS): it keeps publishing.
if [[ $(id -u) -eq 0 ]]; then
  echo "==> a full tmpfs"
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  MNT=$SHM_ROOT/tiny
  mkdir -p "$MNT"
  mount -t tmpfs -o size=256k tapeshmfull "$MNT"
  cleanup() {
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    umount -l "$MNT" 2>/dev/null || true
    rm -rf "$SHM_ROOT"
  }
  if timeout 30 "$BIN" run --listen 127.0.0.1:0 --status-interval 0 --shm "$MNT/tape" --exit-after 5 \
      >"$WORK/shm_full.out" 2>"$WORK/shm_full.err"; then
    echo "tape run started with a 1 MiB market file on a 256 KiB tmpfs" >&2; exit 1
  fi
  grep -q "cannot reserve" "$WORK/shm_full.err" || { echo "no clear error:" >&2; cat "$WORK/shm_full.err" >&2; exit 1; }
  echo "too small: $(grep -o 'shm: .*' "$WORK/shm_full.err" | head -c 200)"
  printf '[server]\nlisten = "127.0.0.1:0"\nstatus_interval_secs = 0\n[sim]\nspeed = 5\n[shm]\nenabled = true\ndir = "%s"\nlevels = 5\nmax_instruments = 8\n' \
    "$MNT/tape" >"$WORK/shm_small.toml"
  coproc SMALL { exec "$BIN" run --config "$WORK/shm_small.toml" --exit-after 60; }
  SERVER_PID=$SMALL_PID
  line=""
  read -r -t 30 -u "${SMALL[0]}" line || true
  [[ $line == "tape serving ws://"* ]] || { echo "tape run (small files) did not start: '$line'" >&2; exit 1; }
  # Fill what is left of the file system.
  dd if=/dev/zero of="$MNT/filler" bs=4k 2>/dev/null || true
  [[ $(df --output=avail -k "$MNT" | tail -n 1 | tr -d ' ') -lt 8 ]] || { echo "the tmpfs is not full" >&2; exit 1; }
  timeout 60 "$BIN" shm-read "$MNT/tape" --symbol "$SYMBOL" --json --count 20 --timeout 20 >"$WORK/shm_full_read.out"
  changes=$(grep -c '"type":"top"' "$WORK/shm_full_read.out" || true)
  kill -0 "$SERVER_PID" || { echo "tape run died on a full tmpfs" >&2; exit 1; }
  [[ $changes -ge 21 ]] || { echo "only $changes tops read on the full tmpfs" >&2; exit 1; }
  echo "full tmpfs: tape run still publishing ($changes tops read after the file system filled up)"
fi
