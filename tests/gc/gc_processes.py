"""`ocigate gc` as real processes, for the kill -9 tests (test_killed*.py): one stopped at a step
of a collection (paused_gc.py) for the test to kill, and runs to the end; over a registry with
garbage in it, in a data dir that the processes and the test share."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from asyncio.subprocess import Process
from collections.abc import Callable
from pathlib import Path

from ocigate.gateway.management.registry_models import RegistrySettings
from ocigate.storage.blobs.filesystem import FilesystemBlobDriver
from ocigate.storage.crypto import load_blob_key
from ocigate.storage.metadata import MetadataStore
from tests.servers import DOMAIN

from .world import World, config, layer, open_world

WAIT = 60.0  # seconds: generous, for a loaded machine; every wait ends as soon as its state holds
PAUSE = 0.05
ROOT = Path(__file__).parents[2]  # where `python -m tests.gc.paused_gc` finds the module
GC_ARGS = ("--grace", "0")


async def until(check: Callable[[], bool], what: str) -> None:
    for _ in range(int(WAIT / PAUSE)):
        if check():
            return
        await asyncio.sleep(PAUSE)
    raise AssertionError(f"waited {WAIT} s for {what}")


def gc_env(data: Path, **settings: str) -> dict[str, str]:
    return {**os.environ, "OCIGATE_DATA_DIR": str(data), "OCIGATE_DOMAIN": DOMAIN, **settings}


async def world_with_garbage(metadata: MetadataStore, data: Path, name: str = "gc") -> World:
    """Registry `name` on the filesystem store in `data`: app:kept, and app:gone deleted (its
    manifest, layer 3 and config 2 are garbage; layer 1 is shared with app:kept)."""
    key = load_blob_key(None, None, data / "keys" / "blob.key")  # the key the processes use too
    world = await open_world(metadata, FilesystemBlobDriver(data, key), name)
    settings = RegistrySettings.model_validate({"deleteUntaggedManifests": True})
    await metadata.registries.update_registry(world.record.id, settings.to_json())
    await world.push_image("app", "kept", [layer(1), layer(2)], config(1))
    await world.push_image("app", "gone", [layer(1), layer(3)], config(2))
    await world.registry.delete_manifest("app", "gone")
    return world


async def assert_collected(world: World) -> None:
    await world.assert_pullable("app", "kept")
    assert await world.absent("app", "gone")
    assert sorted(await world.stored_blobs()) == await world.locations()
    assert len(await world.locations()) == 3  # layers 1 and 2, config 1


async def start_paused(step: str, env: dict[str, str], marker: Path, *args: str) -> Process:
    """An `ocigate gc` (with `args`) stopped at `step`, holding the locks it holds there."""
    log = marker.with_suffix(".log")
    with log.open("wb") as output:
        paused = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.gc.paused_gc",
            step,
            str(marker),
            *args,
            env=env,
            cwd=ROOT,
            stdout=output,
            stderr=output,
        )
    try:
        await until(lambda: marker.exists() or paused.returncode is not None, f"step {step}")
        assert paused.returncode is None, log.read_text()
    except BaseException:
        await kill(paused)
        raise
    return paused


async def kill(process: Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGKILL)
    await process.wait()


async def run_gc(env: dict[str, str], *args: str) -> str:
    """What `ocigate gc` with `args` printed; it must succeed."""
    finished = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ocigate.gateway.cli",
        "gc",
        *args,
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(finished.communicate(), WAIT)
    assert finished.returncode == 0, stderr.decode()
    return stdout.decode()
