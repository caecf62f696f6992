#!/usr/bin/env python3
"""Drift check for the platform examples that cannot be compiled here (the
Android Keystore example needs the Android SDK, the Secure Enclave one a Swift
toolchain): every requirement of a generated protocol / interface an example
implements must appear in the example with the generated signature, and the
other generated names an example uses (initializers, argument labels, error
cases) must still exist in the generated sources.

    check-examples.py KOTLIN_GENERATED SWIFT_GENERATED

Run by scripts/generate.sh --check (after the generated files themselves were
compared), so tests/python/run.sh and tests/kotlin/run.sh fail on drift.
"""

from __future__ import annotations

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[3]
KOTLIN_EXAMPLES = ROOT / "bindings/kotlin/examples/android-keystore"
SWIFT_EXAMPLES = ROOT / "bindings/swift/Examples/SecureEnclave"

# Interfaces the examples implement.
PROTOCOLS = ("HostKeys", "CredentialStore")

# Generated names the examples use besides the protocol requirements (each
# must occur in the generated source, whitespace-normalised).
KOTLIN_USES = [
    "data class HostKey (var handle: String, var publicKey: ByteArray)",
    "class Failed( val reason: String) : HostException()",
    "var opTimeoutSecs: ULong = 30uL, var signerTimeoutSecs: ULong = 10uL, var dataDir: String? = null",
    "credentialStore: CredentialStore? = null, hostKeys: HostKeys? = null",
]
SWIFT_USES = [
    "public init(handle: String, publicKey: Data)",
    "case Failed(reason: String)",
    "opTimeoutSecs: UInt64 = UInt64(30), signerTimeoutSecs: UInt64 = UInt64(10), dataDir: String? = nil",
    "credentialStore: CredentialStore? = nil, hostKeys: HostKeys? = nil",
]


def uncomment(text: str) -> str:
    """Drops doc comments and whole-line comments (the generator puts them
    between parameters)."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"(?m)^\s*//.*$", " ", text)


def norm(text: str) -> str:
    """Comments, whitespace, backticks and `kotlin.` qualifiers do not matter."""
    text = uncomment(text).replace("`", "").replace("kotlin.", "")
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r" ?([(),:]) ?", r"\1 ", text)
    return re.sub(r"\s+", " ", text).strip()


def requirements(source: str, opener: str) -> list[tuple[str, str]]:
    """The `fun …` / `func …` lines (as written, normalised) of the
    declaration that starts with `opener`."""
    start = source.find(opener)
    if start < 0:
        return []
    body = source[start : source.index("\n}", start)]
    keyword = "fun " if "interface" in opener else "func "
    lines = [line.strip() for line in body.splitlines() if line.strip().startswith(keyword)]
    return [(line, norm(line)) for line in lines]


def check(lang: str, generated: pathlib.Path, examples: pathlib.Path, uses: list[str]) -> list[str]:
    errors: list[str] = []
    gen = generated.read_text()
    ext = ".kt" if lang == "kotlin" else ".swift"
    files = sorted(examples.glob("*" + ext))
    if not files:
        return [f"{lang}: no examples in {examples}"]
    text = "\n".join(f.read_text() for f in files)
    flat_text = norm(text)
    for proto in PROTOCOLS:
        opener = f"public interface {proto} {{" if lang == "kotlin" else f"public protocol {proto}: AnyObject"
        reqs = requirements(gen, opener)
        if not reqs:
            errors.append(f"{lang}: generated source has no {opener!r}")
            continue
        conforms = re.search(rf":\s*{proto}\b", text)
        if not conforms:
            errors.append(f"{lang}: no example implements {proto}")
        for raw, r in reqs:
            want = ("override " + r) if lang == "kotlin" else r
            if want not in flat_text:
                errors.append(f"{lang}: the examples do not implement `{raw}` of {proto} as generated")
    flat_gen = norm(gen)
    for u in uses:
        if norm(u) not in flat_gen:
            errors.append(f"{lang}: the examples use `{u}`, which the generated source no longer has")
    return errors


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    errors = check("kotlin", pathlib.Path(sys.argv[1]), KOTLIN_EXAMPLES, KOTLIN_USES)
    errors += check("swift", pathlib.Path(sys.argv[2]), SWIFT_EXAMPLES, SWIFT_USES)
    for e in errors:
        print("EXAMPLE DRIFT: " + e, file=sys.stderr)
    if not errors:
        print("platform examples in step with the generated API (kotlin, swift)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
