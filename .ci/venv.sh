#!/usr/bin/env bash
# Makes (once) the Python venv CI's client checks use and prints its python's path.
# Env: CLIENTS_DIR (default $CARGO_TARGET_DIR or target, then /clients).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${CLIENTS_DIR:-${CARGO_TARGET_DIR:-target}/clients}
VENV=$WORK/venv
mkdir -p "$WORK"
if ! "$VENV/bin/python" -c 'import websockets' 2>/dev/null; then
  timeout 120 python3 -m venv "$VENV" >&2
  timeout 300 "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check websockets >&2
fi
echo "$VENV/bin/python"
