"""What other processes still hold after a delete or a collection: their manifest caches (one
process's memory, or Redis shared by all) and their edge caches of blobs. A deleted or collected
manifest is served by no replica once the tag TTL has passed (at once with Redis); a collected
blob leaves the collecting process's edge cache at once, and no replica serves it from its own
(every blob read checks the blob's row first)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis

from ocigate.storage.blobs.edge_cache import EdgeCache
from ocigate.storage.blobs.reads import BlobReads
from ocigate.storage.cache import MetadataCache
from ocigate.storage.cache_redis import open_redis_cache
from ocigate.storage.digest import Digest
from ocigate.storage.errors import BlobUnknown, ManifestUnknown
from ocigate.storage.metadata import MetadataStore
from ocigate.storage.registries import Registries
from tests.services.ceph import open_backend
from tests.services.redis import RedisServer
from tests.storage.shared_reads import settled

from .world import World, another_engine, config, filesystem_driver, layer, open_world

TAG_TTL = 0.2
REDIS_DB = 9  # a Redis database of this module's own


async def _after_tag_ttl() -> None:
    """Past the TTL of every entry filled until now (waiting longer changes no result)."""
    await asyncio.sleep(TAG_TTL * 1.5)  # asyncio.sleep never returns early


async def _replica(world: World, cache: MetadataCache) -> World:
    """Another process on the same database and store, with its own cache."""
    registries = Registries(world.metadata, world.registries.blobs, cache)
    return World(registries, world.record)


class LocalCache(MetadataCache):
    """A cache in one process's memory (the default)."""


@pytest.fixture(params=["memory", "redis"])
async def caches(request: pytest.FixtureRequest) -> AsyncIterator[tuple[MetadataCache, MetadataCache]]:
    """Two processes' manifest caches: each its own memory, or both in one Redis."""
    if request.param == "memory":
        pair: tuple[MetadataCache, MetadataCache] = LocalCache(tag_ttl=TAG_TTL), LocalCache(tag_ttl=TAG_TTL)
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        url = server.url.rpartition("/")[0] + f"/{REDIS_DB}"
        with redis.Redis.from_url(url) as client:
            client.flushdb()  # repository ids of earlier tests' databases would collide
        pair = await open_redis_cache(url, tag_ttl=TAG_TTL), await open_redis_cache(url, tag_ttl=TAG_TTL)
    yield pair
    for cache in pair:
        await cache.close()


@pytest.mark.parametrize("removal", ["user delete", "collection"])
async def test_a_manifest_removed_by_one_process_is_served_by_no_other(
    metadata: MetadataStore, tmp_path: Path, caches: tuple[MetadataCache, MetadataCache], removal: str
) -> None:
    world = await open_world(metadata, filesystem_driver(tmp_path))
    remover, reader = await _replica(world, caches[0]), await _replica(world, caches[1])
    manifest = await remover.push_image("app", "v1", [layer(1)], config(1))
    kept = await remover.push_image("app", "v2", [layer(2)], config(2))
    digest = str(Digest.of(manifest))
    for reference in ("v1", digest, "v2", str(Digest.of(kept))):  # now in the reader's cache
        await reader.assert_pullable("app", reference)

    if removal == "user delete":
        await remover.registry.delete_manifest("app", digest)
    else:
        await remover.registry.delete_manifest("app", "v1")
        report = await remover.collect(grace=0)
        assert (report.manifests, report.blobs) == (1, 2)
    if isinstance(caches[1], LocalCache):  # a process-local cache learns of it within the tag TTL
        await _after_tag_ttl()
    for reference in (digest, "v1"):
        with pytest.raises(ManifestUnknown):
            await reader.registry.get_manifest("app", reference)
    # what stays is still served, from the cache again once confirmed
    for reference in ("v2", str(Digest.of(kept))):
        await reader.assert_pullable("app", reference)
    hits = caches[1].lookups[("manifest", "hit")]
    await reader.registry.get_manifest("app", str(Digest.of(kept)))
    assert caches[1].lookups[("manifest", "hit")] == hits + 1


async def test_collected_blobs_leave_the_edge_cache_and_no_replica_serves_them(
    metadata: MetadataStore, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    driver = await open_backend(request, "s3-ceph-kms", tmp_path)
    key = os.urandom(32)
    caches = [EdgeCache(tmp_path / f"edge-{name}", 1 << 30, key) for name in ("a", "b")]
    replicas = []
    engines = (metadata, await another_engine(metadata, request, tmp_path))
    for edge, engine in zip(caches, engines, strict=True):
        registries = Registries(engine, driver, MetadataCache(), reads=BlobReads(driver, edge))
        replicas.append(World(registries, await registries.ensure("gc")))
    collecting, other = replicas
    await collecting.push_image("app", "v1", [layer(1, 64 * 1024)], config(1))
    digest = Digest.of(layer(1, 64 * 1024))
    for world, edge in zip(replicas, caches, strict=True):  # each replica pulls it: both cache it
        blob = await world.registry.stat_blob("app", digest)
        chunks = world.registry.read_blob(blob, 0, blob.size)
        assert b"".join([bytes(chunk) async for chunk in chunks]) == layer(1, 64 * 1024)  # type: ignore[arg-type]
        await settled(world.registries.reads)
        assert edge.counters.fills == 1
    name = EdgeCache.name(blob.location, str(digest))
    for edge in caches:
        assert await read_all_cached(edge, name, blob.size) == layer(1, 64 * 1024)

    await collecting.registry.delete_manifest("app", "v1")
    report = await collecting.collect(grace=0)
    assert report.blobs == 2
    with pytest.raises(FileNotFoundError):  # gone from the collecting replica's disk at once
        await read_all_cached(caches[0], name, blob.size)
    assert caches[0].counters.discarded == 2  # the layer and the config
    # the other replica's copy is still on its disk (evicted in time), but never served:
    assert await read_all_cached(caches[1], name, blob.size) == layer(1, 64 * 1024)
    with pytest.raises(BlobUnknown):  # every blob read (GET, HEAD) checks the row first
        await other.registry.stat_blob("app", digest)
    assert await collecting.stored_blobs() == []
    await other.metadata.close()
    for edge in caches:
        await edge.close()
    await driver.close()


async def read_all_cached(edge: EdgeCache, name: str, size: int) -> bytes:
    return b"".join([bytes(chunk) async for chunk in edge.read(name, 0, size)])  # type: ignore[arg-type]
