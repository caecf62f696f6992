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
# profile (opt z, lto, panic abort, 1 CGU, not stripped), std rebuilt with
# panic=immediate-abort where possible (step 2) and npm binaryen's wasm-opt -Oz.
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
# The glue's JSDoc blocks repeat the documentation the .d.ts carries (and editors read
# there); in the .js a browser only downloads them: about 2 KB gzip per module.
strip_docs() { # <glue .js>
  node -e '
    const fs = require("fs");
    const f = process.argv[1];
    const s = fs.readFileSync(f, "utf8");
    fs.writeFileSync(f, s.replace(/^[ \t]*\/\*\*\n(?:[ \t]*\*(?!\/).*\n)*[ \t]*\*\/\n/gm, ""));
  ' "$1"
}
bindgen() { # <wasm> <out-name> <dir prefix>
  local target out
  for target in web nodejs; do
    out="$HERE/pkg/$3${target/nodejs/node}"
    wasm-bindgen --target "$target" --out-dir "$out" --out-name "$2" "$1"
    if [ "$OPT" = 1 ]; then strip_docs "$out/$2.js"; fi
    if [ "$OPT" = 1 ]; then
      if [ -x "$WASM_OPT" ]; then
        # --converge: -Oz until nothing shrinks; the producers/target_features sections
        # are build metadata no runtime reads.
        "$WASM_OPT" -Oz --converge --strip-producers --strip-target-features "${OPT_FEATURES[@]}" \
          "$out/$2_bg.wasm" -o "$out/$2_bg.wasm"
      else
        echo "build.sh: $WASM_OPT missing (scripts/install-deps.sh); skipping wasm-opt" >&2
      fi
    fi
  done
  # nodejs glue is CommonJS; mark the directory so Node does not read it as ESM.
  echo '{"type":"commonjs"}' > "$HERE/pkg/$3node/package.json"
}

# 2. cargo build for wasm32-unknown-unknown, for the full client and for the `lite` module
# (same crate without its `client` feature; profile `wasm-lite`: ring size-optimised too,
# as the lite module's goal is size, while the full client keeps ring at opt-level 3 for
# signing speed). Release builds go to target/wasm-pkg and, where Debian's rustc-web with
# its std source is installed (scripts/install-deps.sh), rebuild std with
# panic=immediate-abort: a panic (a bug: hostile input gets typed errors) traps at once
# instead of formatting a message nobody sees, which takes core::fmt's panic machinery out
# of the modules (-10 KB gzip lite, -15 KB full). Elsewhere (or EDRLINK_WASM_STD=prebuilt)
# the rustup target is used: same API and behaviour, larger modules.
# See docs/PERFORMANCE.md, "WebAssembly".
small_std() {
  [ "$OPT" = 1 ] && [ "${EDRLINK_WASM_STD:-auto}" != prebuilt ] \
    && [ -x /usr/bin/cargo ] && [ -x /usr/bin/rustc ] && [ -d /usr/lib/rustlib/src/rust/library ] \
    && RUSTC_BOOTSTRAP=1 /usr/bin/rustc -Zunstable-options -Cpanic=immediate-abort \
         --print cfg --target wasm32-unknown-unknown >/dev/null 2>&1
}
wasm_build() {  # <release profile> [cargo args...] -> path of the .wasm
  local profile=(--profile "$1"); shift
  local vars=(WASM_TARGET_DIR="$ROOT/target/wasm-pkg")
  if [ "$OPT" != 1 ]; then profile=("${PROFILE[@]}"); vars=(WASM_TARGET_DIR="$ROOT/target/wasm"); fi
  if small_std; then
    # legacy mangling: rustc-web defaults to v0, whose long closure names wasm-bindgen
    # would carry into the glue and the export section.
    vars+=(WASM_BUILD_MODE=build-std
          RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Csymbol-mangling-version=legacy")
  fi
  env "${vars[@]}" "$ROOT/scripts/wasm-build.sh" edrlink-wasm "${profile[@]}" "$@" | tail -n1
}
rm -rf "$HERE/pkg"
small_std && echo "build.sh: std rebuilt with panic=immediate-abort (Debian rustc-web)" >&2
WASM="$(wasm_build wasm-release "${EXTRA[@]}")"
[ -f "$WASM" ] || { echo "build.sh: no .wasm produced" >&2; exit 1; }
bindgen "$WASM" edrlink_wasm ""
WASM="$(wasm_build wasm-lite --no-default-features)"
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
