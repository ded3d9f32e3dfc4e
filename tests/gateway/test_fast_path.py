"""`/v2/` requests skip aiohttp's router (gateway/fast_path.py): what the router's route did
for them must still happen. `Expect` is the route's to answer, and the one thing the fast path
hands back to the full dispatch."""

from __future__ import annotations

import hashlib
import socket

from tests.gateway.raw_http import read_response, read_response_head
from tests.servers import Gateway, basic_auth

AUTH = basic_auth()


def _connect(gateway: Gateway) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def test_expect_continue_is_answered_before_the_body(gateway: Gateway, repository: str) -> None:
    body = b"a blob sent only once the server says 100 Continue"
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    with _connect(gateway) as sock:
        sock.sendall(
            f"POST /v2/{repository}/blobs/uploads/?digest={digest} HTTP/1.1\r\n"
            f"Host: 127.0.0.1\r\nAuthorization: {AUTH}\r\nContent-Length: {len(body)}\r\n"
            "Content-Type: application/octet-stream\r\nExpect: 100-continue\r\n\r\n".encode()
        )
        status, _, rest = read_response_head(sock)  # nothing of the body sent yet
        assert (status, rest) == (100, b"")
        sock.sendall(body)
        status, headers, _ = read_response(sock)
        assert status == 201, headers
        assert headers["docker-content-digest"] == digest
        assert headers["x-request-id"]  # the middlewares ran on this path too
        sock.sendall(
            f"HEAD /v2/{repository}/blobs/{digest} HTTP/1.1\r\n"
            f"Host: 127.0.0.1\r\nAuthorization: {AUTH}\r\n\r\n".encode()
        )
        status, headers, _ = read_response_head(sock)
        assert (status, headers["content-length"]) == (200, str(len(body)))


def test_an_unknown_expectation_is_refused(gateway: Gateway, repository: str) -> None:
    with _connect(gateway) as sock:
        sock.sendall(
            f"POST /v2/{repository}/blobs/uploads/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {AUTH}\r\n"
            "Content-Length: 0\r\nExpect: something-else\r\n\r\n".encode()
        )
        status, _, _ = read_response(sock)
        assert status == 417


def test_paths_the_router_decodes_to_v2_are_still_v2(gateway: Gateway) -> None:
    """`/%762/` is `/v2/` once decoded: the router sent it to the API, and still does."""
    with _connect(gateway) as sock:
        for path in ("/v2", "/v2/", "/%762/", "/v2?x=1"):
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {AUTH}\r\n\r\n".encode())
            status, headers, _ = read_response(sock)
            assert status == 200, path
            assert headers["docker-distribution-api-version"] == "registry/2.0", path
        sock.sendall(f"GET /v2x HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {AUTH}\r\n\r\n".encode())
        status, headers, body = read_response(sock)
        assert status == 404
        assert b"UNSUPPORTED" in body
        assert headers["x-request-id"]
