#!/usr/bin/env bash
# Real third-party clients against `tape run`: the Python `websockets` example and websocat
# subscribe and must see bbo, trades, ticker and book messages. Everything is time-bounded
# and the server is always stopped.
#
# Env: TAPE_BIN (a built tape binary; default target/release/tape, built if missing),
#      CLIENTS_DIR (work dir for the venv; default $CARGO_TARGET_DIR or target, then /clients).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET_DIR=${CARGO_TARGET_DIR:-target}
WORK=${CLIENTS_DIR:-$TARGET_DIR/clients}
BIN=${TAPE_BIN:-$TARGET_DIR/release/tape}
mkdir -p "$WORK"

if [[ ! -x $BIN ]]; then
  timeout 1200 cargo build --release -p tape-tools --bin tape
fi
PY=$(bash .ci/venv.sh)

# 5x recorded pace, looping: every channel of the bundled session shows up within seconds.
coproc SERVER { exec "$BIN" run --listen 127.0.0.1:0 --speed 5 --status-interval 0 --exit-after 300; }
SERVER_PID=$SERVER_PID
trap 'kill -TERM "$SERVER_PID" 2>/dev/null || true' EXIT
line=""
read -r -t 30 -u "${SERVER[0]}" line || true
[[ $line == "tape serving ws://"* ]] || { echo "tape run did not report its URL: '$line'" >&2; exit 1; }
URL=${line#tape serving }
echo "server: $URL"

check_channels() { # $1 = label, $2 = file with one message per line
  local missing=()
  for ch in bbo trades ticker book; do
    grep -q "\"channel\":\"$ch\"" "$2" || grep -q "[ :]$ch=" "$2" || missing+=("$ch")
  done
  if ((${#missing[@]})); then
    echo "$1: no ${missing[*]} messages" >&2
    cat "$2" >&2
    exit 1
  fi
  echo "$1: saw bbo, trades, ticker and book"
}

echo "==> python websockets example"
timeout 60 "$PY" examples/bbo_client.py --url "$URL" --symbol usdm:BTCUSDT \
  --channels bbo,trades,ticker,book --count 200 --timeout 50 >"$WORK/python.out"
tail -n 3 "$WORK/python.out"
check_channels "python websockets" "$WORK/python.out"

if command -v websocat >/dev/null; then
  echo "==> websocat"
  # -n: keep the connection open after stdin ends; head ends the run after 300 messages.
  echo '{"type":"subscribe","id":1,"channels":["bbo","trades","ticker","book"],"symbols":["usdm:BTCUSDT"]}' |
    timeout 60 websocat -n -t "$URL" 2>"$WORK/websocat.err" | head -n 300 >"$WORK/websocat.out" || true
  check_channels "websocat" "$WORK/websocat.out"
else
  echo "websocat not installed: skipped (cargo install websocat --version 1.14.1 --locked)" >&2
  exit 1
fi
