#!/usr/bin/env bash
# The Kotlin/JVM jar for scripts/dist.sh: the bindings (bindings/kotlin/src) compiled with
# kotlinc-jvm, with the Linux libraries inside in JNA's resource layout
#   linux-x86-64/libedrlink_uniffi.so   linux-aarch64/libedrlink_uniffi.so
# so JNA extracts and loads the right one with no -Djna.library.path.
#
# Usage: scripts/dist-kotlin.sh OUT_DIR [VERIFY(0|1)]
#   VERIFY=1 compiles tests/kotlin against the jar and runs them on the JVM, from a directory
#   without any .so, with no jna.library.path, against the reference service
#   (EDRLINK_SERVICE_BIN, or built). Prints one result line last.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="$1" VERIFY="${2:-0}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# shellcheck disable=SC1091
source scripts/versions.env
VERSION="$(sed -n '/^\[workspace.package\]/,/^\[/{s/^version *= *"\(.*\)"/\1/p}' Cargo.toml)"
WORK="$CARGO_TARGET_DIR/dist-work/kotlin"
rm -rf "$WORK"; mkdir -p "$WORK/res/linux-x86-64" "$WORK/res/linux-aarch64"
JNA_JAR="${JNA_JAR:-/usr/share/java/jna.jar}"
KOTLINC="${KOTLINC:-$ROOT/tools/node_modules/kotlin-compiler/bin/kotlinc-jvm}"
[ -x "$KOTLINC" ] || { echo "kotlinc-jvm missing (scripts/install-deps.sh)" >&2; exit 1; }

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
cargo build --release --locked -p edrlink-uniffi >&2
cargo build --release --locked -p edrlink-uniffi --target aarch64-unknown-linux-gnu >&2
cp "$CARGO_TARGET_DIR/release/libedrlink_uniffi.so" "$WORK/res/linux-x86-64/"
cp "$CARGO_TARGET_DIR/aarch64-unknown-linux-gnu/release/libedrlink_uniffi.so" "$WORK/res/linux-aarch64/"
bindings/uniffi/scripts/generate.sh --check --lib "$CARGO_TARGET_DIR/release/libedrlink_uniffi.so" >&2

JAR="$OUT/edrlink-kotlin-$VERSION.jar"
"$KOTLINC" -nowarn -jvm-target 17 -cp "$JNA_JAR" -d "$WORK/classes.jar" bindings/kotlin/src/main/kotlin/org/edrlink/*.kt >&2
cp "$WORK/classes.jar" "$JAR"
cp LICENSE "$WORK/res/LICENSE-edrlink"
jar uf "$JAR" -C "$WORK/res" . >&2
unzip -l "$JAR" | grep -q 'linux-aarch64/libedrlink_uniffi.so' || { echo "jar lacks the aarch64 library"; exit 1; }
unzip -l "$JAR" | grep -q 'linux-x86-64/libedrlink_uniffi.so' || { echo "jar lacks the x86-64 library"; exit 1; }

if [ "$VERIFY" != 1 ]; then echo "built: $(basename "$JAR") (linux-x86-64, linux-aarch64)"; exit 0; fi

# The Kotlin suite against the jar, with no native library on any path the JVM is told about.
KLIB="$(dirname "$(readlink -f "$KOTLINC")")/../lib"
"$KOTLINC" -nowarn -jvm-target 17 -cp "$JNA_JAR:$JAR" -d "$WORK/tests.jar" tests/kotlin/*.kt >&2
# shellcheck disable=SC1091
source bindings/uniffi/scripts/service.sh
trap stop_service EXIT
start_service "$WORK/service" >&2
mkdir -p "$WORK/run"
set +e
(cd "$WORK/run" && EDRLINK_VECTORS_DIR="$ROOT/tests/vectors" EDRLINK_ROOT="$ROOT" java -cp "$WORK/tests.jar:$JAR:$JNA_JAR:$KLIB/kotlin-stdlib.jar" \
  edrlinktest.EdrlinkTestsKt) >"$WORK/suite.out" 2>&1
rc=$?
set -e
cat "$WORK/suite.out" >&2
line="$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$WORK/suite.out" | tail -1)"
if [ "$rc" = 0 ] && [ -n "$line" ]; then
  echo "built+tested: $(basename "$JAR") (linux-x86-64, linux-aarch64 inside); Kotlin suite on the JVM with no -Djna.library.path: $line"
else
  echo "Kotlin suite against the jar: ${line:-no summary} (exit $rc)"; exit 1
fi
