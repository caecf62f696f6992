"""One client used from several threads at once; nothing lost, nothing doubled."""

from __future__ import annotations

import json
import threading
from typing import List

import edrlink
from conftest import Tenant, options
from test_transport import UrllibTransport

THREADS = 8
PER_THREAD = 25


def _hammer(client: edrlink.EdrlinkClient, n: int, errors: List[BaseException]) -> None:
    try:
        for i in range(PER_THREAD):
            ev = {"type": "generic", "time": edrlink.rfc3339_time(), "name": "file_write", "data": {"t": n, "i": i}}
            client.submit_json(json.dumps(ev))
            if i % 10 == 9:
                client.flush(30)
            client.health()
    except BaseException as e:  # noqa: BLE001 - reported below
        errors.append(e)


def _run(client: edrlink.EdrlinkClient, tenant: Tenant) -> None:
    client.enroll(tenant.token()["token"])
    before = tenant.stats()["events"]
    errors: List[BaseException] = []
    threads = [threading.Thread(target=_hammer, args=(client, n, errors)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert client.flush(30).queued == 0
    h = client.health()
    assert h.queued_events == 0 and not h.drops
    generic = tenant.stats()["events"] - before
    # every submitted event stored exactly once; the client may add a heartbeat or two
    assert THREADS * PER_THREAD <= generic <= THREADS * PER_THREAD + 3, generic
    assert THREADS * PER_THREAD <= h.sent_events <= THREADS * PER_THREAD + 3, h.sent_events


def test_threads_native_transport(tenant: Tenant) -> None:
    with edrlink.EdrlinkClient(options()) as client:
        _run(client, tenant)


def test_threads_host_transport(tenant: Tenant) -> None:
    with edrlink.EdrlinkClient(options(), UrllibTransport()) as client:
        _run(client, tenant)


def test_stateless_calls_from_threads() -> None:
    seed = bytes(range(32))
    pk = edrlink.public_key_from_seed(seed)
    signer = edrlink.EnvelopeSigner(seed)
    errors: List[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(200):
                payload = f"{n}-{i}".encode() * 10
                env = signer.seal("application/x", payload)
                assert edrlink.open_envelope(env, pk, "application/x") == payload
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    signer.close()
