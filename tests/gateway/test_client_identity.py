"""One client identity for the limiter, the subnet allow lists, the audit log and the access log:
the TCP peer, or the client a trusted proxy names (X-Forwarded-For, or a PROXY protocol header,
which only trusted proxies may send)."""

from __future__ import annotations

import http.client
import itertools
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from tests.limiter.probes import proxy_v1
from tests.servers import ADMIN_PASSWORD, ADMIN_USER, DOMAIN, Gateway, basic_auth

ADMIN = (ADMIN_USER, ADMIN_PASSWORD)
INSIDE, OUTSIDE = "10.1.1.1", "192.0.2.7"
_names = itertools.count()


def unique_registry() -> str:
    return f"ident-{next(_names)}-{time.monotonic_ns() % 100000}"


@pytest.fixture(scope="module", params=["limits off", "limits on"])
def behind_proxy(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """A gateway behind a trusted proxy on 127.0.0.1, access log on; with limits on, the
    connection gate works out the client, with them off the app does."""
    env = {"OCIGATE_TRUSTED_PROXIES": "127.0.0.1/32", "OCIGATE_ACCESS_LOG": "true"}
    if request.param == "limits on":
        env |= {"OCIGATE_LIMIT_RPS": "1000", "OCIGATE_LIMIT_CONNECTIONS": "100"}
    gateway = Gateway(tmp_path_factory.mktemp("proxied") / "data", env=env).start()
    yield gateway
    gateway.stop()


def create_registry(gateway: Gateway, allow: list[str], forwarded_for: str) -> str:
    name = unique_registry()
    response = requests.post(
        f"{gateway.url}/api/registries",
        json={"name": name, "location": "local", "apiSubnetAllowList": allow},
        auth=ADMIN,
        headers={"X-Forwarded-For": forwarded_for},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return f"{name}.{DOMAIN}:{gateway.port}"


def v2_status(gateway: Gateway, host: str, forwarded_for: str | None, path: str = "/v2/") -> int:
    headers = {"Host": host} | ({"X-Forwarded-For": forwarded_for} if forwarded_for is not None else {})
    return requests.get(f"{gateway.url}{path}", auth=ADMIN, headers=headers, timeout=30).status_code


def served(gateway: Gateway, host: str, forwarded_for: str) -> None:
    deadline = time.monotonic() + 10  # a new registry is served within a second or so
    while v2_status(gateway, host, forwarded_for) == 404:
        assert time.monotonic() < deadline, f"{host} not served"
        time.sleep(0.1)


def test_the_allow_list_judges_the_client_a_trusted_proxy_names(behind_proxy: Gateway) -> None:
    host = create_registry(behind_proxy, ["10.0.0.0/8"], INSIDE)
    served(behind_proxy, host, INSIDE)
    assert v2_status(behind_proxy, host, INSIDE) == 200
    assert v2_status(behind_proxy, host, f"{OUTSIDE}, {INSIDE}") == 200  # the proxy appended INSIDE
    assert v2_status(behind_proxy, host, OUTSIDE) == 403
    assert v2_status(behind_proxy, host, f"{INSIDE}, {OUTSIDE}") == 403  # a forged leftmost entry
    assert v2_status(behind_proxy, host, None) == 403  # the proxy itself, 127.0.0.1
    token = "/token?scope=repository:x:pull"
    assert v2_status(behind_proxy, host, INSIDE, token) == 200
    assert v2_status(behind_proxy, host, OUTSIDE, token) == 403

    loopback_only = create_registry(behind_proxy, ["127.0.0.0/8"], INSIDE)
    served(behind_proxy, loopback_only, "127.0.0.2")
    assert (
        v2_status(behind_proxy, loopback_only, OUTSIDE) == 403
    )  # the proxy's own address is not the client's
    assert v2_status(behind_proxy, loopback_only, "127.0.0.2") == 200


def test_the_audit_log_and_the_access_log_name_the_same_client(behind_proxy: Gateway) -> None:
    host = create_registry(behind_proxy, [], "198.51.100.23")
    served(behind_proxy, host, "198.51.100.24")
    assert v2_status(behind_proxy, host, "198.51.100.25", "/token?scope=repository:x:pull") == 200
    entries = requests.get(
        f"{behind_proxy.url}/api/audit", params={"limit": 20}, auth=ADMIN, timeout=30
    ).json()["items"]
    by_action = {e["properties"]["action"]: e["properties"] for e in reversed(entries)}
    assert by_action["registry.create"]["address"] == "198.51.100.23"
    assert by_action["token.issue"]["address"] == "198.51.100.25"
    deadline = time.monotonic() + 10  # the access log line is written after the response
    while '198.51.100.24 "GET /v2/ HTTP/1.1" 200' not in behind_proxy.log():
        assert time.monotonic() < deadline, behind_proxy.log()[-2000:]
        time.sleep(0.1)


def test_x_forwarded_for_from_an_untrusted_peer_changes_nothing(tmp_path: Path) -> None:
    gateway = Gateway(tmp_path / "data").start()
    try:
        host = create_registry(gateway, ["10.0.0.0/8"], INSIDE)
        served(gateway, host, INSIDE)
        assert v2_status(gateway, host, INSIDE) == 403
    finally:
        gateway.stop()


# --- PROXY protocol ----------------------------------------------------------------------------


class ProxiedConnection(http.client.HTTPConnection):
    """An HTTP connection that starts with the PROXY header a load balancer would send."""

    def __init__(self, port: int, source: str) -> None:
        super().__init__("127.0.0.1", port, timeout=30)
        self.source = source

    def connect(self) -> None:
        super().connect()
        self.sock.sendall(proxy_v1(self.source))


def proxied(gateway: Gateway, source: str, method: str, path: str, **headers: str) -> tuple[int, Any]:
    body = headers.pop("body", None)
    connection = ProxiedConnection(gateway.port, source)
    try:
        connection.request(method, path, body=body, headers={"Authorization": basic_auth(), **headers})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_proxy_protocol_without_trusted_proxies_refuses_to_start(tmp_path: Path) -> None:
    gateway = Gateway(tmp_path / "data", env={"OCIGATE_PROXY_PROTOCOL": "true"})
    with pytest.raises(RuntimeError, match="exited early"):
        gateway.start(ready=Gateway.serving)
    assert "OCIGATE_PROXY_PROTOCOL is on but OCIGATE_TRUSTED_PROXIES is empty" in gateway.log()


def test_a_proxy_header_from_an_untrusted_peer_is_refused(tmp_path: Path) -> None:
    env = {"OCIGATE_PROXY_PROTOCOL": "true", "OCIGATE_TRUSTED_PROXIES": "192.0.2.250/32"}
    gateway = Gateway(tmp_path / "data", env=env).start(ready=Gateway.serving)
    try:
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
            request = f"GET /v2/ HTTP/1.1\r\nHost: x\r\nAuthorization: {basic_auth()}\r\n\r\n"
            try:
                sock.sendall(proxy_v1(INSIDE) + request.encode())
                answer = sock.recv(64)
            except ConnectionResetError:
                answer = b""
        assert answer == b""  # closed: no HTTP answer at all
        assert "not a trusted proxy" in gateway.log()
    finally:
        gateway.stop()


def test_a_trusted_proxy_header_names_the_client_for_the_allow_list(tmp_path: Path) -> None:
    env = {"OCIGATE_PROXY_PROTOCOL": "true", "OCIGATE_TRUSTED_PROXIES": "127.0.0.1/32"}
    gateway = Gateway(tmp_path / "data", env=env).start(ready=Gateway.serving)
    try:
        name = unique_registry()
        document = {"name": name, "location": "local", "apiSubnetAllowList": ["10.0.0.0/8"]}
        status, _ = proxied(
            gateway,
            INSIDE,
            "POST",
            "/api/registries",
            body=orjson.dumps(document).decode(),
            **{"Content-Type": "application/json"},
        )
        assert status == 201
        host = f"{name}.{DOMAIN}:{gateway.port}"
        deadline = time.monotonic() + 10
        while (status := proxied(gateway, INSIDE, "GET", "/v2/", Host=host)[0]) == 404:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert status == 200
        assert proxied(gateway, OUTSIDE, "GET", "/v2/", Host=host)[0] == 403
        # a forwarded-for header does not override the PROXY header (the client is not a proxy)
        assert proxied(gateway, OUTSIDE, "GET", "/v2/", Host=host, **{"X-Forwarded-For": INSIDE})[0] == 403
    finally:
        gateway.stop()
