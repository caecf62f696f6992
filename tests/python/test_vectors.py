"""The shared tests/vectors/*.json (generated and checked by the Rust core),
run through the Python API. Kinds this binding has no API for are counted and
reported as skipped (see the terminal summary), never failed."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Tuple

import pytest

import edrlink
from conftest import REPO

VECTORS = REPO / "tests" / "vectors"
IMPLEMENTED = {
    "pae", "key_from_seed", "token_inspect", "token_verify", "envelope_seal", "envelope_open",
    "shared_key_sign", "shared_key_verify", "eicar", "eicar_detection", "error_code", "rfc3339_format",
    "event_validate",
}


def load() -> Tuple[List[Tuple[str, Dict[str, Any]]], Dict[str, int]]:
    cases, skipped = [], {}
    for f in sorted(VECTORS.glob("*.json")):
        for c in json.loads(f.read_text())["cases"]:
            if c["kind"] in IMPLEMENTED:
                cases.append((f"{f.stem}:{c['name']}", c))
            else:
                skipped[c["kind"]] = skipped.get(c["kind"], 0) + 1
    return cases, skipped


CASES, SKIPPED = load()


def h(s: str) -> bytes:
    return bytes.fromhex(s)


def claims_dict(c: edrlink.TokenClaims) -> Dict[str, Any]:
    return {k: getattr(c, k) for k in ("iss", "aud", "jti", "iat", "nbf", "exp", "partner_id", "tenant_id", "region", "service_url", "epoch", "max_uses")}


def run(kind: str, i: Dict[str, Any]) -> Dict[str, Any]:
    if kind == "pae":
        return {"pae_hex": edrlink.pae(i["payload_type"], h(i["payload_hex"])).hex()}
    if kind == "key_from_seed":
        pk = edrlink.public_key_from_seed(h(i["seed_hex"]))
        return {"public_key_hex": pk.hex(), "kid": edrlink.key_id(pk)}
    if kind == "token_inspect":
        info = edrlink.inspect_token(i["token"])
        return {"kid": info.kid, "claims": claims_dict(info.claims)}
    if kind == "token_verify":
        return {"claims": claims_dict(edrlink.verify_token(i["token"], i["keyset_json"], i["now"], i["skew"]))}
    if kind == "envelope_seal":
        return {"envelope": edrlink.seal_envelope(i["payload_type"], h(i["payload_hex"]), h(i["seed_hex"])).decode()}
    if kind == "envelope_open":
        return {"payload_hex": edrlink.open_envelope(i["envelope"].encode(), h(i["public_key_hex"]), i["payload_type"]).hex()}
    if kind == "shared_key_sign":
        args = (i["method"], i["path"], i["content_type"], i["date"], h(i["body_hex"]))
        return {
            "string_to_sign": edrlink.shared_key_string_to_sign(*args),
            "authorization": edrlink.shared_key_authorization(i["workspace_id"], h(i["key_hex"]), *args),
        }
    if kind == "shared_key_verify":
        edrlink.shared_key_verify(i["authorization"], h(i["key_hex"]), i["method"], i["path"], i["content_type"], i["date"], h(i["body_hex"]), i["now"])
        return {"ok": True}
    if kind == "eicar":
        b = edrlink.eicar_bytes()
        assert b == i["eicar_text"].encode()
        import hashlib

        assert hashlib.sha256(b).hexdigest() == edrlink.eicar_sha256()
        return {"length": len(b), "sha256_hex": edrlink.eicar_sha256()}
    if kind == "eicar_detection":
        return {"event_json": edrlink.eicar_test_event_json(i["file_path"], i["now"])}
    if kind == "error_code":
        info = edrlink.error_code_info(i["name"])
        assert info is not None
        return {"number": info.number, "http_status": info.http_status}
    if kind == "event_validate":
        return {"category": edrlink.validate_event_json(i["event_json"]).category.name.lower()}
    if kind == "rfc3339_format":
        return {"text": edrlink.rfc3339_time(i["unix"])}
    raise AssertionError(kind)


def test_vectors_are_present() -> None:
    assert len(CASES) >= 50, f"only {len(CASES)} runnable vector cases under {VECTORS}"


@pytest.mark.parametrize("case", [c for _, c in CASES], ids=[n for n, _ in CASES])
def test_vector(case: Dict[str, Any]) -> None:
    expect = case["expect"]
    if "error" in expect:
        with pytest.raises(edrlink.EdrlinkError) as info:
            run(case["kind"], case["input"])
        assert info.value.code == expect["error"], str(info.value)
        return
    got = run(case["kind"], case["input"])
    for k, v in got.items():
        assert k in expect, k
        if k.endswith("_json"):
            assert json.loads(v) == json.loads(expect[k])
        else:
            assert v == expect[k], k
