#!/usr/bin/env bash
# Autobahn WebSocket conformance of tape's transport (engine/src/net) with the kosoku runner.
#
# Builds and starts `tape run` with its echo endpoint (server.echo_path, off by default) on a
# free loopback port, so the cases exercise the same WebSocket stack clients use, runs kosoku's fuzzingclient
# over cases 1.* to 10.* (Autobahn has no section 8; 12.* and 13.* need permessage-deflate,
# which tape does not offer),
# then reads the JSON report: exits non-zero unless every case's behaviour is OK, NON-STRICT or
# INFORMATIONAL and every closing behaviour OK or INFORMATIONAL. Everything is time-bounded and
# the server is always killed.
#
# Env: AUTOBAHN_DIR (work dir; default $CARGO_TARGET_DIR or target, then /autobahn),
#      AUTOBAHN_SERVER_BIN (a prebuilt tape binary; skips the cargo build),
#      AUTOBAHN_CASES (space-separated kosoku -i globs; default "1.* ... 7.* 9.* 10.*"),
#      AUTOBAHN_EXPECTED_CASES (case count to insist on; default 301 with the default selection).
set -euo pipefail
cd "$(dirname "$0")/.."

KOSOKU_VERSION=0.1.0
TARGET_DIR=${CARGO_TARGET_DIR:-target}
WORK=${AUTOBAHN_DIR:-$TARGET_DIR/autobahn}
VENV=$WORK/venv
REPORT=$WORK/report
CASES=${AUTOBAHN_CASES:-"1.* 2.* 3.* 4.* 5.* 6.* 7.* 9.* 10.*"}
if [[ -z ${AUTOBAHN_CASES:-} ]]; then
  EXPECTED=${AUTOBAHN_EXPECTED_CASES:-301}
else
  EXPECTED=${AUTOBAHN_EXPECTED_CASES:-0}
fi
started=$SECONDS

step() { printf '\n==> %s\n' "$*"; }

mkdir -p "$WORK"
rm -rf "$REPORT"

step "kosoku $KOSOKU_VERSION in $VENV"
if ! "$VENV/bin/python" -c 'import kosoku' 2>/dev/null ||
  [[ $("$VENV/bin/python" -m pip show kosoku 2>/dev/null | sed -n 's/^Version: //p') != "$KOSOKU_VERSION" ]]; then
  rm -rf "$VENV"
  timeout 120 python3 -m venv "$VENV"
  timeout 300 "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "kosoku==$KOSOKU_VERSION"
fi

if [[ -n ${AUTOBAHN_SERVER_BIN:-} ]]; then
  BIN=$AUTOBAHN_SERVER_BIN
else
  step "build tape (release)"
  timeout 1200 cargo build --release -p tape-tools --bin tape
  BIN=$TARGET_DIR/release/tape
fi

step "start $BIN"
# Port 0: the server picks a free port and prints it on its first line. --seconds bounds its
# life even if this script is killed before its trap runs.
coproc SERVER {
  exec "$BIN" run --listen 127.0.0.1:0 --echo-path / --status-interval 0 --exit-after 900 \
    2>"$WORK/server.err"
}
SERVER_PID=$SERVER_PID
cleanup() {
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    timeout 10 tail --pid="$SERVER_PID" -f /dev/null 2>/dev/null || kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT
line=""
if ! read -r -t 30 -u "${SERVER[0]}" line || [[ $line != "tape serving ws://"* ]]; then
  echo "tape run did not report its address (got: '$line')" >&2
  cat "$WORK/server.err" >&2 || true
  exit 1
fi
ADDR=${line#tape serving ws://}
ADDR=${ADDR%%/*}
echo "server at $ADDR (pid $SERVER_PID)"

step "kosoku fuzzingclient: $CASES"
args=()
for c in $CASES; do args+=(-i "$c"); done
args+=(-x '12.*' -x '13.*')
set +e
timeout 900 "$VENV/bin/kosoku" -m fuzzingclient -o "$REPORT" "${args[@]}" "$ADDR" \
  >"$WORK/kosoku.log" 2>&1
kosoku_rc=$?
set -e
tail -n 3 "$WORK/kosoku.log"
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "tape run died during the run:" >&2
  cat "$WORK/server.err" >&2 || true
  exit 1
fi

step "report $REPORT/index.json"
set +e
"$VENV/bin/python" - "$REPORT/index.json" "$EXPECTED" "$kosoku_rc" <<'PY'
import collections, json, sys

path, expected, kosoku_rc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
try:
    with open(path) as f:
        index = json.load(f)
except (OSError, ValueError) as e:
    print(f"no usable report ({e}); kosoku exit code {kosoku_rc}")
    sys.exit(1)

ok_behavior = {"OK", "NON-STRICT", "INFORMATIONAL"}
ok_close = {"OK", "INFORMATIONAL"}

def case_key(case_id):
    return tuple(int(p) for p in case_id.split("."))

cases = {cid: r for agent in index.values() for cid, r in agent.items()}
table = collections.Counter((r["behavior"], r["behaviorClose"]) for r in cases.values())
print(f"{'behavior':<15} {'behaviorClose':<15} {'cases':>5}")
for (b, c), n in sorted(table.items()):
    print(f"{b:<15} {c:<15} {n:>5}")
print(f"{'total':<31} {len(cases):>5}")
notable = sorted((cid for cid, r in cases.items() if r["behavior"] != "OK"), key=case_key)
if notable:
    print("not OK but accepted:" if all(cases[c]["behavior"] in ok_behavior for c in notable)
          else "not OK:", " ".join(f"{c}={cases[c]['behavior']}" for c in notable))
failing = sorted(
    (cid for cid, r in cases.items()
     if r["behavior"] not in ok_behavior or r["behaviorClose"] not in ok_close),
    key=case_key,
)
slowest = sorted(cases.items(), key=lambda kv: -kv[1].get("duration", 0))[:3]
print("slowest:", ", ".join(f"{c} {r.get('duration', 0)} ms" for c, r in slowest))

problems = []
if failing:
    problems.append("failing cases: " + " ".join(
        f"{c}({cases[c]['behavior']}/{cases[c]['behaviorClose']})" for c in failing))
if expected and len(cases) != expected:
    problems.append(f"expected {expected} cases, the report has {len(cases)}")
if kosoku_rc != 0:
    problems.append(f"kosoku exited with {kosoku_rc}")
for p in problems:
    print("FAIL:", p)
sys.exit(1 if problems else 0)
PY
verdict=$?
set -e
echo "autobahn: $([[ $verdict == 0 ]] && echo PASS || echo FAIL) in $((SECONDS - started)) s (report: $REPORT/index.html)"
exit "$verdict"
