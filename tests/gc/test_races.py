"""Pushes racing the collector with a grace period of 0, where only the concurrency rules
protect a push in flight: each interleaving that matters, forced at the collector's steps
(its hook) or inside a push; then a randomized mix on two "replicas" (two engines on one
database and one store). Whatever the order, every pushed image pulls whole, or its push
failed with MANIFEST_BLOB_UNKNOWN and the client pushed it again."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest

from ocigate.storage.digest import Digest
from ocigate.storage.errors import ManifestBlobUnknown
from ocigate.storage.metadata import MetadataStore
from tests.registry_client import image_manifest

from .world import World, another_engine, config, filesystem_driver, layer, open_world


class PausedPut:
    """The content store, with a manifest write that waits for `go` after the push checked
    its blobs: the moment a collector must not be able to exploit."""

    def __init__(self, content: Any) -> None:
        self._content = content
        self.waiting = asyncio.Event()
        self.go = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._content, name)

    async def put_manifest(self, *args: Any, **kwargs: Any) -> None:
        self.waiting.set()
        await self.go.wait()
        await self._content.put_manifest(*args, **kwargs)


class PausedLink(PausedPut):
    """The same, for a mount: after it found the blob in the source repository."""

    async def link_blob(self, *args: Any) -> bool:
        self.waiting.set()
        await self.go.wait()
        result: bool = await self._content.link_blob(*args)
        return result


async def test_manifest_whose_blobs_are_collected_mid_push_is_refused(
    metadata: MetadataStore, tmp_path: Path
) -> None:
    world = await open_world(metadata, filesystem_driver(tmp_path))
    for content in (config(1), layer(1)):
        await world.push_blob("app", content)
    paused = PausedPut(world.metadata.content)
    registry = world.with_content(paused)
    manifest = image_manifest(config(1), [layer(1)])
    push = asyncio.create_task(registry.put_manifest("app", "v1", manifest, None))
    await paused.waiting.wait()  # checked: both blobs are linked

    report = await world.collect(grace=0)
    assert (report.links, report.blobs) == (2, 2)  # nothing referenced them yet
    paused.go.set()
    with pytest.raises(ManifestBlobUnknown):
        await push
    assert await world.absent("app", "v1")  # nothing half-written

    await world.push_image("app", "v1", [layer(1)], config(1))  # the client pushes again
    await world.assert_pullable("app", "v1")


async def test_upload_of_a_blob_whose_row_is_being_collected_keeps_its_own_bytes(
    metadata: MetadataStore, tmp_path: Path
) -> None:
    world = await open_world(metadata, filesystem_driver(tmp_path))
    await world.push_blob("old", layer(1))

    async def meanwhile(step: str) -> None:
        if step == "blob-rows-deleted":  # the row is gone, its bytes are queued for deletion
            await world.push_image("app", "v1", [layer(1)], config(1))

    await world.collect(grace=0, hook=meanwhile)
    await world.assert_pullable("app", "v1")
    assert sorted(await world.stored_blobs()) == await world.locations()


async def test_upload_linking_a_blob_the_sweep_just_found_keeps_it(
    metadata: MetadataStore, tmp_path: Path
) -> None:
    world = await open_world(metadata, filesystem_driver(tmp_path))
    await world.push_blob("old", layer(1))

    async def meanwhile(step: str) -> None:
        if step == "blobs-read":  # the sweep found it unlinked; now it is linked again
            await world.push_image("app", "v1", [layer(1)], config(1))

    report = await world.collect(grace=0, hook=meanwhile)
    assert report.blobs == 0
    await world.assert_pullable("app", "v1")


async def test_mount_during_collection_keeps_the_blob(metadata: MetadataStore, tmp_path: Path) -> None:
    world = await open_world(metadata, filesystem_driver(tmp_path))
    digest = Digest.parse(await world.push_blob("source", layer(1)))
    mounted: list[object] = []

    async def meanwhile(step: str) -> None:
        if step == "links-read":  # the source link is about to go; the mounted one stays
            mounted.append(await world.registry.mount_blob("target", digest, "source"))

    report = await world.collect(grace=0, hook=meanwhile)
    assert mounted[0] is not None
    assert (report.links, report.blobs) == (1, 0)
    await world.assert_blob("target", digest, layer(1))


async def test_mount_of_a_blob_collected_mid_mount_falls_back_to_an_upload(
    metadata: MetadataStore, tmp_path: Path
) -> None:
    world = await open_world(metadata, filesystem_driver(tmp_path))
    digest = Digest.parse(await world.push_blob("source", layer(1)))
    paused = PausedLink(world.metadata.content)
    registry = world.with_content(paused)
    mount = asyncio.create_task(registry.mount_blob("target", digest, "source"))
    await paused.waiting.wait()  # found in the source repository

    report = await world.collect(grace=0)
    assert (report.links, report.blobs) == (1, 1)
    paused.go.set()
    assert await mount is None  # 202: the client uploads it
    assert await world.stored_blobs() == []


async def test_tagging_an_untagged_manifest_the_collector_read_keeps_it(
    metadata: MetadataStore, tmp_path: Path
) -> None:
    world = await open_world(metadata, filesystem_driver(tmp_path))
    manifest = await world.push_image("app", None, [layer(1)], config(1))

    async def meanwhile(step: str) -> None:
        if step == "manifests-read":
            await world.registry.put_manifest("app", "v1", manifest, None)

    report = await world.collect(grace=0, hook=meanwhile)
    assert report.manifests == 0
    await world.assert_pullable("app", "v1")


SEED = 14
WORKERS = 4
OPERATIONS = 24  # per worker


async def push(world: World, repository: str, tag: str, layers: list[bytes], image_config: bytes) -> bytes:
    """As a client does: on MANIFEST_BLOB_UNKNOWN, push the blobs again, then the manifest."""
    for _ in range(50):
        try:
            return await world.push_image(repository, tag, layers, image_config)
        except ManifestBlobUnknown:
            await asyncio.sleep(0)
    raise AssertionError("the push lost to the collector 50 times in a row")


async def test_randomized_pushes_tag_moves_deletes_and_collections_on_two_replicas(
    metadata: MetadataStore, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    replicas = [
        await open_world(metadata, filesystem_driver(tmp_path)),
        await open_world(await another_engine(metadata, request, tmp_path), filesystem_driver(tmp_path)),
    ]
    rng = random.Random(SEED)
    pool = [layer(i) for i in range(6)]  # images share layers
    repositories = ["app", "lib", "tool"]
    plans = []
    serial = 0
    for worker in range(WORKERS):
        plan = []
        for _ in range(OPERATIONS):
            serial += 1
            kind = rng.choices(["push", "untag", "delete"], weights=[6, 1, 1])[0]
            picked = rng.sample(range(len(pool)), rng.randint(1, 3))
            plan.append((kind, rng.choice(repositories), f"w{worker}-{rng.randint(0, 2)}", picked, serial))
        plans.append(plan)
    expected: dict[tuple[str, str], bytes | None] = {}
    finished = asyncio.Event()
    progress = asyncio.Condition()
    done = 0  # operations finished: collections are paced by them, not by the clock
    removed: list[int] = []

    async def work(worker: int) -> None:
        nonlocal done
        world = replicas[worker % 2]
        for kind, repository, tag, picked, serial in plans[worker]:
            key = (repository, tag)
            if kind == "push":
                expected[key] = await push(world, repository, tag, [pool[i] for i in picked], config(serial))
            elif expected.get(key) is not None:
                reference = tag if kind == "untag" else str(Digest.of(expected[key] or b""))
                await world.registry.delete_manifest(repository, reference)
                expected[key] = None
            async with progress:
                done += 1
                progress.notify_all()

    async def collect(world: World) -> int:
        runs = 0
        while not finished.is_set():
            report = await world.collect(grace=0)  # while other pushes are in flight
            runs += not report.skipped
            removed.append(report.manifests + report.links)
            async with progress:
                target = done + 2
                await progress.wait_for(lambda target=target: done >= target or finished.is_set())  # type: ignore[misc]
        return runs

    async def workers() -> None:
        await asyncio.gather(*(work(worker) for worker in range(WORKERS)))
        async with progress:
            finished.set()
            progress.notify_all()

    collectors = [asyncio.create_task(collect(world)) for world in replicas]
    await workers()
    runs = sum(await asyncio.gather(*collectors))
    assert runs >= 2
    assert sum(removed) > 0  # the collections did remove what the tag moves and deletes left

    for world in (*replicas, replicas[0]):  # and again after a last, quiet collection
        for (repository, tag), manifest in sorted(expected.items()):
            if manifest is None:
                assert await world.absent(repository, tag)
            else:
                assert (await world.registry.get_manifest(repository, tag)).content == manifest
                await world.assert_pullable(repository, tag)
        if world is replicas[1]:
            await replicas[0].collect(grace=0)
    assert sorted(await replicas[0].stored_blobs()) == await replicas[0].locations()
    await replicas[1].metadata.close()
