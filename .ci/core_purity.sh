#!/usr/bin/env bash
# The core crate (tape-core) is sans-IO by construction: its normal dependency tree may hold no
# socket, TLS, HTTP or channel crate. Fails naming any that crept in.
set -euo pipefail
cd "$(dirname "$0")/.."
forbidden=(mio socket2 rustls httparse webpki-roots crossbeam-channel)
tree=$(cargo tree -p tape-core -e normal --prefix none | awk '{print $1}' | sort -u)
bad=()
for crate in "${forbidden[@]}"; do
  grep -qx "$crate" <<<"$tree" && bad+=("$crate")
done
if ((${#bad[@]})); then
  echo "tape-core depends on ${bad[*]} (see: cargo tree -p tape-core -e normal -i ${bad[0]})" >&2
  exit 1
fi
echo "tape-core's normal dependencies: $(wc -l <<<"$tree") crates, none of: ${forbidden[*]}"
