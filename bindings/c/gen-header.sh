#!/usr/bin/env bash
# Regenerates include/edrlink.h with the pinned cbindgen (scripts/versions.env).
# Usage: bindings/c/gen-header.sh [--check] [OUT]
#   --check   write to a temporary file and fail if it differs from include/edrlink.h
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=../../scripts/versions.env
. "$ROOT/scripts/versions.env"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

CHECK=0
if [ "${1:-}" = "--check" ]; then CHECK=1; shift; fi
OUT="${1:-$ROOT/include/edrlink.h}"

have="$(cbindgen --version 2>/dev/null | awk '{print $2}' || true)"
if [ "$have" != "$CBINDGEN_VERSION" ]; then
  echo "gen-header: need cbindgen $CBINDGEN_VERSION (have: ${have:-none}); installing" >&2
  cargo install cbindgen --version "$CBINDGEN_VERSION" >&2
fi

# The version comes from the workspace Cargo.toml, the single source of truth.
VERSION="$(sed -n '/^\[workspace.package\]/,/^\[/{s/^version *= *"\(.*\)"/\1/p}' "$ROOT/Cargo.toml")"
IFS=. read -r MAJ MIN PAT <<<"${VERSION%%-*}"
[ -n "$MAJ" ] && [ -n "$MIN" ] && [ -n "$PAT" ] || { echo "gen-header: cannot parse version '$VERSION'" >&2; exit 1; }

TMPDIR_="$(mktemp -d)"; trap 'rm -rf "$TMPDIR_"' EXIT
# after_includes must be a top-level key, so it goes first.
cat >"$TMPDIR_/cbindgen.toml" <<TOML

after_includes = """

/** Library version, equal to edrlink_version() and the crate version. */
#define EDRLINK_VERSION_MAJOR $MAJ
#define EDRLINK_VERSION_MINOR $MIN
#define EDRLINK_VERSION_PATCH $PAT
#define EDRLINK_VERSION "$VERSION"
"""
TOML
cat "$HERE/cbindgen.toml" >>"$TMPDIR_/cbindgen.toml"

cbindgen --quiet --config "$TMPDIR_/cbindgen.toml" --crate edrlink-ffi --output "$TMPDIR_/edrlink.h" "$HERE"
if [ "$CHECK" = 1 ]; then
  if ! diff -u "$OUT" "$TMPDIR_/edrlink.h"; then
    echo "gen-header: $OUT is out of date; run bindings/c/gen-header.sh" >&2
    exit 1
  fi
  echo "gen-header: $OUT is up to date"
else
  mkdir -p "$(dirname "$OUT")"
  cp "$TMPDIR_/edrlink.h" "$OUT"
  echo "gen-header: wrote $OUT (version $VERSION, cbindgen $CBINDGEN_VERSION)"
fi
