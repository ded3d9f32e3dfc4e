"""`ocigate healthcheck` (the image's HEALTHCHECK) against real listeners."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from tests import servers
from tests.servers import Gateway, free_port


def healthcheck(listen: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ocigate.gateway.cli", "healthcheck"],
        env={**os.environ, "OCIGATE_LISTEN": listen, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def failing_server() -> Iterator[int]:
    """A server whose /healthz answers 503 (as a proxy in front of a dead backend might)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(503 if self.path == "/healthz" else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_live_server_listening_on_all_addresses_is_healthy(gateway: Gateway) -> None:
    result = healthcheck(f"0.0.0.0:{gateway.port}")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_nothing_listening_is_unhealthy() -> None:
    result = healthcheck(f"127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert "refused" in result.stderr.lower()


def test_an_error_status_is_unhealthy(failing_server: int) -> None:
    result = healthcheck(f"127.0.0.1:{failing_server}")
    assert result.returncode == 1
    assert "/healthz answered 503" in result.stderr


class _Answered:
    status_code = 200


def _get_as_a_balancer_would(url: str, **kwargs: object) -> _Answered:
    """Gateway.start's readiness probe, opening with a load balancer's own PROXY header."""
    port = int(url.split(":")[2].split("/")[0])
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PROXY UNKNOWN\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            if sock.recv(64).startswith(b"HTTP/1.1 200"):
                return _Answered()
    except OSError:
        pass
    raise requests.ConnectionError(url)


def test_behind_a_proxy_protocol_balancer_it_sends_the_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(servers.requests, "get", _get_as_a_balancer_would)
    balancer = {"OCIGATE_PROXY_PROTOCOL": "on", "OCIGATE_TRUSTED_PROXIES": "127.0.0.1"}
    gateway = Gateway(tmp_path / "data", env=balancer).start()
    try:
        listen = f"0.0.0.0:{gateway.port}"
        result = healthcheck(listen, **balancer)
        assert result.returncode == 0, result.stderr
        bare = healthcheck(listen)  # the gateway closes a connection without the header
        assert bare.returncode == 1
        assert "closed connection" in bare.stderr
    finally:
        gateway.stop()
