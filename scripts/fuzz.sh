#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a fixed time (what test-all's `fuzz`
# step runs). Stable toolchain: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its
# nightly flags (sanitizer, coverage instrumentation).
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   (default 15 s, all targets)
# Seeds: fuzz/corpus/<target>/ (committed; regenerate with
#   cargo run --manifest-path fuzz/Cargo.toml --example seeds). New inputs found
# while running go to target/fuzz/corpus/<target>/ (not committed). A crash
# leaves its input in fuzz/artifacts/<target>/ and fails the script: turn it
# into a hostile-input test in sdk-core (src/hostile_tests.rs), then fix.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SECS="${1:-${FUZZ_SECONDS:-15}}"; shift || true
export RUSTC_BOOTSTRAP=1 CARGO_TERM_COLOR=never
TD="$ROOT/target/fuzz"
mkdir -p "$ROOT/artifacts/logs"
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz missing: run scripts/install-deps.sh"; exit 1; }

targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
t0=$SECONDS
cargo fuzz build -O --target-dir "$TD" >"$ROOT/artifacts/logs/fuzz-build.log" 2>&1 \
  || { tail -30 "$ROOT/artifacts/logs/fuzz-build.log"; echo "fuzz build failed"; exit 1; }
echo "fuzz build: $((SECONDS - t0))s"

bad=0
for t in "${targets[@]}"; do
  mkdir -p "$TD/corpus/$t" "fuzz/corpus/$t"
  log="$ROOT/artifacts/logs/fuzz-$t.log"
  s0=$SECONDS
  cargo fuzz run -O --target-dir "$TD" "$t" "$TD/corpus/$t" "fuzz/corpus/$t" -- \
    -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1
  rc=$?
  runs=$(awk '/stat::number_of_executed_units/{print $NF}' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | awk '{print $2}')
  if [ $rc -eq 0 ]; then
    printf 'fuzz %-16s ok      %9s runs  cov %-6s %3ss\n' "$t" "${runs:-?}" "${cov:-?}" "$((SECONDS - s0))"
  else
    bad=$((bad + 1))
    printf 'fuzz %-16s FAILED  (exit %d) see %s\n' "$t" "$rc" "$log"
    grep -E 'panicked|ERROR|SUMMARY|Test unit written' "$log" | head -8 | sed 's/^/    /'
  fi
done
echo "fuzz: ${#targets[@]} targets, $bad failed, $((SECONDS - t0))s in all"
[ "$bad" -eq 0 ]
