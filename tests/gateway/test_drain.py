"""SIGTERM drains (OCIGATE_DRAIN_DELAY / OCIGATE_DRAIN_TIMEOUT): /readyz answers 503 at once,
the listener accepts until the delay is over, the request in flight finishes, idle keep-alive
connections are closed, and the process exits 0 (with --workers too)."""

from __future__ import annotations

import hashlib
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.harness.processes import wait_until
from tests.servers import Gateway, basic_auth


def start(tmp_path: Path, delay: str, timeout: str = "30", workers: str = "1") -> Gateway:
    env = {"OCIGATE_DRAIN_DELAY": delay, "OCIGATE_DRAIN_TIMEOUT": timeout, "OCIGATE_WORKERS": workers}
    gateway = Gateway(tmp_path / "data", env=env).start()
    if workers != "1":
        wait_until(lambda: gateway.log().count("serving on") == int(workers), 30, "the workers")
    return gateway


def readyz(gateway: Gateway) -> int:
    return requests.get(f"{gateway.url}/readyz", timeout=10).status_code


def refused(gateway: Gateway) -> bool:
    try:
        socket.create_connection(("127.0.0.1", gateway.port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def head_of(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a response: {data!r}"
        data += chunk
    return data


_opened: list[socket.socket] = []


@pytest.fixture(autouse=True)
def _close_sockets() -> Iterator[None]:
    yield
    while _opened:
        _opened.pop().close()


def send(gateway: Gateway, request: str, body: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=30)
    _opened.append(sock)
    sock.sendall(request.encode() + body)
    return sock


def wait_exit(gateway: Gateway, seconds: float = 60) -> int:
    assert gateway.process is not None
    try:
        return gateway.process.wait(seconds)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {seconds} s after SIGTERM:\n{gateway.log()[-3000:]}")


def test_sigterm_finishes_the_upload_in_flight_and_closes_idle_connections(tmp_path: Path) -> None:
    gateway = start(tmp_path, delay="2")
    try:
        auth = basic_auth()
        idle = send(gateway, f"GET /v2/ HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\r\n")
        assert b" 200 " in head_of(idle).split(b"\r\n")[0]  # and the connection stays open

        posted = send(
            gateway, f"POST /v2/drain/it/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\r\n"
        )
        head = head_of(posted).decode()
        posted.close()
        location = next(
            line.split(": ", 1)[1] for line in head.split("\r\n") if line.lower().startswith("location")
        )
        blob = bytes(range(256)) * 8192  # 2 MiB
        patch = send(
            gateway,
            f"PATCH {location} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {len(blob)}\r\n\r\n",
            blob[:1000],
        )

        assert gateway.process is not None
        gateway.process.send_signal(signal.SIGTERM)
        wait_until(lambda: readyz(gateway) == 503, 10, "/readyz answering 503")
        during = send(gateway, f"GET /v2/ HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\r\n")
        answer = head_of(during).lower()
        assert b" 200 " in answer.split(b"\r\n")[0]
        assert b"connection: close" in answer  # a client reconnecting lands on another replica
        assert during.recv(1) == b""
        assert idle.recv(1) == b""  # closed between requests, not in the middle of one

        wait_until(lambda: refused(gateway), 20, "the listener closing after the delay")
        patch.sendall(blob[1000:])  # the upload admitted before goes on to the end
        answer = head_of(patch).split(b"\r\n")[0]
        assert b" 202 " in answer, answer
        assert patch.recv(1) == b""
        assert wait_exit(gateway) == 0
        assert "drained in" in gateway.log()
    finally:
        gateway.stop()
    # the bytes are all there: the upload can be finished on another replica (same store)
    gateway = Gateway(tmp_path / "data").start()
    try:
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        done = requests.put(
            f"{gateway.url}{location}",
            params={"digest": digest},
            headers={"Authorization": basic_auth()},
            timeout=30,
        )
        assert done.status_code == 201, done.text
    finally:
        gateway.stop()


def test_the_drain_timeout_cuts_what_is_left_and_exits_0(tmp_path: Path) -> None:
    gateway = start(tmp_path, delay="0", timeout="1")
    auth = basic_auth()
    posted = send(
        gateway, f"POST /v2/drain/cut/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\r\n"
    )
    head = head_of(posted).decode()
    location = next(
        line.split(": ", 1)[1] for line in head.split("\r\n") if line.lower().startswith("location")
    )
    stalled = send(
        gateway,
        f"PATCH {location} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Length: 1000\r\n\r\n",
        b"x" * 10,
    )
    assert gateway.process is not None
    gateway.process.send_signal(signal.SIGTERM)
    assert wait_exit(gateway) == 0
    assert "drain timeout (1 s): cutting 1 connections still busy" in gateway.log()
    assert stalled.recv(1) == b""


def test_workers_drain_together(tmp_path: Path) -> None:
    gateway = start(tmp_path, delay="1", workers="2")
    assert gateway.process is not None
    gateway.process.send_signal(signal.SIGTERM)
    wait_until(lambda: readyz(gateway) == 503, 10, "/readyz answering 503")
    assert wait_exit(gateway) == 0
    assert gateway.log().count("drained in") == 2
