#!/usr/bin/env bash
# Generates the committed Kotlin and Swift bindings from the compiled
# edrlink-uniffi library with the workspace's pinned uniffi-bindgen (Kotlin
# then patched by patch-kotlin.py: a leaner per-call path), or with
# --check verifies that the committed copies equal a fresh generation (drift
# fails). Either way the platform examples that cannot be compiled here
# (bindings/kotlin/examples, bindings/swift/Examples) are checked against the
# generated interfaces (check-examples.py). Python bindings are generated at
# wheel build time by maturin.
#
#   bindings/uniffi/scripts/generate.sh [--check] [--lib PATH/libedrlink_uniffi.so]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/uniffi}"
CHECK=0; LIB=""
while [ $# -gt 0 ]; do
  case "$1" in
    --check) CHECK=1 ;;
    --lib) LIB="$2"; shift ;;
    *) echo "usage: $0 [--check] [--lib PATH]" >&2; exit 2 ;;
  esac
  shift
done
cd "$ROOT"
cargo build --quiet -p edrlink-uniffi-bindgen
if [ -z "$LIB" ]; then
  cargo build --quiet -p edrlink-uniffi
  LIB="$CARGO_TARGET_DIR/debug/libedrlink_uniffi.so"
fi
BINDGEN="$CARGO_TARGET_DIR/debug/uniffi-bindgen"
OUT="$CARGO_TARGET_DIR/generated"
rm -rf "$OUT"; mkdir -p "$OUT/kotlin" "$OUT/swift"
# uniffi.toml is read from the crate root (bindings/uniffi/uniffi.toml) in --library mode.
"$BINDGEN" generate --no-format --library "$LIB" --language kotlin --out-dir "$OUT/kotlin" >/dev/null
"$BINDGEN" generate --no-format --library "$LIB" --language swift --out-dir "$OUT/swift" >/dev/null
# The Kotlin call path gets per-thread call statuses (see patch-kotlin.py): the
# committed file is this generation plus that deterministic patch. The file as
# generated stays in $OUT/kotlin-unpatched (tests/kotlin/bench.sh compares both).
mkdir -p "$OUT/kotlin-unpatched/org/edrlink"
cp "$OUT/kotlin/org/edrlink/edrlink.kt" "$OUT/kotlin-unpatched/org/edrlink/edrlink.kt"
python3 bindings/uniffi/scripts/patch-kotlin.py "$OUT/kotlin/org/edrlink/edrlink.kt"

# generated path -> committed path
PAIRS=(
  "$OUT/kotlin/org/edrlink/edrlink.kt|bindings/kotlin/src/main/kotlin/org/edrlink/edrlink.kt"
  "$OUT/swift/Edrlink.swift|bindings/swift/Sources/Edrlink/Edrlink.swift"
  "$OUT/swift/EdrlinkFFI.h|bindings/swift/Headers/EdrlinkFFI.h"
  "$OUT/swift/EdrlinkFFI.modulemap|bindings/swift/Headers/module.modulemap"
)
fail=0
for p in "${PAIRS[@]}"; do
  gen="${p%%|*}"; dst="${p##*|}"
  if [ "$CHECK" = 1 ]; then
    if ! cmp -s "$gen" "$dst"; then
      echo "DRIFT: $dst differs from a fresh generation (run bindings/uniffi/scripts/generate.sh)" >&2
      diff -u "$dst" "$gen" 2>&1 | head -20 >&2 || true
      fail=1
    fi
  else
    mkdir -p "$(dirname "$dst")"; cp "$gen" "$dst"; echo "wrote $dst"
  fi
done
[ "$CHECK" = 1 ] && [ "$fail" = 0 ] && echo "generated bindings in sync (kotlin, swift)"
# The Android Keystore and Secure Enclave examples cannot be compiled here:
# check that they still implement the generated interfaces as generated.
python3 bindings/uniffi/scripts/check-examples.py "$OUT/kotlin/org/edrlink/edrlink.kt" "$OUT/swift/Edrlink.swift" || fail=1
exit "$fail"
