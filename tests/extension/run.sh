#!/usr/bin/env bash
# Extension end-to-end test: examples/browser-extension (MV3, wasm package in the service worker)
# in Chromium (playwright-core from tools/node_modules, /usr/bin/chromium, new headless mode;
# never `playwright install`) against the real edrlink-service on loopback.
# Builds the extension (and the wasm package if needed) and the service binary unless given:
#   EDRLINK_SERVICE_BIN=/path/to/edrlink-service
# Screenshots: artifacts/screenshots/extension-*.png. Ends with "N passed, N failed".
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
[ -d "$ROOT/tools/node_modules/playwright-core" ] || { echo "tools/node_modules missing: run scripts/install-deps.sh" >&2; exit 1; }
[ -x /usr/bin/chromium ] || { echo "/usr/bin/chromium missing: run scripts/install-deps.sh" >&2; exit 1; }

"$ROOT/examples/browser-extension/build.sh"

BIN="${EDRLINK_SERVICE_BIN:-}"
if [ -z "$BIN" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/ext}"
  (cd "$ROOT" && cargo build -q -p edrlink-service --bin edrlink-service)
  BIN="$CARGO_TARGET_DIR/debug/edrlink-service"
fi
exec node "$HERE/e2e.mjs" "$BIN" "$ROOT/examples/browser-extension/dist"
