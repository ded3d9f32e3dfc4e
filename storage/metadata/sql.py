"""What the SQL stores share: the engine they run on, the clock rows are stamped with, and a
few row helpers. Statements are portable SQL (`engine.py` says how the engines differ)."""

from __future__ import annotations

import time

from .engine import SqlEngine


class SqlStore:
    """One aggregate's statements over the shared engine."""

    def __init__(self, engine: SqlEngine) -> None:
        self._engine = engine


def now_ms() -> int:
    return int(time.time() * 1000)


def opt_bytes(value: bytes | memoryview | None) -> bytes | None:
    return bytes(value) if value is not None else None


async def missing(engine: SqlEngine, table: str, repository_id: int, digests: list[str]) -> list[str]:
    """Those of `digests` with no row of the repository in `table`, sorted, each once."""
    if not digests:
        return []
    unique = sorted(set(digests))
    marks = ", ".join("?" for _ in unique)
    rows = await engine.fetchall(
        f"SELECT digest FROM {table} WHERE repository_id = ? AND digest IN ({marks})",
        repository_id,
        *unique,
    )
    present = {row[0] for row in rows}
    return [d for d in unique if d not in present]
