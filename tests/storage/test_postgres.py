"""PostgreSQL engine: what the shared suite cannot show with one store, i.e. several replicas
(two engines = two pools = two processes' worth of connections) on one database."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ocigate.storage.config import StorageConfig
from ocigate.storage.metadata import BlobRecord, ManifestRecord, MetadataStore, UploadRecord, open_metadata
from ocigate.storage.metadata.engine import _migration_scripts
from ocigate.storage.metadata.postgres import PostgresEngine, _changed, _split_pool_size, numbered

D1 = "sha256:" + "1" * 64
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LATEST_VERSION = max(number for number, _ in _migration_scripts())


@pytest.fixture
async def replicas(postgres_url: str) -> AsyncIterator[tuple[MetadataStore, MetadataStore]]:
    """Two stores with separate pools on one migrated database."""
    first = MetadataStore.over(await PostgresEngine.open(postgres_url))
    await first.engine.migrate()
    second = MetadataStore.over(await PostgresEngine.open(postgres_url))
    yield first, second
    await first.close()
    await second.close()


def test_placeholders_are_numbered_outside_quotes() -> None:
    assert numbered("SELECT a FROM t WHERE b = ? AND c IN (?, ?)") == (
        "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)"
    )
    assert numbered("SELECT '?', \"a?\" FROM t WHERE x = ? AND y = 'it''s ?'") == (
        "SELECT '?', \"a?\" FROM t WHERE x = $1 AND y = 'it''s ?'"
    )
    assert numbered("SELECT 1") == "SELECT 1"


def test_command_tags_give_changed_rows() -> None:
    assert [_changed(s) for s in ("INSERT 0 1", "UPDATE 3", "DELETE 0", "CREATE TABLE")] == [1, 3, 0, 0]


def test_pool_size_is_taken_out_of_the_url() -> None:
    assert _split_pool_size("postgresql://u:p@h:5432/db?pool_size=4&sslmode=disable") == (
        "postgresql://u:p@h:5432/db?sslmode=disable",
        4,
    )
    assert _split_pool_size("postgresql://h/db")[1] == 10
    with pytest.raises(ValueError, match="pool_size"):
        _split_pool_size("postgresql://h/db?pool_size=0")


async def test_open_metadata_takes_a_postgresql_url(postgres_url: str, tmp_path: Path) -> None:
    store = await open_metadata(StorageConfig(data_dir=tmp_path, metadata_url=f"{postgres_url}?pool_size=2"))
    try:
        assert isinstance(store, MetadataStore)
        assert isinstance(store.engine, PostgresEngine)
        await store.registries.create_registry("alpha")
        assert [r.name for r in await store.registries.list_registries()] == ["alpha"]
    finally:
        await store.close()
    assert os.listdir(tmp_path) == []  # no SQLite file on the side


async def test_concurrent_replicas_migrate_once(postgres_url: str) -> None:
    engines = [await PostgresEngine.open(postgres_url) for _ in range(4)]
    try:
        assert await asyncio.gather(*(e.migrate() for e in engines)) == [LATEST_VERSION] * 4
        rows = await engines[0].fetchall("SELECT version FROM schema_migrations ORDER BY version")
        assert [row[0] for row in rows] == sorted(number for number, _ in _migration_scripts())
    finally:
        for engine in engines:
            await engine.close()


async def test_replicas_racing_on_one_tag_leave_one_written_digest(
    replicas: tuple[MetadataStore, MetadataStore],
) -> None:
    first, second = replicas
    registry = await first.registries.create_registry("alpha")
    manifests = [ManifestRecord(f"sha256:{i:064x}", MANIFEST, b"{}") for i in range(24)]
    await asyncio.gather(
        *(
            (first, second)[i % 2].content.put_manifest(registry.id, "app", manifest, "latest")
            for i, manifest in enumerate(manifests)
        )
    )
    repository_id = await second.content.get_repository_id(registry.id, "app")
    assert repository_id is not None
    assert await first.content.get_tag(repository_id, "latest") in {m.digest for m in manifests}
    assert await first.content.missing_manifests(repository_id, [m.digest for m in manifests]) == []
    rows = await first.engine.fetchall("SELECT id FROM repositories")
    assert rows == [(repository_id,)]  # created once, whoever came first


async def test_replicas_racing_on_one_blob_agree_on_the_stored_one(
    replicas: tuple[MetadataStore, MetadataStore],
) -> None:
    first, second = replicas
    registry = await first.registries.create_registry("alpha")
    results = await asyncio.gather(
        *(
            (first, second)[i % 2].content.add_blob(
                registry.id, f"app-{i % 3}", BlobRecord(D1, 10, f"loc-{i}")
            )
            for i in range(24)
        )
    )
    stored = await second.content.get_blob(D1)
    assert stored is not None
    assert set(results) == {stored}  # every racer was told where the one stored copy is
    assert await first.engine.fetchall("SELECT COUNT(*) FROM blobs") == [(1,)]
    for name in ("app-0", "app-1", "app-2"):
        repository_id = await first.content.get_repository_id(registry.id, name)
        assert repository_id is not None
        assert await second.content.get_linked_blob(repository_id, D1) == stored


async def test_replicas_racing_on_one_upload_chunk_one_wins(
    replicas: tuple[MetadataStore, MetadataStore],
) -> None:
    first, second = replicas
    registry = await first.registries.create_registry("alpha")
    await first.uploads.create_upload(UploadRecord("a" * 32, registry.id, "app", 0, b"h0", b"{}", 1, 1))
    won = await asyncio.gather(
        *(
            (first, second)[i % 2].uploads.advance_upload("a" * 32, 0, 100 + i, b"h%d" % i, b"{}", 2)
            for i in range(10)
        )
    )
    assert won.count(True) == 1
    stored = await second.uploads.get_upload("a" * 32)
    assert stored is not None
    winner = won.index(True)
    assert (stored.offset, stored.hash_state) == (100 + winner, b"h%d" % winner)


async def test_a_failed_transaction_leaves_nothing(metadata_pg: MetadataStore) -> None:
    async def fail() -> None:
        async with metadata_pg.engine.transaction() as tx:
            await tx.execute("INSERT INTO registries (id, name, created_at) VALUES (?, ?, ?)", "r1", "x", 1)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await fail()
    assert await metadata_pg.registries.list_registries() == []


async def test_repositories_list_bytewise_under_a_linguistic_default_collation(
    metadata_pg: MetadataStore,
) -> None:
    # the test database's own collation puts "a" before "B"; the listing must not
    assert await metadata_pg.engine.fetchone("SELECT 'a' < 'B'") == (True,)
    registry = await metadata_pg.registries.create_registry("alpha")
    for name in ["b", "B", "a", "A", "_x", "1", "a/b", "a-b"]:
        await metadata_pg.content.put_manifest(registry.id, name, ManifestRecord(D1, MANIFEST, b"{}"), None)
    names = await metadata_pg.content.list_repositories(registry.id, "", 100)
    assert names == sorted(names, key=str.encode) == ["1", "A", "B", "_x", "a", "a-b", "a/b", "b"]
    assert await metadata_pg.content.list_repositories(registry.id, "B", 2) == ["_x", "a"]


@pytest.fixture
async def metadata_pg(postgres_url: str) -> AsyncIterator[MetadataStore]:
    store = MetadataStore.over(await PostgresEngine.open(postgres_url))
    await store.engine.migrate()
    yield store
    await store.close()
