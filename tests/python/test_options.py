"""One options schema: every client/driver/native option of
tests/options-schema.json exists on ClientOptions (transport ones on
NativeTransportOptions) under the same name with the same default, and values
are checked by the core (invalid_argument naming the option)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

import edrlink
from conftest import REPO, Tenant, device, options

SCHEMA = json.loads((REPO / "tests/options-schema.json").read_text())["options"]


def test_every_schema_option_exists_with_its_default() -> None:
    client = edrlink.ClientOptions(device=device())
    transport = edrlink.NativeTransportOptions()
    checked = 0
    for spec in SCHEMA:
        name, scope, default = spec["name"], spec["scope"], spec["default"]
        target = transport if scope == "transport" else client
        assert hasattr(target, name), f"{scope} option {name} missing"
        if name == "device":
            continue
        got = getattr(target, name)
        assert got == default, f"{name}: {got!r} != schema default {default!r}"
        checked += 1
    assert checked == len(SCHEMA) - 1 >= 19


@pytest.mark.parametrize(
    "name,value",
    [
        ("max_queue_events", 0),
        ("max_queue_bytes", 10),
        ("max_queue_age_secs", 1),
        ("blocked_recheck_secs", 0),
        ("max_backoff_secs", 10**9),
        ("max_batches_per_second", 2**40),
        ("op_timeout_secs", 10**9),
        ("signer_timeout_secs", 0),
        ("signer_timeout_secs", 601),
        ("when_full", "drop_newest"),
    ],
)
def test_out_of_range_is_refused_by_the_core_naming_the_option(name: str, value: Any) -> None:
    with pytest.raises(edrlink.EdrlinkError) as info:
        edrlink.EdrlinkClient(options(**{name: value}))
    assert info.value.code == "invalid_argument", str(info.value)
    assert name in info.value.detail


def test_a_service_url_the_core_refuses_is_invalid_argument() -> None:
    for url in ("ftp://example", "http://example.com"):  # http only to loopback
        with pytest.raises(edrlink.EdrlinkError, match="^invalid_argument: "):
            edrlink.EdrlinkClient(options(service_url=url))


def test_transport_option_out_of_range_names_it() -> None:
    with pytest.raises(edrlink.EdrlinkError) as info:
        edrlink.native_transport(edrlink.NativeTransportOptions(request_timeout_secs=0))
    assert info.value.code == "invalid_argument" and "request_timeout_secs" in info.value.detail
    with pytest.raises(edrlink.EdrlinkError, match="^invalid_argument: "):
        edrlink.EdrlinkClient(options(), edrlink.native_transport(), edrlink.NativeTransportOptions())


def test_pinned_keys_that_are_not_json_are_malformed() -> None:
    with pytest.raises(edrlink.EdrlinkError, match="^malformed: "):
        edrlink.EdrlinkClient(options(pinned_keys="{nope"))


def test_valid_options_are_accepted(tmp_path) -> None:
    opts = options(
        tmp_path,
        gzip=True,
        when_full="drop_oldest",
        max_queue_events=1,
        max_batches_per_second=1,
        op_timeout_secs=0,
    )
    transport = edrlink.NativeTransportOptions(no_proxy=True, request_timeout_secs=5)
    with edrlink.EdrlinkClient(opts, transport_options=transport) as client:
        assert not client.health().onboarded


def test_token_inspection_has_the_one_shape(tenant: Tenant) -> None:
    tok = tenant.token()["token"]
    now = int(time.time())
    i = edrlink.inspect_token(tok, now)
    fields = {f for f in vars(i)}
    assert fields == {"kid", "claims", "status", "seconds_left", "expires_at", "expiry_warning_secs", "checked_at", "verified"}
    assert i.checked_at == now and i.verified is False
    assert i.seconds_left == i.claims.exp - now
    assert i.expires_at == edrlink.rfc3339_time(i.claims.exp)
    assert i.expiry_warning_secs == 3600
    assert edrlink.inspect_token(tok, i.claims.exp + 1).status == edrlink.TokenStatus.EXPIRED


def test_health_last_error_is_an_error_record(tenant: Tenant) -> None:
    tok = tenant.token()["token"]
    with edrlink.EdrlinkClient(options()) as client:
        client.enroll(tok)
        assert client.health().last_error is None
        tenant.set_enabled(False)
        client.send_test_detection()
        with pytest.raises(edrlink.EdrlinkError) as info:
            client.flush(5)
        assert info.value.code == "flow_blocked"
        e = client.health().last_error
        assert isinstance(e, edrlink.ErrorInfo)
        assert (e.code, e.number, e.http_status, e.retry_after) == ("flow_blocked", 500, 403, None)


def test_options_from_json_are_checked_by_the_core(tmp_path) -> None:
    dev = device()
    d = {k: getattr(dev, k) for k in ("device_id", "hostname", "os", "os_version", "product", "product_version")}
    o = edrlink.client_options_from_json(json.dumps({"device": d}))
    assert o == edrlink.ClientOptions(device=dev)
    o = edrlink.client_options_from_json(json.dumps({"device": d, "when_full": "drop_oldest", "max_queue_events": 7, "data_dir": str(tmp_path)}))
    assert (o.when_full, o.max_queue_events, o.data_dir) == ("drop_oldest", 7, str(tmp_path))
    for bad, name in (({"no_such_option": 1}, "no_such_option"), ({"max_queue_events": 0}, "max_queue_events")):
        with pytest.raises(edrlink.EdrlinkError) as info:
            edrlink.client_options_from_json(json.dumps({"device": d, **bad}))
        assert info.value.code == "invalid_argument" and name in info.value.detail
    with pytest.raises(edrlink.EdrlinkError, match="^malformed: "):
        edrlink.client_options_from_json("{not json")
