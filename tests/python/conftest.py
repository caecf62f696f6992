"""Shared fixtures: the reference service started by run.sh (URL + admin key
in the environment), an admin-API client over urllib, per-test tenants."""

from __future__ import annotations

import json
import os
import pathlib
import socket
import uuid
import urllib.error
import urllib.request
from typing import Any, Dict, Optional

import pytest

import edrlink

REPO = pathlib.Path(__file__).resolve().parents[2]
PARTNER = "acme-av"


class Admin:
    """The service's admin API (what the portal does), over plain urllib."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url.rstrip("/")
        self.key = key

    def call(self, method: str, path: str, body: Optional[Dict[str, Any]] = None, auth: bool = True) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("content-type", "application/json")
        if auth:
            req.add_header("authorization", f"Bearer {self.key}")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                text = r.read()
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{method} {path} -> {e.code}: {e.read()[:500]!r}") from None
        return json.loads(text) if text else None

    def status(self, method: str, path: str, auth: bool = True) -> int:
        req = urllib.request.Request(self.url + path, method=method)
        if auth:
            req.add_header("authorization", f"Bearer {self.key}")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code


class Tenant:
    def __init__(self, admin: Admin, tenant_id: str, partner: str = PARTNER) -> None:
        self.admin = admin
        self.id = tenant_id
        self.partner = partner
        admin.call("POST", "/admin/tenants", {"tenant_id": tenant_id, "region": "eu"})
        self.set_enabled(True)

    @property
    def base(self) -> str:
        return f"/admin/tenants/{self.id}/integrations/{self.partner}"

    def set_enabled(self, enabled: bool) -> Dict[str, Any]:
        return self.admin.call("PUT", self.base, {"enabled": enabled})

    def token(self, lifetime_secs: Optional[int] = None, max_uses: Optional[int] = None) -> Dict[str, Any]:
        body: Dict[str, Any] = {}
        if lifetime_secs is not None:
            body["lifetime_secs"] = lifetime_secs
        if max_uses is not None:
            body["max_uses"] = max_uses
        return self.admin.call("POST", self.base + "/tokens", body)

    def onboarding_package(self) -> str:
        return json.dumps(self.admin.call("POST", self.base + "/onboarding-package", {}))

    def offboarding_package(self, installation_ids: Optional[list] = None) -> str:
        body = {} if installation_ids is None else {"installation_ids": installation_ids}
        return self.admin.call("POST", self.base + "/offboarding-package", body)["package"]

    def installations(self) -> Dict[str, Any]:
        return self.admin.call("GET", f"/admin/tenants/{self.id}/installations")

    def alerts(self) -> list:
        return self.admin.call("GET", f"/admin/tenants/{self.id}/alerts")["alerts"]

    def stats(self) -> Dict[str, Any]:
        return self.admin.call("GET", f"/admin/tenants/{self.id}/stats")


@pytest.fixture(scope="session")
def admin() -> Admin:
    url = os.environ.get("EDRLINK_TEST_SERVICE_URL")
    key = os.environ.get("EDRLINK_ADMIN_KEY")
    if not url or not key:
        pytest.fail("EDRLINK_TEST_SERVICE_URL / EDRLINK_ADMIN_KEY not set: run tests/python/run.sh")
    return Admin(url, key)


@pytest.fixture
def tenant(admin: Admin) -> Tenant:
    return Tenant(admin, "py-" + uuid.uuid4().hex[:12])


def device(name: str = "") -> edrlink.DeviceInfo:
    return edrlink.DeviceInfo(
        device_id=name or "dev-" + uuid.uuid4().hex,
        hostname=socket.gethostname() or "host",
        os="linux",
        os_version="6.1",
        product="Acme AV",
        product_version="1.0.0",
    )


def options(tmp_path: Optional[pathlib.Path] = None, **kw: Any) -> edrlink.ClientOptions:
    return edrlink.ClientOptions(device=kw.pop("device", None) or device(), data_dir=str(tmp_path) if tmp_path else None, **kw)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    try:
        from test_scenarios import FILES, RESULTS
    except Exception:  # noqa: BLE001
        FILES, RESULTS = None, {}
    if FILES is not None and (RESULTS or not FILES):
        passed = sum(1 for v in RESULTS.values() if v is None)
        failed = len(FILES) - passed
        for name, why in sorted(RESULTS.items()):
            if why is not None:
                terminalreporter.write_line(f"scenario FAILED {name}: {why}")
        for f in FILES:
            if f.name not in RESULTS:
                terminalreporter.write_line(f"scenario FAILED {f.name}: not run")
        terminalreporter.write_line(f"scenarios: {passed} passed, {failed} failed")
    try:
        from test_vectors import CASES, SKIPPED
    except Exception:  # noqa: BLE001
        return
    skipped = ", ".join(f"{k}={v}" for k, v in sorted(SKIPPED.items())) or "none"
    terminalreporter.write_line(f"vectors: {len(CASES)} cases run; skipped kinds (no Python API): {skipped}")
