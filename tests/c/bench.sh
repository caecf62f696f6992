#!/usr/bin/env bash
# Per-call overhead of the C API: a trivial exported call and a 1 KiB envelope
# seal from C (static libedrlink.a, -O2), beside the same operations in Rust
# (bindings/c/benches/rust_bench.rs) in the same run. Prints ratios; no timed
# asserts. Figures are copied by hand into docs/PERFORMANCE.md ("C API").
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/c}"
(cd "$ROOT" && cargo build --release -p edrlink-ffi --lib --bin edrlink-ffi-bench)
LIB="$CARGO_TARGET_DIR/release"
TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
"${CC:-gcc}" -std=c11 -O2 -I"$ROOT/include" "$HERE/bench.c" "$LIB/libedrlink.a" -lpthread -ldl -lm -lrt -lutil -o "$TMP/bench"
"$TMP/bench" >"$TMP/c.txt"
"$LIB/edrlink-ffi-bench" >"$TMP/rust.txt"
cat "$TMP/c.txt" "$TMP/rust.txt" | python3 -c '
import sys
v = dict((l.split()[0], float(l.split()[1])) for l in sys.stdin if l.strip())
print(f"{\"operation\":44} {\"ns/op\":>10}")
for k, x in v.items(): print(f"{k:44} {x:10.1f}")
print()
print(f"trivial call, C -> C API vs Rust core ErrorCode::as_str: {v[\"c_result_name\"]:.1f} ns vs {v[\"rust_core_error_name\"]:.1f} ns (C API adds {v[\"c_result_name\"]-v[\"rust_core_error_name\"]:.1f} ns)")
print(f"seal 1 KiB, C API / Rust core (both from the seed): {v[\"c_seal_1k\"]/v[\"rust_core_seal_1k_from_seed\"]:.3f}x")
print(f"seal 1 KiB, C API / Rust core with a prebuilt key: {v[\"c_seal_1k\"]/v[\"rust_core_seal_1k_prebuilt_key\"]:.3f}x")
'
echo "($(uname -m), $(nproc) cores, $(date -u +%Y-%m-%d); command: tests/c/bench.sh)"
