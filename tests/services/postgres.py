"""A throwaway PostgreSQL (Debian's `postgresql` package) on a free loopback port.

The cluster lives in a temp dir owned by the `postgres` OS user when the tests run as root
(postgres refuses to run as root). It runs with fsync off: it is thrown away at the end. Its
default collation is ICU en-US, as many production databases are, so that the engine's
bytewise `COLLATE "C"` for tags and repositories is really exercised.
"""

from __future__ import annotations

import asyncio
import glob
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.harness.processes import free_port, kill, stop

_INSTALL_HINT = "run tests/services/install.sh (or tests/run) to install Debian's postgresql package"


def _bindir() -> Path:
    """Debian keeps the server binaries off PATH, under /usr/lib/postgresql/<major>/bin."""
    found = [Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin") if Path(p, "initdb").exists()]
    if found:
        return max(found, key=lambda p: int(p.parent.name))
    initdb = shutil.which("initdb")
    if initdb is None:
        pytest.fail(f"PostgreSQL server binaries (initdb, postgres) are not installed: {_INSTALL_HINT}")
    return Path(initdb).parent


def _run(statement: str, url: str) -> None:
    """One statement on its own connection, from a thread: callers may be inside a running loop."""

    async def run() -> None:
        connection = await asyncpg.connect(url, timeout=10)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, run()).result()


class PostgresServer:
    def __init__(self) -> None:
        started = time.monotonic()
        self._bindir = bindir = _bindir()
        self.workdir = Path(tempfile.mkdtemp(prefix="ocigate-pg-"))
        self._user: dict[str, Any] = {}
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                pytest.fail(f"no `postgres` OS user to run PostgreSQL as: {_INSTALL_HINT}")
            os.chown(self.workdir, account.pw_uid, account.pw_gid)
            self._user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        initdb = subprocess.run(
            [
                bindir / "initdb",
                *("-D", self.workdir / "data", "-U", "postgres"),
                *("--auth=trust", "--encoding=UTF8", "--no-sync"),
                *("--locale=C.UTF-8", "--locale-provider=icu", "--icu-locale=en-US"),
            ],
            capture_output=True,
            text=True,
            check=False,
            **self._user,
        )
        if initdb.returncode != 0:
            shutil.rmtree(self.workdir, ignore_errors=True)
            pytest.fail(f"initdb failed:\n{initdb.stdout}{initdb.stderr}")
        self.port = free_port()
        self.log_path = self.workdir / "postgres.log"
        self.start()
        self.url = self.url_of("postgres")
        self._names = itertools.count()
        self.start_seconds = time.monotonic() - started

    def start(self) -> None:
        """Start the server (again, after `halt`: same port, same data)."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    self._bindir / "postgres",
                    "-D",
                    self.workdir / "data",
                    "-p",
                    str(self.port),
                    *("-c", "listen_addresses=127.0.0.1"),
                    *("-c", f"unix_socket_directories={self.workdir}"),
                    *("-c", "fsync=off"),
                    *("-c", "synchronous_commit=off"),
                    *("-c", "full_page_writes=off"),
                    *("-c", "max_connections=300"),
                    *("-c", "shared_buffers=32MB"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                **self._user,
            )
        self._wait()

    def url_of(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _wait(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.process.poll() is None:
            ready = subprocess.run(
                [self._bindir / "pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port)], check=False
            )
            if ready.returncode == 0:
                return
            time.sleep(0.02)
        self.stop()
        pytest.fail(f"PostgreSQL did not start on port {self.port}:\n{self.log()}")

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        name = f"test_{next(self._names)}"
        # FILE_COPY: with fsync off, copying the template's files beats WAL-logging them
        _run(f"CREATE DATABASE {name} STRATEGY FILE_COPY", self.url)
        return self.url_of(name)

    def drop_database(self, url: str) -> None:
        _run(f"DROP DATABASE IF EXISTS {url.rpartition('/')[2]} WITH (FORCE)", self.url)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def halt(self) -> None:
        """Stop the server, keeping its data: fast shutdown (SIGINT), which disconnects clients
        at once, as a database going away does."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                kill(self.process)

    def stop(self) -> None:
        stop(self.process, grace=15)  # SIGTERM: "smart" shutdown; our clients are gone by now
        shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database for one test."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)
