"""A host-implemented transport (urllib) used for a real exchange."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from typing import List

import pytest

import edrlink
from conftest import Tenant, options


class UrllibTransport(edrlink.Transport):
    """The app's own HTTP stack: plain urllib."""

    def __init__(self) -> None:
        self.requests: List[str] = []
        self.lock = threading.Lock()

    def send(self, request: edrlink.TransportRequest) -> edrlink.TransportResponse:
        with self.lock:
            self.requests.append(request.url)
        req = urllib.request.Request(request.url, data=request.body, method=request.method)
        for h in request.headers:
            req.add_header(h.name, h.value)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, headers, body = r.status, r.headers.items(), r.read()
        except urllib.error.HTTPError as e:  # 4xx/5xx are responses, not failures
            status, headers, body = e.code, e.headers.items(), e.read()
        except OSError as e:
            raise edrlink.TransportError.Failed(reason=f"urllib: {e}") from None
        return edrlink.TransportResponse(
            status=status,
            headers=[edrlink.TransportHeader(name=k, value=v) for k, v in headers],
            body=body,
        )


class BrokenTransport(edrlink.Transport):
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
        self.calls = 0

    def send(self, request: edrlink.TransportRequest) -> edrlink.TransportResponse:
        self.calls += 1
        raise self.exc


def test_host_transport_real_exchange(tenant: Tenant) -> None:
    t = UrllibTransport()
    with edrlink.EdrlinkClient(options(), t) as client:
        h = client.enroll(tenant.token()["token"])
        assert h.onboarded
        client.send_test_detection()
        assert client.flush(30).queued == 0
        client.offboard()
    paths = [u.split("/v1/")[1] for u in t.requests]
    assert "redeem" in paths and "handshake" in paths and "ingest" in paths and "offboard" in paths
    assert all(u.startswith(tenant.admin.url) for u in t.requests)
    assert any(a["title"] == "EICAR test file" for a in tenant.alerts())


def test_host_transport_problem_details_keep_their_code(tenant: Tenant) -> None:
    tok = tenant.token()["token"]
    tenant.set_enabled(False)
    with edrlink.EdrlinkClient(options(), UrllibTransport()) as client:
        with pytest.raises(edrlink.EdrlinkError, match="^integration_disabled: "):
            client.enroll(tok)


@pytest.mark.parametrize(
    "exc",
    [edrlink.TransportError.Failed(reason="no route to host"), ConnectionResetError("boom"), ValueError("host bug")],
    ids=["declared", "oserror", "unexpected"],
)
def test_host_transport_failure_becomes_transport_error(tenant: Tenant, exc: BaseException) -> None:
    t = BrokenTransport(exc)
    with edrlink.EdrlinkClient(options(op_timeout_secs=1), t) as client:
        with pytest.raises(edrlink.EdrlinkError) as info:
            client.enroll(tenant.token()["token"])
        assert info.value.code == "transport"
        assert t.calls >= 1
        assert not client.health().onboarded


def test_native_transport_object_can_be_wrapped(tenant: Tenant) -> None:
    native = edrlink.native_transport()
    seen: List[int] = []

    class Metered(edrlink.Transport):
        def send(self, request: edrlink.TransportRequest) -> edrlink.TransportResponse:
            resp = native.send(request)
            seen.append(resp.status)
            return resp

    with edrlink.EdrlinkClient(options(), Metered()) as client:
        assert client.enroll(tenant.token()["token"]).onboarded
    assert seen and all(s == 200 for s in seen)
