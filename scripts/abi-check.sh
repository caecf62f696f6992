#!/usr/bin/env bash
# ABI guard for the C API: compares the public header and the library's exported symbols
# with the committed baseline in include/abi/.
#
#   include/abi/edrlink.h.abi   every declaration of include/edrlink.h, one per line, normalised
#                               (functions with their full prototype, constants and enum values,
#                               struct layouts, typedefs)
#   include/abi/symbols.txt     the edrlink_* symbols libedrlink.so exports (Linux x86_64)
#
# Usage: scripts/abi-check.sh [--lib PATH] [--update]
#   (default)  fails when a baseline entry was removed or changed (a removed function, a changed
#              prototype, a renumbered constant, a changed struct, a symbol no longer exported);
#              additions pass with a note (they are compatible) until the baseline records them.
#   --update   rewrites the baseline from the current header and library: do this on purpose,
#              and record the change in CHANGELOG.md.
#   --lib PATH the shared library to read symbols from (default: $CARGO_TARGET_DIR/release/libedrlink.so,
#              built with `cargo build --release -p edrlink-ffi --lib` when missing).
#   --symbols-of FILE  print the edrlink_* symbols a library defines (ELF, PE or Mach-O; used by
#              scripts/dist.sh for the targets that are built but not run).
#   --self-test  shows the guard works: a removed function, a changed prototype, a renumbered
#              error code and a removed export must each fail against the committed baseline,
#              an added function must pass. Run by scripts/ci-platforms.sh.
#   --header H --symbols-file F  check this header / symbol list instead (used by --self-test).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ABI="$ROOT/include/abi"
HEADER="$ROOT/include/edrlink.h"
LIB="" UPDATE=0 SYMS_FILE="" SELF_TEST=0
NM="$(command -v llvm-nm || command -v nm)"

symbols_of() {  # any object format llvm-nm reads: ELF .so/.a, PE .dll/.a, Mach-O .a
  "$NM" --defined-only --extern-only "$1" 2>/dev/null |
    awk '$2 ~ /^[TtDdRr]$/ && ($3 ~ /^_?edrlink_/) {print $3}' | sed 's/^_edrlink_/edrlink_/' | sort -u
}

while [ $# -gt 0 ]; do
  case "$1" in
    --update) UPDATE=1 ;;
    --lib) LIB="$2"; shift ;;
    --symbols-of) symbols_of "$2"; exit 0 ;;
    --header) HEADER="$2"; shift ;;
    --symbols-file) SYMS_FILE="$2"; shift ;;
    --self-test) SELF_TEST=1 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "abi-check: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

if [ "$SELF_TEST" = 1 ]; then
  T="$(mktemp -d)"; trap 'rm -rf "$T"' EXIT
  pass=0 fail=0
  expect() {  # WANT(ok|fail) NAME SED-EXPR [SYMBOL-FILTER]
    sed -e "$3" "$ROOT/include/edrlink.h" >"$T/h"
    sed -e "${4:-}" "$ABI/symbols.txt" >"$T/s"
    if "$0" --header "$T/h" --symbols-file "$T/s" >"$T/out" 2>&1; then got=ok; else got=fail; fi
    if [ "$got" = "$1" ]; then pass=$((pass + 1)); echo "ok: $2 -> $got"
    else fail=$((fail + 1)); echo "FAILED: $2 -> $got, want $1"; cat "$T/out"; fi
  }
  expect ok   "unchanged header and exports" ''
  expect fail "function removed" '/^const char \*edrlink_version(void);/d' '/^edrlink_version$/d'
  expect fail "prototype changed" 's/^uint32_t edrlink_protocol_version(void);/uint64_t edrlink_protocol_version(void);/'
  expect fail "error code renumbered" 's/EDRLINK_TOKEN_EXPIRED = 300,/EDRLINK_TOKEN_EXPIRED = 309,/'
  expect fail "struct field changed" 's/^  uint64_t delivered;/  uint32_t delivered;/'
  expect fail "symbol no longer exported" '' '/^edrlink_key_id$/d'
  expect ok   "function and error code added" 's/^const char \*edrlink_version(void);/&\nint edrlink_new_fn(void);/; s/^  EDRLINK_INTERNAL = 799,/&\n  EDRLINK_NEW_CODE = 798,/' '$a edrlink_new_fn'
  echo "$pass passed, $fail failed"
  [ "$fail" = 0 ]; exit
fi

if [ -n "$SYMS_FILE" ]; then :
elif [ -z "$LIB" ]; then
  LIB="${CARGO_TARGET_DIR:-$ROOT/target}/release/libedrlink.so"
  if [ ! -f "$LIB" ] || [ -n "$(find "$ROOT/bindings/c/src" "$ROOT/sdk-core/src" -newer "$LIB" -name '*.rs' | head -1)" ]; then
    (cd "$ROOT" && cargo build --quiet --release -p edrlink-ffi --lib)
  fi
fi

TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT

# The header, normalised: comments and preprocessor conditionals dropped, one declaration per line.
python3 - "$HEADER" >"$TMP/edrlink.h.abi" <<'PY'
import re, sys
src = open(sys.argv[1]).read()
src = re.sub(r"/\*.*?\*/", " ", src, flags=re.S)
src = re.sub(r"//[^\n]*", " ", src)
out = []
body = []
# Preprocessor conditionals as a C11 compiler sees them: no __cplusplus, no C23.
def cond(expr):
    if "__cplusplus" in expr and "!defined(__cplusplus)" not in expr.replace(" ", ""):
        return expr.startswith("#ifndef")
    if "__STDC_VERSION__" in expr:
        return False
    return True
stack = []  # (this branch active, any branch taken)
for line in src.splitlines():
    s = line.strip()
    active = all(a for a, _ in stack)
    if re.match(r"#\s*if(n?def)?\b", s):
        c = cond(s) if active else False
        stack.append((c, c)); continue
    if re.match(r"#\s*else\b", s):
        a, taken = stack.pop(); stack.append((not taken, True)); continue
    if re.match(r"#\s*endif\b", s):
        stack.pop(); continue
    if not active:
        continue
    m = re.match(r"#\s*define\s+(\w+)\s+(.+)", s)
    if m and m.group(1) != "EDRLINK_H":
        out.append(f"const {m.group(1)} = {' '.join(m.group(2).split())}")
    if s.startswith("#"):
        continue
    body.append(s)
text = " ".join(body)
# `: uint32_t` enum bases sit inside #if blocks (dropped above); statements end at ';' at depth 0.
depth, cur, stmts = 0, "", []
for ch in text:
    cur += ch
    if ch == "{": depth += 1
    elif ch == "}": depth -= 1
    elif ch == ";" and depth == 0:
        stmts.append(" ".join(cur.split())); cur = ""
for s in stmts:
    s = re.sub(r"\s*([(),*{}=;])\s*", r"\1", s)
    m = re.match(r"enum (\w+)\s*(?::\s*\w+)?\{(.*)\};", s)
    if m:
        for member in filter(None, m.group(2).split(",")):
            name, _, value = member.partition("=")
            out.append(f"enum {m.group(1)}::{name.strip()} = {value.strip()}")
        continue
    m = re.match(r"typedef struct (\w+)\{(.*)\}(\w+);", s) or re.match(r"struct (\w+)\{(.*)\}();", s)
    if m:
        out.append(f"struct {m.group(1)} {{{m.group(2)}}}")
        continue
    if s.startswith("typedef"):
        m = re.search(r"\(\*(\w+)\)", s) or re.search(r"(\w+);$", s)
        out.append(f"typedef {m.group(1)}: {s}")
        continue
    m = re.search(r"(\w+)\(", s)
    if m:
        out.append(f"fn {m.group(1)}: {s}")
        continue
    out.append(f"decl {s}")
print("\n".join(sorted(set(out))))
PY

if [ -n "$SYMS_FILE" ]; then sort -u "$SYMS_FILE" >"$TMP/symbols.txt"; else symbols_of "$LIB" >"$TMP/symbols.txt"; fi
[ -s "$TMP/symbols.txt" ] || { echo "abi-check: no edrlink_* symbols exported by $LIB" >&2; exit 1; }

# Every function the header declares is exported, and nothing else named edrlink_* is.
sed -n 's/^fn \([a-z0-9_]*\):.*/\1/p' "$TMP/edrlink.h.abi" | sort -u >"$TMP/header-fns.txt"
if ! diff -u "$TMP/header-fns.txt" "$TMP/symbols.txt" >"$TMP/fns.diff"; then
  echo "abi-check: the header's functions and the library's exports differ (- header only, + library only):" >&2
  grep -E '^[-+][a-z]' "$TMP/fns.diff" >&2
  exit 1
fi

if [ "$UPDATE" = 1 ]; then
  mkdir -p "$ABI"
  cp "$TMP/edrlink.h.abi" "$ABI/edrlink.h.abi"
  cp "$TMP/symbols.txt" "$ABI/symbols.txt"
  echo "abi-check: baseline updated ($(wc -l <"$ABI/symbols.txt") symbols, $(wc -l <"$ABI/edrlink.h.abi") declarations); record the change in CHANGELOG.md"
  exit 0
fi

fail=0
compare() {  # $1 baseline, $2 current, $3 what; entries are "key: value" or bare keys
  local key_re='s/^\(\(fn\|typedef\) [^:]*\|\(const\|enum\) [^ ]*\|struct [^ ]*\).*/\1/'
  [ -f "$1" ] || { echo "abi-check: no baseline $1: run scripts/abi-check.sh --update" >&2; fail=1; return; }
  local removed changed added
  removed="$(comm -23 <(sed "$key_re" "$1" | sort -u) <(sed "$key_re" "$2" | sort -u))"
  changed="$(comm -23 <(sort "$1") <(sort "$2") | sed "$key_re" | sort -u | comm -12 - <(sed "$key_re" "$2" | sort -u))"
  added="$(comm -13 <(sed "$key_re" "$1" | sort -u) <(sed "$key_re" "$2" | sort -u))"
  if [ -n "$removed" ]; then echo "abi-check: $3 REMOVED (breaks existing callers):"; sed 's/^/  - /' <<<"$removed"; fail=1; fi
  if [ -n "$changed" ]; then
    echo "abi-check: $3 CHANGED (breaks existing callers):"
    while read -r k; do
      grep -F -- "$k" "$1" | grep -E "^$(printf '%s' "$k" | sed 's/[]\/$*.^[]/\\&/g')( |:|$)" | sed 's/^/  was: /'
      grep -F -- "$k" "$2" | grep -E "^$(printf '%s' "$k" | sed 's/[]\/$*.^[]/\\&/g')( |:|$)" | sed 's/^/  now: /'
    done <<<"$changed"
    fail=1
  fi
  if [ -n "$added" ]; then echo "abi-check: note: $3 added since the baseline (compatible):"; sed 's/^/  + /' <<<"$added"; fi
}
compare "$ABI/edrlink.h.abi" "$TMP/edrlink.h.abi" "header declarations"
compare "$ABI/symbols.txt" "$TMP/symbols.txt" "exported symbols"
if [ "$fail" = 1 ]; then
  echo "abi-check: FAILED. If the break is intended, run scripts/abi-check.sh --update and record it in CHANGELOG.md." >&2
  exit 1
fi
echo "abi-check: ok ($(wc -l <"$TMP/symbols.txt") symbols, $(wc -l <"$TMP/edrlink.h.abi") declarations match include/abi/)"
