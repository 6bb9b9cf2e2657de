#!/usr/bin/env bash
# Scale-out numbers for BENCHMARKS.md ("Edges over NATS"): on one machine, with a real
# nats-server (JetStream, file store on a temp dir):
#
#  1. throughput: an origin replays `tape synth --secs 20 --rate 20000 --seed 3` (400k
#     frames) as fast as it can while publishing; then an edge started after the whole log is
#     in the stream catches up: its records/s is what one edge keeps up with (NATS delivery +
#     decode + engine + hub, no clients);
#  2. latency: the origin replays a synthetic session at 2000 frames/s in real time, one edge
#     follows; `tape loadgen` (10 clients, bbo + trades) on the origin and on the edge at once
#     measures tick-to-client (origin receive -> client arrival) on each: the difference is
#     what the edge adds.
#
# Env: TAPE_BIN (default target/release/tape), NATS_SERVER (default nats-server).
# Usage: bash bench/nats_edge.sh   (about 2 minutes; every process is stopped at the end)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${TAPE_BIN:-${CARGO_TARGET_DIR:-target}/release/tape}
NATS=${NATS_SERVER:-nats-server}
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
status() { curl -s "http://127.0.0.1:$1/status"; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d' + sys.argv[1]))" "$1"; }
wait_for() { # port expr value timeout_s
  local until=$((SECONDS + $4))
  while (( SECONDS < until )); do
    v=$(status "$1" | field "$2" 2>/dev/null || true)
    [[ $v == "$3" ]] && return 0
    sleep 0.02
  done
  echo "timeout waiting for $2 == $3 on :$1 (last: $v)" >&2; return 1
}
now() { date +%s.%N; }

NP=$(port)
"$NATS" -js -a 127.0.0.1 -p "$NP" -sd "$WORK/store" >"$WORK/nats.log" 2>&1 & PIDS+=($!)
until (echo > /dev/tcp/127.0.0.1/$NP) 2>/dev/null; do sleep 0.05; done
URL=nats://127.0.0.1:$NP

echo "== throughput"
"$BIN" synth --secs 20 --rate 20000 --seed 3 -o "$WORK/synth" >/dev/null
N=$("$BIN" dump --json "$WORK/synth" | wc -l)
OP=$(port)
t0=$(now)
"$BIN" run --journal "$WORK/synth" --once --speed 0 --listen 127.0.0.1:$OP --nats "$URL" \
  --status-interval 0 >"$WORK/origin1.log" 2>&1 & PIDS+=($!)
wait_for "$OP" "['nats']['acked']" "$N" 300
t1=$(now)
echo "origin: $N records applied and acknowledged by JetStream in $(python3 -c "print(f'{$t1-$t0:.2f}')") s: $(python3 -c "print(int($N/($t1-$t0)))") records/s"
EP=$(port)
t0=$(now)
"$BIN" edge --nats "$URL" --listen 127.0.0.1:$EP --status-interval 0 >"$WORK/edge1.log" 2>&1 & PIDS+=($!)
wait_for "$EP" "['nats']['applied']" "$N" 300
t1=$(now)
echo "edge catch-up: $N records in $(python3 -c "print(f'{$t1-$t0:.2f}')") s: $(python3 -c "print(int($N/($t1-$t0)))") records/s (from process start)"
[[ $(status "$OP" | field "['feed']['digest']") == $(status "$EP" | field "['feed']['digest']") ]] && echo "digests agree"
kill "${PIDS[1]}" "${PIDS[2]}"; wait "${PIDS[1]}" "${PIDS[2]}" 2>/dev/null || true

echo "== latency (2000 frames/s in real time, 10 clients each on origin and edge, bbo + trades)"
"$BIN" synth --secs 60 --rate 2000 --seed 5 -o "$WORK/slow" >/dev/null
OP=$(port); EP=$(port)
"$BIN" run --journal "$WORK/slow" --once --speed 1 --listen 127.0.0.1:$OP --nats "$URL" \
  --status-interval 0 --exit-after 50 >"$WORK/origin2.log" 2>&1 & PIDS+=($!)
sleep 0.5
"$BIN" edge --nats "$URL" --listen 127.0.0.1:$EP --status-interval 0 --exit-after 50 \
  >"$WORK/edge2.log" 2>&1 & PIDS+=($!)
wait_for "$EP" "['nats']['state']" "live" 30
LG=()
for side in origin:$OP edge:$EP; do
  "$BIN" loadgen --url "ws://127.0.0.1:${side#*:}/ws" --clients 10 --channels bbo,trades \
    --symbols BTCUSDT,ETHUSDT --duration 20 --warmup 2 --json >"$WORK/${side%%:*}.json" &
  LG+=($!)
done
wait "${LG[@]}"
for side in origin edge; do
  python3 - "$WORK/$side.json" "$side" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
l = d["latency_ns"]
print(f"{sys.argv[2]:6} messages {d.get('messages')}  tick-to-client us: p50 {l['p50']/1e3:.1f}  p99 {l['p99']/1e3:.1f}  p99.9 {l['p999']/1e3:.1f}")
PY
done
