#!/usr/bin/env bash
# Live tick-to-client latency (loadgen: arrival - recv_ns) with and without 4 replay
# sessions at speed=0 on the same node: does replay slow live clients?
#
#   bash bench/replay_impact.sh [TAPE_BIN] [SECONDS]
#
# The node serves the bundled session live at recorded pace (looping) on /ws, and a
# `tape synth --secs 20 --rate 20000 --seed 3` journal (400k records) on /replay. Runs:
# baseline, with 4 `curl /replay.ndjson?speed=0` loops (each restarts when its replay ends),
# baseline again. Prints loadgen's JSON percentiles of each run.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/tape}
SECS=${2:-15}
WORK=$(mktemp -d)
LOOPS=()
trap 'kill "${LOOPS[@]}" "$SERVER_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
"$BIN" synth --secs 20 --rate 20000 --seed 3 --out "$WORK/synth" >/dev/null
cat >"$WORK/bench.toml" <<TOML
[server]
listen = "127.0.0.1:0"
[feed]
journal = "fixtures/session"
speed = 1
loop = true
[engine]
idle = "${IDLE:-spin}"
[replay]
public = true
max_sessions = 4
journals = [{ name = "synth", dir = "$WORK/synth" }]
TOML
coproc SERVER { exec "$BIN" run --config "$WORK/bench.toml" --status-interval 0 --exit-after 600; }
SERVER_PID=$SERVER_PID
line=""
read -r -t 30 -u "${SERVER[0]}" line || true
[[ $line == "tape serving ws://"* ]] || { echo "no URL: '$line'" >&2; exit 1; }
URL=${line#tape serving }
ADDR=${URL#ws://}
ADDR=${ADDR%%/*}

measure() { # $1 = label
  "$BIN" loadgen --url "$URL" --clients 20 --channels bbo,trades,book --symbols usdm:BTCUSDT,spot:BTCUSDT \
    --duration "$SECS" --warmup 2 --json >"$WORK/$1.json"
  echo "$1: $(jq -c '{messages: .messages, latency_ns: .latency_ns, cpu_pct: .cpu_pct}' "$WORK/$1.json" 2>/dev/null || cat "$WORK/$1.json")"
}

# The replay clients run at nice 19 too: on this 2-core machine they stand in for clients on
# other hosts, and must not take the CPU from loadgen, which measures the live side.
replay_loop() {
  local c=""
  trap 'kill $c 2>/dev/null; exit 0' TERM
  while :; do
    nice -n 19 curl -sN "http://$ADDR/replay.ndjson?journal=synth&speed=0&channels=bbo,trades,book&symbols=usdm:BTCUSDT,usdm:ETHUSDT&depth=20" >/dev/null &
    c=$!
    wait "$c" || true
  done
}

measure baseline
for _ in 1 2 3 4; do
  replay_loop &
  LOOPS+=($!)
done
sleep 2 # the replays are running (no synchronisation: a benchmark, not a test)
echo "replay sessions active: $(curl -s "http://$ADDR/status" | jq -c '.replay.active // "n/a"')"
measure with_4_replays
kill "${LOOPS[@]}" 2>/dev/null || true
wait "${LOOPS[@]}" 2>/dev/null || true
echo "replay sessions started: $(curl -s "http://$ADDR/status" | jq -c '.replay.started')"
measure baseline_again
