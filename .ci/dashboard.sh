#!/usr/bin/env bash
# The dashboard in a real browser (.ci/dashboard_test.py): headless Chromium and its driver
# from Debian's packages, Selenium and websockets from PyPI in a venv; screenshots of each
# state under target/dashboard-screenshots/. Also the page's modules' unit tests (node --test).
#
# Env: TAPE_BIN (default target/release/tape, built if missing), CLIENTS_DIR (venv's home),
#      DASHBOARD_SHOTS (default ${CARGO_TARGET_DIR:-target}/dashboard-screenshots).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET_DIR=${CARGO_TARGET_DIR:-target}
WORK=${CLIENTS_DIR:-$TARGET_DIR/clients}
BIN=${TAPE_BIN:-$TARGET_DIR/release/tape}
SHOTS=${DASHBOARD_SHOTS:-$TARGET_DIR/dashboard-screenshots}
mkdir -p "$WORK" "$SHOTS"

if [[ ! -x $BIN ]]; then
  timeout 1200 cargo build --release -p tape-tools --bin tape
fi

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null || ! command -v node >/dev/null; then
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  timeout 300 $SUDO apt-get update -qq
  timeout 600 $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver nodejs >/dev/null
fi
chromium --version

VENV=$WORK/dashboard-venv
if ! "$VENV/bin/python" -c 'import selenium, websockets' 2>/dev/null; then
  timeout 120 python3 -m venv "$VENV"
  timeout 300 "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    'selenium>=4.20,<5' 'websockets>=12'
fi

echo "==> the page's modules (node --test)"
(cd engine/node/dashboard && timeout 60 node --test test/*.test.js)

echo "==> the dashboard in headless Chromium"
# The test stops every process it starts; this is the backstop if it is killed itself.
# Selenium Manager must not go looking for a browser or driver: both are given by path.
export SE_AVOID_STATS=true SE_OFFLINE=true
setsid timeout 300 "$VENV/bin/python" .ci/dashboard_test.py --tape "$BIN" --shots "$SHOTS" &
PID=$!
trap 'kill -TERM -- -"$PID" 2>/dev/null || true' EXIT
wait "$PID"
trap - EXIT
ls "$SHOTS"
