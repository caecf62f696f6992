"""Keys that never leave the device, from Python: a host signer written with
``cryptography`` (P-256 with DER signatures, Ed25519) and a dict-backed
credential store, against the real reference service.

What is proved: enrollment, signed batches and rotation work with a key the
SDK never sees (stored == sent through the admin API); the credential holds
``host_key`` and no ``key_seed``; a restarted client carries on from the host
store; the envelopes the SDK sends verify outside edrlink (``cryptography``
over the DSSE PAE, and ``securesystemslib``); no private key byte reaches the
store, the transport, the log sink or the data directory; a failing, lying or
slow signer gets ``signer_failed`` and no queued event is lost."""

from __future__ import annotations

import base64
import json
import pathlib
from typing import Any, Dict, List

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey

import edrlink
from conftest import Tenant, options
from host_fixtures import DictStore, HostSigner, RecordingLog, RecordingTransport, dsse_pae, files_under, leaks

ALGORITHMS = ["p256", "ed25519"]


def submit(client: edrlink.EdrlinkClient, n: int, tag: str) -> int:
    for i in range(n):
        client.submit_json(json.dumps({"type": "generic", "time": edrlink.rfc3339_time(), "name": "process_start", "data": {"tag": tag, "i": i}}))
    return n


def stored(tenant: Tenant) -> int:
    return int(tenant.stats()["events"])


def check_stored_equals_sent(tenant: Tenant, transport: RecordingTransport, ours: int) -> None:
    """The service stored exactly the events of the batches it accepted (the
    SDK's own heartbeats included), and among them each event this test
    submitted exactly once."""
    events = transport.accepted_events()
    assert stored(tenant) == len(events)
    submitted = [(e["data"]["tag"], e["data"]["i"]) for e in events if e.get("name") == "process_start"]
    assert len(submitted) == len(set(submitted)) == ours


def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def check_jwk(jwk: Dict[str, Any], public: bytes, algorithm: str) -> None:
    if algorithm == "p256":
        assert len(public) == 65 and public[0] == 4
        assert (jwk["kty"], jwk["crv"], jwk["x"], jwk["y"]) == ("EC", "P-256", b64url(public[1:33]), b64url(public[33:]))
    else:
        assert (jwk["kty"], jwk["crv"], jwk["x"]) == ("OKP", "Ed25519", b64url(public))
    assert "d" not in jwk


def envelope_keyids(transport: RecordingTransport) -> List[str]:
    return [json.loads(b)["signatures"][0]["keyid"] for b in transport.ingest_bodies()]


def failure_options(**kw: Any) -> edrlink.ClientOptions:
    """Short backoff and no recovery jitter, so a recovery flush does not wait."""
    return options(max_backoff_secs=1, recovery_jitter_secs=0, **kw)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_host_key_enrolls_sends_rotates_and_never_shows_its_private_key(tenant: Tenant, tmp_path: pathlib.Path, algorithm: str) -> None:
    keys, store, transport, log = HostSigner(algorithm), DictStore(), RecordingTransport(), RecordingLog()
    with edrlink.EdrlinkClient(options(tmp_path), transport, credential_store=store, host_keys=keys) as client:
        client.set_log_sink(log, edrlink.LogLevel.TRACE)
        health = client.enroll(tenant.token()["token"])
        assert health.onboarded and len(keys.created) == 1 and keys.signed >= 1
        first = keys.created[0]
        cred = store.credential()
        assert "key_seed" not in cred and cred["host_key"]["handle"] == first
        check_jwk(cred["host_key"]["jwk"], keys.public[first], algorithm)
        assert not (tmp_path / "credential.json").exists(), "the host store was bypassed"

        sent = 0
        for batch in range(3):
            sent += submit(client, 5, f"before-{batch}")
            assert client.flush(30).queued == 0
        check_stored_equals_sent(tenant, transport, sent)

        client.rotate()
        assert len(keys.created) == 2 and keys.deleted == [first]
        second = keys.created[1]
        cred = store.credential()
        assert "key_seed" not in cred and cred["host_key"]["handle"] == second
        check_jwk(cred["host_key"]["jwk"], keys.public[second], algorithm)
        assert client.health().installation_id == health.installation_id
        sent += submit(client, 5, "after")
        assert client.flush(30).queued == 0
        check_stored_equals_sent(tenant, transport, sent)

        kids = envelope_keyids(transport)
        assert kids[0] == edrlink.key_id(keys.public[first]) and kids[-1] == edrlink.key_id(keys.public[second])

        client.offboard()
        assert second in keys.deleted and "credential" not in store.data

    secrets = keys.private_material()
    assert len(secrets) >= 4  # two keys, several forms each
    blobs = [s.encode() for s in store.saved] + transport.blobs() + log.blobs() + files_under(tmp_path)
    assert store.saved and transport.blobs() and log.blobs()
    assert leaks(secrets, blobs) == []
    # the scan itself finds a key that is there
    assert leaks(secrets, [b"{" + b64url(secrets[0]).encode() + b"}"])


def test_restart_from_the_host_store_keeps_sending(tenant: Tenant) -> None:
    keys, store, transport = HostSigner("p256"), DictStore(), RecordingTransport()
    opts = options()
    with edrlink.EdrlinkClient(opts, transport, credential_store=store, host_keys=keys) as client:
        iid = client.enroll(tenant.token()["token"]).installation_id
        submit(client, 4, "first-run")
        assert client.flush(30).queued == 0
    with edrlink.EdrlinkClient(opts, transport, credential_store=store, host_keys=keys) as client:
        health = client.health()
        assert health.onboarded and health.installation_id == iid
        submit(client, 4, "second-run")
        assert client.flush(30).queued == 0
        client.rotate()
        submit(client, 2, "rotated")
        assert client.flush(30).queued == 0
    with edrlink.EdrlinkClient(opts, transport, credential_store=store, host_keys=keys) as client:
        assert client.health().installation_id == iid
        submit(client, 1, "third-run")
        assert client.flush(30).queued == 0
    check_stored_equals_sent(tenant, transport, 11)
    assert len(keys.created) == 2 and store.loads == 3
    # A credential bound to host keys is refused without them.
    with pytest.raises(edrlink.EdrlinkError) as info:
        edrlink.EdrlinkClient(opts, credential_store=store)
    assert info.value.code == "invalid_state"


def test_p256_envelope_verifies_outside_edrlink(tenant: Tenant) -> None:
    keys, transport = HostSigner("p256"), RecordingTransport()
    with edrlink.EdrlinkClient(options(), transport, credential_store=DictStore(), host_keys=keys) as client:
        client.enroll(tenant.token()["token"])
        submit(client, 3, "outside")
        assert client.flush(30).queued == 0
    public = keys.public[keys.created[0]]
    body = transport.ingest_bodies()[0]
    env = json.loads(body)
    payload = base64.b64decode(env["payload"], validate=True)
    [signature] = env["signatures"]
    sig = base64.b64decode(signature["sig"], validate=True)
    assert signature["keyid"] == edrlink.key_id(public)
    ours = [e for e in json.loads(payload)["events"] if e.get("name") == "process_start"]
    assert [e["data"]["tag"] for e in ours] == ["outside"] * 3

    # cryptography over a PAE written from the DSSE spec; the signature is DER
    decode_dss_signature(sig)
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public)
    key.verify(sig, dsse_pae(env["payloadType"], payload), ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        key.verify(sig, dsse_pae(env["payloadType"], payload + b" "), ec.ECDSA(hashes.SHA256()))
    assert dsse_pae(env["payloadType"], payload) == edrlink.pae(env["payloadType"], payload)

    # securesystemslib's DSSE verifier, keyed by the envelope's key id
    sslib_key = SSlibKey.from_crypto(key, keyid=signature["keyid"])
    assert sslib_key.scheme == "ecdsa-sha2-nistp256"
    # (Envelope.from_dict rewrites the dict it is given: each call gets a fresh parse)
    assert signature["keyid"] in Envelope.from_dict(json.loads(body)).verify([sslib_key], 1)
    tampered = dict(json.loads(body), payload=base64.b64encode(payload.replace(b"outside", b"outsidE")).decode())
    with pytest.raises(VerificationError):
        Envelope.from_dict(tampered).verify([sslib_key], 1)

    # and edrlink's own verifier takes the 65-byte key
    assert edrlink.verify_envelope(body, public).payload == payload


def test_raw_r_s_p256_signatures_are_accepted(tenant: Tenant) -> None:
    keys, transport = HostSigner("p256"), RecordingTransport()
    keys.mode = "raw"  # WebCrypto's format
    with edrlink.EdrlinkClient(options(), transport, credential_store=DictStore(), host_keys=keys) as client:
        client.enroll(tenant.token()["token"])
        submit(client, 3, "raw")
        assert client.flush(30).queued == 0
        client.rotate()
        submit(client, 2, "raw-rotated")
        assert client.flush(30).queued == 0
    assert keys.deleted == [keys.created[0]]
    check_stored_equals_sent(tenant, transport, 5)


FAILURES = [("p256", m) for m in ("raise", "declared", "short", "garbage", "other_key")] + [
    ("ed25519", m) for m in ("raise", "short", "garbage", "other_key")
]


@pytest.mark.parametrize("algorithm,mode", FAILURES, ids=[f"{a}-{m}" for a, m in FAILURES])
def test_a_failing_signer_is_signer_failed_and_loses_nothing(tenant: Tenant, algorithm: str, mode: str) -> None:
    keys = HostSigner(algorithm)
    with edrlink.EdrlinkClient(failure_options(), credential_store=DictStore(), host_keys=keys) as client:
        client.enroll(tenant.token()["token"])
        submit(client, 2, "delivered")
        assert client.flush(30).queued == 0
        before = stored(tenant)
        submit(client, 6, "held")
        keys.mode = mode
        signed = keys.signed
        with pytest.raises(edrlink.EdrlinkError) as info:
            client.flush(5)
        assert info.value.code == "signer_failed", str(info.value)
        assert keys.signed > signed
        if mode == "raise":
            assert "keystore locked" in info.value.detail
        if mode == "declared":
            assert "user cancelled the biometric prompt" in info.value.detail
        health = client.health()
        assert health.queued_events == 6 and not health.drops
        assert health.last_error is not None and health.last_error.code == "signer_failed"
        assert stored(tenant) == before

        keys.mode = "ok"
        out = client.flush(30)
        assert (out.delivered, out.queued) == (6, 0)
    assert stored(tenant) == before + 6


def test_a_slow_signer_times_out_as_signer_failed(tenant: Tenant) -> None:
    keys = HostSigner("p256")
    with edrlink.EdrlinkClient(failure_options(signer_timeout_secs=1), credential_store=DictStore(), host_keys=keys) as client:
        assert client.enroll(tenant.token()["token"]).onboarded
        assert client.flush(30).queued == 0  # the first heartbeat goes out
        before = stored(tenant)
        submit(client, 5, "slow")
        keys.mode, keys.delay = "slow", 3.0
        with pytest.raises(edrlink.EdrlinkError) as info:
            client.flush(5)
        assert info.value.code == "signer_failed", str(info.value)
        assert client.health().queued_events == 5 and stored(tenant) == before
        keys.mode = "ok"
        assert client.flush(30).queued == 0
    assert stored(tenant) == before + 5


def test_create_key_failures_are_signer_failed(tenant: Tenant) -> None:
    keys, store = HostSigner("p256"), DictStore()
    keys.create_fails = RuntimeError("no secure hardware")
    with edrlink.EdrlinkClient(failure_options(op_timeout_secs=2), credential_store=store, host_keys=keys) as client:
        with pytest.raises(edrlink.EdrlinkError) as info:
            client.enroll(tenant.token()["token"])
        assert info.value.code == "signer_failed" and "no secure hardware" in info.value.detail
        assert not client.health().onboarded and store.saved == []
        keys.create_fails = None
        assert client.enroll(tenant.token()["token"]).onboarded

    class BadPublicKey(HostSigner):
        """Returns a public key that is not the key's: off the curve, or of a wrong length."""

        def __init__(self, public: bytes) -> None:
            super().__init__("p256")
            self.bad = public

        def create_key(self) -> edrlink.HostKey:
            return edrlink.HostKey(handle=super().create_key().handle, public_key=self.bad)

    for bad in (b"\x04" + b"\x01" * 64, b"\x04" * 10, b""):
        with edrlink.EdrlinkClient(failure_options(op_timeout_secs=2), credential_store=DictStore(), host_keys=BadPublicKey(bad)) as client:
            with pytest.raises(edrlink.EdrlinkError) as info:
                client.enroll(tenant.token()["token"])
            assert info.value.code == "signer_failed", str(info.value)
            assert not client.health().onboarded


def test_a_failing_store_is_storage_with_the_hosts_message(tenant: Tenant) -> None:
    store = DictStore()
    store.fail = edrlink.HostError.Failed(reason="keychain locked")
    with pytest.raises(edrlink.EdrlinkError) as info:
        edrlink.EdrlinkClient(options(), credential_store=store, host_keys=HostSigner("p256"))
    assert info.value.code == "storage" and "keychain locked" in info.value.detail

    store.fail = None
    with edrlink.EdrlinkClient(failure_options(op_timeout_secs=2), credential_store=store, host_keys=HostSigner("p256")) as client:
        store.fail = OSError("disk full")
        with pytest.raises(edrlink.EdrlinkError) as info:
            client.enroll(tenant.token()["token"])
        assert info.value.code == "storage" and "disk full" in info.value.detail


def test_a_failing_delete_key_does_not_undo_a_rotation(tenant: Tenant) -> None:
    class KeepsKeys(HostSigner):
        def delete_key(self, handle: str) -> None:
            self.deleted.append(handle)
            raise RuntimeError("key in use by another app")

    keys, store, transport = KeepsKeys("ed25519"), DictStore(), RecordingTransport()
    with edrlink.EdrlinkClient(options(), transport, credential_store=store, host_keys=keys) as client:
        client.enroll(tenant.token()["token"])
        client.rotate()  # deletion is best effort: its failure is not the rotation's
        assert keys.deleted == [keys.created[0]]
        assert store.credential()["host_key"]["handle"] == keys.created[1]
        submit(client, 3, "after-failed-delete")
        assert client.flush(30).queued == 0
    check_stored_equals_sent(tenant, transport, 3)
