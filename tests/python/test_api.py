"""Stateless API, packaging and resource handling."""

from __future__ import annotations

import importlib.resources
import typing

import pytest

import edrlink


def test_package_is_typed_and_versioned() -> None:
    assert (importlib.resources.files("edrlink") / "py.typed").is_file()
    assert edrlink.__version__ == edrlink.version()
    assert edrlink.protocol_version() == 1
    hints = typing.get_type_hints(edrlink.seal_envelope)
    assert hints == {"payload_type": str, "payload": bytes, "private_key_seed": bytes, "return": bytes}


def test_bytes_in_bytes_out() -> None:
    seed = bytes(range(32))
    env = edrlink.seal_envelope("application/x", b"\x00\xff" * 1000, seed)
    assert isinstance(env, bytes)
    pk = edrlink.public_key_from_seed(seed)
    assert isinstance(pk, bytes) and len(pk) == 32
    assert edrlink.open_envelope(env, pk, "application/x") == b"\x00\xff" * 1000
    content = edrlink.verify_envelope(env, pk)
    assert content.payload_type == "application/x" and content.keyid == edrlink.key_id(pk)
    assert edrlink.inspect_envelope(env).payload == b"\x00\xff" * 1000
    # bytearray / memoryview are not silently accepted as lists of ints
    with pytest.raises(TypeError):
        edrlink.seal_envelope("application/x", [1, 2, 3], seed)  # type: ignore[arg-type]


def test_signer_context_manager_wipes_key() -> None:
    seed = bytes(range(32))
    with edrlink.EnvelopeSigner(seed) as signer:
        assert signer.public_key() == edrlink.public_key_from_seed(seed)
        env = signer.seal("application/x", b"abc")
        assert env == edrlink.seal_envelope("application/x", b"abc", seed)
    with pytest.raises(edrlink.EdrlinkError, match="^invalid_state: "):
        signer.seal("application/x", b"abc")
    g = edrlink.EnvelopeSigner.generate()
    assert len(g.public_key()) == 32 and g.key_id() == edrlink.key_id(g.public_key())
    g.close()


def test_seal_batch_equals_one_seal_per_payload() -> None:
    seed = bytes(range(32))
    payloads = [b"", b"abc", bytes(range(256)) * 40]
    with edrlink.EnvelopeSigner(seed) as signer:
        envs = signer.seal_batch("application/x", payloads)
        assert envs == [signer.seal("application/x", p) for p in payloads]
        assert signer.seal_batch("application/x", []) == []
        pk = signer.public_key()
        assert [edrlink.open_envelope(e, pk, "application/x") for e in envs] == payloads
        # one bad argument fails the whole call with the same code as seal
        with pytest.raises(edrlink.EdrlinkError, match="^malformed: "):
            signer.seal_batch("not a type", payloads)
    with pytest.raises(edrlink.EdrlinkError, match="^invalid_state: "):
        signer.seal_batch("application/x", payloads)


def test_pae_matches_dsse_spec() -> None:
    assert edrlink.pae("http://example.com/HelloWorld", b"hello world") == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"


def test_eicar_constants() -> None:
    import hashlib

    assert len(edrlink.eicar_bytes()) == 68
    assert hashlib.sha256(edrlink.eicar_bytes()).hexdigest() == edrlink.eicar_sha256()
    ev = edrlink.eicar_test_event_json("/tmp/eicar.com", 1_700_000_000)
    assert '"test":true' in ev and edrlink.eicar_sha256() in ev


def test_panic_free_on_hostile_input() -> None:
    for junk in (b"", b"\xff" * 100, b"{" * 10000, b'{"payload":1}'):
        with pytest.raises(edrlink.EdrlinkError, match="^malformed: "):
            edrlink.inspect_envelope(junk)
    for tok in ("", "a.b.c", "\u0000", "x" * 100000):
        with pytest.raises(edrlink.EdrlinkError):
            edrlink.inspect_token(tok)
