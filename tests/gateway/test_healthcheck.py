"""`ocigate healthcheck` (the image's HEALTHCHECK) against real listeners."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.servers import Gateway, free_port


def healthcheck(listen: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ocigate.gateway.cli", "healthcheck"],
        env={**os.environ, "OCIGATE_LISTEN": listen},
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
