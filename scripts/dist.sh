#!/usr/bin/env bash
# Release artifacts for every platform, written to dist/ (gitignored).
#
# Usage: scripts/dist.sh [--verify] [--only LIST] [--no-deps]
#   (default)    build every target's archive, the wheels, the npm tarball, the Kotlin jar,
#                an SBOM per archive and SHA256SUMS
#   --verify     also run each target's tests where this machine can run them (qemu-user for
#                aarch64, wine for Windows, natively for musl), build a consumer against every
#                unpacked archive, check the built-only targets' exported symbols against the
#                Linux set, and run the Python suite against the installed manylinux2014 wheel
#   --only LIST  comma-separated subset of: x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu
#                x86_64-unknown-linux-musl x86_64-pc-windows-gnu x86_64-apple-darwin
#                aarch64-apple-darwin aarch64-apple-ios aarch64-linux-android x86_64-linux-android
#                wheels npm kotlin install (the README install sections, with --verify)
#   --no-deps    do not run scripts/platform-deps.sh (tools must be present)
#   --keep       add to dist/ instead of starting it afresh (e.g. a second --only run; each run
#                rewrites SHA256SUMS over everything in dist/)
#
# Ends with one line per target: "built+tested", "built-only" (and why) or "FAILED".
# Logs: dist/logs/<target>.log. Env: CARGO_TARGET_DIR (default target/).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
T0=$SECONDS
VERIFY=0 ONLY="" DEPS=1 KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --verify) VERIFY=1 ;;
    --only) ONLY=",$2,"; shift ;;
    --no-deps) DEPS=0 ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "dist.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export CARGO_TERM_COLOR=never
export PATH="$ROOT/tools/venv/bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
DIST="$ROOT/dist"
LOGS="$DIST/logs"
WORK="$CARGO_TARGET_DIR/dist-work"
VERSION="$(sed -n '/^\[workspace.package\]/,/^\[/{s/^version *= *"\(.*\)"/\1/p}' Cargo.toml)"
log() { printf '\033[1m[dist]\033[0m %s\n' "$*"; }
want() { [ -z "$ONLY" ] || [[ "$ONLY" == *",$1,"* ]]; }

if [ "$DEPS" = 1 ]; then
  # the test suite's tools (kotlinc, wasm-bindgen, npm tools) and the cross toolchains; both idempotent
  bash scripts/install-deps.sh >/dev/null || { echo "dist.sh: install-deps.sh failed" >&2; exit 1; }
  bash scripts/platform-deps.sh || { echo "dist.sh: platform-deps.sh failed" >&2; exit 1; }
fi
[ "$KEEP" = 1 ] || rm -rf "$DIST"
mkdir -p "$DIST" "$LOGS" "$WORK"

declare -a R_NAMES=() R_LINES=()
result() { R_NAMES+=("$1"); R_LINES+=("$2"); log "$1: $2"; }

# ------------------------------------------------------------------ cross toolchain settings
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
export CC_x86_64_unknown_linux_musl=musl-gcc
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
export CC_x86_64_pc_windows_gnu=x86_64-w64-mingw32-gcc AR_x86_64_pc_windows_gnu=x86_64-w64-mingw32-ar
export WINEPREFIX="$WORK/wine" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
# Debian's wine64 package installs the loader outside PATH (the `wine` wrapper package is optional).
WINE="$(command -v wine64 || command -v wine || echo /usr/lib/wine/wine64)"
# Android static libraries: ring's C and assembly are compiled by clang for the Android target
# against clang's own headers (ring's -nostdlibinc mode, as it does for wasm32; freestanding, so
# x86's intrinsics headers do not pull in the C library's stdlib.h); nothing is
# linked, so no NDK is needed.
for t in aarch64-linux-android x86_64-linux-android; do
  u="${t//-/_}"
  export "CC_$u=clang" "AR_$u=llvm-ar" "CFLAGS_$u=--target=${t}21 -ffreestanding -nostdlibinc -DRING_CORE_NOSTDLIBINC=1"
done

# ------------------------------------------------------------------ build one C library target
# build_lib TRIPLE MODE: MODE is "shared" (staticlib + cdylib) or "static" (staticlib only).
# Prints the native-static-libs line rustc reports into $WORK/<triple>.native.
build_lib() {
  local t="$1" mode="$2" tool="${3:-cargo}" types="staticlib,cdylib"
  [ "$mode" = static ] && types=staticlib
  local cmd=(cargo rustc)
  [ "$tool" = zig ] && cmd=(cargo-zigbuild rustc)
  local targs=(--target "$t")
  [ "$t" = x86_64-unknown-linux-gnu ] && targs=()   # the host build: reuse target/release
  "${cmd[@]}" --release --locked -p edrlink-ffi --lib "${targs[@]}" --crate-type "$types" \
    -- --print native-static-libs >"$LOGS/$t.build.log" 2>&1 || return 1
  sed -n 's/.*native-static-libs: //p' "$LOGS/$t.build.log" | tail -1 >"$WORK/$t.native"
}
outdir() { if [ "$1" = x86_64-unknown-linux-gnu ]; then echo "$CARGO_TARGET_DIR/release"; else echo "$CARGO_TARGET_DIR/$1/release"; fi; }

# ------------------------------------------------------------------ package one archive
# package TRIPLE SHARED_FILE(or "") IMPORT_LIB(or ""): writes dist/edrlink-VERSION-TRIPLE.tar.gz
package() {
  local t="$1" shared="$2" implib="$3" out; out="$(outdir "$t")"
  local name="edrlink-$VERSION-$t" dir="$WORK/pkg/edrlink-$VERSION-$t"
  rm -rf "$dir"; mkdir -p "$dir/include" "$dir/lib/pkgconfig" "$dir/lib/cmake/edrlink"
  cp include/edrlink.h "$dir/include/"
  cp "$out/libedrlink.a" "$dir/lib/"
  # musl: Rust's staticlib leaves the unwinder out (it lives in the toolchain's self-contained
  # libunwind.a); ship it next to the library so a static link needs neither the toolchain nor
  # the host gcc's libgcc_eh (which references glibc's _dl_find_object and cannot link with musl).
  [ -f "$out/libedrlink_unwind.a" ] && cp "$out/libedrlink_unwind.a" "$dir/lib/"
  local shared_rel=""
  if [ -n "$shared" ]; then
    case "$shared" in
      *.dll) mkdir -p "$dir/bin"; cp "$out/$shared" "$dir/bin/"; shared_rel="bin/$shared" ;;
      *) cp "$out/$shared" "$dir/lib/"; shared_rel="lib/$shared" ;;
    esac
  fi
  [ -n "$implib" ] && cp "$out/$implib" "$dir/lib/"
  local native; native="$(cat "$WORK/$t.native" 2>/dev/null)"
  local native_cmake; native_cmake="$(printf '%s' "$native" | sed -e 's/-l//g' -e 's/-framework /-framework;/g' -e 's/ /;/g')"
  subst() { sed -e "s|@VERSION@|$VERSION|g" -e "s|@TRIPLE@|$t|g" -e "s|@NATIVE_LIBS@|$native|g" \
                -e "s|@NATIVE_LIBS_CMAKE@|$native_cmake|g" -e "s|@STATIC_LIB@|libedrlink.a|g" \
                -e "s|@SHARED_LIB@|$shared_rel|g" -e "s|@IMPORT_LIB@|$implib|g" "$1"; }
  subst bindings/c/pkg/edrlink.pc.in >"$dir/lib/pkgconfig/edrlink.pc"
  subst bindings/c/pkg/edrlinkConfig.cmake.in >"$dir/lib/cmake/edrlink/edrlinkConfig.cmake"
  sed -e "s|@VERSION@|$VERSION|g" bindings/c/pkg/edrlinkConfigVersion.cmake.in >"$dir/lib/cmake/edrlink/edrlinkConfigVersion.cmake"
  cp LICENSE "$dir/LICENSE"
  archive_readme "$t" "$shared_rel" "$implib" "$native" >"$dir/README.md"
  sbom "$t" "$dir"
  tar -C "$WORK/pkg" -czf "$DIST/$name.tar.gz" "$name"
}

archive_readme() {  # TRIPLE SHARED IMPLIB NATIVE
  local t="$1" shared="$2" implib="$3" native="$4"
  cat <<EOF
# edrlink $VERSION for $t

The edrlink C API (\`include/edrlink.h\`) built for \`$t\`. Documentation: the repository's
\`bindings/c/README.md\` and \`docs/PROTOCOL.md\`. License: Apache-2.0 (\`LICENSE\`).
Bill of materials: \`sbom/edrlink.cdx.json\` (CycloneDX).

| file | what |
|---|---|
| \`include/edrlink.h\` | the header |
| \`lib/libedrlink.a\` | static library |
EOF
  [ -f "$(outdir "$t")/libedrlink_unwind.a" ] && echo "| \`lib/libedrlink_unwind.a\` | the unwinder the static library needs (Rust's self-contained libunwind for $t): link it right after \`libedrlink.a\` |"
  [ -n "$shared" ] && echo "| \`$shared\` | shared library |"
  [ -n "$implib" ] && echo "| \`lib/$implib\` | import library for \`$shared\` |"
  cat <<EOF
| \`lib/pkgconfig/edrlink.pc\` | pkg-config (relocatable: \`PKG_CONFIG_PATH=<here>/lib/pkgconfig\`) |
| \`lib/cmake/edrlink/\` | CMake: \`find_package(edrlink $VERSION REQUIRED)\` with \`CMAKE_PREFIX_PATH=<here>\` |

## Link lines

Unpack anywhere, then (\`P\` = the unpacked directory):

EOF
  case "$t" in
    *windows*) cat <<EOF
\`\`\`sh
# DLL (ship bin/edrlink.dll next to your .exe)
x86_64-w64-mingw32-gcc app.c -I\$P/include -L\$P/lib -ledrlink -o app.exe
# static
x86_64-w64-mingw32-gcc app.c -I\$P/include \$P/lib/libedrlink.a $native -o app.exe
\`\`\`
MSVC: link \`bin/edrlink.dll\` through an import library made with \`lib /def\`; the archive is
built with the GNU toolchain (mingw-w64).
EOF
      ;;
    *apple*) cat <<EOF
\`\`\`sh
clang app.c -I\$P/include \$P/lib/libedrlink.a $native -o app
\`\`\`
EOF
      [ -n "$shared" ] && echo "Shared: \`clang app.c -I\$P/include -L\$P/lib -ledrlink\`."
      ;;
    *android*) cat <<EOF
\`\`\`sh
\$NDK/toolchains/llvm/prebuilt/linux-x86_64/bin/${t}21-clang app.c -I\$P/include \$P/lib/libedrlink.a $native
\`\`\`
Or add \`lib/libedrlink.a\` as an IMPORTED STATIC library in your NDK CMake project.
EOF
      ;;
    *musl*) cat <<EOF
\`\`\`sh
musl-gcc -static app.c -I\$P/include \$P/lib/libedrlink.a \$P/lib/libedrlink_unwind.a $native -o app   # fully static
\`\`\`
EOF
      ;;
    *) cat <<EOF
\`\`\`sh
cc app.c \$(PKG_CONFIG_PATH=\$P/lib/pkgconfig pkg-config --cflags --libs edrlink) -Wl,-rpath,\$P/lib   # shared
cc app.c -I\$P/include \$P/lib/libedrlink.a $native                                                  # static
\`\`\`
EOF
      ;;
  esac
  cat <<EOF

System libraries for a static link (as rustc reports them for this target): \`$native\`
EOF
}

# ------------------------------------------------------------------ SBOM per archive
sbom_of() {  # CRATE_DIR TARGET DEST_FILE: CycloneDX of that crate's dependency graph for TARGET
  local crate="$1" t="$2" dest="$3" tag="edrlink-sbom-$$-$2"
  # cargo-cyclonedx writes one file next to every workspace member's Cargo.toml: keep the
  # wanted crate's (its default features, this target), remove the others.
  (cd "$crate" && cargo cyclonedx --format json --spec-version 1.5 --target "$t" --override-filename "$tag" -q) \
    >>"$LOGS/sbom.log" 2>&1
  local rc=$?
  [ -f "$crate/$tag.json" ] && mv "$crate/$tag.json" "$dest"
  find . -name "$tag.json" -not -path './target/*' -delete
  [ "$rc" = 0 ] && [ -f "$dest" ]
}
sbom() {  # TRIPLE DIR: the archive's SBOM (crate edrlink-ffi), inside it and next to it in dist/
  mkdir -p "$2/sbom"
  command -v cargo-cyclonedx >/dev/null || { echo "cargo-cyclonedx missing" >>"$LOGS/sbom.log"; return 1; }
  sbom_of bindings/c "$1" "$2/sbom/edrlink.cdx.json" && cp "$2/sbom/edrlink.cdx.json" "$DIST/edrlink-$VERSION-$1.cdx.json"
}

# ------------------------------------------------------------------ reference service (for --verify)
SVC_PID=""
stop_service() { [ -n "$SVC_PID" ] && { kill "$SVC_PID" 2>/dev/null; wait "$SVC_PID" 2>/dev/null; SVC_PID=""; }; }
trap stop_service EXIT
start_service() {
  [ -n "$SVC_PID" ] && return 0
  local svc="${EDRLINK_SERVICE_BIN:-$CARGO_TARGET_DIR/release/edrlink-service}"
  if [ -z "${EDRLINK_SERVICE_BIN:-}" ]; then
    cargo build --release --locked -p edrlink-service --bin edrlink-service >"$LOGS/service.build.log" 2>&1 || return 1
  fi
  export EDRLINK_ADMIN_KEY="dist-admin-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  rm -f "$WORK/svc.db"*
  : >"$WORK/svc.out"
  "$svc" --db "$WORK/svc.db" --listen 127.0.0.1:0 >"$WORK/svc.out" 2>"$WORK/svc.err" &
  SVC_PID=$!
  local i
  for i in $(seq 1 100); do
    SVC_URL="$(sed -n 's/^listening on \(http:\/\/[^ ]*\).*/\1/p' "$WORK/svc.out" | head -1)"
    [ -n "$SVC_URL" ] && break; sleep 0.1
  done
  [ -n "$SVC_URL" ] || return 1
  export EDRLINK_TEST_URL="$SVC_URL"
  # the Python and Kotlin runs start their own service from the same release binary
  export EDRLINK_SERVICE_BIN="$svc"
}
admin() { curl -sS -H "authorization: Bearer $EDRLINK_ADMIN_KEY" -H 'content-type: application/json' "$@"; }
new_token() {  # TENANT -> prints an access token for partner acme-av
  admin -X POST "$SVC_URL/admin/tenants" -d "{\"tenant_id\":\"$1\",\"region\":\"eu\"}" >/dev/null
  admin -X PUT "$SVC_URL/admin/tenants/$1/integrations/acme-av" -d '{"enabled":true}' >/dev/null
  admin -X POST "$SVC_URL/admin/tenants/$1/integrations/acme-av/tokens" -d '{}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}
vectors_tsv() {  # the shared vectors as the C suite reads them (same conversion as tests/c/run.sh)
  [ -f "$WORK/vectors.tsv" ] && return 0
  sed -n "/^python3 - \"\$ROOT\/tests\/vectors\"/,/^PY$/p" tests/c/run.sh | sed '1d;$d' >"$WORK/vectors.py"
  python3 "$WORK/vectors.py" tests/vectors "$WORK/vectors.tsv"
}
unpack() {  # TRIPLE -> prints the unpacked archive directory
  local d="$WORK/unpacked/$1"; rm -rf "$d"; mkdir -p "$d"
  tar -C "$d" -xzf "$DIST/edrlink-$VERSION-$1.tar.gz" && echo "$d/edrlink-$VERSION-$1"
}
count_line() { grep -E '^[0-9]+ passed, [0-9]+ failed$' "$1" | tail -1; }

# C suite (stateless + client against the service) built against an unpacked archive.
# c_suite TRIPLE PREFIX CC LINK RUNNER...
c_suite() {
  local t="$1" p="$2" cc="$3" link="$4"; shift 4
  local d="$WORK/c-$t"; rm -rf "$d"; mkdir -p "$d/scratch"
  # shellcheck disable=SC2086
  "$cc" -std=c11 -O1 -g -I"$p/include" -Itests/c tests/c/test_main.c tests/c/test_stateless.c tests/c/test_client.c \
    tests/c/minijson.c tests/c/http_socket.c $link -o "$d/suite" >>"$LOGS/$t.log" 2>&1 || { echo "C suite did not build"; return 1; }
  EDRLINK_TEST_VECTORS="$WORK/vectors.tsv" EDRLINK_TEST_TMP="$d/scratch" EDRLINK_CARGO_VERSION="$VERSION" \
    EDRLINK_TEST_OPTIONS_SCHEMA="$ROOT/tests/options-schema.json" \
    "$@" "$d/suite" >"$d/out" 2>"$d/err"
  local rc=$?
  cat "$d/err" >>"$LOGS/$t.log"
  local counts; counts="$(count_line "$d/out")"
  echo "$counts" >"$WORK/$t.counts"
  [ "$rc" = 0 ] && [ -n "$counts" ] || { echo "C suite: ${counts:-no summary} (exit $rc)"; return 1; }
}

# pkg-config and CMake consumers of a Linux archive (example agent), run against the service.
linux_consumers() {  # TRIPLE PREFIX CC RUNNER...
  local t="$1" p="$2" cc="$3"; shift 3
  local d="$WORK/consumer-$t"; rm -rf "$d"; mkdir -p "$d/cmake-src"
  # shellcheck disable=SC2046
  "$cc" -std=c11 examples/c/partner_agent.c $(PKG_CONFIG_PATH="$p/lib/pkgconfig" pkg-config --cflags --libs edrlink) \
    -Wl,-rpath,"$p/lib" -o "$d/agent-pc" >>"$LOGS/$t.log" 2>&1 || { echo "pkg-config consumer did not build"; return 1; }
  cp examples/c/partner_agent.c "$d/cmake-src/"
  cat >"$d/cmake-src/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.16)
project(edrlink_consumer C)
find_package(edrlink $VERSION REQUIRED)
add_executable(agent_shared partner_agent.c)
target_link_libraries(agent_shared PRIVATE edrlink::edrlink)
add_executable(agent_static partner_agent.c)
target_link_libraries(agent_static PRIVATE edrlink::edrlink_static)
CM
  local tc=()
  [ "$cc" != gcc ] && tc=(-DCMAKE_C_COMPILER="$cc" -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64)
  { cmake -S "$d/cmake-src" -B "$d/cmake-build" -DCMAKE_PREFIX_PATH="$p" "${tc[@]}" &&
    cmake --build "$d/cmake-build"; } >>"$LOGS/$t.log" 2>&1 || { echo "CMake consumer did not build"; return 1; }
  local bin tok
  for bin in "$d/agent-pc" "$d/cmake-build/agent_shared" "$d/cmake-build/agent_static"; do
    tok="$(new_token "c-$t-$(basename "$bin")-$RANDOM")"
    EDRLINK_TOKEN="$tok" EDRLINK_DATA_DIR="$d/data-$(basename "$bin")" LD_LIBRARY_PATH="$p/lib" "$@" "$bin" \
      >"$d/$(basename "$bin").out" 2>&1 && grep -q '"healthy":true' "$d/$(basename "$bin").out" ||
      { cat "$d/$(basename "$bin").out" >>"$LOGS/$t.log"; echo "consumer $(basename "$bin") did not report healthy"; return 1; }
  done
}

# Symbols a built-only archive's static library defines, against the Linux shared library's exports.
symbol_check() {  # TRIPLE PREFIX
  bash scripts/abi-check.sh --symbols-of "$2/lib/libedrlink.a" >"$WORK/$1.symbols"
  if diff -u "$WORK/linux.symbols" "$WORK/$1.symbols" >>"$LOGS/$1.log"; then
    echo "$(wc -l <"$WORK/$1.symbols") symbols = Linux set"
  else
    echo "exported symbols differ from the Linux set (see dist/logs/$1.log)"; return 1
  fi
}

# ================================================================== targets
# The core's tests (all test binaries, also after a failure) for TRIPLE; sets CORE to a summary.
core_tests() {
  cargo test --release --locked --no-fail-fast --target "$1" -p edrlink-core --features transport,spool-file,agent,gzip \
    >"$LOGS/$1.core-tests.log" 2>&1
  local rc=$?
  CORE="core tests $(grep -E '^test result:' "$LOGS/$1.core-tests.log" | awk '{p+=$4; f+=$6} END {print p" passed, "f" failed"}')"
  local failed; failed="$(grep -E '^test .* FAILED$' "$LOGS/$1.core-tests.log" | awk '{print $2}' | sort -u | tr '\n' ' ')"
  [ -n "$failed" ] && CORE="$CORE (failed: ${failed% })"
  return $rc
}
timed() { local s=$SECONDS; "$@"; local rc=$?; ELAPSED=$((SECONDS - s)); return $rc; }

[ "$VERIFY" = 1 ] && { start_service || { echo "dist.sh: reference service did not start" >&2; exit 1; }; vectors_tsv; }

# --- x86_64-unknown-linux-gnu: as today (the full suites run in scripts/test-all.sh)
t=x86_64-unknown-linux-gnu
if want $t; then
  s=$SECONDS
  if build_lib $t shared && package $t libedrlink.so ""; then
    bash scripts/abi-check.sh --symbols-of "$(outdir $t)/libedrlink.so" >"$WORK/linux.symbols"
    if [ "$VERIFY" = 1 ]; then
      p="$(unpack $t)"
      msg3="$(bash scripts/abi-check.sh --lib "$(outdir $t)/libedrlink.so" 2>>"$LOGS/$t.log")"
      abi_rc=$?; msg3="$(tail -1 <<<"$msg3")"
      if msg="$(c_suite $t "$p" gcc "-L$p/lib -Wl,-rpath,$p/lib -ledrlink -lpthread" env)" &&
         msg2="$(linux_consumers $t "$p" gcc env)" && [ "$abi_rc" = 0 ]; then
        result $t "built+tested: C suite $(cat "$WORK/$t.counts"); pkg-config + CMake consumers healthy; $msg3 ($((SECONDS - s))s)"
      else result $t "FAILED: ${msg:-}${msg2:-}${msg3:-} ($((SECONDS - s))s)"; fi
    else result $t "built ($((SECONDS - s))s)"; fi
  else result $t "FAILED: build (dist/logs/$t.build.log)"; fi
else
  # the other targets' symbol checks need the Linux set: the library's if built, else the
  # committed baseline (which scripts/abi-check.sh keeps equal to it)
  if [ -f "$CARGO_TARGET_DIR/release/libedrlink.so" ]; then
    bash scripts/abi-check.sh --symbols-of "$CARGO_TARGET_DIR/release/libedrlink.so" >"$WORK/linux.symbols"
  else cp include/abi/symbols.txt "$WORK/linux.symbols"; fi
fi

# --- aarch64-unknown-linux-gnu: core tests + vectors + C suite under qemu-user
t=aarch64-unknown-linux-gnu
if want $t; then
  s=$SECONDS msg="" msg2=""
  if build_lib $t shared && package $t libedrlink.so ""; then
    if [ "$VERIFY" = 1 ]; then
      p="$(unpack $t)"
      QEMU=(qemu-aarch64 -L /usr/aarch64-linux-gnu)
      core_tests $t; core_rc=$?
      if msg="$(c_suite $t "$p" aarch64-linux-gnu-gcc "-L$p/lib -ledrlink -lpthread" "${QEMU[@]}" -E LD_LIBRARY_PATH="$p/lib")" &&
         msg2="$(linux_consumers $t "$p" aarch64-linux-gnu-gcc "${QEMU[@]}")" && [ "$core_rc" = 0 ]; then
        result $t "built+tested under qemu-user: $CORE (incl. vectors); C suite $(cat "$WORK/$t.counts"); pkg-config + CMake consumers healthy ($((SECONDS - s))s)"
      else result $t "FAILED: $CORE; C suite $(cat "$WORK/$t.counts" 2>/dev/null); $msg$msg2 ($((SECONDS - s))s)"; fi
    else result $t "built ($((SECONDS - s))s)"; fi
  else result $t "FAILED: build (dist/logs/$t.build.log)"; fi
fi

# --- x86_64-unknown-linux-musl: fully static; core tests + C suite
t=x86_64-unknown-linux-musl
if want $t; then
  s=$SECONDS msg=""
  # musl's crt-static target emits no cdylib: the archive carries the static library only.
  if build_lib $t static &&
     cp "$(rustc --print sysroot)/lib/rustlib/$t/lib/self-contained/libunwind.a" "$(outdir $t)/libedrlink_unwind.a" &&
     sed -i 's/-lunwind *//' "$WORK/$t.native" &&   # the unwinder ships as lib/libedrlink_unwind.a
     package $t "" ""; then
    if [ "$VERIFY" = 1 ]; then
      p="$(unpack $t)"
      core_tests $t; core_rc=$?
      if msg="$(c_suite $t "$p" musl-gcc "-static $p/lib/libedrlink.a $p/lib/libedrlink_unwind.a" env)" && [ "$core_rc" = 0 ]; then
        if file "$WORK/c-$t/suite" | grep -q 'statically linked'; then
          result $t "built+tested: $CORE; C suite (fully static binary) $(cat "$WORK/$t.counts") ($((SECONDS - s))s)"
        else result $t "FAILED: C suite binary is not statically linked"; fi
      else result $t "FAILED: $CORE; C suite $(cat "$WORK/$t.counts" 2>/dev/null); $msg ($((SECONDS - s))s)"; fi
    else result $t "built ($((SECONDS - s))s)"; fi
  else result $t "FAILED: build (dist/logs/$t.build.log)"; fi
fi

# --- x86_64-pc-windows-gnu: DLL + import lib + static lib; stateless suite + client under wine
t=x86_64-pc-windows-gnu
win_tests() {
  local p="$1" d="$WORK/win"; rm -rf "$d"; mkdir -p "$d"
  local cc=x86_64-w64-mingw32-gcc
  # the suite's stateless part, linked against the DLL through the import library
  $cc -std=c11 -O1 -include tests/c/cross/win_compat.h -I"$p/include" -Itests/c tests/c/cross/stateless_main.c tests/c/test_stateless.c tests/c/minijson.c \
    -L"$p/lib" -ledrlink -static-libgcc -o "$d/stateless.exe" >>"$LOGS/$t.log" 2>&1 || { echo "stateless suite did not build"; return 1; }
  # the MinGW consumer: the example agent, against the DLL and against the static library
  $cc -std=c11 -O1 -include winsock2.h -I"$p/include" examples/c/partner_agent.c -L"$p/lib" -ledrlink -lws2_32 \
    -static-libgcc -o "$d/agent.exe" >>"$LOGS/$t.log" 2>&1 || { echo "MinGW consumer (DLL) did not build"; return 1; }
  # shellcheck disable=SC2046
  $cc -std=c11 -O1 -include winsock2.h -I"$p/include" examples/c/partner_agent.c "$p/lib/libedrlink.a" \
    $(cat "$WORK/$t.native") -static -o "$d/agent-static.exe" >>"$LOGS/$t.log" 2>&1 || { echo "MinGW consumer (static) did not build"; return 1; }
  cp "$p/bin/edrlink.dll" "$d/"
  # Wine 8.0 lacks bcryptprimitives.dll (ProcessPrng, which Rust's std uses on Windows 10+):
  # a test-only stand-in forwarding to BCryptGenRandom goes next to the test executables.
  $cc -shared -O1 tests/c/cross/wine_bcryptprimitives.c -lbcrypt -o "$d/bcryptprimitives.dll" >>"$LOGS/$t.log" 2>&1 ||
    { echo "wine stand-in did not build"; return 1; }
  [ -d "$WINEPREFIX" ] || "$WINE" wineboot -i >>"$LOGS/$t.log" 2>&1 || true
  (cd "$d" && EDRLINK_TEST_VECTORS="$WORK/vectors.tsv" EDRLINK_CARGO_VERSION="$VERSION" timeout 600 "$WINE" ./stateless.exe \
    >"$d/stateless.out" 2>"$d/stateless.err")
  local rc=$?
  cat "$d/stateless.err" >>"$LOGS/$t.log"
  local counts; counts="$(tr -d '\r' <"$d/stateless.out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -1)"
  echo "$counts" >"$WORK/$t.counts"
  [ "$rc" = 0 ] && [ -n "$counts" ] || { echo "stateless suite under wine: ${counts:-no summary} (exit $rc)"; return 1; }
  local exe tok tenant
  for exe in agent.exe agent-static.exe; do
    tenant="win-${exe%.exe}-$RANDOM"
    tok="$(new_token "$tenant")"
    (cd "$d" && EDRLINK_TOKEN="$tok" EDRLINK_DATA_DIR="data-$exe" timeout 600 "$WINE" "./$exe" >"$d/$exe.out" 2>&1)
    tr -d '\r' <"$d/$exe.out" >>"$LOGS/$t.log"
    grep -q '"healthy":true' "$d/$exe.out" || { echo "$exe under wine did not report healthy"; return 1; }
    admin "$SVC_URL/admin/tenants/$tenant/alerts" | grep -q 'EICAR test file' || { echo "$exe: no EICAR alert in the portal"; return 1; }
  done
}
if want $t; then
  s=$SECONDS msg=""
  if build_lib $t shared && package $t edrlink.dll libedrlink.dll.a; then
    if [ "$VERIFY" = 1 ]; then
      p="$(unpack $t)"
      if msg="$(win_tests "$p")"; then
        result $t "built+tested under wine: C suite stateless part $(cat "$WORK/$t.counts"); MinGW consumer (DLL and static) enrolled, sent, EICAR alert raised, healthy against the service on loopback ($((SECONDS - s))s)"
      else result $t "FAILED: $msg ($((SECONDS - s))s)"; fi
    else result $t "built ($((SECONDS - s))s)"; fi
  else result $t "FAILED: build (dist/logs/$t.build.log)"; fi
fi

# --- Apple and Android: built only (nothing here runs them); symbols checked against Linux
for t in x86_64-apple-darwin aarch64-apple-darwin aarch64-apple-ios aarch64-linux-android x86_64-linux-android; do
  want $t || continue
  s=$SECONDS shared="" why=""
  case "$t" in
    *apple-darwin)
      # A dylib needs the Security and CoreFoundation frameworks (rustls' OS certificate store),
      # which only Apple's SDK provides: try zig, fall back to the static library.
      if build_lib $t shared zig; then shared=libedrlink.dylib
      else cp "$LOGS/$t.build.log" "$LOGS/$t.dylib-attempt.log"
        why="no dylib: linking one needs the macOS SDK's frameworks (dist/logs/$t.dylib-attempt.log); "; build_lib $t static zig || { result $t "FAILED: build (dist/logs/$t.build.log)"; continue; }; fi ;;
    *apple-ios)
      # cargo-zigbuild takes no iOS target; a static library needs only ring's C compiled, which
      # zig's clang does (scripts/zig-cc-ios.sh). SDKROOT keeps cc-rs from asking xcrun.
      CC_aarch64_apple_ios="$ROOT/scripts/zig-cc-ios.sh" AR_aarch64_apple_ios=llvm-ar SDKROOT="$WORK" \
        build_lib $t static || { result $t "FAILED: build (dist/logs/$t.build.log)"; continue; }
      why="static library (the iOS form; apps link it into their binary); " ;;
    *android) build_lib $t static || { result $t "FAILED: build (dist/logs/$t.build.log)"; continue; }
      why="static library (a .so needs the NDK linker); " ;;
  esac
  if ! package $t "$shared" ""; then result $t "FAILED: packaging"; continue; fi
  p="$(unpack $t)"
  if msg="$(symbol_check $t "$p")"; then result $t "built-only (no $([[ $t == *apple* ]] && echo Apple || echo Android) runtime here): ${why}$msg ($((SECONDS - s))s)"
  else result $t "FAILED: $msg"; fi
done

# ================================================================== Python wheels (manylinux2014)
if want wheels; then
  s=$SECONDS wmsg=""
  cargo build --quiet --locked -p edrlink-uniffi-bindgen >>"$LOGS/wheels.log" 2>&1
  ok=1
  for t in x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu; do
    # maturin finds the workspace's uniffi-bindgen; zig links against glibc 2.17.
    # CARGO_PROFILE_RELEASE_STRIP=none: through zig's linker, rustc's default strip of debug info
    # drops the whole symbol table, and uniffi-bindgen reads the bindings' metadata from it.
    # The cross linker/CC settings above are for the C archives; here maturin's zig must link
    # (against glibc 2.17), so they are removed from the environment.
    if (cd bindings/python && env -u CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER -u CC_aarch64_unknown_linux_gnu \
          -u AR_aarch64_unknown_linux_gnu CARGO_PROFILE_RELEASE_STRIP=none maturin build --release --locked --zig --target "$t" --compatibility manylinux2014 \
          --out "$DIST" >>"$LOGS/wheels.log" 2>&1); then
      whl="$(ls "$DIST"/edrlink-*manylinux*"${t%%-*}"*.whl 2>/dev/null | head -1)"
      sbom_of bindings/uniffi "$t" "${whl%.whl}.cdx.json" || { ok=0; wmsg="$wmsg ${t%%-*} wheel: no SBOM;"; }
      if auditwheel show "$whl" >"$LOGS/wheels.auditwheel-${t%%-*}.log" 2>&1 &&
         grep -q 'manylinux_2_17_'"${t%%-*}" "$LOGS/wheels.auditwheel-${t%%-*}.log"; then
        wmsg="$wmsg $(basename "$whl"): auditwheel show: manylinux2014 (manylinux_2_17);"
      else ok=0; wmsg="$wmsg ${t%%-*} wheel: auditwheel does not confirm manylinux2014;"; fi
    else ok=0; wmsg="$wmsg ${t%%-*} wheel: build failed (dist/logs/wheels.log);"; fi
  done
  if [ "$ok" = 1 ] && [ "$VERIFY" = 1 ]; then
    whl="$(ls "$DIST"/edrlink-*manylinux*x86_64*.whl | head -1)"
    if EDRLINK_WHEEL="$whl" bash tests/python/run.sh \
         >"$LOGS/wheels.python-suite.log" 2>&1; then
      wmsg="$wmsg x86_64 wheel in a fresh venv: Python suite $(count_line "$LOGS/wheels.python-suite.log")"
    else ok=0; wmsg="$wmsg Python suite against the wheel FAILED (dist/logs/wheels.python-suite.log)"; fi
  fi
  if [ "$ok" = 1 ]; then result wheels "ok:$wmsg ($((SECONDS - s))s)"; else result wheels "FAILED:$wmsg ($((SECONDS - s))s)"; fi
fi

# ================================================================== npm tarball (wasm package)
if want npm; then
  s=$SECONDS
  if bash wasm/build.sh >"$LOGS/npm.log" 2>&1 && (cd wasm && npm pack --pack-destination "$DIST" >>"$LOGS/npm.log" 2>&1); then
    tgz="$(ls "$DIST"/edrlink-wasm-*.tgz | head -1)"
    sbom_of wasm wasm32-unknown-unknown "${tgz%.tgz}.cdx.json" || result npm-sbom "FAILED: SBOM of the wasm crate"
    listing="$(tar -tzf "$tgz")"   # (not piped into grep -q: pipefail would see tar's SIGPIPE)
    if grep -q 'package/js/index.d.ts' <<<"$listing" && grep -q '\.wasm$' <<<"$listing"; then
      if [ "$VERIFY" = 1 ]; then
        d="$WORK/npm-consumer"; rm -rf "$d"; mkdir -p "$d"
        if (cd "$d" && npm init -y >/dev/null && npm install --no-audit --no-fund "$tgz" >>"$LOGS/npm.log" 2>&1 &&
            node --input-type=module -e 'import * as e from "@edrlink/wasm"; const n = e.errorCodes().length; if (!(n > 30)) process.exit(1); console.log("error codes", n)' >>"$LOGS/npm.log" 2>&1); then
          result npm "built+tested: $(basename "$tgz") (with .d.ts) installs and imports in a fresh Node project ($((SECONDS - s))s)"
        else result npm "FAILED: the tarball does not install/import (dist/logs/npm.log)"; fi
      else result npm "built: $(basename "$tgz") ($((SECONDS - s))s)"; fi
    else result npm "FAILED: tarball lacks the .d.ts or the .wasm"; fi
  else result npm "FAILED: wasm build or npm pack (dist/logs/npm.log)"; fi
fi

# ================================================================== Kotlin jar with the Linux .so files
if want kotlin; then
  s=$SECONDS
  kmsg="$(bash scripts/dist-kotlin.sh "$DIST" "$VERIFY" 2>>"$LOGS/kotlin.log" | tail -1)"
  krc=${PIPESTATUS[0]}
  kjar="$(ls "$DIST"/edrlink-kotlin-*.jar 2>/dev/null | head -1)"
  [ -n "$kjar" ] && { sbom_of bindings/uniffi x86_64-unknown-linux-gnu "${kjar%.jar}.cdx.json" || krc=1; }
  if [ "$krc" = 0 ] && [ -n "$kmsg" ]; then result kotlin "$kmsg ($((SECONDS - s))s)"
  else result kotlin "FAILED: ${kmsg:-see dist/logs/kotlin.log} ($((SECONDS - s))s)"; fi
fi

# ================================================================== install sections of the READMEs
if [ "$VERIFY" = 1 ] && want install; then
  s=$SECONDS
  if bash tests/install/run.sh >"$LOGS/install.log" 2>&1; then
    result install-sections "ok: the five binding READMEs' install-and-run sections ran verbatim in fresh directories: $(count_line "$LOGS/install.log") ($((SECONDS - s))s)"
  else result install-sections "FAILED: $(count_line "$LOGS/install.log") (dist/logs/install.log) ($((SECONDS - s))s)"; fi
fi

# ================================================================== checksums + summary
(cd "$DIST" && find . -maxdepth 1 -type f ! -name SHA256SUMS -printf '%f\n' | sort | xargs -r sha256sum >SHA256SUMS)
stop_service
echo
echo "=== dist/ ($(find "$DIST" -maxdepth 1 -type f | wc -l) files, SHA256SUMS), total $((SECONDS - T0))s"
failed=0
for i in "${!R_NAMES[@]}"; do
  printf '%-28s %s\n' "${R_NAMES[$i]}" "${R_LINES[$i]}"
  case "${R_LINES[$i]}" in FAILED*) failed=$((failed + 1)) ;; esac
done
echo "$(( ${#R_NAMES[@]} - failed )) passed, $failed failed"
[ "$failed" = 0 ]
