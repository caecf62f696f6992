"""The per-call path: edrlink/_fastcall.py replaces uniffi's generated call
helpers and routes EnvelopeSigner.seal through the borrowed-argument
``seal_borrowed``. These tests prove the lean path is the one in use, returns
the same bytes as the generated path (computed in a child process that keeps
every generated helper), raises the same typed errors, and resets after an
error on the same thread, also when calls nest inside a callback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from typing import List

import pytest

import edrlink
from conftest import Tenant, options

PT = "application/vnd.edrlink.batch.v1+json"
SEED = bytes(range(32))
PAYLOADS = [b"", b"x", bytes((i * 31) % 251 for i in range(1024)), bytes(i % 256 for i in range(64 * 1024))]

# Run in a child process: the same seals and errors with uniffi's generated
# helpers (EDRLINK_GENERATED_CALLS=1), printed as JSON.
CHILD = r"""
import json, sys, edrlink
assert not edrlink.FASTCALL and not edrlink.BORROWED_SEAL
seed = bytes(range(32))
s = edrlink.EnvelopeSigner(seed)
out = {"seals": [s.seal(pt, bytes.fromhex(p)).hex() for pt, p in json.loads(sys.stdin.read())], "errors": []}
for pt, p in [("not a type", b"x"), ("", b"x"), ("text/\u00e9", b"x")]:
    try:
        s.seal(pt, p)
        out["errors"].append(None)
    except edrlink.EdrlinkError as e:
        out["errors"].append([type(e).__name__, e.code, e.number, e.detail])
for args in [(1, b"x"), ("a/b", "text"), ("\ud800", b"x")]:
    try:
        s.seal(*args)
        out["errors"].append(None)
    except Exception as e:
        out["errors"].append([type(e).__name__, str(e)])
s.wipe()
try:
    s.seal("a/b", b"x")
except edrlink.EdrlinkError as e:
    out["errors"].append([type(e).__name__, e.code, e.number, e.detail])
print(json.dumps(out))
"""


def test_the_suite_runs_through_the_lean_path() -> None:
    assert edrlink.FASTCALL
    assert edrlink.BORROWED_SEAL


def test_borrowed_seal_same_bytes_and_errors_as_the_generated_path() -> None:
    cases = [(PT, p) for p in PAYLOADS] + [("application/x", b"hello"), ("application/vnd.test+json", b"\x00\xff")]
    env = dict(os.environ, EDRLINK_GENERATED_CALLS="1")
    child = subprocess.run(
        [sys.executable, "-c", CHILD],
        input=json.dumps([[pt, p.hex()] for pt, p in cases]),
        env=env, capture_output=True, text=True, cwd=os.path.dirname(__file__),
    )
    assert child.returncode == 0, child.stderr
    generated = json.loads(child.stdout)

    s = edrlink.EnvelopeSigner(SEED)
    ours = [s.seal(pt, p).hex() for pt, p in cases]
    assert ours == generated["seals"]
    # and the same as the other entry points (lean lower helpers, not borrowed)
    for pt, p in cases:
        assert s.seal(pt, p) == edrlink.seal_envelope(pt, p, SEED) == s.seal_batch(pt, [p])[0]
    # bytes-like payloads are accepted as by the generated check
    assert s.seal(PT, bytearray(PAYLOADS[2])) == s.seal(PT, memoryview(PAYLOADS[2])) == s.seal(PT, PAYLOADS[2])

    errors: List[object] = []
    for pt, p in [("not a type", b"x"), ("", b"x"), ("text/\u00e9", b"x")]:
        with pytest.raises(edrlink.EdrlinkError) as e:
            s.seal(pt, p)
        errors.append([type(e.value).__name__, e.value.code, e.value.number, e.value.detail])
    for args in [(1, b"x"), ("a/b", "text"), ("\ud800", b"x")]:
        with pytest.raises(Exception) as e:
            s.seal(*args)
        errors.append([type(e.value).__name__, str(e.value)])
    s.wipe()
    with pytest.raises(edrlink.EdrlinkError) as e:
        s.seal("a/b", b"x")
    errors.append([type(e.value).__name__, e.value.code, e.value.number, e.value.detail])
    assert errors == generated["errors"]
    assert generated["errors"][0][1] == "malformed" and generated["errors"][-1][1] == "invalid_state"


def test_errors_between_successes_on_one_thread() -> None:
    s = edrlink.EnvelopeSigner(SEED)
    expected = s.seal(PT, PAYLOADS[2])
    pk = s.public_key()
    for _ in range(50):
        with pytest.raises(edrlink.EdrlinkError) as e:
            s.seal("not a type", PAYLOADS[2])
        assert e.value.code == "malformed"
        # a status left at "error" would make these raise instead
        assert edrlink.protocol_version() == 1
        assert s.seal(PT, PAYLOADS[2]) == expected
        assert edrlink.open_envelope(expected, pk, PT) == PAYLOADS[2]
        with pytest.raises(edrlink.EdrlinkError) as e:
            edrlink.open_envelope(expected, pk, "application/y")
        assert e.value.code == "wrong_type"
        with pytest.raises(TypeError):
            s.seal(PT, None)  # type: ignore[arg-type]
        assert s.key_id()


def test_seal_from_threads() -> None:
    s = edrlink.EnvelopeSigner(SEED)
    expected = s.seal(PT, PAYLOADS[2])
    failures: List[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(200):
                if (i + n) % 3 == 0:
                    try:
                        s.seal("not a type", PAYLOADS[2])
                        raise AssertionError("no error")
                    except edrlink.EdrlinkError as e:
                        assert e.code == "malformed"
                else:
                    assert s.seal(PT, PAYLOADS[2]) == expected
        except BaseException as e:  # noqa: BLE001  (reported below)
            failures.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures


def test_nested_calls_inside_a_callback(tenant: Tenant) -> None:
    """Transport.send runs on the calling thread inside enroll: the Rust calls
    made from it (a seal, an error, the native transport) nest one level
    deeper and must not disturb the outer call's status."""
    native = edrlink.native_transport()
    signer = edrlink.EnvelopeSigner(SEED)
    expected = signer.seal(PT, PAYLOADS[2])
    caller = threading.get_ident()
    seen: List[str] = []

    class Reentrant(edrlink.Transport):
        def send(self, request: edrlink.TransportRequest) -> edrlink.TransportResponse:
            assert threading.get_ident() == caller
            assert signer.seal(PT, PAYLOADS[2]) == expected
            try:
                signer.seal("not a type", b"x")
                raise AssertionError("no error")
            except edrlink.EdrlinkError as e:
                assert e.code == "malformed"
            seen.append(request.url)
            return native.send(request)

    with edrlink.EdrlinkClient(options(), Reentrant()) as c:
        assert c.enroll(tenant.token()["token"]).onboarded
    assert seen

    class FailsAfterNested(edrlink.Transport):
        def send(self, request: edrlink.TransportRequest) -> edrlink.TransportResponse:
            assert signer.seal(PT, b"") == edrlink.seal_envelope(PT, b"", SEED)
            raise edrlink.TransportError.Failed(reason="no route (after nested calls)")

    with edrlink.EdrlinkClient(options(op_timeout_secs=1), FailsAfterNested()) as c:
        with pytest.raises(edrlink.EdrlinkError) as e:
            c.enroll(tenant.token()["token"])
        assert e.value.code == "transport" and "no route" in e.value.detail
    assert signer.seal(PT, PAYLOADS[2]) == expected
