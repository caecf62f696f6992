#!/usr/bin/env bash
# Runs the "Install and run" sections of the binding READMEs as written: every ```sh block
# under the heading "## Install and run" is extracted verbatim and run with bash -euo pipefail
# in a fresh empty directory, with EDRLINK set to this checkout (what the sections tell a user
# to set). A README without such a section, or without a runnable block, fails.
#
# Usage: tests/install/run.sh [README...]   (default: the five binding READMEs)
# Env: CARGO_TARGET_DIR (passed through, so the builds the sections start reuse the workspace's),
#      KEEP_TMP=1 keeps the directories.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export EDRLINK="$ROOT"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
READMES=("$@")
[ ${#READMES[@]} -gt 0 ] || READMES=(bindings/c/README.md bindings/python/README.md bindings/kotlin/README.md
                                      wasm/README.md bindings/swift/README.md)
TMP="$(mktemp -d /tmp/edrlink-install.XXXXXX)"
[ "${KEEP_TMP:-0}" = 1 ] || trap 'rm -rf "$TMP"' EXIT
passed=0 failed=0
for readme in "${READMES[@]}"; do
  name="$(echo "$readme" | tr '/' '_' | sed 's/_README.md$//')"
  script="$TMP/$name.sh"
  # The section runs from its heading to the next level-2 heading; only ```sh blocks are run.
  awk '/^## /{ins = ($0 == "## Install and run")} ins && /^```/{ if (inb) {inb=0; next} if ($0 == "```sh") {inb=1; print "# --- block"; next} }
       ins && inb {print}' "$ROOT/$readme" >"$script"
  if ! grep -q '^# --- block' "$script"; then
    echo "FAILED: $readme has no \`\`\`sh block under \"## Install and run\""; failed=$((failed + 1)); continue
  fi
  dir="$TMP/$name"; mkdir -p "$dir"
  echo "== $readme ($(grep -c '^# --- block' "$script") block(s)) in $dir"
  t0=$SECONDS
  if (cd "$dir" && bash -euo pipefail "$script") >"$TMP/$name.log" 2>&1; then
    echo "ok: $readme ($((SECONDS - t0))s): $(grep -v '^\s*$' "$TMP/$name.log" | tail -1)"
    passed=$((passed + 1))
  else
    echo "FAILED: $readme ($((SECONDS - t0))s); last lines:"; tail -20 "$TMP/$name.log" | sed 's/^/  /'
    failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
