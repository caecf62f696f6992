#!/usr/bin/env bash
# Kotlin suite: checks the committed generated bindings against a fresh
# generation, compiles them (+ bindings/kotlin extensions + the test program)
# with kotlinc-jvm (npm kotlin-compiler) against Debian's JNA, starts the
# reference service on loopback (EDRLINK_TEST_FAULTS=1) and runs the program on
# the JVM: the API tests, then every tests/scenarios/*.json (Scenarios.kt). The
# program prints `scenarios: N passed, M failed` and `N passed, N failed`; the
# script exits non-zero on any failure.
#
# Env: CARGO_TARGET_DIR (default target/uniffi), EDRLINK_SERVICE_BIN, JNA_JAR,
#      KOTLINC (path to kotlinc-jvm).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck disable=SC1091
source scripts/versions.env
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/uniffi}"
WORK="$CARGO_TARGET_DIR/kotlin"
mkdir -p "$WORK"
JNA_JAR="${JNA_JAR:-/usr/share/java/jna.jar}"
[ -f "$JNA_JAR" ] || { echo "JNA not found at $JNA_JAR (apt-get install -y libjna-java)" >&2; exit 1; }

# shellcheck disable=SC1091
source bindings/uniffi/scripts/service.sh
trap stop_service EXIT

# 1. kotlinc-jvm: tools/node_modules (scripts/install-deps.sh), else npm pack into target/
KOTLINC="${KOTLINC:-}"
if [ -z "$KOTLINC" ]; then
  if [ -x tools/node_modules/kotlin-compiler/bin/kotlinc-jvm ]; then
    KOTLINC=tools/node_modules/kotlin-compiler/bin/kotlinc-jvm
  else
    if [ ! -x "$WORK/kotlin-compiler/package/bin/kotlinc-jvm" ]; then
      echo "== npm pack kotlin-compiler@$KOTLIN_COMPILER_VERSION" >&2
      mkdir -p "$WORK/kotlin-compiler"
      (cd "$WORK/kotlin-compiler" && npm pack --silent "kotlin-compiler@$KOTLIN_COMPILER_VERSION" >/dev/null && tar xzf kotlin-compiler-*.tgz)
    fi
    KOTLINC="$WORK/kotlin-compiler/package/bin/kotlinc-jvm"
  fi
fi

# 2. native library (release: unwinding panics, not stripped) + drift check
echo "== building libedrlink_uniffi (release, uniffi $UNIFFI_VERSION)" >&2
cargo build --quiet --release -p edrlink-uniffi
LIB="$CARGO_TARGET_DIR/release/libedrlink_uniffi.so"
bindings/uniffi/scripts/generate.sh --check --lib "$LIB"

# 3. compile: the bindings jar is cached by the hash of its sources
SRC=(bindings/kotlin/src/main/kotlin/org/edrlink/*.kt)
HASH="$(cat "${SRC[@]}" | sha256sum | cut -c1-16)"
BJAR="$WORK/edrlink-bindings-$HASH.jar"
if [ ! -f "$BJAR" ]; then
  echo "== kotlinc: bindings" >&2
  rm -f "$WORK"/edrlink-bindings-*.jar
  "$KOTLINC" -nowarn -jvm-target 17 -cp "$JNA_JAR" -d "$BJAR" "${SRC[@]}"
fi
echo "== kotlinc: tests" >&2
"$KOTLINC" -nowarn -jvm-target 17 -cp "$JNA_JAR:$BJAR" -d "$WORK/tests.jar" tests/kotlin/*.kt
KLIB="$(dirname "$(readlink -f "$KOTLINC")")/../lib"
CP="$WORK/tests.jar:$BJAR:$JNA_JAR:$KLIB/kotlin-stdlib.jar"

# 4. the reference service, then the program
start_service "$WORK/service"
EDRLINK_ROOT="$ROOT" EDRLINK_VECTORS_DIR="$ROOT/tests/vectors" java -Djna.library.path="$(dirname "$LIB")" -cp "$CP" edrlinktest.EdrlinkTestsKt
