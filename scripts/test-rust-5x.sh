#!/usr/bin/env bash
# Flake hunt: runs the Rust test suites (`cargo test --workspace`) N times in a
# row (default 5) and reports each run; exits non-zero if any run had a failure.
#
# Usage: scripts/test-rust-5x.sh [N] [extra cargo test args...]
# Logs: artifacts/logs/rust-run-<i>.log
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RUNS="${1:-5}"; shift || true
export CARGO_TERM_COLOR=never
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
mkdir -p artifacts/logs

# Build once so each run measures the tests, not the compiler.
cargo test --workspace --locked --no-run "$@" >artifacts/logs/rust-build.log 2>&1 \
  || { echo "build failed: see artifacts/logs/rust-build.log"; exit 1; }

bad=0
for i in $(seq 1 "$RUNS"); do
  log="artifacts/logs/rust-run-$i.log"
  t0=$SECONDS
  cargo test --workspace --locked --no-fail-fast "$@" >"$log" 2>&1
  rc=$?
  passed=$(awk '/^test result:/{s+=$4} END{print s+0}' "$log")
  failed=$(awk '/^test result:/{s+=$6} END{print s+0}' "$log")
  binaries=$(grep -c '^test result:' "$log")
  printf 'run %d/%d: %s  %d passed, %d failed (%d test binaries) in %ds\n' \
    "$i" "$RUNS" "$([ $rc -eq 0 ] && echo ok || echo FAILED)" "$passed" "$failed" "$binaries" "$((SECONDS - t0))"
  if [ $rc -ne 0 ]; then
    bad=$((bad + 1))
    grep -E '^test .* FAILED$|^    [a-z_:]+$|panicked at' "$log" | head -20 | sed 's/^/    /'
  fi
done
echo "runs: $((RUNS - bad)) passed, $bad failed"
[ "$bad" -eq 0 ]
