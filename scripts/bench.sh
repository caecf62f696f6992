#!/usr/bin/env bash
# Runs every edrlink benchmark and prints ONE table: each figure, its goal, met or
# missed, and the baseline measured in the same run (docs/PERFORMANCE.md is written
# from this output). A report, never a test: it never fails on figures; a benchmark
# that cannot run is shown as "n/a" with the reason in its log.
#
# Usage: scripts/bench.sh [--only core,wasm,python,kotlin,c,spool,service] [--quick]
#   --only   run a subset (default: all)
#   --quick  shorter measurement windows and a smaller service load (for a smoke run;
#            do not quote its figures)
#   --table DIR  only print the table again from the logs of an earlier run
#
# Benchmarks run one after another (never in parallel), each with its own log under
# target/bench/<UTC time>/; the load average before and after each is recorded, because
# ratios within one run are what matter on a shared machine.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

ONLY="core,wasm,python,kotlin,c,spool,service"; QUICK=0; TABLE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --only) ONLY="$2"; shift ;;
    --only=*) ONLY="${1#--only=}" ;;
    --quick) QUICK=1 ;;
    --table) TABLE="$2"; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
want() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

OUT="$ROOT/target/bench/$(date -u +%Y%m%dT%H%M%SZ)"
if [ -n "$TABLE" ]; then OUT="$TABLE"; ONLY=none; fi
mkdir -p "$OUT"
# One target dir for every step (the suites' scripts default to their own, colder ones).
TGT="${CARGO_TARGET_DIR:-$ROOT/target}"
export CARGO_TARGET_DIR="$TGT"
load() { cut -d' ' -f1-3 /proc/loadavg; }

# run <name> <command...>: log to $OUT/<name>.log, the command line and load averages
# to $OUT/<name>.meta; a failing benchmark is reported, not fatal.
run() {
  local name="$1"; shift
  echo "== $name: $*" >&2
  { echo "cmd: $*"; echo "load_before: $(load)"; } > "$OUT/$name.meta"
  local t0=$SECONDS
  ( "$@" ) > "$OUT/$name.log" 2>&1
  local rc=$?
  { echo "load_after: $(load)"; echo "rc: $rc"; echo "secs: $((SECONDS - t0))"; } >> "$OUT/$name.meta"
  [ $rc -eq 0 ] || echo "   $name exited $rc (see $OUT/$name.log)" >&2
}

if want core; then
  if [ $QUICK = 1 ]; then CRIT=(--warm-up-time 1 --measurement-time 1); else CRIT=(--warm-up-time 1 --measurement-time 3); fi
  run core env CARGO_TARGET_DIR="$TGT" cargo bench -p edrlink-core --bench crypto -- "${CRIT[@]}"
fi
if want wasm; then
  [ $QUICK = 1 ] && export BENCH_ROUNDS=3 BENCH_MS=80
  run wasm bash tests/wasm/bench.sh --json
fi
if want python; then
  # tests/python/run.sh builds the wheel and the venv the bench uses (and runs the suite).
  run python bash -c 'tests/python/run.sh >/dev/null 2>&1 || echo "python suite/build failed" >&2; tests/python/bench.sh'
fi
if want kotlin; then
  run kotlin bash -c 'tests/kotlin/run.sh >/dev/null 2>&1 || echo "kotlin suite/build failed" >&2; tests/kotlin/bench.sh'
fi
if want c; then
  run c bash tests/c/bench.sh
fi
if want spool; then
  run spool env CARGO_TARGET_DIR="$TGT" cargo bench -p edrlink-reliability --bench spool -- --warm-up-time 1 --measurement-time 4
fi
if want service; then
  if [ $QUICK = 1 ]; then LOADARGS=(--endpoints 20 --envelopes 10 --events 100); else LOADARGS=(--endpoints 200 --envelopes 50 --events 100); fi
  run service bash -c "CARGO_TARGET_DIR='$TGT' cargo build --quiet --release -p edrlink-service --example load && '$TGT/release/examples/load' ${LOADARGS[*]}"
  # The same load with each endpoint sealing just before it sends (its signing
  # then shares the two cores with the service): reported, no goal.
  run service-inline "$TGT/release/examples/load" "${LOADARGS[@]}" --sign-inline
fi

python3 - "$OUT" "$(nproc)" <<'PY'
import json, os, re, sys
out, ncpu = sys.argv[1], sys.argv[2]
def log(name):
    p = os.path.join(out, name + ".log")
    return open(p, errors="replace").read() if os.path.exists(p) else None
def meta(name):
    p = os.path.join(out, name + ".meta")
    m = {}
    if os.path.exists(p):
        for line in open(p):
            k, _, v = line.partition(": ")
            m[k] = v.strip()
    return m
rows = []  # (figure, value, baseline, goal, status, command)
def row(fig, value, base, goal, ok, src):
    status = ("report" if goal == "(report)" else "n/a") if ok is None else ("met" if ok else "MISSED")
    rows.append((fig, value, base, goal, status, src))
def x(v): return f"{v:.2f}×"

# ---- core (criterion bench; the interleaved report gives SDK and raw ring in the same rounds)
t = log("core")
cmd = "cargo bench -p edrlink-core --bench crypto"
if t is not None:
    inter = {}
    for m in re.finditer(r"interleaved (.+?)\s+sdk\s+([\d.]+) us\s+raw\s+([\d.]+) us\s+ratio\(min\) ([\d.]+)\s+ratio\(median of rounds\) ([\d.]+)", t):
        inter[m.group(1).strip()] = tuple(float(v) for v in m.groups()[1:])
    for name, goal, lim, raw in [("envelope seal 64k", "≤ 1.20×", 1.20, "ring sign"), ("envelope open 64k", "≤ 1.20×", 1.20, "ring verify"),
                                 ("envelope seal 1k", "≤ 1.10×", 1.10, "ring sign"), ("envelope open 1k", "≤ 1.10×", 1.10, "ring verify"),
                                 ("token verify", "≤ 1.10×", 1.10, "ring verify")]:
        if name in inter:
            sdk, rawus, rmin, rmed = inter[name]
            row(f"{name} / raw {raw} (time; min, median of rounds)", f"{x(rmin)}, {x(rmed)}", f"{sdk:.1f} vs {rawus:.1f} µs", goal, rmin <= lim, cmd)
        else:
            row(f"{name} / raw {raw}", "n/a", "", goal, None, cmd)

# ---- wasm (sizes and the three-way speed comparison, JSON)
t = log("wasm")
cmd = "tests/wasm/bench.sh --json"
if t is not None and "{" in t:
    try:
        j = json.loads(t[t.index("{"):t.rindex("}") + 1])
        full = j["browserTotal"]["gzip9"]
        row("wasm full client, browser total (gzip -9)", f"{full / 1000:.1f} KB", "", "≤ 150 KB", full <= 150_000, cmd)
        if "liteTotal" in j:
            lite = j["liteTotal"]["gzip9"]
            row("wasm lite module, browser total (gzip -9)", f"{lite / 1000:.1f} KB", "", "≤ 60 KB", lite <= 60_000, cmd)
        ops = j["opsPerSec"]
        for k, goal, lim, which in [("sign 1 KiB", "≥ 4×", 4.0, "noble"), ("envelope seal 1 KiB", "≥ 4×", 4.0, "noble"),
                                    ("sign 1 KiB", "≥ 0.5×", 0.5, "node"), ("verify 1 KiB", "(report)", None, "noble"),
                                    ("envelope open 1 KiB", "(report)", None, "noble")]:
            r = ops.get(k)
            if r:
                ratio = r["ratioNoble" if which == "noble" else "ratioNode"]
                base = f"{r['edrlink']:.0f} vs {r[which]:.0f} ops/s"
                row(f"wasm {k} vs {'@noble/ed25519' if which == 'noble' else 'Node built-in'} (speed)", x(ratio), base, goal, None if lim is None else ratio >= lim, cmd)
    except (ValueError, KeyError) as e:
        row("wasm", f"n/a ({e})", "", "", None, cmd)

# ---- python
t = log("python")
cmd = "tests/python/bench.sh"
if t is not None:
    m = re.search(r"BENCH_JSON (\{.*\})", t)
    if m:
        j = json.loads(m.group(1))
        s = j["seal_1k"]
        row("Python seal 1 KiB vs `cryptography` (speed)", x(s["cryptography_ns"] / s["edrlink_ns"]), f"{s['edrlink_ns']/1000:.1f} vs {s['cryptography_ns']/1000:.1f} µs", "≥ 1.0×", s["cryptography_ns"] / s["edrlink_ns"] >= 1.0, cmd)
        if "edrlink_batch_ns" in s:
            row("Python seal_batch 1 KiB (per envelope, 64 per call) vs `cryptography`", x(s["cryptography_ns"] / s["edrlink_batch_ns"]), f"{s['edrlink_batch_ns']/1000:.1f} vs {s['cryptography_ns']/1000:.1f} µs", "≥ 1.0×", s["cryptography_ns"] / s["edrlink_batch_ns"] >= 1.0, cmd)
        if s.get("rust_ns"):
            row("Python seal 1 KiB / native Rust (time)", x(s["edrlink_ns"] / s["rust_ns"]), f"{s['rust_ns']/1000:.1f} µs Rust", "(report)", None, cmd)
        tr = j["trivial_ns"]
        row("Python trivial call protocol_version()", f"{tr/1000:.2f} µs", f"no-op lambda {j['noop_ns']:.0f} ns", "≤ 1.5 µs", tr <= 1500, cmd)
    else:
        row("Python", "n/a (no BENCH_JSON line)", "", "", None, cmd)

# ---- kotlin
t = log("kotlin")
cmd = "tests/kotlin/bench.sh"
if t is not None:
    m = re.search(r"^\s*1K\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)x\s+([\d.]+)\s+([\d.]+)x", t, re.M)
    if m:
        e, jv, _, r, ratio = (float(v) for v in m.groups())
        row("Kotlin seal 1 KiB / native Rust (time)", x(ratio), f"{e:.1f} vs {r:.1f} µs (JVM Ed25519 {jv:.1f} µs)", "≤ 1.5×", ratio <= 1.5, cmd)
    mb = re.search(r"sealBatch of \d+: ([\d.]+) µs per envelope.*?\(([\d.]+)x Rust\)", t)
    if mb:
        row("Kotlin sealBatch 1 KiB (per envelope) / native Rust", x(float(mb.group(2))), f"{float(mb.group(1)):.1f} µs", "≤ 1.5×", float(mb.group(2)) <= 1.5, cmd)
    m = re.search(r"trivial call protocolVersion\(\): ([\d.]+) ns", t)
    if m:
        v = float(m.group(1))
        row("Kotlin trivial call protocolVersion()", f"{v/1000:.2f} µs", "", "≤ 2 µs", v <= 2000, cmd)
    if not rows or not rows[-1][0].startswith("Kotlin"):
        row("Kotlin", "n/a", "", "", None, cmd)

# ---- C
t = log("c")
cmd = "tests/c/bench.sh"
if t is not None:
    m = re.search(r"c_result_name\s+([\d.]+)", t)
    if m:
        row("C trivial call edrlink_result_name", f"{float(m.group(1)):.1f} ns", "", "(report)", None, cmd)
    m = re.search(r"C API / Rust core, both from the seed: ([\d.]+)x", t)
    if m:
        row("C seal 1 KiB / Rust core (time)", x(float(m.group(1))), "", "≤ 1.05×", float(m.group(1)) <= 1.05, cmd)

# ---- spool (criterion: spool vs raw write of the same bytes, per fsync cadence)
t = log("spool")
cmd = "cargo bench -p edrlink-reliability --bench spool"
if t is not None:
    times = {}
    unit = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}
    for m in re.finditer(r"^(\S*?(raw_write|spool)/(\S+))\s*\n?\s*time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", t, re.M):
        times[(m.group(2), m.group(3))] = float(m.group(4)) * unit.get(m.group(5), 1)
    cases = sorted({c for (_, c) in times})
    for c in cases:
        if ("raw_write", c) in times and ("spool", c) in times:
            ratio = times[("spool", c)] / times[("raw_write", c)]
            lim = 1.1 if "no" in c else 2.5
            row(f"spool append 1000 events / raw write, {c} (time)", x(ratio), f"{times[('spool', c)]*1e3:.2f} vs {times[('raw_write', c)]*1e3:.2f} ms", f"≤ {lim}×", ratio <= lim, cmd)
    if not cases:
        row("spool", "n/a (no criterion figures)", "", "", None, cmd)

# ---- service load
for name, extra, goal in (("service", "", True), ("service-inline", " --sign-inline", False)):
    t = log(name)
    if t is None:
        continue
    a = re.search(r"endpoints=(\d+) envelopes/endpoint=(\d+) events/envelope=(\d+)", t)
    shape = f"--endpoints {a.group(1)} --envelopes {a.group(2)} --events {a.group(3)}" if a else "?"
    cmd = f"service/examples/load.rs ({shape}{extra})"
    what = "service ingest" + (", endpoints signing inline" if extra else "")
    m = re.search(r"throughput: ([\d.]+) envelopes/s, ([\d.]+) events/s", t)
    p = re.search(r"p99 ([\d.]+)", t)
    c = re.search(r"cpu per envelope: service (\d+) µs, endpoints (\d+) µs", t)
    ok = "OK (stored == sent)" in t
    if m:
        ev = float(m.group(2))
        row(f"{what} events/s (stored == sent: {'yes' if ok else 'NO'})", f"{ev/1000:.0f} k/s", f"{float(m.group(1)):.0f} envelopes/s", "≥ 300 k/s" if goal else "(report)", (ev >= 300_000 and ok) if goal else None, cmd)
    if p:
        v = float(p.group(1))
        row(f"{what} p99 latency", f"{v:.0f} ms", "", "≤ 100 ms" if goal else "(report)", (v <= 100) if goal else None, cmd)
    if c:
        row(f"{what}: CPU per envelope, service / endpoints", f"{c.group(1)} / {c.group(2)} µs", "", "(report)", None, cmd)
    if not m:
        row(f"{what}", "n/a", "", "", None, cmd)

print()
print(f"edrlink benchmarks — {os.path.basename(out)} UTC, {ncpu} CPUs, logs in {out}")
print()
w = [max(len(r[i]) for r in rows + [("figure", "result", "baseline (same run)", "goal", "status", "command")]) for i in range(6)]
hdr = ("figure", "result", "baseline (same run)", "goal", "status", "command")
print("| " + " | ".join(h.ljust(w[i]) for i, h in enumerate(hdr)) + " |")
print("|" + "|".join("-" * (w[i] + 2) for i in range(6)) + "|")
for r in rows:
    print("| " + " | ".join(str(c).ljust(w[i]) for i, c in enumerate(r)) + " |")
print()
print("load average (1/5/15 min) around each benchmark:")
for name in ["core", "wasm", "python", "kotlin", "c", "spool", "service", "service-inline"]:
    mt = meta(name)
    if mt:
        print(f"  {name:<14} before {mt.get('load_before','?'):<16} after {mt.get('load_after','?'):<16} {mt.get('secs','?')} s, exit {mt.get('rc','?')}")
met = sum(1 for r in rows if r[4] == "met"); missed = sum(1 for r in rows if r[4] == "MISSED")
print(f"\n{met} goals met, {missed} missed (figures are a report; this script never fails on them)")
PY
exit 0
