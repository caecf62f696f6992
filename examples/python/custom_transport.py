"""Plugging the app's own HTTP stack into edrlink: any class implementing
`edrlink.Transport.send` (here: urllib through a corporate proxy handler).

    python examples/python/custom_transport.py <access-token>
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

import edrlink


class UrllibTransport(edrlink.Transport):
    def __init__(self) -> None:
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler())  # honours *_proxy env

    def send(self, request: edrlink.TransportRequest) -> edrlink.TransportResponse:
        req = urllib.request.Request(request.url, data=request.body, method=request.method)
        for h in request.headers:
            req.add_header(h.name, h.value)
        try:
            with self.opener.open(req, timeout=30) as r:
                status, headers, body = r.status, r.headers.items(), r.read()
        except urllib.error.HTTPError as e:  # an HTTP error status is still a response
            status, headers, body = e.code, e.headers.items(), e.read()
        except OSError as e:  # no response at all
            raise edrlink.TransportError.Failed(reason=str(e)) from None
        return edrlink.TransportResponse(status=status, headers=[edrlink.TransportHeader(name=k, value=v) for k, v in headers], body=body)


if __name__ == "__main__":
    device = edrlink.DeviceInfo(device_id="example-device", hostname="example", os="linux", os_version="6.1", product="Acme AV", product_version="1.0.0")
    with edrlink.EdrlinkClient(edrlink.ClientOptions(device=device), UrllibTransport()) as client:
        print(client.enroll(sys.argv[1]))
