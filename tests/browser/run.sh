#!/usr/bin/env bash
# Browser end-to-end test: real edrlink-service + portal + examples/web-console in headless
# Chromium (playwright-core from tools/node_modules, /usr/bin/chromium; never `playwright install`).
# Builds the wasm package and the service binary unless given:
#   EDRLINK_SERVICE_BIN=/path/to/edrlink-service  SKIP_PACKAGE_BUILD=1
# Screenshots: artifacts/screenshots/. Ends with "N passed, N failed".
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
[ -d "$ROOT/tools/node_modules/playwright-core" ] || { echo "tools/node_modules missing: run scripts/install-deps.sh" >&2; exit 1; }
[ -x /usr/bin/chromium ] || { echo "/usr/bin/chromium missing: run scripts/install-deps.sh" >&2; exit 1; }
if [ "${SKIP_PACKAGE_BUILD:-0}" != 1 ] || [ ! -f "$ROOT/wasm/pkg/web/edrlink_wasm_bg.wasm" ]; then
  "$ROOT/wasm/build.sh" >/dev/null
fi
BIN="${EDRLINK_SERVICE_BIN:-}"
if [ -z "$BIN" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/wasmdev}"
  (cd "$ROOT" && cargo build -q -p edrlink-service --bin edrlink-service)
  BIN="$CARGO_TARGET_DIR/debug/edrlink-service"
fi
exec node "$HERE/e2e.mjs" "$BIN"
