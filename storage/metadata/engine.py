"""SQL engines: the little that differs between SQLite and PostgreSQL.

Statements are written once with `?` placeholders; an engine rewrites them if its driver
wants another style. Migration scripts use `{serial}`, `{bytes}` and `{text_sorted}` for the
few column types that have no portable spelling (`text_sorted` must compare bytewise, since
the OCI spec wants tags and repositories listed in lexical order).
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from importlib import resources
from typing import Any

from ..health import StoreHealth
from ..stats import Timings

WHILE_DOWN = "requests that need metadata get 503 until it answers"

Row = tuple[Any, ...]
READ, WRITE = ("read",), ("write",)  # statement durations are kept by these keys

_MIGRATION_NAME = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")


class ReferenceMissing(Exception):
    """A statement named a row that is not there (a foreign key failed): e.g. a manifest whose
    blob link the garbage collector removed meanwhile. Its transaction is rolled back."""


class Transaction(ABC):
    @abstractmethod
    async def execute(self, sql: str, *args: Any) -> int:
        """Run a statement; returns the number of rows it changed."""

    @abstractmethod
    async def fetchone(self, sql: str, *args: Any) -> Row | None: ...

    @abstractmethod
    async def fetchall(self, sql: str, *args: Any) -> list[Row]: ...


class SqlEngine(Transaction):
    """Statements outside `transaction()` run on their own (autocommit). A database that cannot
    be reached, or is full, raises StorageUnavailable or StorageFull (the domain's 503 and 507),
    and its outages are logged and counted in `health`."""

    column_types: dict[str, str]
    health: StoreHealth
    timings: Timings  # statement durations (READ, WRITE), for /metrics; failures are in `health`

    @abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[Transaction]: ...

    @abstractmethod
    async def _migration_lock(self) -> AbstractAsyncContextManager[Transaction]:
        """A transaction that also keeps other processes from migrating at the same time."""

    @abstractmethod
    def try_lock(self, name: str) -> AbstractAsyncContextManager[bool]:
        """Hold the lock `name` for the block (True), or False at once if another process holds
        it. A process that dies loses it at once (PostgreSQL: with its session; SQLite: with its
        descriptors, storage/metadata/host_locks.py)."""

    @abstractmethod
    async def close(self) -> None: ...

    def _with_column_types(self, script: str) -> str:
        for token, column_type in self.column_types.items():
            script = script.replace("{" + token + "}", column_type)
        return script

    async def migrate(self) -> int:
        """Apply pending migrations in order; returns the schema version."""
        scripts = sorted(_migration_scripts())
        async with await self._migration_lock() as tx:
            await tx.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)"
            )
            applied = {row[0] for row in await tx.fetchall("SELECT version FROM schema_migrations")}
            version = max(applied, default=0)
            for number, text in scripts:
                if number in applied:
                    continue
                for statement in _statements(self._with_column_types(text)):
                    await tx.execute(statement)
                await tx.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                    number,
                    int(time.time()),
                )
                version = number
            return version


def _migration_scripts() -> list[tuple[int, str]]:
    found = []
    for entry in resources.files("ocigate.storage.metadata").joinpath("migrations").iterdir():
        match = _MIGRATION_NAME.fullmatch(entry.name)
        if match:
            found.append((int(match.group(1)), entry.read_text("utf-8")))
    return found


def _statements(script: str) -> Sequence[str]:
    without_comments = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in without_comments.split(";") if s.strip()]
