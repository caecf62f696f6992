#!/usr/bin/env bash
# edrlink-wasm test suites:
#   1. wasm-bindgen-test suites (tests/wasm/{api,errors,vectors}.rs) in Node
#   2. the same suites in headless Chromium (chromedriver, tests/wasm/webdriver.json)
#   3. the npm package (wasm/js + wasm/pkg) from Node: tests/wasm/package.test.mjs (node --test)
#   4. the .d.ts: tsc --noEmit tests/wasm/usage.ts
#   5. native unit tests of the crate (TypeScript error-code union, option names)
#   6. the shared scenarios (tests/scenarios/*.json) over the npm package from Node against
#      the real reference service (started here on 127.0.0.1:0 with EDRLINK_TEST_FAULTS=1):
#      tests/wasm/scenarios.mjs, "scenarios: N passed, M failed"
#   7. host keys and the host credential store against the same service: signers on Node's
#      WebCrypto (Ed25519, P-256), failing and slow signers, no private key byte leaving the
#      host: tests/wasm/hostkeys.test.mjs (node --test)
# Prints "N passed, N failed" per runner and in total; exits non-zero on any failure.
# Env: SKIP_BROWSER=1 skips 2; SKIP_PACKAGE_BUILD=1 reuses wasm/pkg.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
cd "$ROOT"
TOOLS="$ROOT/tools/node_modules"
LOG="$(mktemp -d /tmp/edrlink-wasm-tests.XXXXXX)"
TOTAL_P=0 TOTAL_F=0 RC=0
report() {  # name passed failed
  echo "[$1] $2 passed, $3 failed"
  TOTAL_P=$((TOTAL_P + $2)); TOTAL_F=$((TOTAL_F + $3))
  [ "$3" -eq 0 ] || RC=1
}

# wasm32 cargo: the rustup target if installed, else Debian rustc-web + build-std (docs/BUILDING.md).
if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  CARGO=(cargo test --target wasm32-unknown-unknown --target-dir "$ROOT/target/wasm")
else
  export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
  CARGO=(/usr/bin/cargo test --target wasm32-unknown-unknown --target-dir "$ROOT/target/wasm" -Zbuild-std=std,panic_abort)
fi
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
export WASM_BINDGEN_TEST_TIMEOUT=120

sum_results() {  # log -> "passed failed" from libtest-style summaries
  awk '/test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
       END { print p + 0, f + 0 }' "$1"
}

echo "== building wasm32 test binaries"
"${CARGO[@]}" -p edrlink-wasm --tests --no-run 2>&1 | tail -n 3

echo "== 1. wasm-bindgen-test in Node"
set +e
"${CARGO[@]}" -p edrlink-wasm --tests --no-fail-fast > "$LOG/node.log" 2>&1; rc=$?
set -e
grep -E "^test |test result|vectors:|panicked|FAIL" "$LOG/node.log" || true
read -r p f < <(sum_results "$LOG/node.log")
[ "$rc" -eq 0 ] || [ "$f" -gt 0 ] || f=1
report node "$p" "$f"

if [ "${SKIP_BROWSER:-0}" != 1 ]; then
  echo "== 2. wasm-bindgen-test in headless Chromium"
  set +e
  WASM_BINDGEN_USE_BROWSER=1 CHROMEDRIVER=/usr/bin/chromedriver \
    WASM_BINDGEN_TEST_WEBDRIVER_JSON="$HERE/webdriver.json" \
    "${CARGO[@]}" -p edrlink-wasm --tests --no-fail-fast > "$LOG/browser.log" 2>&1; rc=$?
  set -e
  grep -E "^test |test result|vectors:|panicked|FAIL|rror" "$LOG/browser.log" | head -60 || true
  read -r p f < <(sum_results "$LOG/browser.log")
  [ "$rc" -eq 0 ] || [ "$f" -gt 0 ] || f=1
  report chromium "$p" "$f"
fi

echo "== 3. npm package from Node"
if [ "${SKIP_PACKAGE_BUILD:-0}" != 1 ]; then "$ROOT/wasm/build.sh" > "$LOG/build.log" 2>&1 || { tail -30 "$LOG/build.log"; exit 1; }; fi
set +e
node --test "$HERE/package.test.mjs" > "$LOG/pkg.log" 2>&1; rc=$?
set -e
grep -E "^not ok|^# (pass|fail)" "$LOG/pkg.log" || true
p="$(awk '/^# pass/{print $3}' "$LOG/pkg.log")"; f="$(awk '/^# fail/{print $3}' "$LOG/pkg.log")"
[ "$rc" -eq 0 ] || { cat "$LOG/pkg.log" | tail -40; [ "${f:-0}" -gt 0 ] || f=1; }
report package "${p:-0}" "${f:-0}"

echo "== 4. tsc --noEmit tests/wasm/usage.ts"
if "$TOOLS/.bin/tsc" -p "$HERE/tsconfig.json" > "$LOG/tsc.log" 2>&1; then report tsc 1 0; else cat "$LOG/tsc.log"; report tsc 0 1; fi

echo "== 5. native unit tests (edrlink-wasm lib)"
set +e
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/wasmdev}" env -u RUSTC -u RUSTDOC -u RUSTC_BOOTSTRAP \
  cargo test -p edrlink-wasm --lib > "$LOG/native.log" 2>&1; rc=$?
set -e
read -r p f < <(sum_results "$LOG/native.log")
[ "$rc" -eq 0 ] || { tail -20 "$LOG/native.log"; [ "$f" -gt 0 ] || f=1; }
report native "$p" "$f"

echo "== 6. shared scenarios against the reference service"
SVC_TARGET="${CARGO_TARGET_DIR:-$ROOT/target/wasmdev}"
if env -u RUSTC -u RUSTDOC -u RUSTC_BOOTSTRAP CARGO_TARGET_DIR="$SVC_TARGET" \
     cargo build -q -p edrlink-service --bin edrlink-service > "$LOG/svc-build.log" 2>&1; then
  export EDRLINK_ADMIN_KEY="wasm-scenarios-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  EDRLINK_TEST_FAULTS=1 "$SVC_TARGET/debug/edrlink-service" --db "$LOG/svc.db" --listen 127.0.0.1:0 \
    > "$LOG/svc.out" 2> "$LOG/svc.err" &
  SVC_PID=$!
  trap 'kill "$SVC_PID" 2>/dev/null || true' EXIT
  for _ in $(seq 1 300); do grep -q "listening on" "$LOG/svc.out" && break; sleep 0.1; done
  URL="$(sed -n 's/^listening on //p' "$LOG/svc.out" | head -n1)"
  set +e
  node "$HERE/scenarios.mjs" "$URL" > "$LOG/scenarios.log" 2>&1; rc=$?
  set -e
  cat "$LOG/scenarios.log"
  read -r p f < <(awk '/^scenarios: [0-9]+ passed, [0-9]+ failed$/ { print $2, $4 }' "$LOG/scenarios.log")
  [ "$rc" -eq 0 ] || [ "${f:-0}" -gt 0 ] || f=1
  report scenarios "${p:-0}" "${f:-0}"

  echo "== 7. host keys and credential store against the reference service"
  set +e
  EDRLINK_SERVICE_URL="$URL" node --test "$HERE/hostkeys.test.mjs" > "$LOG/hostkeys.log" 2>&1; rc=$?
  set -e
  kill "$SVC_PID" 2>/dev/null || true
  grep -E "^(not )?ok |^# (pass|fail)" "$LOG/hostkeys.log" || true
  p="$(awk '/^# pass/{print $3}' "$LOG/hostkeys.log")"; f="$(awk '/^# fail/{print $3}' "$LOG/hostkeys.log")"
  [ "$rc" -eq 0 ] || { tail -60 "$LOG/hostkeys.log"; [ "${f:-0}" -gt 0 ] || f=1; }
  report hostkeys "${p:-0}" "${f:-0}"
else
  tail -20 "$LOG/svc-build.log"; report scenarios 0 1
fi

echo "logs: $LOG"
echo "$TOTAL_P passed, $TOTAL_F failed"
exit $RC
