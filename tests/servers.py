"""Start real ocigate processes for tests: real sockets on loopback, free ports."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.harness.processes import free_port, kill, stop

__all__ = ["ADMIN_PASSWORD", "ADMIN_USER", "DOMAIN", "Gateway", "basic_auth", "free_port", "ocigate"]
DOMAIN = "ocigate.test"
# The account user every test gateway starts with (OCIGATE_ADMIN_PASSWORD).
ADMIN_USER = "admin"
ADMIN_PASSWORD = "test-admin-password"


def basic_auth(username: str = ADMIN_USER, password: str = ADMIN_PASSWORD) -> str:
    """An `Authorization` header value for raw-socket requests."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def ocigate(*args: str, data_dir: Path, env: Mapping[str, str] | None = None) -> str:
    """Run an `ocigate` CLI command against a data dir; returns its stdout."""
    result = subprocess.run(
        [sys.executable, "-m", "ocigate.gateway.cli", *args],
        env={**os.environ, "OCIGATE_DATA_DIR": str(data_dir), "OCIGATE_DOMAIN": DOMAIN, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"ocigate {' '.join(args)} failed: {result.stderr}")
    return result.stdout


@dataclass
class Gateway:
    """One `ocigate serve` process."""

    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def hostport(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, ready: Callable[[Gateway], bool] | None = None) -> Gateway:
        """Start and wait until `ready` (default: `GET /v2/` answers) or 30 s have passed."""
        self.port = self.port or free_port()
        self.log_path = self.data_dir.with_suffix(".log")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ocigate.gateway.cli", "serve"],
                env={
                    **os.environ,
                    "OCIGATE_LISTEN": self.hostport,
                    "OCIGATE_DATA_DIR": str(self.data_dir),
                    "OCIGATE_DOMAIN": DOMAIN,
                    # limits off unless a test asks (tests/limiter/ runs its own gateways)
                    "OCIGATE_LIMIT_RPS": "0",
                    "OCIGATE_LIMIT_CONNECTIONS": "0",
                    # failed logins counted but never throttled unless a test asks: every test
                    # comes from 127.0.0.1, and many try wrong passwords on purpose
                    "OCIGATE_LOGIN_FAILURES": "100000",
                    "OCIGATE_ADMIN_PASSWORD": ADMIN_PASSWORD,
                    # stop at once on SIGTERM (tests/gateway/test_drain.py asks for a delay)
                    "OCIGATE_DRAIN_DELAY": "0",
                    **self.env,
                },
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ocigate exited early:\n{self.log()}")
            if ready is not None:
                if ready(self):
                    return self
                time.sleep(0.05)
                continue
            try:
                if requests.get(f"{self.url}/v2/", timeout=1).status_code < 500:
                    return self
            except requests.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"ocigate did not answer in 30 s:\n{self.log()}")

    def serving(self) -> bool:
        """The process says it listens (for gateways a plain HTTP probe cannot reach)."""
        return "ocigate serving on" in self.log()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def kill(self) -> None:
        """kill -9, as a crash would."""
        kill(self.process)

    def stop(self) -> None:
        stop(self.process)
