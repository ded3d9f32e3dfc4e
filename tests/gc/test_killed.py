"""`ocigate gc` killed with SIGKILL in the middle of a collection, on PostgreSQL and the
filesystem store, at each step (the process stops at a step, tests/gc/paused_gc.py, and is
killed there): nothing still referenced is lost, every blob row has its bytes, the dead
process's lock dies with its session, and the next `ocigate gc` finishes the job."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ocigate.gateway.management.registry_models import RegistrySettings
from ocigate.storage.blobs.filesystem import FilesystemBlobDriver
from ocigate.storage.crypto import load_blob_key
from ocigate.storage.metadata import MetadataStore
from ocigate.storage.metadata.postgres import PostgresEngine
from tests.servers import DOMAIN

from .world import config, layer, open_world

STEPS = ["manifests-read", "links-read", "blobs-read", "blob-rows-deleted", "bytes-deleted"]
WAIT = 60.0  # seconds: generous, for a loaded machine; every wait ends as soon as its state holds
PAUSE = 0.05
ROOT = Path(__file__).parents[2]  # where `python -m tests.gc.paused_gc` finds the module


async def _until(check: Callable[[], bool], what: str) -> None:
    for _ in range(int(WAIT / PAUSE)):
        if check():
            return
        await asyncio.sleep(PAUSE)
    raise AssertionError(f"waited {WAIT} s for {what}")


@pytest.mark.parametrize("step", STEPS)
async def test_gc_killed_at_each_step_loses_nothing_and_the_next_run_finishes(
    postgres_url: str, tmp_path: Path, step: str
) -> None:
    data = tmp_path / "data"
    key = load_blob_key(None, None, data / "keys" / "blob.key")  # the key both processes use
    engine = await PostgresEngine.open(postgres_url)
    await engine.migrate()
    metadata = MetadataStore.over(engine)
    world = await open_world(metadata, FilesystemBlobDriver(data, key))
    settings = RegistrySettings.model_validate({"deleteUntaggedManifests": True})
    await metadata.registries.update_registry(world.record.id, settings.to_json())
    await world.push_image("app", "kept", [layer(1), layer(2)], config(1))
    await world.push_image("app", "gone", [layer(1), layer(3)], config(2))
    await world.registry.delete_manifest("app", "gone")
    env = {
        **os.environ,
        "OCIGATE_DATA_DIR": str(data),
        "OCIGATE_DOMAIN": DOMAIN,
        "OCIGATE_METADATA_URL": postgres_url,
    }
    gc = [sys.executable, "-m", "tests.gc.paused_gc", step, str(tmp_path / "marker")]
    args = ["--registry", "gc", "--grace", "0"]

    log = tmp_path / "paused.log"
    with log.open("wb") as output:
        paused = await asyncio.create_subprocess_exec(
            *gc, *args, env=env, cwd=ROOT, stdout=output, stderr=output
        )
    try:
        await _until(lambda: (tmp_path / "marker").exists() or paused.returncode is not None, f"step {step}")
        assert paused.returncode is None, log.read_text()
    finally:
        paused.send_signal(signal.SIGKILL)
        await paused.wait()

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

    finished = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ocigate.gateway.cli",
        "gc",
        *args,
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    stdout, _ = await asyncio.wait_for(finished.communicate(), WAIT)
    assert finished.returncode == 0
    assert "removed" in stdout.decode()
    assert "skipped" not in stdout.decode()
    await world.assert_pullable("app", "kept")
    assert await world.absent("app", "gone")
    assert sorted(await world.stored_blobs()) == await world.locations()
    assert len(await world.locations()) == 3  # layers 1 and 2, config 1
    await metadata.close()
