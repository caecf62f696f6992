#!/usr/bin/env bash
# Dependency license check against deny.toml (`[licenses] allow`, `[graph] targets`).
# Runs `cargo deny --offline check licenses` when cargo-deny (0.16 or later: `cargo install
# cargo-deny`) is installed; otherwise evaluates the same policy itself from `cargo metadata`
# (CI does this: compiling cargo-deny would cost CI minutes for the same answer): every package's
# SPDX expression must be satisfiable with the allowed licenses (OR: one of them, AND: all).
# Needs no network once the crates are in the local registry (`cargo fetch`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
if cargo deny --version >/dev/null 2>&1; then
  echo "license-check: $(cargo deny --version)"
  cargo fetch --locked >/dev/null 2>&1 || true
  if cargo deny --offline check licenses; then echo "1 passed, 0 failed"; exit 0; else echo "0 passed, 1 failed"; exit 1; fi
fi
echo "license-check: cargo-deny not installed; evaluating deny.toml from cargo metadata"
cargo fetch --locked >/dev/null 2>&1 || true
cargo metadata --format-version 1 --locked --offline --all-features >"${TMPDIR:-/tmp}/edrlink-metadata.json"
python3 - "${TMPDIR:-/tmp}/edrlink-metadata.json" <<'PY'
import json, re, sys, tomllib
policy = tomllib.load(open("deny.toml", "rb"))
allowed = set(policy["licenses"]["allow"])
meta = json.load(open(sys.argv[1]))
workspace = set(meta["workspace_members"])

def ok(expr):
    """SPDX expression -> satisfiable with `allowed` (OR: any side, AND: both, WITH: as a whole)."""
    toks = re.findall(r"\(|\)|[^\s()]+", expr.replace("/", " OR "))
    pos = 0
    def atom():
        nonlocal pos
        t = toks[pos]; pos += 1
        if t == "(":
            v = disj()
            pos += 1  # ')'
            return v
        if pos < len(toks) and toks[pos] == "WITH":
            t = f"{t} WITH {toks[pos + 1]}"; pos += 2
        return t.rstrip("+") in allowed
    def conj():
        nonlocal pos
        v = atom()
        while pos < len(toks) and toks[pos] == "AND":
            pos += 1; v = atom() and v
        return v
    def disj():
        nonlocal pos
        v = conj()
        while pos < len(toks) and toks[pos] == "OR":
            pos += 1; v = conj() or v
        return v
    return disj()

# The evaluator itself: a policy check that could not reject anything would prove nothing.
assert not ok("GPL-3.0-only") and not ok("MIT AND GPL-3.0-only") and not ok("(MIT OR LGPL-2.1) AND AGPL-3.0")
assert ok("MIT OR GPL-3.0-only") and ok("(MIT OR Apache-2.0) AND Unicode-3.0") and ok("Apache-2.0/MIT")
bad = []
n = 0
for p in meta["packages"]:
    if p["id"] in workspace:
        continue
    n += 1
    lic = p.get("license")
    if not lic:
        bad.append(f"{p['name']} {p['version']}: no SPDX license expression (license-file: {p.get('license_file')})")
    elif not ok(lic):
        bad.append(f"{p['name']} {p['version']}: {lic}")
for b in bad:
    print("license-check: rejected:", b)
print(f"license-check: {n} dependencies, {len(bad)} rejected (allowed: {', '.join(sorted(allowed))})")
print(f"{0 if bad else 1} passed, {1 if bad else 0} failed")
sys.exit(1 if bad else 0)
PY
