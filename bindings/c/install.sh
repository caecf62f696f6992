#!/usr/bin/env bash
# Builds the C library (release) and installs it under PREFIX:
#   PREFIX/include/edrlink.h, PREFIX/lib/libedrlink.{a,so},
#   PREFIX/lib/pkgconfig/edrlink.pc, PREFIX/lib/cmake/edrlink/edrlinkConfig*.cmake
# Usage: bindings/c/install.sh PREFIX            (CARGO_TARGET_DIR honoured)
#        NO_BUILD=1 bindings/c/install.sh PREFIX (reuse an existing release build)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PREFIX="${1:?usage: install.sh PREFIX}"
mkdir -p "$PREFIX"
PREFIX="$(cd "$PREFIX" && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
[ "${NO_BUILD:-0}" = 1 ] || (cd "$ROOT" && cargo build --release -p edrlink-ffi --lib)

VERSION="$(sed -n '/^\[workspace.package\]/,/^\[/{s/^version *= *"\(.*\)"/\1/p}' "$ROOT/Cargo.toml")"
# What a static link needs besides libedrlink.a (as rustc reports for this target).
NATIVE_LIBS="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"
NATIVE_LIBS_CMAKE="gcc_s;util;rt;pthread;m;dl;c"

install -d "$PREFIX/include" "$PREFIX/lib/pkgconfig" "$PREFIX/lib/cmake/edrlink"
install -m 0644 "$ROOT/include/edrlink.h" "$PREFIX/include/edrlink.h"
install -m 0644 "$TARGET/release/libedrlink.a" "$PREFIX/lib/libedrlink.a"
install -m 0755 "$TARGET/release/libedrlink.so" "$PREFIX/lib/libedrlink.so"
# The same relocatable templates as the release archives (scripts/dist.sh): paths are
# relative to the installed files, so the prefix can be moved after installing.
TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
subst() { sed -e "s|@VERSION@|$VERSION|g" -e "s|@TRIPLE@|$TRIPLE|g" -e "s|@NATIVE_LIBS@|$NATIVE_LIBS|g" \
              -e "s|@NATIVE_LIBS_CMAKE@|$NATIVE_LIBS_CMAKE|g" -e "s|@STATIC_LIB@|libedrlink.a|g" \
              -e "s|@SHARED_LIB@|lib/libedrlink.so|g" -e "s|@IMPORT_LIB@||g" "$1" >"$2"; }
subst "$HERE/pkg/edrlink.pc.in" "$PREFIX/lib/pkgconfig/edrlink.pc"
subst "$HERE/pkg/edrlinkConfig.cmake.in" "$PREFIX/lib/cmake/edrlink/edrlinkConfig.cmake"
subst "$HERE/pkg/edrlinkConfigVersion.cmake.in" "$PREFIX/lib/cmake/edrlink/edrlinkConfigVersion.cmake"
echo "installed edrlink $VERSION into $PREFIX"
