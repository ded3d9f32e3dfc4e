"""A collection that dies at any step leaves nothing referenced half-deleted, and the next run
finishes the job: rows are deleted before bytes, and the bytes of deleted rows stay queued."""

from __future__ import annotations

import pytest

from ocigate.storage.blobs import BlobDriver
from ocigate.storage.metadata import MetadataStore

from .world import config, layer, open_world


class Crash(BaseException):
    """As abrupt as it gets in-process: no `except Exception` catches it."""


@pytest.mark.parametrize("step", ["manifests-read", "links-read", "blobs-read", "blob-rows-deleted"])
async def test_collection_dying_at_each_step_is_finished_by_the_next(
    metadata: MetadataStore, blob_store: BlobDriver, step: str
) -> None:
    world = await open_world(metadata, blob_store)
    await world.push_image("app", "kept", [layer(1), layer(2)], config(1))
    await world.push_image("app", "gone", [layer(1), layer(3)], config(2))
    await world.registry.delete_manifest("app", "gone")

    async def die(at: str) -> None:
        if at == step:
            raise Crash

    with pytest.raises(Crash):
        await world.collect(hook=die)
    await world.assert_pullable("app", "kept")
    # every location the metadata names still has its bytes (a crash may leave extra bytes)
    assert set(await world.locations()) <= set(await world.stored_blobs())

    report = await world.collect()
    assert report.skipped is False  # the dead run's lock did not outlive it
    await world.assert_pullable("app", "kept")
    assert sorted(await world.stored_blobs()) == await world.locations()
    assert len(await world.locations()) == 3  # layers 1 and 2, config 1
