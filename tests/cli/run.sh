#!/usr/bin/env bash
# The CLI suite: the agent tests of sdk-core (feature http), the CLI's tests
# (which run the built `edrlink` binary), then `edrlink demo` itself.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
passed=0 failed=0
run() {
  local name="$1"; shift
  echo "--- $name"
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $name"; fi
}
run "sdk-core agent/transport unit tests" cargo test -p edrlink-core --features transport --lib -- agent:: transport::
run "sdk-core agent tests (fake transport)" cargo test -p edrlink-core --features transport --test agent
run "edrlink-cli tests" cargo test -p edrlink-cli
cargo build -p edrlink-cli
run "edrlink demo" "$CARGO_TARGET_DIR/debug/edrlink" demo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
