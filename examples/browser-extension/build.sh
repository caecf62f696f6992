#!/usr/bin/env bash
# Builds the loadable extension into examples/browser-extension/dist/ (gitignored):
# the extension's own files + the edrlink wasm package (web target) under dist/edrlink/.
# Runs wasm/build.sh first when wasm/pkg/web is missing, lacks the persistence API
# (exportState) or is older than the Rust sources. Prints the built size (wasm + JS).
# Usage: examples/browser-extension/build.sh [--force-wasm]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PKG="$ROOT/wasm/pkg/web"
DIST="$HERE/dist"

need_wasm=0
[ "${1:-}" = --force-wasm ] && need_wasm=1
if [ ! -f "$PKG/edrlink_wasm_bg.wasm" ] || [ ! -f "$PKG/edrlink_wasm.js" ]; then need_wasm=1
elif ! grep -q 'exportState' "$PKG/edrlink_wasm.js"; then need_wasm=1
elif [ -n "$(find "$ROOT/wasm/src" "$ROOT/sdk-core/src" "$ROOT/wasm/Cargo.toml" -newer "$PKG/edrlink_wasm_bg.wasm" -name '*.rs' -o -newer "$PKG/edrlink_wasm_bg.wasm" -name Cargo.toml 2>/dev/null | head -n1)" ]; then need_wasm=1
fi
if [ "$need_wasm" = 1 ]; then
  echo "build.sh: building the wasm package (wasm/build.sh)" >&2
  "$ROOT/wasm/build.sh" >&2
fi
# The glue must not need eval (MV3 CSP allows only 'wasm-unsafe-eval'); wasm/build.sh checks
# too, but a package built elsewhere may be copied in.
if grep -nE '\beval\s*\(|new\s+Function\b' "$PKG/edrlink_wasm.js" >&2; then
  echo "build.sh: the wasm glue uses eval/new Function: not loadable under the MV3 CSP" >&2; exit 1
fi

rm -rf "$DIST"
mkdir -p "$DIST/edrlink/js" "$DIST/edrlink/pkg/web"
cp "$HERE"/manifest.json "$HERE"/*.mjs "$HERE"/*.html "$HERE"/*.css "$DIST/"
cp "$ROOT/wasm/js/web.mjs" "$ROOT/wasm/js/errors.mjs" "$ROOT/wasm/js/hostkeys.mjs" "$DIST/edrlink/js/"
cp "$PKG/edrlink_wasm.js" "$PKG/edrlink_wasm_bg.wasm" "$DIST/edrlink/pkg/web/"
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$DIST/manifest.json"

size() { wc -c < "$1"; }
gz() { gzip -9c "$1" | wc -c; }
wasm="$DIST/edrlink/pkg/web/edrlink_wasm_bg.wasm"
mapfile -t js < <(find "$DIST" -name '*.mjs' -o -name '*.js' | sort)
js_raw=0; js_gz=0
for f in "${js[@]}"; do js_raw=$((js_raw + $(size "$f"))); js_gz=$((js_gz + $(gz "$f"))); done
all_raw=$(find "$DIST" -type f -exec cat {} + | wc -c)
printf 'extension built: %s\n' "${DIST#$ROOT/}"
printf '  wasm            %8d bytes raw %8d bytes gzip -9\n' "$(size "$wasm")" "$(gz "$wasm")"
printf '  JS (%2d files)   %8d bytes raw %8d bytes gzip -9\n' "${#js[@]}" "$js_raw" "$js_gz"
printf '  wasm + JS       %8d bytes raw %8d bytes gzip -9\n' "$(( $(size "$wasm") + js_raw ))" "$(( $(gz "$wasm") + js_gz ))"
printf '  whole dist/     %8d bytes raw (with HTML, CSS, manifest)\n' "$all_raw"
