#!/usr/bin/env bash
# Installs what the cross builds need (idempotent: skips what is present).
#
# Usage: scripts/platform-deps.sh [--ci]
#   (default)  everything scripts/dist.sh needs: Debian cross toolchains and emulators
#              (gcc-aarch64-linux-gnu, qemu-user, mingw-w64, wine64, musl-tools), the rustup
#              standard libraries of every target, a Python venv under tools/venv with
#              ziglang, cargo-zigbuild, maturin, auditwheel; cargo-cyclonedx (crates.io).
#   --ci       only what the reduced CI platform step needs (aarch64 gcc + qemu-user, the
#              aarch64 rustup target).
#
# Python tools live in tools/venv (gitignored); scripts/dist.sh puts tools/venv/bin on PATH.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CI_ONLY=0
[ "${1:-}" = "--ci" ] && CI_ONLY=1
log() { printf '[platform-deps] %s\n' "$*"; }
export DEBIAN_FRONTEND=noninteractive
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo -n"

# ------------------------------------------------------------------ Debian packages
if [ "$CI_ONLY" = 1 ]; then
  APT=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)
else
  APT=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user gcc-mingw-w64-x86-64 g++-mingw-w64-x86-64
       binutils-mingw-w64-x86-64 wine64 musl-tools cmake pkg-config)
fi
is_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
missing=()
for p in "${APT[@]}"; do is_installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -eq 0 ]; then
  log "apt: ${#APT[@]} packages present"
else
  log "apt: installing ${missing[*]}"
  $SUDO apt-get update -q </dev/null >/dev/null
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
fi

# ------------------------------------------------------------------ rustup targets
if [ "$CI_ONLY" = 1 ]; then
  TARGETS=(aarch64-unknown-linux-gnu)
else
  TARGETS=(aarch64-unknown-linux-gnu x86_64-unknown-linux-musl x86_64-pc-windows-gnu x86_64-apple-darwin
           aarch64-apple-darwin aarch64-apple-ios aarch64-linux-android x86_64-linux-android)
fi
have_targets="$(rustup target list --installed)"
add=()
for t in "${TARGETS[@]}"; do grep -qx "$t" <<<"$have_targets" || add+=("$t"); done
if [ ${#add[@]} -eq 0 ]; then log "rustup: ${#TARGETS[@]} targets present"
else log "rustup: adding ${add[*]}"; rustup target add "${add[@]}" </dev/null; fi

# ------------------------------------------------------------------ Python tools (venv)
VENV="$ROOT/tools/venv"
PY=(ziglang cargo-zigbuild maturin==1.16.0 auditwheel)
[ "$CI_ONLY" = 1 ] && PY=()
[ "$CI_ONLY" = 1 ] || [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
need=()
for p in "${PY[@]}"; do "$VENV/bin/python" -m pip show -q "${p%%=*}" >/dev/null 2>&1 || need+=("$p"); done
if [ ${#need[@]} -eq 0 ]; then [ "$CI_ONLY" = 1 ] || log "pip: ${PY[*]} present"
else log "pip: installing ${need[*]}"; "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${need[@]}" </dev/null; fi

# ------------------------------------------------------------------ cargo tools
if [ "$CI_ONLY" = 0 ]; then
  if cargo cyclonedx --version >/dev/null 2>&1; then log "cargo: cargo-cyclonedx present"
  else log "cargo: installing cargo-cyclonedx (a few minutes)"; cargo install cargo-cyclonedx </dev/null; fi
fi
