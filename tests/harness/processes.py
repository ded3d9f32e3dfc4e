"""Child processes on loopback: free ports, waiting for readiness, stopping by PID."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable


class ServiceError(RuntimeError):
    """A service could not be started (missing, exited, or not ready in time): says why."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_status(url: str, timeout: float = 1.0) -> int:
    """The status a GET of `url` gets (OSError while nothing answers)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def wait_until(
    ready: Callable[[], bool],
    seconds: float,
    what: str,
    process: subprocess.Popen[bytes] | None = None,
    interval: float = 0.05,
) -> None:
    """Until `ready()` is true; `ServiceError` when `process` exits first or time runs out.
    `ready` may raise OSError (nothing listens yet): that counts as not ready."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ServiceError(f"{what} exited at start (status {process.returncode})")
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(interval)
    raise ServiceError(f"{what} was not ready in {seconds:g} s")


def stop(process: subprocess.Popen[bytes] | None, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `grace` seconds; reaped either way."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        kill(process)


def kill(process: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL, as a crash would; reaped."""
    if process is not None and process.poll() is None:
        process.kill()
        process.wait(10)
