#!/usr/bin/env bash
# C API test runner: builds libedrlink (release) and the reference service,
# checks the committed header against a fresh cbindgen run, converts the
# shared vectors, starts edrlink-service on loopback, then runs the C suite
#   1. linked against libedrlink.so,
#   2. the same binary under valgrind memcheck (zero leaks, zero errors),
#   3. built with AddressSanitizer against libedrlink.a (detect_leaks=1),
# runs the shared scenarios (tests/scenarios/*.json, tests/c/test_scenarios.c;
# the service runs with EDRLINK_TEST_FAULTS=1) linked against the shared
# library, under valgrind and with AddressSanitizer, builds the example against an
# installed prefix (plain Makefile, pkg-config and CMake consumers) and runs
# it, and builds and runs the host-signer example (OpenSSL; the suite links
# -lcrypto for its EVP host signers). Ends with "N passed, N failed".
#
# Env: CARGO_TARGET_DIR (default target/c), SKIP_VALGRIND=1, SKIP_ASAN=1, KEEP_TMP=1,
# EDRLINK_SCENARIOS_DIR (default tests/scenarios).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/c}"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
CC="${CC:-gcc}"
TMP="$(mktemp -d /tmp/edrlink-c-test.XXXXXX)"
SVC_PID=""
cleanup() {
  if [ -n "$SVC_PID" ]; then kill "$SVC_PID" 2>/dev/null || true; wait "$SVC_PID" 2>/dev/null || true; fi
  if [ "${KEEP_TMP:-0}" = 1 ]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
log() { printf '\033[1m[c-tests]\033[0m %s\n' "$*"; }

PASSED=0 FAILED=0
step_ok()   { PASSED=$((PASSED + 1)); log "ok: $*"; }
step_fail() { FAILED=$((FAILED + 1)); log "FAILED: $*"; }
# Adds a suite's "N passed, N failed" line to the totals.
add_counts() {
  local line; line="$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$1" | tail -1 || true)"
  if [ -z "$line" ]; then step_fail "$2 printed no summary"; return; fi
  PASSED=$((PASSED + $(echo "$line" | awk '{print $1}')))
  FAILED=$((FAILED + $(echo "$line" | awk '{print $3}')))
  log "$2: $line"
}

# ---------------------------------------------------------------- build
log "building edrlink-ffi and edrlink-service (release, $CARGO_TARGET_DIR)"
(cd "$ROOT" && cargo build --release -p edrlink-ffi --lib -p edrlink-service --bin edrlink-service)
LIBDIR="$CARGO_TARGET_DIR/release"
SVC_BIN="$LIBDIR/edrlink-service"

log "header drift check (cbindgen)"
if "$ROOT/bindings/c/gen-header.sh" --check; then step_ok "include/edrlink.h matches a fresh cbindgen run"; else step_fail "header drift"; fi

log "every exported function is exercised by the suite"
MISSING=""
for f in $(grep -oE '\bedrlink_[a-z0-9_]+\(' "$ROOT/include/edrlink.h" | tr -d '(' | sort -u); do
  grep -q "\b$f(" "$HERE"/test_*.c || MISSING="$MISSING $f"
done
if [ -z "$MISSING" ]; then step_ok "all $(grep -oE '\bedrlink_[a-z0-9_]+\(' "$ROOT/include/edrlink.h" | sort -u | wc -l) exported functions appear in tests/c/test_*.c"
else step_fail "functions without a test:$MISSING"; fi

CARGO_VERSION="$(sed -n '/^\[workspace.package\]/,/^\[/{s/^version *= *"\(.*\)"/\1/p}' "$ROOT/Cargo.toml")"
export EDRLINK_CARGO_VERSION="$CARGO_VERSION"

# ---------------------------------------------------------------- vectors -> lines
log "converting tests/vectors/*.json"
python3 - "$ROOT/tests/vectors" "$TMP/vectors.tsv" <<'PY'
import json, os, sys
src, out = sys.argv[1], sys.argv[2]
def text(v):
    if isinstance(v, bool): return "true" if v else "false"
    if isinstance(v, (int, str)): return str(v)
    return json.dumps(v, separators=(",", ":"), sort_keys=True)
n = 0
with open(out, "w") as f:
    for name in sorted(os.listdir(src)):
        if not name.endswith(".json"): continue
        doc = json.load(open(os.path.join(src, name)))
        for c in doc["cases"]:
            fields = [c["kind"], c["name"].replace("\t", " ")]
            for prefix, obj in (("in", c.get("input", {})), ("ex", c.get("expect", {}))):
                for k, v in obj.items():
                    fields.append(f"{prefix}.{k}=" + text(v).encode().hex())
            f.write("\t".join(fields) + "\n"); n += 1
print(f"{n} vector cases", file=sys.stderr)
PY
export EDRLINK_TEST_VECTORS="$TMP/vectors.tsv"

# ---------------------------------------------------------------- service
export EDRLINK_ADMIN_KEY="c-test-admin-$(od -An -N16 -tx1 /dev/urandom | tr -d " \n")"
EDRLINK_TEST_FAULTS=1 "$SVC_BIN" --db "$TMP/svc.db" --listen 127.0.0.1:0 >"$TMP/svc.out" 2>"$TMP/svc.err" &
SVC_PID=$!
URL=""
for _ in $(seq 1 100); do
  URL="$(sed -n 's/^listening on \(http:\/\/[^ ]*\).*/\1/p' "$TMP/svc.out" | head -1)"
  [ -n "$URL" ] && break
  kill -0 "$SVC_PID" 2>/dev/null || { cat "$TMP/svc.err" >&2; echo "service exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$URL" ] || { echo "service did not report its address" >&2; exit 1; }
log "service at $URL"
export EDRLINK_TEST_URL="$URL"
export EDRLINK_TEST_OPTIONS_SCHEMA="$ROOT/tests/options-schema.json"
export EDRLINK_SCENARIOS_DIR="${EDRLINK_SCENARIOS_DIR:-$ROOT/tests/scenarios}"

# ---------------------------------------------------------------- suite
SRCS=("$HERE/test_main.c" "$HERE/test_stateless.c" "$HERE/test_client.c" "$HERE/test_hostkeys.c" "$HERE/ossl_keys.c"
      "$HERE/minijson.c" "$HERE/http_socket.c")
CFLAGS=(-std=c11 -Wall -Wextra -Werror -g -O1 -I"$ROOT/include" -I"$HERE")
NATIVE_LIBS=(-lpthread -ldl -lm -lrt -lutil)

log "building the suite against libedrlink.so"
"$CC" "${CFLAGS[@]}" "${SRCS[@]}" -L"$LIBDIR" -Wl,-rpath,"$LIBDIR" -ledrlink -lcrypto -lpthread -o "$TMP/suite"

run_suite() {  # name, log, command...
  local name="$1" out="$2"; shift 2
  mkdir -p "$TMP/scratch-$name"
  local rc=0
  EDRLINK_TEST_TMP="$TMP/scratch-$name" "$@" >"$out" 2>"$out.err" || rc=$?
  grep -E '^(FAIL|   )' "$out.err" | head -40 >&2 || true
  add_counts "$out" "$name"
  if [ "$rc" != 0 ]; then step_fail "$name exited with $rc"; tail -30 "$out.err" >&2; else step_ok "$name exit status"; fi
}

log "building the scenario runner against libedrlink.so"
SCN_SRCS=("$HERE/test_scenarios.c" "$HERE/minijson.c" "$HERE/http_socket.c")
"$CC" "${CFLAGS[@]}" "${SCN_SRCS[@]}" -L"$LIBDIR" -Wl,-rpath,"$LIBDIR" -ledrlink -lpthread -o "$TMP/scenarios"

# Runs the scenario runner; its "scenarios: N passed, M failed" line counts
# once per scenario, and N must equal the number of scenario files.
run_scenarios() {  # name, command...
  local name="$1"; shift
  local out="$TMP/$name.out" rc=0 files line
  mkdir -p "$TMP/scratch-$name"
  files="$(find "$EDRLINK_SCENARIOS_DIR" -maxdepth 1 -name '*.json' | wc -l)"
  EDRLINK_TEST_TMP="$TMP/scratch-$name" "$@" >"$out" 2>"$out.err" || rc=$?
  grep -E '^FAIL ' "$out" | head -60 >&2 || true
  line="$(grep -E '^scenarios: [0-9]+ passed, [0-9]+ failed$' "$out" | tail -1 || true)"
  if [ -z "$line" ]; then step_fail "$name printed no scenario summary"; tail -20 "$out.err" >&2; return; fi
  echo "$line"
  local n m; n="$(echo "$line" | awk '{print $2}')"; m="$(echo "$line" | awk '{print $4}')"
  PASSED=$((PASSED + n)); FAILED=$((FAILED + m))
  log "$name: ${line#scenarios: } (files: $files)"
  if [ "$n" != "$files" ]; then step_fail "$name: $n scenarios passed, $files files"; fi
  if [ "$rc" != 0 ]; then step_fail "$name exited with $rc"; tail -20 "$out.err" >&2; else step_ok "$name exit status"; fi
}

log "run 1: suite (shared library)"
run_suite shared "$TMP/shared.out" "$TMP/suite"

log "run 1b: scenarios (shared library)"
run_scenarios scenarios "$TMP/scenarios"

if [ "${SKIP_VALGRIND:-0}" != 1 ] && command -v valgrind >/dev/null; then
  log "run 2: suite under valgrind memcheck"
  run_suite valgrind "$TMP/valgrind.out" valgrind --quiet --leak-check=full --show-leak-kinds=definite,possible \
    --errors-for-leak-kinds=definite,possible --error-exitcode=1 --suppressions="$HERE/valgrind.supp" \
    --log-file="$TMP/valgrind.log" "$TMP/suite"
  if [ -s "$TMP/valgrind.log" ]; then cat "$TMP/valgrind.log" >&2; step_fail "valgrind reported problems"; else step_ok "valgrind: no errors, no leaks"; fi
  log "run 2b: scenarios under valgrind memcheck"
  run_scenarios scenarios-valgrind valgrind --quiet --leak-check=full --show-leak-kinds=definite,possible \
    --errors-for-leak-kinds=definite,possible --error-exitcode=1 --suppressions="$HERE/valgrind.supp" \
    --log-file="$TMP/valgrind-scenarios.log" "$TMP/scenarios"
  if [ -s "$TMP/valgrind-scenarios.log" ]; then cat "$TMP/valgrind-scenarios.log" >&2; step_fail "valgrind reported problems in the scenarios"; else step_ok "valgrind (scenarios): no errors, no leaks"; fi
else
  log "valgrind skipped"
fi

if [ "${SKIP_ASAN:-0}" != 1 ]; then
  log "run 3: suite with AddressSanitizer, static libedrlink.a"
  "$CC" "${CFLAGS[@]}" -fsanitize=address -fno-omit-frame-pointer "${SRCS[@]}" "$LIBDIR/libedrlink.a" -lcrypto "${NATIVE_LIBS[@]}" -o "$TMP/suite-asan"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1 run_suite asan "$TMP/asan.out" "$TMP/suite-asan"
  log "run 3b: scenarios with AddressSanitizer, static libedrlink.a"
  "$CC" "${CFLAGS[@]}" -fsanitize=address -fno-omit-frame-pointer "${SCN_SRCS[@]}" "$LIBDIR/libedrlink.a" "${NATIVE_LIBS[@]}" -o "$TMP/scenarios-asan"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1 run_scenarios scenarios-asan "$TMP/scenarios-asan"
else
  log "ASan skipped"
fi

# ---------------------------------------------------------------- install + example
log "installing into $TMP/prefix and building examples/c (Makefile, pkg-config, CMake)"
NO_BUILD=1 "$ROOT/bindings/c/install.sh" "$TMP/prefix" >/dev/null
if make -s -C "$ROOT/examples/c" PREFIX="$TMP/prefix" OUT="$TMP/example" HOST_OUT="$TMP/host-signer" >"$TMP/make.log" 2>&1; then
  step_ok "examples (partner_agent, host_signer) build with their Makefile against the installed prefix"
else
  cat "$TMP/make.log" >&2; step_fail "example Makefile build"
fi
if PKG_CONFIG_PATH="$TMP/prefix/lib/pkgconfig" pkg-config --modversion edrlink | grep -qx "$CARGO_VERSION" &&
   "$CC" -std=c11 "$ROOT/examples/c/partner_agent.c" $(PKG_CONFIG_PATH="$TMP/prefix/lib/pkgconfig" pkg-config --cflags --libs edrlink) \
     -Wl,-rpath,"$TMP/prefix/lib" -o "$TMP/example-pc"; then
  step_ok "pkg-config consumer (edrlink $CARGO_VERSION)"
else
  step_fail "pkg-config consumer"
fi
if command -v cmake >/dev/null; then
  mkdir -p "$TMP/cmake-src" "$TMP/cmake-build"
  cp "$ROOT/examples/c/partner_agent.c" "$TMP/cmake-src/"
  cat >"$TMP/cmake-src/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.16)
project(edrlink_consumer C)
find_package(edrlink $CARGO_VERSION REQUIRED)
add_executable(agent_shared partner_agent.c)
target_link_libraries(agent_shared PRIVATE edrlink::edrlink)
add_executable(agent_static partner_agent.c)
target_link_libraries(agent_static PRIVATE edrlink::edrlink_static)
CM
  if cmake -S "$TMP/cmake-src" -B "$TMP/cmake-build" -DCMAKE_PREFIX_PATH="$TMP/prefix" >"$TMP/cmake.log" 2>&1 &&
     cmake --build "$TMP/cmake-build" >>"$TMP/cmake.log" 2>&1; then
    step_ok "CMake consumer (find_package(edrlink), shared and static targets)"
  else
    cat "$TMP/cmake.log" >&2; step_fail "CMake consumer"
  fi
fi

# The example against the live service: token from the admin API.
admin() { curl -sS -H "authorization: Bearer $EDRLINK_ADMIN_KEY" -H 'content-type: application/json' "$@"; }
admin -X POST "$URL/admin/tenants" -d '{"tenant_id":"c-example","region":"eu"}' >/dev/null
admin -X PUT "$URL/admin/tenants/c-example/integrations/acme-av" -d '{"enabled":true}' >/dev/null
TOKEN="$(admin -X POST "$URL/admin/tenants/c-example/integrations/acme-av/tokens" -d '{}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
if EDRLINK_TOKEN="$TOKEN" EDRLINK_DATA_DIR="$TMP/example-data" "$TMP/example" >"$TMP/example.out" 2>&1 &&
   grep -q '"healthy":true' "$TMP/example.out" &&
   admin "$URL/admin/tenants/c-example/alerts" | grep -q 'EICAR test file'; then
  step_ok "example enrolled, sent a batch and the EICAR test (alert raised)"
else
  cat "$TMP/example.out" >&2; step_fail "example run"
fi

# The host-signer example: an OpenSSL P-256 key edrlink never sees; run twice
# (enroll, then restart from data_dir with the same host key).
TOKEN="$(admin -X POST "$URL/admin/tenants/c-example/integrations/acme-av/tokens" -d '{}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
if EDRLINK_TOKEN="$TOKEN" EDRLINK_DATA_DIR="$TMP/host-signer-data" "$TMP/host-signer" >"$TMP/host-signer.out" 2>&1 &&
   EDRLINK_DATA_DIR="$TMP/host-signer-data" "$TMP/host-signer" >>"$TMP/host-signer.out" 2>&1 &&
   [ "$(grep -c '"healthy":true' "$TMP/host-signer.out")" = 2 ] &&
   grep -q '"host_key"' "$TMP/host-signer-data/credential.json" && ! grep -q '"key_seed"' "$TMP/host-signer-data/credential.json" &&
   [ "$(admin "$URL/admin/tenants/c-example/alerts" | grep -o 'EICAR test file' | wc -l)" -ge 3 ]; then
  step_ok "host_signer example enrolled with a host-held P-256 key, sent twice across a restart (alerts raised)"
else
  cat "$TMP/host-signer.out" >&2; step_fail "host_signer example run"
fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
