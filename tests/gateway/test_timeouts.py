"""Clients that send slowly or not at all (issue 16 D): request headers, request bodies and idle
keep-alive connections each time out, a declared body over the limit is answered at once with
413, and a slow client that keeps sending still gets its upload through (idle timeouts, not
total ones). Deadlines are generous: a timeout of 1 s must act well within 30 s."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway.raw_http import read_response
from tests.registry_client import RegistryClient
from tests.servers import Gateway, basic_auth

DEADLINE = 30.0


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """Header and body timeouts of 1 s; keep-alive long, so that it closes nothing here."""
    env = {"OCIGATE_HEADER_TIMEOUT": "1", "OCIGATE_BODY_TIMEOUT": "1", "OCIGATE_KEEPALIVE_TIMEOUT": "600"}
    gateway = Gateway(tmp_path_factory.mktemp("strict") / "data", env=env).start()
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def brief_keepalive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    env = {"OCIGATE_KEEPALIVE_TIMEOUT": "1", "OCIGATE_HEADER_TIMEOUT": "600"}
    gateway = Gateway(tmp_path_factory.mktemp("keepalive") / "data", env=env).start()
    yield gateway
    gateway.stop()


def connect(gateway: Gateway) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=DEADLINE)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def closed_by_server(sock: socket.socket, trickle: bytes = b"", interval: float = 0.3) -> bool:
    """Whether the server closes the connection within DEADLINE while `trickle` goes out a byte
    every `interval` (or nothing, if empty). Whatever the server answered first is skipped."""
    sock.settimeout(interval)
    deadline = time.monotonic() + DEADLINE
    position = 0
    while time.monotonic() < deadline:
        try:
            if not sock.recv(65536):
                return True
        except TimeoutError:
            pass
        except ConnectionResetError:
            return True
        if position < len(trickle):
            try:
                sock.sendall(trickle[position : position + 1])
            except (BrokenPipeError, ConnectionResetError):
                return True
            position += 1
    return False


def request_head(method: str, path: str, **headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: x", f"Authorization: {basic_auth()}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_headers_that_trickle_in_are_cut_off(strict: Gateway) -> None:
    with connect(strict) as sock:
        sock.sendall(b"GET /v2/ HTTP/1.1\r\n")
        assert closed_by_server(sock, trickle=b"X-Slow: " + b"a" * 200)


def test_a_prompt_request_on_the_same_server_is_served_and_kept(strict: Gateway) -> None:
    with connect(strict) as sock:
        for _ in range(3):  # requests in a row on one connection
            sock.sendall(request_head("GET", "/v2/"))
            status, headers, _ = read_response(sock)
            assert status == 200
            assert headers.get("connection", "").lower() != "close"


def test_an_idle_keep_alive_connection_is_closed(brief_keepalive: Gateway) -> None:
    with connect(brief_keepalive) as sock:
        sock.sendall(request_head("GET", "/v2/"))
        assert read_response(sock)[0] == 200
        assert closed_by_server(sock)


def test_a_body_that_stops_arriving_is_408_and_nothing_of_it_kept(strict: Gateway, repository: str) -> None:
    client = RegistryClient(strict.url)
    location = client.start_upload(repository)
    with connect(strict) as sock:
        sock.sendall(
            request_head("PATCH", location, Content_Length="100000", Content_Type="application/octet-stream")
        )
        sock.sendall(b"x" * 1000)  # then nothing
        sock.settimeout(DEADLINE)
        status, headers, body = read_response(sock)
    assert status == 408, body
    assert headers["connection"].lower() == "close"
    status_response = client.request("GET", location)
    assert status_response.status_code == 204
    assert status_response.headers["Range"] == "0-0"  # the session is where it was


def test_a_slow_client_that_keeps_sending_gets_its_upload_through(strict: Gateway, repository: str) -> None:
    client = RegistryClient(strict.url)
    location = client.start_upload(repository)
    content = os.urandom(12 * 1000)
    with connect(strict) as sock:
        sock.sendall(
            request_head(
                "PATCH", location, Content_Length=str(len(content)), Content_Type="application/octet-stream"
            )
        )
        for start in range(0, len(content), 1000):  # longer in all than the timeout, never idle as long
            time.sleep(0.4)
            sock.sendall(content[start : start + 1000])
        status, headers, body = read_response(sock)
    assert status == 202, body
    assert headers["range"] == f"0-{len(content) - 1}"


@pytest.mark.parametrize(
    ("method", "path", "length"),
    [
        ("POST", "/v2/{repository}/blobs/uploads/?digest=sha256:" + "0" * 64, "99999999999999"),
        ("PUT", "/v2/{repository}/manifests/latest", str(4 * 1024 * 1024 + 1)),
    ],
)
def test_a_declared_body_over_the_limit_is_413_at_once(
    strict: Gateway, repository: str, method: str, path: str, length: str
) -> None:
    with connect(strict) as sock:
        head = request_head(method, path.format(repository=repository), Content_Length=length)
        sock.sendall(head)  # and no body at all
        sock.settimeout(DEADLINE)
        status, _, body = read_response(sock)
    assert status == 413, body


def test_a_chunked_upload_past_the_limit_is_413(tmp_path: Path, repository: str) -> None:
    gateway = Gateway(tmp_path / "data", env={"OCIGATE_MAX_BLOB_SIZE": "100000"}).start()
    try:
        client = RegistryClient(gateway.url)
        location = client.start_upload(repository)
        response = client.request("PATCH", location, data=iter([b"y" * 60000] * 2))  # chunked encoding
        assert response.status_code == 413, response.text
        response = client.request("PATCH", location, data=b"y" * 60000)
        assert response.status_code == 202, response.text
        response = client.request("PATCH", location, data=b"y" * 60000)  # 120000 in all
        assert response.status_code == 413, response.text
    finally:
        gateway.stop()
