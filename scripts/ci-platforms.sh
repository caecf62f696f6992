#!/usr/bin/env bash
# The reduced platform step of scripts/test-all.sh (the full matrix is scripts/dist.sh --verify):
#   1. the core's unit tests and the shared vectors built for aarch64-unknown-linux-gnu and run
#      under qemu-user (ring's ARM64 assembly, byte order and alignment on the second architecture),
#   2. the ABI guard (scripts/abi-check.sh) against include/abi/, after its self-test.
# The dependency license check is its own step (scripts/license-check.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
bash scripts/platform-deps.sh --ci

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
passed=0 failed=0
log="$(mktemp)"; trap 'rm -f "$log"' EXIT
echo "== aarch64-unknown-linux-gnu: core unit tests + vectors under qemu-user"
if cargo test --locked --target aarch64-unknown-linux-gnu -p edrlink-core --lib --test vectors 2>&1 | tee "$log"; then
  passed=$((passed + 1))
else failed=$((failed + 1)); fi
grep -q 'aarch64' <(file "$(ls -t "$CARGO_TARGET_DIR"/aarch64-unknown-linux-gnu/debug/deps/vectors-* | grep -v '\.d$' | head -1)") ||
  { echo "the vectors test binary is not an aarch64 executable"; failed=$((failed + 1)); }

echo "== ABI guard: the guard itself (breaks must fail, additions pass), then the build against include/abi/"
if bash scripts/abi-check.sh --self-test; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
if bash scripts/abi-check.sh; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
