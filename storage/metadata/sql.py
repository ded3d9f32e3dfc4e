"""The metadata store in portable SQL, over any `SqlEngine`."""

from __future__ import annotations

import time
import uuid

from .base import (
    ArtifactRecord,
    BlobRecord,
    ClearedRepository,
    ManifestRecord,
    MetadataStore,
    NameFilter,
    ReferrerRecord,
    RegistryRecord,
    RepositoryUsage,
    TokenSpent,
    UploadRecord,
)
from .engine import Row, SqlEngine, Transaction

_REGISTRY_COLUMNS = "id, name, created_at, account_id, properties"
_UPLOAD_COLUMNS = "id, registry_id, repository, byte_offset, hash_state, driver_state, created_at, updated_at"


def _now() -> int:
    return int(time.time() * 1000)


class SqlMetadataStore(MetadataStore):
    def __init__(self, engine: SqlEngine) -> None:
        self.engine = engine
        self.health = engine.health

    # registries ----------------------------------------------------------------------------

    async def create_registry(
        self, name: str, account_id: str | None = None, properties: str = "{}"
    ) -> RegistryRecord:
        record = RegistryRecord(uuid.uuid4().hex, name, _now(), account_id, properties)
        changed = await self.engine.execute(
            "INSERT INTO registries (id, name, created_at, account_id, properties) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
            record.id,
            record.name,
            record.created_at,
            record.account_id,
            record.properties,
        )
        if not changed:
            raise KeyError(name)
        return record

    async def get_registry(self, name: str) -> RegistryRecord | None:
        row = await self.engine.fetchone(f"SELECT {_REGISTRY_COLUMNS} FROM registries WHERE name = ?", name)
        return RegistryRecord(*row) if row else None

    async def get_registry_by_id(self, registry_id: str) -> RegistryRecord | None:
        row = await self.engine.fetchone(
            f"SELECT {_REGISTRY_COLUMNS} FROM registries WHERE id = ?", registry_id
        )
        return RegistryRecord(*row) if row else None

    async def list_registries(self) -> list[RegistryRecord]:
        rows = await self.engine.fetchall(f"SELECT {_REGISTRY_COLUMNS} FROM registries ORDER BY name")
        return [RegistryRecord(*row) for row in rows]

    async def update_registry(self, registry_id: str, properties: str) -> RegistryRecord | None:
        await self.engine.execute(
            "UPDATE registries SET properties = ? WHERE id = ?", properties, registry_id
        )
        return await self.get_registry_by_id(registry_id)

    async def delete_registry(self, name: str) -> bool:
        async with self.engine.transaction() as tx:
            row = await tx.fetchone("SELECT id FROM registries WHERE name = ?", name)
            if row is None:
                return False
            await tx.execute("DELETE FROM uploads WHERE registry_id = ?", row[0])
            await tx.execute("DELETE FROM registries WHERE id = ?", row[0])
            return True

    # repositories --------------------------------------------------------------------------

    async def get_repository_id(self, registry_id: str, name: str) -> int | None:
        row = await self.engine.fetchone(
            "SELECT id FROM repositories WHERE registry_id = ? AND name = ?", registry_id, name
        )
        return row[0] if row else None

    async def list_repositories(
        self, registry_id: str, last: str, limit: int, only: NameFilter | None = None
    ) -> list[str]:
        # a repository whose contents were all deleted is no longer listed
        sql = "SELECT r.name FROM repositories r WHERE r.registry_id = ? AND r.name > ? AND ("
        sql += "EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id) OR "
        sql += "EXISTS (SELECT 1 FROM blob_links l WHERE l.repository_id = r.id))"
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
        rows = await self.engine.fetchall(sql + " ORDER BY r.name LIMIT ?", *args, limit)
        return [row[0] for row in rows]

    @staticmethod
    async def _ensure_repository(tx: Transaction, registry_id: str, name: str) -> int:
        await tx.execute(
            "INSERT INTO repositories (registry_id, name, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (registry_id, name) DO NOTHING",
            registry_id,
            name,
            _now(),
        )
        row = await tx.fetchone(
            "SELECT id FROM repositories WHERE registry_id = ? AND name = ?", registry_id, name
        )
        assert row is not None
        return row[0]

    # blobs ---------------------------------------------------------------------------------

    async def get_linked_blob(self, repository_id: int, digest: str) -> BlobRecord | None:
        row = await self.engine.fetchone(
            "SELECT b.digest, b.size, b.location FROM blob_links l "
            "JOIN blobs b ON b.digest = l.digest WHERE l.repository_id = ? AND l.digest = ?",
            repository_id,
            digest,
        )
        return BlobRecord(*row) if row else None

    async def get_blob(self, digest: str) -> BlobRecord | None:
        row = await self.engine.fetchone("SELECT digest, size, location FROM blobs WHERE digest = ?", digest)
        return BlobRecord(*row) if row else None

    async def add_blob(self, registry_id: str, repository: str, blob: BlobRecord) -> BlobRecord:
        async with self.engine.transaction() as tx:
            await tx.execute(
                "INSERT INTO blobs (digest, size, location, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (digest) DO NOTHING",
                blob.digest,
                blob.size,
                blob.location,
                _now(),
            )
            row = await tx.fetchone("SELECT digest, size, location FROM blobs WHERE digest = ?", blob.digest)
            repository_id = await self._ensure_repository(tx, registry_id, repository)
            await self._link(tx, repository_id, blob.digest)
        assert row is not None
        return BlobRecord(*row)

    async def link_blob(self, registry_id: str, repository: str, digest: str) -> None:
        async with self.engine.transaction() as tx:
            repository_id = await self._ensure_repository(tx, registry_id, repository)
            await self._link(tx, repository_id, digest)

    @staticmethod
    async def _link(tx: Transaction, repository_id: int, digest: str) -> None:
        await tx.execute(
            "INSERT INTO blob_links (repository_id, digest, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (repository_id, digest) DO NOTHING",
            repository_id,
            digest,
            _now(),
        )

    async def unlink_blob(self, repository_id: int, digest: str) -> bool:
        changed = await self.engine.execute(
            "DELETE FROM blob_links WHERE repository_id = ? AND digest = ?", repository_id, digest
        )
        return changed > 0

    async def missing_blobs(self, repository_id: int, digests: list[str]) -> list[str]:
        return await self._missing("blob_links", repository_id, digests)

    async def _missing(self, table: str, repository_id: int, digests: list[str]) -> list[str]:
        if not digests:
            return []
        unique = sorted(set(digests))
        marks = ", ".join("?" for _ in unique)
        rows = await self.engine.fetchall(
            f"SELECT digest FROM {table} WHERE repository_id = ? AND digest IN ({marks})",
            repository_id,
            *unique,
        )
        present = {row[0] for row in rows}
        return [d for d in unique if d not in present]

    # manifests and tags --------------------------------------------------------------------

    async def get_manifest(self, repository_id: int, digest: str) -> ManifestRecord | None:
        row = await self.engine.fetchone(
            "SELECT digest, media_type, content, subject, artifact_type, annotations "
            "FROM manifests WHERE repository_id = ? AND digest = ?",
            repository_id,
            digest,
        )
        if row is None:
            return None
        return ManifestRecord(row[0], row[1], bytes(row[2]), row[3], row[4], _opt_bytes(row[5]))

    async def get_tag(self, repository_id: int, tag: str) -> str | None:
        row = await self.engine.fetchone(
            "SELECT digest FROM tags WHERE repository_id = ? AND name = ?", repository_id, tag
        )
        return row[0] if row else None

    async def missing_manifests(self, repository_id: int, digests: list[str]) -> list[str]:
        return await self._missing("manifests", repository_id, digests)

    async def put_manifest(
        self,
        registry_id: str,
        repository: str,
        manifest: ManifestRecord,
        tag: str | None,
        one_time_token: str | None = None,
    ) -> None:
        now = _now()
        async with self.engine.transaction() as tx:
            if one_time_token is not None and tag is not None:
                spent = await tx.execute(
                    "UPDATE tokens SET consumed_at = ? WHERE id = ? AND consumed_at IS NULL",
                    now,
                    one_time_token,
                )
                if not spent:
                    raise TokenSpent(one_time_token)
            repository_id = await self._ensure_repository(tx, registry_id, repository)
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
        async with self.engine.transaction() as tx:
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

    async def delete_tag(self, repository_id: int, tag: str) -> bool:
        changed = await self.engine.execute(
            "DELETE FROM tags WHERE repository_id = ? AND name = ?", repository_id, tag
        )
        return changed > 0

    async def list_tags(self, repository_id: int, last: str, limit: int) -> list[str]:
        rows = await self.engine.fetchall(
            "SELECT name FROM tags WHERE repository_id = ? AND name > ? ORDER BY name LIMIT ?",
            repository_id,
            last,
            limit,
        )
        return [row[0] for row in rows]

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
        rows = await self.engine.fetchall(sql + " ORDER BY digest", *args)
        return [ReferrerRecord(r[0], r[1], r[2], r[3], _opt_bytes(r[4])) for r in rows]

    # uploads -------------------------------------------------------------------------------

    async def create_upload(self, upload: UploadRecord) -> None:
        await self.engine.execute(
            "INSERT INTO uploads (id, registry_id, repository, byte_offset, hash_state, "
            "driver_state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            upload.id,
            upload.registry_id,
            upload.repository,
            upload.offset,
            upload.hash_state,
            upload.driver_state,
            upload.created_at,
            upload.updated_at,
        )

    async def get_upload(self, upload_id: str) -> UploadRecord | None:
        row = await self.engine.fetchone(f"SELECT {_UPLOAD_COLUMNS} FROM uploads WHERE id = ?", upload_id)
        return None if row is None else _upload(row)

    async def registry_uploads(self, registry_id: str) -> list[UploadRecord]:
        rows = await self.engine.fetchall(
            f"SELECT {_UPLOAD_COLUMNS} FROM uploads WHERE registry_id = ? ORDER BY id", registry_id
        )
        return [_upload(row) for row in rows]

    async def idle_uploads(self, before: int, limit: int) -> list[UploadRecord]:
        rows = await self.engine.fetchall(
            f"SELECT {_UPLOAD_COLUMNS} FROM uploads WHERE updated_at < ? ORDER BY updated_at LIMIT ?",
            before,
            limit,
        )
        return [_upload(row) for row in rows]

    async def advance_upload(
        self,
        upload_id: str,
        expected_offset: int,
        offset: int,
        hash_state: bytes,
        driver_state: bytes,
        now: int,
    ) -> bool:
        changed = await self.engine.execute(
            "UPDATE uploads SET byte_offset = ?, hash_state = ?, driver_state = ?, updated_at = ? "
            "WHERE id = ? AND byte_offset = ?",
            offset,
            hash_state,
            driver_state,
            now,
            upload_id,
            expected_offset,
        )
        return changed > 0

    async def delete_upload(self, upload_id: str) -> bool:
        return await self.engine.execute("DELETE FROM uploads WHERE id = ?", upload_id) > 0

    # management views --------------------------------------------------------------------

    async def list_account_registries(self, account_id: str, offset: int, limit: int) -> list[RegistryRecord]:
        rows = await self.engine.fetchall(
            f"SELECT {_REGISTRY_COLUMNS} FROM registries WHERE account_id = ? ORDER BY name LIMIT ? OFFSET ?",
            account_id,
            limit,
            offset,
        )
        return [RegistryRecord(*row) for row in rows]

    async def count_account_registries(self, account_id: str) -> int:
        row = await self.engine.fetchone("SELECT COUNT(*) FROM registries WHERE account_id = ?", account_id)
        return int(row[0]) if row else 0

    async def registry_storage_bytes(self, registry_id: str) -> int:
        # a blob linked in several repositories is stored once, so it counts once
        row = await self.engine.fetchone(
            "SELECT COALESCE(SUM(b.size), 0) FROM blobs b WHERE b.digest IN ("
            "SELECT l.digest FROM blob_links l JOIN repositories r ON r.id = l.repository_id "
            "WHERE r.registry_id = ?)",
            registry_id,
        )
        return int(row[0]) if row else 0

    async def list_repository_usage(
        self, registry_id: str, after: str, limit: int, prefix: str = ""
    ) -> list[RepositoryUsage]:
        rows = await self.engine.fetchall(
            f"{_USAGE_SELECT} WHERE r.registry_id = ? AND r.name > ? AND {_NAME_PREFIX} AND {_HAS_CONTENT} "
            "ORDER BY r.name LIMIT ?",
            registry_id,
            after,
            *_prefix_range(prefix),
            limit,
        )
        return [_usage(row) for row in rows]

    async def count_repositories_with_content(self, registry_id: str, prefix: str = "") -> int:
        row = await self.engine.fetchone(
            f"SELECT COUNT(*) FROM repositories r "
            f"WHERE r.registry_id = ? AND {_NAME_PREFIX} AND {_HAS_CONTENT}",
            registry_id,
            *_prefix_range(prefix),
        )
        return int(row[0]) if row else 0

    async def count_repositories_of(self, registry_ids: list[str]) -> dict[str, int]:
        counts = dict.fromkeys(registry_ids, 0)
        if counts:
            marks = ", ".join("?" for _ in counts)
            for registry_id, count in await self.engine.fetchall(
                f"SELECT r.registry_id, COUNT(*) FROM repositories r "
                f"WHERE r.registry_id IN ({marks}) AND {_HAS_CONTENT} GROUP BY r.registry_id",
                *counts,
            ):
                counts[registry_id] = int(count)
        return counts

    async def get_repository_usage(self, registry_id: str, name: str) -> RepositoryUsage | None:
        row = await self.engine.fetchone(
            f"{_USAGE_SELECT} WHERE r.registry_id = ? AND r.name = ? AND {_HAS_CONTENT}", registry_id, name
        )
        return _usage(row) if row else None

    async def add_repository_usage(
        self, registry_id: str, name: str, pulls: int, pushes: int, last_pull_at: int, last_push_at: int
    ) -> None:
        # additive, so that every process can flush its own counts; times only move forward
        await self.engine.execute(
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

    async def clear_repository(self, registry_id: str, name: str) -> ClearedRepository | None:
        async with self.engine.transaction() as tx:
            row = await tx.fetchone(
                f"SELECT r.id FROM repositories r WHERE r.registry_id = ? AND r.name = ? AND {_HAS_CONTENT}",
                registry_id,
                name,
            )
            if row is None:
                return None
            repository_id = row[0]
            digests = await tx.fetchall("SELECT digest FROM manifests WHERE repository_id = ?", repository_id)
            tags = await tx.fetchall("SELECT name FROM tags WHERE repository_id = ?", repository_id)
            for table in ("tags", "manifests", "blob_links"):
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

    async def list_artifacts(self, repository_id: int, after: str, limit: int) -> list[ArtifactRecord]:
        rows = await self.engine.fetchall(
            f"{_ARTIFACT_SELECT} WHERE repository_id = ? AND digest > ? ORDER BY digest LIMIT ?",
            repository_id,
            after,
            limit,
        )
        return await self._with_tags(repository_id, rows)

    async def count_artifacts(self, repository_id: int) -> int:
        row = await self.engine.fetchone(
            "SELECT COUNT(*) FROM manifests WHERE repository_id = ?", repository_id
        )
        return int(row[0]) if row else 0

    async def get_artifact(self, repository_id: int, digest: str) -> ArtifactRecord | None:
        row = await self.engine.fetchone(
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
            for digest, tag, updated_at in await self.engine.fetchall(
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
            for subject, *referrer in await self.engine.fetchall(
                "SELECT subject, digest, media_type, LENGTH(content), artifact_type, annotations "
                f"FROM manifests WHERE repository_id = ? AND subject IN ({marks}) ORDER BY digest",
                repository_id,
                *found,
            ):
                digest, media_type, size, artifact_type, annotations = referrer
                found[subject].append(
                    ReferrerRecord(digest, media_type, int(size), artifact_type, _opt_bytes(annotations))
                )
        return found

    async def close(self) -> None:
        await self.engine.close()


_HAS_CONTENT = (
    "(EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id) "
    "OR EXISTS (SELECT 1 FROM blob_links l WHERE l.repository_id = r.id))"
)
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


def _prefix_range(prefix: str) -> tuple[str, str]:
    return prefix, prefix + "\x7f"


_ARTIFACT_SELECT = "SELECT digest, media_type, content, artifact_type, created_at FROM manifests"


def _usage(row: Row) -> RepositoryUsage:
    # COUNT(*) is a bigint on PostgreSQL: int() keeps the record plain
    return RepositoryUsage(
        str(row[0]), int(row[1]), int(row[2]), int(row[3]), int(row[4]), row[5], row[6], int(row[7])
    )


def _upload(row: Row) -> UploadRecord:
    return UploadRecord(row[0], row[1], row[2], row[3], bytes(row[4]), bytes(row[5]), row[6], row[7])


def _opt_bytes(value: object) -> bytes | None:
    return bytes(value) if value is not None else None  # type: ignore[arg-type]
