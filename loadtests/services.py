"""Start what a load test runs against: Redis and ocigate gateways on loopback, free ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# limiter settings the limiter benchmarks compare: limits on but never reached, and limits off
HIGH = {
    "OCIGATE_LIMIT_RPS": "1000000",
    "OCIGATE_LIMIT_BURST": "1000000",
    "OCIGATE_LIMIT_CONNECTIONS": "100000",
}
OFF = {"OCIGATE_LIMIT_RPS": "0", "OCIGATE_LIMIT_CONNECTIONS": "0"}


# `python -c` program serving from the checkout in argv[1] (the package maps the repository's
# folders to `ocigate.*`; a checkout that is not installed gets the same mapping here)
_SERVE_FROM = (
    "import sys, types; root = sys.argv.pop(1); package = types.ModuleType('ocigate'); "
    "package.__path__ = [root]; sys.modules['ocigate'] = package; "
    "from ocigate.gateway.cli import main; sys.exit(main(sys.argv[1:]))"
)


def serve_argv(source: Path = REPO_ROOT) -> list[str]:
    """The command line of `ocigate serve` running the code of checkout `source`."""
    return [sys.executable, "-c", _SERVE_FROM, str(source), "serve"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Process:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                self.argv, env=self.env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        return self

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


@dataclass
class Gateway(Process):
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 30) -> Gateway:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.popen is not None
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer in {timeout} s")


@dataclass
class Services:
    workdir: Path
    processes: list[Process] = field(default_factory=list)

    def redis(self) -> str:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed (bash tests/services/install.sh)")
        port = free_port()
        argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        process = Process("redis", argv, dict(os.environ), self.workdir / "redis.log").start()
        self.processes.append(process)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return f"redis://127.0.0.1:{port}/0"
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def gateway(
        self, name: str, env: dict[str, str], data_dir: Path | None = None, source: Path = REPO_ROOT
    ) -> Gateway:
        port = free_port()
        data_dir = data_dir or self.workdir / f"{name}-data"
        full_env = {
            **os.environ,
            "OCIGATE_LISTEN": f"127.0.0.1:{port}",
            "OCIGATE_DATA_DIR": str(data_dir),
            "OCIGATE_LOG_LEVEL": "warning",
            "OCIGATE_AUTH": "none",  # the load tests measure the registry and the limiter, not logins
            **env,
        }
        gateway = Gateway(name, serve_argv(source), full_env, self.workdir / f"{name}.log", port=port)
        self.processes.append(gateway.start())
        return gateway.wait_ready()

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
