"""The Host header reaches a response header (the challenge's realm): a Host that is not a plain
`host[:port]` is refused with 400 in the OCI error format, on every route, before anything
copies it anywhere."""

from __future__ import annotations

import json
import socket

import pytest

from tests.servers import DOMAIN, Gateway

INJECTION = 'evil.example/token",realm="http://attacker.example'


def raw(gateway: Gateway, head: str) -> tuple[int, dict[str, str], bytes]:
    """One request as written (header lines included), over a socket of its own."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as sock:
        sock.sendall(head.encode("latin-1") + b"Connection: close\r\n\r\n")
        answer = b"".join(iter(lambda: sock.recv(65536), b""))
    status_line, _, rest = answer.partition(b"\r\n")
    header_block, _, body = rest.partition(b"\r\n\r\n")
    headers = {}
    for line in header_block.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(": ")
        headers[name.lower()] = value
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize(
    "host",
    [
        INJECTION,
        "evil.example/token",
        'x"',
        "x,realm=y",
        "two words",
        "x:99999",
        "x:port",
        "[::1",
        "[not-an-address]:5000",
        "",
        "évil.example",
    ],
)
@pytest.mark.parametrize("path", ["/v2/", "/v2/team/app/manifests/v1", "/token", "/api/registries"])
def test_a_host_that_is_not_host_port_is_refused(gateway: Gateway, host: str, path: str) -> None:
    status, headers, body = raw(gateway, f"GET {path} HTTP/1.1\r\nHost: {host}\r\n")
    assert status == 400
    assert "www-authenticate" not in headers
    error = json.loads(body)["errors"][0]
    assert error["code"] == "UNSUPPORTED"
    assert "Host" in error["message"]
    assert "attacker" not in body.decode("utf-8", "replace")


def test_two_host_headers_are_refused(gateway: Gateway) -> None:
    """(aiohttp's parser refuses them before the gateway sees the request.)"""
    status, headers, _ = raw(gateway, f"GET /v2/ HTTP/1.1\r\nHost: a.example\r\nHost: {INJECTION}\r\n")
    assert status == 400
    assert "www-authenticate" not in headers


@pytest.mark.parametrize(
    "host",
    [f"alpha.{DOMAIN}", f"alpha.{DOMAIN}:5000", "127.0.0.1:5000", "[::1]:5000", "localhost", "my_registry"],
)
def test_a_valid_host_is_echoed_in_the_realm_as_it_came(gateway: Gateway, host: str) -> None:
    status, headers, _ = raw(gateway, f"GET /v2/ HTTP/1.1\r\nHost: {host}\r\n")
    assert status == 401
    assert headers["www-authenticate"].startswith(f'Bearer realm="http://{host}/token",service="')
