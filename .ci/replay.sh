#!/usr/bin/env bash
# The README's replay one-liners, as written but for the port, against
# `tape run --config examples/replay.toml`: `curl | jq` on /replay.ndjson and the Python
# `websockets` one-liner on /replay must each print the bundled session's messages and end
# by themselves (close 1000 / the last chunk). Every wait is bounded; the server is stopped.
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
command -v jq >/dev/null || { sudo apt-get install -y -qq jq >/dev/null 2>&1 || apt-get install -y -qq jq >/dev/null; }

coproc SERVER { exec "$BIN" run --config examples/replay.toml --listen 127.0.0.1:0 --status-interval 0 --exit-after 120; }
SERVER_PID=$SERVER_PID
trap 'kill -TERM "$SERVER_PID" 2>/dev/null || true' EXIT
line=""
read -r -t 30 -u "${SERVER[0]}" line || true
[[ $line == "tape serving ws://"* ]] || { echo "tape run did not report its URL: '$line'" >&2; exit 1; }
ADDR=${line#tape serving ws://}
ADDR=${ADDR%%/*}
echo "server: $ADDR"

readme_line() { # the README's line starting with $1, pointed at this server
  local l
  l=$(grep -m1 -F -- "$1" README.md) || { echo "README has no line starting with $1" >&2; exit 1; }
  echo "${l//127.0.0.1:8080/$ADDR}"
}

echo "==> curl | jq (README)"
CURL=$(readme_line "curl -sN 'http://127.0.0.1:8080/replay.ndjson")
echo "$CURL"
timeout 60 bash -c "$CURL" >"$WORK/replay-curl.out"
n=$(wc -l <"$WORK/replay-curl.out")
# Every line is [recv_ns, price, qty] of a trade (the subscribed reply has no data: nulls).
bad=$(jq -c 'select((.[0] | type) == "number" and (.[1] | type) != "string")' "$WORK/replay-curl.out" | wc -l)
trades=$(jq -c 'select((.[1] | type) == "string")' "$WORK/replay-curl.out" | wc -l)
echo "curl: $n lines, $trades trades"
((trades > 10 && bad == 0)) || { head "$WORK/replay-curl.out" >&2; exit 1; }

echo "==> python websockets (README)"
PYLINE=$(readme_line 'python3 -c "from websockets.sync.client import connect')
PYLINE=${PYLINE/python3/$PY}
echo "$PYLINE"
timeout 60 bash -c "$PYLINE" >"$WORK/replay-py.out"
head -n 1 "$WORK/replay-py.out" | grep -q '"type":"subscribed"' || { head "$WORK/replay-py.out" >&2; exit 1; }
bbo=$(grep -c '"channel":"bbo"' "$WORK/replay-py.out" || true)
echo "python: $(wc -l <"$WORK/replay-py.out") messages, $bbo bbo"
((bbo > 10)) || exit 1
echo "replay one-liners: ok"
