#!/usr/bin/env bash
# Build one workspace crate for wasm32-unknown-unknown.
#
# Usage: scripts/wasm-build.sh <crate> [out-dir] [extra cargo build args...]
#   e.g. scripts/wasm-build.sh edrlink-wasm dist/wasm --profile wasm-release --features foo
#
# - Uses rustup's wasm32-unknown-unknown std when it is installed (plain `cargo build`);
#   otherwise Debian's rustc-web 1.96 with -Zbuild-std (see docs/BUILDING.md).
#   Force one with WASM_BUILD_MODE=rustup|build-std (default: auto).
# - Target dir: <workspace>/target/wasm (override: WASM_TARGET_DIR).
# - Default profile is --release unless the extra args choose --release/--profile.
# - out-dir (optional): the .wasm is copied there; with WASM_BINDGEN_TARGET=nodejs|web|bundler|...
#   wasm-bindgen is run into it instead; WASM_OPT="-Oz" then also runs tools/ wasm-opt on *_bg.wasm.
# - Workspace: WASM_WORKSPACE (default: the repo containing this script).
# - WASM_CHECK_ONLY=1: only check that the crate compiles for wasm32 (library crates produce no .wasm).
# Prints the path(s) of the produced file(s) on the last line(s) of stdout.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
TARGET=wasm32-unknown-unknown

[ $# -ge 1 ] && [ "${1#-}" = "$1" ] || { sed -n '2,16p' "$0" >&2; exit 2; }
CRATE="$1"; shift
OUT_DIR=""
if [ $# -ge 1 ] && [ "${1#-}" = "$1" ]; then OUT_DIR="$1"; shift; fi
EXTRA=("$@")

WS="${WASM_WORKSPACE:-$ROOT}"
TARGET_DIR="${WASM_TARGET_DIR:-$WS/target/wasm}"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

# Profile -> output sub-directory.
profile=""
for ((i = 0; i < ${#EXTRA[@]}; i++)); do
  case "${EXTRA[$i]}" in
    --release|-r) profile=release ;;
    --profile) profile="${EXTRA[$((i + 1))]:-}" ;;
    --profile=*) profile="${EXTRA[$i]#--profile=}" ;;
  esac
done
if [ -z "$profile" ]; then profile=release; EXTRA=(--release "${EXTRA[@]}"); fi
case "$profile" in dev|test) profdir=debug ;; bench) profdir=release ;; *) profdir="$profile" ;; esac

mode="${WASM_BUILD_MODE:-auto}"
if [ "$mode" = auto ]; then
  if command -v rustup >/dev/null && command -v cargo >/dev/null \
     && (cd "$WS" && rustup target list --installed 2>/dev/null) | grep -qx "$TARGET"; then
    mode=rustup
  else
    mode=build-std
  fi
fi

case "$mode" in
  rustup)
    CMD=(cargo build --target "$TARGET" --target-dir "$TARGET_DIR" -p "$CRATE") ;;
  build-std)
    [ -x /usr/bin/cargo ] && [ -x /usr/bin/rustc ] || { echo "wasm-build: need Debian rustc-web/cargo-web (scripts/install-deps.sh)" >&2; exit 1; }
    [ -d /usr/lib/rustlib/src/rust/library ] || { echo "wasm-build: need rust-web-src (scripts/install-deps.sh)" >&2; exit 1; }
    export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
    CMD=(/usr/bin/cargo build --target "$TARGET" --target-dir "$TARGET_DIR" -Zbuild-std=std,panic_abort -p "$CRATE") ;;
  *) echo "wasm-build: WASM_BUILD_MODE must be auto, rustup or build-std" >&2; exit 2 ;;
esac

echo "[wasm-build] mode=$mode crate=$CRATE profile=$profile target-dir=$TARGET_DIR" >&2
[ "$mode" = build-std ] && echo "+ RUSTC=$RUSTC RUSTDOC=$RUSTDOC RUSTC_BOOTSTRAP=1 \\" >&2
echo "+ (cd $WS && ${CMD[*]} ${EXTRA[*]})" >&2

# Ask cargo which .wasm files it produced for $CRATE (robust against [lib] name = ...).
json="$(mktemp)"; trap 'rm -f "$json"' EXIT
(cd "$WS" && "${CMD[@]}" "${EXTRA[@]}" --message-format=json-render-diagnostics) > "$json"
mapfile -t WASMS < <(python3 - "$json" "$CRATE" <<'EOF'
import json, sys
path, crate = sys.argv[1], sys.argv[2]
seen = []
for line in open(path):
    try: m = json.loads(line)
    except ValueError: continue
    if m.get("reason") != "compiler-artifact": continue
    pid = m.get("package_id", "")
    # package_id: "path+file:///x/edrlink-wasm#0.1.0" or "... #name@0.1.0" or "name 0.1.0 (...)"
    name = pid.split("#")[-1].split("@")[0] if "#" in pid else pid.split(" ")[0]
    if "#" in pid and "@" not in pid.split("#")[-1]:
        name = pid.split("#")[0].rstrip("/").split("/")[-1]
    if name != crate and m["target"]["name"].replace("_", "-") != crate.replace("_", "-"): continue
    for f in m.get("filenames", []):
        if f.endswith(".wasm") and f not in seen: seen.append(f)
print("\n".join(seen))
EOF
)
if [ "${WASM_CHECK_ONLY:-0}" = 1 ]; then
  echo "wasm-build: $CRATE compiles for wasm32-unknown-unknown"; exit 0
fi
[ ${#WASMS[@]} -gt 0 ] && [ -n "${WASMS[0]}" ] || {
  echo "wasm-build: no .wasm produced for $CRATE (is it a cdylib? [lib] crate-type = [\"cdylib\", \"rlib\"])" >&2; exit 1; }

if [ -z "$OUT_DIR" ]; then printf '%s\n' "${WASMS[@]}"; exit 0; fi
mkdir -p "$OUT_DIR"
if [ -n "${WASM_BINDGEN_TARGET:-}" ]; then
  for w in "${WASMS[@]}"; do
    echo "+ wasm-bindgen --target $WASM_BINDGEN_TARGET --out-dir $OUT_DIR $w" >&2
    wasm-bindgen --target "$WASM_BINDGEN_TARGET" --out-dir "$OUT_DIR" "$w"
  done
  if [ -n "${WASM_OPT:-}" ]; then
    WASM_OPT_BIN="$ROOT/tools/node_modules/.bin/wasm-opt"
    # Rust's default wasm32 features; NOT --all-features (emits e.g. stringref, which Node rejects).
    WASM_OPT_FEATURES=(--enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext
                       --enable-mutable-globals --enable-multivalue --enable-reference-types)
    [ -x "$WASM_OPT_BIN" ] || { echo "wasm-build: $WASM_OPT_BIN missing (scripts/install-deps.sh)" >&2; exit 1; }
    for f in "$OUT_DIR"/*_bg.wasm; do
      # shellcheck disable=SC2086
      echo "+ wasm-opt $WASM_OPT ${WASM_OPT_FEATURES[*]} $f -o $f" >&2
      "$WASM_OPT_BIN" $WASM_OPT "${WASM_OPT_FEATURES[@]}" "$f" -o "$f"
    done
  fi
  ls -1 "$OUT_DIR"/*
else
  for w in "${WASMS[@]}"; do cp "$w" "$OUT_DIR/"; echo "$OUT_DIR/$(basename "$w")"; done
fi
