#!/usr/bin/env bash
# Install everything the edrlink test suite needs (idempotent: skips what is present).
#
# Usage: scripts/install-deps.sh [--verify] [--no-apt] [--update-versions]
#   --verify           also run the slower smoke tests (headless Chromium via
#                      playwright-core, wasm32 build + wasm-bindgen + node: scripts/wasm-smoke-test.sh)
#   --no-apt           do not touch Debian packages (only check them)
#   --update-versions  query crates.io for the newest wasm-bindgen 0.2.x / uniffi and rewrite
#                      scripts/versions.env, then exit
#
# Env: WASM_BINDGEN_VERSION (used when Cargo.lock has no wasm-bindgen), CBINDGEN_VERSION,
#      CARGO_HOME (default ~/.cargo). Works as root on a bare Debian 12 CI machine (CI=true, no stdin).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
TOOLS="$ROOT/tools"
START=$SECONDS

VERIFY=0 NO_APT=0 UPDATE_VERSIONS=0
for a in "$@"; do
  case "$a" in
    --verify) VERIFY=1 ;;
    --no-apt) NO_APT=1 ;;
    --update-versions) UPDATE_VERSIONS=1 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "unknown argument: $a" >&2; exit 2 ;;
  esac
done

log()  { printf '\033[1m[install-deps]\033[0m %s\n' "$*"; }
warn() { printf '\033[1;33m[install-deps] WARNING:\033[0m %s\n' "$*" >&2; }
die()  { printf '\033[1;31m[install-deps] ERROR:\033[0m %s\n' "$*" >&2; exit 1; }
run()  { printf '+ %s\n' "$*"; "$@"; }

export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null && SUDO="sudo -n" || NO_APT=1
fi

export CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
export PATH="$CARGO_HOME/bin:$PATH"

# ---------------------------------------------------------------- versions
ENV_WBG="${WASM_BINDGEN_VERSION:-}" ENV_CBG="${CBINDGEN_VERSION:-}"
# shellcheck source=versions.env
. "$SCRIPT_DIR/versions.env"
[ -n "$ENV_CBG" ] && CBINDGEN_VERSION="$ENV_CBG"

cargo_bin() {  # rustup's cargo if present, else Debian's (rustc-web) cargo
  if command -v cargo >/dev/null; then echo cargo
  elif [ -x /usr/bin/cargo ]; then echo /usr/bin/cargo
  else return 1; fi
}
newest_crate_version() {  # $1 crate, $2 version prefix regex
  local cargo; cargo="$(cargo_bin)" || die "no cargo to query crates.io"
  (cd /tmp && "$cargo" info "$1" 2>/dev/null) | awk '/^version:/{print $2; exit}' | grep -E "^$2" || true
}

if [ "$UPDATE_VERSIONS" = 1 ]; then
  wbg="$(newest_crate_version wasm-bindgen '0\.2\.')"; uni="$(newest_crate_version uniffi '0\.(3[2-9]|[4-9][0-9])\.|^[1-9]')"
  [ -n "$wbg" ] && [ -n "$uni" ] || die "could not query crates.io (wasm-bindgen='$wbg' uniffi='$uni')"
  sed -i -e "s/^WASM_BINDGEN_VERSION=.*/WASM_BINDGEN_VERSION=$wbg/" -e "s/^UNIFFI_VERSION=.*/UNIFFI_VERSION=$uni/" "$SCRIPT_DIR/versions.env"
  log "versions.env updated: WASM_BINDGEN_VERSION=$wbg UNIFFI_VERSION=$uni"
  exit 0
fi

# wasm-bindgen-cli must equal the wasm-bindgen crate in Cargo.lock.
WBG_SOURCE="scripts/versions.env"
if [ -f "$ROOT/Cargo.lock" ]; then
  lock_wbg="$(awk '/^\[\[package\]\]/{n=""} /^name = /{n=$3} /^version = /{if (n=="\"wasm-bindgen\"") {gsub(/"/,"",$3); print $3}}' "$ROOT/Cargo.lock" | sort -u)"
  if [ -n "$lock_wbg" ]; then
    [ "$(printf '%s\n' "$lock_wbg" | wc -l)" -eq 1 ] || die "Cargo.lock has several wasm-bindgen versions: $(echo $lock_wbg)"
    WASM_BINDGEN_VERSION="$lock_wbg"; WBG_SOURCE="Cargo.lock"
    [ -n "$ENV_WBG" ] && [ "$ENV_WBG" != "$lock_wbg" ] && warn "ignoring WASM_BINDGEN_VERSION=$ENV_WBG: Cargo.lock pins $lock_wbg"
  elif [ -n "$ENV_WBG" ]; then WASM_BINDGEN_VERSION="$ENV_WBG"; WBG_SOURCE="env WASM_BINDGEN_VERSION"; fi
elif [ -n "$ENV_WBG" ]; then WASM_BINDGEN_VERSION="$ENV_WBG"; WBG_SOURCE="env WASM_BINDGEN_VERSION"; fi
log "wasm-bindgen $WASM_BINDGEN_VERSION (from $WBG_SOURCE), cbindgen $CBINDGEN_VERSION, kotlin-compiler $KOTLIN_COMPILER_VERSION, uniffi $UNIFFI_VERSION, cargo-fuzz $CARGO_FUZZ_VERSION, schemathesis $SCHEMATHESIS_VERSION"

# ---------------------------------------------------------------- 1. Debian packages
APT_PKGS=(rustc-web cargo-web rust-web-src rust-web-llvm lld-22 clang chromium chromium-driver
          libjna-java libcmocka-dev cmake valgrind pkg-config build-essential gdb git ca-certificates
          libssl-dev)   # libssl-dev: the C suite's and examples/c's OpenSSL host signers (-lcrypto)
command -v java    >/dev/null || APT_PKGS+=(default-jdk-headless)
command -v python3 >/dev/null || APT_PKGS+=(python3 python3-pip)
APT_PKGS+=(python3-venv)   # tools/schemathesis-venv
command -v node    >/dev/null || APT_PKGS+=(nodejs npm)
PROXY_PKGS=(tinyproxy squid)   # forward-proxy test: first one available wins

is_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
has_candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/{print $2}' | grep -qv '(none)'; }

missing=()
for p in "${APT_PKGS[@]}"; do is_installed "$p" || missing+=("$p"); done
proxy=""
for p in "${PROXY_PKGS[@]}"; do is_installed "$p" && { proxy="$p"; break; }; done

if [ ${#missing[@]} -eq 0 ] && [ -n "$proxy" ]; then
  log "apt: all ${#APT_PKGS[@]} packages + $proxy present, skipping"
elif [ "$NO_APT" = 1 ]; then
  warn "apt: missing ${missing[*]:-} ${proxy:-(no forward proxy)}; not installing (--no-apt or not root)"
else
  log "apt: missing: ${missing[*]:-none}; forward proxy: ${proxy:-none installed}"
  run $SUDO apt-get update -q
  if [ -z "$proxy" ]; then
    for p in "${PROXY_PKGS[@]}"; do has_candidate "$p" && { proxy="$p"; missing+=("$p"); break; }; done
    [ -n "$proxy" ] || warn "apt: neither tinyproxy nor squid is available; forward-proxy test will be skipped"
  fi
  # Do not let the proxy package start a system daemon (tests start their own on a free port).
  policy_rc=""
  if [ -n "$proxy" ] && [ ! -e /usr/sbin/policy-rc.d ] && [ -z "$SUDO" ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy_rc=1
  fi
  rc=0
  run $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null || rc=$?
  [ -n "$policy_rc" ] && rm -f /usr/sbin/policy-rc.d
  [ "$rc" -eq 0 ] || die "apt-get install failed ($rc)"
fi

# ---------------------------------------------------------------- 2. Rust: wasm32 target + cargo tools
CARGO="$(cargo_bin)" || die "no cargo found (neither rustup's nor /usr/bin/cargo)"
[ "$CARGO" = /usr/bin/cargo ] && export RUSTC=/usr/bin/rustc
if command -v rustup >/dev/null; then
  if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    log "rustup: wasm32-unknown-unknown already installed"
  elif run timeout 300 rustup target add wasm32-unknown-unknown </dev/null; then
    log "rustup: wasm32-unknown-unknown added"
  else
    warn "rustup cannot add wasm32-unknown-unknown; scripts/wasm-build.sh will use the rustc-web -Zbuild-std recipe"
  fi
fi
[ -d /usr/lib/rustlib/src/rust/library ] || warn "rust-web-src missing: -Zbuild-std fallback unavailable"

cargo_tool() {  # $1 crate, $2 version, $3 binary, [extra cargo install args]
  local crate="$1" ver="$2" bin="$3"; shift 3
  local have; have="$("$CARGO_HOME/bin/$bin" --version 2>/dev/null | awk '{print $2}' | sed 's/^v//')" || true
  if [ "$have" = "$ver" ]; then log "cargo: $crate $ver present, skipping"; return; fi
  log "cargo: installing $crate $ver (found: ${have:-none}); takes a few minutes"
  run "$CARGO" install "$crate" --version "$ver" --force "$@" </dev/null
  have="$("$CARGO_HOME/bin/$bin" --version | awk '{print $2}' | sed 's/^v//')"
  [ "$have" = "$ver" ] || die "$bin reports $have after installing $ver"
}
cargo_tool cbindgen "$CBINDGEN_VERSION" cbindgen
cargo_tool wasm-bindgen-cli "$WASM_BINDGEN_VERSION" wasm-bindgen
[ -x "$CARGO_HOME/bin/wasm-bindgen-test-runner" ] || die "wasm-bindgen-test-runner missing"
cargo_tool cargo-fuzz "$CARGO_FUZZ_VERSION" cargo-fuzz

# ---------------------------------------------------------------- 2b. schemathesis (PyPI) in a venv
ST_VENV="$TOOLS/schemathesis-venv"
have_st="$("$ST_VENV/bin/schemathesis" --version 2>/dev/null | awk '{print $NF}')" || true
if [ "$have_st" = "$SCHEMATHESIS_VERSION" ]; then
  log "pypi: schemathesis $SCHEMATHESIS_VERSION present, skipping"
else
  log "pypi: installing schemathesis $SCHEMATHESIS_VERSION into tools/schemathesis-venv (found: ${have_st:-none})"
  rm -rf "$ST_VENV"
  run python3 -m venv "$ST_VENV"
  run "$ST_VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" </dev/null
  have_st="$("$ST_VENV/bin/schemathesis" --version | awk '{print $NF}')"
  [ "$have_st" = "$SCHEMATHESIS_VERSION" ] || die "schemathesis reports $have_st after installing $SCHEMATHESIS_VERSION"
fi

# ---------------------------------------------------------------- 3. Node tooling (tools/)
command -v node >/dev/null || die "node not found"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || warn "node $(node --version) is older than 20 (playwright-core needs >= 20)"
pkg_kotlin="$(node -p "require('$TOOLS/package.json').dependencies['kotlin-compiler']")"
[ "$pkg_kotlin" = "$KOTLIN_COMPILER_VERSION" ] || warn "tools/package.json kotlin-compiler $pkg_kotlin != versions.env $KOTLIN_COMPILER_VERSION"

stamp_want="$(cat "$TOOLS/package.json" "$TOOLS/package-lock.json" | sha256sum | cut -d' ' -f1) node$node_major"
stamp_file="$TOOLS/node_modules/.edrlink-install-stamp"
if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp_want" ]; then
  log "npm: tools/node_modules up to date, skipping"
else
  log "npm: tools/node_modules missing or outdated, running npm ci"
  (cd "$TOOLS" && run npm ci --no-audit --no-fund --loglevel=error </dev/null)
  echo "$stamp_want" > "$stamp_file"
fi
NODE_BIN="$TOOLS/node_modules/.bin"
KOTLINC="$TOOLS/node_modules/kotlin-compiler/bin/kotlinc-jvm"
[ -x "$KOTLINC" ] || die "kotlinc-jvm not found at $KOTLINC"
wasm_opt_ver="$("$NODE_BIN/wasm-opt" --version | awk '{print $3}')"
[ "$wasm_opt_ver" -ge 132 ] || die "wasm-opt $wasm_opt_ver < 132"

# Kotlin smoke test: compile + run hello world with JNA on the classpath (cached by a stamp).
JNA_JAR=/usr/share/java/jna.jar
[ -f "$JNA_JAR" ] || die "$JNA_JAR missing (libjna-java)"
kt_stamp="$TOOLS/node_modules/.edrlink-kotlin-ok"
kt_want="$KOTLIN_COMPILER_VERSION $(java -version 2>&1 | head -1) $(stat -c %Y "$JNA_JAR")"
if [ -f "$kt_stamp" ] && [ "$(cat "$kt_stamp")" = "$kt_want" ]; then
  log "kotlin: kotlinc-jvm smoke test passed before, skipping"
else
  log "kotlin: compiling + running a hello world with kotlinc-jvm and JNA"
  kt_dir="$(mktemp -d)"; trap 'rm -rf "$kt_dir"' EXIT
  printf 'import com.sun.jna.Native\nfun main() { println("kotlin ok, jna " + Native.VERSION) }\n' > "$kt_dir/Main.kt"
  run "$KOTLINC" -nowarn -cp "$JNA_JAR" "$kt_dir/Main.kt" -include-runtime -d "$kt_dir/app.jar"
  out="$(java -cp "$kt_dir/app.jar:$JNA_JAR" MainKt)"; echo "$out"
  [[ "$out" == "kotlin ok, jna "* ]] || die "kotlin hello world failed"
  echo "$kt_want" > "$kt_stamp"
fi

# ---------------------------------------------------------------- optional slow checks
if [ "$VERIFY" = 1 ]; then
  log "verify: headless Chromium through playwright-core"
  (cd "$TOOLS" && node -e '
    const { chromium } = require("playwright-core");
    const fs = require("fs"), os = require("os"), path = require("path");
    (async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "edrlink-chromium-"));
      const ctx = await chromium.launchPersistentContext(dir, { executablePath: "/usr/bin/chromium", headless: true,
        args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"] });
      const page = await ctx.newPage();
      const r = await page.evaluate(() => typeof WebAssembly.instantiate + " " + navigator.userAgent.match(/Chrome\/[\d.]+/)[0]);
      console.log("chromium ok:", r); await ctx.close(); fs.rmSync(dir, { recursive: true, force: true });
    })().catch(e => { console.error(e); process.exit(1); });')
  log "verify: wasm32 build + wasm-bindgen + node"
  run "$SCRIPT_DIR/wasm-smoke-test.sh"
fi

# ---------------------------------------------------------------- 5. summary
v() { "$@" 2>/dev/null | head -1 || echo "MISSING"; }
wasm_mode="build-std (rustc-web)"; rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown && wasm_mode="rustup target"
proxy_bin="$(command -v tinyproxy || command -v squid || echo MISSING)"
cat <<EOF

================ edrlink toolchain summary ================
rustc (rustup)        $(v rustc --version)
rustc-web (Debian)    $(v /usr/bin/rustc --version)
wasm32 std            $wasm_mode
cbindgen              $(v cbindgen --version)
cargo-fuzz            $(v cargo-fuzz --version)
schemathesis          $(v "$ST_VENV/bin/schemathesis" --version)
wasm-bindgen          $(v wasm-bindgen --version)   [from $WBG_SOURCE]
uniffi (pin)          $UNIFFI_VERSION   (scripts/versions.env)
node / npm            $(v node --version) / $(v npm --version)
wasm-opt (npm)        $(v "$NODE_BIN/wasm-opt" --version)
tsc (npm)             $(v "$NODE_BIN/tsc" --version)
playwright-core       $(node -p "require('$TOOLS/node_modules/playwright-core/package.json').version")
@noble/ed25519        $(node -p "require('$TOOLS/node_modules/@noble/ed25519/package.json').version")
kotlinc-jvm           $KOTLIN_COMPILER_VERSION  ($KOTLINC)
java                  $(java -version 2>&1 | head -1)
jna                   $JNA_JAR
chromium              $(v chromium --version)
chromedriver          $(v chromedriver --version | cut -d' ' -f1-2)
clang                 $(v clang --version)
lld                   $(v ld.lld-22 --version)
cmake                 $(v cmake --version)
valgrind              $(v valgrind --version)
cmocka                $(v pkg-config --modversion cmocka)
openssl (libcrypto)   $(v pkg-config --modversion libcrypto)
forward proxy         $proxy_bin
python3               $(v python3 --version)
===========================================================
EOF
log "done in $((SECONDS - START))s"
