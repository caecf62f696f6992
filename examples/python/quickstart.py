"""edrlink quickstart (Python): enroll with the access token from the portal,
send the EICAR test detection, print health.

    pip install edrlink            # the wheel built from bindings/python
    python examples/python/quickstart.py <access-token> [data-dir]
"""

from __future__ import annotations

import logging
import socket
import sys
import uuid

import edrlink


def main() -> int:
    logging.basicConfig(level=logging.INFO)
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    token = sys.argv[1]
    data_dir = sys.argv[2] if len(sys.argv) > 2 else None

    info = edrlink.inspect_token(token)  # offline, for display only
    print(f"token for tenant {info.claims.tenant_id} ({info.claims.region}), {info.status.name.lower()}, {info.seconds_left}s left")

    device = edrlink.DeviceInfo(
        device_id=str(uuid.getnode()), hostname=socket.gethostname(), os="linux",
        os_version="6.1", product="Acme AV", product_version="1.0.0",
    )
    with edrlink.EdrlinkClient(edrlink.ClientOptions(device=device, data_dir=data_dir)) as client:
        client.set_log_sink(edrlink.LoggingSink(), edrlink.LogLevel.INFO)  # -> logging "edrlink"
        try:
            health = client.enroll(token)
        except edrlink.EdrlinkError as e:  # every failure: code, number, http_status, retry_after, detail
            if e.code == "token_expired":
                print("the token has expired: generate a new one in the portal")
            else:
                print(f"enrollment failed [{e.code}]: {e.detail}")
            return 1
        print(f"enrolled as installation {health.installation_id}, flow {health.flow}")
        client.send_test_detection()
        out = client.flush(30)
        print(f"delivered {out.delivered} event(s); the portal shows an 'EICAR test file' alert")
        print(client.health())
    return 0


if __name__ == "__main__":
    sys.exit(main())
