#!/usr/bin/env bash
# A full disk while `tape run --record` journals the in-process simulator's live feed, on a
# real tmpfs (CI runs as root): tape must not die (it used to SIGBUS), must say it is degraded
# in /status and on the `status` channel, must keep serving clients, readers of an intact
# journal on the full file system must not SIGBUS either, and once space is freed recording
# resumes, books resync, and the journal replays to the live run's digest (nothing journaled
# was lost). Every wait is bounded; the mount is always removed.
#
# Env: TAPE_BIN (a built tape binary; default target/release/tape).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${TAPE_BIN:-${CARGO_TARGET_DIR:-target}/release/tape}
BIN=$(realpath "$BIN")
PY=$(bash .ci/venv.sh)
WORK=$(mktemp -d /tmp/tape-full-disk.XXXXXX)
MNT=$WORK/mnt
mkdir -p "$MNT"
mount -t tmpfs -o size=24m tapefull "$MNT"
SERVER_PID=
cleanup() {
  [[ -n $SERVER_PID ]] && kill -TERM "$SERVER_PID" 2>/dev/null || true
  umount -l "$MNT" 2>/dev/null || true
}
trap cleanup EXIT

# An intact journal on the small file system, for the readers.
"$BIN" synth --out "$MNT/intact" --secs 2 --rate 500 --segment-mib 1 >/dev/null
cat >"$WORK/tape.toml" <<EOF
[server]
listen = "127.0.0.1:0"
status_interval_secs = 0
[feed]
record = "$MNT/rec"
[sim]
speed = 2
[journal]
segment_mib = 2
retry_ms = 200
EOF

"$BIN" run --config "$WORK/tape.toml" >"$WORK/stdout.log" 2>"$WORK/stderr.log" &
SERVER_PID=$!
URL=
for _ in $(seq 1 600); do
  URL=$(sed -n 's/^tape serving \(ws:[^ ]*\).*/\1/p' "$WORK/stdout.log")
  [[ -n $URL ]] && break
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.1 # polling for the URL line, bounded at 60 s
done
[[ -n $URL ]] || { echo "tape run did not report its URL" >&2; cat "$WORK/stdout.log" "$WORK/stderr.log" >&2; exit 1; }
echo "server: $URL"

timeout 300 "$PY" - "$URL" "$MNT" "$BIN" <<'PYEOF'
import asyncio, errno, json, os, subprocess, sys, time, urllib.request
import websockets

url, mnt, tape = sys.argv[1], sys.argv[2], sys.argv[3]
base = url.split("//", 1)[1].split("/", 1)[0]

def status():
    with urllib.request.urlopen(f"http://{base}/status", timeout=5) as r:
        return json.loads(r.read())

def wait_for(what, pred, secs):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        s = status()
        if pred(s):
            return s
        time.sleep(0.2)  # polling /status with a bound; not synchronisation
    s = status()
    sys.exit(f"timed out waiting for {what}: journal={s.get('journal')} books={[(b['symbol'], b['state']) for b in s['books']]} venues={s.get('venues')}")

def fill():
    """Writes zeros until the file system says it is full."""
    with open(os.path.join(mnt, "filler"), "wb") as f:
        chunk = b"\0" * (1 << 20)
        try:
            while True:
                f.write(chunk)
                f.flush()
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise

async def main():
    # No client keepalive: the check below runs blocking commands, and the server pings anyway.
    async with websockets.connect(url, open_timeout=10, max_size=None, ping_interval=None) as ws:
        await ws.send(json.dumps({"type": "subscribe", "id": 1, "channels": ["status", "bbo"], "symbols": ["usdm:BTCUSDT"]}))
        seen = {"bbo": 0, "journal": []}

        async def reader():
            async for raw in ws:
                m = json.loads(raw)
                if m.get("channel") == "bbo":
                    seen["bbo"] += 1
                if m.get("channel") == "status" and m.get("venue") == "journal":
                    seen["journal"].append(m["data"]["state"])

        task = asyncio.create_task(reader())
        loop = asyncio.get_running_loop()

        await loop.run_in_executor(None, wait_for, "recording", lambda s: s["journal"]["state"] == "ok" and s["journal"]["next_seq"] > 100, 60)
        await loop.run_in_executor(None, fill)
        print("file system full")
        s = await loop.run_in_executor(None, wait_for, "degraded", lambda s: s["journal"]["state"] == "degraded", 120)
        print("degraded:", s["journal"]["reason"])

        # Readers of an intact journal on the full tmpfs: errors at worst, never SIGBUS.
        for args in (["verify"], ["replay"], ["dump", "--limit", "3"]):
            cmd = [tape, *args, os.path.join(mnt, "intact")]
            r = await loop.run_in_executor(None, lambda: subprocess.run(cmd, capture_output=True, timeout=60))
            if r.returncode != 0:
                sys.exit(f"tape {args[0]} of an intact journal on a full fs: exit {r.returncode}: {r.stderr.decode()[-500:]}")
        print("verify, replay and dump of an intact journal on the full fs: ok")

        # Still serving: /status answered above; the client is connected; it heard of it.
        await asyncio.sleep(0)
        end = time.monotonic() + 10
        while "degraded" not in seen["journal"] and time.monotonic() < end:
            await asyncio.sleep(0.1)
        if "degraded" not in seen["journal"]:
            sys.exit(f"no degraded journal status on the status channel: {seen['journal']}")

        os.remove(os.path.join(mnt, "filler"))
        print("space freed")
        s = await loop.run_in_executor(None, wait_for, "recovery", lambda s: s["journal"]["state"] == "ok", 60)
        print("recovered; next_seq", s["journal"]["next_seq"])
        before = seen["bbo"]
        await loop.run_in_executor(None, wait_for, "books to resync", lambda s: all(b["state"] == "Synced" for b in s["books"]), 150)
        end = time.monotonic() + 60
        while seen["bbo"] == before and time.monotonic() < end:
            await asyncio.sleep(0.1)
        if seen["bbo"] == before:
            sys.exit("no bbo after recovery")
        if seen["journal"][-1] != "ok":
            sys.exit(f"status channel did not report recovery: {seen['journal']}")
        print("bbo flows again; journal states seen on the status channel:", seen["journal"])
        task.cancel()

asyncio.run(main())
PYEOF

kill -TERM "$SERVER_PID"
for _ in $(seq 1 200); do
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.1 # waiting for exit after SIGTERM, bounded at 20 s
done
wait "$SERVER_PID" || { echo "tape run exited with $?" >&2; cat "$WORK/stderr.log" >&2; exit 1; }
SERVER_PID=
live=$(sed -n 's/^  digest \([0-9a-f]*\) over.*/\1/p' "$WORK/stdout.log")
[[ -n $live ]] || { echo "no digest from tape run" >&2; cat "$WORK/stdout.log" >&2; exit 1; }
grep -q "journal degraded" "$WORK/stderr.log" || { echo "stderr did not say degraded" >&2; exit 1; }
grep -q "journal writable again" "$WORK/stderr.log" || { echo "stderr did not say recovered" >&2; exit 1; }
"$BIN" verify "$MNT/rec"
replayed=$("$BIN" replay "$MNT/rec" | sed -n 's/^digest *\([0-9a-f]*\) .*/\1/p')
echo "live digest $live, replay digest $replayed"
[[ $live == "$replayed" ]] || { echo "the journal does not replay to the live digest" >&2; exit 1; }
echo "full disk: degraded, served, recovered, nothing journaled was lost"
