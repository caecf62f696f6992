#!/usr/bin/env bash
# Builds the edrlink npm package into wasm/pkg/ (gitignored):
#   pkg/web/   wasm-bindgen --target web     (browsers, MV3 service workers, ESM)
#   pkg/node/  wasm-bindgen --target nodejs  (Node 20+, CommonJS; wrapped by js/node.mjs)
#   pkg/lite-web/, pkg/lite-node/  the same for the `lite` module (tokens, keys, envelopes,
#              PAE, down-level signing; no client), wrapped by js/lite-{web,node}.mjs
# The package entry points are wasm/js/{web,node}.mjs (see wasm/package.json "exports").
#
# Usage: wasm/build.sh [--dev] [--features gzip]
#   --dev       dev profile, no wasm-opt (faster; for debugging)
#   other args  passed to cargo build (e.g. --features gzip)
# See docs/BUILDING.md: scripts/wasm-build.sh uses the rustup wasm32 target when
# installed, else Debian rustc-web with -Zbuild-std. Release builds use the `wasm-release`
# profile (opt z, lto, panic abort, 1 CGU, not stripped) and npm binaryen's wasm-opt -Oz.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

PROFILE=(--profile wasm-release); OPT=1; EXTRA=()
for a in "$@"; do
  case "$a" in
    --dev) PROFILE=(--profile dev); OPT=0 ;;
    *) EXTRA+=("$a") ;;
  esac
done

# 1. The wasm-bindgen CLI must be exactly the crate version in Cargo.lock.
lock_wbg="$(awk '/^\[\[package\]\]/{n=""} /^name = /{n=$3} /^version = /{if (n=="\"wasm-bindgen\"") {gsub(/"/,"",$3); print $3}}' "$ROOT/Cargo.lock" | sort -u)"
[ -n "$lock_wbg" ] || { echo "build.sh: no wasm-bindgen in Cargo.lock" >&2; exit 1; }
command -v wasm-bindgen >/dev/null || { echo "build.sh: wasm-bindgen CLI missing: run scripts/install-deps.sh (cargo install wasm-bindgen-cli --version $lock_wbg)" >&2; exit 1; }
cli_wbg="$(wasm-bindgen --version | awk '{print $2}')"
[ "$cli_wbg" = "$lock_wbg" ] || { echo "build.sh: wasm-bindgen CLI $cli_wbg != crate $lock_wbg in Cargo.lock (cargo install wasm-bindgen-cli --version $lock_wbg)" >&2; exit 1; }

# Steps 3 and 4 (used below): wasm-bindgen for both targets, then wasm-opt -Oz.
WASM_OPT="$ROOT/tools/node_modules/.bin/wasm-opt"
# Rust's default wasm32 features only (NOT --all-features: Node rejects e.g. stringref).
OPT_FEATURES=(--enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext
              --enable-mutable-globals --enable-multivalue --enable-reference-types)
bindgen() { # <wasm> <out-name> <dir prefix>
  local target out
  for target in web nodejs; do
    out="$HERE/pkg/$3${target/nodejs/node}"
    wasm-bindgen --target "$target" --out-dir "$out" --out-name "$2" "$1"
    if [ "$OPT" = 1 ]; then
      if [ -x "$WASM_OPT" ]; then
        "$WASM_OPT" -Oz "${OPT_FEATURES[@]}" "$out/$2_bg.wasm" -o "$out/$2_bg.wasm"
      else
        echo "build.sh: $WASM_OPT missing (scripts/install-deps.sh); skipping wasm-opt" >&2
      fi
    fi
  done
  # nodejs glue is CommonJS; mark the directory so Node does not read it as ESM.
  echo '{"type":"commonjs"}' > "$HERE/pkg/$3node/package.json"
}

# 2. cargo build for wasm32-unknown-unknown (rustup target or build-std fallback), for the
# full client and for the `lite` module (same crate without its `client` feature). Both
# land on the same path, so each is bound before the next build.
rm -rf "$HERE/pkg"
WASM="$("$ROOT/scripts/wasm-build.sh" edrlink-wasm "${PROFILE[@]}" "${EXTRA[@]}" | tail -n1)"
[ -f "$WASM" ] || { echo "build.sh: no .wasm produced" >&2; exit 1; }
bindgen "$WASM" edrlink_wasm ""
WASM="$("$ROOT/scripts/wasm-build.sh" edrlink-wasm "${PROFILE[@]}" --no-default-features | tail -n1)"
[ -f "$WASM" ] || { echo "build.sh: no lite .wasm produced" >&2; exit 1; }
bindgen "$WASM" edrlink_lite lite-

# 5. MV3 extensions forbid eval: the glue must not contain it.
if grep -snE '\beval\s*\(|new\s+Function\b|(^|[^A-Za-z0-9_$.`])Function\s*\(' "$HERE"/pkg/*/edrlink_wasm.js "$HERE"/pkg/*/edrlink_lite.js; then
  echo "build.sh: generated glue uses eval/new Function" >&2; exit 1
fi

for f in "$HERE"/pkg/web/edrlink_wasm_bg.wasm "$HERE"/pkg/web/edrlink_wasm.js \
         "$HERE"/pkg/lite-web/edrlink_lite_bg.wasm "$HERE"/pkg/lite-web/edrlink_lite.js; do
  printf '%-40s %8d bytes raw %8d bytes gzip -9\n' "${f#$HERE/}" "$(wc -c < "$f")" "$(gzip -9c "$f" | wc -c)"
done
