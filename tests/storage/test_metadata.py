"""The suite every metadata store passes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ocigate.storage.metadata import BlobRecord, ManifestRecord, MetadataStore, UploadRecord

MIGRATIONS = Path(__file__).resolve().parents[2] / "storage" / "metadata" / "migrations"
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64


async def test_registries_are_unique_by_name(metadata: MetadataStore) -> None:
    created = await metadata.registries.create_registry("alpha")
    assert await metadata.registries.get_registry("alpha") == created
    with pytest.raises(KeyError):
        await metadata.registries.create_registry("alpha")
    assert [r.name for r in await metadata.registries.list_registries()] == ["alpha"]
    assert await metadata.registries.delete_registry("alpha")
    assert await metadata.registries.get_registry("alpha") is None


async def test_blob_is_stored_once_and_reachable_only_through_links(metadata: MetadataStore) -> None:
    alpha = await metadata.registries.create_registry("alpha")
    beta = await metadata.registries.create_registry("beta")
    first = await metadata.content.add_blob(alpha.id, "team/app", BlobRecord(D1, 10, "loc-1"))
    # the same content uploaded again elsewhere keeps the first location
    second = await metadata.content.add_blob(beta.id, "other", BlobRecord(D1, 10, "loc-2"))
    assert first == second == BlobRecord(D1, 10, "loc-1")
    app = await metadata.content.get_repository_id(alpha.id, "team/app")
    other = await metadata.content.get_repository_id(beta.id, "other")
    assert app is not None
    assert other is not None
    assert await metadata.content.get_linked_blob(app, D1) == first
    assert await metadata.content.unlink_blob(other, D1)
    assert await metadata.content.get_linked_blob(other, D1) is None
    assert await metadata.content.get_linked_blob(app, D1) == first
    assert not await metadata.content.unlink_blob(other, D1)


async def test_manifest_tag_and_delete(metadata: MetadataStore) -> None:
    registry = await metadata.registries.create_registry("alpha")
    manifest = ManifestRecord(D2, "application/vnd.oci.image.manifest.v1+json", b'{"a":1}')
    await metadata.content.put_manifest(registry.id, "app", manifest, "v1")
    await metadata.content.put_manifest(registry.id, "app", manifest, "v2")
    repository_id = await metadata.content.get_repository_id(registry.id, "app")
    assert repository_id is not None
    assert await metadata.content.get_manifest(repository_id, D2) == manifest
    assert await metadata.content.list_tags(repository_id, "", 10) == ["v1", "v2"]
    assert await metadata.content.list_tags(repository_id, "v1", 10) == ["v2"]
    assert sorted(await metadata.content.delete_manifest(repository_id, D2)) == ["v1", "v2"]
    assert await metadata.content.get_tag(repository_id, "v1") is None
    with pytest.raises(KeyError):
        await metadata.content.delete_manifest(repository_id, D2)


async def test_tags_sort_bytewise(metadata: MetadataStore) -> None:
    registry = await metadata.registries.create_registry("alpha")
    manifest = ManifestRecord(D2, "application/vnd.oci.image.manifest.v1+json", b"{}")
    for tag in ["b", "B", "a", "A", "_x", "1"]:
        await metadata.content.put_manifest(registry.id, "app", manifest, tag)
    repository_id = await metadata.content.get_repository_id(registry.id, "app")
    assert repository_id is not None
    assert await metadata.content.list_tags(repository_id, "", 100) == ["1", "A", "B", "_x", "a", "b"]


async def test_referrers_filter_by_artifact_type(metadata: MetadataStore) -> None:
    registry = await metadata.registries.create_registry("alpha")
    for digest, artifact_type in ((D1, "application/sbom"), (D3, "application/sig")):
        referrer = ManifestRecord(
            digest,
            "application/vnd.oci.image.manifest.v1+json",
            b"{}",
            subject=D2,
            artifact_type=artifact_type,
        )
        await metadata.content.put_manifest(registry.id, "app", referrer, None)
    repository_id = await metadata.content.get_repository_id(registry.id, "app")
    assert repository_id is not None
    content = metadata.content
    assert [r.digest for r in await content.list_referrers(repository_id, D2, None)] == [D1, D3]
    assert [r.digest for r in await content.list_referrers(repository_id, D2, "application/sig")] == [D3]


async def test_concurrent_tag_moves_leave_one_of_the_written_digests(metadata: MetadataStore) -> None:
    registry = await metadata.registries.create_registry("alpha")
    manifests = [
        ManifestRecord(f"sha256:{i:064x}", "application/vnd.oci.image.manifest.v1+json", b"{}")
        for i in range(20)
    ]
    await asyncio.gather(*(metadata.content.put_manifest(registry.id, "app", m, "latest") for m in manifests))
    repository_id = await metadata.content.get_repository_id(registry.id, "app")
    assert repository_id is not None
    assert await metadata.content.get_tag(repository_id, "latest") in {m.digest for m in manifests}


async def test_upload_advances_only_from_the_expected_offset(metadata: MetadataStore) -> None:
    registry = await metadata.registries.create_registry("alpha")
    upload = UploadRecord("a" * 32, registry.id, "app", 0, b"h0", b"{}", 1, 1)
    await metadata.uploads.create_upload(upload)
    assert await metadata.uploads.advance_upload(upload.id, 0, 100, b"h1", b"{}", 2)
    assert not await metadata.uploads.advance_upload(upload.id, 0, 50, b"hx", b"{}", 3)  # stale writer loses
    stored = await metadata.uploads.get_upload(upload.id)
    assert stored is not None
    assert (stored.offset, stored.hash_state) == (100, b"h1")
    assert await metadata.uploads.delete_upload(upload.id)
    assert await metadata.uploads.get_upload(upload.id) is None


async def test_idle_uploads_are_found_by_last_activity_oldest_first(metadata: MetadataStore) -> None:
    registry = await metadata.registries.create_registry("alpha")
    for number, updated in enumerate((50, 10, 30, 90)):
        upload = UploadRecord(f"{number:032x}", registry.id, "app", 0, b"h", b"{}", 1, updated)
        await metadata.uploads.create_upload(upload)
    await metadata.uploads.advance_upload(f"{1:032x}", 0, 7, b"h", b"{}", 95)  # active again
    idle = await metadata.uploads.idle_uploads(before=60, limit=10)
    assert [(u.id[-1], u.updated_at) for u in idle] == [("2", 30), ("0", 50)]
    assert [u.id[-1] for u in await metadata.uploads.idle_uploads(before=60, limit=1)] == ["2"]
    other = await metadata.registries.create_registry("beta")
    await metadata.uploads.create_upload(UploadRecord("f" * 32, other.id, "app", 0, b"h", b"{}", 1, 1))
    assert [u.id[-1] for u in await metadata.uploads.registry_uploads(registry.id)] == ["0", "1", "2", "3"]
    assert [u.id for u in await metadata.uploads.registry_uploads(other.id)] == ["f" * 32]


async def test_migrations_are_idempotent(metadata: MetadataStore) -> None:
    latest = max(int(p.name[:4]) for p in MIGRATIONS.glob("[0-9][0-9][0-9][0-9]_*.sql"))
    assert await metadata.engine.migrate() == latest
    assert await metadata.engine.migrate() == latest


async def test_a_write_is_visible_to_the_next_read_under_concurrent_reads(metadata: MetadataStore) -> None:
    """POST then PUT of an upload from 16 clients once answered 404: a read left a statement
    open on the shared reader connection, pinning an old snapshot."""
    registry = await metadata.registries.create_registry("alpha")

    async def create_then_read(i: int) -> bool:
        upload = UploadRecord(f"{i:032x}", registry.id, "app", 0, b"h", b"{}", 1, 1)
        await metadata.uploads.create_upload(upload)
        return await metadata.uploads.get_upload(upload.id) is not None

    async def busy_reads() -> None:
        for _ in range(50):
            await metadata.registries.list_registries()
            await metadata.uploads.get_upload("f" * 32)

    results = await asyncio.gather(
        *(create_then_read(i) for i in range(100)), *(busy_reads() for _ in range(8))
    )
    assert all(results[:100])
