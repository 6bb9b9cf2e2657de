#!/usr/bin/env bash
# Coverage-guided fuzzing of every target in tools/fuzz (libFuzzer via cargo-fuzz, on the
# stable toolchain: `-s none` builds with sancov instrumentation and no sanitizer, so no
# nightly flag is needed). See docs/fuzzing.md.
#
# Installs cargo-fuzz from crates.io if it is missing (and a C++ compiler for libFuzzer's
# sources from Debian if there is none), builds every target once, replays the committed crash
# regressions, then fuzzes each target for FUZZ_SECONDS in turn and prints a table of
# executions and coverage. Exits non-zero if any target crashes, leaks memory past the RSS
# limit or hangs past the per-input timeout.
#
# Environment:
#   FUZZ_SECONDS   seconds per target (default 60)
#   FUZZ_TARGETS   space-separated subset of targets (default: every target)
#   FUZZ_NICE      niceness of the fuzzing processes (default 0)
#   FUZZ_TIMEOUT   seconds one input may take before it counts as a hang (default 25)
#   FUZZ_CORPUS    where new inputs go (default tools/fuzz/target/corpus-ci/<target>); the
#                  committed corpora in tools/fuzz/corpus are read, never written
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_NICE=${FUZZ_NICE:-0}
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-25}
CARGO_FUZZ_VERSION=0.13.2
FUZZ_DIR=tools/fuzz
ALL_TARGETS="decode_market decode_snapshot decode_userdata journal_reader config jwt http_head hub gateway"
TARGETS=${FUZZ_TARGETS:-$ALL_TARGETS}

step() { printf '\n==> %s\n' "$*"; }

for t in $TARGETS; do
  case " $ALL_TARGETS " in
    *" $t "*) ;;
    *) echo "unknown fuzz target '$t' (targets: $ALL_TARGETS)" >&2; exit 2 ;;
  esac
done

step "fuzzer: cargo-fuzz $CARGO_FUZZ_VERSION (libFuzzer), stable toolchain"
rustc --version
if ! command -v c++ >/dev/null 2>&1; then
  # libfuzzer-sys compiles libFuzzer's C++ sources.
  timeout 600 apt-get update -qq
  DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq g++ >/dev/null
fi
if ! cargo fuzz --version 2>/dev/null | grep -q " $CARGO_FUZZ_VERSION\$"; then
  timeout 1800 cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi
cargo fuzz --version

# Every cargo fuzz call uses the same flags, so `run` reuses what `build` made.
FUZZ_FLAGS=(-s none --fuzz-dir "$FUZZ_DIR")

step "build every target (sancov instrumentation, debug assertions, release)"
timeout 3600 nice -n "$FUZZ_NICE" cargo fuzz build "${FUZZ_FLAGS[@]}"

step "replay the committed crash regressions"
for t in $TARGETS; do
  dir="$FUZZ_DIR/regressions/$t"
  [ -d "$dir" ] || continue
  files=("$dir"/*)
  [ -e "${files[0]}" ] || continue
  echo "$t: ${#files[@]} input(s)"
  # Given files, libFuzzer runs each once and fails on the first crash.
  nice -n "$FUZZ_NICE" cargo fuzz run "${FUZZ_FLAGS[@]}" "$t" "${files[@]}" -- \
    -timeout="$FUZZ_TIMEOUT" 2>&1 | tail -n 3
done

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
failed=()
for t in $TARGETS; do
  step "fuzz $t for ${FUZZ_SECONDS}s"
  work=${FUZZ_CORPUS:-$FUZZ_DIR/target/corpus-ci}/$t
  mkdir -p "$work" "$FUZZ_DIR/artifacts/$t"
  start=$(date +%s)
  set +e
  # The first corpus directory receives new inputs; the committed one is only read.
  nice -n "$FUZZ_NICE" cargo fuzz run "${FUZZ_FLAGS[@]}" "$t" "$work" "$FUZZ_DIR/corpus/$t" -- \
    -max_total_time="$FUZZ_SECONDS" -timeout="$FUZZ_TIMEOUT" -print_final_stats=1 \
    -artifact_prefix="$FUZZ_DIR/artifacts/$t/" >"$logs/$t.log" 2>&1
  rc=$?
  set -e
  echo $(($(date +%s) - start)) >"$logs/$t.secs"
  grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)' "$logs/$t.log" || true
  if [ "$rc" -ne 0 ]; then
    failed+=("$t")
    echo "!! $t FAILED (exit $rc); the end of its log:"
    tail -n 60 "$logs/$t.log"
    echo "!! reproduce: cargo fuzz run ${FUZZ_FLAGS[*]} $t $FUZZ_DIR/artifacts/$t/<file>"
  fi
  echo "$rc" >"$logs/$t.rc"
done

step "summary (cov = edges reached, ft = libFuzzer features; corpus = inputs kept)"
stat() { sed -n "s/^stat::$1: *//p" "$2" | tail -n 1; }
printf '%-16s %6s %12s %9s %7s %7s %8s  %s\n' \
  target secs executions exec/s cov ft corpus result
for t in $TARGETS; do
  log="$logs/$t.log"
  last=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -n 1 || true)
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
  corp=$(sed -nE 's/.* corp: ([0-9]+).*/\1/p' <<<"$last")
  execs=$(stat number_of_executed_units "$log")
  rate=$(stat average_exec_per_sec "$log")
  rc=$(cat "$logs/$t.rc")
  result=ok
  [ "$rc" -eq 0 ] || result="FAILED (exit $rc)"
  printf '%-16s %6s %12s %9s %7s %7s %8s  %s\n' "$t" "$(cat "$logs/$t.secs")" \
    "${execs:--}" "${rate:--}" "${cov:--}" "${ft:--}" "${corp:--}" "$result"
done

if [ "${#failed[@]}" -ne 0 ]; then
  echo "fuzzing failed in: ${failed[*]} (crashing inputs in $FUZZ_DIR/artifacts/)"
  exit 1
fi
echo "fuzzing: ${FUZZ_SECONDS}s per target, no crash"
