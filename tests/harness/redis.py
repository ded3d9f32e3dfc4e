"""A throwaway redis-server on a free loopback port."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

from .processes import ServiceError, free_port, stop, wait_until

INSTALL_HINT = "run tests/services/install.sh (or tests/run)"


def answers_ping(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")


class RedisProcess:
    """`persistent`: data kept in an append-only file, so a restart (`stop`, `start`) finds the
    entries it had, as a Redis with persistence or one that was only unreachable would."""

    def __init__(self, workdir: Path, *, persistent: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServiceError(f"redis-server is not installed: {INSTALL_HINT}")
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "redis.log"
        self._argv = [
            binary,
            *("--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--dir", str(workdir)),
            *("--appendonly", "yes" if persistent else "no"),
        ]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self._argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: answers_ping(self.port), 10, f"redis-server on port {self.port}", self.process)
        except ServiceError:
            self.stop()
            raise

    def stop(self) -> None:
        stop(self.process)
