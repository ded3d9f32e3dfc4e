"""PostgreSQL engine for scale-out: every replica holds a pool over one shared database.

Transactions run at READ COMMITTED, PostgreSQL's default, which is what the portable statements
in `sql.py` rely on for concurrent replicas: `INSERT … ON CONFLICT DO NOTHING` waits for a
concurrent inserter of the same key to commit and then does nothing, and the `SELECT` after it
(a new snapshot per statement) sees the row that won; `UPDATE … WHERE byte_offset = ?`
re-checks its condition on the row a concurrent writer committed, so the compare-and-set holds.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
from asyncpg import exceptions as pg
from asyncpg.pool import PoolConnectionProxy

from ..errors import StorageFull, StorageUnavailable
from ..health import StoreHealth
from ..stats import SPANS, Timings
from .engine import READ, WHILE_DOWN, WRITE, ReferenceMissing, Row, SqlEngine, Transaction

# pg_advisory_xact_lock key for migrations ("ocigate" in ASCII): one replica migrates, the
# others wait and then find nothing left to do
_MIGRATION_LOCK = 0x6F63696761746500
DEFAULT_POOL_SIZE = 10
CONNECT_TIMEOUT = 5.0  # a database that does not answer must turn into a 503, not a hung request
# the database is down, restarting, failing over, out of connections or resources: retry later
_UNAVAILABLE = (
    OSError,  # refused, reset, unreachable
    TimeoutError,
    pg.PostgresConnectionError,  # 08: the connection broke or was refused
    pg.OperatorInterventionError,  # 57: shutting down, starting up, cancelled
    pg.InsufficientResourcesError,  # 53: out of connections or memory
    pg.ReadOnlySQLTransactionError,  # a standby took over and is read-only for now
    pg.InterfaceError,  # e.g. "connection is closed" on a pooled connection it lost
    pg.InternalClientError,  # a pooled connection the server terminated between two uses
)

# string literals and quoted identifiers are skipped, so a `?` inside them stays as it is
_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\?")


@lru_cache(maxsize=1024)
def numbered(sql: str) -> str:
    """`?` placeholders → asyncpg's `$1, $2, …`; cached, since the statements are a fixed set."""
    count = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal count
        if match.group(0) != "?":
            return match.group(0)
        count += 1
        return f"${count}"

    return _PLACEHOLDER.sub(replace, sql)


def _changed(status: str) -> int:
    """Rows changed, from a command tag such as `INSERT 0 1`, `UPDATE 3` or `CREATE TABLE`."""
    last = status.rpartition(" ")[2]
    return int(last) if last.isdigit() else 0


class _Connection(Transaction):
    """Statements on one connection (in a transaction) or on the pool (each on its own)."""

    def __init__(
        self,
        connection: asyncpg.Connection | PoolConnectionProxy | asyncpg.Pool,
        health: StoreHealth,
        timings: Timings,
    ) -> None:
        self._connection = connection
        self._health = health
        self._timings = timings

    async def execute(self, sql: str, *args: Any) -> int:
        with _translated(self._health, self._timings, WRITE):
            return _changed(await self._connection.execute(numbered(sql), *args))

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        with _translated(self._health, self._timings, READ):
            row = await self._connection.fetchrow(numbered(sql), *args)
        return tuple(row) if row is not None else None

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        with _translated(self._health, self._timings, READ):
            return [tuple(row) for row in await self._connection.fetch(numbered(sql), *args)]


_SPAN_ATTRIBUTES = {"db.system": "postgresql"}


@contextmanager
def _translated(
    health: StoreHealth, timings: Timings | None = None, statement: tuple[str] = READ
) -> Iterator[None]:
    """asyncpg's failures of the database (not of a statement) as the domain's 503 / 507."""
    started = time.perf_counter()
    try:
        yield
    except pg.ForeignKeyViolationError as exc:
        raise ReferenceMissing(str(exc)) from exc
    except pg.DiskFullError as exc:
        health.failed(exc)
        raise StorageFull(message="the metadata database's disk is full; retry later") from exc
    except _UNAVAILABLE as exc:
        health.failed(exc)
        raise StorageUnavailable(message="metadata store unavailable, retry later") from exc
    finally:
        if timings is not None:
            ended = time.perf_counter()
            timings.observe(statement, ended - started)
            if SPANS.sink is not None:
                SPANS.sink(f"metadata {statement[0]}", started, ended, _SPAN_ATTRIBUTES)
    health.answered()


class PostgresEngine(SqlEngine):
    column_types = {
        "serial": "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        "bytes": "BYTEA",
        # the database's default collation may be linguistic (en_US: "a" < "B"); the OCI spec
        # lists tags and repositories in bytewise order
        "text_sorted": 'TEXT COLLATE "C"',
    }

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self.health = StoreHealth("metadata", WHILE_DOWN)
        self.timings = Timings()
        self._autocommit = _Connection(pool, self.health, self.timings)

    @classmethod
    async def open(cls, url: str) -> PostgresEngine:
        """Connect to `postgresql://user:pass@host:port/db[?pool_size=N&…]`.

        `pool_size` is ours (connections per process); other query options go to asyncpg.
        """
        dsn, pool_size = _split_pool_size(url)
        pool = await asyncpg.create_pool(
            dsn,
            # no floor of open connections: asyncpg would restore it in the background while the
            # database is down, logging a traceback per try; requests open what they need
            min_size=0,
            max_size=pool_size,
            timeout=CONNECT_TIMEOUT,
            server_settings={"application_name": "ocigate"},
        )
        return cls(pool)

    async def execute(self, sql: str, *args: Any) -> int:
        return await self._autocommit.execute(sql, *args)

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        return await self._autocommit.fetchone(sql, *args)

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        return await self._autocommit.fetchall(sql, *args)

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        return self._transaction(lock=False)

    async def _migration_lock(self) -> AbstractAsyncContextManager[Transaction]:
        return self._transaction(lock=True)

    @asynccontextmanager
    async def _transaction(self, *, lock: bool) -> AsyncIterator[Transaction]:
        # the statements inside translate their own failures; these are of acquire, BEGIN, COMMIT
        with _translated(self.health):
            async with self._pool.acquire() as connection, connection.transaction():
                if lock:
                    # released by COMMIT/ROLLBACK, so a replica dying mid-migration frees it too
                    await connection.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
                yield _Connection(connection, self.health, self.timings)

    def try_lock(self, name: str) -> AbstractAsyncContextManager[bool]:
        return self._try_lock(name)

    @asynccontextmanager
    async def _try_lock(self, name: str) -> AsyncIterator[bool]:
        # a session-level advisory lock on a connection kept for the block: a process that dies
        # closes its connection, and the lock goes with it
        key = _lock_key(name)
        with _translated(self.health):
            connection = await self._pool.acquire()
        try:
            with _translated(self.health):
                taken = await connection.fetchval("SELECT pg_try_advisory_lock($1)", key)
            if not taken:
                yield False
                return
            try:
                yield True
            finally:
                with _translated(self.health):
                    await connection.execute("SELECT pg_advisory_unlock($1)", key)
        finally:
            await self._pool.release(connection)

    async def close(self) -> None:
        await self._pool.close()


def _lock_key(name: str) -> int:
    digest = hashlib.blake2b(f"ocigate:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _split_pool_size(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    size = DEFAULT_POOL_SIZE
    rest = []
    for key, value in query:
        if key == "pool_size":
            size = int(value)
            if size < 1:
                raise ValueError("pool_size must be at least 1")
        else:
            rest.append((key, value))
    return urlunsplit(parts._replace(query=urlencode(rest))), size
