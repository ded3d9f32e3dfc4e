"""Manifests of a repository, and the referrers of a subject among them (Distribution's
manifeststore.go). A manifest is stored with the tag that names it, and with its references
(the blobs and child manifests it needs, `manifest_blobs` and `manifest_children`), in one
transaction: a reference whose target the collector removed meanwhile fails the whole write."""

from __future__ import annotations

from ..engine import Transaction
from ..records import ManifestRecord, ReferrerRecord, TokenSpent
from ..sql import SqlStore, missing, now_ms, opt_bytes
from .repositories import ensure_repository


async def write_references(
    tx: Transaction, repository_id: int, digest: str, blobs: tuple[str, ...], children: tuple[str, ...]
) -> None:
    """ReferenceMissing if a blob is not linked in the repository or a child is not there."""
    for blob in sorted(set(blobs)):
        await tx.execute(
            "INSERT INTO manifest_blobs (repository_id, manifest_digest, blob_digest) VALUES (?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            repository_id,
            digest,
            blob,
        )
    for child in sorted(set(children)):
        await tx.execute(
            "INSERT INTO manifest_children (repository_id, parent_digest, child_digest) VALUES (?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            repository_id,
            digest,
            child,
        )


class SqlManifests(SqlStore):
    async def get_manifest(self, repository_id: int, digest: str) -> ManifestRecord | None:
        row = await self._engine.fetchone(
            "SELECT digest, media_type, content, subject, artifact_type, annotations "
            "FROM manifests WHERE repository_id = ? AND digest = ?",
            repository_id,
            digest,
        )
        if row is None:
            return None
        return ManifestRecord(row[0], row[1], bytes(row[2]), row[3], row[4], opt_bytes(row[5]))

    async def missing_manifests(self, repository_id: int, digests: list[str]) -> list[str]:
        return await missing(self._engine, "manifests", repository_id, digests)

    async def put_manifest(
        self,
        registry_id: str,
        repository: str,
        manifest: ManifestRecord,
        tag: str | None,
        one_time_token: str | None = None,
        *,
        blobs: tuple[str, ...] = (),
        children: tuple[str, ...] = (),
    ) -> None:
        now = now_ms()
        async with self._engine.transaction() as tx:
            if one_time_token is not None and tag is not None:
                spent = await tx.execute(
                    "UPDATE tokens SET consumed_at = ? WHERE id = ? AND consumed_at IS NULL",
                    now,
                    one_time_token,
                )
                if not spent:
                    raise TokenSpent(one_time_token)
            repository_id = await ensure_repository(tx, registry_id, repository)
            # an upsert, not "do nothing": it locks the row and raises pushed_at, so that a
            # collector deleting this manifest either finishes first (then it is inserted anew)
            # or finds pushed_at moved and leaves it
            await tx.execute(
                "INSERT INTO manifests (repository_id, digest, media_type, content, subject, "
                "artifact_type, annotations, created_at, pushed_at, refs_indexed) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1) "
                "ON CONFLICT (repository_id, digest) DO UPDATE SET refs_indexed = 1, pushed_at = CASE "
                "WHEN excluded.pushed_at > manifests.pushed_at THEN excluded.pushed_at "
                "ELSE manifests.pushed_at + 1 END",
                repository_id,
                manifest.digest,
                manifest.media_type,
                manifest.content,
                manifest.subject,
                manifest.artifact_type,
                manifest.annotations,
                now,
                now,
            )
            await write_references(tx, repository_id, manifest.digest, blobs, children)
            if tag is not None:
                await tx.execute(
                    "INSERT INTO tags (repository_id, name, digest, updated_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (repository_id, name) DO UPDATE "
                    "SET digest = excluded.digest, updated_at = excluded.updated_at",
                    repository_id,
                    tag,
                    manifest.digest,
                    now,
                )

    async def delete_manifest(self, repository_id: int, digest: str) -> list[str]:
        async with self._engine.transaction() as tx:
            tags = await tx.fetchall(
                "SELECT name FROM tags WHERE repository_id = ? AND digest = ?", repository_id, digest
            )
            # an explicit DELETE is obeyed even under an index that lists the manifest (as in
            # Distribution); those indexes are indexed again before the next collection
            await tx.execute(
                "UPDATE manifests SET refs_indexed = 0 WHERE repository_id = ? AND digest IN "
                "(SELECT parent_digest FROM manifest_children WHERE repository_id = ? AND child_digest = ?)",
                repository_id,
                repository_id,
                digest,
            )
            await tx.execute(
                "DELETE FROM manifest_children WHERE repository_id = ? AND child_digest = ?",
                repository_id,
                digest,
            )
            deleted = await tx.execute(
                "DELETE FROM manifests WHERE repository_id = ? AND digest = ?", repository_id, digest
            )
            if not deleted:
                raise KeyError(digest)
            await tx.execute("DELETE FROM tags WHERE repository_id = ? AND digest = ?", repository_id, digest)
        return [row[0] for row in tags]

    async def list_referrers(
        self, repository_id: int, subject: str, artifact_type: str | None
    ) -> list[ReferrerRecord]:
        sql = (
            "SELECT digest, media_type, LENGTH(content), artifact_type, annotations "
            "FROM manifests WHERE repository_id = ? AND subject = ?"
        )
        args: list[object] = [repository_id, subject]
        if artifact_type is not None:
            sql += " AND artifact_type = ?"
            args.append(artifact_type)
        rows = await self._engine.fetchall(sql + " ORDER BY digest", *args)
        return [ReferrerRecord(r[0], r[1], r[2], r[3], opt_bytes(r[4])) for r in rows]
