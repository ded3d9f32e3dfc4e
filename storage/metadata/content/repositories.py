"""Repositories: a row per name in a registry, created by its first write and kept for good
(ids are cached by every process), listed while it has content."""

from __future__ import annotations

from ..engine import Transaction
from ..records import ClearedRepository, NameFilter
from ..sql import SqlStore, now_ms

# a repository whose contents were all deleted is no longer listed
HAS_CONTENT = (
    "(EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id) "
    "OR EXISTS (SELECT 1 FROM blob_links l WHERE l.repository_id = r.id))"
)


async def ensure_repository(tx: Transaction, registry_id: str, name: str) -> int:
    """The repository's id, its row created if this is its first write."""
    await tx.execute(
        "INSERT INTO repositories (registry_id, name, created_at) VALUES (?, ?, ?) "
        "ON CONFLICT (registry_id, name) DO NOTHING",
        registry_id,
        name,
        now_ms(),
    )
    row = await tx.fetchone(
        "SELECT id FROM repositories WHERE registry_id = ? AND name = ?", registry_id, name
    )
    assert row is not None
    return int(row[0])


class SqlRepositories(SqlStore):
    async def get_repository_id(self, registry_id: str, name: str) -> int | None:
        row = await self._engine.fetchone(
            "SELECT id FROM repositories WHERE registry_id = ? AND name = ?", registry_id, name
        )
        return row[0] if row else None

    async def list_repositories(
        self, registry_id: str, last: str, limit: int, only: NameFilter | None = None
    ) -> list[str]:
        sql = f"SELECT r.name FROM repositories r WHERE r.registry_id = ? AND r.name > ? AND {HAS_CONTENT}"
        args: list[object] = [registry_id, last]
        if only is not None:
            # filtered here, so that `n` and `last` page through what the caller may see
            terms = ["r.name = ?"] * len(only.names) + ["substr(r.name, 1, ?) = ?"] * len(only.prefixes)
            if not terms:
                return []
            sql += " AND (" + " OR ".join(terms) + ")"
            args += only.names
            for prefix in only.prefixes:
                args += (len(prefix), prefix)
        rows = await self._engine.fetchall(sql + " ORDER BY r.name LIMIT ?", *args, limit)
        return [row[0] for row in rows]

    async def clear_repository(self, registry_id: str, name: str) -> ClearedRepository | None:
        async with self._engine.transaction() as tx:
            row = await tx.fetchone(
                f"SELECT r.id FROM repositories r WHERE r.registry_id = ? AND r.name = ? AND {HAS_CONTENT}",
                registry_id,
                name,
            )
            if row is None:
                return None
            repository_id = row[0]
            digests = await tx.fetchall("SELECT digest FROM manifests WHERE repository_id = ?", repository_id)
            tags = await tx.fetchall("SELECT name FROM tags WHERE repository_id = ?", repository_id)
            for table in ("manifest_children", "manifest_blobs", "tags", "manifests", "blob_links"):
                await tx.execute(f"DELETE FROM {table} WHERE repository_id = ?", repository_id)
            # its upload sessions end now; expiry (storage/uploads.py) deletes what they staged
            await tx.execute(
                "UPDATE uploads SET updated_at = 0 WHERE registry_id = ? AND repository = ?",
                registry_id,
                name,
            )
            await tx.execute(
                "UPDATE repositories SET pull_count = 0, push_count = 0, last_pull_at = NULL, "
                "last_push_at = NULL WHERE id = ?",
                repository_id,
            )
        return ClearedRepository(repository_id, tuple(r[0] for r in digests), tuple(r[0] for r in tags))
