"""Manifests of a repository, and the referrers of a subject among them (Distribution's
manifeststore.go). A manifest is stored with the tag that names it in one transaction."""

from __future__ import annotations

from ..records import ManifestRecord, ReferrerRecord, TokenSpent
from ..sql import SqlStore, missing, now_ms, opt_bytes
from .repositories import ensure_repository


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
            await tx.execute(
                "INSERT INTO manifests (repository_id, digest, media_type, content, subject, "
                "artifact_type, annotations, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (repository_id, digest) DO NOTHING",
                repository_id,
                manifest.digest,
                manifest.media_type,
                manifest.content,
                manifest.subject,
                manifest.artifact_type,
                manifest.annotations,
                now,
            )
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
