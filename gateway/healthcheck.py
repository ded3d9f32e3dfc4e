"""`ocigate healthcheck`: is the server of these settings alive? For container health checks
(the image's HEALTHCHECK), which then need no curl: exit 0 when `GET /healthz` on the listening
port answers 200, else 1 with the reason on stderr. Behind a load balancer speaking the PROXY
protocol (`OCIGATE_PROXY_PROTOCOL`) it opens with the header a balancer's own check sends. With
TLS on it speaks TLS (after that header) without checking the certificate: it asks whether the
process answers, and the name on the certificate is rarely the loopback address it dials."""

from __future__ import annotations

import http.client
import ssl
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
        if settings.tls.enabled:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            connection.sock = context.wrap_socket(connection.sock, server_hostname=server.domain)
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
