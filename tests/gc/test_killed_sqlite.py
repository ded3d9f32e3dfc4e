"""On SQLite (the embedded default), collectors are real `ocigate gc` processes on one database
file: a collector killed with SIGKILL frees its locks at once (a lease row once blocked every
collection for ten minutes), and live collectors still exclude each other, per registry and for
the global blob sweep. The locks' files go with the last holder (storage/metadata/host_locks.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ocigate.storage.metadata import MetadataStore
from ocigate.storage.metadata.sqlite import SqliteEngine

from .gc_processes import GC_ARGS, assert_collected, gc_env, kill, run_gc, start_paused, world_with_garbage
from .world import layer, open_world


@pytest.fixture
async def metadata(tmp_path: Path) -> AsyncIterator[MetadataStore]:
    """The test's view of the database the processes use (the data dir's default)."""
    engine = await SqliteEngine.open(tmp_path / "data" / "metadata.db")
    await engine.migrate()
    store = MetadataStore.over(engine)
    yield store
    await store.close()


def _lock_files(data: Path) -> list[Path]:
    return sorted(data.glob("metadata.db.lock-*"))


@pytest.mark.parametrize("step", ["links-read", "bytes-deleted"])  # its registry's lock; also the sweep's
async def test_a_collector_killed_mid_collection_blocks_no_later_one(
    metadata: MetadataStore, tmp_path: Path, step: str
) -> None:
    data = tmp_path / "data"
    world = await world_with_garbage(metadata, data)
    env = gc_env(data)
    args = ["--registry", "gc", *GC_ARGS]

    await kill(await start_paused(step, env, tmp_path / "paused", *args))
    left = _lock_files(data)

    printed = await run_gc(env, *args)  # at once: nothing to wait for
    assert "skipped" not in printed
    assert "left to the collection running elsewhere" not in printed
    await assert_collected(world)
    assert left  # the killed holder's files: the run locked them, then removed them
    assert _lock_files(data) == []


async def test_live_collectors_exclude_each_other_and_a_killed_one_lets_the_next_in(
    metadata: MetadataStore, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    world = await world_with_garbage(metadata, data)
    other = await open_world(metadata, world.registries.blobs, "other")
    await other.push_blob("app", layer(9))  # an unreferenced link: garbage of its own
    env = gc_env(data)

    # stopped with both locks held: registry gc's, and the sweep's (rows deleted, bytes queued)
    paused = await start_paused("blob-rows-deleted", env, tmp_path / "paused", "--registry", "gc", *GC_ARGS)
    try:
        printed = (await run_gc(env, *GC_ARGS)).splitlines()  # every registry
        assert "registry gc: skipped, another collection is running" in printed
        others = next(line for line in printed if line.startswith("registry other:"))
        assert "removed 0 manifests, 1 blob links, 0 blobs" in others  # the blob waits for the sweep
        assert others.endswith("blob sweep left to the collection running elsewhere")
    finally:
        await kill(paused)

    printed = (await run_gc(env, *GC_ARGS)).splitlines()
    assert not [line for line in printed if "skipped" in line or "elsewhere" in line]
    await assert_collected(world)
    assert _lock_files(data) == []
