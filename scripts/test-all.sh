#!/usr/bin/env bash
# The whole test suite: what `.ci/run` runs and what the README's second command runs.
#
# 1. installs what is missing (scripts/install-deps.sh, idempotent),
# 2. Rust: fmt, clippy (-D warnings), cargo test for the workspace, the wasm32 build of sdk-core,
#    every fuzz target for a fixed time (scripts/fuzz.sh), the schemathesis contract test,
# 3. every language suite: tests/<suite>/run.sh (C, Python, Kotlin, wasm, browser, …),
# then prints one line per suite and exits non-zero if anything failed.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TERM_COLOR=never
# One target directory for everything, so the language suites reuse the workspace build.
export CARGO_TARGET_DIR="$ROOT/target"
mkdir -p artifacts/logs

declare -a NAMES=() RESULTS=()
record() { NAMES+=("$1"); RESULTS+=("$2"); }
step() {
  local name="$1"; shift
  echo; echo "=== $name: $*"
  local t0=$SECONDS
  if "$@"; then record "$name" "ok ($((SECONDS - t0))s)"; return 0
  else record "$name" "FAILED ($((SECONDS - t0))s)"; return 1; fi
}

step install-deps bash scripts/install-deps.sh || { echo "dependency installation failed"; exit 1; }
# shellcheck disable=SC1091
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

step rust-fmt cargo fmt --all -- --check
step rust-clippy cargo clippy --workspace --all-targets --locked -- -D warnings
# --no-fail-fast: one failing test binary must not hide the results of the others.
step rust-test cargo test --workspace --locked --no-fail-fast
step wasm32-core env WASM_CHECK_ONLY=1 bash scripts/wasm-build.sh edrlink-core
# Crash soak (release build): 100 SIGKILLs of a client that spools, sends and rotates
# segments, the invariant checked after each (docs/RELIABILITY.md has the 1,000-kill run).
step crash-soak bash -c 'cargo build --release --locked -p edrlink-reliability --bins && "$CARGO_TARGET_DIR/release/soak" --kills 100 --max-seconds 180'
# Every cargo-fuzz target for a fixed time from the committed seeds (FUZZ_SECONDS each).
step fuzz bash scripts/fuzz.sh
# Contract: schemathesis against the running service and its generated /openapi.json.
step contract bash tests/contract/run.sh

# tests/service and tests/cli are also runnable alone; here `cargo test --workspace` covers them.
for suite in c python kotlin wasm browser extension; do
  script="tests/$suite/run.sh"
  [ -f "$script" ] || continue
  step "suite-$suite" bash "$script"
done

# Release engineering: dependency licenses (deny.toml), then the reduced platform step
# (aarch64 core tests + vectors under qemu-user, the C ABI guard). Full matrix: scripts/dist.sh --verify.
step license-check bash scripts/license-check.sh
step platforms bash scripts/ci-platforms.sh

echo
echo "=== summary"
failed=0
for i in "${!NAMES[@]}"; do
  printf '%-16s %s\n' "${NAMES[$i]}" "${RESULTS[$i]}"
  case "${RESULTS[$i]}" in FAILED*) failed=$((failed + 1)) ;; esac
done
passed=$(( ${#NAMES[@]} - failed ))
echo "steps: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
