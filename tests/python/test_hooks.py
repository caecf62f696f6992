"""The log hook and the state-change events: diagnostics reach Python's
``logging`` (never a secret), events arrive with the contract's fields, a
raising hook does not break the client, and rotate() emits credential_rotated."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, List

import pytest

import edrlink
from conftest import Tenant, options


class Events(edrlink.EventSink):  # type: ignore[misc]
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: List[dict] = []

    def on_event(self, event: Any) -> None:
        with self.lock:
            self.seen.append(json.loads(edrlink.client_event_to_json(event)))

    def types(self) -> List[str]:
        with self.lock:
            return [e["type"] for e in self.seen]


class Raising(edrlink.LogSink, edrlink.EventSink):  # type: ignore[misc]
    def __init__(self) -> None:
        self.calls = 0

    def log(self, level: Any, message: str) -> None:
        self.calls += 1
        raise RuntimeError("host bug")

    def on_event(self, event: Any) -> None:
        self.calls += 1
        raise RuntimeError("host bug")


def test_logs_go_to_python_logging_without_secrets(tenant: Tenant, caplog: pytest.LogCaptureFixture) -> None:
    tok = tenant.token()["token"]
    caplog.set_level(logging.DEBUG, logger="edrlink")
    with edrlink.EdrlinkClient(options()) as client:
        client.set_log_sink(edrlink.LoggingSink(), edrlink.LogLevel.DEBUG)
        client.enroll(tok)
        client.send_test_detection()
        client.flush(10)
    records = [r for r in caplog.records if r.name == "edrlink"]
    assert records, "no diagnostics reached logging"
    assert any(r.levelno == logging.DEBUG for r in records)
    text = "\n".join(r.getMessage() for r in records)
    assert tok not in text and tok.split(".")[2] not in text


def test_min_level_filters_and_none_removes(tenant: Tenant, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="edrlink")
    with edrlink.EdrlinkClient(options()) as client:
        client.set_log_sink(edrlink.LoggingSink(), edrlink.LogLevel.WARN)
        client.enroll(tenant.token()["token"])
        assert all(r.levelno >= logging.WARNING for r in caplog.records if r.name == "edrlink")
        tok = tenant.token()["token"]
        tenant.set_enabled(False)
        with pytest.raises(edrlink.EdrlinkError, match="^integration_disabled: "):
            client.enroll(tok)  # a refusal by the service is worth a warning
        assert any(r.levelno >= logging.WARNING for r in caplog.records if r.name == "edrlink")
        tenant.set_enabled(True)
        client.set_log_sink(None, edrlink.LogLevel.TRACE)
        caplog.clear()
        client.enroll(tenant.token()["token"])
        assert not [r for r in caplog.records if r.name == "edrlink"]


def test_state_change_events_carry_their_fields(tenant: Tenant) -> None:
    ev = Events()
    with edrlink.EdrlinkClient(options()) as client:
        client.set_event_sink(ev)
        client.enroll(tenant.token()["token"])
        assert "credential_changed" in ev.types()
        assert {"type": "flow_changed", "flow": "open"} in ev.seen
        client.send_test_detection()
        client.flush(10)
        assert any(e["type"] == "delivered" and e["count"] >= 1 for e in ev.seen), ev.seen
        tenant.set_enabled(False)
        assert client.handshake() == edrlink.FlowState.BLOCKED
        assert {"type": "flow_changed", "flow": "blocked"} in ev.seen
        tenant.set_enabled(True)
        client.handshake()
        assert any(e["type"] == "needs_new_token" and e["code"] == "epoch_mismatch" for e in ev.seen) or {
            "type": "flow_changed",
            "flow": "revoked",
        } in ev.seen
        client.set_event_sink(None)
        n = len(ev.seen)
        client.enroll(tenant.token()["token"])
        assert len(ev.seen) == n, "a removed sink still received events"


def test_event_variants_are_typed() -> None:
    e = edrlink.ClientEvent.EVENTS_DROPPED(reason="expired", count=3)
    assert json.loads(edrlink.client_event_to_json(e)) == {"type": "events_dropped", "reason": "expired", "count": 3}
    e = edrlink.ClientEvent.NEEDS_NEW_TOKEN(code="revoked")
    assert json.loads(edrlink.client_event_to_json(e)) == {"type": "needs_new_token", "code": "revoked"}


def test_rotate_emits_credential_rotated(tenant: Tenant) -> None:
    ev = Events()
    with edrlink.EdrlinkClient(options()) as client:
        with pytest.raises(edrlink.EdrlinkError, match="^invalid_state: "):
            client.rotate()
        iid = client.enroll(tenant.token()["token"]).installation_id
        client.set_event_sink(ev)
        client.rotate()
        assert "credential_rotated" in ev.types() and "credential_changed" in ev.types()
        assert client.health().installation_id == iid
        client.send_test_detection()
        assert client.flush(10).queued == 0


def test_a_raising_hook_does_not_break_the_client(tenant: Tenant) -> None:
    bad = Raising()
    with edrlink.EdrlinkClient(options()) as client:
        client.set_log_sink(bad, edrlink.LogLevel.TRACE)
        client.set_event_sink(bad)
        assert client.enroll(tenant.token()["token"]).onboarded
        client.send_test_detection()
        assert client.flush(10).queued == 0
    assert bad.calls > 0
