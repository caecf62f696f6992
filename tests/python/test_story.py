"""The whole partner story against the real reference service."""

from __future__ import annotations

import json
import pathlib

import edrlink
from conftest import Tenant, device, options


def test_token_redeem_handshake_send_eicar_offboard(tenant: Tenant, tmp_path: pathlib.Path) -> None:
    tok = tenant.token()
    info = edrlink.inspect_token(tok["token"])
    assert info.claims.tenant_id == tenant.id
    assert info.claims.partner_id == tenant.partner
    assert info.claims.jti == tok["jti"]
    assert info.status == edrlink.TokenStatus.VALID
    assert info.seconds_left > 3600

    dev = device()
    with edrlink.EdrlinkClient(options(tmp_path, device=dev)) as client:
        health = client.enroll(tok["token"])
        assert health.onboarded and health.installation_id
        assert health.flow == edrlink.FlowState.OPEN
        assert (tmp_path / "credential.json").exists()
        assert client.handshake() == edrlink.FlowState.OPEN

        client.submit_json(json.dumps({"type": "generic", "time": edrlink.rfc3339_time(), "name": "process_start", "data": {"pid": 42}}))
        client.submit_detection(
            edrlink.Detection(
                threat_name="Trojan.Test",
                file_path="/tmp/x.bin",
                sha256="ab" * 32,
                severity=edrlink.Severity.HIGH,
                action=edrlink.DetectionAction.QUARANTINED,
            )
        )
        client.send_test_detection()
        out = client.flush(30)
        assert out.queued == 0
        assert out.delivered >= 3

        alerts = tenant.alerts()
        eicar = [a for a in alerts if a["title"] == "EICAR test file"]
        assert len(eicar) == 1, alerts
        assert eicar[0]["test"] is True
        assert eicar[0]["sha256"] == edrlink.eicar_sha256()
        assert eicar[0]["installation_id"] == health.installation_id
        assert any(a["threat_name"] == "Trojan.Test" for a in alerts)

        inst = tenant.installations()["installations"]
        mine = [i for i in inst if i["id"] == health.installation_id]
        assert mine and mine[0]["device_id"] == dev.device_id and not mine[0]["offboarded"]
        assert tenant.stats()["events"] >= 3

        h = client.health()
        assert h.sent_events >= 3 and h.queued_events == 0 and h.last_send is not None

        client.offboard()
        assert not client.health().onboarded
        assert not (tmp_path / "credential.json").exists()
        mine = [i for i in tenant.installations()["installations"] if i["id"] == health.installation_id]
        assert mine[0]["offboarded"] is True
    assert client.is_shut_down()


def test_credential_survives_restart(tenant: Tenant, tmp_path: pathlib.Path) -> None:
    opts = options(tmp_path)
    with edrlink.EdrlinkClient(opts) as c1:
        iid = c1.enroll(tenant.token()["token"]).installation_id
    with edrlink.EdrlinkClient(opts) as c2:
        assert c2.health().installation_id == iid
        assert c2.handshake() == edrlink.FlowState.OPEN
        c2.send_test_detection()
        assert c2.flush(30).queued == 0
    assert any(a["installation_id"] == iid for a in tenant.alerts())


def test_downlevel_onboarding_package(tenant: Tenant) -> None:
    package = tenant.onboarding_package()
    info = edrlink.inspect_onboarding_package(package)
    assert info.tenant_id == tenant.id and info.workspace_id
    assert "workspace_key" not in str(info)
    with edrlink.EdrlinkClient(options()) as client:
        h = client.enroll_with_package(package)
        assert h.onboarded and h.flow == edrlink.FlowState.OPEN
        client.send_test_detection()
        assert client.flush(30).queued == 0
    assert any(a["title"] == "EICAR test file" for a in tenant.alerts())


def test_offboarding_package(tenant: Tenant) -> None:
    with edrlink.EdrlinkClient(options()) as client:
        iid = client.enroll(tenant.token()["token"]).installation_id
        package = tenant.offboarding_package([iid])
        client.offboard(package)
        h = client.health()
        assert not h.onboarded and h.installation_id is None


def test_closed_client_raises_invalid_state() -> None:
    client = edrlink.EdrlinkClient(options())
    client.close()
    client.close()  # idempotent
    try:
        client.health()
    except edrlink.EdrlinkError as e:
        assert e.code == "invalid_state"
    else:
        raise AssertionError("expected InvalidState")
