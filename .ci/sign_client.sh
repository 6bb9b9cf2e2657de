#!/usr/bin/env bash
# An independent Python client (.ci/sign_client.py: its own signing code, PyPI `cryptography`
# and `websockets`) against `tape venue-sim` in strict mode, with a fresh Ed25519 key pair and
# HMAC secret: signed orders are accepted, bad signatures and stale timestamps refused with
# Binance's codes. Time-bounded; the sim is always stopped.
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
if ! "$PY" -c 'import cryptography' 2>/dev/null; then
  timeout 300 "$PY" -m pip install --quiet --disable-pip-version-check cryptography >&2
fi

KEYS=$WORK/sign-keys
rm -rf "$KEYS"
"$PY" .ci/sign_client.py keygen "$KEYS"

coproc SIM {
  exec "$BIN" venue-sim --listen 127.0.0.1 --port-base 0 --cert-dir "$WORK/sign-certs" \
    --api-key-ed25519 "pyEd=$KEYS/ed.pub" --api-key-hmac "pyHmac=$KEYS/hmac.secret" \
    --exit-after 120
}
SIM_PID=$SIM_PID
trap 'kill -TERM "$SIM_PID" 2>/dev/null || true' EXIT

# The sim prints its endpoints, the auth mode, then the CA certificate; wait for that line.
URL="" CA=""
for _ in $(seq 1 12); do
  line=""
  IFS= read -r -t 30 -u "${SIM[0]}" line || break
  echo "sim: $line"
  case $line in
    "  spot "*) URL=$(awk '{print $3}' <<<"$line") ;;
    "  CA certificate: "*) CA=${line#  CA certificate: }; break ;;
  esac
done
[[ $URL == wss://*/ws-api/v3 && -n $CA ]] || { echo "venue-sim did not report its spot API URL and CA" >&2; exit 1; }

timeout 90 "$PY" .ci/sign_client.py run --url "$URL" --ca "$CA" --keys "$KEYS" \
  --ed-key pyEd --hmac-key pyHmac
