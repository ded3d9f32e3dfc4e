"""The management API's read models: repository usage (pull and push counters), content
summaries (artifacts with their tags, storage used). Nothing on the pull or push path reads
them; the usage counters are written once a second per process, additively."""

from __future__ import annotations

from .content.blobs import STORED_BYTES
from .content.repositories import HAS_CONTENT
from .engine import Row
from .records import ArtifactRecord, ReferrerRecord, RepositoryUsage
from .sql import SqlStore, opt_bytes

_USAGE_SELECT = (
    "SELECT r.name, r.created_at, (SELECT COUNT(*) FROM manifests m WHERE m.repository_id = r.id), "
    "r.pull_count, r.push_count, r.last_pull_at, r.last_push_at, "
    "(SELECT COALESCE(SUM(b.size), 0) FROM blob_links l JOIN blobs b ON b.digest = l.digest "
    "WHERE l.repository_id = r.id) "
    "+ (SELECT COALESCE(SUM(LENGTH(m.content)), 0) FROM manifests m WHERE m.repository_id = r.id) "
    "FROM repositories r"
)
# names from `prefix` (inclusive) to `prefix` + DEL (exclusive): exactly those starting with it,
# since repository names are ASCII below DEL; a range, so that the (registry_id, name) index serves
_NAME_PREFIX = "r.name >= ? AND r.name < ?"
_ARTIFACT_SELECT = "SELECT digest, media_type, content, artifact_type, created_at FROM manifests"


class SqlViews(SqlStore):
    async def registry_storage_bytes(self, registry_id: str) -> int:
        # a blob linked in several repositories is stored once, so it counts once
        row = await self._engine.fetchone(STORED_BYTES, registry_id)
        return int(row[0]) if row else 0

    async def storage_bytes_by_registry(self) -> dict[str, int]:
        # DISTINCT: a blob linked in several repositories of a registry counts once in it
        rows = await self._engine.fetchall(
            "SELECT g.name, COALESCE(SUM(b.size), 0) FROM registries g LEFT JOIN ("
            "SELECT DISTINCT r.registry_id, l.digest FROM blob_links l "
            "JOIN repositories r ON r.id = l.repository_id) x ON x.registry_id = g.id "
            "LEFT JOIN blobs b ON b.digest = x.digest GROUP BY g.name"
        )
        return {str(name): int(used) for name, used in rows}

    async def store_totals(self) -> tuple[int, int]:
        row = await self._engine.fetchone("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM blobs")
        return (int(row[0]), int(row[1])) if row else (0, 0)

    # repository usage ---------------------------------------------------------------------

    async def list_repository_usage(
        self, registry_id: str, after: str, limit: int, prefix: str = ""
    ) -> list[RepositoryUsage]:
        rows = await self._engine.fetchall(
            f"{_USAGE_SELECT} WHERE r.registry_id = ? AND r.name > ? AND {_NAME_PREFIX} AND {HAS_CONTENT} "
            "ORDER BY r.name LIMIT ?",
            registry_id,
            after,
            *_prefix_range(prefix),
            limit,
        )
        return [_usage(row) for row in rows]

    async def count_repositories_with_content(self, registry_id: str, prefix: str = "") -> int:
        row = await self._engine.fetchone(
            f"SELECT COUNT(*) FROM repositories r "
            f"WHERE r.registry_id = ? AND {_NAME_PREFIX} AND {HAS_CONTENT}",
            registry_id,
            *_prefix_range(prefix),
        )
        return int(row[0]) if row else 0

    async def count_repositories_of(self, registry_ids: list[str]) -> dict[str, int]:
        counts = dict.fromkeys(registry_ids, 0)
        if counts:
            marks = ", ".join("?" for _ in counts)
            for registry_id, count in await self._engine.fetchall(
                f"SELECT r.registry_id, COUNT(*) FROM repositories r "
                f"WHERE r.registry_id IN ({marks}) AND {HAS_CONTENT} GROUP BY r.registry_id",
                *counts,
            ):
                counts[registry_id] = int(count)
        return counts

    async def get_repository_usage(self, registry_id: str, name: str) -> RepositoryUsage | None:
        row = await self._engine.fetchone(
            f"{_USAGE_SELECT} WHERE r.registry_id = ? AND r.name = ? AND {HAS_CONTENT}", registry_id, name
        )
        return _usage(row) if row else None

    async def add_repository_usage(
        self, registry_id: str, name: str, pulls: int, pushes: int, last_pull_at: int, last_push_at: int
    ) -> None:
        # additive, so that every process can flush its own counts; times only move forward
        await self._engine.execute(
            "UPDATE repositories SET pull_count = pull_count + ?, push_count = push_count + ?, "
            "last_pull_at = CASE WHEN ? > COALESCE(last_pull_at, 0) THEN ? ELSE last_pull_at END, "
            "last_push_at = CASE WHEN ? > COALESCE(last_push_at, 0) THEN ? ELSE last_push_at END "
            "WHERE registry_id = ? AND name = ?",
            pulls,
            pushes,
            last_pull_at,
            last_pull_at,
            last_push_at,
            last_push_at,
            registry_id,
            name,
        )

    # artifacts ----------------------------------------------------------------------------

    async def list_artifacts(self, repository_id: int, after: str, limit: int) -> list[ArtifactRecord]:
        rows = await self._engine.fetchall(
            f"{_ARTIFACT_SELECT} WHERE repository_id = ? AND digest > ? ORDER BY digest LIMIT ?",
            repository_id,
            after,
            limit,
        )
        return await self._with_tags(repository_id, rows)

    async def count_artifacts(self, repository_id: int) -> int:
        row = await self._engine.fetchone(
            "SELECT COUNT(*) FROM manifests WHERE repository_id = ?", repository_id
        )
        return int(row[0]) if row else 0

    async def get_artifact(self, repository_id: int, digest: str) -> ArtifactRecord | None:
        row = await self._engine.fetchone(
            f"{_ARTIFACT_SELECT} WHERE repository_id = ? AND digest = ?", repository_id, digest
        )
        if row is None:
            return None
        return (await self._with_tags(repository_id, [row]))[0]

    async def _with_tags(self, repository_id: int, rows: list[Row]) -> list[ArtifactRecord]:
        tags: dict[str, list[str]] = {str(row[0]): [] for row in rows}
        pushed: dict[str, int] = {str(row[0]): int(row[4]) for row in rows}
        if tags:
            marks = ", ".join("?" for _ in tags)
            for digest, tag, updated_at in await self._engine.fetchall(
                f"SELECT digest, name, updated_at FROM tags WHERE repository_id = ? AND digest IN ({marks}) "
                "ORDER BY name",
                repository_id,
                *tags,
            ):
                tags[digest].append(tag)
                pushed[digest] = max(pushed[digest], int(updated_at))
        return [
            ArtifactRecord(
                str(row[0]),
                str(row[1]),
                bytes(row[2]),
                row[3],
                int(row[4]),
                tuple(tags[str(row[0])]),
                pushed[str(row[0])],
            )
            for row in rows
        ]

    async def referrers_by_subject(
        self, repository_id: int, subjects: list[str]
    ) -> dict[str, list[ReferrerRecord]]:
        found: dict[str, list[ReferrerRecord]] = {subject: [] for subject in subjects}
        if found:
            marks = ", ".join("?" for _ in found)
            for subject, *referrer in await self._engine.fetchall(
                "SELECT subject, digest, media_type, LENGTH(content), artifact_type, annotations "
                f"FROM manifests WHERE repository_id = ? AND subject IN ({marks}) ORDER BY digest",
                repository_id,
                *found,
            ):
                digest, media_type, size, artifact_type, annotations = referrer
                found[subject].append(
                    ReferrerRecord(digest, media_type, int(size), artifact_type, opt_bytes(annotations))
                )
        return found


def _prefix_range(prefix: str) -> tuple[str, str]:
    return prefix, prefix + "\x7f"


def _usage(row: Row) -> RepositoryUsage:
    # COUNT(*) is a bigint on PostgreSQL: int() keeps the record plain
    return RepositoryUsage(
        str(row[0]), int(row[1]), int(row[2]), int(row[3]), int(row[4]), row[5], row[6], int(row[7])
    )
