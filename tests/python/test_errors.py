"""Every error kind surfaces as the right exception class with its stable code,
both from local checks and from the real service."""

from __future__ import annotations

import time
import json
from typing import Callable

import pytest

import edrlink
from conftest import REPO, Tenant, device, options

E = edrlink.EdrlinkError


def raises(code: str, fn: Callable[[], object]) -> edrlink.EdrlinkError:
    """Runs ``fn``, which must raise ``EdrlinkError`` with ``code``; every field
    comes from the core (number and status match the code table)."""
    with pytest.raises(E) as info:
        fn()
    err = info.value
    assert err.code == code, (err.code, str(err))
    row = edrlink.error_code_info(code)
    assert row is not None and (err.number, err.http_status) == (row.number, row.http_status)
    assert isinstance(err.detail, str) and err.detail
    assert str(err) == f"{code}: {err.detail}"
    return err


def tamper(token: str) -> str:
    head, payload, sig = token.split(".")
    # flip one character of the signature (keeps it valid base64url)
    c = "A" if sig[5] != "A" else "B"
    return ".".join([head, payload, sig[:5] + c + sig[6:]])


def test_error_table_matches_the_vectors() -> None:
    """The binding's code table is the core's: every code of
    tests/vectors/errors.json with the same number and status, nothing more."""
    cases = json.loads((REPO / "tests/vectors/errors.json").read_text())["cases"]
    want = {c["input"]["name"]: (c["expect"]["number"], c["expect"]["http_status"]) for c in cases}
    got = {i.name: (i.number, i.http_status) for i in edrlink.error_codes()}
    assert got == want
    assert edrlink.error_code_info("token_expired").number == 300
    assert edrlink.error_code_info("no_such_code") is None


def test_error_fields_on_the_base_type() -> None:
    try:
        edrlink.inspect_token("not-a-token")
    except edrlink.EdrlinkError as e:
        assert (e.code, e.number, e.http_status, e.retry_after) == ("malformed", 100, 400, None)
        assert e.detail and str(e) == f"malformed: {e.detail}"
    else:
        raise AssertionError("no error")


def test_token_expired(tenant: Tenant) -> None:
    tok = tenant.token(lifetime_secs=1)["token"]
    time.sleep(2.2)
    assert edrlink.inspect_token(tok).status == edrlink.TokenStatus.EXPIRED
    with edrlink.EdrlinkClient(options()) as client:
        err = raises("token_expired", lambda: client.enroll(tok))
        assert err.retry_after is None
        assert err.number == 300 and err.http_status == 401
        assert not client.health().onboarded


def test_token_tampered_is_refused_by_service_and_by_verify(tenant: Tenant, admin) -> None:
    tok = tenant.token()["token"]
    bad = tamper(tok)
    with edrlink.EdrlinkClient(options()) as client:
        raises("bad_signature", lambda: client.enroll(bad))
    keyset = admin.call("GET", "/v1/keys", auth=False)
    import json

    keyset_json = json.dumps(keyset)
    claims = edrlink.verify_token(tok, keyset_json)
    assert claims.tenant_id == tenant.id
    raises("bad_signature", lambda: edrlink.verify_token(bad, keyset_json))
    raises("malformed", lambda: edrlink.inspect_token("not-a-token"))


def test_integration_disabled(tenant: Tenant) -> None:
    tok = tenant.token()["token"]
    tenant.set_enabled(False)
    with edrlink.EdrlinkClient(options()) as client:
        raises("integration_disabled", lambda: client.enroll(tok))


def test_epoch_mismatch_after_toggle_off_on(tenant: Tenant) -> None:
    tok = tenant.token()["token"]
    epoch = edrlink.inspect_token(tok).claims.epoch
    tenant.set_enabled(False)
    st = tenant.set_enabled(True)
    assert st["epoch"] > epoch
    with edrlink.EdrlinkClient(options()) as client:
        raises("epoch_mismatch", lambda: client.enroll(tok))
        # a fresh token of the new epoch works
        assert client.enroll(tenant.token()["token"]).onboarded


def test_flow_blocked_then_revoked(tenant: Tenant) -> None:
    with edrlink.EdrlinkClient(options()) as client:
        client.enroll(tenant.token()["token"])
        tenant.set_enabled(False)
        assert client.handshake() == edrlink.FlowState.BLOCKED
        client.send_test_detection()
        raises("flow_blocked", lambda: client.flush(5))
        h = client.health()
        assert h.queued_events >= 1, "blocked events are kept"
        assert h.flow == edrlink.FlowState.BLOCKED
        # turned back on: the epoch moved, the old credential is revoked
        tenant.set_enabled(True)
        assert client.handshake() == edrlink.FlowState.REVOKED
        assert client.health().needs_new_token
    assert not [a for a in tenant.alerts() if a["title"] == "EICAR test file"]


def test_invalid_json_event() -> None:
    with edrlink.EdrlinkClient(options()) as client:
        raises("malformed", lambda: client.submit_json("{not json"))
        raises("malformed", lambda: client.submit_json('{"type":"generic","time":"yesterday","name":"x"}'))
        raises("malformed", lambda: client.submit_json('{"type":"nope"}'))
        assert client.health().queued_events == 0
    raises("malformed", lambda: edrlink.validate_event_json("[]"))
    ok = edrlink.validate_event_json('{"type":"heartbeat","time":"2026-01-01T00:00:00Z","sensor":"running"}')
    assert ok.category == edrlink.EventCategory.TELEMETRY


def test_invalid_argument() -> None:
    bad = device()
    bad.device_id = ""
    raises("invalid_argument", lambda: edrlink.EdrlinkClient(options(device=bad)))


def test_wrong_length_keys_and_seeds_get_the_core_codes() -> None:
    # a seed the core cannot use: invalid_argument (SigningKey::from_seed_slice)
    raises("invalid_argument", lambda: edrlink.seal_envelope("a/b", b"x", b"\x00" * 31))
    raises("invalid_argument", lambda: edrlink.public_key_from_seed(b"\x00" * 33))
    raises("invalid_argument", lambda: edrlink.EnvelopeSigner(b"\x00" * 16))
    # a public key that is not 32 bytes: malformed (VerifyingKey::from_bytes)
    raises("malformed", lambda: edrlink.open_envelope(b"{}", b"\x00" * 5, "a/b"))
    raises("malformed", lambda: edrlink.key_id(b"\x00" * 31))


def test_shared_key_authorization_computes_what_it_is_given() -> None:
    """No binding-side emptiness check: the core signs (an onboarding package
    with an empty id or key is refused when parsed, by the core)."""
    a = edrlink.shared_key_authorization("ws", b"", "POST", "/", "a", "d", b"")
    assert a.startswith("SharedKey ws:")
    raises("malformed", lambda: edrlink.inspect_onboarding_package('{"workspace_key": ""}'))


def test_invalid_state_before_enroll() -> None:
    with edrlink.EdrlinkClient(options()) as client:
        raises("invalid_state", client.handshake)
        raises("invalid_state", lambda: client.offboard())


def test_transport_error_unreachable_service(tenant: Tenant) -> None:
    # a token naming a closed loopback port: the native transport fails below HTTP
    tok = tenant.token()["token"]
    opts = options(service_url="http://127.0.0.1:9", op_timeout_secs=2)
    with edrlink.EdrlinkClient(opts) as client:
        raises("transport", lambda: client.enroll(tok))


def test_envelope_errors() -> None:
    seed = bytes(range(32))
    pk = edrlink.public_key_from_seed(seed)
    env = edrlink.seal_envelope("application/x", b"payload", seed)
    raises("wrong_type", lambda: edrlink.open_envelope(env, pk, "application/y"))
    other = edrlink.public_key_from_seed(bytes(32))
    raises("unknown_key", lambda: edrlink.open_envelope(env, other, "application/x"))
    tampered = env.replace(b'"payload":"', b'"payload":"A', 1)
    with pytest.raises(E) as info:
        edrlink.open_envelope(tampered, pk, "application/x")
    assert info.value.code in ("bad_signature", "malformed")
    raises("malformed", lambda: edrlink.open_envelope(b"{", pk, "application/x"))


def test_shared_key_verify_errors() -> None:
    key = b"k" * 32
    date = edrlink.rfc3339_time(1_700_000_000)
    auth = edrlink.shared_key_authorization("ws-1", key, "POST", "/v1/downlevel/ingest", "application/json", date, b"{}")
    edrlink.shared_key_verify(auth, key, "POST", "/v1/downlevel/ingest", "application/json", date, b"{}", 1_700_000_000)
    raises("bad_signature", lambda: edrlink.shared_key_verify(auth, key, "POST", "/v1/downlevel/ingest", "application/json", date, b"{ }", 1_700_000_000))
    raises("stale_message", lambda: edrlink.shared_key_verify(auth, key, "POST", "/v1/downlevel/ingest", "application/json", date, b"{}", 1_700_001_000))
    raises("unauthorized", lambda: edrlink.shared_key_verify("Bearer x", key, "POST", "/", "a", date, b"", 1_700_000_000))
