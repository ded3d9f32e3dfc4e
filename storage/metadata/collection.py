"""The garbage collector's statements (storage/collector.py says what it collects and when).

Every delete re-checks, in its own statement, what made its row a candidate, and carries the
version it read (a manifest's `pushed_at`, a link's `created_at`): a push that landed since
the candidate was read keeps its row. What a concurrent transaction has not committed yet is
caught by the foreign keys: the delete, or the push, fails with ReferenceMissing, and the
collector leaves that row for its next run (a batch that fails is retried row by row).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from .engine import ReferenceMissing, Row, Transaction
from .records import BlobRecord
from .sql import SqlStore, now_ms

T = TypeVar("T")

_UNTAGGED = (
    "NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = {m}.repository_id AND t.digest = {m}.digest) "
    "AND NOT EXISTS (SELECT 1 FROM manifest_children c "
    "WHERE c.repository_id = {m}.repository_id AND c.child_digest = {m}.digest) "
    # OCI 1.1 referrers (signatures, SBOMs) are untagged by design: kept while their subject is
    "AND NOT ({m}.subject IS NOT NULL AND EXISTS (SELECT 1 FROM manifests s "
    "WHERE s.repository_id = {m}.repository_id AND s.digest = {m}.subject))"
)
_UNREFERENCED_LINK = (
    "NOT EXISTS (SELECT 1 FROM manifest_blobs mb "
    "WHERE mb.repository_id = {l}.repository_id AND mb.blob_digest = {l}.digest)"
)
REPOSITORY_PAGE = 500  # repository ids read at a time by a walk over a registry


@dataclass(frozen=True, slots=True)
class Candidate:
    """A manifest or blob link of a repository, with the version the collector read."""

    repository_id: int
    digest: str
    version: int


@dataclass(frozen=True, slots=True)
class UnindexedManifest:
    repository_id: int
    digest: str
    media_type: str
    content: bytes


@dataclass(frozen=True, slots=True)
class GcRun:
    """One collection of a registry: when, and what it removed (blobs and bytes: what the global
    sweep that followed it freed)."""

    started_at: int
    finished_at: int
    manifests: int
    links: int
    blobs: int
    bytes: int


class SqlCollection(SqlStore):
    # manifests stored before their references were recorded ------------------------------

    async def unindexed_manifests(self, registry_id: str, limit: int) -> list[UnindexedManifest]:
        rows = await self._engine.fetchall(
            "SELECT m.repository_id, m.digest, m.media_type, m.content FROM manifests m "
            "JOIN repositories r ON r.id = m.repository_id "
            "WHERE r.registry_id = ? AND m.refs_indexed = 0 ORDER BY m.repository_id, m.digest LIMIT ?",
            registry_id,
            limit,
        )
        return [UnindexedManifest(r[0], r[1], r[2], bytes(r[3])) for r in rows]

    async def index_references(
        self, manifest: UnindexedManifest, blobs: Sequence[str], children: Sequence[str]
    ) -> None:
        """Record what an older manifest references, where it is still there (a reference to
        something gone protects nothing; that manifest cannot be pulled whole anyway)."""
        async with self._engine.transaction() as tx:
            for blob in sorted(set(blobs)):
                await tx.execute(
                    "INSERT INTO manifest_blobs (repository_id, manifest_digest, blob_digest) "
                    "SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM blob_links "
                    "WHERE repository_id = ? AND digest = ?) ON CONFLICT DO NOTHING",
                    manifest.repository_id,
                    manifest.digest,
                    blob,
                    manifest.repository_id,
                    blob,
                )
            for child in sorted(set(children)):
                await tx.execute(
                    "INSERT INTO manifest_children (repository_id, parent_digest, child_digest) "
                    "SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM manifests "
                    "WHERE repository_id = ? AND digest = ?) ON CONFLICT DO NOTHING",
                    manifest.repository_id,
                    manifest.digest,
                    child,
                    manifest.repository_id,
                    child,
                )
            await tx.execute(
                "UPDATE manifests SET refs_indexed = 1 WHERE repository_id = ? AND digest = ?",
                manifest.repository_id,
                manifest.digest,
            )

    # untagged manifests ----------------------------------------------------------------------

    async def untagged_manifests(
        self, registry_id: str, pushed_before: int, after: tuple[int, str], limit: int
    ) -> list[Candidate]:
        async def untagged(repository_id: int, digest: str, limit: int) -> list[Row]:
            return await self._engine.fetchall(
                "SELECT m.repository_id, m.digest, m.pushed_at FROM manifests m "
                "WHERE m.repository_id = ? AND m.digest > ? AND m.pushed_at <= ? "
                f"AND {_UNTAGGED.format(m='m')} ORDER BY m.digest LIMIT ?",
                repository_id,
                digest,
                pushed_before,
                limit,
            )

        return await self._by_repository(registry_id, after, limit, untagged)

    async def delete_manifests(self, candidates: list[Candidate]) -> list[Candidate]:
        """Those of `candidates` deleted (with their references: CASCADE)."""

        async def delete(tx: Transaction, candidate: Candidate) -> bool:
            changed = await tx.execute(
                "DELETE FROM manifests WHERE repository_id = ? AND digest = ? AND pushed_at = ? "
                f"AND {_UNTAGGED.format(m='manifests')}",
                candidate.repository_id,
                candidate.digest,
                candidate.version,
            )
            return changed > 0

        return await self._each(candidates, delete)

    # blob links --------------------------------------------------------------------------------

    async def unreferenced_links(
        self, registry_id: str, linked_before: int, after: tuple[int, str], limit: int
    ) -> list[Candidate]:
        async def unreferenced(repository_id: int, digest: str, limit: int) -> list[Row]:
            return await self._engine.fetchall(
                "SELECT l.repository_id, l.digest, l.created_at FROM blob_links l "
                "WHERE l.repository_id = ? AND l.digest > ? AND l.created_at <= ? "
                f"AND {_UNREFERENCED_LINK.format(l='l')} ORDER BY l.digest LIMIT ?",
                repository_id,
                digest,
                linked_before,
                limit,
            )

        return await self._by_repository(registry_id, after, limit, unreferenced)

    async def delete_links(self, candidates: list[Candidate]) -> list[Candidate]:
        async def delete(tx: Transaction, candidate: Candidate) -> bool:
            changed = await tx.execute(
                "DELETE FROM blob_links WHERE repository_id = ? AND digest = ? AND created_at = ? "
                f"AND {_UNREFERENCED_LINK.format(l='blob_links')}",
                candidate.repository_id,
                candidate.digest,
                candidate.version,
            )
            return changed > 0

        return await self._each(candidates, delete)

    # blobs (global) ------------------------------------------------------------------------

    async def unlinked_blobs(self, after: str, limit: int) -> list[BlobRecord]:
        rows = await self._engine.fetchall(
            "SELECT b.digest, b.size, b.location FROM blobs b WHERE b.digest > ? "
            "AND NOT EXISTS (SELECT 1 FROM blob_links l WHERE l.digest = b.digest) "
            "ORDER BY b.digest LIMIT ?",
            after,
            limit,
        )
        return [BlobRecord(*row) for row in rows]

    async def delete_blobs(self, blobs: list[BlobRecord]) -> list[BlobRecord]:
        """Delete the rows of `blobs` still unlinked and queue their bytes for deletion, in one
        transaction: once it commits no link can name them (blob_links → blobs), and nothing
        else names their locations (each commit writes a location of its own)."""

        async def delete(tx: Transaction, blob: BlobRecord) -> bool:
            changed = await tx.execute(
                "DELETE FROM blobs WHERE digest = ? AND location = ? "
                "AND NOT EXISTS (SELECT 1 FROM blob_links l WHERE l.digest = blobs.digest)",
                blob.digest,
                blob.location,
            )
            if changed:
                await tx.execute(
                    "INSERT INTO blob_deletions (location, size, queued_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (location) DO NOTHING",
                    blob.location,
                    blob.size,
                    now_ms(),
                )
            return changed > 0

        return await self._each(blobs, delete)

    async def queued_deletions(self, limit: int) -> list[tuple[str, int]]:
        rows = await self._engine.fetchall(
            "SELECT location, size FROM blob_deletions ORDER BY location LIMIT ?", limit
        )
        return [(row[0], int(row[1])) for row in rows]

    async def forget_deletions(self, locations: list[str]) -> None:
        if locations:
            marks = ", ".join("?" for _ in locations)
            await self._engine.execute(f"DELETE FROM blob_deletions WHERE location IN ({marks})", *locations)

    async def known_locations(self, locations: list[str]) -> set[str]:
        """Those of `locations` a blob row or a queued deletion names."""
        if not locations:
            return set()
        marks = ", ".join("?" for _ in locations)
        rows = await self._engine.fetchall(
            f"SELECT location FROM blobs WHERE location IN ({marks}) "
            f"UNION SELECT location FROM blob_deletions WHERE location IN ({marks})",
            *locations,
            *locations,
        )
        return {row[0] for row in rows}

    async def get_mark(self, name: str) -> str:
        row = await self._engine.fetchone("SELECT value FROM gc_marks WHERE name = ?", name)
        return str(row[0]) if row else ""

    async def set_mark(self, name: str, value: str) -> None:
        await self._engine.execute(
            "INSERT INTO gc_marks (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            name,
            value,
        )

    # runs ----------------------------------------------------------------------------------

    async def record_run(self, registry_id: str, run: GcRun) -> None:
        await self._engine.execute(
            "INSERT INTO gc_runs (registry_id, started_at, finished_at, manifests, links, blobs, bytes) "
            "SELECT ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM registries WHERE id = ?) "
            "ON CONFLICT (registry_id) DO UPDATE SET started_at = excluded.started_at, "
            "finished_at = excluded.finished_at, manifests = excluded.manifests, links = excluded.links, "
            "blobs = excluded.blobs, bytes = excluded.bytes",
            registry_id,
            run.started_at,
            run.finished_at,
            run.manifests,
            run.links,
            run.blobs,
            run.bytes,
            registry_id,
        )

    async def last_run(self, registry_id: str) -> GcRun | None:
        row = await self._engine.fetchone(
            "SELECT started_at, finished_at, manifests, links, blobs, bytes FROM gc_runs "
            "WHERE registry_id = ?",
            registry_id,
        )
        return None if row is None else GcRun(*(int(value) for value in row))

    # -----------------------------------------------------------------------------------------

    async def _by_repository(
        self,
        registry_id: str,
        after: tuple[int, str],
        limit: int,
        select: Callable[[int, str, int], Awaitable[list[Row]]],
    ) -> list[Candidate]:
        """Up to `limit` candidates after `after` in (repository, digest) order, one repository
        at a time: each statement walks one repository's primary key from the cursor, so that a
        batch costs what it returns. (One statement over the registry's join had to read and
        sort all of its rows for every batch: a collection was quadratic, and on SQLite each
        batch held the one reader connection, which serves pulls too, for tens of ms.)"""
        repository_id, digest = after
        found: list[Candidate] = []
        while True:
            page = await self._engine.fetchall(
                "SELECT id FROM repositories WHERE registry_id = ? AND id >= ? ORDER BY id LIMIT ?",
                registry_id,
                repository_id,
                REPOSITORY_PAGE,
            )
            for (current,) in page:
                rows = await select(current, digest if current == repository_id else "", limit - len(found))
                found += [Candidate(*row) for row in rows]
                if len(found) == limit:
                    return found
            if len(page) < REPOSITORY_PAGE:
                return found
            repository_id, digest = int(page[-1][0]) + 1, ""

    async def _each(self, rows: list[T], delete: Callable[[Transaction, T], Awaitable[bool]]) -> list[T]:
        """Delete `rows` in one transaction; if a foreign key fails (a push racing us), one
        transaction per row, leaving the rows that fail."""
        try:
            async with self._engine.transaction() as tx:
                return [row for row in rows if await delete(tx, row)]
        except ReferenceMissing:
            pass
        deleted = []
        for row in rows:
            try:
                async with self._engine.transaction() as tx:
                    if await delete(tx, row):
                        deleted.append(row)
            except ReferenceMissing:
                continue
        return deleted
