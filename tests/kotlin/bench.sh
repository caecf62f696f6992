#!/usr/bin/env bash
# Kotlin benchmark (report only). Uses the jars tests/kotlin/run.sh built; also
# runs the same benchmark against the unpatched generated bindings (A/B).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/uniffi}"
WORK="$CARGO_TARGET_DIR/kotlin"
JNA_JAR="${JNA_JAR:-/usr/share/java/jna.jar}"
KOTLINC="${KOTLINC:-tools/node_modules/kotlin-compiler/bin/kotlinc-jvm}"
[ -x "$KOTLINC" ] || KOTLINC="$WORK/kotlin-compiler/package/bin/kotlinc-jvm"
BJAR="$(ls "$WORK"/edrlink-bindings-*.jar 2>/dev/null | head -n1)"
[ -n "$BJAR" ] || { echo "run tests/kotlin/run.sh first (it builds the bindings jar)" >&2; exit 1; }
cargo build --quiet --release -p edrlink-uniffi
RUST="$(cargo run --quiet --release -p edrlink-uniffi --example seal_bench)"
echo "rust: $RUST"
"$KOTLINC" -nowarn -jvm-target 17 -cp "$JNA_JAR:$BJAR" -d "$WORK/bench.jar" tests/kotlin/bench/Bench.kt
KLIB="$(dirname "$(readlink -f "$KOTLINC")")/../lib"
bench() { java -Djna.library.path="$CARGO_TARGET_DIR/release" -cp "$WORK/bench.jar:$1:$JNA_JAR:$KLIB/kotlin-stdlib.jar" edrlinkbench.BenchKt "$RUST"; }
bench "$BJAR"

# Same-run comparison: the bindings exactly as uniffi generated them, without
# bindings/uniffi/scripts/patch-kotlin.py (generate.sh keeps that file), then the
# committed ones again, so load changes during the run show up as a spread.
UNPATCHED="$CARGO_TARGET_DIR/generated/kotlin-unpatched/org/edrlink/edrlink.kt"
if [ -f "$UNPATCHED" ]; then
  UJAR="$WORK/unpatched-bindings.jar"
  if [ ! -f "$UJAR" ] || [ "$UNPATCHED" -nt "$UJAR" ]; then
    "$KOTLINC" -nowarn -jvm-target 17 -cp "$JNA_JAR" -d "$UJAR" "$UNPATCHED" bindings/kotlin/src/main/kotlin/org/edrlink/EdrlinkExtensions.kt
  fi
  bench "$UJAR" | sed 's/^/generated, unpatched | /'
  bench "$BJAR" | sed 's/^/committed, again     | /'
fi
