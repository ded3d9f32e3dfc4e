"""Blobs: one row per digest (where its bytes are, stored once), reachable only through a
repository's links (Distribution's blobstore.go and linkedblobstore.go)."""

from __future__ import annotations

from ..engine import Transaction
from ..records import BlobRecord
from ..sql import SqlStore, missing, now_ms
from .repositories import ensure_repository


async def _link(tx: Transaction, repository_id: int, digest: str) -> None:
    await tx.execute(
        "INSERT INTO blob_links (repository_id, digest, created_at) VALUES (?, ?, ?) "
        "ON CONFLICT (repository_id, digest) DO NOTHING",
        repository_id,
        digest,
        now_ms(),
    )


class SqlBlobs(SqlStore):
    async def get_blob(self, digest: str) -> BlobRecord | None:
        row = await self._engine.fetchone("SELECT digest, size, location FROM blobs WHERE digest = ?", digest)
        return BlobRecord(*row) if row else None

    async def add_blob(self, registry_id: str, repository: str, blob: BlobRecord) -> BlobRecord:
        async with self._engine.transaction() as tx:
            await tx.execute(
                "INSERT INTO blobs (digest, size, location, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (digest) DO NOTHING",
                blob.digest,
                blob.size,
                blob.location,
                now_ms(),
            )
            row = await tx.fetchone("SELECT digest, size, location FROM blobs WHERE digest = ?", blob.digest)
            repository_id = await ensure_repository(tx, registry_id, repository)
            await _link(tx, repository_id, blob.digest)
        assert row is not None
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

    async def link_blob(self, registry_id: str, repository: str, digest: str) -> None:
        async with self._engine.transaction() as tx:
            repository_id = await ensure_repository(tx, registry_id, repository)
            await _link(tx, repository_id, digest)

    async def unlink_blob(self, repository_id: int, digest: str) -> bool:
        changed = await self._engine.execute(
            "DELETE FROM blob_links WHERE repository_id = ? AND digest = ?", repository_id, digest
        )
        return changed > 0

    async def missing_blobs(self, repository_id: int, digests: list[str]) -> list[str]:
        return await missing(self._engine, "blob_links", repository_id, digests)
