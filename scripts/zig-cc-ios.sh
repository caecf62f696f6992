#!/usr/bin/env bash
# C compiler for ring on aarch64-apple-ios without Apple's SDK (cargo-zigbuild does not take
# iOS targets): zig's clang for aarch64-ios with zig's Darwin libc headers (the same C library
# headers as the iOS SDK's for what ring includes: assert.h, string.h, TargetConditionals.h).
# cc-rs's own target and sysroot flags are dropped in favour of zig's -target.
set -euo pipefail
PY="${ZIG_PYTHON:-python3}"
ZIG_LIB="$("$PY" -c 'import os, ziglang; print(os.path.dirname(ziglang.__file__))')/lib"
INC="$ZIG_LIB/libc/include/any-darwin-any"
args=()
skip=0
for a in "$@"; do
  if [ "$skip" = 1 ]; then skip=0; continue; fi
  case "$a" in
    --target=*|-mios-version-min=*|-miphoneos-version-min=*) ;;
    -target|-isysroot) skip=1 ;;
    *) args+=("$a") ;;
  esac
done
exec "$PY" -m ziglang cc -target aarch64-ios -isystem "$INC" "${args[@]}"
