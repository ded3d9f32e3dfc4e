"""Tags: a name in a repository pointing at one of its manifests (Distribution's tagstore.go);
written with the manifest (`manifests.py`), moved by writing another."""

from __future__ import annotations

from ..sql import SqlStore


class SqlTags(SqlStore):
    async def get_tag(self, repository_id: int, tag: str) -> str | None:
        row = await self._engine.fetchone(
            "SELECT digest FROM tags WHERE repository_id = ? AND name = ?", repository_id, tag
        )
        return row[0] if row else None

    async def delete_tag(self, repository_id: int, tag: str) -> bool:
        changed = await self._engine.execute(
            "DELETE FROM tags WHERE repository_id = ? AND name = ?", repository_id, tag
        )
        return changed > 0

    async def list_tags(self, repository_id: int, last: str, limit: int) -> list[str]:
        rows = await self._engine.fetchall(
            "SELECT name FROM tags WHERE repository_id = ? AND name > ? ORDER BY name LIMIT ?",
            repository_id,
            last,
            limit,
        )
        return [row[0] for row in rows]
