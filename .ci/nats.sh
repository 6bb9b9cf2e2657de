#!/usr/bin/env bash
# Scale-out over NATS against a real nats-server (Debian's package, JetStream on): the
# ignored tests of tools/tests/nats.rs — an origin fed by the bundled session and edges on
# loopback agree message for message and digest for digest; a late edge and an edge cut off
# for 2 s recover exactly; nats-server killed and restarted; an origin restarted is a new run
# the edges follow; an edge needing records the stream dropped says so and serves nothing;
# an origin whose stream JetStream refuses says why, holds the records (bounded) and publishes
# them once the server has room; records held for a refused stream or while NATS is down are
# bounded by nats.max_backlog;
# and tools/tests/nats_private.rs:
# a trader on an edge places a bracket that fills, every node agrees on the account, a
# second user on another edge sees none of it. Each test starts its own
# nats-server on a free port with a temporary store and kills it; every wait is bounded.
#
# Reuses the debug test build of the README's `cargo test --workspace` step (same profile
# and workspace feature set), so nothing is rebuilt.
#
# Env: NATS_SERVER (the nats-server binary; default: nats-server on PATH, installed if missing).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z ${NATS_SERVER:-} ]] && ! command -v nats-server >/dev/null; then
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  timeout 600 $SUDO apt-get install -y nats-server >/dev/null || {
    timeout 600 $SUDO apt-get update >/dev/null
    timeout 600 $SUDO apt-get install -y nats-server >/dev/null
  }
fi
# Debian installs it in /usr/sbin, which a non-root PATH may lack.
if [[ -z ${NATS_SERVER:-} ]] && ! command -v nats-server >/dev/null && [[ -x /usr/sbin/nats-server ]]; then
  export NATS_SERVER=/usr/sbin/nats-server
fi
"${NATS_SERVER:-nats-server}" --version

timeout 600 cargo test --workspace --test nats --test nats_private -- --ignored --test-threads 1
