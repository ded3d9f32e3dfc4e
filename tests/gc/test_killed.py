"""`ocigate gc` killed with SIGKILL in the middle of a collection, on PostgreSQL and the
filesystem store, at each step (the process stops at a step, tests/gc/paused_gc.py, and is
killed there): nothing still referenced is lost, every blob row has its bytes, the dead
process's lock dies with its session, and the next `ocigate gc` finishes the job.
(test_killed_sqlite.py: the same on SQLite, and the locks between live processes.)"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ocigate.storage.metadata import MetadataStore
from ocigate.storage.metadata.postgres import PostgresEngine

from .gc_processes import (
    GC_ARGS,
    PAUSE,
    WAIT,
    assert_collected,
    gc_env,
    kill,
    run_gc,
    start_paused,
    world_with_garbage,
)

STEPS = ["manifests-read", "links-read", "blobs-read", "blob-rows-deleted", "bytes-deleted"]


@pytest.mark.parametrize("step", STEPS)
async def test_gc_killed_at_each_step_loses_nothing_and_the_next_run_finishes(
    postgres_url: str, tmp_path: Path, step: str
) -> None:
    data = tmp_path / "data"
    engine = await PostgresEngine.open(postgres_url)
    await engine.migrate()
    world = await world_with_garbage(MetadataStore.over(engine), data)
    env = gc_env(data, OCIGATE_METADATA_URL=postgres_url)
    args = ["--registry", "gc", *GC_ARGS]

    await kill(await start_paused(step, env, tmp_path / "paused", *args))

    await world.assert_pullable("app", "kept")
    # every location the metadata names still has its bytes (a crash may leave extra bytes)
    assert set(await world.locations()) <= set(await world.stored_blobs())
    queued = await engine.fetchone("SELECT count(*) FROM blob_deletions")
    if step in ("blob-rows-deleted", "bytes-deleted"):  # killed with work left for the next run
        assert queued is not None
        assert queued[0] == 2  # the garbage's blobs: layer 3 and config 2, rows gone, bytes queued
    held = (
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
        "WHERE l.locktype = 'advisory' AND d.datname = current_database()"
    )
    locks: list[int] = []

    async def unlocked() -> bool:
        row = await engine.fetchone(held)
        locks.append(int(row[0]) if row else 0)
        return locks[-1] == 0

    while not await unlocked():  # the dead session's lock goes with it
        await asyncio.sleep(PAUSE)
        assert len(locks) < WAIT / PAUSE, "the killed collector's advisory lock outlived it"

    printed = await run_gc(env, *args)
    assert "removed" in printed
    assert "skipped" not in printed
    await assert_collected(world)
    await world.metadata.close()
