#!/usr/bin/env bash
# Python benchmark (report only): native Rust seal (seal_bench example), then
# edrlink vs cryptography in the venv tests/python/run.sh created.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/uniffi}"
VENV="$CARGO_TARGET_DIR/python/venv"
[ -x "$VENV/bin/python" ] || { echo "run tests/python/run.sh first (it builds the wheel and the venv)" >&2; exit 1; }
RUST="$(cargo run --quiet --release -p edrlink-uniffi --example seal_bench)"
echo "rust: $RUST"
"$VENV/bin/python" tests/python/bench.py --rust "$RUST"
