"""The metadata cache over each backend (memory, Redis), and the Redis entry format."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import fields
from pathlib import Path
from types import SimpleNamespace

import pytest
import redis

from ocigate.storage import cache as cache_module
from ocigate.storage.cache import ABSENT, MemoryBackend, MetadataCache
from ocigate.storage.cache_redis import NAMESPACE, RecordSerializer, open_redis_cache, redis_client
from ocigate.storage.metadata import ManifestRecord, RegistryRecord
from tests.servers import free_port
from tests.services.redis import RedisServer

D1 = "sha256:" + "1" * 64
MANIFEST = ManifestRecord(
    D1,
    "application/vnd.oci.image.manifest.v1+json",
    bytes(range(256)) * 4,  # exact bytes, not text
    subject="sha256:" + "2" * 64,
    artifact_type="application/sbom",
    annotations=b'{"a":"\xc3\xa9"}',
)
REGISTRY = RegistryRecord("0" * 32, "alpha", 1700000000000)


def _redis_url(server: RedisServer, db: int) -> str:
    return server.url.rpartition("/")[0] + f"/{db}"


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[MetadataCache]:
    if request.param == "redis":
        url = _redis_url(request.getfixturevalue("redis_server"), 2)
        with redis.Redis.from_url(url) as client:
            client.flushdb()  # no entries from earlier tests
        cache = await open_redis_cache(url, tag_ttl=0.2)
    else:
        cache = MetadataCache(tag_ttl=0.2)
    yield cache
    await cache.close()


async def test_entries_round_trip(cache: MetadataCache) -> None:
    await cache.set_manifest(7, MANIFEST)
    await cache.set_tag(7, "latest", D1)
    await cache.set_registry("alpha", REGISTRY)
    await cache.set_registry("nope", None)
    await cache.set_repository_id(REGISTRY.id, "team/app", 7)
    assert await cache.get_manifest(7, D1) == MANIFEST
    assert await cache.get_tag(7, "latest") == D1
    assert await cache.get_registry("alpha") == REGISTRY
    assert await cache.get_registry("nope") == ABSENT
    assert await cache.get_repository_id(REGISTRY.id, "team/app") == 7
    assert await cache.get_manifest(8, D1) is None


async def test_drops_and_tag_lifetime(cache: MetadataCache) -> None:
    await cache.set_manifest(7, MANIFEST)
    await cache.drop_manifest(7, D1)
    assert await cache.get_manifest(7, D1) is None
    await cache.set_tag(7, "a", D1)
    await cache.set_tag(7, "b", D1)
    await cache.drop_tags(7, ["a"])
    assert await cache.get_tag(7, "a") is None
    assert await cache.get_tag(7, "b") == D1
    await asyncio.sleep(0.3)  # past tag_ttl: another process's move is seen by then
    assert await cache.get_tag(7, "b") is None


async def test_replicas_share_entries_and_drops(redis_server: RedisServer) -> None:
    url = _redis_url(redis_server, 2)
    first, second = await open_redis_cache(url), await open_redis_cache(url)
    try:
        await first.set_manifest(9, MANIFEST)
        assert await second.get_manifest(9, D1) == MANIFEST
        await second.drop_manifest(9, D1)
        assert await first.get_manifest(9, D1) is None
    finally:
        await first.close()
        await second.close()


@pytest.mark.parametrize(
    "value",
    [
        MANIFEST,
        ManifestRecord(D1, "application/vnd.oci.image.index.v1+json", b""),
        ManifestRecord(D1, "m", b"{}", annotations=b""),
        REGISTRY,
        RegistryRecord(**{f.name: 42 if f.type == "int" else f"v-{f.name}" for f in fields(RegistryRecord)}),
        "sha256:abc",
        "",
        123456789012,
    ],
)
def test_serializer_round_trips_every_field(value: object) -> None:
    serializer = RecordSerializer()
    encoded = serializer.dumps(value)
    assert isinstance(encoded, bytes)
    assert serializer.loads(encoded) == value
    assert type(serializer.loads(encoded)) is type(value)


def test_serializer_keeps_manifest_bytes_as_they_are() -> None:
    # no base64, no JSON escaping: the content plus a header of digests and media types
    assert len(RecordSerializer().dumps(MANIFEST)) < len(MANIFEST.content) + 300


def test_unreadable_entries_are_misses() -> None:
    serializer = RecordSerializer()
    assert serializer.loads(b"x???") is None  # e.g. written by a newer release
    assert serializer.loads(b"m\x00\x00\x00\x09[1,2]") is None
    assert serializer.loads(None) is None
    with pytest.raises(TypeError):
        serializer.dumps(1.5)


async def test_redis_down_reads_miss_and_nothing_from_before_is_served_after(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis stops with entries in it and comes back with them (persistence, or a Redis that
    was only unreachable): what was invalidated meanwhile never reached it, yet is not served."""
    server = RedisServer(tmp_path, persistent=True)
    first = await open_redis_cache(server.url, tag_ttl=3600)  # two replicas; tags kept long,
    second = await open_redis_cache(server.url, tag_ttl=3600)  # so only generations can help
    try:
        await first.set_manifest(7, MANIFEST)
        await first.set_tag(7, "latest", D1)
        assert await second.get_manifest(7, D1) == MANIFEST
        server.stop()
        for _ in range(20):  # nothing raises: the callers go to the metadata store
            assert await first.get_manifest(7, D1) is None
            await first.drop_manifest(7, D1)  # deleted, and the tag moved, while Redis is away
            await first.drop_tags(7, ["latest"])
            await second.set_tag(7, "latest", D1)
        assert first.health is not None
        assert not first.health.up
        assert first.health.failures >= 1
        server.start()
        with redis.Redis.from_url(server.url) as client:  # the old entries are all still there
            assert client.exists(f"{NAMESPACE}:m:7:{D1}", f"{NAMESPACE}:t:7:latest") == 2
        for replica in (first, second):  # whatever their probes did yet: never a stale answer
            assert await replica.get_manifest(7, D1) is None
            assert await replica.get_tag(7, "latest") is None
        for replica in (first, second):
            await wait_until_up(replica)
            assert await replica.get_tag(7, "latest") is None
        await second.set_tag(7, "latest", "sha256:" + "3" * 64)  # the cache works again
        assert await first.get_tag(7, "latest") == "sha256:" + "3" * 64
        assert first.health.outages == 1
    finally:
        server.stop()
        await first.close()
        await second.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "ocigate.storage"]
    assert sum("cache store unavailable" in line for line in lines) == 2  # once per replica
    assert sum("cache store answers again" in line for line in lines) == 2


async def wait_until_up(cache: MetadataCache) -> None:
    assert cache.health is not None
    for _ in range(600):  # 30 s at most; the probe tries every second
        if cache.health.up:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the cache did not find Redis again")


async def test_unreachable_redis_fails_at_start_with_the_reason() -> None:
    with pytest.raises(RuntimeError, match=r"cannot reach Redis at redis://:\*\*\*@127\.0\.0\.1"):
        await open_redis_cache(f"redis://:secret@127.0.0.1:{free_port()}/0")


def test_redis_url_is_parsed() -> None:
    client = redis_client("rediss://user:p%40ss@cache.example:6380/3")
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("cache.example", 6380, 3)
    assert (kwargs["username"], kwargs["password"]) == ("user", "p@ss")
    with pytest.raises(ValueError, match="Redis URL must be redis://"):
        redis_client("http://cache.example")


async def test_a_late_fill_does_not_resurrect_a_deleted_manifest(cache: MetadataCache) -> None:
    """Replica A loads a manifest, replica B deletes it and drops the entry, then A fills."""
    await cache.drop_manifest(7, D1)
    await cache.set_manifest(7, MANIFEST)
    assert await cache.get_manifest(7, D1) is None


async def test_the_memory_backend_drops_expired_entries_it_is_never_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tags of repositories nobody pulls again expire without a read: the entries are swept
    whenever they have doubled since the last sweep, so they stay under twice the live ones.
    (On a clock of the test's own: on the real one, a slow machine lets some entries expire
    during the first sweeps, which moves the later ones.)"""
    now = [1000.0]
    monkeypatch.setattr(cache_module, "time", SimpleNamespace(monotonic=lambda: now[0]))
    backend = MemoryBackend()
    for n in range(5000):
        await backend.set(f"t:{n}", "digest", ttl=0.01)
    await backend.set("m:kept", "manifest", ttl=3600)
    now[0] += 0.05
    for n in range(3500):  # live ones: the sweep at 8192 entries drops the 5000 dead
        await backend.set(f"t:live:{n}", "digest", ttl=3600)
    assert len(backend._entries) == 3501
    assert "t:1" not in backend._entries
    assert await backend.get("m:kept") == "manifest"
    with pytest.raises(ValueError, match="already exists"):
        await backend.add("m:kept", "other")
