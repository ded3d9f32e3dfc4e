"""SQLite engine for the embedded default: one file in WAL mode.

One connection writes (transactions are serialised by a lock, `BEGIN IMMEDIATE` so that
several processes on one file wait for each other instead of failing on lock upgrade) and
another reads, so that readers never see a writer's uncommitted rows.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from ..errors import StorageFull, StorageUnavailable
from ..health import StoreHealth
from ..private import private_file, tighten_file
from ..stats import SPANS, Timings
from .engine import READ, WHILE_DOWN, WRITE, ReferenceMissing, Row, SqlEngine, Transaction
from .host_locks import HostLocks

_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
)


# SQLite's result codes (the primary code is the low byte of an extended one)
_FULL = {sqlite3.SQLITE_FULL}
_UNAVAILABLE = {sqlite3.SQLITE_IOERR, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN}


class _Connection(Transaction):
    def __init__(self, connection: aiosqlite.Connection, health: StoreHealth, timings: Timings) -> None:
        self._connection = connection
        self._health = health
        self._timings = timings

    async def execute(self, sql: str, *args: Any) -> int:
        with _translated(self._health, self._timings, WRITE):
            cursor = await self._connection.execute(sql, args)
            try:
                return cursor.rowcount
            finally:
                await cursor.close()

    # Each read runs to completion in one step of aiosqlite's thread: a statement left open
    # between steps pins its WAL snapshot, and the next read on the connection would not see
    # writes committed meanwhile (an upload just created answering 404).
    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        with _translated(self._health, self._timings, READ):
            rows = await self._connection.execute_fetchall(sql, args)
        first = next(iter(rows), None)
        return None if first is None else tuple(first)

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        with _translated(self._health, self._timings, READ):
            return [tuple(row) for row in await self._connection.execute_fetchall(sql, args)]


_SPAN_ATTRIBUTES = {"db.system": "sqlite"}


@contextmanager
def _translated(health: StoreHealth, timings: Timings, statement: tuple[str]) -> Iterator[None]:
    """A full disk ("database or disk is full") as the domain's 507, a database that cannot
    be read or written (I/O error, locked past the busy timeout) as its 503."""
    started = time.perf_counter()
    try:
        yield
    except sqlite3.IntegrityError as exc:
        if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
            raise ReferenceMissing(str(exc)) from exc
        raise
    except sqlite3.Error as exc:
        code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
        if code in _FULL:
            health.failed(exc)
            raise StorageFull(message="the metadata database's disk is full; retry later") from exc
        if code in _UNAVAILABLE:
            health.failed(exc)
            raise StorageUnavailable(message="metadata store unavailable, retry later") from exc
        raise
    except OSError as exc:  # the file itself, e.g. a disk that went away
        health.failed(exc)
        raise StorageUnavailable(message="metadata store unavailable, retry later") from exc
    finally:
        ended = time.perf_counter()
        timings.observe(statement, ended - started)
        if SPANS.sink is not None:
            SPANS.sink(f"metadata {statement[0]}", started, ended, _SPAN_ATTRIBUTES)
    health.answered()


class SqliteEngine(SqlEngine):
    column_types = {
        "serial": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "bytes": "BLOB",
        "text_sorted": "TEXT",  # SQLite's default BINARY collation is bytewise
    }

    def __init__(self, writer: aiosqlite.Connection, reader: aiosqlite.Connection, path: Path) -> None:
        self.health = StoreHealth("metadata", WHILE_DOWN)
        self.timings = Timings()
        self._writer = _Connection(writer, self.health, self.timings)
        self._reader = _Connection(reader, self.health, self.timings)
        self._raw = (writer, reader)
        self._write_lock = asyncio.Lock()
        self._locks = HostLocks(path)

    @classmethod
    async def open(cls, path: Path) -> SqliteEngine:
        path.parent.mkdir(parents=True, exist_ok=True)
        # SECURITY: the file holds password hashes. Made 0600 before SQLite opens it, since SQLite
        # creates a new database with the umask's mode but its -wal and -shm with the database's
        private_file(path)
        for suffix in ("-wal", "-shm", "-journal"):
            tighten_file(path.with_name(path.name + suffix))
        connections = []
        for _ in range(2):
            connection = await aiosqlite.connect(path, isolation_level=None)
            for pragma in _PRAGMAS:
                await connection.execute(pragma)
            connections.append(connection)
        writer, reader = connections
        return cls(writer, reader, path)

    async def execute(self, sql: str, *args: Any) -> int:
        async with self._write_lock:
            return await self._writer.execute(sql, *args)

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        return await self._reader.fetchone(sql, *args)

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        return await self._reader.fetchall(sql, *args)

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        return self._transaction()

    async def _migration_lock(self) -> AbstractAsyncContextManager[Transaction]:
        return self._transaction()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Transaction]:
        async with self._write_lock:
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield self._writer
            except BaseException:
                await self._rollback()
                raise
            try:
                await self._writer.execute("COMMIT")
            except StorageUnavailable:  # e.g. the disk filled up: nothing of it stays
                await self._rollback()
                raise

    async def _rollback(self) -> None:
        # SQLite may have rolled back already (a full disk does): then there is nothing to end
        if self._raw[0].in_transaction:
            await self._writer.execute("ROLLBACK")

    def try_lock(self, name: str) -> AbstractAsyncContextManager[bool]:
        return self._try_lock(name)

    @asynccontextmanager
    async def _try_lock(self, name: str) -> AsyncIterator[bool]:
        # a lock file rather than SQLite's own lock (other processes on the file, workers or
        # `ocigate gc`, must go on writing while a collection runs) or a row (which outlives a
        # holder killed with -9)
        try:
            lock = await self._locks.take(name)
        except OSError as exc:  # e.g. the database's directory went away
            self.health.failed(exc)
            raise StorageUnavailable(message="metadata store unavailable, retry later") from exc
        if lock is None:
            yield False
            return
        try:
            yield True
        finally:
            await lock.release()

    async def close(self) -> None:
        for connection in self._raw:
            await connection.close()
