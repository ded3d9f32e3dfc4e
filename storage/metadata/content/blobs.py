"""Blobs: one row per digest (where its bytes are, stored once), reachable only through a
repository's links (Distribution's blobstore.go and linkedblobstore.go).

A link's `created_at` is when it was last made (every upload or mount of the blob into the
repository raises it): the collector removes a link only if it is older than its grace period
and still carries the value it read, so a push that re-links the blob meanwhile keeps it."""

from __future__ import annotations

from ..engine import ReferenceMissing, Transaction
from ..records import BlobRecord
from ..sql import SqlStore, missing, now_ms
from .repositories import ensure_repository

# the bytes of the blobs linked in a registry's repositories, each blob counted once
STORED_BYTES = (
    "SELECT COALESCE(SUM(b.size), 0) FROM blobs b WHERE b.digest IN ("
    "SELECT l.digest FROM blob_links l JOIN repositories r ON r.id = l.repository_id "
    "WHERE r.registry_id = ?)"
)
ADD_TRIES = 3  # a blob row the collector deletes between our two statements: insert ours then


async def _link(tx: Transaction, repository_id: int, digest: str) -> None:
    """Link (or re-link) a blob; ReferenceMissing if its row is gone."""
    await tx.execute(
        "INSERT INTO blob_links (repository_id, digest, created_at) VALUES (?, ?, ?) "
        "ON CONFLICT (repository_id, digest) DO UPDATE SET created_at = CASE "
        "WHEN excluded.created_at > blob_links.created_at THEN excluded.created_at "
        "ELSE blob_links.created_at + 1 END",
        repository_id,
        digest,
        now_ms(),
    )


class SqlBlobs(SqlStore):
    async def get_blob(self, digest: str) -> BlobRecord | None:
        row = await self._engine.fetchone("SELECT digest, size, location FROM blobs WHERE digest = ?", digest)
        return BlobRecord(*row) if row else None

    async def add_blob(self, registry_id: str, repository: str, blob: BlobRecord) -> BlobRecord:
        for attempt in range(ADD_TRIES):
            try:
                async with self._engine.transaction() as tx:
                    await tx.execute(
                        "INSERT INTO blobs (digest, size, location, created_at) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT (digest) DO NOTHING",
                        blob.digest,
                        blob.size,
                        blob.location,
                        now_ms(),
                    )
                    row = await tx.fetchone(
                        "SELECT digest, size, location FROM blobs WHERE digest = ?", blob.digest
                    )
                    repository_id = await ensure_repository(tx, registry_id, repository)
                    await _link(tx, repository_id, blob.digest)
            except ReferenceMissing:  # the row we found was being collected: ours goes in now
                if attempt == ADD_TRIES - 1:
                    raise
                continue
            assert row is not None
            return BlobRecord(*row)
        raise AssertionError("unreachable")

    async def link_existing_blob(self, registry_id: str, repository: str, digest: str) -> BlobRecord | None:
        try:
            async with self._engine.transaction() as tx:
                row = await tx.fetchone("SELECT digest, size, location FROM blobs WHERE digest = ?", digest)
                if row is None:
                    return None
                repository_id = await ensure_repository(tx, registry_id, repository)
                await _link(tx, repository_id, digest)
        except ReferenceMissing:  # collected meanwhile
            return None
        return BlobRecord(*row)

    # a repository's view ------------------------------------------------------------------

    async def get_linked_blob(self, repository_id: int, digest: str) -> BlobRecord | None:
        row = await self._engine.fetchone(
            "SELECT b.digest, b.size, b.location FROM blob_links l "
            "JOIN blobs b ON b.digest = l.digest WHERE l.repository_id = ? AND l.digest = ?",
            repository_id,
            digest,
        )
        return BlobRecord(*row) if row else None

    async def link_blob(self, registry_id: str, repository: str, digest: str) -> bool:
        try:
            async with self._engine.transaction() as tx:
                repository_id = await ensure_repository(tx, registry_id, repository)
                await _link(tx, repository_id, digest)
        except ReferenceMissing:
            return False
        return True

    async def unlink_blob(self, repository_id: int, digest: str) -> bool:
        # an explicit DELETE is obeyed as in Distribution, even under a manifest that lists the
        # blob (that manifest stops being pullable); only the collector respects references.
        # Those manifests are indexed again before the next collection, so that a blob pushed
        # again is protected by them again.
        async with self._engine.transaction() as tx:
            await tx.execute(
                "UPDATE manifests SET refs_indexed = 0 WHERE repository_id = ? AND digest IN "
                "(SELECT manifest_digest FROM manifest_blobs WHERE repository_id = ? AND blob_digest = ?)",
                repository_id,
                repository_id,
                digest,
            )
            await tx.execute(
                "DELETE FROM manifest_blobs WHERE repository_id = ? AND blob_digest = ?",
                repository_id,
                digest,
            )
            changed = await tx.execute(
                "DELETE FROM blob_links WHERE repository_id = ? AND digest = ?", repository_id, digest
            )
        return changed > 0

    async def stored_bytes(self, registry_id: str) -> int:
        row = await self._engine.fetchone(STORED_BYTES, registry_id)
        return int(row[0]) if row else 0

    async def registry_has_blob(self, registry_id: str, digest: str) -> bool:
        row = await self._engine.fetchone(
            "SELECT 1 FROM blob_links l JOIN repositories r ON r.id = l.repository_id "
            "WHERE r.registry_id = ? AND l.digest = ? LIMIT 1",
            registry_id,
            digest,
        )
        return row is not None

    async def missing_blobs(self, repository_id: int, digests: list[str]) -> list[str]:
        return await missing(self._engine, "blob_links", repository_id, digests)
