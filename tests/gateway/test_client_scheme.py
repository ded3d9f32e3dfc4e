"""The scheme the client used, for the token realm and the console cookie: https over the
gateway's own TLS; behind a proxy that terminates TLS, what a trusted proxy says (the
`X-Forwarded-Proto` the nearest one added, or the PROXY v2 header's SSL TLV), never what a client
says. A realm that said http there would have docker send the user's password in the clear."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.gateway.raw_http import read_response, read_response_head
from tests.harness.tls import PrivateCA
from tests.limiter.probes import proxy_v2, ssl_tlv
from tests.servers import ADMIN_PASSWORD, ADMIN_USER, Gateway

HOST = "registry.example"
HTTPS, HTTP = f"https://{HOST}/token", f"http://{HOST}/token"
PROXY, CLIENT = "127.0.0.1", "127.0.0.2"  # loopback: the trusted proxy, and a client that is not
OUTSIDE = "198.51.100.4"  # a client a PROXY header names
Headers = list[tuple[str, str]]


def exchange(gateway: Gateway, request: str, source: str = PROXY, proxy_header: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=30, source_address=(source, 0))
    sock.sendall(proxy_header + request.encode())
    return sock


def lines(headers: Headers) -> str:
    return "".join(f"{name}: {value}\r\n" for name, value in headers)


def realm(gateway: Gateway, headers: Headers, source: str = PROXY, proxy_header: bytes = b"") -> str:
    """The realm of the challenge an anonymous `GET /v2/` gets, as docker reads it."""
    request = f"GET /v2/ HTTP/1.1\r\nHost: {HOST}\r\n{lines(headers)}Connection: close\r\n\r\n"
    with exchange(gateway, request, source, proxy_header) as sock:
        status, head, _ = read_response_head(sock)
    assert status == 401
    found = re.match(r'Bearer realm="([^"]*)",', head["www-authenticate"])
    assert found is not None, head["www-authenticate"]
    return found.group(1)


def forwarded_proto(value: str) -> Headers:
    return [("X-Forwarded-Proto", value)]


@pytest.fixture(scope="module", params=["limits off", "limits on"])
def behind_proxy(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """A gateway behind a trusted proxy on 127.0.0.1; with limits on, the connection gate works
    out the client, with them off the app does."""
    env = {"OCIGATE_TRUSTED_PROXIES": f"{PROXY}/32"}
    if request.param == "limits on":
        env |= {"OCIGATE_LIMIT_RPS": "1000", "OCIGATE_LIMIT_CONNECTIONS": "100"}
    gateway = Gateway(tmp_path_factory.mktemp("scheme") / "data", env=env).start()
    yield gateway
    gateway.stop()


def test_a_trusted_proxys_forwarded_proto_sets_the_realm(behind_proxy: Gateway) -> None:
    assert realm(behind_proxy, []) == HTTP
    assert realm(behind_proxy, forwarded_proto("https")) == HTTPS
    assert realm(behind_proxy, forwarded_proto("HTTPS")) == HTTPS
    assert realm(behind_proxy, forwarded_proto("http")) == HTTP
    # read from the right, as X-Forwarded-For: the value the nearest proxy added
    assert realm(behind_proxy, forwarded_proto("http, https")) == HTTPS
    assert realm(behind_proxy, forwarded_proto("https,http")) == HTTP
    assert realm(behind_proxy, [("X-Forwarded-Proto", "http"), ("X-Forwarded-Proto", "https")]) == HTTPS
    assert realm(behind_proxy, [("X-Forwarded-Proto", "https"), ("X-Forwarded-Proto", "http")]) == HTTP


@pytest.mark.parametrize(
    "junk", ["javascript", "ftp", "https://attacker.example", "https;x", '"https"', "wss", "", "https http"]
)
def test_a_forwarded_proto_other_than_http_or_https_is_ignored(behind_proxy: Gateway, junk: str) -> None:
    assert realm(behind_proxy, forwarded_proto("https")) == HTTPS  # the header is read...
    assert realm(behind_proxy, forwarded_proto(junk)) == HTTP  # ...and this one is not
    assert realm(behind_proxy, forwarded_proto(f"https, {junk}")) == HTTP  # nor left of it


def test_a_client_that_is_not_a_trusted_proxy_cannot_choose_the_realms_scheme(behind_proxy: Gateway) -> None:
    assert realm(behind_proxy, forwarded_proto("https"), source=PROXY) == HTTPS
    assert realm(behind_proxy, forwarded_proto("https"), source=CLIENT) == HTTP
    # nor through X-Forwarded-For naming the trusted proxy
    spoof = [("X-Forwarded-For", PROXY), ("X-Forwarded-Proto", "https")]
    assert realm(behind_proxy, spoof, source=CLIENT) == HTTP


def sign_in(gateway: Gateway, headers: Headers, source: str) -> list[str]:
    """The attributes of the session cookie a console sign-in gets."""
    body = f'{{"username": "{ADMIN_USER}", "password": "{ADMIN_PASSWORD}"}}'
    head = [("Content-Type", "application/json"), ("X-Requested-With", "XMLHttpRequest"), *headers]
    request = (
        f"POST /api/sessions HTTP/1.1\r\nHost: {HOST}\r\n{lines(head)}"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}"
    )
    with exchange(gateway, request, source) as sock:
        status, response, _ = read_response(sock)
    assert status == 201
    return [part.strip() for part in response["set-cookie"].split(";")[1:]]


def test_the_console_cookie_is_secure_when_a_trusted_proxy_took_the_client_over_tls(
    behind_proxy: Gateway,
) -> None:
    assert "Secure" in sign_in(behind_proxy, forwarded_proto("https"), PROXY)
    assert "Secure" not in sign_in(behind_proxy, forwarded_proto("http"), PROXY)
    assert "Secure" not in sign_in(behind_proxy, forwarded_proto("https"), CLIENT)


# --- PROXY protocol ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def balanced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway behind a TCP load balancer on 127.0.0.1 (PROXY protocol)."""
    env = {"OCIGATE_PROXY_PROTOCOL": "true", "OCIGATE_TRUSTED_PROXIES": f"{PROXY}/32"}
    gateway = Gateway(tmp_path_factory.mktemp("balanced") / "data", env=env).start(ready=Gateway.serving)
    yield gateway
    gateway.stop()


def test_the_proxy_headers_ssl_tlv_sets_the_realm(balanced: Gateway) -> None:
    assert realm(balanced, [], proxy_header=proxy_v2(OUTSIDE, tlv=ssl_tlv(0x01))) == HTTPS
    assert realm(balanced, [], proxy_header=proxy_v2(OUTSIDE)) == HTTP
    assert realm(balanced, [], proxy_header=proxy_v2(OUTSIDE, tlv=ssl_tlv(0x00))) == HTTP
    # the client a PROXY header names is not a proxy: its own header changes nothing either way
    assert realm(balanced, forwarded_proto("http"), proxy_header=proxy_v2(OUTSIDE, tlv=ssl_tlv())) == HTTPS
    assert realm(balanced, forwarded_proto("https"), proxy_header=proxy_v2(OUTSIDE)) == HTTP


def test_behind_the_balancer_a_trusted_proxys_forwarded_proto_comes_first(balanced: Gateway) -> None:
    """client → proxy on 127.0.0.1 (adds X-Forwarded-Proto) → balancer → gateway: the proxy saw
    the client; junk from it leaves the TLV's word."""
    assert realm(balanced, forwarded_proto("https"), proxy_header=proxy_v2(PROXY)) == HTTPS
    assert realm(balanced, forwarded_proto("http"), proxy_header=proxy_v2(PROXY, tlv=ssl_tlv())) == HTTP
    assert (
        realm(balanced, forwarded_proto("javascript"), proxy_header=proxy_v2(PROXY, tlv=ssl_tlv())) == HTTPS
    )


def header_errors(gateway: Gateway) -> int:
    """`ocigate_limiter_proxy_header_errors_total`, asked as the balancer's own checks ask (LOCAL)."""
    request = "GET /metrics HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n"
    with exchange(gateway, request, proxy_header=proxy_v2(PROXY, command=0)) as sock:
        status, _, body = read_response(sock)
    assert status == 200
    found = re.search(rb"^ocigate_limiter_proxy_header_errors_total ([0-9.]+)$", body, re.MULTILINE)
    assert found is not None, body
    return int(float(found.group(1)))


def test_a_malformed_ssl_tlv_closes_the_connection(balanced: Gateway) -> None:
    before = header_errors(balanced)
    request = f"GET /v2/ HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"
    short_ssl_tlv = b"\x20\x00\x02\x01\x00"  # no room for its verify word
    with exchange(balanced, request, proxy_header=proxy_v2(OUTSIDE, tlv=short_ssl_tlv)) as sock:
        try:
            answer = sock.recv(64)
        except ConnectionResetError:
            answer = b""
    assert answer == b""  # closed: no HTTP answer at all
    assert header_errors(balanced) == before + 1


# --- the gateway's own TLS -----------------------------------------------------------------------


def test_the_gateways_own_tls_is_never_downgraded(tmp_path: Path) -> None:
    """(A guard: the old code had this right, and the proxies' words must not undo it.)"""
    ca = PrivateCA(tmp_path / "ca")
    (tmp_path / "tls").mkdir()
    files = ca.issue(["localhost", "127.0.0.1"], serial=1001, into=tmp_path / "tls")
    env = {
        "OCIGATE_TLS_CERT": str(files.cert),
        "OCIGATE_TLS_KEY": str(files.key),
        "OCIGATE_TRUSTED_PROXIES": f"{PROXY}/32",
    }
    gateway = Gateway(tmp_path / "data", env=env).start(ready=Gateway.serving)
    try:
        for value in ("http", "https", "javascript"):
            response = requests.get(
                f"https://localhost:{gateway.port}/v2/",
                headers={"Host": HOST, "X-Forwarded-Proto": value},
                verify=str(ca.ca_file),
                timeout=30,
            )
            assert response.status_code == 401
            assert response.headers["WWW-Authenticate"].startswith(f'Bearer realm="{HTTPS}",')
    finally:
        gateway.stop()
