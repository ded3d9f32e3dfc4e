"""`ocigate healthcheck`: is the server of these settings alive? For container health checks
(the image's HEALTHCHECK), which then need no curl: exit 0 when `GET /healthz` on the listening
port answers 200, else 1 with the reason on stderr. Behind a load balancer speaking the PROXY
protocol (`OCIGATE_PROXY_PROTOCOL`) it opens with the header a balancer's own check sends."""

from __future__ import annotations

import http.client
import sys

from .settings import Settings

# a wildcard listen address is reached through loopback
_LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1"}


def check(settings: Settings, timeout: float = 5.0) -> int:
    server = settings.server
    host = _LOOPBACK.get(server.host, server.host)
    connection = http.client.HTTPConnection(host, server.port, timeout=timeout)
    try:
        connection.connect()
        if settings.proxies.proxy_protocol:
            connection.sock.sendall(b"PROXY UNKNOWN\r\n")  # v1: the proxy speaking for itself
        connection.request("GET", "/healthz")
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException) as error:
        print(f"ocigate healthcheck: {host} port {server.port}: {error}", file=sys.stderr)
        return 1
    finally:
        connection.close()
    if status != 200:
        print(f"ocigate healthcheck: /healthz answered {status}", file=sys.stderr)
        return 1
    return 0
