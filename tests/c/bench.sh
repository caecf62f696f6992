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
cat "$TMP/c.txt" "$TMP/rust.txt" >"$TMP/all.txt"
python3 - "$TMP/all.txt" <<'PY'
import sys
v = {}
for line in open(sys.argv[1]):
    if line.strip():
        k, x = line.split()
        v[k] = float(x)
print("%-44s %10s" % ("operation", "ns/op"))
for k, x in v.items():
    print("%-44s %10.1f" % (k, x))
print()
print("trivial call: C -> edrlink_result_name %.1f ns, Rust core ErrorCode::as_str %.1f ns, Rust -> same FFI fn %.1f ns"
      % (v["c_result_name"], v["rust_core_error_name"], v["rust_calls_ffi_result_name"]))
print("seal 1 KiB: C API / Rust core, both from the seed: %.3fx" % (v["c_seal_1k"] / v["rust_core_seal_1k_from_seed"]))
print("seal 1 KiB: C API / Rust core with a prebuilt key: %.3fx" % (v["c_seal_1k"] / v["rust_core_seal_1k_prebuilt_key"]))
PY
echo "($(uname -m), $(nproc) cores, $(date -u +%Y-%m-%d); command: tests/c/bench.sh)"
