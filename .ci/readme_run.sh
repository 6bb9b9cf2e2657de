#!/usr/bin/env bash
# Runs the README's run command exactly as the README writes it (see readme_commands.py),
# waits for its port, checks that `/` serves the dashboard, that a WebSocket client gets `bbo`
# for a bundled symbol and that `/status` is JSON, then stops it with SIGTERM and expects a clean exit. Every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=$(bash .ci/venv.sh)
RUN=$(python3 .ci/readme_commands.py run)
WORK=${CLIENTS_DIR:-${CARGO_TARGET_DIR:-target}/clients}
LOG=$WORK/readme-run.log
echo "README run command: $RUN"
# `cargo run` execs the binary, so SIGTERM reaches tape itself.
setsid bash -c "exec $RUN" >"$LOG" 2>&1 &
PID=$!
trap 'kill -TERM -- -"$PID" 2>/dev/null || true' EXIT
timeout 900 "$PY" - "$PID" <<'PYEOF'
import asyncio, json, os, sys, time, urllib.request
import websockets

pid = int(sys.argv[1])
base = "127.0.0.1:8080"

def alive():
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False

# The port: cargo may still be compiling on a fresh clone, so wait long, but not forever.
deadline = time.monotonic() + 840
status = None
while time.monotonic() < deadline and alive():
    try:
        with urllib.request.urlopen(f"http://{base}/status", timeout=2) as r:
            status = json.loads(r.read())
            break
    except (OSError, ValueError):
        time.sleep(0.25)  # polling a port that is not bound yet; not synchronisation
if status is None:
    sys.exit("README run command: no JSON /status on " + base)
print("/status is JSON with keys:", ", ".join(sorted(status)[:8]), "...")

# The dashboard a new user opens at http://127.0.0.1:8080/.
with urllib.request.urlopen(f"http://{base}/", timeout=5) as r:
    page = r.read().decode()
    ctype = r.headers.get("Content-Type", "")
if not ctype.startswith("text/html") or 'name="tape-ws-path"' not in page:
    sys.exit(f"README run command: no dashboard at http://{base}/ ({ctype})")
print("the dashboard is served at /")

async def bbo():
    async with websockets.connect(f"ws://{base}/ws", open_timeout=10) as ws:
        await ws.send(json.dumps({"type": "subscribe", "id": 1, "channels": ["bbo"], "symbols": ["usdm:BTCUSDT"]}))
        end = time.monotonic() + 60
        while time.monotonic() < end:
            msg = json.loads(await asyncio.wait_for(ws.recv(), timeout=end - time.monotonic()))
            if msg.get("channel") == "bbo":
                return msg
    return None

msg = asyncio.run(bbo())
if not msg:
    sys.exit("README run command: no bbo for usdm:BTCUSDT within 60 s")
print("bbo:", json.dumps(msg)[:200])
PYEOF
kill -TERM "$PID"
for _ in $(seq 1 100); do
  kill -0 "$PID" 2>/dev/null || break
  sleep 0.1 # waiting for a process to exit after SIGTERM, bounded at 10 s
done
if kill -0 "$PID" 2>/dev/null; then
  echo "README run command: still running 10 s after SIGTERM" >&2
  tail -n 20 "$LOG" >&2
  exit 1
fi
wait "$PID" && rc=0 || rc=$?
trap - EXIT
if [[ $rc -ne 0 ]]; then
  echo "README run command: exit status $rc after SIGTERM" >&2
  tail -n 20 "$LOG" >&2
  exit 1
fi
echo "README run command: served bbo and /status, stopped cleanly on SIGTERM"
