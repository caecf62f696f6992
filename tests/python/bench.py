"""Envelope-seal benchmark: edrlink (Rust core through uniffi) beside the same
DSSE construction written with `cryptography` (Ed25519) in the same run, and
the per-call overhead of a trivial call. With --rust JSON (output of
`cargo run --release -p edrlink-uniffi --example seal_bench`) it also prints
the ratio to native Rust. A report, never a timed assertion; it only fails if
the two constructions disagree on the bytes.

    target/uniffi/python/venv/bin/python tests/python/bench.py [--rust '{"seal_1k_ns": ...}']
"""

from __future__ import annotations

import argparse
import base64
import json
import time
from typing import Callable

import edrlink
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

PT = "application/vnd.edrlink.batch.v1+json"


def ns_per_call(f: Callable[[], object]) -> float:
    n = 1
    while True:
        t = time.perf_counter_ns()
        for _ in range(n):
            f()
        if time.perf_counter_ns() - t > 50_000_000:
            break
        n *= 2
    n *= 4
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter_ns()
        for _ in range(n):
            f()
        best = min(best, (time.perf_counter_ns() - t) / n)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rust", help="JSON printed by the seal_bench example")
    ap.add_argument("--no-compare", action="store_true", help="skip the run with uniffi's generated call helpers")
    args = ap.parse_args()
    rust = json.loads(args.rust) if args.rust else {}

    seed = bytes(range(32))
    signer = edrlink.EnvelopeSigner(seed)
    kid = signer.key_id()
    sk = Ed25519PrivateKey.from_private_bytes(seed)
    ptb = PT.encode()

    def seal_cryptography(payload: bytes) -> bytes:
        pae = b"DSSEv1 %d %s %d %s" % (len(ptb), ptb, len(payload), payload)
        sig = sk.sign(pae)
        env = {"payload": base64.b64encode(payload).decode(), "payloadType": PT, "signatures": [{"keyid": kid, "sig": base64.b64encode(sig).decode()}]}
        return json.dumps(env, separators=(",", ":")).encode()

    figures: dict = {}
    batch = 64
    print(f"edrlink {edrlink.__version__} (uniffi), Python envelope seal, best of 5; lean call glue: {edrlink.FASTCALL}, borrowed seal: {edrlink.BORROWED_SEAL}")
    print(f"{'size':>6} {'edrlink µs':>11} {'cryptography µs':>16} {'crypto/edrlink':>15} {'rust µs':>8} {'edrlink/rust':>13}")
    for size in (1024, 64 * 1024):
        payload = bytes((i * 31) % 251 for i in range(size))
        a = signer.seal(PT, payload)
        b = seal_cryptography(payload)
        if a != b:
            raise SystemExit(f"the constructions disagree at {size} bytes:\n{a[:200]!r}\n{b[:200]!r}")
        payloads = [payload] * batch
        if signer.seal_batch(PT, payloads) != [a] * batch:
            raise SystemExit(f"seal_batch disagrees with seal at {size} bytes")
        e = ns_per_call(lambda: signer.seal(PT, payload))
        c = ns_per_call(lambda: seal_cryptography(payload))
        eb = ns_per_call(lambda: signer.seal_batch(PT, payloads)) / batch
        r = rust.get(f"seal_{size // 1024}k_ns")
        rs = f"{r / 1000:8.1f} {e / r:12.2f}x" if r else f"{'-':>8} {'-':>13}"
        print(f"{size // 1024:>5}K {e / 1000:11.1f} {c / 1000:16.1f} {c / e:14.2f}x {rs}")
        print(f"{'':>6} seal_batch of {batch}: {eb / 1000:.1f} µs per envelope ({c / eb:.2f}x cryptography)")
        figures[f"seal_{size // 1024}k"] = {"edrlink_ns": e, "edrlink_batch_ns": eb, "cryptography_ns": c, "rust_ns": r}
    t = ns_per_call(edrlink.protocol_version)
    py = ns_per_call(lambda: None)
    print(f"trivial call edrlink.protocol_version(): {t:.0f} ns (a Python no-op lambda: {py:.0f} ns)")
    figures.update(trivial_ns=t, noop_ns=py, fastcall=edrlink.FASTCALL, borrowed_seal=edrlink.BORROWED_SEAL)
    if not args.no_compare and edrlink.FASTCALL:
        # The same figures in child processes of this run: with uniffi's
        # generated per-call helpers (edrlink/_fastcall.py not installed), and
        # with the lean helpers but the generated seal (seal_borrowed unused).
        import os
        import subprocess
        import sys

        for mode, key, label in (("1", "generated", "uniffi's generated call helpers"), ("seal", "generated_seal", "lean helpers, generated seal (no borrowed arguments)")):
            env = dict(os.environ, EDRLINK_GENERATED_CALLS=mode)
            out = subprocess.run([sys.executable, __file__, "--no-compare"], env=env, capture_output=True, text=True, check=True).stdout
            gen = json.loads(out.split("BENCH_JSON ", 1)[1])
            figures[key] = {"seal_1k_ns": gen["seal_1k"]["edrlink_ns"], "trivial_ns": gen["trivial_ns"]}
            print(f"with {label}: seal 1 KiB {gen['seal_1k']['edrlink_ns'] / 1000:.1f} µs, trivial call {gen['trivial_ns']:.0f} ns")
    # One machine-readable line for scripts/bench.sh.
    print("BENCH_JSON " + json.dumps(figures))
    signer.wipe()


if __name__ == "__main__":
    main()
