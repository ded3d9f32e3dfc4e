"""Start what a load test runs against: Redis and ocigate gateways on loopback, free ports."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # scripts run as `python loadtests/x.py`
    sys.path.insert(0, str(REPO_ROOT))

from tests.harness.processes import free_port, http_status, stop, wait_until  # noqa: E402
from tests.harness.redis import RedisProcess  # noqa: E402

__all__ = ["HIGH", "OFF", "REPO_ROOT", "Gateway", "Process", "Services", "free_port", "running", "serve_argv"]
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
        stop(self.popen, grace=15)


@dataclass
class Gateway(Process):
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 30) -> Gateway:
        try:
            wait_until(lambda: http_status(f"{self.url}/healthz") == 200, timeout, self.name, self.popen, 0.1)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}: {self.log_path.read_text()[-2000:]}") from None
        return self


class _Stoppable(Protocol):
    def stop(self) -> None: ...


@dataclass
class Services:
    workdir: Path
    processes: list[_Stoppable] = field(default_factory=list)

    def redis(self) -> str:
        """A fresh redis-server; its URL."""
        server = RedisProcess(self.workdir / "redis")
        self.processes.append(server)
        return server.url

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
            "OCIGATE_DRAIN_DELAY": "0",
            "OCIGATE_AUTH": "none",  # the load tests measure the registry and the limiter, not logins
            **env,
        }
        gateway = Gateway(name, serve_argv(source), full_env, self.workdir / f"{name}.log", port=port)
        self.processes.append(gateway.start())
        return gateway.wait_ready()

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


@contextlib.contextmanager
def running(prefix: str) -> Iterator[Services]:
    """Services in a temporary directory, all stopped (by PID) on the way out."""
    with tempfile.TemporaryDirectory(prefix=prefix) as workdir:
        services = Services(Path(workdir))
        try:
            yield services
        finally:
            services.stop()
