#!/usr/bin/env bash
# Size + speed report of the wasm package (not a test; never fails on figures).
# Usage: tests/wasm/bench.sh [--no-build] [--json]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
args=()
build=1
for a in "$@"; do [ "$a" = --no-build ] && build=0 || args+=("$a"); done
[ "$build" = 0 ] && [ -f "$ROOT/wasm/pkg/node/edrlink_wasm_bg.wasm" ] || "$ROOT/wasm/build.sh" >&2
exec node "$ROOT/tests/wasm/bench.mjs" "${args[@]}"
